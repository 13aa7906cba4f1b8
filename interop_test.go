package main

// Interop: real verifiers and gateways, as a backend or a gateway would run
// them, against a running wxlogin, configured with the README's own
// recipes. Each gateway test checks that the recipe owns the identity
// headers: a client's forged ones never reach the API, and a header the
// token does not vouch for reaches it not at all. Each test skips with a
// note where its tool is not installed (.ci/run installs them from Debian's
// packages: python3-jwt, haproxy, caddy, nginx-light).

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"wxlogin/internal/oidc"
	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// startTool runs a tool in the background until the test ends, and waits
// until addr accepts connections.
func startTool(t *testing.T, addr string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	// A process group, so that the tool's own children (nginx's workers)
	// end with it; WaitDelay, so that a child still holding the output
	// pipe cannot hang the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s:\n%s", name, addr, out.String())
		}
	}
}

// logVersion logs the tool's version line, so that a failure says which
// version behaved so.
func logVersion(t *testing.T, name string, args ...string) {
	t.Helper()
	out, _ := exec.Command(name, args...).CombinedOutput()
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	t.Logf("%s: %s", name, first)
}

// readmeRecipe is the README's fenced code block in lang that contains
// marker, with each pair of replace applied; a replacement that finds
// nothing fails the test, so the recipe tested is the README's.
func readmeRecipe(t *testing.T, lang, marker string, replace ...string) string {
	t.Helper()
	text := readFile(t, "README.md")
	for _, m := range regexp.MustCompile("(?s)```"+regexp.QuoteMeta(lang)+"\n(.*?)```").FindAllStringSubmatch(text, -1) {
		if !strings.Contains(m[1], marker) {
			continue
		}
		block := m[1]
		for i := 0; i+1 < len(replace); i += 2 {
			if !strings.Contains(block, replace[i]) {
				t.Fatalf("the README's %s recipe no longer contains %q", lang, replace[i])
			}
			block = strings.ReplaceAll(block, replace[i], replace[i+1])
		}
		return block
	}
	t.Fatalf("the README has no %s recipe with %q", lang, marker)
	return ""
}

// pythonWithJWT finds a python3 that has PyJWT (Debian's python3-jwt lives
// in /usr/bin/python3, which may not be first on PATH).
func pythonWithJWT() string {
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import jwt, cryptography").Run() == nil {
			return py
		}
	}
	return ""
}

// TestInteropPyJWT verifies ES256 and EdDSA tokens with PyJWT's
// PyJWKClient, which fetches the running service's JWKS and picks the key
// by kid, pinned to the algorithm, audience and issuer.
func TestInteropPyJWT(t *testing.T) {
	t.Parallel()
	py := pythonWithJWT()
	if py == "" {
		t.Skip("SKIP interop: PyJWT not installed (Debian python3-jwt, python3-cryptography)")
	}
	const script = `
import sys, jwt
url, token, aud, iss, alg = sys.argv[1:]
key = jwt.PyJWKClient(url).get_signing_key_from_jwt(token)
claims = jwt.decode(token, key.key, algorithms=[alg], audience=aud, issuer=iss)
print(claims["sub"])
`
	for alg, key := range map[string]any{"ES256": newP256(t), "EdDSA": newEd25519(t)} {
		// Real mode against the fake WeChat: mock mode signs with keys of
		// its own, never a key file's.
		_, fake := newFake(t, testApps)
		in := startRun(t, realEnvFor(fake.URL, "TOKEN_KEY_FILE", writeKeyFile(t, pemOf(t, false, key)), "TOKEN_ISSUER", recipeIssuer))
		a := in.login(t, "pyjwt")
		if want := wechat.MockOpenID(testAppID, "pyjwt"); a.status != 200 || a.str("openid") != want || a.str("token") == "" {
			t.Fatalf("%s: login = %d (error %q), openid %q; want 200 with the openid %s and a token", alg, a.status, a.str("error"), a.str("openid"), want)
		}
		verify := func(tok, aud, iss string) (string, error) {
			out, err := exec.Command(py, "-c", script, in.url+"/.well-known/jwks.json", tok, aud, iss, alg).CombinedOutput()
			return strings.TrimSpace(string(out)), err
		}
		tok := a.str("token")
		if sub, err := verify(tok, testAppID, recipeIssuer); err != nil || sub != a.str("openid") {
			t.Errorf("%s: PyJWT says %q, %v; want the openid %s", alg, sub, err, a.str("openid"))
		}
		for name, c := range map[string]struct{ tok, aud, iss string }{
			"a tampered token":               {tok[:len(tok)-4] + "AAAA", testAppID, recipeIssuer},
			"the token for another audience": {tok, "wxother", recipeIssuer},
			"the token for another issuer":   {tok, testAppID, "https://evil.example.com"},
		} {
			if out, err := verify(c.tok, c.aud, c.iss); err == nil {
				t.Errorf("%s: PyJWT accepted %s: %s", alg, name, out)
			}
		}
	}
}

