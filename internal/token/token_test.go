package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRFC7515Example checks the HS256 example of RFC 7515 appendix A.1
// verbatim, which shows our base64url and HMAC are the standard ones, and
// then the same token as the full check reads it, at the RFC's time.
func TestRFC7515Example(t *testing.T) {
	t.Parallel()
	key, err := base64.RawURLEncoding.DecodeString("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
	if err != nil {
		t.Fatal(err)
	}
	const header = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}"
	const payload = "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}"
	const sig = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	const token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9" +
		".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ" +
		"." + sig
	const exp = 1300819380
	if got := forgeRaw(string(key), header, payload); got != token {
		t.Fatalf("the RFC's header and payload signed independently differ from the RFC's token")
	}
	input := token[:strings.LastIndex(token, ".")]
	if got := b64.EncodeToString(mac(key, input)); got != sig {
		t.Errorf("mac(RFC key, RFC input) = %s, want the RFC's %s", got, sig)
	}

	s := New(Options{Keys: []*Key{hmacKey(t, string(key))}, TTL: time.Hour, Issuer: "joe", Now: fixedClock(time.Unix(1300819000, 0))})
	got, err := s.verifySignature(token)
	if err != nil {
		t.Fatalf("verifySignature(RFC 7515 A.1) = %v", err)
	}
	if string(got) != payload {
		t.Errorf("verifySignature(RFC 7515 A.1) payload = %q, want %q", got, payload)
	}
	// The RFC's claims have no sub: the full check refuses them for that
	// alone (issuer "joe", and the clock before its exp).
	if _, err := s.Verify(token); !errors.Is(err, ErrInvalid) || err.Error() != "invalid token: no sub" {
		t.Errorf("Verify(RFC 7515 A.1) = %v, want %v: no sub", err, ErrInvalid)
	}

	// The same header, verbatim, with a sub added: valid until exp + Leeway.
	withSub := forgeRaw(string(key), header, strings.Replace(payload, "{", `{"sub":"joe",`, 1))
	c, err := s.Verify(withSub)
	if err != nil || c.Subject != "joe" || c.Issuer != "joe" || c.Expiry != exp {
		t.Errorf("Verify(RFC 7515 A.1 with a sub) = %+v, %v; want sub and iss joe, exp %d", c, err, exp)
	}
	late := New(Options{Keys: []*Key{hmacKey(t, string(key))}, Issuer: "joe", Now: fixedClock(time.Unix(exp, 0).Add(Leeway))})
	if _, err := late.Verify(withSub); !errors.Is(err, ErrInvalid) {
		t.Errorf("Verify(RFC 7515 A.1 with a sub) at exp + Leeway = %v, want %v", err, ErrInvalid)
	}
}

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	s := newSet(t, testNow, hmacKey(t, testKey))
	c := claimsFor("oOpen")
	c.UnionID = "oUnion"
	token := mustSign(t, s, c)
	if n := strings.Count(token, "."); n != 2 {
		t.Fatalf("Sign: %d dots, want 3 segments", n)
	}
	head, payload, _ := segments(t, token)
	if got, want := decodeSegment(t, head), map[string]any{"alg": "HS256", "typ": "JWT"}; !maps.Equal(got, want) {
		t.Errorf("header = %v, want %v", got, want)
	}
	want := map[string]any{"sub": "oOpen", "unionid": "oUnion", "iat": float64(testNow.Unix()),
		"exp": float64(testNow.Add(2 * time.Hour).Unix()), "iss": testIssuer, "aud": testAppID}
	if got := decodeSegment(t, payload); !maps.Equal(got, want) {
		t.Errorf("payload = %v, want %v", got, want)
	}
	got, err := s.Verify(token)
	if err != nil || got.Subject != "oOpen" || got.UnionID != "oUnion" || !slices.Equal(got.Audience, Audience{testAppID}) ||
		got.Expiry != testNow.Add(2*time.Hour).Unix() {
		t.Errorf("Verify(Sign(%+v)) = %+v, %v", c, got, err)
	}

	_, noUnion, _ := segments(t, mustSign(t, s, claimsFor("oOpen")))
	if m := decodeSegment(t, noUnion); m["unionid"] != nil || len(m) != 5 {
		t.Errorf("payload without a unionid = %v, want sub, iss, aud, iat and exp only", m)
	}
}

