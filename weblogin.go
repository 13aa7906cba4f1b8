package main

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"wxlogin/internal/oidc"
	"wxlogin/internal/token"
)

// The web login's endpoints (OpenID Connect): /authorize and /callback
// speak to a browser, with redirects and small pages; /token and /userinfo
// to the client's server, with OAuth's JSON.

// maxTokenForm bounds a token request's body: a code, a code_verifier, a
// redirect_uri and client credentials fit well within it.
const maxTokenForm = 8 << 10

var errWebLoginOff = &apiError{status: http.StatusNotFound, code: "not_found",
	message: "the web login is off: set OIDC_CLIENTS_FILE (with TOKEN_ISSUER and TOKEN_KEY_FILE) to turn it on"}

// handleAuthorize serves GET /authorize: the client sends the browser
// here to log in.
func (s *server) handleAuthorize() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.m.web("authorize", writeError(w, methodNotAllowed("GET, HEAD")))
			return
		}
		step := s.web.Authorize(r.URL.Query(), r.UserAgent())
		s.m.web("authorize", step.Result)
		s.answerStep(w, r, step)
	})
}

// handleCallback serves GET /callback, where WeChat sends the browser
// back: the checks that need nothing of WeChat, RATE_LIMIT and
// MAX_INFLIGHT, then the exchange of WeChat's code.
func (s *server) handleCallback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet { // a HEAD would spend WeChat's code
			s.m.web("callback", writeError(w, methodNotAllowed(http.MethodGet)))
			return
		}
		cookie := ""
		if c, err := r.Cookie(oidc.CookieName); err == nil {
			cookie = c.Value
		}
		pending, step := s.web.Callback(r.URL.Query(), cookie)
		if pending == nil {
			s.m.web("callback", step.Result)
			s.answerStep(w, r, step)
			return
		}
		// Beyond a limit the cookie stays: a reload tries again.
		if err := s.limitClient(r); err != nil {
			ae := clientError(err)
			w.Header().Set("Retry-After", ae.retryAfter)
			s.logError(w, err)
			writePage(w, r, ae.status, "rate_limited", "")
			s.m.web("callback", ae.code)
			return
		}
		if !s.inflight.enter() {
			w.Header().Set("Retry-After", retryAfterBusy)
			s.logError(w, errOverload)
			writePage(w, r, errOverload.status, "unavailable", "")
			s.m.web("callback", errOverload.code)
			return
		}
		step = s.web.Exchange(r.Context(), pending)
		s.inflight.leave()
		s.m.web("callback", step.Result)
		s.answerStep(w, r, step)
	})
}

// answerStep answers a browser step of the web login: a redirect or a
// page, with the cookie set or cleared.
func (s *server) answerStep(w http.ResponseWriter, r *http.Request, step oidc.Step) {
	cookie := &http.Cookie{Name: oidc.CookieName, Path: s.web.CookiePath(), HttpOnly: true, Secure: s.web.SecureCookie(), SameSite: http.SameSiteLaxMode}
	switch {
	case step.Cookie != "":
		cookie.Value, cookie.MaxAge = step.Cookie, int(oidc.RequestTTL/time.Second)
		http.SetCookie(w, cookie)
	case step.ClearCookie:
		cookie.MaxAge = -1 // Max-Age=0 on the wire: delete it
		http.SetCookie(w, cookie)
	}
	if step.Err != nil {
		s.logError(w, &webError{result: step.Result, err: step.Err})
	}
	switch {
	case step.Location != "":
		w.Header()["Cache-Control"] = noStore
		w.Header()["Referrer-Policy"] = []string{"no-referrer"}
		http.Redirect(w, r, step.Location, http.StatusFound)
	case step.Continue != "":
		writePage(w, r, http.StatusOK, "continue", step.Continue)
	default:
		writePage(w, r, http.StatusBadRequest, string(step.Problem), "")
	}
}

