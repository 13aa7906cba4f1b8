package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"wxlogin/internal/oidc"
	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// The web login end to end: a browser (a cookie jar that shows every
// redirect), the fake WeChat's pages and APIs, and a client's server
// redeeming the code, all over real HTTP.

func TestWebLoginWebsiteApp(t *testing.T) {
	t.Parallel()
	now := time.Now().Truncate(time.Second)
	s := webService(t, withClock(fixedClock(now)))
	jwks := publicKeys(t, s.URL)
	ks := s.cfg.KeyFile // rsa1, ec
	post := func(id, secret string) func(url.Values) string {
		return func(f url.Values) string { f.Set("client_id", id); f.Set("client_secret", secret); return "" }
	}
	tests := []struct {
		name, client, redirect string
		pkce                   bool
		auth                   func(form url.Values) string // adds client authentication, returns Authorization
		idAlg, idKid           string
	}{
		{"client_secret_basic with PKCE", shopClient, shopRedirect, true,
			func(url.Values) string { return basicAuth(shopClient, shopSecret) }, "RS256", ks[0].ID()},
		{"client_secret_post", shopClient, shopRedirect, false, post(shopClient, shopSecret), "RS256", ks[0].ID()},
		{"client_secret_post, ES256 id_token", esClient, esRedirect, false, post(esClient, esSecret), "ES256", ks[1].ID()},
		{"client_secret_basic, client_id form-encoded", esClient, esRedirect, false,
			func(url.Values) string { return basicAuth(esClient, esSecret) }, "ES256", ks[1].ID()},
		{"public client with PKCE", spaClient, spaRedirect, true,
			func(f url.Values) string { f.Set("client_id", spaClient); return "" }, "RS256", ks[0].ID()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newWebBrowser()
			verifier, challenge := pkcePair()
			q := authParams(tt.client, tt.redirect)
			if tt.pkce {
				q.Set("code_challenge", challenge)
				q.Set("code_challenge_method", "S256")
			}

			// /authorize: to WeChat's QR-code page, the request sealed in the cookie.
			a := b.get(t, authorizeURL(s.URL, q))
			if a.status != http.StatusFound || a.location == nil {
				t.Fatalf("GET /authorize = %d %s, want 302", a.status, a.body)
			}
			wxState := a.location.Query().Get("state")
			want := s.wechatURL() + "/connect/qrconnect?appid=" + testWebAppID + "&redirect_uri=" + url.QueryEscape(s.URL+"/callback") +
				"&response_type=code&scope=snsapi_login&state=" + wxState + "#wechat_redirect"
			if a.location.String() != want || !hex32RE.MatchString(wxState) || wxState == q.Get("state") {
				t.Errorf("GET /authorize Location = %s,\nwant %s with a fresh state of 32 hex digits", a.location, want)
			}
			c, raw := a.setCookie(t)
			if c == nil || c.Path != "/callback" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.MaxAge != 600 {
				t.Fatalf("GET /authorize Set-Cookie = %q, want %s with Path=/callback, HttpOnly, SameSite=Lax, Max-Age=600, not Secure", raw, oidc.CookieName)
			}
			for _, v := range []string{q.Get("state"), q.Get("nonce"), challenge, wxState, tt.client} {
				if strings.Contains(c.Value, v) {
					t.Errorf("the cookie shows %q: it must be sealed", v)
				}
			}
			if cc := a.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("GET /authorize Cache-Control = %q, want no-store", cc)
			}

			// WeChat sends the browser back with its code and our state.
			cb := b.atWeChat(t, a.location)
			wxCode := cb.Query().Get("code")

			// /callback: WeChat asked, the browser back at the client with our code.
			a = b.get(t, cb.String())
			back := backAtClient(t, a, tt.redirect)
			wantBack(t, back, s.URL, q.Get("state"), "")
			wantCookieCleared(t, a, "/callback")
			if v := b.cookieNow(t, s.URL+"/callback"); v != "" {
				t.Errorf("the browser still has the cookie after a completed callback")
			}
			calls := oauthCalls(s.wechat, wxCode)
			wantQuery := url.Values{"appid": {testWebAppID}, "secret": {testWebSecret}, "code": {wxCode}, "grant_type": {"authorization_code"}}
			if len(calls) != 1 || calls[0].Method != http.MethodGet || !reflect.DeepEqual(calls[0].Query, wantQuery) {
				t.Fatalf("the fake received %d sns/oauth2/access_token calls for the code: %+v, want one GET with %v", len(calls), calls, wantQuery)
			}
			code := back.Get("code")
			if strings.Contains(code, wxCode) {
				t.Errorf("our code shows WeChat's")
			}

			// /token: the client's server redeems the code.
			form := codeForm(code, tt.redirect)
			if tt.pkce {
				form.Set("code_verifier", verifier)
			}
			access, id := wantTokens(t, redeem(t, s.URL, form, tt.auth(form)))

			unionID, openID := wechat.MockUnionID(wxCode), wechat.MockOpenID(testWebAppID, wxCode)
			h, claims := verifyJWT(t, id, jwks)
			if h["alg"] != tt.idAlg || h["kid"] != tt.idKid || h["typ"] != "JWT" {
				t.Errorf("id_token header = %v, want alg %s, kid %s, typ JWT", h, tt.idAlg, tt.idKid)
			}
			wantID := map[string]any{"iss": s.URL, "sub": unionID, "aud": tt.client, "iat": float64(now.Unix()), "exp": float64(now.Unix() + 7200),
				"auth_time": float64(now.Unix()), "nonce": q.Get("nonce"), "openid": openID, "appid": testWebAppID}
			if !reflect.DeepEqual(claims, wantID) {
				t.Errorf("id_token claims = %v,\nwant %v", claims, wantID)
			}
			h, claims = verifyJWT(t, access, jwks)
			wantAccess := map[string]any{"iss": s.URL, "sub": unionID, "aud": tt.client, "iat": float64(now.Unix()), "exp": float64(now.Unix() + 7200),
				"openid": openID, "unionid": unionID, "appid": testWebAppID, "scope": "openid"}
			if h["alg"] != "RS256" || h["kid"] != ks[0].ID() || !reflect.DeepEqual(claims, wantAccess) {
				t.Errorf("access_token = %v %v,\nwant RS256 with the first key and %v", h, claims, wantAccess)
			}

			// The access token: /userinfo and /session accept it, /phonenumber does not.
			wantInfo := map[string]any{"sub": unionID, "unionid": unionID, "openid": openID, "appid": testWebAppID}
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				if a := do(t, bearerRequest(method, s.URL+"/userinfo", access)); a.status != 200 || !reflect.DeepEqual(a.body, wantInfo) {
					t.Errorf("%s /userinfo = %d %s, want 200 %v", method, a.status, a.raw, wantInfo)
				}
			}
			sa := do(t, bearerRequest(http.MethodGet, s.URL+"/session", access))
			wantSession := map[string]any{"openid": openID, "unionid": unionID, "appid": testWebAppID, "client_id": tt.client, "expires_at": float64(now.Unix() + 7200)}
			if sa.status != 200 || !reflect.DeepEqual(sa.body, wantSession) {
				t.Errorf("GET /session = %d %s, want 200 %v", sa.status, sa.raw, wantSession)
			}
			for k, v := range map[string]string{"X-Client-Id": tt.client, "X-Openid": openID, "X-Unionid": unionID, "X-Appid": testWebAppID} {
				if got := sa.header.Get(k); got != v {
					t.Errorf("GET /session %s = %q, want %q", k, got, v)
				}
			}
			wantError(t, s.phoneWith(t, access), 401, "invalid_token")

			// The id_token is no access token.
			ua := do(t, bearerRequest(http.MethodGet, s.URL+"/userinfo", id))
			wantOAuthError(t, ua, 401, "invalid_token")
			if ch := ua.header.Get("WWW-Authenticate"); ch != `Bearer error="invalid_token"` {
				t.Errorf("/userinfo with the id_token: WWW-Authenticate = %q", ch)
			}
			wantError(t, do(t, bearerRequest(http.MethodGet, s.URL+"/session", id)), 401, "invalid_token")
		})
	}
}

// wechatURL is the fake WeChat's URL: it serves the authorization pages
// too.
func (s *testService) wechatURL() string { return s.cfg.BaseURL }

// phoneWith POSTs a phone code to /phonenumber with tok.
func (s *testService) phoneWith(t testing.TB, tok string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/phonenumber", strings.NewReader(`{"code":"phone-code-1"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	return do(t, req)
}

