package oidc

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"wxlogin/internal/wechat"
)

// TestCallbackChecks: without the cookie of this login, or past its 10
// minutes, or with another state, the callback is a page and WeChat is
// never asked.
func TestCallbackChecks(t *testing.T) {
	t.Parallel()
	other := newFixture(t, withKeys(keyFile(t, "es", "rsa"))) // another first key
	for _, tt := range []struct {
		name  string
		after time.Duration // on the clock before the callback
		query func(st started) url.Values
		cook  func(st started, f *fixture) string
		clear bool // the page clears the cookie
	}{
		{"no cookie", 0, okQuery, func(started, *fixture) string { return "" }, false},
		{"garbage cookie", 0, okQuery, func(started, *fixture) string { return "not-a-sealed-request" }, true},
		{"cookie of another key file", 0, okQuery, func(st started, _ *fixture) string {
			return other.authorize(t, authQuery(confID, confRedirect), desktopUA).cookie
		}, true},
		{"cookie changed", 0, okQuery, func(st started, _ *fixture) string { return flipChar(st.cookie, 20) }, true},
		{"cookie cut", 0, okQuery, func(st started, _ *fixture) string { return st.cookie[:len(st.cookie)-2] }, true},
		{"a code as the cookie", 0, okQuery, func(st started, f *fixture) string { return f.p.code.seal(testGrant) }, true},
		{"expired: 601 s", 601 * time.Second, okQuery, sameCookie, true},
		{"expired: a day", 24 * time.Hour, okQuery, sameCookie, true},
		{"another state", 0, func(st started) url.Values { return values("code", "wxcode", "state", flipChar(st.wxState, 3)) }, sameCookie, false},
		{"no state", 0, func(st started) url.Values { return values("code", "wxcode") }, sameCookie, false},
		{"empty state", 0, func(st started) url.Values { return values("code", "wxcode", "state", "") }, sameCookie, false},
		{"state in upper case", 0, func(st started) url.Values { return values("code", "wxcode", "state", strings.ToUpper(st.wxState)) }, sameCookie, false},
		{"state twice", 0, func(st started) url.Values { return values("code", "wxcode", "state", st.wxState, "state", st.wxState) }, sameCookie, false},
		{"state twice, the other first", 0, func(st started) url.Values { return values("code", "wxcode", "state", "x", "state", st.wxState) }, sameCookie, false},
		{"the client's state", 0, func(st started) url.Values { return values("code", "wxcode", "state", "client-state-1") }, sameCookie, false},
		{"no state, no code", 0, func(st started) url.Values { return url.Values{} }, sameCookie, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			st := f.authorize(t, authQuery(confID, confRedirect), desktopUA)
			f.clock.Add(tt.after)
			pl, s := f.p.Callback(tt.query(st), tt.cook(st, f))
			if pl != nil || s.Problem != ProblemExpired || s.Location != "" || s.Cookie != "" || s.Result != string(ProblemExpired) || s.Err == nil {
				t.Fatalf("Callback(%s) = %v, %+v; want the %s page with a reason for the log", tt.name, pl != nil, s, ProblemExpired)
			}
			if s.ClearCookie != tt.clear {
				t.Errorf("Callback(%s) ClearCookie = %v, want %v", tt.name, s.ClearCookie, tt.clear)
			}
			if n := len(f.wx.Calls()); n != 0 {
				t.Errorf("Callback(%s): WeChat received %d calls, want 0", tt.name, n)
			}
			for _, secret := range []string{st.cookie, st.wxState, "client-state-1"} {
				if strings.Contains(s.Err.Error(), secret) {
					t.Errorf("Callback(%s) error %q holds the cookie or a state", tt.name, s.Err)
				}
			}
		})
	}
}

func okQuery(st started) url.Values            { return values("code", "wxcode", "state", st.wxState) }
func sameCookie(st started, _ *fixture) string { return st.cookie }

// flipChar changes the i-th character of a base64url or hex string to
// another of both alphabets.
func flipChar(s string, i int) string {
	c := byte('0')
	if s[i] == '0' {
		c = '1'
	}
	return s[:i] + string(c) + s[i+1:]
}

// TestCallbackExpiry: the cookie serves 10 minutes, to the second.
func TestCallbackExpiry(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		after time.Duration
		ok    bool
	}{
		{0, true},
		{599 * time.Second, true},
		{600 * time.Second, true},
		{601 * time.Second, false},
	} {
		f := newFixture(t)
		st := f.authorize(t, authQuery(confID, confRedirect), desktopUA)
		f.clock.Add(tt.after)
		pl, s := f.p.Callback(okQuery(st), st.cookie)
		if (pl != nil) != tt.ok || !tt.ok && s.Problem != ProblemExpired {
			t.Errorf("Callback %v after /authorize = %v, %+v; want passed %v", tt.after, pl != nil, s, tt.ok)
		}
	}
}

