package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// Distinctive values, so that a test can search errors and URLs for them.
const (
	testIssuer = "https://login.example.com/auth" // https, with a path

	webAppID  = "wx1111111111111111"
	webSecret = "WebAppSecret0123456789abcdefWEB"
	oaAppID   = "wx2222222222222222"
	oaSecret  = "OAAppSecret0123456789abcdefOA00"

	confID        = "rp-confidential"
	confSecret    = "ConfidentialClientSecret-7f3a9c"
	confRedirect  = "https://rp.example.com/cb"
	confRedirect2 = "https://rp.example.com/cb?tenant=a&x=1%202" // a registered URI with a query
	pubID         = "spa-public"
	pubRedirect   = "http://127.0.0.1:8400/cb"
	esID          = "rp-es256"
	esSecret      = "ES256ClientSecret-0c1d2e3f4a5b"
	esRedirect    = "https://es.example.com/cb"
	miniAppID     = "wx3333333333333333" // a mini-program: its tokens are not web logins'

	// The Basic credentials of client_secret_basic, each needing
	// form-encoding.
	oddID     = "a:b%c+d"
	oddSecret = "p@ss w:rd+/="
	oddRedir  = "https://odd.example.com/cb"

	desktopUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
	wechatUA  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"

	testTTL = time.Hour // of the tokens

	// The PKCE example of RFC 7636 appendix B.
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

// testNow is the injected time every test starts at.
var testNow = time.Unix(1_800_000_000, 0)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: testNow} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Keys take a while to make (RSA): the package's tests share them. Each
// is a PEM file as TOKEN_KEY_FILE holds it.
var (
	rsaPEM = sync.OnceValues(func() ([]byte, error) { return token.GenerateKey(token.RS256) })
	es2PEM = sync.OnceValues(func() ([]byte, error) { return token.GenerateKey(token.ES256) })
	esPEM  = sync.OnceValues(func() ([]byte, error) { return token.GenerateKey(token.ES256) })
)