// The README's recipes name this issuer and AppID: the tests configure
// wxlogin with the same ones, so that the iss and aud the recipes check are
// tested as written.
const (
	recipeIssuer = "https://login.example.com"
	recipeAppID  = "wx0123456789abcdef"
	recipeWebApp = "wx0000000000000web" // the web login's WeChat app
	recipeClient = "recipe-client"      // the web login's client: X-Client-Id
)

// identityHeaders are every header GET /session can answer: a gateway
// recipe sets or removes each of them, always.
var identityHeaders = []string{"X-Openid", "X-Unionid", "X-Appid", "X-Phone-Number", "X-Client-Id"}

// recipeService is wxlogin as the recipes expect it: ES256 tokens of the
// README's issuer for the README's AppID, and a web login whose access
// tokens carry X-Client-Id.
type recipeService struct {
	*testService
	key  *ecdsa.PrivateKey
	keys []*token.Key
}

func newRecipeService(t *testing.T) *recipeService {
	t.Helper()
	key := newP256(t)
	keys, err := token.ParseKeys(pemOf(t, false, key))
	if err != nil {
		t.Fatal(err)
	}
	s := newTestService(t, withConfig(func(c *Config) {
		c.Apps = []wechat.App{{ID: recipeAppID, Secret: testSecret}}
		c.KeyFile, c.TokenKeys, c.TokenIssuer = keys, keys, recipeIssuer
		c.WebApp = wechat.App{ID: recipeWebApp, Secret: testSecret}
		c.Clients = []oidc.Client{{ID: recipeClient, Public: true, RedirectURIs: []string{"https://app.example/callback"}}}
	}))
	return &recipeService{testService: s, key: key, keys: keys}
}

// recipeUser is a login a gateway passes on, and the identity headers the
// API behind it must see: exactly these, each once, and no other of
// identityHeaders.
type recipeUser struct {
	name  string
	token string
	want  map[string]string
}

// headers is want as the API sees headers.
func (u recipeUser) headers() map[string][]string {
	h := map[string][]string{}
	for k, v := range u.want {
		h[k] = []string{v}
	}
	return h
}