// TestCallbackNoCode: WeChat comes back without a code when the user
// declines: access_denied to the client, with its state; a code given
// twice or too long is malformed. WeChat is not asked.
func TestCallbackNoCode(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		query func(st started) url.Values
		code  string
	}{
		{"no code", func(st started) url.Values { return values("state", st.wxState) }, "access_denied"},
		{"empty code", func(st started) url.Values { return values("state", st.wxState, "code", "") }, "access_denied"},
		{"code twice", func(st started) url.Values { return values("state", st.wxState, "code", "a", "code", "b") }, "invalid_request"},
		{"code too long", func(st started) url.Values { return values("state", st.wxState, "code", strings.Repeat("c", 513)) }, "invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			st := f.authorize(t, authQuery(confID, confRedirect2), desktopUA)
			pl, s := f.p.Callback(tt.query(st), st.cookie)
			if pl != nil || s.Problem != "" || !s.ClearCookie || s.Result != tt.code {
				t.Fatalf("Callback(%s) = %v, %+v; want a redirect with %s, clearing the cookie", tt.name, pl != nil, s, tt.code)
			}
			checkRedirect(t, s.Location, confRedirect2, map[string]string{"error": tt.code, "state": "client-state-1", "iss": testIssuer})
			if n := len(f.wx.Calls()); n != 0 {
				t.Errorf("WeChat received %d calls, want 0", n)
			}
		})
	}
	// A 512-character code passes.
	f := newFixture(t)
	st := f.authorize(t, authQuery(confID, confRedirect), desktopUA)
	if pl, s := f.p.Callback(values("state", st.wxState, "code", strings.Repeat("c", 512)), st.cookie); pl == nil {
		t.Errorf("Callback(a code of 512 characters) = %+v, want the exchange", s)
	}
}

// checkRedirect checks that location is base with exactly the query
// members of base and want added (want's error_description, if absent
// from want, must be present when error is).
func checkRedirect(t testing.TB, location, base string, want map[string]string) {
	t.Helper()
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	if !strings.HasPrefix(location, base+sep) {
		t.Fatalf("Location = %q, want %s%s…", location, base, sep)
	}
	got := queryOf(t, location)
	baseQuery := queryOf(t, base)
	n := len(baseQuery) + len(want)
	for k, v := range baseQuery {
		if got.Get(k) != v[0] {
			t.Errorf("Location %q lost the redirect_uri's %s=%s", location, k, v[0])
		}
	}
	for k, v := range want {
		if got.Get(k) != v || len(got[k]) != 1 {
			t.Errorf("Location %q: %s = %q, want %q once", location, k, got[k], v)
		}
	}
	if _, ok := want["error"]; ok {
		if _, ok := want["error_description"]; !ok {
			n++
			if got.Get("error_description") == "" {
				t.Errorf("Location %q has no error_description", location)
			}
		}
	}
	if len(got) != n {
		t.Errorf("Location %q has %d query members, want %d", location, len(got), n)
	}
}