func TestWebLoginOfficialAccount(t *testing.T) {
	t.Parallel()
	t.Run("inside WeChat", func(t *testing.T) {
		t.Parallel()
		s := webService(t)
		b := newWebBrowser("User-Agent", wechatUA)
		q := authParams(shopClient, shopRedirect)
		a := b.get(t, authorizeURL(s.URL, q))
		wantPage(t, a, 200, "en", "Log in with WeChat")
		link := pageLink(t, a)
		u, err := url.Parse(link)
		if err != nil {
			t.Fatal(err)
		}
		wxState := u.Query().Get("state")
		if want := wechatPageURL(s.wechatURL(), wechat.OAAuthorizePath, testOAAppID, s.URL, "snsapi_userinfo", wxState); link != want || !hex32RE.MatchString(wxState) {
			t.Errorf("Continue link = %s,\nwant %s with a state of 32 hex digits", link, want)
		}
		if !strings.Contains(a.body, ">Continue with WeChat</a>") {
			t.Errorf("the page has no Continue with WeChat button:\n%s", a.body)
		}
		if c, raw := a.setCookie(t); c == nil || c.Path != "/callback" || c.MaxAge != 600 || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("Set-Cookie = %q, want the login cookie", raw)
		}

		cb := b.atWeChat(t, u)
		wxCode := cb.Query().Get("code")
		back := backAtClient(t, b.get(t, cb.String()), shopRedirect)
		wantBack(t, back, s.URL, q.Get("state"), "")
		calls := oauthCalls(s.wechat, wxCode)
		if len(calls) != 1 || calls[0].Query.Get("appid") != testOAAppID || calls[0].Query.Get("secret") != testOASecret {
			t.Fatalf("the fake received %+v, want one call with the official account's AppID and secret", calls)
		}
		access, id := wantTokens(t, redeem(t, s.URL, codeForm(back.Get("code"), shopRedirect), basicAuth(shopClient, shopSecret)))
		_, claims := verifyJWT(t, id, publicKeys(t, s.URL))
		if claims["appid"] != testOAAppID || claims["openid"] != wechat.MockOpenID(testOAAppID, wxCode) || claims["sub"] != wechat.MockUnionID(wxCode) || claims["nonce"] != q.Get("nonce") {
			t.Errorf("id_token claims = %v, want the official account's openid and the unionid of %q", claims, wxCode)
		}
		if a := do(t, bearerRequest(http.MethodGet, s.URL+"/userinfo", access)); a.status != 200 || a.str("appid") != testOAAppID {
			t.Errorf("GET /userinfo = %d %s, want the official account's user", a.status, a.raw)
		}
	})
	t.Run("official account only", func(t *testing.T) {
		t.Parallel()
		s := webService(t, withConfig(func(c *Config) { c.WebApp = wechat.App{} }))
		a := newWebBrowser().get(t, authorizeURL(s.URL, authParams(shopClient, shopRedirect)))
		wantPage(t, a, 400, "en", "Open this link in WeChat")
		wantNoCookie(t, a)
		wantWebCounts(t, s, map[string]float64{webSeries("authorize", "open_in_wechat"): 1})
		if strings.Contains(a.body, "href=") {
			t.Errorf("the open-in-WeChat page has a link:\n%s", a.body)
		}
		a = newWebBrowser("User-Agent", wechatUA).get(t, authorizeURL(s.URL, authParams(shopClient, shopRedirect)))
		wantPage(t, a, 200, "en", "Log in with WeChat")
	})
	t.Run("website app only, inside WeChat", func(t *testing.T) {
		t.Parallel()
		s := webService(t, withConfig(func(c *Config) { c.OAApp = wechat.App{} }))
		newWebBrowser("User-Agent", wechatUA).startLogin(t, s, authParams(shopClient, shopRedirect)) // the QR-code page
	})
}

func TestWebLoginPageLanguage(t *testing.T) {
	t.Parallel()
	s := webService(t)
	oaOnly := webService(t, withConfig(func(c *Config) { c.WebApp = wechat.App{} }))
	pages := []struct {
		name   string
		url    string
		ua     string
		status int
		en, zh string
	}{
		{"unknown client", authorizeURL(s.URL, authParams("nobody", shopRedirect)), desktopUA, 400, "Unknown application", "未知的应用"},
		{"unregistered redirect_uri", authorizeURL(s.URL, authParams(shopClient, "https://evil.example/cb")), desktopUA, 400, "Login link is not valid", "登录链接无效"},
		{"continue", authorizeURL(s.URL, authParams(shopClient, shopRedirect)), wechatUA, 200, "Log in with WeChat", "微信登录"},
		{"login expired", callbackURL(s.URL, "c", "0123456789abcdef0123456789abcdef"), desktopUA, 400, "This login expired", "登录已失效"},
		{"open in WeChat", authorizeURL(oaOnly.URL, authParams(shopClient, shopRedirect)), desktopUA, 400, "Open this link in WeChat", "请在微信中打开"},
	}
	langs := []struct{ accept, lang string }{
		{"zh-CN,zh;q=0.9,en;q=0.8", "zh"},
		{"en-US,en;q=0.9,zh;q=0.8", "en"},
		{"", "en"},
		{"en;q=0.5, zh-TW", "zh"},
	}
	for _, p := range pages {
		for _, l := range langs {
			t.Run(p.name+"/"+l.accept, func(t *testing.T) {
				t.Parallel()
				b := newWebBrowser("User-Agent", p.ua)
				if l.accept != "" {
					b.header.Set("Accept-Language", l.accept)
				}
				title := p.en
				if l.lang == "zh" {
					title = p.zh
				}
				wantPage(t, b.get(t, p.url), p.status, l.lang, title)
			})
		}
	}
}

func TestWebLoginCookie(t *testing.T) {
	t.Parallel()
	t.Run("https issuer: Secure", func(t *testing.T) {
		t.Parallel()
		s := webService(t, withConfig(func(c *Config) { c.TokenIssuer = "https://login.example.com" }))
		a := newWebBrowser().get(t, authorizeURL(s.URL, authParams(shopClient, shopRedirect)))
		c, raw := a.setCookie(t)
		if c == nil || !c.Secure || c.Path != "/callback" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.MaxAge != 600 {
			t.Errorf("Set-Cookie = %q, want Secure, Path=/callback, HttpOnly, SameSite=Lax, Max-Age=600", raw)
		}
		if a.location == nil || a.location.Query().Get("redirect_uri") != "https://login.example.com/callback" {
			t.Errorf("Location = %v, want redirect_uri https://login.example.com/callback", a.location)
		}
	})
	t.Run("issuer with a path, behind a proxy", func(t *testing.T) {
		t.Parallel()
		// A reverse proxy serves wxlogin under /auth: the routes stay at
		// /callback, the issuer (and so the cookie and WeChat's
		// redirect_uri) says /auth/callback.
		proxy := httptest.NewUnstartedServer(nil)
		issuer := "http://" + proxy.Listener.Addr().String() + "/auth"
		s := webService(t, withConfig(func(c *Config) { c.TokenIssuer = issuer }))
		target, _ := url.Parse(s.URL)
		proxy.Config.Handler = &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.URL.Path, r.Out.URL.RawPath = strings.TrimPrefix(r.In.URL.Path, "/auth"), ""
		}}
		proxy.Start()
		t.Cleanup(proxy.Close)

		b := newWebBrowser()
		q := authParams(shopClient, shopRedirect)
		a := b.get(t, authorizeURL(issuer, q))
		if a.status != http.StatusFound || a.location == nil {
			t.Fatalf("GET /auth/authorize = %d %s, want 302", a.status, a.body)
		}
		if want := wechatPageURL(s.wechatURL(), wechat.QRConnectPath, testWebAppID, issuer, "snsapi_login", a.location.Query().Get("state")); a.location.String() != want {
			t.Errorf("Location = %s, want %s", a.location, want)
		}
		if c, raw := a.setCookie(t); c == nil || c.Path != "/auth/callback" || c.Secure {
			t.Fatalf("Set-Cookie = %q, want Path=/auth/callback, not Secure", raw)
		}
		cb := b.atWeChat(t, a.location)
		if want := issuer + "/callback"; !strings.HasPrefix(cb.String(), want+"?") {
			t.Fatalf("WeChat sent the browser to %s, want %s", cb, want)
		}
		a = b.get(t, cb.String())
		back := backAtClient(t, a, shopRedirect)
		wantBack(t, back, issuer, q.Get("state"), "")
		wantCookieCleared(t, a, "/auth/callback")
		_, id := wantTokens(t, redeem(t, issuer, codeForm(back.Get("code"), shopRedirect), basicAuth(shopClient, shopSecret)))
		if _, claims := verifyJWT(t, id, publicKeys(t, issuer)); claims["iss"] != issuer {
			t.Errorf("id_token iss = %v, want %s", claims["iss"], issuer)
		}
	})
}

