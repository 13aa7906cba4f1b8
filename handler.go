package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Limits on what a client may send.
const (
	maxBodyBytes   = 4 << 10
	maxCodeLen     = 128
	maxRequestID   = 64
	retryAfterBusy = "1"
	retryAfterRate = "60" // WeChat's quotas are per minute
)

// server is the whole HTTP API. Every dependency is given to newServer, so
// a test builds a complete server in one line.
type server struct {
	wx          *wxClient
	tok         *tokens // nil: tokens off
	access      *accessTokens
	m           *metrics
	apps        []string // configured AppIDs, in order
	maxInflight int64
	rateLimit   *limiter[netip.Addr] // per client address; nil: off
	phoneLimit  *limiter[[2]string]  // per AppID and openid; nil: off
	proxies     []netip.Prefix
	draining    atomic.Bool // set on SIGTERM: /healthz answers 503
	handler     http.Handler
}

// newServer builds the API from the configuration and its dependencies;
// tok is nil when tokens are off.
func newServer(cfg Config, logger *slog.Logger, wx *wxClient, tok *tokens, m *metrics) *server {
	s := &server{
		wx: wx, tok: tok, m: m, apps: cfg.appIDs(),
		access:      newAccessTokens(wx, time.Now),
		maxInflight: int64(cfg.MaxInflight),
		rateLimit:   newLimiter[netip.Addr](cfg.RateLimit, limiterCap, time.Now),
		phoneLimit:  newLimiter[[2]string](cfg.PhoneLimit, limiterCap, time.Now),
		proxies:     cfg.TrustedProxies,
	}
	s.access.result = m.stableToken

	mux := http.NewServeMux()
	mux.Handle("/openid", s.handleOpenID())
	mux.Handle("/phonenumber", s.handlePhoneNumber())
	mux.Handle("/session", getOrHead(s.handleSession()))
	mux.Handle("/.well-known/jwks.json", getOrHead(handleJWKS(tok)))
	mux.Handle("/.well-known/openid-configuration", getOrHead(handleDiscovery(tok)))
	mux.Handle("/healthz", getOrHead(s.handleHealthz()))
	mux.Handle("/metrics", getOrHead(handleMetrics(m)))
	mux.Handle("/", handleNotFound())
	s.handler = logRequests(logger, s.proxies, mux)
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// drain makes /healthz answer 503, so load balancers stop sending new
// requests, while everything else is still served.
func (s *server) drain() { s.draining.Store(true) }

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

var (
	errNotFound  = &apiError{status: http.StatusNotFound, code: "not_found", message: "no such endpoint; see POST /openid"}
	errOverload  = &apiError{status: http.StatusServiceUnavailable, code: "unavailable", message: "too many requests in flight; retry shortly", retryAfter: retryAfterBusy}
	errTooLarge  = &apiError{status: http.StatusRequestEntityTooLarge, code: "request_too_large", message: "the request body is over 4 KiB"}
	errMediaType = &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", message: "send the code as application/json, e.g. {\"code\":\"...\"}"}
	errNoApp     = invalidRequest(`several mini-programs are configured: send "appid" in the body (or the X-WX-APPID header)`)
	errUnknown   = &apiError{status: http.StatusBadRequest, code: "unknown_app", message: "this AppID is not configured on the login service"}
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

func rateLimited(message string, wait time.Duration) *apiError {
	return &apiError{status: http.StatusTooManyRequests, code: "rate_limited", message: message,
		retryAfter: strconv.Itoa(retryAfterSeconds(wait))}
}

// The errcodes that mean our own setup is wrong (SPEC §7, §9).
func misconfiguredCode(api string, code int) bool {
	switch code {
	case 40002, 40013, 40125, 40164, 41002, 41004:
		return true
	case 48001:
		return api == apiCode2Session || api == apiPhoneNumber
	case 89503:
		return api != apiCode2Session
	}
	return false
}

// clientError maps any error to what the client sees. WeChat's own errmsg
// and transport details never reach the client.
func clientError(err error) *apiError {
	if ae, ok := errors.AsType[*apiError](err); ok {
		return ae
	}
	if errors.Is(err, errInvalidToken) {
		return errBadToken
	}
	if we, ok := errors.AsType[*WxError](err); ok {
		return wechatError(we)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &apiError{status: http.StatusGatewayTimeout, code: "upstream_timeout", message: "WeChat did not answer in time"}
	}
	return &apiError{status: http.StatusBadGateway, code: "upstream_error", message: "could not get a valid answer from WeChat"}
}

// wechatError is the table from WeChat's errcodes to our answers; it
// depends on which API answered.
func wechatError(we *WxError) *apiError {
	switch {
	case we.Code == errcodeBusy:
		return &apiError{status: http.StatusServiceUnavailable, code: "unavailable", message: "WeChat is busy; retry shortly", retryAfter: retryAfterBusy}
	case misconfiguredCode(we.API, we.Code):
		return &apiError{status: http.StatusInternalServerError, code: "misconfigured", message: fmt.Sprintf("the login service is misconfigured (WeChat errcode %d); tell its operator", we.Code)}
	}
	switch we.API {
	case apiCode2Session:
		switch we.Code {
		case 40029, 40163:
			return &apiError{status: http.StatusUnauthorized, code: "invalid_code", message: "the login code is invalid or already used; call wx.login() again"}
		case 40226:
			return &apiError{status: http.StatusForbidden, code: "user_blocked", message: "WeChat blocked this login as high-risk"}
		case 45011:
			return &apiError{status: http.StatusTooManyRequests, code: "rate_limited", message: "WeChat's login rate limit was reached; retry in a minute", retryAfter: retryAfterRate}
		}
	case apiPhoneNumber:
		switch we.Code {
		case 40029:
			return &apiError{status: http.StatusUnauthorized, code: "invalid_code", message: "the phone code is invalid, expired or already used; ask the user again"}
		case 45011:
			return &apiError{status: http.StatusTooManyRequests, code: "rate_limited", message: "WeChat's phone-number rate limit was reached; retry in a minute", retryAfter: retryAfterRate}
		}
	case apiStableToken:
		switch we.Code {
		case 45009, 45011:
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

// codeRequest is the body of POST /openid and POST /phonenumber.
type codeRequest struct {
	Code  string `json:"code"`
	AppID string `json:"appid"` // /openid, with several mini-programs
}

type loginResponse struct {
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
	Token     string `json:"token,omitempty"`
	ExpiresIn int64  `json:"expires_in,omitempty"` // seconds
}

// handleOpenID serves POST /openid: checks the request in the SPEC's order
// (method, Content-Type, size, body, app, rate limit, in-flight limit),
// then asks WeChat.
func (s *server) handleOpenID() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app := ""
		fail := func(err error) { s.m.login(app, writeError(w, err)) }
		if r.Method != http.MethodPost {
			fail(methodNotAllowed(http.MethodPost))
			return
		}
		req, err := decodeCode(w, r)
		if err != nil {
			fail(err)
			return
		}
		if app, err = s.chooseApp(req.AppID, r); err != nil {
			fail(err)
			return
		}
		if err := s.limitClient(r); err != nil {
			fail(err)
			return
		}
		if !s.enter() {
			fail(errOverload)
			return
		}
		sess, err := s.wx.code2Session(r.Context(), app, req.Code)
		s.leave()
		if err != nil {
			fail(err)
			return
		}
		resp := loginResponse{OpenID: sess.OpenID, UnionID: sess.UnionID}
		if s.tok != nil {
			if resp.Token, err = s.tok.sign(identity{OpenID: sess.OpenID, UnionID: sess.UnionID, AppID: app}); err != nil {
				fail(err)
				return
			}
			resp.ExpiresIn = int64(s.tok.ttl / time.Second)
		}
		encode(w, http.StatusOK, resp)
		s.m.login(app, "ok")
	})
}

// enter takes a MAX_INFLIGHT slot, or reports that none is free.
func (s *server) enter() bool {
	if s.m.inflight.Add(1) > s.maxInflight {
		s.m.inflight.Add(-1)
		return false
	}
	return true
}

func (s *server) leave() { s.m.inflight.Add(-1) }

// limitClient applies RATE_LIMIT to the request's client address.
func (s *server) limitClient(r *http.Request) error {
	if s.rateLimit == nil {
		return nil
	}
	if ok, wait := s.rateLimit.allow(clientAddr(r, s.proxies)); !ok {
		return rateLimited("too many requests from this address; retry later", wait)
	}
	return nil
}

// chooseApp picks the mini-program a login is for, first match wins: the
// body's appid, the X-WX-APPID header, the Referer WeChat sets on
// wx.request, the only AppID configured.
func (s *server) chooseApp(fromBody string, r *http.Request) (string, error) {
	named := fromBody
	if named == "" {
		named = strings.TrimSpace(r.Header.Get("X-Wx-Appid")) // X-WX-APPID, in canonical form
	}
	if named == "" {
		named = refererAppID(r.Header.Get("Referer"), s.apps)
	}
	if named == "" {
		if len(s.apps) == 1 {
			return s.apps[0], nil
		}
		return "", errNoApp
	}
	for _, a := range s.apps {
		if a == named {
			return a, nil
		}
	}
	return "", errUnknown
}

// refererAppID reads the AppID from the Referer WeChat sets on wx.request,
// https://servicewechat.com/{appid}/{version}/page-frame.html, where the
// version is 0 (develop), a number, or devtools. A Referer of another
// shape, or one whose AppID is neither configured nor shaped like a real
// one (the devtools' touristappid), names nothing.
func refererAppID(ref string, apps []string) string {
	rest, ok := strings.CutPrefix(ref, "https://servicewechat.com/")
	if !ok {
		return ""
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[2] != "page-frame.html" || (parts[1] != "devtools" && !isDigits(parts[1])) {
		return ""
	}
	for _, a := range apps {
		if a == parts[0] {
			return a
		}
	}
	if isAppID(parts[0]) {
		return parts[0]
	}
	return ""
}

// bearer verifies the request's login token.
func (s *server) bearer(r *http.Request) (identity, error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return identity{}, errNoToken
	}
	scheme, token, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return identity{}, invalidToken("not a Bearer token")
	}
	return s.tok.verify(strings.TrimSpace(token))
}

type sessionResponse struct {
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
	AppID     string `json:"appid"`
	Phone     string `json:"phone_number,omitempty"`
	ExpiresAt int64  `json:"expires_at"` // unix seconds
}

// handleSession serves GET /session: it verifies a login token, for a
// gateway (nginx auth_request, Traefik forwardAuth) that then passes
// X-Openid on to the app. With tokens off it does not exist.
func (s *server) handleSession() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.tok == nil {
			writeError(w, errNotFound)
			return
		}
		id, err := s.bearer(r)
		if err != nil {
			writeError(w, err)
			return
		}
		h := w.Header()
		h["X-Openid"] = []string{id.OpenID}
		h["X-Appid"] = []string{id.AppID}
		if id.UnionID != "" {
			h["X-Unionid"] = []string{id.UnionID}
		}
		if id.Phone != "" {
			h["X-Phone-Number"] = []string{id.Phone}
		}
		encode(w, http.StatusOK, sessionResponse{OpenID: id.OpenID, UnionID: id.UnionID, AppID: id.AppID, Phone: id.Phone, ExpiresAt: id.Exp})
	})
}

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
	} else if err := json.Unmarshal(body, &req); err != nil || !isObject(body) {
		return codeRequest{}, invalidRequest(`the body must be one JSON object like {"code":"..."}`)
	}
	return req, checkCode(req.Code)
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

func (s *server) handleHealthz() http.Handler {
	type status struct {
		Status string `json:"status"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			encode(w, http.StatusServiceUnavailable, status{"draining"})
			return
		}
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
// request. It never logs a body, a query or an Authorization header, so
// codes, tokens and phone numbers stay out of the log.
func logRequests(logger *slog.Logger, proxies []netip.Prefix, next http.Handler) http.Handler {
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
		case r.URL.Path == "/session" && lw.status == http.StatusOK:
			level = slog.LevelDebug // behind a gateway, every API call comes here
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
		if len(proxies) > 0 {
			if c := clientAddr(r, proxies); c != clientAddr(r, nil) {
				attrs = append(attrs, slog.String("client", c.String()))
			}
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