// TestExchangeErrors: each answer of WeChat's code exchange, and what the
// client is told: access_denied for a code WeChat refuses, server_error
// for our own setup, temporarily_unavailable for the rest.
func TestExchangeErrors(t *testing.T) {
	t.Parallel()
	answerCode := func(errcode int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			// WeChat's errmsg may echo what it was sent: none of it may
			// reach an error.
			q := r.URL.Query()
			wechat.Answer(w, map[string]any{"errcode": errcode, "errmsg": "bad code " + q.Get("code") + " for secret " + q.Get("secret")})
		}
	}
	tests := []struct {
		name   string
		answer http.HandlerFunc
		code   string // the OAuth error
		calls  int    // to WeChat
	}{
		{"40029 invalid code", answerCode(wechat.CodeInvalidCode), "access_denied", 1},
		{"40163 code used", answerCode(wechat.CodeCodeUsed), "access_denied", 1},
		{"42003 code expired", answerCode(wechat.CodeCodeExpired), "access_denied", 1},
		{"-1 busy, after retries", answerCode(wechat.CodeBusy), "temporarily_unavailable", 3},
		{"45011 rate limited", answerCode(wechat.CodeRateLimited), "temporarily_unavailable", 1},
		{"40226 high risk", answerCode(wechat.CodeHighRisk), "temporarily_unavailable", 1},
		{"45009 quota", answerCode(wechat.CodeQuotaReached), "temporarily_unavailable", 1},
		{"an unknown errcode", answerCode(99999), "temporarily_unavailable", 1},
		{"errcode as a string", func(w http.ResponseWriter, r *http.Request) {
			wechat.Answer(w, map[string]any{"errcode": "40029", "errmsg": "invalid code"})
		}, "access_denied", 1},
		{"HTTP 500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", http.StatusInternalServerError) }, "temporarily_unavailable", 1},
		{"HTTP 302", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://evil.example.com/", http.StatusFound)
		}, "temporarily_unavailable", 1},
		{"garbage", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>gateway</html>")) }, "temporarily_unavailable", 1},
		{"empty answer", func(w http.ResponseWriter, r *http.Request) {}, "temporarily_unavailable", 1},
		{"no openid", func(w http.ResponseWriter, r *http.Request) {
			wechat.Answer(w, map[string]any{"access_token": "at", "unionid": "uUnion", "scope": "snsapi_login"})
		}, "temporarily_unavailable", 1},
		{"OpenID in another case", func(w http.ResponseWriter, r *http.Request) {
			wechat.Answer(w, map[string]any{"OpenID": "oOpen", "unionid": "uUnion"})
		}, "temporarily_unavailable", 1},
		{"snapshot user", func(w http.ResponseWriter, r *http.Request) {
			wechat.Answer(w, map[string]any{"openid": "oOpen", "unionid": "uUnion", "is_snapshotuser": 1})
		}, "access_denied", 1},
		{"no unionid", func(w http.ResponseWriter, r *http.Request) {
			wechat.Answer(w, map[string]any{"openid": "oOpen", "scope": "snsapi_login"})
		}, "access_denied", 1},
		{"empty unionid", func(w http.ResponseWriter, r *http.Request) {
			wechat.Answer(w, map[string]any{"openid": "oOpen", "unionid": ""})
		}, "access_denied", 1},
	}
	for _, code := range []int{wechat.CodeInvalidGrantType, wechat.CodeInvalidAppID, wechat.CodeInvalidSecret, wechat.CodeIPNotAllowed,
		wechat.CodeAppIDMissing, wechat.CodeSecretMissing, wechat.CodeUnauthorized, wechat.CodeIPConfirmPending} {
		tests = append(tests, struct {
			name   string
			answer http.HandlerFunc
			code   string
			calls  int
		}{"misconfigured " + strconv.Itoa(code), answerCode(code), "server_error", 1})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.wx.Intercept(wechat.OAuthTokenPath, tt.answer)
			const wxCode = "wxcode-0123456789-secretish"
			s := f.callback(t, f.authorize(t, authQuery(confID, confRedirect), desktopUA), wxCode)
			if s.Result != tt.code || !s.ClearCookie || s.Problem != "" || s.Err == nil {
				t.Fatalf("Exchange(%s) = %+v; want a redirect with %s, clearing the cookie, and the reason for the log", tt.name, s, tt.code)
			}
			checkRedirect(t, s.Location, confRedirect, map[string]string{"error": tt.code, "state": "client-state-1", "iss": testIssuer})
			if n := len(f.wx.CallsTo(wechat.OAuthTokenPath)); n != tt.calls {
				t.Errorf("Exchange(%s): WeChat received %d calls, want %d", tt.name, n, tt.calls)
			}
			for _, secret := range []string{wxCode, webSecret, "client-state-1", "client-nonce-1"} {
				if strings.Contains(s.Err.Error(), secret) || strings.Contains(s.Location, secret) && secret != "client-state-1" {
					t.Errorf("Exchange(%s): %q or the Location holds %q", tt.name, s.Err, secret)
				}
			}
		})
	}
}

// TestExchangeTimeout: WeChat not answering within the client's timeout
// is temporarily_unavailable, in about that time.
func TestExchangeTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withTimeout(150*time.Millisecond))
	f.wx.Intercept(wechat.OAuthTokenPath, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	start := time.Now()
	s := f.callback(t, f.authorize(t, authQuery(confID, confRedirect), desktopUA), "wxcode-slow")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Exchange took %v, want about the 150 ms timeout", d)
	}
	if s.Result != "temporarily_unavailable" || !errors.Is(s.Err, context.DeadlineExceeded) {
		t.Errorf("Exchange(no answer) = %+v (%v); want temporarily_unavailable for a deadline", s, s.Err)
	}
	checkRedirect(t, s.Location, confRedirect, map[string]string{"error": "temporarily_unavailable", "state": "client-state-1", "iss": testIssuer})
}