// decodeSegment decodes a base64url JSON object segment.
func decodeSegment(t testing.TB, seg string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("segment is not base64url: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("segment %s is not a JSON object: %v", raw, err)
	}
	return m
}

// forge signs an arbitrary header and claims with key, for rejection tests.
func forge(key, header string, claims map[string]any) string {
	p, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	return forgeRaw(key, header, string(p))
}

// goodClaims are valid claims at testNow, as a map to take apart.
func goodClaims(kv ...any) map[string]any {
	m := map[string]any{"sub": "o1", "iat": testNow.Unix(), "exp": testNow.Add(time.Hour).Unix(), "iss": testIssuer, "aud": testAppID}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
		} else {
			m[kv[i].(string)] = kv[i+1]
		}
	}
	return m
}

func TestTokenRejected(t *testing.T) {
	t.Parallel()
	s := newSet(t, testNow, hmacKey(t, testKey))
	const hs = `{"alg":"HS256","typ":"JWT"}`
	valid := forge(testKey, hs, goodClaims())
	if _, err := s.Verify(valid); err != nil {
		t.Fatalf("Verify(valid) = %v", err)
	}
	head, payload, sig := segments(t, valid)
	flip := func(seg string) string { // change one character, keeping it base64url
		b := []byte(seg)
		if b[5] == 'A' {
			b[5] = 'B'
		} else {
			b[5] = 'A'
		}
		return string(b)
	}
	// alg none, and HS512 "signed" with our key by someone hoping we check
	// the MAC with whatever alg the header names.
	none := enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + payload + "."
	tests := []struct{ name, token string }{
		{"alg none", none},
		{"alg none with signature", none + sig},
		{"alg HS512", forge(testKey, `{"alg":"HS512","typ":"JWT"}`, goodClaims())},
		{"alg hs256 lower case", forge(testKey, `{"alg":"hs256","typ":"JWT"}`, goodClaims())},
		{"no alg", forge(testKey, `{"typ":"JWT"}`, goodClaims())},
		{"typ not JWT", forge(testKey, `{"alg":"HS256","typ":"JWE"}`, goodClaims())},
		{"crit", forge(testKey, `{"alg":"HS256","crit":["exp"],"exp":1}`, goodClaims())},
		{"kid with an HMAC key", forge(testKey, `{"alg":"HS256","kid":""}`, goodClaims())},
		{"tampered header", flip(head) + "." + payload + "." + sig},
		{"tampered payload", head + "." + flip(payload) + "." + sig},
		{"tampered signature", head + "." + payload + "." + flip(sig)},
		{"signature cut", head + "." + payload + "." + sig[:20]},
		{"unknown key", forge("another-key:Hn4Wq8Zt2Lk6Vb9Xc3Jm7Rp", hs, goodClaims())},
		{"expired at the leeway", forge(testKey, hs, goodClaims("exp", testNow.Add(-Leeway).Unix()))},
		{"expired beyond leeway", forge(testKey, hs, goodClaims("exp", testNow.Add(-31*time.Second).Unix()))},
		{"no exp", forge(testKey, hs, goodClaims("exp", nil))},
		{"exp not a number", forge(testKey, hs, goodClaims("exp", "tomorrow"))},
		{"exp a fraction", forge(testKey, hs, goodClaims("exp", float64(testNow.Unix())+3600.5))},
		{"nbf beyond leeway", forge(testKey, hs, goodClaims("nbf", testNow.Add(31*time.Second).Unix()))},
		{"nbf not a number", forge(testKey, hs, goodClaims("nbf", "now"))},
		{"wrong iss", forge(testKey, hs, goodClaims("iss", "someone"))},
		{"no iss", forge(testKey, hs, goodClaims("iss", nil))},
		{"aud a number", forge(testKey, hs, goodClaims("aud", 5))},
		{"no sub", forge(testKey, hs, goodClaims("sub", nil))},
		{"sub not a string", forge(testKey, hs, goodClaims("sub", 42))},
		{"two segments", head + "." + payload},
		{"four segments", valid + "." + sig},
		{"empty", ""},
		{"dots only", ".."},
		{"bad base64 header", "e!J." + payload + "." + sig},
		{"padded base64 signature", valid + "="},
		{"header not JSON", enc([]byte("alg=HS256")) + "." + payload + "." + sig},
		{"payload not JSON, signed", forgeRaw(testKey, hs, "not json")},
		{"payload an array, signed", forgeRaw(testKey, hs, `["o1"]`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if c, err := s.Verify(tt.token); !errors.Is(err, ErrInvalid) {
				t.Errorf("Verify(%s) = %+v, %v; want %v", tt.name, c, err, ErrInvalid)
			}
		})
	}

	// Within the leeway both ways, an aud array, and no typ, pass.
	for _, tt := range []struct{ name, token string }{
		{"expired within leeway", forge(testKey, hs, goodClaims("exp", testNow.Add(-29*time.Second).Unix()))},
		{"nbf within leeway", forge(testKey, hs, goodClaims("nbf", testNow.Add(29*time.Second).Unix()))},
		{"aud array with ours", forge(testKey, hs, goodClaims("aud", []string{"wxother", testAppID}))},
		{"no typ", forge(testKey, `{"alg":"HS256"}`, goodClaims())},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := s.Verify(tt.token); err != nil {
				t.Errorf("Verify(%s) = %v, want ok", tt.name, err)
			}
		})
	}
}