// users logs in the recipes' users: one without the optional headers, one
// with a unionid and a verified phone number (from POST /phonenumber), one
// whose sub is the unionid (TOKEN_SUBJECT=unionid), and a web login's
// access token. Each one's headers are first checked against what GET
// /session answers, so that the gateways are held to /session's answer.
func (s *recipeService) users(t *testing.T) []recipeUser {
	t.Helper()
	plain := s.login(t, wechat.MockNoUnionID)
	openid := wechat.MockOpenID(recipeAppID, wechat.MockNoUnionID)
	if plain.status != 200 || plain.str("openid") != openid || plain.str("unionid") != "" || plain.str("token") == "" {
		t.Fatalf("login(%q) = %d (error %q), openid %q, unionid %q; want 200 with openid %s, no unionid and a token",
			wechat.MockNoUnionID, plain.status, plain.str("error"), plain.str("openid"), plain.str("unionid"), openid)
	}

	const code, phoneCode = "recipe-user", "recipe-phone"
	full := s.login(t, code)
	openidFull, unionid := wechat.MockOpenID(recipeAppID, code), wechat.MockUnionID(code)
	if full.status != 200 || full.str("openid") != openidFull || full.str("unionid") != unionid {
		t.Fatalf("login(%q) = %d (error %q), openid %q, unionid %q; want 200 with openid %s and unionid %s",
			code, full.status, full.str("error"), full.str("openid"), full.str("unionid"), openidFull, unionid)
	}
	req := bearerRequest("POST", s.URL+"/phonenumber", full.str("token"))
	req.Body = io.NopCloser(strings.NewReader(`{"code":"` + phoneCode + `"}`))
	req.Header.Set("Content-Type", "application/json")
	phone := do(t, req)
	wantPhone := "+86" + wechat.MockPhone(phoneCode)
	if phone.status != 200 || phone.str("phone_number") != wantPhone || phone.str("token") == "" {
		t.Fatalf("POST /phonenumber = %d (error %q), want 200 with the fake's number and a token", phone.status, phone.str("error"))
	}
	calls := s.wechat.CallsTo(wechat.PhoneNumberPath)
	if len(calls) != 1 || calls[0].JSON()["code"] != phoneCode || calls[0].JSON()["openid"] != openidFull {
		t.Fatalf("WeChat received %d phone calls, want one with the phone code and the openid %s", len(calls), openidFull)
	}

	// Tokens wxlogin signs too, signed here: a mini-program token whose
	// sub is the unionid, and a web login's access token.
	openidSub, unionidSub := wechat.MockOpenID(recipeAppID, "recipe-sub"), wechat.MockUnionID("recipe-sub")
	subUnionID := s.sign(t, token.Claims{Subject: unionidSub, OpenID: openidSub, UnionID: unionidSub, Audience: token.Audience{recipeAppID}})
	openidWeb, unionidWeb := wechat.MockOpenID(recipeWebApp, "recipe-web"), wechat.MockUnionID("recipe-web")
	web := s.sign(t, token.Claims{Subject: unionidWeb, OpenID: openidWeb, UnionID: unionidWeb, AppID: recipeWebApp,
		Audience: token.Audience{recipeClient}, Scope: "openid"})

	users := []recipeUser{
		{"no unionid, no phone", plain.str("token"), map[string]string{"X-Openid": openid, "X-Appid": recipeAppID}},
		{"unionid and phone", phone.str("token"), map[string]string{"X-Openid": openidFull, "X-Unionid": unionid, "X-Appid": recipeAppID, "X-Phone-Number": wantPhone}},
		{"sub is the unionid", subUnionID, map[string]string{"X-Openid": openidSub, "X-Unionid": unionidSub, "X-Appid": recipeAppID}},
		{"web login", web, map[string]string{"X-Openid": openidWeb, "X-Unionid": unionidWeb, "X-Appid": recipeWebApp, "X-Client-Id": recipeClient}},
	}
	for _, u := range users {
		a := do(t, bearerRequest("GET", s.URL+"/session", u.token))
		if got := identityOf(a.header); a.status != 200 || !reflect.DeepEqual(got, u.headers()) {
			t.Fatalf("GET /session for %s = %d with %v, want 200 with %v", u.name, a.status, redacted(got), redacted(u.headers()))
		}
	}
	return users
}

// sign signs claims as wxlogin does, with its key and issuer.
func (s *recipeService) sign(t *testing.T, c token.Claims) string {
	t.Helper()
	return s.signAt(t, recipeIssuer, time.Now(), c)
}