// keyFile is the PEM of the keys named (rsa, es, es2), in the order named,
// as one file.
func keyFile(t testing.TB, names ...string) []byte {
	t.Helper()
	var out []byte
	for _, n := range names {
		gen := map[string]func() ([]byte, error){"rsa": rsaPEM, "es2": es2PEM, "es": esPEM}[n]
		if gen == nil {
			t.Fatalf("no test key %q", n)
		}
		b, err := gen()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// parseKeys is token.ParseKeys of data, which must succeed.
func parseKeys(t testing.TB, data []byte) []*token.Key {
	t.Helper()
	keys, err := token.ParseKeys(data)
	if err != nil {
		t.Fatalf("ParseKeys = %v", err)
	}
	return keys
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// testClientsJSON is the clients file of the tests: a confidential client
// with two redirect URIs, a public one on loopback, a confidential one
// whose id_tokens are ES256, and one whose id and secret need
// form-encoding in Basic credentials, and one whose secret_sha256 is
// that of the empty string.
func testClientsJSON() string {
	return `{"clients": [
		{"client_id": "` + confID + `", "secret_sha256": "` + sha256Hex(confSecret) + `", "redirect_uris": ["` + confRedirect + `", "` + confRedirect2 + `"]},
		{"client_id": "` + pubID + `", "public": true, "redirect_uris": ["` + pubRedirect + `"]},
		{"client_id": "` + esID + `", "secret_sha256": "` + sha256Hex(esSecret) + `", "redirect_uris": ["` + esRedirect + `"], "id_token_alg": "ES256"},
		{"client_id": "` + oddID + `", "secret_sha256": "` + strings.ToUpper(sha256Hex(oddSecret)) + `", "redirect_uris": ["` + oddRedir + `"]}
	]}`
}

// fixtureOptions vary a provider from the tests' usual one.
type fixtureOptions struct {
	noWeb, noOA bool
	passHint    bool
	keys        []byte // the key file; RSA then ES256 if nil
	issuer      string
	timeout     time.Duration // of the WeChat client
	fake        *fakeWeChat   // share a fake WeChat (replicas)
	clock       *clock        // share a clock (replicas)
}

type option func(*fixtureOptions)

func withoutWeb() option                 { return func(o *fixtureOptions) { o.noWeb = true } }
func withoutOA() option                  { return func(o *fixtureOptions) { o.noOA = true } }
func withLoginHint() option              { return func(o *fixtureOptions) { o.passHint = true } }
func withKeys(pem []byte) option         { return func(o *fixtureOptions) { o.keys = pem } }
func withTimeout(d time.Duration) option { return func(o *fixtureOptions) { o.timeout = d } }
func withFake(f *fakeWeChat) option      { return func(o *fixtureOptions) { o.fake = f } }
func withClock(c *clock) option          { return func(o *fixtureOptions) { o.clock = c } }

// fakeWeChat is the fake WeChat served on loopback.
type fakeWeChat struct {
	*wechat.Fake
	url string
}

// startFake serves a fake WeChat that knows the web apps, recording every
// request.
func startFake(t testing.TB) *fakeWeChat {
	t.Helper()
	f := wechat.NewFake(wechat.FakeOptions{Apps: []wechat.App{{ID: webAppID, Secret: webSecret}, {ID: oaAppID, Secret: oaSecret}}, Record: true})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return &fakeWeChat{Fake: f, url: srv.URL}
}

// fixture is a provider with its fake WeChat, clock and tokens.
type fixture struct {
	p      *Provider
	wx     *fakeWeChat
	clock  *clock
	tokens *token.Set
	keys   []*token.Key
}

// newFixture is a provider for testIssuer with the test clients, both web
// apps, the keys RSA then ES256, the clock at testNow, and a real WeChat
// client talking to a fake WeChat.
func newFixture(t testing.TB, opts ...option) *fixture {
	t.Helper()
	o := fixtureOptions{issuer: testIssuer, timeout: 2 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.keys == nil {
		o.keys = keyFile(t, "rsa", "es")
	}
	if o.fake == nil {
		o.fake = startFake(t)
	}
	if o.clock == nil {
		o.clock = newClock()
	}
	keys := parseKeys(t, o.keys)
	var algs []string
	for _, k := range keys {
		algs = append(algs, k.Alg())
	}
	clients, err := ParseClients([]byte(testClientsJSON()), algs)
	if err != nil {
		t.Fatalf("ParseClients(the test clients) = %v", err)
	}
	tokens := token.New(token.Options{Keys: keys, TTL: testTTL, Issuer: o.issuer, Now: o.clock.Now})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	wx := wechat.NewClient(wechat.Options{BaseURL: o.fake.url, Timeout: o.timeout, RetryDelay: time.Millisecond, Transport: tr,
		Apps: []wechat.App{{ID: webAppID, Secret: webSecret}, {ID: oaAppID, Secret: oaSecret}}})
	po := Options{Issuer: o.issuer, Clients: clients, WebAppID: webAppID, OAAppID: oaAppID,
		OpenBaseURL: "https://open.weixin.qq.com", Tokens: tokens, WeChat: wx, SealKey: keys[0], PassLoginHint: o.passHint, Now: o.clock.Now}
	if o.noWeb {
		po.WebAppID = ""
	}
	if o.noOA {
		po.OAAppID = ""
	}
	p, err := New(po)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	return &fixture{p: p, wx: o.fake, clock: o.clock, tokens: tokens, keys: keys}
}

// authQuery is a valid authorization request of client to redirectURI,
// with extra parameters set (an empty value deletes one).
func authQuery(client, redirectURI string, kv ...string) url.Values {
	q := url.Values{"client_id": {client}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"client-state-1"}, "nonce": {"client-nonce-1"}}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}

// wxStateRE finds the state of a WeChat authorization URL.
var wxStateRE = regexp.MustCompile(`[?&]state=([0-9a-f]{32})(&|#wechat_redirect$)`)

// started is a login sent to WeChat: the cookie and the state WeChat
// echoes.
type started struct {
	cookie, wxState string
}

// authorize runs /authorize, which must send the browser to WeChat.
func (f *fixture) authorize(t testing.TB, q url.Values, ua string) started {
	t.Helper()
	s := f.p.Authorize(q, ua)
	target := s.Location + s.Continue
	m := wxStateRE.FindStringSubmatch(target)
	if s.Cookie == "" || m == nil || s.Problem != "" || s.Result != "ok" {
		t.Fatalf("Authorize(%v) = %+v; want the way to WeChat with a cookie", q, s)
	}
	return started{cookie: s.Cookie, wxState: m[1]}
}

// callback runs /callback for WeChat's code, which must pass its checks,
// and the exchange.
func (f *fixture) callback(t testing.TB, st started, wxCode string) Step {
	t.Helper()
	pl, s := f.p.Callback(url.Values{"code": {wxCode}, "state": {st.wxState}}, st.cookie)
	if pl == nil {
		t.Fatalf("Callback = %+v; want the exchange", s)
	}
	return f.p.Exchange(context.Background(), pl)
}

// login runs a whole login of client to redirectURI (desktop browser,
// website app) up to our code.
func (f *fixture) login(t testing.TB, q url.Values, wxCode string) string {
	t.Helper()
	s := f.callback(t, f.authorize(t, q, desktopUA), wxCode)
	u, err := url.Parse(s.Location)
	if err != nil || s.Result != "ok" || u.Query().Get("code") == "" {
		t.Fatalf("Exchange = %+v; want a redirect with a code", s)
	}
	return u.Query().Get("code")
}

// tokenForm is the form of a token request for code.
func tokenForm(code, redirectURI string, kv ...string) url.Values {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			form.Del(kv[i])
		} else {
			form.Set(kv[i], kv[i+1])
		}
	}
	return form
}

// basic is the Authorization header of client_secret_basic: id and secret
// each form-encoded (RFC 6749 §2.3.1), then HTTP Basic.
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// redeem authenticates and redeems, which must succeed.
func (f *fixture) redeem(t testing.TB, form url.Values, authorization string) *TokenResponse {
	t.Helper()
	g, terr := f.p.TokenRequest(form, authorization)
	if terr != nil {
		t.Fatalf("TokenRequest = %+v", terr)
	}
	resp, terr := f.p.Redeem(g)
	if terr != nil {
		t.Fatalf("Redeem = %+v (%v)", terr, terr.Err)
	}
	return resp
}

// tryRedeem authenticates and redeems, returning the error if any.
func (f *fixture) tryRedeem(form url.Values, authorization string) (*TokenResponse, *TokenError) {
	g, terr := f.p.TokenRequest(form, authorization)
	if terr != nil {
		return nil, terr
	}
	return f.p.Redeem(g)
}

// queryOf is the decoded query of a URL.
func queryOf(t testing.TB, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("url.Parse(%q) = %v", raw, err)
	}
	return u.Query()
}

// openCookie unseals a cookie of p.
func openCookie(t testing.TB, p *Provider, cookie string) pending {
	t.Helper()
	var req pending
	if err := p.cookie.open(cookie, &req); err != nil {
		t.Fatalf("the cookie does not unseal: %v", err)
	}
	return req
}

// openCode unseals a code of p.
func openCode(t testing.TB, p *Provider, code string) grant {
	t.Helper()
	var g grant
	if err := p.code.open(code, &g); err != nil {
		t.Fatalf("the code does not unseal: %v", err)
	}
	return g
}

// segmentJSON decodes a token's header (0) or payload (1).
func segmentJSON(t testing.TB, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("a token of %d segments", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// s256Of is BASE64URL(SHA-256(verifier)), computed here.
func s256Of(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// values is the url.Values of name/value pairs (a name may repeat).
func values(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		q.Add(kv[i], kv[i+1])
	}
	return q
}