// TestTokenAudience: the audience is the caller's to check, so Verify
// accepts any and returns it as the token gives it, a string or an array.
func TestTokenAudience(t *testing.T) {
	t.Parallel()
	s := newSet(t, testNow, hmacKey(t, testKey))
	const hs = `{"alg":"HS256","typ":"JWT"}`
	for _, tt := range []struct {
		name     string
		aud      any
		want     Audience
		contains bool
	}{
		{"ours", testAppID, Audience{testAppID}, true},
		{"wrong aud", "wxother", Audience{"wxother"}, false},
		{"aud array without ours", []string{"wxother", "wxthird"}, Audience{"wxother", "wxthird"}, false},
		{"aud array with ours", []string{"wxother", testAppID}, Audience{"wxother", testAppID}, true},
		{"empty aud array", []string{}, Audience{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := s.Verify(forge(testKey, hs, goodClaims("aud", tt.aud)))
			if err != nil || !slices.Equal(c.Audience, tt.want) {
				t.Fatalf("Verify(aud %v) = %v, %v; want %v", tt.aud, c.Audience, err, tt.want)
			}
			if got := c.Audience.Contains(testAppID); got != tt.contains {
				t.Errorf("Audience%v.Contains(%q) = %v, want %v", c.Audience, testAppID, got, tt.contains)
			}
		})
	}
}

// TestTokenRotation: keys new, old signs with new and accepts both.
func TestTokenRotation(t *testing.T) {
	t.Parallel()
	before := newSet(t, testNow, hmacKey(t, testKeyOld))
	oldToken := mustSign(t, before, claimsFor("o1"))
	after := newSet(t, testNow, hmacKey(t, testKey), hmacKey(t, testKeyOld))
	newToken := mustSign(t, after, claimsFor("o1"))
	if _, err := after.Verify(oldToken); err != nil {
		t.Errorf("after rotation, Verify(old key's token) = %v, want ok", err)
	}
	if _, err := newSet(t, testNow, hmacKey(t, testKey)).Verify(newToken); err != nil {
		t.Errorf("the new key alone: Verify(token signed after rotation) = %v, want ok", err)
	}
	if _, err := before.Verify(newToken); !errors.Is(err, ErrInvalid) {
		t.Errorf("the old key alone: Verify(token signed after rotation) = %v, want %v (not signed with the first key)", err, ErrInvalid)
	}
	if _, err := newSet(t, testNow, hmacKey(t, testKey)).Verify(oldToken); !errors.Is(err, ErrInvalid) {
		t.Errorf("old key dropped: Verify(old key's token) = %v, want %v", err, ErrInvalid)
	}
}

// sameClaims reports whether a and b are equal, an empty Audience equal to
// a nil one.
func sameClaims(a, b Claims) bool {
	na, nb := a.NotBefore, b.NotBefore
	if (na == nil) != (nb == nil) || na != nil && *na != *nb {
		return false
	}
	a.NotBefore, b.NotBefore = nil, nil
	aa, ba := a.Audience, b.Audience
	a.Audience, b.Audience = nil, nil
	return slices.Equal(aa, ba) && reflect.DeepEqual(a, b)
}

func showClaims(c Claims) string {
	nbf := "nil"
	if c.NotBefore != nil {
		nbf = fmt.Sprint(*c.NotBefore)
	}
	c.NotBefore = nil
	return fmt.Sprintf("%+v nbf=%s", c, nbf)
}