// TestExchangeMockUsers: the fake WeChat's snapshot user and app without
// unionid are refused.
func TestExchangeMockUsers(t *testing.T) {
	t.Parallel()
	for _, code := range []string{wechat.MockSnapshot, wechat.MockNoUnionID, wechat.MockInvalid, wechat.MockUsed} {
		f := newFixture(t)
		s := f.callback(t, f.authorize(t, authQuery(confID, confRedirect), desktopUA), code)
		if s.Result != "access_denied" {
			t.Errorf("Exchange(%s) = %+v, want access_denied", code, s)
		}
		checkRedirect(t, s.Location, confRedirect, map[string]string{"error": "access_denied", "state": "client-state-1", "iss": testIssuer})
	}
}

// TestExchangeRequest: what WeChat receives, for the website app and for
// the official account: GET sns/oauth2/access_token with the app's appid
// and secret, the code as it came, and grant_type.
func TestExchangeRequest(t *testing.T) {
	t.Parallel()
	const wxCode = "0a1B/c+d=e&f?g h%"
	for _, tt := range []struct {
		ua, appID, secret string
	}{
		{desktopUA, webAppID, webSecret},
		{wechatUA, oaAppID, oaSecret},
	} {
		f := newFixture(t)
		st := f.authorize(t, authQuery(confID, confRedirect), tt.ua)
		s := f.callback(t, st, wxCode)
		if s.Result != "ok" {
			t.Fatalf("Exchange = %+v (%v), want ok", s, s.Err)
		}
		calls := f.wx.Calls()
		if len(calls) != 1 {
			t.Fatalf("WeChat received %d calls, want 1", len(calls))
		}
		c := calls[0]
		want := url.Values{"appid": {tt.appID}, "secret": {tt.secret}, "code": {wxCode}, "grant_type": {"authorization_code"}}
		if c.Method != http.MethodGet || c.Path != wechat.OAuthTokenPath || !equalValues(c.Query, want) || len(c.Body) != 0 {
			t.Errorf("WeChat received %s %s %v (body %q); want GET %s %v", c.Method, c.Path, c.Query, c.Body, wechat.OAuthTokenPath, want)
		}
		g := openCode(t, f.p, queryOf(t, s.Location).Get("code"))
		if g.AppID != tt.appID || g.OpenID != wechat.MockOpenID(tt.appID, wxCode) || g.UnionID != wechat.MockUnionID(wxCode) {
			t.Errorf("the code = %+v; want the user of %s", g, tt.appID)
		}
	}
}

func equalValues(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if len(v) != 1 || len(b[k]) != 1 || v[0] != b[k][0] {
			return false
		}
	}
	return true
}

// TestExchangeSuccess: the browser goes back to the redirect_uri, its
// query kept, with our code, the client's state and iss; the code holds
// who logged in, for which client and request, until 60 s on.
func TestExchangeSuccess(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	q := authQuery(confID, confRedirect2, "state", "a&b=c d", "nonce", "n-1", "code_challenge", rfcChallenge, "code_challenge_method", "S256")
	st := f.authorize(t, q, desktopUA)
	f.clock.Add(42 * time.Second) // the user at WeChat
	s := f.callback(t, st, "wxcode-ok")
	if s.Result != "ok" || !s.ClearCookie || s.Problem != "" || s.Cookie != "" || s.Err != nil {
		t.Fatalf("Exchange = %+v; want a redirect with our code, clearing the cookie", s)
	}
	code := queryOf(t, s.Location).Get("code")
	checkRedirect(t, s.Location, confRedirect2, map[string]string{"code": code, "state": "a&b=c d", "iss": testIssuer})
	if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(code) {
		t.Errorf("our code %q is not base64url", code)
	}
	now := testNow.Add(42 * time.Second).Unix()
	g := openCode(t, f.p, code)
	want := grant{ID: g.ID, UnionID: wechat.MockUnionID("wxcode-ok"), OpenID: wechat.MockOpenID(webAppID, "wxcode-ok"), AppID: webAppID,
		ClientID: confID, RedirectURI: confRedirect2, Nonce: "n-1", Challenge: rfcChallenge, AuthTime: now, Exp: now + 60}
	if g != want || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(g.ID) {
		t.Errorf("the code = %+v,\nwant %+v with a 32-hex id", g, want)
	}
	for _, clear := range []string{want.UnionID, want.OpenID, webAppID, "wxcode-ok"} {
		if strings.Contains(s.Location, clear) {
			t.Errorf("the Location shows %q", clear)
		}
	}

	// Without a state, none is added.
	s = f.callback(t, f.authorize(t, authQuery(confID, confRedirect, "state", ""), desktopUA), "wxcode-ok2")
	checkRedirect(t, s.Location, confRedirect, map[string]string{"code": queryOf(t, s.Location).Get("code"), "iss": testIssuer})
	// Two logins, two codes of their own.
	if c2 := openCode(t, f.p, queryOf(t, s.Location).Get("code")); c2.ID == g.ID {
		t.Errorf("two codes with the id %s", g.ID)
	}
}
