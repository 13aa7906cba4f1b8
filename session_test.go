package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// pemOf encodes keys as one PEM file: PKCS#8 unless sec1 is set for EC keys.
func pemOf(t testing.TB, sec1 bool, keys ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, k := range keys {
		if ec, ok := k.(*ecdsa.PrivateKey); ok && sec1 {
			der, err := x509.MarshalECPrivateKey(ec)
			if err != nil {
				t.Fatal(err)
			}
			pem.Encode(&buf, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		pem.Encode(&buf, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	return buf.Bytes()
}

func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// mustP384 is a key on a curve wxlogin does not sign with.
func mustP384(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newEd25519(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeKeyFile writes PEM to a temporary file and returns its path.
func writeKeyFile(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// selfSigned is a PEM certificate for k, which a key file may hold beside
// its keys.
func selfSigned(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// sessionNow is the clock of the session tests.
var sessionNow = time.Unix(1_800_000_000, 0)

// TestSessionEndpoint drives login and /session through HTTP: the
// identity a token carries comes back as JSON and as the headers a gateway
// passes on, and every token that is not ours, not for a configured app,
// or not valid any more is a 401 with an RFC 6750 challenge.
func TestSessionEndpoint(t *testing.T) {
	t.Parallel()
	s := newTestService(t, withTokens(testKey), withClock(fixedClock(sessionNow)))
	a := s.login(t, "abc")
	tok := a.str("token")
	if a.status != 200 || tok == "" || a.body["expires_in"] != float64(7200) {
		t.Fatalf("login = %d %s, want 200 with token and expires_in 7200", a.status, a.raw)
	}
	openid, unionid := wechat.MockOpenID(testAppID, "abc"), wechat.MockUnionID("abc")
	if a.str("openid") != openid || a.str("unionid") != unionid {
		t.Fatalf("login = %s, want the fake's openid %s and unionid %s", a.raw, openid, unionid)
	}
	if calls := s.wechat.CallsTo(wechat.Code2SessionPath); len(calls) != 1 || calls[0].Query.Get("js_code") != "abc" || calls[0].Query.Get("appid") != testAppID {
		t.Errorf("WeChat received %d code2Session calls, want 1 with js_code abc for %s", len(calls), testAppID)
	}
	exp := float64(sessionNow.Add(2 * time.Hour).Unix())

	session := func(method, auth string) answer {
		t.Helper()
		req := mustRequest(method, s.URL+"/session")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		return do(t, req)
	}
	for _, auth := range []string{"Bearer " + tok, "bearer " + tok, "BEARER  " + tok} {
		r := session("GET", auth)
		want := map[string]any{"openid": openid, "unionid": unionid, "appid": testAppID, "expires_at": exp}
		if r.status != 200 || !reflect.DeepEqual(r.body, want) {
			t.Errorf("GET /session (%s…) = %d %s, want 200 %v", auth[:7], r.status, r.raw, want)
		}
		for h, want := range map[string]string{"X-Openid": openid, "X-Unionid": unionid, "X-Appid": testAppID, "Cache-Control": "no-store"} {
			if got := r.header.Get(h); got != want {
				t.Errorf("GET /session (%s…): %s = %q, want %q", auth[:7], h, got, want)
			}
		}
		if v, ok := r.header["X-Phone-Number"]; ok {
			t.Errorf("GET /session of a token without a phone: X-Phone-Number = %q, want none", v)
		}
	}
	if r := session("HEAD", "Bearer "+tok); r.status != 200 || r.header.Get("X-Openid") != openid || r.raw != "" {
		t.Errorf("HEAD /session = %d, X-Openid %q, body %q; want 200 with the openid and no body", r.status, r.header.Get("X-Openid"), r.raw)
	}

	// Tokens the service signs after /phonenumber, and other claims.
	sign := func(c token.Claims) string {
		t.Helper()
		v, err := s.tok.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	const phone = "+8613800138000"
	good := []struct {
		name    string
		claims  token.Claims
		body    map[string]any
		headers map[string]string // "" = absent
	}{
		{"verified phone", token.Claims{Subject: "oPhone", Audience: token.Audience{testAppID}, Phone: phone, PhoneVerified: true},
			map[string]any{"openid": "oPhone", "appid": testAppID, "phone_number": phone, "expires_at": exp},
			map[string]string{"X-Openid": "oPhone", "X-Appid": testAppID, "X-Phone-Number": phone, "X-Unionid": ""}},
		{"unverified phone is not passed on", token.Claims{Subject: "oPhone", Audience: token.Audience{testAppID}, Phone: phone},
			map[string]any{"openid": "oPhone", "appid": testAppID, "expires_at": exp},
			map[string]string{"X-Openid": "oPhone", "X-Phone-Number": ""}},
		{"aud array holding ours", token.Claims{Subject: "oArr", UnionID: "uArr", Audience: token.Audience{"wx1111111111111111", testAppID}},
			map[string]any{"openid": "oArr", "unionid": "uArr", "appid": testAppID, "expires_at": exp},
			map[string]string{"X-Appid": testAppID, "X-Unionid": "uArr"}},
	}
	for _, tt := range good {
		r := session("GET", "Bearer "+sign(tt.claims))
		if r.status != 200 || !reflect.DeepEqual(r.body, tt.body) {
			t.Errorf("%s: GET /session = %d %s, want 200 %v", tt.name, r.status, r.raw, tt.body)
		}
		for h, want := range tt.headers {
			if got, ok := r.header[h]; want == "" && ok || want != "" && r.header.Get(h) != want {
				t.Errorf("%s: %s = %q, want %q", tt.name, h, got, want)
			}
		}
	}

	r := session("GET", "")
	wantError(t, r, 401, "invalid_token")
	if got := r.header.Get("WWW-Authenticate"); got != "Bearer" {
		t.Errorf("GET /session without Authorization: WWW-Authenticate = %q, want Bearer", got)
	}
	other := func(o token.Options) string {
		t.Helper()
		o.TTL, o.Keys = 2*time.Hour, append(o.Keys, hmacKeys(testKey)...)
		if o.Issuer == "" {
			o.Issuer = defaultIssuer
		}
		if o.Now == nil {
			o.Now = fixedClock(sessionNow)
		}
		v, err := token.New(o).Sign(token.Claims{Subject: "oX", Audience: token.Audience{testAppID}})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	bad := map[string]string{
		"empty bearer":              "Bearer",
		"empty bearer with a space": "Bearer ",
		"basic":                     "Basic dXNlcjpwYXNz",
		"another scheme":            "Token " + tok,
		"no scheme":                 tok,
		"a byte added":              "Bearer " + tok + "x",
		"signature cut":             "Bearer " + tok[:len(tok)-2],
		"another app":               "Bearer " + sign(token.Claims{Subject: "oX", Audience: token.Audience{"wx1111111111111111"}}),
		"apps none of ours":         "Bearer " + sign(token.Claims{Subject: "oX", Audience: token.Audience{"wx1111111111111111", "wx2222222222222222"}}),
		"no audience":               "Bearer " + sign(token.Claims{Subject: "oX"}),
		"expired":                   "Bearer " + other(token.Options{Now: fixedClock(sessionNow.Add(-3 * time.Hour))}),
		"another issuer":            "Bearer " + other(token.Options{Issuer: "someone-else"}),
		"another key":               "Bearer " + other(token.Options{Keys: hmacKeys("another-key-of-32-bytes-or-more-0123")}),
	}
	for name, auth := range bad {
		r := session("GET", auth)
		if r.status != 401 || r.str("error") != "invalid_token" {
			t.Errorf("%s: GET /session = %d %s, want 401 invalid_token", name, r.status, r.raw)
			continue
		}
		wantError(t, r, 401, "invalid_token")
		if got := r.header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
			t.Errorf("%s: WWW-Authenticate = %q, want Bearer error=\"invalid_token\"", name, got)
		}
	}
	r = session("POST", "Bearer "+tok)
	wantError(t, r, 405, "method_not_allowed")
	if r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /session: Allow = %q, want GET, HEAD", r.header.Get("Allow"))
	}
	logs := s.logs.String()
	if strings.Contains(logs, tok) || strings.Contains(logs, tok[strings.LastIndex(tok, ".")+1:]) {
		t.Errorf("the log contains the token:\n%s", logs)
	}
}

// TestTokensOff: without keys a login returns no token, and every
// endpoint that needs tokens does not exist.
func TestTokensOff(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	a := s.login(t, "abc")
	if a.status != 200 || a.str("openid") != wechat.MockOpenID(testAppID, "abc") {
		t.Fatalf("login with tokens off = %d %s, want 200", a.status, a.raw)
	}
	for _, k := range []string{"token", "expires_in"} {
		if _, ok := a.body[k]; ok {
			t.Errorf("login with tokens off = %s, want no %s", a.raw, k)
		}
	}
	phone := bearerRequest("POST", s.URL+"/phonenumber", "x.y.z")
	phone.Body = io.NopCloser(strings.NewReader(`{"code":"p1"}`))
	phone.Header.Set("Content-Type", "application/json")
	for _, req := range []*http.Request{
		bearerRequest("GET", s.URL+"/session", "x.y.z"),
		bearerRequest("GET", s.URL+"/session", ""),
		phone,
		mustRequest("GET", s.URL+"/.well-known/jwks.json"),
		mustRequest("GET", s.URL+"/.well-known/openid-configuration"),
	} {
		r := do(t, req)
		if r.status != 404 || r.str("error") != "not_found" {
			t.Errorf("%s %s with tokens off = %d %s, want 404 not_found", req.Method, req.URL.Path, r.status, r.raw)
		}
	}
	if n := len(s.wechat.Calls()); n != 1 {
		t.Errorf("WeChat received %d calls, want only the login's", n)
	}
}

// TestMockTokens checks that mock mode without TOKEN_SECRET still issues
// tokens /session accepts, signed with the public development key, and
// says so at startup.
func TestMockTokens(t *testing.T) {
	t.Parallel()
	in := startRun(t, map[string]string{"WX_MOCK": "1", "TOKEN_TTL": "10m"})
	a := in.login(t, "abc")
	if a.str("token") == "" || a.body["expires_in"] != float64(600) {
		t.Fatalf("mock login = %s, want a token and expires_in 600", a.raw)
	}
	if r := do(t, bearerRequest("GET", in.url+"/session", a.str("token"))); r.status != 200 || r.header.Get("X-Openid") != a.str("openid") || r.str("appid") != mockAppID {
		t.Errorf("GET /session = %d %s, want 200 for %s", r.status, r.raw, mockAppID)
	}
	if !strings.Contains(in.logs.String(), "development key") {
		t.Errorf("the startup warning does not mention the development key:\n%s", in.logs)
	}
	dev := token.New(token.Options{Keys: []*token.Key{token.MockKey()}, TTL: time.Hour, Issuer: defaultIssuer})
	c, err := dev.Verify(a.str("token"))
	if err != nil || !c.Audience.Contains(mockAppID) || c.Subject != a.str("openid") {
		t.Errorf("the mock token under the development key = %+v, %v; want it valid for %s", c, err, mockAppID)
	}
	// A real instance never accepts the development key (TestConfigErrors),
	// so a mock token is worth nothing elsewhere.
	if _, err := token.HMACKey([]byte(token.DevelopmentKey)); err == nil {
		t.Errorf("token.HMACKey(DevelopmentKey) = nil error, want it refused")
	}
}

// jwkOf is the public JWK of a P-256 or Ed25519 key, computed here
// independently of the token package (RFC 7517, 7518, 8037; kid the RFC
// 7638 thumbprint).
func jwkOf(t testing.TB, k any) map[string]any {
	t.Helper()
	b64 := base64.RawURLEncoding
	thumb := func(s string) string { sum := sha256.Sum256([]byte(s)); return b64.EncodeToString(sum[:]) }
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		point, err := k.PublicKey.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		x, y := b64.EncodeToString(point[1:33]), b64.EncodeToString(point[33:])
		return map[string]any{"kty": "EC", "crv": "P-256", "x": x, "y": y, "alg": "ES256", "use": "sig",
			"kid": thumb(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`)}
	case ed25519.PrivateKey:
		x := b64.EncodeToString(k.Public().(ed25519.PublicKey))
		return map[string]any{"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA", "use": "sig",
			"kid": thumb(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`)}
	}
	t.Fatalf("jwkOf(%T)", k)
	return nil
}

func TestJWKSAndDiscovery(t *testing.T) {
	t.Parallel()
	ec, ed := newP256(t), newEd25519(t)
	keyFile := writeKeyFile(t, pemOf(t, false, ec, ed))
	in := startRun(t, map[string]string{"WX_MOCK": "1", "TOKEN_KEY_FILE": keyFile, "TOKEN_ISSUER": "https://login.example.com/"})
	ecJWK, edJWK := jwkOf(t, ec), jwkOf(t, ed)

	a := do(t, mustRequest("GET", in.url+"/.well-known/jwks.json"))
	if want := map[string]any{"keys": []any{ecJWK, edJWK}}; a.status != 200 || !reflect.DeepEqual(a.body, want) {
		t.Errorf("GET jwks.json = %d %s, want 200 %v (the public keys in file order)", a.status, a.raw, want)
	}
	for h, want := range map[string]string{"Cache-Control": "public, max-age=300", "Content-Type": "application/json; charset=utf-8", "Content-Length": strconv.Itoa(len(a.raw))} {
		if got := a.header.Get(h); got != want {
			t.Errorf("GET jwks.json: %s = %q, want %q", h, got, want)
		}
	}
	if h := do(t, mustRequest("HEAD", in.url+"/.well-known/jwks.json")); h.status != 200 || h.raw != "" || h.header.Get("Content-Length") != strconv.Itoa(len(a.raw)) {
		t.Errorf("HEAD jwks.json = %d %q, Content-Length %q; want 200, no body, the GET's length %d", h.status, h.raw, h.header.Get("Content-Length"), len(a.raw))
	}
	for _, path := range []string{"/.well-known/jwks.json", "/.well-known/openid-configuration"} {
		r := do(t, mustRequest("POST", in.url+path))
		wantError(t, r, 405, "method_not_allowed")
		if r.header.Get("Allow") != "GET, HEAD" {
			t.Errorf("POST %s: Allow = %q, want GET, HEAD", path, r.header.Get("Allow"))
		}
	}

	d := do(t, mustRequest("GET", in.url+"/.well-known/openid-configuration"))
	claims, _ := d.body["claims_supported"].([]any)
	delete(d.body, "claims_supported")
	want := map[string]any{
		"issuer":                                "https://login.example.com",
		"jwks_uri":                              "https://login.example.com/.well-known/jwks.json",
		"id_token_signing_alg_values_supported": []any{"ES256", "EdDSA"},
		"response_types_supported":              []any{"id_token"},
		"subject_types_supported":               []any{"public"},
	}
	if d.status != 200 || !reflect.DeepEqual(d.body, want) || d.header.Get("Cache-Control") != "public, max-age=300" {
		t.Errorf("GET openid-configuration = %d %s (Cache-Control %q), want 200 %v", d.status, d.raw, d.header.Get("Cache-Control"), want)
	}
	for _, c := range []string{"sub", "iss", "aud", "exp", "iat", "unionid", "phone_number"} {
		if !containsAny(claims, c) {
			t.Errorf("claims_supported = %v, want it to name %s", claims, c)
		}
	}
	if h := do(t, mustRequest("HEAD", in.url+"/.well-known/openid-configuration")); h.status != 200 || h.raw != "" {
		t.Errorf("HEAD openid-configuration = %d %q, want 200 without a body", h.status, h.raw)
	}

	// The token: iss is the issuer, kid the first key's, and its signature
	// checks out against the published key alone; /session accepts it.
	login := in.login(t, "abc")
	parts := strings.Split(login.str("token"), ".")
	if len(parts) != 3 {
		t.Fatalf("login token has %d segments, want 3", len(parts))
	}
	var header, payload map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(hb, &header) != nil || json.Unmarshal(pb, &payload) != nil {
		t.Fatalf("token header %q or payload %q is not JSON", hb, pb)
	}
	if want := map[string]any{"alg": "ES256", "typ": "JWT", "kid": ecJWK["kid"]}; !reflect.DeepEqual(header, want) {
		t.Errorf("token header = %v, want %v", header, want)
	}
	if payload["iss"] != "https://login.example.com" || payload["aud"] != mockAppID || payload["sub"] != login.str("openid") {
		t.Errorf("token payload = %v, want iss the issuer, aud %s, sub the openid", payload, mockAppID)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if len(sig) != 64 || !ecdsa.Verify(&ec.PublicKey, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Errorf("the token's signature (%d bytes) does not verify with the published P-256 key", len(sig))
	}
	s := do(t, bearerRequest("GET", in.url+"/session", login.str("token")))
	if s.status != 200 || s.str("openid") != login.str("openid") {
		t.Errorf("GET /session = %d %s, want 200 with the openid", s.status, s.raw)
	}

	// Without TOKEN_KEY_FILE there is nothing to publish; a name as issuer
	// has no discovery; HMAC keys beside the key file are never published.
	plain := startRun(t, map[string]string{"WX_MOCK": "1", "TOKEN_ISSUER": "https://login.example.com"})
	wantError(t, do(t, mustRequest("GET", plain.url+"/.well-known/jwks.json")), 404, "not_found")
	wantError(t, do(t, mustRequest("GET", plain.url+"/.well-known/openid-configuration")), 404, "not_found")
	named := startRun(t, map[string]string{"WX_MOCK": "1", "TOKEN_KEY_FILE": keyFile, "TOKEN_SECRET": testKey})
	wantError(t, do(t, mustRequest("GET", named.url+"/.well-known/openid-configuration")), 404, "not_found")
	if a := do(t, mustRequest("GET", named.url+"/.well-known/jwks.json")); a.status != 200 || !reflect.DeepEqual(a.body, map[string]any{"keys": []any{ecJWK, edJWK}}) {
		t.Errorf("GET jwks.json with a plain issuer and TOKEN_SECRET = %d %s, want the two public keys only", a.status, a.raw)
	}
}

func containsAny(list []any, v any) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func TestIssuerSetting(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		env  string
		want string
	}{
		{nil, "", "wxlogin"},
		{nil, "my-app", "my-app"},
		{nil, " my-app ", "my-app"},
		{nil, "https://login.example.com/", "https://login.example.com"},
		{nil, "https://x.example/auth", "https://x.example/auth"},
		{nil, "http://login.internal", "http://login.internal"},
		{[]string{"-token-issuer", "https://flag.example"}, "https://env.example", "https://flag.example"},
	} {
		c, err := loadConfig(tt.args, envOf(with(realEnv, "TOKEN_ISSUER", tt.env)), io.Discard)
		if err != nil || c.TokenIssuer != tt.want {
			t.Errorf("loadConfig(%q, TOKEN_ISSUER=%q) = %q, %v; want %q", tt.args, tt.env, c.TokenIssuer, err, tt.want)
		}
	}
	for _, v := range []string{"ftp://x.example", "https://", "https://x.example/?a=1", "https://x.example/#f", "https://x.example?", "https://u:p@x.example", "://x", " "} {
		_, err := loadConfig(nil, envOf(with(realEnv, "TOKEN_ISSUER", v)), io.Discard)
		if ce, ok := errors.AsType[*configError](err); !ok || !strings.HasPrefix(ce.Error(), "TOKEN_ISSUER: ") {
			t.Errorf("loadConfig(TOKEN_ISSUER=%q) = %v, want exit 2 naming TOKEN_ISSUER", v, err)
		}
	}
	// A URL issuer without public keys: discovery is off, and a warning says so.
	c, err := loadConfig(nil, envOf(with(realEnv, "TOKEN_ISSUER", "https://login.example.com", "TOKEN_SECRET", testKey)), io.Discard)
	if err != nil || !strings.Contains(strings.Join(c.Warnings, "|"), "OpenID discovery") {
		t.Errorf("loadConfig(URL issuer, HMAC only) warnings = %q, %v; want one about discovery being off", c.Warnings, err)
	}
}