// TestClaimsRoundTrip: Verify returns what Sign signed, with iss, iat and
// exp set by Sign, whatever the caller put there.
func TestClaimsRoundTrip(t *testing.T) {
	t.Parallel()
	past, soon := testNow.Add(-time.Minute).Unix(), testNow.Add(10*time.Second).Unix()
	tests := []struct {
		name   string
		c      Claims
		cached bool // whether Verify keeps it in the cache
	}{
		{"sub and aud", claimsFor("oSub"), true},
		{"every field", Claims{Subject: "oSub", Audience: Audience{testAppID}, OpenID: "oOpen", UnionID: "oUnion",
			Phone: "+8613800138000", PhoneVerified: true}, true},
		{"phone not verified", Claims{Subject: "oSub", Audience: Audience{testAppID}, Phone: "+8613800138000"}, true},
		{"two audiences", Claims{Subject: "oSub", Audience: Audience{testAppID, "wxother"}}, true},
		{"no audience", Claims{Subject: "oSub"}, true},
		{"iss, iat and exp of the caller are replaced", Claims{Subject: "oSub", Audience: Audience{testAppID},
			Issuer: "someone", IssuedAt: 1, Expiry: 2}, true},
		{"nbf past", Claims{Subject: "oSub", Audience: Audience{testAppID}, NotBefore: &past}, true},
		{"nbf within the leeway: valid, not cached", Claims{Subject: "oSub", Audience: Audience{testAppID}, NotBefore: &soon}, false},
		{"strings to escape", Claims{Subject: "o\"sub\\\n</script>&\u2028", Audience: Audience{"wx\x00\u00e9"},
			UnionID: "联合\U0001F600", Phone: "\t+86 138"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSet(t, testNow, hmacKey(t, testKey))
			token := mustSign(t, s, tt.c)
			want := tt.c
			want.Issuer, want.IssuedAt, want.Expiry = testIssuer, testNow.Unix(), testNow.Add(2*time.Hour).Unix()
			got, err := s.Verify(token)
			if err != nil || !sameClaims(got, want) {
				t.Fatalf("Verify(Sign(%s)) =\n%s, %v; want\n%s", showClaims(tt.c), showClaims(got), err, showClaims(want))
			}
			if got.Expiry != got.IssuedAt+int64(s.TTL()/time.Second) {
				t.Errorf("exp = %d, want iat + TTL = %d", got.Expiry, got.IssuedAt+int64(s.TTL()/time.Second))
			}
			if n := s.Cached(); (n == 1) != tt.cached {
				t.Errorf("Cached() = %d after Verify, want cached %v", n, tt.cached)
			}
			if again, err := s.Verify(token); err != nil || !sameClaims(again, want) {
				t.Errorf("second Verify = %s, %v; want %s", showClaims(again), err, showClaims(want))
			}
		})
	}

	// An nbf beyond the leeway: Sign makes it, Verify refuses it until then.
	later := testNow.Add(Leeway + time.Second).Unix()
	c := Claims{Subject: "oSub", Audience: Audience{testAppID}, NotBefore: &later}
	token := mustSign(t, newSet(t, testNow, hmacKey(t, testKey)), c)
	if got, err := newSet(t, testNow, hmacKey(t, testKey)).Verify(token); !errors.Is(err, ErrInvalid) {
		t.Errorf("Verify(nbf now + %v) = %s, %v; want %v", Leeway+time.Second, showClaims(got), err, ErrInvalid)
	}
	if _, err := newSet(t, time.Unix(later, 0), hmacKey(t, testKey)).Verify(token); err != nil {
		t.Errorf("Verify(nbf) at nbf = %v, want ok", err)
	}
}

// spellings are the spellings of a base64url segment that decode, when the
// decoder ignores the unused low bits of its last character, to the same
// bytes: the canonical one first.
func spellings(t testing.TB, seg string) []string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	unused := 6 * len(seg) % 8
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	if last < 0 || last&(1<<unused-1) != 0 {
		t.Fatalf("segment is not canonical base64url")
	}
	out := []string{seg}
	for i := 1; i < 1<<unused; i++ {
		alt := seg[:len(seg)-1] + string(alphabet[last|i])
		a, errA := base64.RawURLEncoding.DecodeString(alt)
		b, errB := base64.RawURLEncoding.DecodeString(seg)
		if errA != nil || errB != nil || string(a) != string(b) {
			t.Fatalf("spelling %d does not decode to the same bytes", i)
		}
		out = append(out, alt)
	}
	return out
}

