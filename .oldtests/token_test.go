package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

var (
	testKey    = strings.Repeat("k", 32)
	testKeyOld = strings.Repeat("o", 40)
	testNow    = time.Unix(1_800_000_000, 0)
)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func newTestTokens(now time.Time, keys ...string) *tokens {
	return newTokens(hmacKeys(keys...), nil, 2*time.Hour, tokenIssuer, []string{testAppID}, fixedClock(now))
}

// TestRFC7515Example verifies the HS256 example of RFC 7515 appendix A.1,
// which shows our base64url and HMAC are the standard ones.
func TestRFC7515Example(t *testing.T) {
	t.Parallel()
	key, err := base64.RawURLEncoding.DecodeString("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
	if err != nil {
		t.Fatal(err)
	}
	const token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9" +
		".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ" +
		".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	tok := newTokens([][]byte{key}, nil, time.Hour, tokenIssuer, []string{testAppID}, fixedClock(time.Unix(1300819000, 0)))
	payload, err := tok.verifySignature(token)
	if err != nil {
		t.Fatalf("verifySignature(RFC 7515 A.1) = %v", err)
	}
	if want := "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}"; string(payload) != want {
		t.Errorf("payload = %q, want %q", payload, want)
	}
	input := token[:strings.LastIndex(token, ".")]
	if got := base64.RawURLEncoding.EncodeToString(mac(key, input)); got != "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" {
		t.Errorf("mac = %s, want the RFC's signature", got)
	}
	// Its claims are not ours (iss "joe", no aud, exp in 2011): the full
	// check must refuse it even at a time when it had not expired.
	if _, err := tok.verify(token); !errors.Is(err, errInvalidToken) {
		t.Errorf("verify(RFC token) = %v, want errInvalidToken (wrong iss and aud)", err)
	}
}

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	tok := newTestTokens(testNow, testKey)
	token, err := tok.sign(identity{AppID: testAppID, OpenID: "oOpen", UnionID: "oUnion"})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d segments, want 3", token, len(parts))
	}
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if string(header) != `{"alg":"HS256","typ":"JWT"}` {
		t.Errorf("header = %s", header)
	}
	var payload map[string]any
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(raw, &payload) != nil {
		t.Fatalf("payload %q is not base64url JSON", parts[1])
	}
	want := map[string]any{"sub": "oOpen", "unionid": "oUnion", "iat": float64(testNow.Unix()),
		"exp": float64(testNow.Add(2 * time.Hour).Unix()), "iss": "wxlogin", "aud": testAppID}
	if len(payload) != len(want) {
		t.Errorf("payload = %s, want exactly %v", raw, want)
	}
	for k, v := range want {
		if payload[k] != v {
			t.Errorf("claim %s = %v, want %v", k, payload[k], v)
		}
	}
	c, err := tok.verify(token)
	if err != nil || c.OpenID != "oOpen" || c.UnionID != "oUnion" || c.AppID != testAppID || c.Exp != testNow.Add(2*time.Hour).Unix() {
		t.Errorf("verify(sign(x)) = %+v, %v", c, err)
	}

	noUnion, _ := tok.sign(identity{AppID: testAppID, OpenID: "oOpen"})
	if raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(noUnion, ".")[1]); strings.Contains(string(raw), "unionid") {
		t.Errorf("payload %s has a unionid, but the session had none", raw)
	}
}

// forge signs arbitrary header and claims with key, for rejection tests.
func forge(key, header string, claims map[string]any) string {
	p, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(p)
	return input + "." + base64.RawURLEncoding.EncodeToString(mac([]byte(key), input))
}