// logError hands err to the request log without answering with it.
func (s *server) logError(w http.ResponseWriter, err error) {
	if l, ok := w.(*loggedResponse); ok {
		l.err = err
	}
}

// handleToken serves POST /token: the client's server redeems the code.
func (s *server) handleToken() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(e *oidc.TokenError) {
			s.m.web("token", e.Code)
			s.logError(w, &webError{result: e.Code, err: e})
			if e.BasicTried && e.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="wxlogin"`)
			}
			writeOAuthError(w, e.Status, e.Code, e.Description)
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			fail(&oidc.TokenError{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Description: "use POST"})
			return
		}
		form, err := readForm(w, r)
		if err != nil {
			fail(&oidc.TokenError{Status: http.StatusBadRequest, Code: "invalid_request", Description: err.Error()})
			return
		}
		// The limit comes before client authentication, so that a client
		// secret cannot be guessed faster than RATE_LIMIT allows.
		if err := s.limitClient(r); err != nil {
			ae := clientError(err)
			w.Header().Set("Retry-After", ae.retryAfter)
			fail(&oidc.TokenError{Status: ae.status, Code: ae.code, Description: ae.message})
			return
		}
		grant, terr := s.web.TokenRequest(form, r.Header.Get("Authorization"))
		if terr != nil {
			fail(terr)
			return
		}
		resp, terr := s.web.Redeem(grant)
		if terr != nil {
			fail(terr)
			return
		}
		w.Header()["Pragma"] = []string{"no-cache"}
		encode(w, http.StatusOK, resp)
		s.m.web("token", "ok")
	})
}

// readForm reads a token request's body: application/x-www-form-urlencoded,
// at most maxTokenForm bytes.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errors.New("send the parameters as application/x-www-form-urlencoded")
	}
	limitBodyWait(w, r)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTokenForm))
	if err != nil {
		return nil, errors.New("the body is over " + strconv.Itoa(maxTokenForm) + " bytes, or could not be read")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errors.New("the form is malformed")
	}
	return form, nil
}

// writeOAuthError answers with OAuth's error JSON (RFC 6749 §5.2).
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	w.Header()["Pragma"] = []string{"no-cache"}
	encode(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, description})
}

// handleUserInfo serves GET and POST /userinfo: who the access token's
// user is.
func (s *server) handleUserInfo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodHead {
			s.m.web("userinfo", writeError(w, methodNotAllowed("GET, HEAD, POST")))
			return
		}
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		var info oidc.UserInfo
		var err error = errNoToken
		if strings.EqualFold(scheme, "Bearer") {
			if info, err = s.web.UserInfo(strings.TrimSpace(tok)); err == nil {
				encode(w, http.StatusOK, info)
				s.m.web("userinfo", "ok")
				return
			}
		}
		s.logError(w, &webError{result: "invalid_token", err: err})
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "send an access token from /token as Authorization: Bearer")
		s.m.web("userinfo", "invalid_token")
	})
}

// discovery is the OpenID Provider Metadata: the JWKS's, and with the web
// login on, its endpoints and what they support.
func discovery(tok *token.Set, web *oidc.Provider) []byte {
	d, ok := tok.Discovery()
	if !ok {
		return nil
	}
	if web != nil {
		d.AuthorizationEndpoint = web.Endpoint("/authorize")
		d.TokenEndpoint = web.Endpoint("/token")
		d.UserinfoEndpoint = web.Endpoint("/userinfo")
		d.ResponseTypes = []string{"code"}
		d.ResponseModes = []string{"query"}
		d.GrantTypes = []string{"authorization_code"}
		d.TokenAuthMethods = []string{"client_secret_basic", "client_secret_post", "none"}
		d.CodeChallengeMethods = []string{"S256"}
		d.Scopes = []string{"openid"}
		d.Claims = append(d.Claims, "appid", "auth_time", "nonce")
		d.IssParameter = true
	}
	b, _ := json.Marshal(d)
	return b
}