// TestStrictBase64: of the spellings of a segment that a lenient decoder
// reads as the same bytes, only the canonical one is a token, even when
// the signature covers the other spelling.
func TestStrictBase64(t *testing.T) {
	t.Parallel()
	s := New(Options{Keys: []*Key{hmacKey(t, testKey)}, TTL: time.Hour, Issuer: testIssuer, CacheSize: -1, Now: fixedClock(testNow)})
	claims := string(appendClaims(nil, &Claims{Subject: "oStrict", Issuer: testIssuer, Audience: Audience{testAppID},
		IssuedAt: testNow.Unix(), Expiry: testNow.Add(time.Hour).Unix()}))
	const header = `{"alg":"HS256","typ":"JWT"}`

	check := func(t *testing.T, tokens []string) {
		t.Helper()
		if _, err := s.Verify(tokens[0]); err != nil {
			t.Fatalf("Verify(canonical spelling) = %v, want ok", err)
		}
		for i, tok := range tokens[1:] {
			if _, err := s.Verify(tok); !errors.Is(err, ErrInvalid) {
				t.Errorf("Verify(spelling %d of %d) = %v, want %v", i+2, len(tokens), err, ErrInvalid)
			}
		}
	}

	t.Run("signature", func(t *testing.T) {
		t.Parallel()
		head, payload, sig := segments(t, mustSign(t, s, claimsFor("oStrict")))
		var tokens []string
		for _, alt := range spellings(t, sig) {
			tokens = append(tokens, head+"."+payload+"."+alt)
		}
		if len(tokens) != 4 {
			t.Fatalf("an HS256 signature has %d spellings, want 4", len(tokens))
		}
		check(t, tokens)
	})
	// A segment of 3n bytes has one spelling; 3n+1 and 3n+2 bytes, several.
	for _, pad := range []string{" ", "  "} {
		t.Run(fmt.Sprintf("header of %d bytes", len(header+pad)), func(t *testing.T) {
			t.Parallel()
			payload := enc([]byte(claims))
			var tokens []string
			for _, alt := range spellings(t, enc([]byte(header+pad))) {
				tokens = append(tokens, alt+"."+payload+"."+enc(mac([]byte(testKey), alt+"."+payload)))
			}
			if len(tokens) < 4 {
				t.Fatalf("%d spellings, want at least 4", len(tokens))
			}
			check(t, tokens)
		})
	}
	for _, pad := range []string{"", " ", "  "} {
		p := claims + pad
		if len(p)%3 == 0 {
			continue
		}
		t.Run(fmt.Sprintf("payload of %d bytes", len(p)), func(t *testing.T) {
			t.Parallel()
			head := enc([]byte(header))
			var tokens []string
			for _, alt := range spellings(t, enc([]byte(p))) {
				tokens = append(tokens, head+"."+alt+"."+enc(mac([]byte(testKey), head+"."+alt)))
			}
			check(t, tokens)
		})
	}
}