func TestWebLoginCallbackRefusesBeforeWeChat(t *testing.T) {
	t.Parallel()
	s := webService(t)
	noCall := func(t *testing.T, wxCode string) {
		t.Helper()
		if n := len(oauthCalls(s.wechat, wxCode)); n != 0 {
			t.Errorf("the fake received %d sns/oauth2/access_token calls for %q, want none", n, wxCode)
		}
	}
	expired := func(t *testing.T, a webAnswer) {
		t.Helper()
		wantPage(t, a, 400, "en", "This login expired")
	}
	t.Run("no cookie", func(t *testing.T) {
		t.Parallel()
		a := newWebBrowser().get(t, callbackURL(s.URL, "wx-nocookie", "0123456789abcdef0123456789abcdef"))
		expired(t, a)
		wantNoCookie(t, a)
		noCall(t, "wx-nocookie")
	})
	tampered := map[string]func(string) string{
		"one character changed": func(v string) string {
			i := len(v) / 2
			c := byte('A')
			if v[i] == 'A' {
				c = 'B'
			}
			return v[:i] + string(c) + v[i+1:]
		},
		"truncated":     func(v string) string { return v[:len(v)-4] },
		"not base64url": func(v string) string { return v + "%%" },
	}
	for name, tamper := range tampered {
		t.Run("tampered cookie: "+name, func(t *testing.T) {
			t.Parallel()
			b := newWebBrowser()
			_, state := b.startLogin(t, s, authParams(shopClient, shopRedirect))
			cookie := b.cookieNow(t, s.URL+"/callback")
			wx := "wx-tampered-" + rand.Text()
			a := newWebBrowser().do(t, http.MethodGet, callbackURL(s.URL, wx, state), http.Header{"Cookie": {oidc.CookieName + "=" + tamper(cookie)}})
			expired(t, a)
			wantCookieCleared(t, a, "/callback")
			noCall(t, wx)
		})
	}
	t.Run("our code as the cookie", func(t *testing.T) {
		t.Parallel()
		b := newWebBrowser()
		code, _ := b.loginCode(t, s, authParams(shopClient, shopRedirect))
		_, state := b.startLogin(t, s, authParams(shopClient, shopRedirect))
		wx := "wx-codecookie"
		a := newWebBrowser().do(t, http.MethodGet, callbackURL(s.URL, wx, state), http.Header{"Cookie": {oidc.CookieName + "=" + code}})
		expired(t, a)
		noCall(t, wx)
	})
	t.Run("wrong state", func(t *testing.T) {
		t.Parallel()
		b := newWebBrowser()
		_, state := b.startLogin(t, s, authParams(shopClient, shopRedirect))
		other := strings.Repeat("0", 32)
		if other == state {
			other = strings.Repeat("1", 32)
		}
		a := b.get(t, callbackURL(s.URL, "wx-wrongstate", other))
		expired(t, a)
		wantNoCookie(t, a) // it may be another login's callback: this one's cookie stays
		noCall(t, "wx-wrongstate")
		a = b.get(t, s.URL+"/callback?code=wx-twostates&state="+state+"&state="+state)
		expired(t, a)
		noCall(t, "wx-twostates")
		// The login still completes with its own state.
		back := backAtClient(t, b.get(t, callbackURL(s.URL, "wx-rightstate", state)), shopRedirect)
		if back.Get("code") == "" {
			t.Errorf("the login with its own state failed: %v", back)
		}
	})
	t.Run("user declined", func(t *testing.T) {
		t.Parallel()
		b := newWebBrowser()
		q := authParams(shopClient, shopRedirect)
		_, state := b.startLogin(t, s, q)
		a := b.get(t, callbackURL(s.URL, "", state))
		wantBack(t, backAtClient(t, a, shopRedirect), s.URL, q.Get("state"), "access_denied")
		wantCookieCleared(t, a, "/callback")
	})
	t.Run("reused callback URL", func(t *testing.T) {
		t.Parallel()
		b := newWebBrowser()
		page, _ := b.startLogin(t, s, authParams(shopClient, shopRedirect))
		cb := b.atWeChat(t, page)
		backAtClient(t, b.get(t, cb.String()), shopRedirect)
		a := b.get(t, cb.String()) // the cookie is gone
		expired(t, a)
		if n := len(oauthCalls(s.wechat, cb.Query().Get("code"))); n != 1 {
			t.Errorf("the fake received %d calls for the code, want 1: a reload must not ask WeChat again", n)
		}
	})
}

func TestWebLoginExpiry(t *testing.T) {
	t.Parallel()
	clock := newWebClock()
	s := webService(t, withClock(clock.Now))
	// Sequential: the clock is shared.
	t.Run("cookie at 10 minutes", func(t *testing.T) {
		b := newWebBrowser()
		_, state := b.startLogin(t, s, authParams(shopClient, shopRedirect))
		clock.advance(10 * time.Minute)
		backAtClient(t, b.get(t, callbackURL(s.URL, "wx-at10", state)), shopRedirect)
	})
	t.Run("cookie after 10 minutes", func(t *testing.T) {
		b := newWebBrowser()
		_, state := b.startLogin(t, s, authParams(shopClient, shopRedirect))
		clock.advance(10*time.Minute + time.Second)
		a := b.get(t, callbackURL(s.URL, "wx-after10", state))
		wantPage(t, a, 400, "en", "This login expired")
		wantCookieCleared(t, a, "/callback")
		if n := len(oauthCalls(s.wechat, "wx-after10")); n != 0 {
			t.Errorf("the fake received %d calls for an expired login, want none", n)
		}
	})
	t.Run("code at 60 s", func(t *testing.T) {
		code, _ := newWebBrowser().loginCode(t, s, authParams(shopClient, shopRedirect))
		clock.advance(60 * time.Second)
		wantTokens(t, redeem(t, s.URL, codeForm(code, shopRedirect), basicAuth(shopClient, shopSecret)))
	})
	t.Run("code after 60 s", func(t *testing.T) {
		code, _ := newWebBrowser().loginCode(t, s, authParams(shopClient, shopRedirect))
		clock.advance(61 * time.Second)
		wantOAuthError(t, redeem(t, s.URL, codeForm(code, shopRedirect), basicAuth(shopClient, shopSecret)), 400, "invalid_grant")
	})
}

func TestWebLoginWeChatErrors(t *testing.T) {
	t.Parallel()
	s := webService(t, withConfig(func(c *Config) { c.Timeout = 300 * time.Millisecond }))
	s.wechat.Intercept(wechat.OAuthTokenPath, func(w http.ResponseWriter, r *http.Request) {
		code := r.URL.Query().Get("code")
		switch code {
		case "garbage":
			wechatJSON(w, "<html>not json</html>")
		case "http502":
			http.Error(w, "bad gateway", http.StatusBadGateway)
		case "snapshot-with-unionid":
			wechatJSON(w, `{"access_token":"x","expires_in":7200,"openid":"o1","unionid":"u1","scope":"snsapi_userinfo","is_snapshotuser":1}`)
		case "no-openid":
			wechatJSON(w, `{"access_token":"x","expires_in":7200,"unionid":"u1","scope":"snsapi_login"}`)
		case "slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			n, err := strconv.Atoi(strings.TrimPrefix(code, "errcode"))
			if err != nil {
				http.Error(w, "unexpected code "+code, http.StatusTeapot)
				return
			}
			wechat.AnswerError(w, n)
		}
	})
	plain := webService(t) // the fake's own answers
	tests := []struct {
		s       *testService
		code    string
		want    string
		calls   int
		errcode int    // in the request log line
		level   string // of the request log line
	}{
		{s, "errcode40029", "access_denied", 1, 40029, "INFO"},
		{s, "errcode40163", "access_denied", 1, 40163, "INFO"},
		{s, "errcode42003", "access_denied", 1, 42003, "INFO"},
		{s, "errcode40125", "server_error", 1, 40125, "ERROR"},
		{s, "errcode40013", "server_error", 1, 40013, "ERROR"},
		{s, "errcode48001", "server_error", 1, 48001, "ERROR"},
		{s, "errcode-1", "temporarily_unavailable", 3, -1, "INFO"},
		{s, "errcode45011", "temporarily_unavailable", 1, 45011, "INFO"},
		{s, "errcode40226", "temporarily_unavailable", 1, 40226, "INFO"},
		{s, "garbage", "temporarily_unavailable", 1, 0, "INFO"},
		{s, "http502", "temporarily_unavailable", 1, 0, "INFO"},
		{s, "no-openid", "temporarily_unavailable", 1, 0, "INFO"},
		{s, "slow", "temporarily_unavailable", 1, 0, "INFO"},
		{s, "snapshot-with-unionid", "access_denied", 1, 0, "INFO"},
		{plain, wechat.MockSnapshot, "access_denied", 1, 0, "INFO"},
		{plain, wechat.MockNoUnionID, "access_denied", 1, 0, "INFO"},
		{plain, wechat.MockInvalid, "access_denied", 1, 40029, "INFO"},
		{plain, wechat.MockBusy, "temporarily_unavailable", 3, -1, "INFO"},
	}
	t.Run("codes", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.code, func(t *testing.T) {
				t.Parallel()
				b := newWebBrowser()
				q := authParams(shopClient, shopRedirect)
				a := b.loginWithCode(t, tt.s, q, tt.code)
				wantBack(t, backAtClient(t, a, shopRedirect), tt.s.URL, q.Get("state"), tt.want)
				wantCookieCleared(t, a, "/callback")
				if n := len(oauthCalls(tt.s.wechat, tt.code)); n != tt.calls {
					t.Errorf("the fake received %d calls for %q, want %d", n, tt.code, tt.calls)
				}
				line := logLineOf(t, tt.s, a.header.Get("X-Request-Id"))
				if line["level"] != tt.level || line["error"] != tt.want || line["status"] != float64(302) || line["path"] != "/callback" {
					t.Errorf("request log line = %v, want level %s, error %s, status 302", line, tt.level, tt.want)
				}
				if got, _ := line["errcode"].(float64); int(got) != tt.errcode {
					t.Errorf("request log errcode = %v, want %d", line["errcode"], tt.errcode)
				}
			})
		}
	})
	// Every outcome counted once, under its result.
	for _, svc := range []*testService{s, plain} {
		want := map[string]float64{webSeries("callback", "ok"): 0}
		for _, tt := range tests {
			if tt.s == svc {
				want[webSeries("authorize", "ok")]++
				want[webSeries("callback", tt.want)]++
			}
		}
		wantWebCounts(t, svc, want)
	}
}

