package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

// Header values shared by every JSON answer. net/http only reads them, so
// one slice each serves all requests without an allocation.
var (
	jsonContentType = []string{"application/json; charset=utf-8"}
	noStore         = []string{"no-store"}
	publicCache     = []string{"public, max-age=300"}
)

// encode writes v as the JSON answer, without HTML escaping (a token or a
// message stays as it is). Headers are set before WriteHeader, after which
// net/http ignores them.
func encode(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err == nil && bytes.Contains(b, escapedHTML) {
		// json.Marshal escaped <, > or &: encode again without that.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		err = enc.Encode(v)
		b = bytes.TrimSuffix(buf.Bytes(), newline)
	}
	if err != nil {
		// Only our own fixed types reach here; this is a programming error.
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	if h["Cache-Control"] == nil {
		h["Cache-Control"] = noStore
	}
	w.WriteHeader(status)
	w.Write(b)
	w.Write(newline)
}

var (
	escapedHTML = []byte(`\u00`) // the start of json.Marshal's \u003c, \u003e, \u0026
	newline     = []byte{'\n'}
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