// TestDuplicateMembers: a member given twice, or in another case, is read
// differently by different verifiers; each token here is validly signed
// and would pass but for that.
func TestDuplicateMembers(t *testing.T) {
	t.Parallel()
	es := parseKeys(t, newP256(t))[0]
	s := New(Options{Keys: []*Key{hmacKey(t, testKey), es}, TTL: time.Hour, Issuer: testIssuer, CacheSize: -1, Now: fixedClock(testNow)})
	iat, exp := testNow.Unix(), testNow.Add(time.Hour).Unix()
	claims := func(extra string) string {
		return fmt.Sprintf(`{"sub":"a",%s"iss":%q,"aud":%q,"iat":%d,"exp":%d}`, extra, testIssuer, testAppID, iat, exp)
	}
	const hs = `{"alg":"HS256","typ":"JWT"}`
	esHead := func(extra string) string { return `{"alg":"ES256","typ":"JWT",` + extra + `"kid":"` + es.ID() + `"}` }
	esSign := func(header, payload string) string {
		input := enc([]byte(header)) + "." + enc([]byte(payload))
		return input + "." + enc(keySigner(t, es)(input))
	}
	tests := []struct {
		name       string
		good, dupe string // the same token without and with the extra member
	}{
		{`"SUB" beside "sub"`, forgeRaw(testKey, hs, claims("")), forgeRaw(testKey, hs, claims(`"SUB":"b",`))},
		{`"sub" twice`, forgeRaw(testKey, hs, claims("")), forgeRaw(testKey, hs, claims(`"sub":"b",`))},
		{`"Exp" beside "exp"`, forgeRaw(testKey, hs, claims("")), forgeRaw(testKey, hs, claims(fmt.Sprintf(`"Exp":%d,`, exp+86400)))},
		{`"exp" twice`, forgeRaw(testKey, hs, claims("")), forgeRaw(testKey, hs, claims(fmt.Sprintf(`"exp":%d,`, exp)))},
		{`"Aud" beside "aud"`, forgeRaw(testKey, hs, claims("")), forgeRaw(testKey, hs, claims(`"Aud":"wxother",`))},
		{`"iss" twice`, forgeRaw(testKey, hs, claims("")), forgeRaw(testKey, hs, claims(fmt.Sprintf(`"iss":%q,`, testIssuer)))},
		{`a second "alg"`, forgeRaw(testKey, hs, claims("")), forgeRaw(testKey, `{"alg":"HS256","typ":"JWT","alg":"HS256"}`, claims(""))},
		{`a second "alg", none first`, forgeRaw(testKey, hs, claims("")), forgeRaw(testKey, `{"alg":"none","typ":"JWT","alg":"HS256"}`, claims(""))},
		{`"ALG" beside "alg"`, forgeRaw(testKey, hs, claims("")), forgeRaw(testKey, `{"alg":"HS256","ALG":"none","typ":"JWT"}`, claims(""))},
		{`"typ" twice`, forgeRaw(testKey, hs, claims("")), forgeRaw(testKey, `{"alg":"HS256","typ":"JWT","typ":"JWT"}`, claims(""))},
		{`"kid" twice`, esSign(esHead(""), claims("")), esSign(esHead(`"kid":"`+es.ID()+`",`), claims(""))},
		{`"KID" beside "kid"`, esSign(esHead(""), claims("")), esSign(esHead(`"KID":"other",`), claims(""))},
		{`"SUB" beside "sub", ES256`, esSign(esHead(""), claims("")), esSign(esHead(""), claims(`"SUB":"b",`))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := s.Verify(tt.good); err != nil {
				t.Fatalf("Verify(the token without the extra member) = %v, want ok", err)
			}
			if c, err := s.Verify(tt.dupe); !errors.Is(err, ErrInvalid) {
				t.Errorf("Verify(%s) = %+v, %v; want %v", tt.name, c, err, ErrInvalid)
			}
		})
	}
}

// FuzzVerifyToken feeds the token parser arbitrary input: it must never
// panic, and whatever it accepts must be exactly what we would sign.
func FuzzVerifyToken(f *testing.F) {
	s := New(Options{Keys: []*Key{hmacKey(f, testKey)}, TTL: 2 * time.Hour, Issuer: testIssuer, CacheSize: -1, Now: fixedClock(testNow)})
	c := claimsFor("o1")
	c.UnionID, c.Phone, c.PhoneVerified = "u1", "+8613800138000", true
	good := mustSign(f, s, c)
	f.Add(good)
	f.Add(forge(testKey, `{"alg":"none"}`, map[string]any{"sub": "o1"}))
	f.Add(forge(testKey, `{"alg":"HS256"}`, goodClaims("SUB", "o2")))
	f.Add("a.b.c")
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := s.Verify(token)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify error %v is not %v", err, ErrInvalid)
			}
			return
		}
		// Only a token signed with our key can pass: check it carries it.
		head, payload, sig := segments(t, token)
		if want := enc(mac([]byte(testKey), head+"."+payload)); sig != want {
			t.Fatalf("Verify accepted %q, whose signature is not ours", token)
		}
		if c.Subject == "" || c.Issuer != testIssuer {
			t.Fatalf("Verify accepted claims %s", showClaims(c))
		}
		// And it is exactly what we sign for those claims, at that time.
		again := New(Options{Keys: []*Key{hmacKey(t, testKey)}, TTL: time.Duration(c.Expiry-c.IssuedAt) * time.Second,
			Issuer: testIssuer, Now: fixedClock(time.Unix(c.IssuedAt, 0))})
		if tok, err := again.Sign(c); err != nil || tok != token {
			t.Fatalf("Sign(Verify(%q)) = %q, %v: not the token we would have signed", token, tok, err)
		}
	})
}