func (s *recipeService) signAt(t *testing.T, issuer string, now time.Time, c token.Claims) string {
	t.Helper()
	tok, err := token.New(token.Options{Keys: s.keys, TTL: time.Hour, Issuer: issuer, Now: fixedClock(now)}).Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// identityOf is every value of each identity header in h.
func identityOf(h http.Header) map[string][]string {
	got := map[string][]string{}
	for _, name := range identityHeaders {
		if v := h.Values(name); v != nil {
			got[name] = v
		}
	}
	return got
}

// identityApp is the API behind a gateway: it answers with the method, the
// body and every value of each identity header it received, and counts the
// requests that reached it.
type identityApp struct {
	url  string
	hits atomic.Int64
}

// seen is what identityApp received. Aliases are the headers whose names
// read as an identity header's where "_" stands for "-", as CGI-style
// backends (PHP, WSGI) read them.
type seen struct {
	Method  string              `json:"method"`
	Body    string              `json:"body"`
	Headers map[string][]string `json:"headers"`
	Aliases map[string][]string `json:"aliases,omitempty"`
}

func newIdentityApp(t *testing.T) *identityApp {
	t.Helper()
	app := &identityApp{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app.hits.Add(1)
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		s := seen{Method: r.Method, Body: string(body), Headers: identityOf(r.Header), Aliases: map[string][]string{}}
		for name, v := range r.Header {
			if strings.Contains(name, "_") && slices.Contains(identityHeaders, http.CanonicalHeaderKey(strings.ReplaceAll(name, "_", "-"))) {
				s.Aliases[name] = v
			}
		}
		json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(srv.Close)
	app.url = srv.URL
	return app
}

// forgedPhone is the number a client forges.
const forgedPhone = "+8613800000000"

// redacted is h with each phone number replaced by what it is, so that a
// failure message names none.
func redacted(h map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range h {
		if k == "X-Phone-Number" {
			v = slices.Clone(v)
			for i, p := range v {
				v[i] = map[bool]string{true: "<the forged number>", false: "<a number>"}[p == forgedPhone]
			}
		}
		out[k] = v
	}
	return out
}

// forge adds what a client sends to pass as someone else: every identity
// header, X-Openid twice, once more in lower case and once as X_Openid.
func forge(req *http.Request) {
	for _, name := range identityHeaders {
		req.Header[name] = []string{"forged"}
	}
	req.Header["X-Openid"] = []string{"oFORGED", "oFORGED2"}
	req.Header["x-openid"] = []string{"oforged3"} // sent as written: not canonical
	req.Header["X_Openid"] = []string{"oforged4"}
	req.Header["X-Unionid"] = []string{"spoofed"}
	req.Header["X-Phone-Number"] = []string{forgedPhone}
	req.Header["X-Client-Id"] = []string{"forged-client"}
}

// throughGateway sends an API call through the gateway at base with the
// token ("" for none), forged identity headers if forged, and a body with
// a POST. It returns the status, the answer, and what the API received
// (the zero seen where the answer is not the API's).
func throughGateway(t *testing.T, base, method, tok string, forged bool) (int, string, seen) {
	t.Helper()
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader(`{"item":1}`)
	}
	req, err := http.NewRequest(method, base+"/api/orders", body)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if forged {
		forge(req)
	}
	status, answer := plainAnswer(t, req)
	var s seen
	if status == 200 {
		if err := json.Unmarshal([]byte(answer), &s); err != nil {
			t.Fatalf("%s through the gateway: %d %q is not the API's answer", method, status, answer)
		}
	}
	return status, answer, s
}

// checkPassesUsers sends each user's token through the gateway, by GET and
// POST, with and without forged identity headers: the API must see the
// user's identity headers, each once, and no other identity header.
func checkPassesUsers(t *testing.T, gateway, base string, users []recipeUser) {
	t.Helper()
	for _, u := range users {
		for _, method := range []string{"GET", "POST"} {
			for _, forged := range []bool{false, true} {
				status, answer, s := throughGateway(t, base, method, u.token, forged)
				if status != 200 {
					t.Errorf("%s %s through %s (forged headers: %v) = %d %q, want 200", method, u.name, gateway, forged, status, answer)
					continue
				}
				if !reflect.DeepEqual(s.Headers, u.headers()) {
					t.Errorf("%s %s through %s (forged headers: %v): the API saw %v, want %v", method, u.name, gateway, forged, redacted(s.Headers), redacted(u.headers()))
				}
				wantBody := map[string]string{"GET": "", "POST": `{"item":1}`}[method]
				if s.Method != method || s.Body != wantBody {
					t.Errorf("%s %s through %s: the API saw %s with body %q, want %s with %q", method, u.name, gateway, s.Method, s.Body, method, wantBody)
				}
			}
		}
	}
}

// checkRefuses sends each token through the gateway with forged identity
// headers: each must be answered 401 without reaching the API.
func checkRefuses(t *testing.T, gateway, base string, app *identityApp, bad map[string]string) {
	t.Helper()
	for name, tok := range bad {
		for _, method := range []string{"GET", "POST"} {
			before := app.hits.Load()
			if status, _, s := throughGateway(t, base, method, tok, true); status != 401 {
				t.Errorf("%s with %s through %s = %d, the API saw %v; want 401", method, name, gateway, status, redacted(s.Headers))
			}
			if n := app.hits.Load() - before; n != 0 {
				t.Errorf("%s with %s through %s reached the API %d times, want none", method, name, gateway, n)
			}
		}
	}
}

// TestInteropHAProxy runs the README's HAProxy recipe, which verifies
// ES256 tokens itself with jwt_verify: the public key from the key file,
// the algorithm pinned, exp, iss and aud checked, and the identity headers
// set from the verified token's claims.
func TestInteropHAProxy(t *testing.T) {
	t.Parallel()
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("SKIP interop: haproxy not installed (Debian haproxy)")
	}
	logVersion(t, haproxy, "-v")
	s := newRecipeService(t)
	app := newIdentityApp(t)
	dir := t.TempDir()
	pub := filepath.Join(dir, "wxlogin-pub.pem")
	if err := os.WriteFile(pub, publicPEM(t, s.key), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	// The recipe as written but for where it listens and where the key is;
	// its issuer and AppID are the service's.
	recipe := readmeRecipe(t, "haproxy", "jwt_verify",
		"bind :443 ssl crt /etc/haproxy/site.pem", "bind 127.0.0.1:"+port,
		"/etc/haproxy/wxlogin-pub.pem", pub)
	conf := "defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n" + recipe +
		"\nbackend app\n  server app " + strings.TrimPrefix(app.url, "http://") + "\n"
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startTool(t, "127.0.0.1:"+port, haproxy, "-db", "-f", cfg)
	base := "http://127.0.0.1:" + port

	users := s.users(t)
	// HAProxy checks aud against the AppID: a web login's access token (aud
	// is its client) is refused, so X-Client-Id is never set.
	web := users[len(users)-1]
	checkPassesUsers(t, "HAProxy", base, users[:len(users)-1])

	// A verified phone number only: a phone_number without
	// phone_number_verified is not passed on (wxlogin signs neither).
	openid := wechat.MockOpenID(recipeAppID, "recipe-unverified")
	unverified := recipeUser{"an unverified phone number", s.sign(t, token.Claims{Subject: openid, Audience: token.Audience{recipeAppID}, Phone: "+8613900000000"}),
		map[string]string{"X-Openid": openid, "X-Appid": recipeAppID}}
	checkPassesUsers(t, "HAProxy", base, []recipeUser{unverified})

	tok := users[0].token
	now := time.Now()
	sub := token.Claims{Subject: "oX", Audience: token.Audience{recipeAppID}}
	checkRefuses(t, "HAProxy", base, app, map[string]string{
		"no token":                                     "",
		"a tampered token":                             tok[:len(tok)-4] + "AAAA",
		"an expired token":                             s.signAt(t, recipeIssuer, now.Add(-2*time.Hour), sub),
		"another audience's token":                     s.sign(t, token.Claims{Subject: "oX", Audience: token.Audience{"wxother"}}),
		"a web login's access token":                   web.token,
		"the default issuer's token":                   s.signAt(t, defaultIssuer, now, sub),
		"another issuer's token":                       s.signAt(t, "https://evil.example.com", now, sub),
		"a token without exp":                          signES256(t, s.key, `{"sub":"oX","iss":"`+recipeIssuer+`","aud":"`+recipeAppID+`"}`),
		"an HS256 token keyed with the public key":     resignToken(tok, `{"alg":"HS256","typ":"JWT"}`, hmacSHA256(publicPEM(t, s.key))),
		"a token with alg none":                        resignToken(tok, `{"alg":"none","typ":"JWT"}`, func(string) []byte { return nil }),
		"a token signed by another key":                resignToken(tok, `{"alg":"ES256","typ":"JWT"}`, es256(t, newP256(t))),
		"a token whose aud is an array with the AppID": s.sign(t, token.Claims{Subject: "oX", Audience: token.Audience{recipeAppID, "wxother"}}),
	})
}

// signES256 signs payload with key as wxlogin's ES256 tokens are signed.
func signES256(t *testing.T, key *ecdsa.PrivateKey, payload string) string {
	t.Helper()
	b64 := base64.RawURLEncoding
	input := b64.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." + b64.EncodeToString([]byte(payload))
	return input + "." + b64.EncodeToString(es256(t, key)(input))
}

// es256 signs an input with key: the 64-byte r‖s of RFC 7518.
func es256(t *testing.T, key *ecdsa.PrivateKey) func(string) []byte {
	return func(input string) []byte {
		sum := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	}
}

// resignToken replaces a token's header and signs it with sign.
func resignToken(tok, header string, sign func(input string) []byte) string {
	b64 := base64.RawURLEncoding
	_, rest, _ := strings.Cut(tok, ".")
	payload, _, _ := strings.Cut(rest, ".")
	input := b64.EncodeToString([]byte(header)) + "." + payload
	return input + "." + b64.EncodeToString(sign(input))
}

func hmacSHA256(key []byte) func(string) []byte {
	return func(input string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(input))
		return m.Sum(nil)
	}
}

