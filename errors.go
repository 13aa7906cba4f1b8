package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// apiError is what a client is told: a status, a stable code from the
// SPEC's table and a sentence. Detail for operators goes to the log.
type apiError struct {
	status     int
	code       string
	message    string
	allow      string // the Allow header of a 405
	retryAfter string // the Retry-After header of a 429 or 503
	// challenge is the WWW-Authenticate header of a 401 for a token.
	challenge string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

const (
	retryAfterBusy = "1"
	retryAfterRate = "60" // WeChat's quotas are per minute
)

var (
	errNotFound  = &apiError{status: http.StatusNotFound, code: "not_found", message: "no such endpoint; see POST /openid"}
	errOverload  = &apiError{status: http.StatusServiceUnavailable, code: "unavailable", message: "too many requests in flight; retry shortly", retryAfter: retryAfterBusy}
	errTooLarge  = &apiError{status: http.StatusRequestEntityTooLarge, code: "request_too_large", message: "the request body is over 4 KiB"}
	errMediaType = &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", message: "send the code as application/json, e.g. {\"code\":\"...\"}"}
	errNoApp     = invalidRequest(`several mini-programs are configured: send "appid" in the body (or the X-WX-APPID header)`)
	errTimeout   = &apiError{status: http.StatusGatewayTimeout, code: "upstream_timeout", message: "WeChat did not answer in time"}
	errUpstream  = &apiError{status: http.StatusBadGateway, code: "upstream_error", message: "could not get a valid answer from WeChat"}
	errTokensOff = &apiError{status: http.StatusNotFound, code: "not_found",
		message: "login tokens are off on this login service: set TOKEN_KEY_FILE (ES256/EdDSA/RS256) or TOKEN_SECRET (HS256) to turn them on"}
	errUnionIDMissing = &apiError{status: http.StatusForbidden, code: "unionid_missing",
		message: "WeChat sent no unionid: this mini-program is not bound to the Open Platform account (TOKEN_SUBJECT=unionid needs one)"}
)

// Token failures. A request without any credentials gets a challenge with
// no error attribute (RFC 6750 §3.1); a bad token gets error="invalid_token".
var (
	errNoToken  = &apiError{status: http.StatusUnauthorized, code: "invalid_token", message: "send the login token as Authorization: Bearer <token>", challenge: "Bearer"}
	errBadToken = &apiError{status: http.StatusUnauthorized, code: "invalid_token", message: "the token is malformed, tampered with or expired; log in again", challenge: `Bearer error="invalid_token"`}
)

// unknownApp names the AppID a request named, which is not configured: an
// AppID is no secret, and the caller sees at once which one is missing.
func unknownApp(named string) *apiError {
	what := "the AppID sent is not well-formed"
	if wechat.IsMockAppID(named) {
		what = "AppID " + named + " is not configured on this login service"
	}
	return &apiError{status: http.StatusBadRequest, code: "unknown_app", message: what + " (WX_APPID)"}
}

func methodNotAllowed(allow string) *apiError {
	return &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", message: "use " + allow, allow: allow}
}

func invalidRequest(message string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid_request", message: message}
}

func rateLimited(message string, wait time.Duration) *apiError {
	return &apiError{status: http.StatusTooManyRequests, code: "rate_limited", message: message,
		retryAfter: strconv.Itoa(retryAfterSeconds(wait))}
}

// clientError maps any error to what the client sees. WeChat's own errmsg
// and transport details never reach the client.
func clientError(err error) *apiError {
	if ae, ok := errors.AsType[*apiError](err); ok {
		return ae
	}
	if errors.Is(err, token.ErrInvalid) {
		return errBadToken
	}
	if we, ok := errors.AsType[*wechat.Error](err); ok {
		return wechatError(we)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errTimeout
	}
	return errUpstream
}

// wechatError is the table from WeChat's errcodes to our answers; it
// depends on which API answered.
func wechatError(we *wechat.Error) *apiError {
	switch {
	case we.Code == wechat.CodeBusy:
		return &apiError{status: http.StatusServiceUnavailable, code: "unavailable", message: "WeChat is busy; retry shortly", retryAfter: retryAfterBusy}
	case we.Misconfigured():
		return &apiError{status: http.StatusInternalServerError, code: "misconfigured", message: fmt.Sprintf("the login service is misconfigured (WeChat errcode %d); tell its operator", we.Code)}
	}
	switch we.API {
	case wechat.APICode2Session:
		switch we.Code {
		case wechat.CodeInvalidCode, wechat.CodeCodeUsed:
			return &apiError{status: http.StatusUnauthorized, code: "invalid_code", message: "the login code is invalid or already used; call wx.login() again"}
		case wechat.CodeHighRisk:
			return &apiError{status: http.StatusForbidden, code: "user_blocked", message: "WeChat blocked this login as high-risk"}
		case wechat.CodeRateLimited:
			return &apiError{status: http.StatusTooManyRequests, code: "rate_limited", message: "WeChat's login rate limit was reached; retry in a minute", retryAfter: retryAfterRate}
		}
	case wechat.APIPhoneNumber:
		switch we.Code {
		case wechat.CodeInvalidCode:
			return &apiError{status: http.StatusUnauthorized, code: "invalid_code", message: "the phone code is invalid, expired or already used; ask the user again"}
		case wechat.CodeRateLimited:
			return &apiError{status: http.StatusTooManyRequests, code: "rate_limited", message: "WeChat's phone-number rate limit was reached; retry in a minute", retryAfter: retryAfterRate}
		}
	case wechat.APIStableToken:
		switch we.Code {
		case wechat.CodeQuotaReached, wechat.CodeRateLimited:
			return &apiError{status: http.StatusServiceUnavailable, code: "unavailable", message: "WeChat's access_token quota was reached; retry in a minute", retryAfter: retryAfterRate}
		}
	}
	return &apiError{status: http.StatusBadGateway, code: "upstream_error", message: fmt.Sprintf("WeChat answered with errcode %d", we.Code)}
}

// resultOf is the result label of an outcome: ok, or the error code.
func resultOf(err error) string {
	if err == nil {
		return "ok"
	}
	return clientError(err).code
}

// writeError answers with err as the SPEC's JSON error, hands err to the
// request log, and returns the error code it answered with.
func writeError(w http.ResponseWriter, err error) string {
	ae := clientError(err)
	if l, ok := w.(*loggedResponse); ok {
		l.err = err
	}
	h := w.Header()
	if ae.retryAfter != "" {
		h.Set("Retry-After", ae.retryAfter)
	}
	if ae.allow != "" {
		h.Set("Allow", ae.allow)
	}
	if ae.challenge != "" {
		h.Set("WWW-Authenticate", ae.challenge)
	}
	encode(w, ae.status, errorBody{Error: ae.code, Message: ae.message})
	return ae.code
}

// webError is a web login's failure as the request log records it: the
// result it was answered with, and the detail.
type webError struct {
	result string
	err    error
}

func (e *webError) Error() string { return e.result + ": " + e.err.Error() }
func (e *webError) Unwrap() error { return e.err }

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

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

// loggedResponse records what the request log needs to know.
type loggedResponse struct {
	http.ResponseWriter
	status int
	err    error // what writeError answered with
}

func (l *loggedResponse) WriteHeader(status int) {
	if l.status == 0 {
		l.status = status
	}
	l.ResponseWriter.WriteHeader(status)
}

func (l *loggedResponse) Write(b []byte) (int, error) {
	if l.status == 0 {
		l.status = http.StatusOK
	}
	return l.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (l *loggedResponse) Unwrap() http.ResponseWriter { return l.ResponseWriter }