// logLineOf is the request log line of the answer with this X-Request-Id.
func logLineOf(t testing.TB, s *testService, id string) map[string]any {
	t.Helper()
	var found map[string]any
	for _, l := range s.logs.lines(t) {
		if l["request_id"] == id && l["msg"] == "request" {
			if found != nil {
				t.Fatalf("two request log lines for %s", id)
			}
			found = l
		}
	}
	if found == nil {
		t.Fatalf("no request log line for %s in:\n%s", id, s.logs)
	}
	return found
}

func TestWebLoginTokenErrors(t *testing.T) {
	t.Parallel()
	s := webService(t)
	basic := basicAuth(shopClient, shopSecret)
	newCode := func(t *testing.T, client, redirect string, kv ...string) string {
		t.Helper()
		code, _ := newWebBrowser().loginCode(t, s, authParams(client, redirect, kv...))
		return code
	}
	post := func(t *testing.T, contentType, body, authorization string) answer {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/token", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		return do(t, req)
	}
	wantChallenge := func(t *testing.T, a answer, want string) {
		t.Helper()
		if got := a.header.Get("WWW-Authenticate"); got != want {
			t.Errorf("WWW-Authenticate = %q, want %q", got, want)
		}
	}
	form := func(code string, kv ...string) string { return codeForm(code, shopRedirect, kv...).Encode() }
	const formType = "application/x-www-form-urlencoded"

	t.Run("GET", func(t *testing.T) {
		t.Parallel()
		a := do(t, mustRequest(http.MethodGet, s.URL+"/token"))
		wantOAuthError(t, a, 405, "invalid_request")
		if a.header.Get("Allow") != "POST" {
			t.Errorf("GET /token Allow = %q, want POST", a.header.Get("Allow"))
		}
	})
	t.Run("JSON body", func(t *testing.T) {
		t.Parallel()
		body, _ := json.Marshal(map[string]string{"grant_type": "authorization_code", "code": "x", "redirect_uri": shopRedirect})
		wantOAuthError(t, post(t, "application/json", string(body), basic), 400, "invalid_request")
	})
	t.Run("parameter twice", func(t *testing.T) {
		t.Parallel()
		code := newCode(t, shopClient, shopRedirect)
		wantOAuthError(t, post(t, formType, form(code)+"&code="+url.QueryEscape(code), basic), 400, "invalid_request")
		wantOAuthError(t, post(t, formType, form(code)+"&grant_type=authorization_code", basic), 400, "invalid_request")
		// A malformed request leaves the code unused.
		wantTokens(t, post(t, formType, form(code), basic))
	})
	t.Run("missing parameters", func(t *testing.T) {
		t.Parallel()
		wantOAuthError(t, post(t, formType, "code=x&redirect_uri="+url.QueryEscape(shopRedirect), basic), 400, "invalid_request")
		wantOAuthError(t, post(t, formType, "grant_type=authorization_code&redirect_uri="+url.QueryEscape(shopRedirect), basic), 400, "invalid_request")
		wantOAuthError(t, post(t, formType, "grant_type=authorization_code&code=x", basic), 400, "invalid_request")
	})
	t.Run("unsupported grant_type", func(t *testing.T) {
		t.Parallel()
		for _, gt := range []string{"password", "refresh_token", "client_credentials"} {
			wantOAuthError(t, post(t, formType, "grant_type="+gt+"&code=x", basic), 400, "unsupported_grant_type")
		}
	})
	t.Run("invalid_client", func(t *testing.T) {
		t.Parallel()
		code := newCode(t, shopClient, shopRedirect)
		basicRealm := `Basic realm="wxlogin"`
		for _, c := range []struct {
			name, body, auth, challenge string
		}{
			{"none", form(code), "", ""},
			{"wrong secret, Basic", form(code), basicAuth(shopClient, "wrong"), basicRealm},
			{"secret not form-encoded in Basic", form(code), "Basic " + b64std(shopClient+":"+shopSecret), basicRealm},
			{"malformed Basic", form(code), "Basic !!!", basicRealm},
			{"unknown client, Basic", form(code), basicAuth("nobody", shopSecret), basicRealm},
			{"wrong secret, post", form(code, "client_id", shopClient, "client_secret", "wrong"), "", ""},
			{"no secret, post", form(code, "client_id", shopClient), "", ""},
			{"unknown client, post", form(code, "client_id", "nobody", "client_secret", shopSecret), "", ""},
			{"another client's secret", form(code, "client_id", shopClient, "client_secret", esSecret), "", ""},
			{"public client with a secret", form(code, "client_id", spaClient, "client_secret", "x"), "", ""},
		} {
			a := post(t, formType, c.body, c.auth)
			wantOAuthError(t, a, 401, "invalid_client")
			wantChallenge(t, a, c.challenge)
		}
		// Client authentication fails before the code is looked at: it still works.
		wantTokens(t, post(t, formType, form(code), basic))
	})
	t.Run("Basic and client_secret both", func(t *testing.T) {
		t.Parallel()
		wantOAuthError(t, post(t, formType, form("x", "client_secret", shopSecret), basic), 400, "invalid_request")
	})
	t.Run("code redeemed twice", func(t *testing.T) {
		t.Parallel()
		code := newCode(t, shopClient, shopRedirect)
		wantTokens(t, post(t, formType, form(code), basic))
		wantOAuthError(t, post(t, formType, form(code), basic), 400, "invalid_grant")
		wantOAuthError(t, post(t, formType, form(code, "client_id", shopClient, "client_secret", shopSecret), ""), 400, "invalid_grant")
	})
	t.Run("not a code", func(t *testing.T) {
		t.Parallel()
		b := newWebBrowser()
		b.startLogin(t, s, authParams(shopClient, shopRedirect))
		cookie := b.cookieNow(t, s.URL+"/callback")
		for _, code := range []string{"garbage", cookie, strings.Repeat("A", 200)} {
			wantOAuthError(t, post(t, formType, form(code), basic), 400, "invalid_grant")
		}
	})
	t.Run("used up by a failed redemption", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct {
			name, body, auth string
		}{
			{"another client", form("CODE", "client_id", esClient, "client_secret", esSecret), ""},
			{"another redirect_uri", codeForm("CODE", "https://shop.example.com/other").Encode(), basic},
			{"verifier without challenge", form("CODE", "code_verifier", strings.Repeat("v", 43)), basic},
		} {
			code := newCode(t, shopClient, shopRedirect)
			body := strings.Replace(c.body, "CODE", url.QueryEscape(code), 1)
			wantOAuthError(t, post(t, formType, body, c.auth), 400, "invalid_grant")
			wantOAuthError(t, post(t, formType, form(code), basic), 400, "invalid_grant")
		}
	})
	t.Run("PKCE", func(t *testing.T) {
		t.Parallel()
		verifier, challenge := pkcePair()
		other, _ := pkcePair()
		for _, bad := range []string{"", other, verifier + "x", "short"} {
			code := newCode(t, spaClient, spaRedirect, "code_challenge", challenge, "code_challenge_method", "S256")
			f := codeForm(code, spaRedirect, "client_id", spaClient)
			if bad != "" {
				f.Set("code_verifier", bad)
			}
			wantOAuthError(t, redeem(t, s.URL, f, ""), 400, "invalid_grant")
		}
		code := newCode(t, spaClient, spaRedirect, "code_challenge", challenge, "code_challenge_method", "S256")
		wantTokens(t, redeem(t, s.URL, codeForm(code, spaRedirect, "client_id", spaClient, "code_verifier", verifier), ""))
	})
}