func TestTokenRejected(t *testing.T) {
	t.Parallel()
	tok := newTestTokens(testNow, testKey)
	good := map[string]any{"sub": "o1", "iat": testNow.Unix(), "exp": testNow.Add(time.Hour).Unix(), "iss": "wxlogin", "aud": testAppID}
	claims := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	hs256 := `{"alg":"HS256","typ":"JWT"}`
	valid := forge(testKey, hs256, good)
	parts := strings.Split(valid, ".")
	flip := func(s string) string { // change one character, keeping it base64url
		b := []byte(s)
		if b[5] == 'A' {
			b[5] = 'B'
		} else {
			b[5] = 'A'
		}
		return string(b)
	}
	// alg:none, and HS512 "signed" with our key by someone hoping we check
	// the MAC with whatever alg the header names.
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	tests := map[string]string{
		"alg none":                 none,
		"alg none with signature":  none + parts[2],
		"alg HS512":                forge(testKey, `{"alg":"HS512","typ":"JWT"}`, good),
		"alg hs256 lower case":     forge(testKey, `{"alg":"hs256","typ":"JWT"}`, good),
		"no alg":                   forge(testKey, `{"typ":"JWT"}`, good),
		"typ not JWT":              forge(testKey, `{"alg":"HS256","typ":"JWE"}`, good),
		"crit":                     forge(testKey, `{"alg":"HS256","crit":["exp"],"exp":1}`, good),
		"tampered header":          flip(parts[0]) + "." + parts[1] + "." + parts[2],
		"tampered payload":         parts[0] + "." + flip(parts[1]) + "." + parts[2],
		"tampered signature":       parts[0] + "." + parts[1] + "." + flip(parts[2]),
		"signature cut":            parts[0] + "." + parts[1] + "." + parts[2][:20],
		"unknown key":              forge(strings.Repeat("x", 32), hs256, good),
		"expired beyond leeway":    forge(testKey, hs256, claims("exp", testNow.Add(-31*time.Second).Unix())),
		"no exp":                   forge(testKey, hs256, claims("exp", nil)),
		"exp not a number":         forge(testKey, hs256, claims("exp", "tomorrow")),
		"nbf beyond leeway":        forge(testKey, hs256, claims("nbf", testNow.Add(31*time.Second).Unix())),
		"wrong iss":                forge(testKey, hs256, claims("iss", "someone")),
		"no iss":                   forge(testKey, hs256, claims("iss", nil)),
		"wrong aud":                forge(testKey, hs256, claims("aud", "wxother")),
		"aud array without ours":   forge(testKey, hs256, claims("aud", []string{"wxother", "wxthird"})),
		"aud a number":             forge(testKey, hs256, claims("aud", 5)),
		"no sub":                   forge(testKey, hs256, claims("sub", nil)),
		"two segments":             parts[0] + "." + parts[1],
		"four segments":            valid + "." + parts[2],
		"empty":                    "",
		"dots only":                "..",
		"bad base64 header":        "e!J." + parts[1] + "." + parts[2],
		"padded base64 signature":  valid + "=",
		"header not JSON":          base64.RawURLEncoding.EncodeToString([]byte("alg=HS256")) + "." + parts[1] + "." + parts[2],
		"payload not JSON, signed": forgeRaw(testKey, hs256, "not json"),
		"payload an array, signed": forgeRaw(testKey, hs256, `["o1"]`),
	}
	for name, token := range tests {
		if c, err := tok.verify(token); !errors.Is(err, errInvalidToken) {
			t.Errorf("%s: verify = %+v, %v, want errInvalidToken", name, c, err)
		}
	}

	// Within the leeway both ways, and an aud array that holds ours, pass.
	for name, token := range map[string]string{
		"expired within leeway": forge(testKey, hs256, claims("exp", testNow.Add(-29*time.Second).Unix())),
		"nbf within leeway":     forge(testKey, hs256, claims("nbf", testNow.Add(29*time.Second).Unix())),
		"aud array with ours":   forge(testKey, hs256, claims("aud", []string{"wxother", testAppID})),
		"no typ":                forge(testKey, `{"alg":"HS256"}`, good),
	} {
		if _, err := tok.verify(token); err != nil {
			t.Errorf("%s: verify = %v, want ok", name, err)
		}
	}
}

func forgeRaw(key, header, payload string) string {
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac([]byte(key), input))
}

// TestTokenRotation: TOKEN_SECRET=new,old signs with new and accepts both.
func TestTokenRotation(t *testing.T) {
	t.Parallel()
	before := newTestTokens(testNow, testKeyOld)
	oldToken, _ := before.sign(identity{AppID: testAppID, OpenID: "o1"})
	after := newTestTokens(testNow, testKey, testKeyOld)
	newToken, _ := after.sign(identity{AppID: testAppID, OpenID: "o1"})
	if _, err := after.verify(oldToken); err != nil {
		t.Errorf("a token signed with the old key: %v, want accepted after rotation", err)
	}
	if _, err := newTestTokens(testNow, testKey).verify(newToken); err != nil {
		t.Errorf("a token signed after rotation does not verify with the new key alone: %v", err)
	}
	if _, err := before.verify(newToken); err == nil {
		t.Errorf("a token signed after rotation verifies with the old key: it was not signed with the first key")
	}
	if _, err := newTestTokens(testNow, testKey).verify(oldToken); err == nil {
		t.Errorf("the old key's token still verifies once the old key is dropped")
	}
}

