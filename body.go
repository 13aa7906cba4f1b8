package main

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"

	"wxlogin/internal/jsonpick"
)

// Limits on what a client may send.
const (
	maxBodyBytes = 4 << 10
	maxCodeLen   = 128
)

// codeRequest is the body of POST /openid and POST /phonenumber.
type codeRequest struct {
	Code  string `json:"code"`
	AppID string `json:"appid"` // /openid, with several mini-programs
}

// codeReader reads codeRequest, member names matched exactly as the SPEC
// writes them: {"Code":…} names no code.
var codeReader = jsonpick.For[codeRequest]()

// decodeCode reads the code (and appid) from a JSON body (or, for curl -d,
// a form) and checks the code before it goes anywhere near WeChat.
func decodeCode(w http.ResponseWriter, r *http.Request) (codeRequest, error) {
	form := false
	// "application/json" exactly is what wx.request sends: skip the parse.
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
			return codeRequest{}, errMediaType
		}
		switch mt {
		case "application/json":
		case "application/x-www-form-urlencoded":
			form = true
		default:
			return codeRequest{}, errMediaType
		}
	}
	if r.ContentLength > maxBodyBytes {
		return codeRequest{}, errTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return codeRequest{}, errTooLarge
		}
		return codeRequest{}, invalidRequest("could not read the request body")
	}
	var req codeRequest
	// curl -d sends a form Content-Type even for a JSON body; a body that is
	// plainly a JSON object is read as JSON, whatever the form header says.
	if form && !isObject(body) {
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return codeRequest{}, invalidRequest("the form body is malformed")
		}
		req.Code, req.AppID = v.Get("code"), v.Get("appid")
	} else if err := codeReader.Read(body, &req); err != nil {
		return codeRequest{}, invalidRequest(`the body must be one JSON object like {"code":"..."}`)
	}
	return req, checkCode(req.Code)
}

// isObject reports whether body starts like a JSON object.
func isObject(body []byte) bool {
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c == '{'
	}
	return false
}

// checkCode enforces the SPEC's shape of a code: 1–128 of A-Z a-z 0-9 - _.
func checkCode(code string) error {
	switch {
	case code == "":
		return invalidRequest("code is required: send the code from wx.login() or getPhoneNumber")
	case len(code) > maxCodeLen:
		return invalidRequest("code is longer than 128 characters")
	}
	for i := 0; i < len(code); i++ {
		if !isCodeChar(code[i]) {
			return invalidRequest("code may contain only A-Z, a-z, 0-9, - and _")
		}
	}
	return nil
}

// isCodeChar reports whether c is one of A-Z a-z 0-9 - _.
func isCodeChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
