package oidc

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"wxlogin/internal/token"
)

// TestNew: an absolute http(s) issuer and the keys are required; the
// cookie's path is /callback under the issuer's path, Secure for https.
func TestNew(t *testing.T) {
	t.Parallel()
	keys := parseKeys(t, keyFile(t, "es"))
	set := token.New(token.Options{Keys: keys, TTL: testTTL, Issuer: testIssuer})
	for _, tt := range []struct {
		issuer, path string
		secure       bool
	}{
		{"https://login.example.com/auth", "/auth/callback", true},
		{"https://login.example.com", "/callback", true},
		{"http://localhost:8080", "/callback", false},
		{"http://127.0.0.1:8080/a/b", "/a/b/callback", false},
	} {
		p, err := New(Options{Issuer: tt.issuer, Tokens: set, SealKey: keys[0]})
		if err != nil {
			t.Errorf("New(issuer %q) = %v", tt.issuer, err)
			continue
		}
		if p.CookiePath() != tt.path || p.SecureCookie() != tt.secure {
			t.Errorf("New(issuer %q): cookie path %q, Secure %v; want %q, %v", tt.issuer, p.CookiePath(), p.SecureCookie(), tt.path, tt.secure)
		}
		if got := p.Endpoint("/token"); got != tt.issuer+"/token" {
			t.Errorf("Endpoint(/token) = %q, want %q", got, tt.issuer+"/token")
		}
	}
	for _, issuer := range []string{"", "wxlogin", "/auth", "ftp://login.example.com", "https://", "login.example.com/auth"} {
		if _, err := New(Options{Issuer: issuer, Tokens: set, SealKey: keys[0]}); err == nil {
			t.Errorf("New(issuer %q) = ok, want an error", issuer)
		}
	}
	if _, err := New(Options{Issuer: testIssuer, Tokens: set}); err == nil {
		t.Errorf("New(no SealKey) = ok, want an error")
	}
	if _, err := New(Options{Issuer: testIssuer, SealKey: keys[0]}); err == nil {
		t.Errorf("New(no Tokens) = ok, want an error")
	}
	p, _ := New(Options{Issuer: testIssuer, Tokens: set, SealKey: keys[0], Clients: []Client{{ID: "c1"}}})
	if !p.IsClient("c1") || p.IsClient("c2") || p.IsClient("") {
		t.Errorf("IsClient: c1 %v, c2 %v, empty %v; want true, false, false", p.IsClient("c1"), p.IsClient("c2"), p.IsClient(""))
	}
}

// TestAuthorizeOrder: an unknown client, then a redirect_uri not
// registered for it, are pages, whatever else is wrong (a redirect there
// would be an open redirector); every other problem goes back to the
// redirect_uri, with the state and iss.
func TestAuthorizeOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	everythingWrong := []string{"response_type", "token", "scope", "profile", "prompt", "none", "request", "x"}
	for _, tt := range []struct {
		name string
		q    url.Values
		want Problem
	}{
		{"no client_id", authQuery("", confRedirect), ProblemUnknownClient},
		{"unknown client_id", authQuery("nobody", confRedirect), ProblemUnknownClient},
		{"unknown client, everything else wrong", authQuery("nobody", "https://evil.example.com/", everythingWrong...), ProblemUnknownClient},
		{"client_id twice", values("client_id", confID, "client_id", confID, "redirect_uri", confRedirect, "response_type", "code", "scope", "openid"), ProblemUnknownClient},
		{"client_id in another case", authQuery(strings.ToUpper(confID), confRedirect), ProblemUnknownClient},
		{"no redirect_uri", authQuery(confID, ""), ProblemRedirectURI},
		{"an unregistered redirect_uri", authQuery(confID, "https://evil.example.com/cb"), ProblemRedirectURI},
		{"another client's redirect_uri", authQuery(confID, pubRedirect), ProblemRedirectURI},
		{"bad redirect_uri, everything else wrong", authQuery(confID, "https://evil.example.com/cb", everythingWrong...), ProblemRedirectURI},
		{"redirect_uri twice", values("client_id", confID, "redirect_uri", confRedirect, "redirect_uri", confRedirect, "response_type", "code", "scope", "openid"), ProblemRedirectURI},
		{"redirect_uri twice, once bad", values("client_id", confID, "redirect_uri", confRedirect, "redirect_uri", "https://evil.example.com/", "response_type", "code", "scope", "openid"), ProblemRedirectURI},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := f.p.Authorize(tt.q, desktopUA)
			if s.Problem != tt.want || s.Location != "" || s.Continue != "" || s.Cookie != "" || s.Result != string(tt.want) {
				t.Errorf("Authorize(%v) = %+v; want the %s page only", tt.q, s, tt.want)
			}
		})
	}
	if calls := f.wx.Calls(); len(calls) != 0 {
		t.Errorf("WeChat received %d calls, want none", len(calls))
	}
}