// b64std is s in standard base64, as HTTP Basic carries it.
func b64std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestWebLoginAuthorizeErrors(t *testing.T) {
	t.Parallel()
	s := webService(t)
	_, challenge := pkcePair()
	pages := []struct {
		name  string
		query string
		title string
	}{
		{"unknown client", authParams("nobody", shopRedirect).Encode(), "Unknown application"},
		{"no client", authParams("", shopRedirect).Encode(), "Unknown application"},
		{"client twice", authParams(shopClient, shopRedirect).Encode() + "&client_id=" + shopClient, "Unknown application"},
		{"no redirect_uri", authParams(shopClient, "").Encode(), "Login link is not valid"},
		{"unregistered redirect_uri", authParams(shopClient, "https://evil.example/cb").Encode(), "Login link is not valid"},
		{"redirect_uri of another client", authParams(shopClient, esRedirect).Encode(), "Login link is not valid"},
		{"redirect_uri not exact", authParams(shopClient, shopRedirect+"&x=1").Encode(), "Login link is not valid"},
		{"redirect_uri twice", authParams(shopClient, shopRedirect).Encode() + "&redirect_uri=" + url.QueryEscape(shopRedirect), "Login link is not valid"},
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			a := newWebBrowser().get(t, s.URL+"/authorize?"+p.query)
			wantPage(t, a, 400, "en", p.title)
			wantNoCookie(t, a)
		})
	}
	redirects := []struct {
		name   string
		client string
		kv     []string
		extra  string // raw query appended
		want   string
	}{
		{"response_type token", shopClient, []string{"response_type", "token"}, "", "unsupported_response_type"},
		{"no response_type", shopClient, []string{"response_type", ""}, "", "unsupported_response_type"},
		{"scope without openid", shopClient, []string{"scope", "profile"}, "", "invalid_scope"},
		{"no scope", shopClient, []string{"scope", ""}, "", "invalid_scope"},
		{"prompt none", shopClient, []string{"prompt", "none"}, "", "login_required"},
		{"request object", shopClient, []string{"request", "eyJhbGciOiJub25lIn0.e30."}, "", "request_not_supported"},
		{"request_uri", shopClient, []string{"request_uri", "https://shop.example.com/req"}, "", "request_uri_not_supported"},
		{"PKCE plain", shopClient, []string{"code_challenge", challenge, "code_challenge_method", "plain"}, "", "invalid_request"},
		{"challenge without method", shopClient, []string{"code_challenge", challenge}, "", "invalid_request"},
		{"method without challenge", shopClient, []string{"code_challenge_method", "S256"}, "", "invalid_request"},
		{"challenge not base64url SHA-256", shopClient, []string{"code_challenge", "short", "code_challenge_method", "S256"}, "", "invalid_request"},
		{"public client without PKCE", spaClient, nil, "", "invalid_request"},
		{"response_mode fragment", shopClient, []string{"response_mode", "fragment"}, "", "invalid_request"},
		{"nonce twice", shopClient, nil, "&nonce=again", "invalid_request"},
		{"scope twice", shopClient, nil, "&scope=openid", "invalid_request"},
		{"state too long", shopClient, []string{"state", strings.Repeat("s", 2049)}, "", "invalid_request"},
		{"state and nonce too long for the cookie", shopClient, []string{"state", strings.Repeat("s", 2048), "nonce", strings.Repeat("n", 2048)}, "", "invalid_request"},
	}
	for _, r := range redirects {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			redirect := shopRedirect
			if r.client == spaClient {
				redirect = spaRedirect
			}
			q := authParams(r.client, redirect, r.kv...)
			a := newWebBrowser().get(t, s.URL+"/authorize?"+q.Encode()+r.extra)
			wantBack(t, backAtClient(t, a, redirect), s.URL, q.Get("state"), r.want)
			wantNoCookie(t, a)
		})
	}
	t.Run("POST", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/authorize", strings.NewReader(authParams(shopClient, shopRedirect).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		wantError(t, do(t, req), 405, "method_not_allowed")
	})
}

func TestWebLoginLimits(t *testing.T) {
	t.Parallel()
	t.Run("RATE_LIMIT", func(t *testing.T) {
		t.Parallel()
		s := webService(t, withConfig(func(c *Config) { c.RateLimit = rate{1, time.Hour} }))
		// /authorize is not limited; the first callback takes the one request.
		code, _ := newWebBrowser().loginCode(t, s, authParams(shopClient, shopRedirect))
		b := newWebBrowser()
		_, state := b.startLogin(t, s, authParams(shopClient, shopRedirect))
		a := b.get(t, callbackURL(s.URL, "wx-limited", state))
		wantPage(t, a, 429, "en", "Too many attempts")
		if ra, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || ra < 1 || ra > 3600 {
			t.Errorf("Retry-After = %q, want 1..3600 seconds", a.header.Get("Retry-After"))
		}
		wantNoCookie(t, a)
		if b.cookieNow(t, s.URL+"/callback") == "" {
			t.Errorf("the cookie is gone after a 429: a reload could not try again")
		}
		if n := len(oauthCalls(s.wechat, "wx-limited")); n != 0 {
			t.Errorf("the fake received %d calls beyond the limit, want none", n)
		}
		ta := redeem(t, s.URL, codeForm(code, shopRedirect), basicAuth(shopClient, shopSecret))
		wantOAuthError(t, ta, 429, "rate_limited")
		if ra, err := strconv.Atoi(ta.header.Get("Retry-After")); err != nil || ra < 1 || ra > 3600 {
			t.Errorf("/token Retry-After = %q, want 1..3600 seconds", ta.header.Get("Retry-After"))
		}
		wantWebCounts(t, s, map[string]float64{webSeries("callback", "ok"): 1, webSeries("callback", "rate_limited"): 1, webSeries("token", "rate_limited"): 1})
	})
	t.Run("MAX_INFLIGHT", func(t *testing.T) {
		t.Parallel()
		s := webService(t, withMaxInflight(1))
		entered, release := make(chan struct{}), make(chan struct{})
		s.wechat.Intercept(wechat.OAuthTokenPath, func(w http.ResponseWriter, r *http.Request) {
			code := r.URL.Query().Get("code")
			if code == "wx-hold" {
				close(entered)
				select {
				case <-release:
				case <-time.After(10 * time.Second):
				}
			}
			wechat.Answer(w, map[string]any{"openid": wechat.MockOpenID(testWebAppID, code), "unionid": wechat.MockUnionID(code), "scope": "snsapi_login"})
		})
		holder := newWebBrowser()
		_, holdState := holder.startLogin(t, s, authParams(shopClient, shopRedirect))
		held := make(chan webAnswer, 1)
		go func() { held <- holder.get(t, callbackURL(s.URL, "wx-hold", holdState)) }()
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the held callback did not reach WeChat within 10s")
		}
		b := newWebBrowser()
		_, state := b.startLogin(t, s, authParams(shopClient, shopRedirect))
		a := b.get(t, callbackURL(s.URL, "wx-busy", state))
		close(release)
		wantPage(t, a, 503, "en", "Busy")
		if a.header.Get("Retry-After") != "1" {
			t.Errorf("Retry-After = %q, want 1", a.header.Get("Retry-After"))
		}
		wantNoCookie(t, a)
		if n := len(oauthCalls(s.wechat, "wx-busy")); n != 0 {
			t.Errorf("the fake received %d calls beyond MAX_INFLIGHT, want none", n)
		}
		select {
		case h := <-held:
			backAtClient(t, h, shopRedirect)
		case <-time.After(10 * time.Second):
			t.Fatal("the held callback did not finish")
		}
		// The slot is free again: a reload works.
		backAtClient(t, b.get(t, callbackURL(s.URL, "wx-busy", state)), shopRedirect)
		wantWebCounts(t, s, map[string]float64{webSeries("callback", "ok"): 2, webSeries("callback", "unavailable"): 1})
	})
}