// TestSessionEndpoint drives login and /session through HTTP.
func TestSessionEndpoint(t *testing.T) {
	t.Parallel()
	s := newTestService(t, nil, withTokens(time.Now, testKey))
	a := s.login(t, "abc")
	token := a.str("token")
	if a.status != 200 || token == "" || a.body["expires_in"] != float64(7200) {
		t.Fatalf("login = %d %s, want 200 with token and expires_in 7200", a.status, a.raw)
	}

	session := func(method, auth string) answer {
		req, _ := http.NewRequest(method, s.URL+"/session", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		return do(t, req)
	}
	for _, auth := range []string{"Bearer " + token, "bearer " + token, "BEARER  " + token} {
		r := session("GET", auth)
		if r.status != 200 || r.str("openid") != a.str("openid") || r.str("unionid") != a.str("unionid") {
			t.Errorf("GET /session with %q = %d %s, want 200 with the login's ids", auth[:8], r.status, r.raw)
		}
		if exp, _ := r.body["expires_at"].(float64); time.Until(time.Unix(int64(exp), 0)) < 119*time.Minute {
			t.Errorf("expires_at = %v, want about 2h from now", r.body["expires_at"])
		}
		if r.header.Get("X-Openid") != a.str("openid") || r.header.Get("X-Unionid") != a.str("unionid") {
			t.Errorf("X-Openid, X-Unionid = %q, %q", r.header.Get("X-Openid"), r.header.Get("X-Unionid"))
		}
	}
	if r := session("HEAD", "Bearer "+token); r.status != 200 || r.header.Get("X-Openid") == "" {
		t.Errorf("HEAD /session = %d, X-Openid %q, want 200 with it", r.status, r.header.Get("X-Openid"))
	}

	r := session("GET", "")
	wantError(t, r, 401, "invalid_token")
	if got := r.header.Get("WWW-Authenticate"); got != "Bearer" {
		t.Errorf("no Authorization: WWW-Authenticate = %q, want Bearer", got)
	}
	for _, auth := range []string{"Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token " + token, "Bearer " + token + "x", token, "Bearer " + token[:len(token)-2]} {
		r := session("GET", auth)
		wantError(t, r, 401, "invalid_token")
		if got := r.header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
			t.Errorf("Authorization %q: WWW-Authenticate = %q", auth, got)
		}
	}
	r = session("POST", "Bearer "+token)
	wantError(t, r, 405, "method_not_allowed")
	if r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /session: Allow = %q, want GET, HEAD", r.header.Get("Allow"))
	}
	if strings.Contains(s.logs.String(), token) || strings.Contains(s.logs.String(), strings.Split(token, ".")[2]) {
		t.Errorf("the log contains the token:\n%s", s.logs)
	}
}

func TestTokensOff(t *testing.T) {
	t.Parallel()
	s := newTestService(t, nil)
	a := s.login(t, "abc")
	if _, ok := a.body["token"]; ok || a.body["expires_in"] != nil {
		t.Errorf("login with tokens off = %s, want no token or expires_in", a.raw)
	}
	req, _ := http.NewRequest("GET", s.URL+"/session", nil)
	req.Header.Set("Authorization", "Bearer x.y.z")
	wantError(t, do(t, req), 404, "not_found")
}

// TestMockTokens checks that mock mode without TOKEN_SECRET still issues
// tokens /session accepts, and says so at startup.
func TestMockTokens(t *testing.T) {
	t.Parallel()
	in := startRun(t, map[string]string{"WX_MOCK": "1", "TOKEN_TTL": "10m"})
	a := in.login(t, "abc")
	if a.str("token") == "" || a.body["expires_in"] != float64(600) {
		t.Fatalf("mock login = %s, want a token and expires_in 600", a.raw)
	}
	req, _ := http.NewRequest("GET", in.url+"/session", nil)
	req.Header.Set("Authorization", "Bearer "+a.str("token"))
	if r := do(t, req); r.status != 200 || r.header.Get("X-Openid") != a.str("openid") {
		t.Errorf("GET /session = %d %s", r.status, r.raw)
	}
	if !strings.Contains(in.logs.String(), "development key") {
		t.Errorf("the startup warning does not mention the development key:\n%s", in.logs)
	}
	mock := newTokens([][]byte{[]byte(mockTokenKey)}, nil, time.Hour, tokenIssuer, []string{mockAppID}, time.Now)
	if _, err := mock.verify(a.str("token")); err != nil {
		t.Errorf("the mock token does not verify with the development key and aud wxmock: %v", err)
	}
}

// FuzzVerifyToken feeds the token parser arbitrary input: it must never
// panic, and whatever it accepts must be exactly what we would sign.
func FuzzVerifyToken(f *testing.F) {
	tok := newTestTokens(testNow, testKey)
	good, _ := tok.sign(identity{AppID: testAppID, OpenID: "o1", UnionID: "u1"})
	f.Add(good)
	f.Add(forge(testKey, `{"alg":"none"}`, map[string]any{"sub": "o1"}))
	f.Add("a.b.c")
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		id, err := tok.verify(token)
		if err != nil {
			if !errors.Is(err, errInvalidToken) {
				t.Fatalf("verify error %v is not errInvalidToken", err)
			}
			return
		}
		// Only a token signed with our key can pass; check it carries it.
		header, rest, _ := strings.Cut(token, ".")
		payload, sig, _ := strings.Cut(rest, ".")
		if want := base64.RawURLEncoding.EncodeToString(mac([]byte(testKey), header+"."+payload)); sig != want {
			t.Fatalf("verify accepted %q, whose signature is not ours", token)
		}
		var c claims
		raw, _ := base64.RawURLEncoding.DecodeString(payload)
		if err := json.Unmarshal(raw, &c); err != nil || id.OpenID == "" || c.Iss != tokenIssuer || id.AppID != testAppID {
			t.Fatalf("verify accepted claims %s as %+v", raw, id)
		}
		// And it is exactly what we sign for those claims.
		if again, err := tok.signClaims(c); err != nil || again != token {
			t.Fatalf("sign(verify(%q)) = %q, %v: not the token we would have signed", token, again, err)
		}
	})
}
