package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"wxlogin/internal/oidc"
	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// The web login's fixtures: its two WeChat apps and three clients, with
// distinctive values, so that a test can search logs for them.
const (
	testWebAppID  = "wx00112233445566aa" // Open Platform website app
	testWebSecret = "WebAppSecretValue-5d1e7c"
	testOAAppID   = "wx778899aabbccddee" // official account
	testOASecret  = "OfficialAccountSecret-93ab0f"

	shopClient   = "shop-web"                      // confidential, RS256 id_tokens (the default)
	shopSecret   = "shop:Client+Secret&value=42/x" // needs form-encoding inside Basic
	shopRedirect = "https://shop.example.com/cb?keep=1"
	esClient     = "es:app+1" // confidential, ES256 id_tokens; ':' and '+' form-encoded inside Basic
	esSecret     = "EsClientSecret-0a9b8c"
	esRedirect   = "https://es.example.com/login/done"
	spaClient    = "spa" // public: PKCE
	spaRedirect  = "http://localhost:5173/callback"

	wechatUA  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
	desktopUA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
)

// sha256Hex is a clients file's secret_sha256 for secret.
func sha256Hex(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 64)
	for _, b := range sum {
		out = append(out, digits[b>>4], digits[b&0xf])
	}
	return string(out)
}

// testClientsJSON is the clients file of the fixtures.
func testClientsJSON() string {
	return `{"clients":[
	{"client_id":"` + shopClient + `","secret_sha256":"` + sha256Hex(shopSecret) + `","redirect_uris":["` + shopRedirect + `","https://shop.example.com/other"]},
	{"client_id":"` + esClient + `","secret_sha256":"` + sha256Hex(esSecret) + `","redirect_uris":["` + esRedirect + `"],"id_token_alg":"ES256"},
	{"client_id":"` + spaClient + `","public":true,"redirect_uris":["` + spaRedirect + `"]}]}`
}

// testKeyPEMs are two RSA keys and a P-256 key as PEM, made once: RSA
// keys take a while to generate.
var testKeyPEMs = sync.OnceValue(func() (p struct{ rsa1, rsa2, ec []byte }) {
	var wg sync.WaitGroup
	gen := func(out *[]byte, alg string) {
		defer wg.Done()
		b, err := token.GenerateKey(alg)
		if err != nil {
			panic(err)
		}
		*out = b
	}
	wg.Add(3)
	go gen(&p.rsa1, token.RS256)
	go gen(&p.rsa2, token.RS256)
	go gen(&p.ec, token.ES256)
	wg.Wait()
	return p
})

// webKeySet is TOKEN_KEY_FILE's keys as loadConfig reads them.
type webKeySet struct {
	rsa1, rsa2, ec *token.Key
}

func webKeys(t testing.TB) webKeySet {
	t.Helper()
	p := testKeyPEMs()
	one := func(b []byte) *token.Key {
		ks, err := token.ParseKeys(b)
		if err != nil || len(ks) != 1 {
			t.Fatalf("ParseKeys = %d keys, %v", len(ks), err)
		}
		return ks[0]
	}
	return webKeySet{rsa1: one(p.rsa1), rsa2: one(p.rsa2), ec: one(p.ec)}
}

// withWebLogin turns the web login on as loadConfig would with the
// fixtures' clients file, both web apps, and keys as TOKEN_KEY_FILE (nil:
// rsa1 then ec). The service's own URL is the issuer.
func withWebLogin(t testing.TB, keys []*token.Key) serviceOption {
	t.Helper()
	if keys == nil {
		ks := webKeys(t)
		keys = []*token.Key{ks.rsa1, ks.ec}
	}
	var algs []string
	for _, k := range keys {
		algs = append(algs, k.Alg())
	}
	clients, err := oidc.ParseClients([]byte(testClientsJSON()), algs)
	if err != nil {
		t.Fatalf("ParseClients: %v", err)
	}
	return func(c *Config) {
		c.TokenIssuer = issuerHere
		c.Clients = clients
		c.KeyFile, c.TokenKeys = keys, keys
		c.WebApp = wechat.App{ID: testWebAppID, Secret: testWebSecret}
		c.OAApp = wechat.App{ID: testOAAppID, Secret: testOASecret}
	}
}

