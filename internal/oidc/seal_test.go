package oidc

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
)

func newTestSealer(t testing.TB, key []byte, purpose string) sealer {
	t.Helper()
	s, err := newSealer(key, purpose)
	if err != nil {
		t.Fatalf("newSealer = %v", err)
	}
	return s
}

func randomKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

var (
	testPending = pending{ClientID: confID, RedirectURI: confRedirect2, State: "st<&>\"ate", Nonce: "n\u2028once",
		Challenge: rfcChallenge, Flow: FlowOA, WXState: strings.Repeat("ab", 16), Exp: testNow.Unix() + 600}
	testGrant = grant{ID: strings.Repeat("0f", 16), UnionID: "uUnion", OpenID: "oOpen", AppID: webAppID, ClientID: confID,
		RedirectURI: confRedirect, Nonce: "nonce", Challenge: rfcChallenge, AuthTime: testNow.Unix(), Exp: testNow.Unix() + 60}
)

// TestSealRoundTrip: what is sealed opens as it was, as base64url
// without padding, and sealing twice gives two texts (a fresh nonce).
func TestSealRoundTrip(t *testing.T) {
	t.Parallel()
	s := newTestSealer(t, randomKey(), CookieName)
	for _, v := range []any{testPending, testGrant, pending{}} {
		text := s.seal(v)
		if _, err := base64.RawURLEncoding.Strict().DecodeString(text); err != nil || strings.ContainsAny(text, "=+/") {
			t.Errorf("seal(%T) = %q, want unpadded base64url", v, text)
		}
		got := reflect.New(reflect.TypeOf(v))
		if err := s.open(text, got.Interface()); err != nil {
			t.Fatalf("open(seal(%+v)) = %v", v, err)
		}
		if !reflect.DeepEqual(got.Elem().Interface(), v) {
			t.Errorf("open(seal(%+v)) = %+v", v, got.Elem().Interface())
		}
		if again := s.seal(v); again == text {
			t.Errorf("seal(%T) twice = the same text; want a fresh nonce each time", v)
		}
	}
	// Nothing of the value shows through.
	text := s.seal(testGrant)
	raw, _ := base64.RawURLEncoding.DecodeString(text)
	for _, clear := range []string{testGrant.UnionID, testGrant.OpenID, testGrant.AppID, testGrant.ClientID, "rp.example.com"} {
		if bytes.Contains(raw, []byte(clear)) || strings.Contains(text, clear) {
			t.Errorf("the sealed grant shows %q", clear)
		}
	}
}

// TestSealTamper: a sealed text changed in any one character, cut,
// lengthened or re-spelled does not open.
func TestSealTamper(t *testing.T) {
	t.Parallel()
	s := newTestSealer(t, randomKey(), CookieName)
	text := s.seal(testPending)
	var v pending
	if err := s.open(text, &v); err != nil {
		t.Fatalf("open(the genuine text) = %v", err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	refused := 0
	for i := range len(text) {
		for _, c := range []byte(alphabet) {
			if c == text[i] {
				continue
			}
			changed := text[:i] + string(c) + text[i+1:]
			if err := s.open(changed, &v); err == nil {
				t.Fatalf("open(the text with character %d changed to %c) = ok, want refused", i, c)
			}
			refused++
		}
	}
	if refused != len(text)*63 {
		t.Fatalf("%d changed texts tried, want %d", refused, len(text)*63)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(text)
	for name, bad := range map[string]string{
		"empty":              "",
		"cut by one":         text[:len(text)-1],
		"cut to the nonce":   text[:16],
		"one more character": text + "A",
		"padded":             text + "==",
		"standard base64":    base64.StdEncoding.EncodeToString(raw),
		"a space":            text[:10] + " " + text[10:],
		"nonce only":         base64.RawURLEncoding.EncodeToString(raw[:12]),
		"nonce and tag only": base64.RawURLEncoding.EncodeToString(raw[:28]),
		"last byte flipped":  base64.RawURLEncoding.EncodeToString(append(bytes.Clone(raw[:len(raw)-1]), raw[len(raw)-1]^1)),
		"first byte flipped": base64.RawURLEncoding.EncodeToString(append([]byte{raw[0] ^ 0x80}, raw[1:]...)),
		"twice":              text + text,
	} {
		if err := s.open(bad, &v); err == nil {
			t.Errorf("open(%s) = ok, want refused", name)
		}
	}
}

// TestSealKeys: only the same key and purpose open a text.
func TestSealKeys(t *testing.T) {
	t.Parallel()
	key := randomKey()
	cookie := newTestSealer(t, key, CookieName)
	text := cookie.seal(testPending)
	var v pending
	if err := newTestSealer(t, bytes.Clone(key), CookieName).open(text, &v); err != nil || v != testPending {
		t.Errorf("open under the same key and purpose = %+v, %v; want the value", v, err)
	}
	for name, s := range map[string]sealer{
		"another key":                newTestSealer(t, randomKey(), CookieName),
		"the same key, code purpose": newTestSealer(t, key, "code"),
		"the same key, no purpose":   newTestSealer(t, key, ""),
	} {
		if err := s.open(text, &v); err == nil {
			t.Errorf("open under %s = ok, want refused", name)
		}
	}
	if _, err := newSealer(make([]byte, 7), CookieName); err == nil {
		t.Errorf("newSealer(7-byte key) = ok, want an error")
	}
}

// TestProviderSealers: the provider's cookie and code sealers each have a
// key of their own, derived from the token key file's first key: a
// cookie is not a code, nor a code a cookie.
func TestProviderSealers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cookie := f.p.cookie.seal(testPending)
	code := f.p.code.seal(testGrant)
	var g grant
	var r pending
	if err := f.p.code.open(cookie, &g); err == nil {
		t.Errorf("the code sealer opens a cookie: %+v", g)
	}
	if err := f.p.cookie.open(code, &r); err == nil {
		t.Errorf("the cookie sealer opens a code: %+v", r)
	}
	// Nor do they open each other's text with the other's purpose: the
	// keys differ, not only the additional data.
	crossed := newTestSealer(t, f.keys[0].Derive("wxlogin oidc authorization code v1"), CookieName)
	if err := crossed.open(cookie, &r); err == nil {
		t.Errorf("the code key opens a cookie under the cookie's purpose")
	}
	if err := (sealer{aead: f.p.code.aead, purpose: []byte(CookieName)}).open(cookie, &r); err == nil {
		t.Errorf("the provider's code key opens a cookie: the two keys are one")
	}
	if err := newTestSealer(t, f.keys[0].Derive("wxlogin oidc authorization request v1"), CookieName).open(cookie, &r); err != nil {
		t.Errorf("the cookie key derived from the first key does not open the cookie: %v", err)
	}
	// A cookie given as a code is refused at /token, a code given as a
	// cookie at /callback.
	if _, s := f.p.Callback(values("state", testPending.WXState, "code", "c"), code); s.Problem != ProblemExpired {
		t.Errorf("Callback(a code as the cookie) = %+v, want the %s page", s, ProblemExpired)
	}
	form := tokenForm(cookie, confRedirect)
	if _, terr := f.tryRedeem(form, basic(confID, confSecret)); terr == nil || terr.Code != "invalid_grant" {
		t.Errorf("Redeem(a cookie as the code) = %+v, want invalid_grant", terr)
	}
}