// TestAuthorizeErrors: each problem of a request from a known client to a
// registered redirect_uri, and its OAuth error code, sent back there.
func TestAuthorizeErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	twice := func(name, v1, v2 string) url.Values {
		q := authQuery(confID, confRedirect)
		q[name] = []string{v1, v2}
		return q
	}
	long := strings.Repeat("s", maxParam+1)
	for _, tt := range []struct {
		name  string
		q     url.Values
		code  string
		state string // in the redirect; "client-state-1" unless the test says
	}{
		{"no response_type", authQuery(confID, confRedirect, "response_type", ""), "unsupported_response_type", ""},
		{"response_type token", authQuery(confID, confRedirect, "response_type", "token"), "unsupported_response_type", ""},
		{"response_type code id_token", authQuery(confID, confRedirect, "response_type", "code id_token"), "unsupported_response_type", ""},
		{"response_type CODE", authQuery(confID, confRedirect, "response_type", "CODE"), "unsupported_response_type", ""},
		{"no scope", authQuery(confID, confRedirect, "scope", ""), "invalid_scope", ""},
		{"scope without openid", authQuery(confID, confRedirect, "scope", "profile email"), "invalid_scope", ""},
		{"scope openidx", authQuery(confID, confRedirect, "scope", "openidx"), "invalid_scope", ""},
		{"scope OPENID", authQuery(confID, confRedirect, "scope", "OPENID"), "invalid_scope", ""},
		{"request object", authQuery(confID, confRedirect, "request", "eyJhbGciOiJub25lIn0.e30."), "request_not_supported", ""},
		{"request_uri", authQuery(confID, confRedirect, "request_uri", "https://rp.example.com/req"), "request_uri_not_supported", ""},
		{"response_mode fragment", authQuery(confID, confRedirect, "response_mode", "fragment"), "invalid_request", ""},
		{"response_mode form_post", authQuery(confID, confRedirect, "response_mode", "form_post"), "invalid_request", ""},
		{"state too long", authQuery(confID, confRedirect, "state", long), "invalid_request", long},
		{"nonce too long", authQuery(confID, confRedirect, "nonce", long), "invalid_request", ""},
		{"code_challenge_method without code_challenge", authQuery(confID, confRedirect, "code_challenge_method", "S256"), "invalid_request", ""},
		{"code_challenge_method plain", authQuery(confID, confRedirect, "code_challenge", rfcChallenge, "code_challenge_method", "plain"), "invalid_request", ""},
		{"code_challenge without method", authQuery(confID, confRedirect, "code_challenge", rfcChallenge), "invalid_request", ""},
		{"code_challenge_method s256", authQuery(confID, confRedirect, "code_challenge", rfcChallenge, "code_challenge_method", "s256"), "invalid_request", ""},
		{"code_challenge not a SHA-256", authQuery(confID, confRedirect, "code_challenge", rfcChallenge[:42], "code_challenge_method", "S256"), "invalid_request", ""},
		{"code_challenge standard base64", authQuery(confID, confRedirect, "code_challenge", strings.ReplaceAll(rfcChallenge, "-", "+"), "code_challenge_method", "S256"), "invalid_request", ""},
		{"public client without PKCE", authQuery(pubID, pubRedirect), "invalid_request", ""},
		{"public client, challenge without method", authQuery(pubID, pubRedirect, "code_challenge", rfcChallenge), "invalid_request", ""},
		{"public client, plain", authQuery(pubID, pubRedirect, "code_challenge", rfcVerifier, "code_challenge_method", "plain"), "invalid_request", ""},
		{"prompt none", authQuery(confID, confRedirect, "prompt", "none"), "login_required", ""},
		{"prompt none among others", authQuery(confID, confRedirect, "prompt", "login none"), "login_required", ""},
		{"response_type twice", twice("response_type", "code", "code"), "invalid_request", ""},
		{"scope twice", twice("scope", "openid", "openid"), "invalid_request", ""},
		{"state twice", twice("state", "s1", "s2"), "invalid_request", "-"},
		{"nonce twice", twice("nonce", "n1", "n1"), "invalid_request", ""},
		{"code_challenge twice", twice("code_challenge", rfcChallenge, rfcChallenge), "invalid_request", ""},
		{"code_challenge_method twice", twice("code_challenge_method", "S256", "S256"), "invalid_request", ""},
		{"prompt twice", twice("prompt", "login", "login"), "invalid_request", ""},
		{"response_mode twice", twice("response_mode", "query", "query"), "invalid_request", ""},
		{"login_hint twice", twice("login_hint", "a", "b"), "invalid_request", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := f.p.Authorize(tt.q, desktopUA)
			if s.Problem != "" || s.Cookie != "" || s.Continue != "" || s.Result != tt.code {
				t.Fatalf("Authorize(%s) = %+v; want a redirect with %s and no cookie", tt.name, s, tt.code)
			}
			redirect := tt.q.Get("redirect_uri")
			if !strings.HasPrefix(s.Location, redirect+"?") {
				t.Fatalf("Authorize(%s) Location = %q, want the redirect_uri %q with a query", tt.name, s.Location, redirect)
			}
			got := queryOf(t, s.Location)
			state := tt.q.Get("state")
			switch tt.state {
			case "-":
				state = ""
			case "":
			default:
				state = tt.state
			}
			if got.Get("error") != tt.code || got.Get("error_description") == "" || got.Get("iss") != testIssuer ||
				got.Get("state") != state || len(got) != 3+min(len(state), 1) {
				t.Errorf("Authorize(%s) redirect query = %v; want error %s, a description, state %.20q and iss %s only", tt.name, got, tt.code, state, testIssuer)
			}
			if _, ok := got["state"]; ok && state == "" {
				t.Errorf("Authorize(%s) redirect has an empty state", tt.name)
			}
		})
	}

	// The same requests, mended, pass: each case above fails for its one
	// reason.
	for _, q := range []url.Values{
		authQuery(confID, confRedirect, "scope", "profile openid email"),
		authQuery(confID, confRedirect, "response_mode", "query"),
		authQuery(confID, confRedirect, "state", long[:maxParam], "nonce", long[:200]),
		authQuery(confID, confRedirect, "state", "", "nonce", ""),
		authQuery(confID, confRedirect, "prompt", "login consent"),
		authQuery(confID, confRedirect, "code_challenge", rfcChallenge, "code_challenge_method", "S256"),
		authQuery(pubID, pubRedirect, "code_challenge", rfcChallenge, "code_challenge_method", "S256"),
		authQuery(confID, confRedirect, "login_hint", "someone", "max_age", "0", "ui_locales", "zh-CN"),
	} {
		if s := f.p.Authorize(q, desktopUA); s.Result != "ok" || s.Cookie == "" || s.Location == "" {
			t.Errorf("Authorize(%v) = %+v; want the way to WeChat", q, s)
		}
	}
}