// webService is a test service with the web login on; opts apply after
// withWebLogin's.
func webService(t testing.TB, opts ...serviceOption) *testService {
	t.Helper()
	return newTestService(t, append([]serviceOption{withWebLogin(t, nil)}, opts...)...)
}

// webClock is a clock a test moves.
type webClock struct {
	mu  sync.Mutex
	now time.Time
}

func newWebClock() *webClock { return &webClock{now: time.Now().Truncate(time.Second)} }

func (c *webClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *webClock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// webBrowser is a browser: it keeps cookies, and shows each redirect
// instead of following it, so that a test checks every step.
type webBrowser struct {
	client *http.Client
	header http.Header // sent with every request: User-Agent, Accept-Language
}

// newWebBrowser is a desktop browser; kv are more headers, name then
// value.
func newWebBrowser(kv ...string) *webBrowser {
	jar, _ := cookiejar.New(nil)
	b := &webBrowser{
		client: &http.Client{Jar: jar, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		header: http.Header{"User-Agent": {desktopUA}},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		b.header.Set(kv[i], kv[i+1])
	}
	return b
}

// webAnswer is one answer the browser got.
type webAnswer struct {
	status   int
	header   http.Header
	body     string
	location *url.URL // of a redirect
}

// get requests rawURL (a fragment is not sent, as in a browser).
func (b *webBrowser) get(t testing.TB, rawURL string) webAnswer {
	t.Helper()
	return b.do(t, http.MethodGet, rawURL, nil)
}

func (b *webBrowser) do(t testing.TB, method, rawURL string, extra http.Header) webAnswer {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, req.URL.Path, err)
	}
	a := webAnswer{status: resp.StatusCode, header: resp.Header, body: string(body)}
	if loc := resp.Header.Get("Location"); loc != "" {
		if a.location, err = resp.Location(); err != nil {
			t.Fatalf("%s %s: Location %q: %v", method, req.URL.Path, loc, err)
		}
	}
	return a
}

// cookieNow is the browser's login cookie for base's /callback, or "".
func (b *webBrowser) cookieNow(t testing.TB, callbackURL string) string {
	t.Helper()
	u, err := url.Parse(callbackURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == oidc.CookieName {
			return c.Value
		}
	}
	return ""
}

// setCookie is the answer's Set-Cookie for the login cookie, parsed, and
// its raw line; nil when the answer sets none.
func (a webAnswer) setCookie(t testing.TB) (*http.Cookie, string) {
	t.Helper()
	var found *http.Cookie
	var raw string
	for _, line := range a.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("Set-Cookie %q: %v", line, err)
		}
		if c.Name == oidc.CookieName {
			if found != nil {
				t.Fatalf("two Set-Cookie lines for %s: %q", oidc.CookieName, a.header.Values("Set-Cookie"))
			}
			found, raw = c, line
		}
	}
	return found, raw
}

// wantCookieCleared checks the answer deletes the login cookie
// (Max-Age=0) at path.
func wantCookieCleared(t testing.TB, a webAnswer, path string) {
	t.Helper()
	c, raw := a.setCookie(t)
	if c == nil || c.MaxAge >= 0 || !strings.Contains(raw, "Max-Age=0") || c.Value != "" || c.Path != path || !c.HttpOnly {
		t.Errorf("Set-Cookie = %q, want %s cleared with Max-Age=0, Path=%s, HttpOnly", raw, oidc.CookieName, path)
	}
}

// wantNoCookie checks the answer leaves the login cookie alone.
func wantNoCookie(t testing.TB, a webAnswer) {
	t.Helper()
	if c, raw := a.setCookie(t); c != nil {
		t.Errorf("Set-Cookie = %q, want none for %s", raw, oidc.CookieName)
	}
}

// authorizeURL is base's /authorize with q.
func authorizeURL(base string, q url.Values) string { return base + "/authorize?" + q.Encode() }

// authParams is an authorization request of client: code, scope openid,
// state and nonce; kv add or replace parameters ("" deletes one).
func authParams(client, redirectURI string, kv ...string) url.Values {
	q := url.Values{"client_id": {client}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"st-" + rand.Text()}, "nonce": {"nc-" + rand.Text()}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
			continue
		}
		q.Set(kv[i], kv[i+1])
	}
	return q
}