// wantWebCounts checks wxlogin_web_requests_total samples.
func wantWebCounts(t testing.TB, s *testService, want map[string]float64) {
	t.Helper()
	e, _ := getMetrics(t, s.URL)
	for k, v := range want {
		if got, ok := e.samples[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}

func TestWebLoginMetrics(t *testing.T) {
	t.Parallel()
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		s := newTestService(t, withTokens(testKey))
		_, text := getMetrics(t, s.URL)
		if strings.Contains(text, "wxlogin_web_requests_total") {
			t.Errorf("/metrics has wxlogin_web_requests_total with the web login off")
		}
	})
	t.Run("on", func(t *testing.T) {
		t.Parallel()
		s := webService(t)
		e, _ := getMetrics(t, s.URL)
		series := e.family("wxlogin_web_requests_total")
		var want []string
		for _, ep := range webEndpoints {
			for _, r := range webResults[ep] {
				want = append(want, webSeries(ep, r))
			}
		}
		if !reflect.DeepEqual(series, want) || e.types["wxlogin_web_requests_total"] != "counter" {
			t.Fatalf("wxlogin_web_requests_total series = %v,\nwant %v", series, want)
		}

		counts := map[string]float64{}
		b := newWebBrowser()
		code, _ := b.loginCode(t, s, authParams(shopClient, shopRedirect)) // authorize ok, callback ok
		counts[webSeries("authorize", "ok")]++
		counts[webSeries("callback", "ok")]++
		access, _ := wantTokens(t, redeem(t, s.URL, codeForm(code, shopRedirect), basicAuth(shopClient, shopSecret)))
		counts[webSeries("token", "ok")]++
		wantOAuthError(t, redeem(t, s.URL, codeForm(code, shopRedirect), basicAuth(shopClient, shopSecret)), 400, "invalid_grant")
		counts[webSeries("token", "invalid_grant")]++
		wantOAuthError(t, redeem(t, s.URL, codeForm(code, shopRedirect), ""), 401, "invalid_client")
		counts[webSeries("token", "invalid_client")]++
		wantOAuthError(t, redeem(t, s.URL, url.Values{"grant_type": {"password"}}, ""), 400, "unsupported_grant_type")
		counts[webSeries("token", "unsupported_grant_type")]++
		wantOAuthError(t, do(t, mustRequest(http.MethodGet, s.URL+"/token")), 405, "invalid_request")
		counts[webSeries("token", "invalid_request")]++
		do(t, bearerRequest(http.MethodGet, s.URL+"/userinfo", access))
		counts[webSeries("userinfo", "ok")]++
		do(t, bearerRequest(http.MethodGet, s.URL+"/userinfo", "nope"))
		counts[webSeries("userinfo", "invalid_token")]++
		do(t, mustRequest(http.MethodDelete, s.URL+"/userinfo"))
		counts[webSeries("userinfo", "method_not_allowed")]++

		for name, q := range map[string]url.Values{
			"unknown_client":       authParams("nobody", shopRedirect),
			"invalid_redirect_uri": authParams(shopClient, "https://evil.example/"),
			"invalid_scope":        authParams(shopClient, shopRedirect, "scope", "email"),
			"login_required":       authParams(shopClient, shopRedirect, "prompt", "none"),
		} {
			newWebBrowser().get(t, authorizeURL(s.URL, q))
			counts[webSeries("authorize", name)]++
		}
		do(t, mustRequest(http.MethodPost, s.URL+"/authorize"))
		counts[webSeries("authorize", "method_not_allowed")]++

		newWebBrowser().get(t, callbackURL(s.URL, "x", "y"))
		counts[webSeries("callback", "login_expired")]++
		a := b.loginWithCode(t, s, authParams(shopClient, shopRedirect), wechat.MockInvalid)
		backAtClient(t, a, shopRedirect)
		counts[webSeries("authorize", "ok")]++
		counts[webSeries("callback", "access_denied")]++
		a = b.loginWithCode(t, s, authParams(shopClient, shopRedirect), wechat.MockBusy)
		backAtClient(t, a, shopRedirect)
		counts[webSeries("authorize", "ok")]++
		counts[webSeries("callback", "temporarily_unavailable")]++
		_, state := b.startLogin(t, s, authParams(shopClient, shopRedirect))
		backAtClient(t, b.get(t, callbackURL(s.URL, "", state)), shopRedirect)
		counts[webSeries("authorize", "ok")]++
		counts[webSeries("callback", "access_denied")]++

		e, _ = getMetrics(t, s.URL)
		for _, k := range want {
			if e.samples[k] != counts[k] {
				t.Errorf("%s = %v, want %v", k, e.samples[k], counts[k])
			}
		}
		// The web login counts nothing as a mini-program login.
		for k, v := range e.samples {
			if strings.HasPrefix(k, loginsFamily) && v != 0 {
				t.Errorf("%s = %v, want 0", k, v)
			}
		}
	})
}

func TestWebLoginLogsNothingSecret(t *testing.T) {
	t.Parallel()
	s := webService(t)
	secrets := map[string]string{"website app secret": testWebSecret, "client secret": shopSecret}

	// A whole login, PKCE and nonce included.
	b := newWebBrowser()
	verifier, challenge := pkcePair()
	q := authParams(shopClient, shopRedirect, "code_challenge", challenge, "code_challenge_method", "S256")
	page, wxState := b.startLogin(t, s, q)
	cookie := b.cookieNow(t, s.URL+"/callback")
	cb := b.atWeChat(t, page)
	back := backAtClient(t, b.get(t, cb.String()), shopRedirect)
	code := back.Get("code")
	access, id := wantTokens(t, redeem(t, s.URL, codeForm(code, shopRedirect, "code_verifier", verifier), basicAuth(shopClient, shopSecret)))
	do(t, bearerRequest(http.MethodGet, s.URL+"/userinfo", access))
	do(t, bearerRequest(http.MethodGet, s.URL+"/session", access))
	do(t, bearerRequest(http.MethodGet, s.URL+"/userinfo", id))
	do(t, bearerRequest(http.MethodGet, s.URL+"/session", id))
	// Failures, whose log lines carry details.
	redeem(t, s.URL, codeForm(code, shopRedirect, "code_verifier", verifier), basicAuth(shopClient, shopSecret))
	redeem(t, s.URL, codeForm(code, shopRedirect, "client_id", shopClient, "client_secret", shopSecret+"x"), "")
	newWebBrowser().do(t, http.MethodGet, callbackURL(s.URL, cb.Query().Get("code"), strings.Repeat("0", 32)), http.Header{"Cookie": {oidc.CookieName + "=" + cookie}})
	b2 := newWebBrowser()
	q2 := authParams(shopClient, shopRedirect)
	b2.loginWithCode(t, s, q2, wechat.MockBusy)
	// WeChat's errmsg echoing the code and the secret.
	const echoed = "wx-echoed-code-5f3a"
	s.wechat.Intercept(wechat.OAuthTokenPath, func(w http.ResponseWriter, r *http.Request) {
		wechat.Answer(w, map[string]any{"errcode": 40029, "errmsg": "invalid code " + r.URL.Query().Get("code") + " for secret " + r.URL.Query().Get("secret")})
	})
	b3 := newWebBrowser()
	q3 := authParams(shopClient, shopRedirect)
	b3.loginWithCode(t, s, q3, echoed)

	logs := s.logs.String()
	if !strings.Contains(logs, `"path":"/callback"`) || !strings.Contains(logs, `"path":"/token"`) || !strings.Contains(logs, "[redacted]") {
		t.Fatalf("the log lacks the lines this test searches:\n%s", logs)
	}
	for k, v := range map[string]string{
		"WeChat's code": cb.Query().Get("code"), "echoed WeChat code": echoed, "our code": code, "access_token": access, "id_token": id,
		"cookie": cookie, "state": q.Get("state"), "WeChat's state": wxState, "nonce": q.Get("nonce"), "code_verifier": verifier,
		"code_challenge": challenge, "state of a failed login": q2.Get("state"), "nonce of a failed login": q3.Get("nonce"),
	} {
		secrets[k] = v
	}
	wantNotInLogs(t, logs, secrets)
	// Form-encoded, as Basic carries it.
	wantNotInLogs(t, logs, map[string]string{"encoded client secret": url.QueryEscape(shopSecret)})
}

func TestWebOnlyDeployment(t *testing.T) {
	t.Parallel()
	s := webService(t, withConfig(func(c *Config) { c.Apps = nil }))
	for _, path := range []string{"/openid", "/phonenumber"} {
		req, _ := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(`{"code":"abc"}`))
		req.Header.Set("Content-Type", "application/json")
		a := do(t, req)
		wantError(t, a, 404, "not_found")
		if !strings.Contains(a.str("message"), "WX_APPID") {
			t.Errorf("POST %s message = %q, want it to name WX_APPID", path, a.str("message"))
		}
	}
	if n := len(s.wechat.CallsTo(wechat.Code2SessionPath)); n != 0 {
		t.Errorf("the fake received %d code2Session calls, want none", n)
	}
	code, wxCode := newWebBrowser().loginCode(t, s, authParams(shopClient, shopRedirect))
	access, _ := wantTokens(t, redeem(t, s.URL, codeForm(code, shopRedirect), basicAuth(shopClient, shopSecret)))
	if a := do(t, bearerRequest(http.MethodGet, s.URL+"/session", access)); a.status != 200 || a.str("unionid") != wechat.MockUnionID(wxCode) {
		t.Errorf("GET /session = %d %s, want 200 with the unionid", a.status, a.raw)
	}
}