// TestAuthorizeFlows: which WeChat login the User-Agent and the apps
// configured call for.
func TestAuthorizeFlows(t *testing.T) {
	t.Parallel()
	web := "https://open.weixin.qq.com/connect/qrconnect?appid=" + webAppID
	oa := "https://open.weixin.qq.com/connect/oauth2/authorize?appid=" + oaAppID
	for _, tt := range []struct {
		name     string
		opts     []option
		ua       string
		flow     string
		location string // prefix of the redirect; "" for none
		cont     string // prefix of the page's link; "" for none
		problem  Problem
	}{
		{"both, desktop browser", nil, desktopUA, FlowWebsite, web, "", ""},
		{"both, inside WeChat", nil, wechatUA, FlowOA, "", oa, ""},
		{"both, no User-Agent", nil, "", FlowWebsite, web, "", ""},
		{"both, WeChat in another case", nil, "Mozilla/5.0 micromessenger/8.0", FlowWebsite, web, "", ""},
		{"website only, inside WeChat", []option{withoutOA()}, wechatUA, FlowWebsite, web, "", ""},
		{"website only, desktop", []option{withoutOA()}, desktopUA, FlowWebsite, web, "", ""},
		{"official account only, inside WeChat", []option{withoutWeb()}, wechatUA, FlowOA, "", oa, ""},
		{"official account only, desktop", []option{withoutWeb()}, desktopUA, "", "", "", ProblemOpenInWeChat},
		{"official account only, no User-Agent", []option{withoutWeb()}, "", "", "", "", ProblemOpenInWeChat},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tt.opts...)
			s := f.p.Authorize(authQuery(confID, confRedirect), tt.ua)
			if tt.problem != "" {
				if s.Problem != tt.problem || s.Result != string(tt.problem) || s.Cookie != "" || s.Location != "" || s.Continue != "" {
					t.Fatalf("Authorize(UA %q) = %+v; want the %s page and no cookie", tt.ua, s, tt.problem)
				}
				return
			}
			if s.Problem != "" || s.Result != "ok" || s.Cookie == "" {
				t.Fatalf("Authorize(UA %q) = %+v; want the way to WeChat", tt.ua, s)
			}
			if tt.location != "" && (!strings.HasPrefix(s.Location, tt.location+"&") || s.Continue != "") {
				t.Errorf("Authorize(UA %q) = Location %q, Continue %q; want a redirect to %s…", tt.ua, s.Location, s.Continue, tt.location)
			}
			if tt.cont != "" && (!strings.HasPrefix(s.Continue, tt.cont+"&") || s.Location != "") {
				t.Errorf("Authorize(UA %q) = Location %q, Continue %q; want a page linking to %s…", tt.ua, s.Location, s.Continue, tt.cont)
			}
			if req := openCookie(t, f.p, s.Cookie); req.Flow != tt.flow {
				t.Errorf("Authorize(UA %q): the cookie's flow = %q, want %q", tt.ua, req.Flow, tt.flow)
			}
		})
	}
}