// pkcePair is a fresh code_verifier and its S256 code_challenge.
func pkcePair() (verifier, challenge string) {
	verifier = "v-" + rand.Text() + "." + rand.Text() + "~_" // 56 unreserved characters
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

var hex32RE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// wechatPageURL is what the browser is sent to for the flow: WeChat's
// page, its parameters in WeChat's order, #wechat_redirect at the end.
func wechatPageURL(openBase, page, appID, issuer, scope, state string) string {
	return openBase + page + "?appid=" + appID + "&redirect_uri=" + url.QueryEscape(issuer+"/callback") +
		"&response_type=code&scope=" + scope + "&state=" + state + "#wechat_redirect"
}

// startLogin sends the browser to s's /authorize with q (website app
// flow) and checks the redirect to WeChat's QR-code page. It returns that
// page and the state WeChat is given.
func (b *webBrowser) startLogin(t testing.TB, s *testService, q url.Values) (page *url.URL, wxState string) {
	t.Helper()
	a := b.get(t, authorizeURL(s.URL, q))
	if a.status != http.StatusFound || a.location == nil {
		t.Fatalf("GET /authorize = %d %s, want 302 to WeChat", a.status, a.body)
	}
	wxState = a.location.Query().Get("state")
	if want := wechatPageURL(s.cfg.OpenBaseURL, wechat.QRConnectPath, testWebAppID, s.cfg.TokenIssuer, "snsapi_login", wxState); a.location.String() != want || !hex32RE.MatchString(wxState) {
		t.Fatalf("GET /authorize Location = %s, want %s with a state of 32 hex digits", a.location, want)
	}
	if c, raw := a.setCookie(t); c == nil || c.Value == "" {
		t.Fatalf("GET /authorize Set-Cookie = %q, want %s", raw, oidc.CookieName)
	}
	return a.location, wxState
}

// atWeChat is the user at WeChat's page (the fake's): it sends the
// browser back to our /callback with a code.
func (b *webBrowser) atWeChat(t testing.TB, page *url.URL) (callback *url.URL) {
	t.Helper()
	a := b.get(t, page.String())
	if a.status != http.StatusFound || a.location == nil || a.location.Path != "/callback" && !strings.HasSuffix(a.location.Path, "/auth/callback") {
		t.Fatalf("GET WeChat's page = %d %s (Location %v), want 302 to /callback", a.status, a.body, a.location)
	}
	if a.location.Query().Get("code") == "" || a.location.Query().Get("state") != page.Query().Get("state") {
		t.Fatalf("WeChat sent the browser to %s, want a code and the state %q", a.location, page.Query().Get("state"))
	}
	return a.location
}

// callbackURL is base's /callback as WeChat calls it.
func callbackURL(base, code, state string) string {
	q := url.Values{"state": {state}}
	if code != "" {
		q.Set("code", code)
	}
	return base + "/callback?" + q.Encode()
}

// backAtClient checks a is the redirect to redirectURI (its own query
// kept) and returns the parameters we added.
func backAtClient(t testing.TB, a webAnswer, redirectURI string) url.Values {
	t.Helper()
	if a.status != http.StatusFound || a.location == nil {
		t.Fatalf("answer = %d %s, want 302 to %s", a.status, a.body, redirectURI)
	}
	want, _ := url.Parse(redirectURI)
	got := *a.location
	q := got.Query()
	for k, v := range want.Query() {
		if q.Get(k) != v[0] {
			t.Errorf("redirect %s lost the client's %s=%s", a.location, k, v[0])
		}
		q.Del(k)
	}
	got.RawQuery = ""
	if got.String() != strings.Split(redirectURI, "?")[0] {
		t.Fatalf("redirect to %s, want %s", a.location, redirectURI)
	}
	if cc := a.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("redirect Cache-Control = %q, want no-store", cc)
	}
	if rp := a.header.Get("Referrer-Policy"); rp != "no-referrer" {
		t.Errorf("redirect Referrer-Policy = %q, want no-referrer", rp)
	}
	return q
}

