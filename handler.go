package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Limits on what a client may send.
const (
	maxBodyBytes   = 4 << 10
	maxCodeLen     = 128
	maxRequestID   = 64
	retryAfterBusy = "1"
	retryAfterRate = "60" // WeChat's quota is per minute
)

// newServer builds the whole HTTP API. Every dependency is an argument, so
// a test can build a complete server in one line; tok is nil when tokens
// are off.
func newServer(logger *slog.Logger, wx *wxClient, tok *tokens, m *metrics, maxInflight int) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/openid", handleOpenID(wx, tok, m, maxInflight))
	mux.Handle("/session", getOrHead(handleSession(tok)))
	mux.Handle("/healthz", getOrHead(handleHealthz()))
	mux.Handle("/metrics", getOrHead(handleMetrics(m)))
	mux.Handle("/", handleNotFound())
	return logRequests(logger, mux)
}

// apiError is what a client is told: a status, a stable code from the
// SPEC's table and a sentence. Detail for operators goes to the log.
type apiError struct {
	status  int
	code    string
	message string
	allow   string // the Allow header of a 405
	// challenge is the WWW-Authenticate header of a 401 for a token.
	challenge string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

var (
	errNotFound  = &apiError{status: http.StatusNotFound, code: "not_found", message: "no such endpoint; see POST /openid"}
	errOverload  = &apiError{status: http.StatusServiceUnavailable, code: "unavailable", message: "too many logins in flight; retry shortly"}
	errTooLarge  = &apiError{status: http.StatusRequestEntityTooLarge, code: "request_too_large", message: "the request body is over 4 KiB"}
	errMediaType = &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", message: "send the code as application/json, e.g. {\"code\":\"...\"}"}
)

// Token failures. A request without any credentials gets a challenge with
// no error attribute (RFC 6750 §3.1); a bad token gets error="invalid_token".
var (
	errNoToken  = &apiError{status: http.StatusUnauthorized, code: "invalid_token", message: "send the login token as Authorization: Bearer <token>", challenge: "Bearer"}
	errBadToken = &apiError{status: http.StatusUnauthorized, code: "invalid_token", message: "the token is malformed, tampered with or expired; log in again", challenge: `Bearer error="invalid_token"`}
)

func methodNotAllowed(allow string) *apiError {
	return &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", message: "use " + allow, allow: allow}
}

func invalidRequest(message string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid_request", message: message}
}

// clientError maps any error to what the client sees. WeChat's own errmsg
// and transport details never reach the client.
func clientError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	if errors.Is(err, errInvalidToken) {
		return errBadToken
	}
	var we *WxError
	if errors.As(err, &we) {
		switch we.Code {
		case 40029, 40163:
			return &apiError{status: http.StatusUnauthorized, code: "invalid_code", message: "the login code is invalid or already used; call wx.login() again"}
		case 40226:
			return &apiError{status: http.StatusForbidden, code: "user_blocked", message: "WeChat blocked this login as high-risk"}
		case 45011:
			return &apiError{status: http.StatusTooManyRequests, code: "rate_limited", message: "WeChat's login rate limit was reached; retry in a minute"}
		case errcodeBusy:
			return &apiError{status: http.StatusServiceUnavailable, code: "unavailable", message: "WeChat is busy; retry shortly"}
		case 40002, 40013, 40125, 40164, 41002, 41004, 48001:
			return &apiError{status: http.StatusInternalServerError, code: "misconfigured", message: fmt.Sprintf("the login service is misconfigured (WeChat errcode %d); tell its operator", we.Code)}
		}
		return &apiError{status: http.StatusBadGateway, code: "upstream_error", message: fmt.Sprintf("WeChat answered with errcode %d", we.Code)}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &apiError{status: http.StatusGatewayTimeout, code: "upstream_timeout", message: "WeChat did not answer in time"}
	}
	return &apiError{status: http.StatusBadGateway, code: "upstream_error", message: "could not get a valid answer from WeChat"}
}

// writeError answers with err as the SPEC's JSON error, hands err to the
// request log, and returns the error code it answered with.
func writeError(w http.ResponseWriter, err error) string {
	ae := clientError(err)
	if l, ok := w.(*loggedResponse); ok {
		l.err = err
	}
	h := w.Header()
	switch ae.code {
	case "rate_limited":
		h.Set("Retry-After", retryAfterRate)
	case "unavailable":
		h.Set("Retry-After", retryAfterBusy)
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

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// Header values shared by every JSON answer. net/http only reads them, so
// one slice each serves all requests without an allocation.
var (
	jsonContentType = []string{"application/json; charset=utf-8"}
	noStore         = []string{"no-store"}
	newline         = []byte{'\n'}
)

// encode writes v as the JSON answer. Headers are set before WriteHeader,
// after which net/http ignores them; net/http adds Content-Length itself
// for a body this small.
func encode(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own fixed types reach here; this is a programming error.
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	w.WriteHeader(status)
	w.Write(b)
	w.Write(newline)
}

type loginRequest struct {
	Code string `json:"code"`
}

type loginResponse struct {
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
	Token     string `json:"token,omitempty"`
	ExpiresIn int64  `json:"expires_in,omitempty"` // seconds
}

// handleOpenID serves POST /openid: checks the request in the SPEC's order
// (method, Content-Type, size, body), then the in-flight limit, then asks
// WeChat.
func handleOpenID(wx *wxClient, tok *tokens, m *metrics, maxInflight int) http.Handler {
	fail := func(w http.ResponseWriter, err error) { m.login(writeError(w, err)) }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			fail(w, methodNotAllowed(http.MethodPost))
			return
		}
		code, err := decodeCode(w, r)
		if err != nil {
			fail(w, err)
			return
		}
		if m.inflight.Add(1) > int64(maxInflight) {
			m.inflight.Add(-1)
			fail(w, errOverload)
			return
		}
		s, err := wx.code2Session(r.Context(), code)
		m.inflight.Add(-1)
		if err != nil {
			fail(w, err)
			return
		}
		resp := loginResponse{OpenID: s.OpenID, UnionID: s.UnionID}
		if tok != nil {
			if resp.Token, err = tok.sign(s); err != nil {
				fail(w, err)
				return
			}
			resp.ExpiresIn = int64(tok.ttl / time.Second)
		}
		encode(w, http.StatusOK, resp)
		m.login("ok")
	})
}