// TestAuthorizeWeChatURL: WeChat's pages want their parameters in one
// order, the redirect_uri escaped, and #wechat_redirect at the end.
func TestAuthorizeWeChatURL(t *testing.T) {
	t.Parallel()
	const cb = "https%3A%2F%2Flogin.example.com%2Fauth%2Fcallback"
	f := newFixture(t)
	want := map[string]*regexp.Regexp{
		desktopUA: regexp.MustCompile(`^https://open\.weixin\.qq\.com/connect/qrconnect\?appid=` + webAppID +
			`&redirect_uri=` + cb + `&response_type=code&scope=snsapi_login&state=([0-9a-f]{32})#wechat_redirect$`),
		wechatUA: regexp.MustCompile(`^https://open\.weixin\.qq\.com/connect/oauth2/authorize\?appid=` + oaAppID +
			`&redirect_uri=` + cb + `&response_type=code&scope=snsapi_userinfo&state=([0-9a-f]{32})#wechat_redirect$`),
	}
	seen := map[string]bool{}
	for ua, re := range want {
		for range 3 {
			s := f.p.Authorize(authQuery(confID, confRedirect, "login_hint", "mock-busy"), ua)
			m := re.FindStringSubmatch(s.Location + s.Continue)
			if m == nil {
				t.Fatalf("Authorize(UA %.30q…) = %q, want it to match %s", ua, s.Location+s.Continue, re)
			}
			if seen[m[1]] {
				t.Errorf("the WeChat state %s was made twice", m[1])
			}
			seen[m[1]] = true
			if req := openCookie(t, f.p, s.Cookie); req.WXState != m[1] {
				t.Errorf("the cookie's WeChat state = %q, the URL's %q", req.WXState, m[1])
			}
			if strings.Contains(s.Location+s.Continue, "client-state-1") || strings.Contains(s.Location+s.Continue, "client-nonce-1") {
				t.Errorf("the WeChat URL carries the client's state or nonce: %s", s.Location+s.Continue)
			}
		}
	}

	// The open base's trailing slash is not doubled; the issuer's
	// redirect_uri is /callback under its path.
	keys := parseKeys(t, keyFile(t, "rsa", "es"))
	p, err := New(Options{Issuer: "http://127.0.0.1:8080", Clients: []Client{{ID: confID, Public: true, RedirectURIs: []string{confRedirect}}},
		WebAppID: webAppID, OpenBaseURL: "http://127.0.0.1:9000/mock-wechat/", Tokens: f.tokens, SealKey: keys[0]})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Authorize(authQuery(confID, confRedirect, "code_challenge", rfcChallenge, "code_challenge_method", "S256"), desktopUA)
	const prefix = "http://127.0.0.1:9000/mock-wechat/connect/qrconnect?appid=" + webAppID + "&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcallback&response_type=code&scope=snsapi_login&state="
	if !strings.HasPrefix(s.Location, prefix) {
		t.Errorf("Authorize Location = %q, want %q…", s.Location, prefix)
	}
}