// TestInteropCaddy puts Caddy's forward_auth in front of an API, asking
// GET /session, with the README's recipe.
func TestInteropCaddy(t *testing.T) {
	t.Parallel()
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("SKIP interop: caddy not installed (Debian caddy)")
	}
	logVersion(t, caddy, "version")
	s := newRecipeService(t)
	app := newIdentityApp(t)
	port := freePort(t)
	recipe := readmeRecipe(t, "caddyfile", "forward_auth",
		"api.example.com {", "http://127.0.0.1:"+port+" {\n\tbind 127.0.0.1",
		"forward_auth 127.0.0.1:2020", "forward_auth "+s.Listener.Addr().String(),
		"reverse_proxy 127.0.0.1:8080", "reverse_proxy "+strings.TrimPrefix(app.url, "http://"))
	cfg := filepath.Join(t.TempDir(), "Caddyfile")
	conf := fmt.Sprintf("{\n\tadmin off\n\tauto_https off\n\tstorage file_system %s\n}\n", t.TempDir()) + recipe
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startTool(t, "127.0.0.1:"+port, caddy, "run", "--config", cfg, "--adapter", "caddyfile")
	base := "http://127.0.0.1:" + port

	users := s.users(t)
	checkPassesUsers(t, "Caddy", base, users)
	tok := users[0].token
	checkRefuses(t, "Caddy", base, app, map[string]string{"no token": "", "a tampered token": tok + "x"})
	// Caddy passes /session's refusal through as it is.
	wantError(t, do(t, bearerRequest("GET", base+"/api", tok+"x")), 401, "invalid_token")
	wantError(t, do(t, bearerRequest("GET", base+"/api", "")), 401, "invalid_token")
}