// wantBack checks a redirect to the client carries exactly these
// parameters (besides the client's own), with the issuer.
func wantBack(t testing.TB, back url.Values, issuer, state string, errCode string) {
	t.Helper()
	if back.Get("iss") != issuer || back.Get("state") != state {
		t.Errorf("redirect parameters %v, want iss=%s and state=%s", back, issuer, state)
	}
	if errCode == "" {
		if back.Get("code") == "" || back.Has("error") || len(back) != 3 {
			t.Errorf("redirect parameters %v, want code, state and iss only", back)
		}
		return
	}
	if back.Get("error") != errCode || back.Get("error_description") == "" || back.Has("code") || len(back) != 4 {
		t.Errorf("redirect parameters %v, want error=%s with error_description, state and iss", back, errCode)
	}
}

// loginCode is the browser's whole part of a website-app login at s: it
// returns our code and WeChat's.
func (b *webBrowser) loginCode(t testing.TB, s *testService, q url.Values) (code, wxCode string) {
	t.Helper()
	page, _ := b.startLogin(t, s, q)
	cb := b.atWeChat(t, page)
	back := backAtClient(t, b.get(t, cb.String()), q.Get("redirect_uri"))
	wantBack(t, back, s.cfg.TokenIssuer, q.Get("state"), "")
	return back.Get("code"), cb.Query().Get("code")
}

// loginWithCode is a login whose WeChat code the test chooses: /authorize,
// then /callback as if WeChat had sent code. It returns the answer of
// /callback.
func (b *webBrowser) loginWithCode(t testing.TB, s *testService, q url.Values, wxCode string) webAnswer {
	t.Helper()
	_, state := b.startLogin(t, s, q)
	return b.get(t, callbackURL(s.URL, wxCode, state))
}

// basicAuth is client_secret_basic: id and secret form-encoded, then
// Basic.
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// redeem POSTs form to base's /token, with an Authorization header when
// authorization is set.
func redeem(t testing.TB, base string, form url.Values, authorization string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return do(t, req)
}

// codeForm is the token request for code.
func codeForm(code, redirectURI string, kv ...string) url.Values {
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// wantTokens checks a token endpoint's success and returns the
// access_token and the id_token.
func wantTokens(t testing.TB, a answer) (access, id string) {
	t.Helper()
	if a.status != 200 || a.str("access_token") == "" || a.str("id_token") == "" {
		t.Fatalf("POST /token = %d %s, want 200 with access_token and id_token", a.status, a.raw)
	}
	if a.str("token_type") != "Bearer" || a.str("scope") != "openid" || a.body["expires_in"] != float64(7200) || len(a.body) != 5 {
		t.Errorf("POST /token = %s, want token_type Bearer, scope openid, expires_in 7200 and the two tokens only", a.raw)
	}
	if cc := a.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("POST /token Cache-Control = %q, want no-store", cc)
	}
	return a.str("access_token"), a.str("id_token")
}

// wantOAuthError checks an OAuth error answer (RFC 6749 §5.2).
func wantOAuthError(t testing.TB, a answer, status int, code string) {
	t.Helper()
	if a.status != status || a.str("error") != code {
		t.Fatalf("answer = %d %s, want %d with error %q", a.status, a.raw, status, code)
	}
	if a.str("error_description") == "" || len(a.body) != 2 {
		t.Errorf("answer %s, want error and error_description only", a.raw)
	}
	if cc := a.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("answer Cache-Control = %q, want no-store", cc)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("answer Content-Type = %q, want application/json; charset=utf-8", ct)
	}
}

// wantPage checks a is a page of the web login: status, security
// headers, no script, the language and the title.
func wantPage(t testing.TB, a webAnswer, status int, lang, title string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("answer = %d %s, want a %d page", a.status, a.body, status)
	}
	for k, v := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	} {
		if got := a.header.Get(k); got != v {
			t.Errorf("page %s = %q, want %q", k, got, v)
		}
	}
	if strings.Contains(strings.ToLower(a.body), "<script") {
		t.Errorf("page has a script:\n%s", a.body)
	}
	if !strings.Contains(a.body, `<html lang="`+lang+`">`) || !strings.Contains(a.body, "<title>"+title+"</title>") {
		t.Errorf("page is not the %s page %q:\n%s", lang, title, a.body)
	}
}

var hrefRE = regexp.MustCompile(`href="([^"]*)"`)