// TestAuthorizeLoginHint: login_hint goes to WeChat's page (the fake's, in
// mock mode) only when PassLoginHint, escaped, before #wechat_redirect.
func TestAuthorizeLoginHint(t *testing.T) {
	t.Parallel()
	on, off := newFixture(t, withLoginHint()), newFixture(t)
	for _, tt := range []struct {
		name string
		f    *fixture
		hint string
		want string // in the URL; "" for no login_hint
	}{
		{"on", on, "mock-busy", "&login_hint=mock-busy#wechat_redirect"},
		{"on, escaped", on, "a b&c=d#e", "&login_hint=a+b%26c%3Dd%23e#wechat_redirect"},
		{"on, empty", on, "", ""},
		{"off", off, "mock-busy", ""},
	} {
		for _, ua := range []string{desktopUA, wechatUA} {
			s := tt.f.p.Authorize(authQuery(confID, confRedirect, "login_hint", tt.hint), ua)
			target := s.Location + s.Continue
			if !strings.HasSuffix(target, "#wechat_redirect") {
				t.Fatalf("%s: Authorize = %q, want a WeChat URL", tt.name, target)
			}
			has := strings.Contains(target, "login_hint")
			if tt.want == "" && has || tt.want != "" && !strings.HasSuffix(target, tt.want) {
				t.Errorf("%s: Authorize(login_hint %q) = %q, want login_hint %q", tt.name, tt.hint, target, tt.want)
			}
			if u, err := url.Parse(target); err != nil || tt.want != "" && u.Query().Get("login_hint") != tt.hint {
				t.Errorf("%s: the URL's login_hint reads back as %q, %v; want %q", tt.name, u.Query().Get("login_hint"), err, tt.hint)
			}
		}
	}
}

// TestAuthorizeCookie: the cookie holds the request as it came (client,
// redirect_uri, state, nonce, challenge), the flow, the WeChat state, and
// an expiry 10 minutes on.
func TestAuthorizeCookie(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	q := authQuery(pubID, pubRedirect, "state", "st<&>é", "nonce", "n 1+2", "code_challenge", rfcChallenge, "code_challenge_method", "S256")
	s := f.p.Authorize(q, wechatUA)
	m := wxStateRE.FindStringSubmatch(s.Continue)
	if m == nil {
		t.Fatalf("Authorize = %+v, want the official account's page", s)
	}
	want := pending{ClientID: pubID, RedirectURI: pubRedirect, State: "st<&>é", Nonce: "n 1+2", Challenge: rfcChallenge,
		Flow: FlowOA, WXState: m[1], Exp: testNow.Add(10 * time.Minute).Unix()}
	if got := openCookie(t, f.p, s.Cookie); got != want {
		t.Errorf("the cookie = %+v, want %+v", got, want)
	}
	for _, secret := range []string{"client-state", "st<&>", pubID, pubRedirect, rfcChallenge, m[1]} {
		if strings.Contains(s.Cookie, secret) || strings.Contains(s.Cookie, url.QueryEscape(secret)) {
			t.Errorf("the cookie shows %q in clear", secret)
		}
	}
	// Without state and nonce, none are sealed.
	s = f.p.Authorize(authQuery(confID, confRedirect, "state", "", "nonce", ""), desktopUA)
	if got := openCookie(t, f.p, s.Cookie); got.State != "" || got.Nonce != "" || got.Challenge != "" || got.Flow != FlowWebsite {
		t.Errorf("the cookie = %+v, want no state, nonce or challenge, the website flow", got)
	}
}