func TestTokenSubjectUnionID(t *testing.T) {
	t.Parallel()
	s := webService(t, withConfig(func(c *Config) { c.UnionIDSubject = true }))
	openID, unionID := wechat.MockOpenID(testAppID, "carol"), wechat.MockUnionID("carol")

	a := s.login(t, "carol")
	if a.status != 200 || a.str("openid") != openID || a.str("unionid") != unionID {
		t.Fatalf("login = %d %s, want openid %s and unionid %s", a.status, a.raw, openID, unionID)
	}
	c, err := s.tok.Verify(a.str("token"))
	if err != nil || c.Subject != unionID || c.OpenID != openID || c.UnionID != unionID || c.Scope != "" || !c.Audience.Contains(testAppID) {
		t.Errorf("mini-program token claims = %+v, %v; want sub = unionid, an openid claim, aud the AppID", c, err)
	}
	sa := do(t, bearerRequest(http.MethodGet, s.URL+"/session", a.str("token")))
	if sa.status != 200 || sa.str("openid") != openID || sa.str("unionid") != unionID || sa.header.Get("X-Openid") != openID || sa.body["client_id"] != nil {
		t.Errorf("GET /session = %d %s (X-Openid %q), want openid %s", sa.status, sa.raw, sa.header.Get("X-Openid"), openID)
	}

	pa := s.phoneWith(t, a.str("token"))
	if pa.status != 200 || pa.str("openid") != openID {
		t.Fatalf("POST /phonenumber = %d %s, want 200 for %s", pa.status, pa.raw, openID)
	}
	calls := s.wechat.CallsTo(wechat.PhoneNumberPath)
	if want := map[string]any{"code": "phone-code-1", "openid": openID}; len(calls) != 1 || !reflect.DeepEqual(calls[0].JSON(), want) {
		t.Errorf("the fake received getuserphonenumber %+v, want one with body %v", calls, want)
	}
	if pc, err := s.tok.Verify(pa.str("token")); err != nil || pc.Subject != unionID || pc.OpenID != openID || pc.Phone == "" {
		t.Errorf("phone token claims = %+v, %v; want sub unionid, openid and the phone", pc, err)
	}

	wantError(t, s.login(t, wechat.MockNoUnionID), 403, "unionid_missing")

	// One person, one sub: a web login with the same WeChat code.
	ua := newWebBrowser().loginWithCode(t, s, authParams(shopClient, shopRedirect), "carol")
	back := backAtClient(t, ua, shopRedirect)
	_, id := wantTokens(t, redeem(t, s.URL, codeForm(back.Get("code"), shopRedirect), basicAuth(shopClient, shopSecret)))
	if _, claims := verifyJWT(t, id, publicKeys(t, s.URL)); claims["sub"] != c.Subject {
		t.Errorf("web login sub = %v, mini-program login sub = %s: want one sub", claims["sub"], c.Subject)
	}
}

func TestWebLoginReplicas(t *testing.T) {
	t.Parallel()
	ks := webKeys(t)
	a := newTestService(t, withWebLogin(t, []*token.Key{ks.rsa1, ks.ec}))
	sameIssuer := withConfig(func(c *Config) { c.TokenIssuer = a.URL })
	b := newTestService(t, withWebLogin(t, []*token.Key{ks.rsa1, ks.ec}), sameIssuer)
	rotated := newTestService(t, withWebLogin(t, []*token.Key{ks.rsa2, ks.rsa1, ks.ec}), sameIssuer)
	at := func(u *url.URL, s *testService) string {
		v := *u
		v.Host = strings.TrimPrefix(s.URL, "http://")
		return v.String()
	}

	// An access token issued before the rotation.
	code, _ := newWebBrowser().loginCode(t, a, authParams(shopClient, shopRedirect))
	earlier, _ := wantTokens(t, redeem(t, a.URL, codeForm(code, shopRedirect), basicAuth(shopClient, shopSecret)))

	t.Run("each step at another replica", func(t *testing.T) {
		t.Parallel()
		br := newWebBrowser()
		q := authParams(shopClient, shopRedirect)
		page, _ := br.startLogin(t, a, q)
		cb := br.atWeChat(t, page)
		back := backAtClient(t, br.get(t, at(cb, b)), shopRedirect)
		wantBack(t, back, a.URL, q.Get("state"), "")
		if n := len(oauthCalls(b.wechat, cb.Query().Get("code"))); n != 1 {
			t.Errorf("replica B asked WeChat %d times, want 1", n)
		}
		_, id := wantTokens(t, redeem(t, a.URL, codeForm(back.Get("code"), shopRedirect), basicAuth(shopClient, shopSecret)))
		if _, claims := verifyJWT(t, id, publicKeys(t, b.URL)); claims["iss"] != a.URL || claims["sub"] != wechat.MockUnionID(cb.Query().Get("code")) {
			t.Errorf("id_token claims = %v", claims)
		}
	})
	t.Run("rotation voids the login in flight", func(t *testing.T) {
		t.Parallel()
		br := newWebBrowser()
		page, _ := br.startLogin(t, a, authParams(shopClient, shopRedirect))
		cb := br.atWeChat(t, page)
		r := br.get(t, at(cb, rotated))
		wantPage(t, r, 400, "en", "This login expired")
		if n := len(oauthCalls(rotated.wechat, cb.Query().Get("code"))); n != 0 {
			t.Errorf("the rotated replica asked WeChat %d times, want none", n)
		}
	})
	t.Run("rotation voids a code", func(t *testing.T) {
		t.Parallel()
		code, _ := newWebBrowser().loginCode(t, a, authParams(shopClient, shopRedirect))
		wantOAuthError(t, redeem(t, rotated.URL, codeForm(code, shopRedirect), basicAuth(shopClient, shopSecret)), 400, "invalid_grant")
		// At the old replica it is still good.
		wantTokens(t, redeem(t, a.URL, codeForm(code, shopRedirect), basicAuth(shopClient, shopSecret)))
	})
	t.Run("rotation keeps issued tokens", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/session", "/userinfo"} {
			if r := do(t, bearerRequest(http.MethodGet, rotated.URL+path, earlier)); r.status != 200 || r.str("openid") == "" {
				t.Errorf("GET %s at the rotated replica with an earlier access token = %d %s, want 200", path, r.status, r.raw)
			}
		}
		// New tokens are signed with the new key.
		br := newWebBrowser()
		page, _ := br.startLogin(t, rotated, authParams(shopClient, shopRedirect))
		back := backAtClient(t, br.get(t, at(br.atWeChat(t, page), rotated)), shopRedirect)
		access, _ := wantTokens(t, redeem(t, rotated.URL, codeForm(back.Get("code"), shopRedirect), basicAuth(shopClient, shopSecret)))
		if h, _ := verifyJWT(t, access, publicKeys(t, rotated.URL)); h["kid"] != ks.rsa2.ID() {
			t.Errorf("access token kid = %v, want the new key %s", h["kid"], ks.rsa2.ID())
		}
	})
}

func TestWebLoginDiscovery(t *testing.T) {
	t.Parallel()
	s := webService(t)
	a := do(t, mustRequest(http.MethodGet, s.URL+"/.well-known/openid-configuration"))
	if a.status != 200 {
		t.Fatalf("discovery = %d %s", a.status, a.raw)
	}
	list := func(v ...string) []any {
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = x
		}
		return out
	}
	for k, want := range map[string]any{
		"issuer":                                         s.URL,
		"jwks_uri":                                       s.URL + "/.well-known/jwks.json",
		"authorization_endpoint":                         s.URL + "/authorize",
		"token_endpoint":                                 s.URL + "/token",
		"userinfo_endpoint":                              s.URL + "/userinfo",
		"response_types_supported":                       list("code"),
		"response_modes_supported":                       list("query"),
		"grant_types_supported":                          list("authorization_code"),
		"token_endpoint_auth_methods_supported":          list("client_secret_basic", "client_secret_post", "none"),
		"code_challenge_methods_supported":               list("S256"),
		"scopes_supported":                               list("openid"),
		"authorization_response_iss_parameter_supported": true,
	} {
		if !reflect.DeepEqual(a.body[k], want) {
			t.Errorf("discovery %s = %v, want %v", k, a.body[k], want)
		}
	}
	algs, _ := a.body["id_token_signing_alg_values_supported"].([]any)
	if len(algs) != 2 || algs[0] != "RS256" || algs[1] != "ES256" {
		t.Errorf("id_token_signing_alg_values_supported = %v, want [RS256 ES256]", algs)
	}
	claims, _ := a.body["claims_supported"].([]any)
	seen := map[any]bool{}
	for _, c := range claims {
		if seen[c] {
			t.Errorf("claims_supported = %v names %v twice", claims, c)
		}
		seen[c] = true
	}
	for _, c := range []string{"sub", "iss", "aud", "openid", "appid", "auth_time", "nonce"} {
		if !containsAny(claims, c) {
			t.Errorf("claims_supported = %v, lacks %s", claims, c)
		}
	}
}