// pageLink is the href of the page's one link.
func pageLink(t testing.TB, a webAnswer) string {
	t.Helper()
	m := hrefRE.FindAllStringSubmatch(a.body, -1)
	if len(m) != 1 {
		t.Fatalf("page has %d links, want 1:\n%s", len(m), a.body)
	}
	return html.UnescapeString(m[0][1])
}

// publicKeys reads base's JWKS, decoding each JWK here: RSA from n and e,
// P-256 from x and y.
func publicKeys(t testing.TB, base string) map[string]crypto.PublicKey {
	t.Helper()
	resp, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /.well-known/jwks.json = %d, %v", resp.StatusCode, err)
	}
	b64 := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) == 0 {
			t.Fatalf("JWK member %q is not base64url: %v", s, err)
		}
		return b
	}
	keys := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		if k["use"] != "sig" || k["kid"] == "" {
			t.Errorf("JWK %v: want use sig and a kid", k)
		}
		switch k["kty"] {
		case "RSA":
			e := new(big.Int).SetBytes(b64(k["e"]))
			if k["alg"] != "RS256" || !e.IsInt64() {
				t.Fatalf("RSA JWK %v: want alg RS256 and a small e", k)
			}
			keys[k["kid"]] = &rsa.PublicKey{N: new(big.Int).SetBytes(b64(k["n"])), E: int(e.Int64())}
			// RFC 7638: the kid is the thumbprint of e, kty, n in that order.
			sum := sha256.Sum256([]byte(`{"e":"` + k["e"] + `","kty":"RSA","n":"` + k["n"] + `"}`))
			if kid := base64.RawURLEncoding.EncodeToString(sum[:]); k["kid"] != kid {
				t.Errorf("RSA JWK kid = %s, want the RFC 7638 thumbprint %s", k["kid"], kid)
			}
		case "EC":
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, b64(k["x"])...), b64(k["y"])...))
			if err != nil || k["crv"] != "P-256" || k["alg"] != "ES256" {
				t.Fatalf("EC JWK %v: %v", k, err)
			}
			keys[k["kid"]] = pub
		default:
			t.Fatalf("JWK %v: unexpected kty", k)
		}
	}
	return keys
}

// verifyJWT checks tok's signature with keys (a JWKS) and returns its
// header and claims.
func verifyJWT(t testing.TB, tok string, keys map[string]crypto.PublicKey) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	dec := func(s string, v any) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err == nil {
			err = json.Unmarshal(b, v)
		}
		if err != nil {
			t.Fatalf("token part: %v", err)
		}
	}
	dec(parts[0], &header)
	dec(parts[1], &claims)
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("token signature: %v", err)
	}
	kid, _ := header["kid"].(string)
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch pub := keys[kid].(type) {
	case *rsa.PublicKey:
		if header["alg"] != "RS256" {
			t.Fatalf("token alg %v with an RSA key", header["alg"])
		}
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
	case *ecdsa.PublicKey:
		if header["alg"] != "ES256" || len(sig) != 64 {
			t.Fatalf("token alg %v (signature %d bytes) with a P-256 key", header["alg"], len(sig))
		}
		if !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			err = errors.New("ECDSA signature does not verify")
		}
	default:
		t.Fatalf("token kid %q is not in the JWKS", kid)
	}
	if err != nil {
		t.Fatalf("token signature with the JWKS key %s: %v", kid, err)
	}
	return header, claims
}

// webSeries is the key of a wxlogin_web_requests_total sample.
func webSeries(endpoint, result string) string {
	return `wxlogin_web_requests_total{endpoint="` + endpoint + `",result="` + result + `"}`
}

// wantNotInLogs checks no value appears in the log text.
func wantNotInLogs(t testing.TB, logs string, values map[string]string) {
	t.Helper()
	for name, v := range values {
		if v == "" {
			t.Errorf("%s is empty: the test checks nothing", name)
			continue
		}
		if strings.Contains(logs, v) {
			t.Errorf("the log holds the %s %q", name, v)
		}
	}
}

// oauthCalls are the sns/oauth2/access_token requests the fake received
// for WeChat's code.
func oauthCalls(f *wechat.Fake, wxCode string) []wechat.Call {
	var cs []wechat.Call
	for _, c := range f.CallsTo(wechat.OAuthTokenPath) {
		if c.Query.Get("code") == wxCode {
			cs = append(cs, c)
		}
	}
	return cs
}