// plainAnswer sends a request and reads its answer as text.
func plainAnswer(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// publicPEM is the public half of a private key, as openssl pkey -pubout
// writes it.
func publicPEM(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestInteropNginx runs the README's nginx auth_request recipe: nginx asks
// /session for every API call (a POST included, which is why the recipe
// sets proxy_method GET) and passes the identity headers to the app.
func TestInteropNginx(t *testing.T) {
	t.Parallel()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("SKIP interop: nginx not installed (Debian nginx-light)")
	}
	logVersion(t, nginx, "-v")
	s := newRecipeService(t)
	app := newIdentityApp(t)
	dir, port := t.TempDir(), freePort(t)
	recipe := readmeRecipe(t, "nginx", "auth_request",
		"http://127.0.0.1:2020/session", s.URL+"/session",
		"proxy_pass http://127.0.0.1:8080;", "proxy_pass "+app.url+";")
	conf := fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log stderr;
events {}
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:%[2]s;
%[3]s
  }
}
`, dir, port, recipe)
	cfg := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startTool(t, "127.0.0.1:"+port, nginx, "-p", dir, "-c", cfg)
	base := "http://127.0.0.1:" + port

	users := s.users(t)
	checkPassesUsers(t, "nginx", base, users)
	tok := users[0].token
	checkRefuses(t, "nginx", base, app, map[string]string{"no token": "", "a tampered token": tok + "x"})
	// The README says nginx drops header names with "_" (which CGI-style
	// backends read as "-") by default.
	if _, _, s := throughGateway(t, base, "GET", tok, true); len(s.Aliases) != 0 {
		t.Errorf("GET through nginx with X_Openid: the API saw %v, want no header named with _", s.Aliases)
	}
}