func TestWebLoginMockRun(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	// Mock mode makes an RSA key only: no ES256 client.
	clients := filepath.Join(t.TempDir(), "clients.json")
	file := `{"clients":[{"client_id":"` + shopClient + `","secret_sha256":"` + sha256Hex(shopSecret) + `","redirect_uris":["` + shopRedirect + `"]}]}`
	if err := os.WriteFile(clients, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	in := startRun(t, map[string]string{"ADDR": "127.0.0.1:" + port}, "-mock", "-oidc-clients", clients)
	issuer := "http://localhost:" + port

	d := do(t, mustRequest(http.MethodGet, in.url+"/.well-known/openid-configuration"))
	if d.str("issuer") != issuer || d.str("authorization_endpoint") != issuer+"/authorize" {
		t.Fatalf("discovery = %s, want issuer %s", d.raw, issuer)
	}
	// The browser reaches the issuer, localhost, at the instance's address.
	b := newWebBrowser()
	b.client.Transport = &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, in.addr)
	}}
	login := func(t *testing.T, hint string) url.Values {
		t.Helper()
		q := authParams(shopClient, shopRedirect, "login_hint", hint)
		a := b.get(t, authorizeURL(issuer, q))
		if a.status != http.StatusFound || a.location == nil {
			t.Fatalf("GET /authorize = %d %s, want 302", a.status, a.body)
		}
		state := a.location.Query().Get("state")
		want := issuer + "/mock-wechat/connect/qrconnect?appid=wxmock-web&redirect_uri=" + url.QueryEscape(issuer+"/callback") +
			"&response_type=code&scope=snsapi_login&state=" + state + "&login_hint=" + hint + "#wechat_redirect"
		if a.location.String() != want {
			t.Errorf("Location = %s,\nwant %s", a.location, want)
		}
		cb := b.atWeChat(t, a.location)
		if cb.Query().Get("code") != hint || !strings.HasPrefix(cb.String(), issuer+"/callback?") {
			t.Errorf("the fake WeChat sent the browser to %s, want %s/callback with code %s", cb, issuer, hint)
		}
		back := backAtClient(t, b.get(t, cb.String()), shopRedirect)
		if back.Get("state") != q.Get("state") || back.Get("iss") != issuer {
			t.Errorf("back at the client with %v, want state and iss %s", back, issuer)
		}
		return back
	}
	back := login(t, "alice")
	tr := redeem(t, in.url, codeForm(back.Get("code"), shopRedirect), basicAuth(shopClient, shopSecret))
	_, id := wantTokens(t, tr)
	_, claims := verifyJWT(t, id, publicKeys(t, in.url))
	if claims["sub"] != wechat.MockUnionID("alice") || claims["iss"] != issuer || claims["appid"] != "wxmock-web" {
		t.Errorf("id_token claims = %v, want sub %s, iss %s", claims, wechat.MockUnionID("alice"), issuer)
	}
	if mp := in.login(t, "alice"); mp.str("unionid") != claims["sub"] {
		t.Errorf("mini-program login unionid = %q, web login sub = %v: want one person", mp.str("unionid"), claims["sub"])
	}
	back = login(t, wechat.MockInvalid)
	if back.Get("error") != "access_denied" || back.Has("code") {
		t.Errorf("login_hint %s: back at the client with %v, want error access_denied", wechat.MockInvalid, back)
	}
	// Inside WeChat: the official account's page of the fake, on our port.
	b.header.Set("User-Agent", wechatUA)
	q := authParams(shopClient, shopRedirect, "login_hint", "bob")
	page := b.get(t, authorizeURL(issuer, q))
	wantPage(t, page, 200, "en", "Log in with WeChat")
	link, _ := url.Parse(pageLink(t, page))
	if want := wechatPageURL(issuer+"/mock-wechat", wechat.OAAuthorizePath, "wxmock-oa", issuer, "snsapi_userinfo", link.Query().Get("state")); strings.Replace(link.String(), "&login_hint=bob", "", 1) != want {
		t.Errorf("Continue link = %s, want %s with login_hint bob", link, want)
	}
	back = backAtClient(t, b.get(t, b.atWeChat(t, link).String()), shopRedirect)
	_, id = wantTokens(t, redeem(t, in.url, codeForm(back.Get("code"), shopRedirect), basicAuth(shopClient, shopSecret)))
	if _, claims := verifyJWT(t, id, publicKeys(t, in.url)); claims["appid"] != "wxmock-oa" || claims["sub"] != wechat.MockUnionID("bob") {
		t.Errorf("official account id_token claims = %v, want appid wxmock-oa and the unionid of bob", claims)
	}
	if !strings.Contains(in.logs.String(), "keys made at start (RS256") {
		t.Errorf("mock mode did not warn that it made an RSA key:\n%s", in.logs)
	}
}

// TestWebLoginGuessesLimited: at /token RATE_LIMIT comes before client
// authentication, so a client secret cannot be guessed faster than the
// limit allows: the second wrong secret is refused 429, not 401.
func TestWebLoginGuessesLimited(t *testing.T) {
	t.Parallel()
	s := webService(t, withConfig(func(c *Config) { c.RateLimit = rate{1, time.Hour} }))
	form := codeForm("not-a-code", shopRedirect)
	wantOAuthError(t, redeem(t, s.URL, form, basicAuth(shopClient, "guess-1")), 401, "invalid_client")
	wantOAuthError(t, redeem(t, s.URL, form, basicAuth(shopClient, "guess-2")), 429, "rate_limited")
}

// TestWebLoginCallbackGetOnly: a HEAD of /callback would spend WeChat's
// code without answering the browser: it is refused before WeChat.
func TestWebLoginCallbackGetOnly(t *testing.T) {
	t.Parallel()
	s := webService(t)
	b := newWebBrowser()
	_, state := b.startLogin(t, s, authParams(shopClient, shopRedirect))
	req, _ := http.NewRequest(http.MethodHead, callbackURL(s.URL, "wx-head", state), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodGet {
		t.Errorf("HEAD /callback = %d, Allow %q; want 405, Allow GET", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if n := len(oauthCalls(s.wechat, "wx-head")); n != 0 {
		t.Errorf("HEAD /callback reached WeChat %d times, want none", n)
	}
}

// TestWebLoginLogDetail: the request log says why /token and /userinfo
// refused, as the error the client was told and the cause.
func TestWebLoginLogDetail(t *testing.T) {
	t.Parallel()
	s := webService(t)
	code, _ := newWebBrowser().loginCode(t, s, authParams(shopClient, shopRedirect))
	_, id := wantTokens(t, redeem(t, s.URL, codeForm(code, shopRedirect), basicAuth(shopClient, shopSecret)))
	again := redeem(t, s.URL, codeForm(code, shopRedirect), basicAuth(shopClient, shopSecret))
	l := logLineOf(t, s, again.header.Get("X-Request-Id"))
	if detail, _ := l["detail"].(string); l["error"] != "invalid_grant" || !strings.Contains(detail, "redeemed before") {
		t.Errorf("the log of a second redemption = %v, want error invalid_grant and the cause", l)
	}
	info := do(t, bearerRequest(http.MethodGet, s.URL+"/userinfo", id))
	l = logLineOf(t, s, info.header.Get("X-Request-Id"))
	if info.status != 401 || l["error"] != "invalid_token" {
		t.Errorf("/userinfo with an id_token = %d, logged as %v; want 401 logged as invalid_token", info.status, l["error"])
	}
}

// TestMockAnyAppIDTokenRefused: in mock mode without WX_APPID any
// well-formed AppID is an app, but a web client's id is not: its id_token
// (aud = the client, no scope) is refused at /session.
func TestMockAnyAppIDTokenRefused(t *testing.T) {
	t.Parallel()
	s := webService(t, withConfig(func(c *Config) { c.AnyApp = true }))
	code, _ := newWebBrowser().loginCode(t, s, authParams(shopClient, shopRedirect))
	access, id := wantTokens(t, redeem(t, s.URL, codeForm(code, shopRedirect), basicAuth(shopClient, shopSecret)))
	if a := do(t, bearerRequest(http.MethodGet, s.URL+"/session", id)); a.status != 401 {
		t.Errorf("/session with an id_token in any-AppID mode = %d %s, want 401", a.status, a.raw)
	}
	if a := do(t, bearerRequest(http.MethodGet, s.URL+"/session", access)); a.status != 200 || a.str("client_id") != shopClient {
		t.Errorf("/session with the access token = %d %s, want 200 for the client", a.status, a.raw)
	}
}

// TestTokenSubjectUnionIDTokensOff: with TOKEN_SUBJECT=unionid a login
// without a unionid is refused even when no token is issued: the login
// answers the person's identity either way.
func TestTokenSubjectUnionIDTokensOff(t *testing.T) {
	t.Parallel()
	s := newTestService(t, withConfig(func(c *Config) { c.UnionIDSubject = true }))
	wantError(t, s.login(t, wechat.MockNoUnionID), 403, "unionid_missing")
	if a := s.login(t, "alice"); a.status != 200 || a.str("unionid") != wechat.MockUnionID("alice") || a.str("token") != "" {
		t.Errorf("login with a unionid, tokens off = %d %s, want 200 with the unionid and no token", a.status, a.raw)
	}
}