type sessionResponse struct {
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
	ExpiresAt int64  `json:"expires_at"` // unix seconds
}

// handleSession serves GET /session: it verifies a login token, for a
// gateway (nginx auth_request, Traefik forwardAuth) that then passes
// X-Openid on to the app. With tokens off it does not exist.
func handleSession(tok *tokens) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok == nil {
			writeError(w, errNotFound)
			return
		}
		auth := r.Header.Get("Authorization")
		if auth == "" {
			writeError(w, errNoToken)
			return
		}
		scheme, token, _ := strings.Cut(auth, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			writeError(w, invalidToken("not a Bearer token"))
			return
		}
		c, err := tok.verify(strings.TrimSpace(token))
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("X-Openid", c.Sub)
		if c.UnionID != "" {
			w.Header().Set("X-Unionid", c.UnionID)
		}
		encode(w, http.StatusOK, sessionResponse{OpenID: c.Sub, UnionID: c.UnionID, ExpiresAt: c.Exp})
	})
}

// decodeCode reads the login code from a JSON body (or, for curl -d, a form)
// and checks it before it goes anywhere near WeChat.
func decodeCode(w http.ResponseWriter, r *http.Request) (string, error) {
	form := false
	// "application/json" exactly is what wx.request sends: skip the parse.
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
			return "", errMediaType
		}
		switch mt {
		case "application/json":
		case "application/x-www-form-urlencoded":
			form = true
		default:
			return "", errMediaType
		}
	}
	if r.ContentLength > maxBodyBytes {
		return "", errTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return "", errTooLarge
		}
		return "", invalidRequest("could not read the request body")
	}
	var code string
	// curl -d sends a form Content-Type even for a JSON body; a body that is
	// plainly a JSON object is read as JSON, whatever the form header says.
	if form && !isObject(body) {
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return "", invalidRequest("the form body is malformed")
		}
		code = v.Get("code")
	} else {
		var req loginRequest
		if err := json.Unmarshal(body, &req); err != nil || !isObject(body) {
			return "", invalidRequest(`the body must be one JSON object like {"code":"..."}`)
		}
		code = req.Code
	}
	return code, checkCode(code)
}

// isObject reports whether body starts like a JSON object. It also tells a
// JSON null, which json.Unmarshal quietly accepts for a struct, from an
// object.
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

// checkCode enforces the SPEC's shape of a wx.login() code: 1–128 of
// A-Z a-z 0-9 - _.
func checkCode(code string) error {
	switch {
	case code == "":
		return invalidRequest("code is required: send the code from wx.login()")
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

func handleHealthz() http.Handler {
	type status struct {
		Status string `json:"status"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, status{"ok"})
	})
}

// getOrHead answers methods other than GET and HEAD with the SPEC's 405.
func getOrHead(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, methodNotAllowed("GET, HEAD"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func handleNotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errNotFound)
	})
}

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

// logRequests gives every answer an X-Request-Id and logs one line per
// request. It never logs a body, a query or an Authorization header, so the
// code and tokens stay out of the log.
func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = rand.Text()
		}
		w.Header().Set("X-Request-Id", id)
		lw := &loggedResponse{ResponseWriter: w}
		next.ServeHTTP(lw, r)

		level := slog.LevelInfo
		switch {
		case r.URL.Path == "/healthz" || r.URL.Path == "/metrics":
			level = slog.LevelDebug
		case lw.status == http.StatusInternalServerError:
			level = slog.LevelError
		case lw.status >= 500:
			level = slog.LevelWarn
		}
		ctx := r.Context()
		if !logger.Enabled(ctx, level) {
			return
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", lw.status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("request_id", id),
			slog.String("remote", r.RemoteAddr),
		}
		if lw.err != nil {
			if code := errcodeOf(lw.err); code != 0 {
				attrs = append(attrs, slog.Int("errcode", code))
			}
			ae := clientError(lw.err)
			attrs = append(attrs, slog.String("error", ae.code))
			if ae != lw.err {
				attrs = append(attrs, slog.String("detail", lw.err.Error())) // what went wrong upstream
			}
		}
		logger.LogAttrs(ctx, level, "request", attrs...)
	})
}

// validRequestID accepts a client's id of 1–64 characters from
// A-Z a-z 0-9 . _ - (UUIDs included).
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c != '.' && !isCodeChar(c) {
			return false
		}
	}
	return true
}