// TestAuthorizeRedirectURIExact: the redirect_uri is compared as a string
// with the registered ones: no normalisation at all.
func TestAuthorizeRedirectURIExact(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, uri := range []string{confRedirect, confRedirect2} {
		if s := f.p.Authorize(authQuery(confID, uri), desktopUA); s.Result != "ok" {
			t.Errorf("Authorize(registered %q) = %+v, want ok", uri, s)
		}
	}
	for _, uri := range []string{
		confRedirect + "/",
		"https://rp.example.com/cb/",
		"https://RP.example.com/cb",
		"https://rp.example.com/CB",
		"HTTPS://rp.example.com/cb",
		"https://rp.example.com:443/cb",
		"https://rp.example.com/%63b",
		"https://rp.example.com/./cb",
		"https://rp.example.com/x/../cb",
		confRedirect + "?",
		confRedirect + "?x=1",
		confRedirect + "#",
		confRedirect + " ",
		"http://rp.example.com/cb",
		"https://rp.example.com/cb?tenant=a",
		"https://rp.example.com/cb?x=1%202&tenant=a",
		"https://rp.example.com/cb?tenant=a&x=1+2",
		"https://rp.example.com/cb?tenant=a&x=1%202&y=3",
		"https://rp.example.com.evil.example/cb",
	} {
		if s := f.p.Authorize(authQuery(confID, uri), desktopUA); s.Problem != ProblemRedirectURI || s.Location != "" {
			t.Errorf("Authorize(redirect_uri %q) = %+v; want the %s page", uri, s, ProblemRedirectURI)
		}
	}
}

// TestAuthorizeErrorKeepsQuery: an error sent back to a redirect_uri with
// a query keeps it as it is, and adds its own.
func TestAuthorizeErrorKeepsQuery(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.p.Authorize(authQuery(confID, confRedirect2, "prompt", "none", "state", "a&b=c"), desktopUA)
	if !strings.HasPrefix(s.Location, confRedirect2+"&") {
		t.Fatalf("Location = %q, want %s&…", s.Location, confRedirect2)
	}
	q := queryOf(t, s.Location)
	if q.Get("tenant") != "a" || q.Get("x") != "1 2" || q.Get("error") != "login_required" || q.Get("state") != "a&b=c" || q.Get("iss") != testIssuer {
		t.Errorf("Location query = %v; want tenant, x, error login_required, state and iss", q)
	}
}

// TestWithQuery: the parameters (those with a value) are added to the
// URI's query, which is kept as it is, whatever it ends with.
func TestWithQuery(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ uri, want string }{
		{"https://rp.example.com/cb", "https://rp.example.com/cb?code=c%2F1&state=a+b"},
		{"https://rp.example.com/cb?x=1%202", "https://rp.example.com/cb?x=1%202&code=c%2F1&state=a+b"},
		{"https://rp.example.com/cb?", "https://rp.example.com/cb?code=c%2F1&state=a+b"},
		{"https://rp.example.com/cb?x=1&", "https://rp.example.com/cb?x=1&code=c%2F1&state=a+b"},
		{"https://rp.example.com/cb?flag", "https://rp.example.com/cb?flag&code=c%2F1&state=a+b"},
	} {
		if got := withQuery(tt.uri, "state", "a b", "code", "c/1", "iss", ""); got != tt.want {
			t.Errorf("withQuery(%q) = %q, want %q", tt.uri, got, tt.want)
		}
	}
}
