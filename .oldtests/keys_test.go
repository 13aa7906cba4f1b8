package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"

	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// keyTokens is a token service with these key-file keys (and HMAC keys).
func keyTokens(t testing.TB, now time.Time, data []byte, hmac ...string) *tokens {
	t.Helper()
	keys, err := parseKeys(data)
	if err != nil {
		t.Fatal(err)
	}
	return newTokens(hmacKeys(hmac...), keys, 2*time.Hour, tokenIssuer, []string{testAppID}, fixedClock(now))
}

// TestRFC8037 checks the Ed25519 example of RFC 8037 appendix A byte for
// byte: the public key from the private one (A.1, A.2), its RFC 7638
// thumbprint (A.3), and the signature (A.4; Ed25519 is deterministic).
func TestRFC8037(t *testing.T) {
	t.Parallel()
	d, _ := b64.DecodeString("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
	priv := ed25519.NewKeyFromSeed(d)
	k := edKey(priv.Public().(ed25519.PublicKey), priv)
	if k.pubJWK.X != "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" {
		t.Errorf("x = %s, want the RFC's A.2 public key", k.pubJWK.X)
	}
	if k.kid != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Errorf("kid = %s, want the RFC's A.3 thumbprint", k.kid)
	}
	const input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
	const want = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
	sig, err := k.sign(input)
	if err != nil || b64.EncodeToString(sig) != want {
		t.Errorf("sign = %s, %v; want the RFC's A.4 signature", b64.EncodeToString(sig), err)
	}
	if !k.verify(input, sig) || k.verify(input+"x", sig) {
		t.Errorf("verify does not tell the RFC's signature from a wrong input")
	}
}

// TestRFC7515ES256 verifies the ES256 example of RFC 7515 appendix A.3
// (ECDSA signing is randomised, so only verification has a fixed vector),
// and refuses the same signature in ASN.1 DER.
func TestRFC7515ES256(t *testing.T) {
	t.Parallel()
	xs, _ := b64.DecodeString("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU")
	ys, _ := b64.DecodeString("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0")
	point := append(append([]byte{4}, xs...), ys...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ecKey(pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	const input = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
	sig, _ := b64.DecodeString("DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q")
	if !k.verify(input, sig) {
		t.Fatal("the RFC 7515 A.3 signature does not verify")
	}
	if k.verify(input, derOf(sig)) {
		t.Error("the same signature in DER verifies; only r‖s may")
	}
	bad := bytes.Clone(sig)
	bad[10] ^= 1
	if k.verify(input, bad) {
		t.Error("a changed signature verifies")
	}
}

// derOf re-encodes a 64-byte r‖s signature as ASN.1 DER, the form
// ecdsa.SignASN1 produces and JWS forbids.
func derOf(sig []byte) []byte {
	enc := func(b []byte) []byte {
		b = bytes.TrimLeft(b, "\x00")
		if b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return append([]byte{2, byte(len(b))}, b...)
	}
	body := append(enc(sig[:32]), enc(sig[32:])...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

func TestKeyFiles(t *testing.T) {
	t.Parallel()
	ec, ed := newP256(t), newEd25519(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ecParams := []byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n")
	cert := selfSigned(t, ec)

	good := []struct {
		name string
		data []byte
		algs []string
	}{
		{"PKCS#8 P-256", pemOf(t, false, ec), []string{algES256}},
		{"SEC 1 after EC PARAMETERS (openssl ecparam -genkey)", append(ecParams, pemOf(t, true, ec)...), []string{algES256}},
		{"PKCS#8 Ed25519", pemOf(t, false, ed), []string{algEdDSA}},
		{"two keys, certificate ignored", append(append(pemOf(t, false, ed), cert...), pemOf(t, false, ec)...), []string{algEdDSA, algES256}},
	}
	for _, tt := range good {
		keys, err := parseKeys(tt.data)
		if err != nil {
			t.Errorf("%s: parseKeys = %v", tt.name, err)
			continue
		}
		var algs []string
		for _, k := range keys {
			algs = append(algs, k.alg)
		}
		if strings.Join(algs, ",") != strings.Join(tt.algs, ",") {
			t.Errorf("%s: algorithms %v, want %v", tt.name, algs, tt.algs)
		}
	}

	rsaPKCS1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	bad := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no PRIVATE KEY"},
		{"garbage", []byte("not a key at all"), "no PRIVATE KEY"},
		{"RSA PKCS#8", pemOf(t, false, rsaKey), "*rsa.PrivateKey key"},
		{"RSA PKCS#1", rsaPKCS1, "RSA PRIVATE KEY"},
		{"P-384", pemOf(t, false, p384), "P-384"},
		{"certificate only", cert, "no PRIVATE KEY"},
		{"broken key", []byte("-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----\n"), "not a valid key"},
		{"same key twice", pemOf(t, false, ec, ec), "repeats"},
	}
	for _, tt := range bad {
		_, err := parseKeys(tt.data)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: parseKeys = %v, want an error containing %q", tt.name, err, tt.want)
			continue
		}
		// Never the key material: no line of the PEM body in the message.
		for _, line := range strings.Split(string(tt.data), "\n") {
			if len(line) > 16 && !strings.HasPrefix(line, "-----") && strings.Contains(err.Error(), line) {
				t.Errorf("%s: the error %q shows key material", tt.name, err)
			}
		}
	}

	// Through the configuration: exit 2 naming TOKEN_KEY_FILE.
	for name, env := range map[string]map[string]string{
		"missing": with(realEnv, "TOKEN_KEY_FILE", "/nonexistent/key.pem"),
		"RSA":     with(realEnv, "TOKEN_KEY_FILE", writeKeyFile(t, pemOf(t, false, rsaKey))),
		"empty":   with(realEnv, "TOKEN_KEY_FILE", writeKeyFile(t, nil)),
		"flag":    with(realEnv),
	} {
		args := []string{}
		if name == "flag" {
			args = []string{"-token-key-file", writeKeyFile(t, cert)}
		}
		_, err := loadConfig(args, envOf(env), io.Discard)
		var ce *configError
		want := "TOKEN_KEY_FILE: "
		if name == "flag" {
			want = "-token-key-file: "
		}
		if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: loadConfig = %v, want a *configError starting %q", name, err, want)
		}
	}
}

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

// TestPublicKeyTokens signs with ES256 and EdDSA and checks the header, the
// signature's form, and that an independent verifier built from the JWKS
// alone accepts the token.
func TestPublicKeyTokens(t *testing.T) {
	t.Parallel()
	for _, key := range []any{newP256(t), newEd25519(t)} {
		tok := keyTokens(t, testNow, pemOf(t, false, key))
		token, err := tok.sign(identity{OpenID: "oUser", UnionID: "oUnion", AppID: testAppID})
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(token, ".")
		var h map[string]string
		hb, _ := b64.DecodeString(parts[0])
		json.Unmarshal(hb, &h)
		if h["alg"] != tok.signer.alg || h["typ"] != "JWT" || h["kid"] != tok.signer.kid || len(h) != 3 {
			t.Errorf("header = %s, want alg %s, typ JWT and kid %s", hb, tok.signer.alg, tok.signer.kid)
		}
		sig, _ := b64.DecodeString(parts[2])
		if len(sig) != 64 {
			t.Errorf("%s signature is %d bytes, want 64 (r‖s, not DER)", h["alg"], len(sig))
		}
		// An independent check from the published JWK.
		var set struct{ Keys []map[string]string }
		if err := json.Unmarshal(jwks(tok.publicKeys()), &set); err != nil || len(set.Keys) != 1 {
			t.Fatalf("jwks = %s, %v", jwks(tok.publicKeys()), err)
		}
		jwk := set.Keys[0]
		if _, ok := jwk["d"]; ok {
			t.Fatalf("the JWKS has a private member: %v", jwk)
		}
		input := []byte(parts[0] + "." + parts[1])
		x, _ := b64.DecodeString(jwk["x"])
		switch jwk["kty"] {
		case "EC":
			y, _ := b64.DecodeString(jwk["y"])
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
			sum := sha256.Sum256(input)
			if err != nil || !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
				t.Errorf("the ES256 token does not verify with the JWKS key: %v", err)
			}
			if jwk["alg"] != "ES256" || jwk["crv"] != "P-256" || jwk["use"] != "sig" || jwk["kid"] != h["kid"] {
				t.Errorf("JWK = %v", jwk)
			}
		case "OKP":
			if !ed25519.Verify(x, input, sig) {
				t.Errorf("the EdDSA token does not verify with the JWKS key")
			}
			if jwk["alg"] != "EdDSA" || jwk["crv"] != "Ed25519" || jwk["use"] != "sig" || jwk["kid"] != h["kid"] {
				t.Errorf("JWK = %v", jwk)
			}
		}
		id, err := tok.verify(token)
		if err != nil || id.OpenID != "oUser" || id.UnionID != "oUnion" || id.AppID != testAppID {
			t.Errorf("verify(sign(x)) = %+v, %v", id, err)
		}
	}
}

// resign replaces a token's header and signs it with sign.
func resign(token, header string, sign func(input string) []byte) string {
	_, rest, _ := strings.Cut(token, ".")
	payload, _, _ := strings.Cut(rest, ".")
	input := b64.EncodeToString([]byte(header)) + "." + payload
	return input + "." + b64.EncodeToString(sign(input))
}

func hs256(key []byte) func(string) []byte {
	return func(input string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(input))
		return m.Sum(nil)
	}
}

// TestAlgorithmConfusion checks that the token never chooses how it is
// checked (RFC 8725 §2.1): every forgery a public key makes possible is
// refused, with and without HMAC keys configured beside it.
func TestAlgorithmConfusion(t *testing.T) {
	t.Parallel()
	ec := newP256(t)
	for _, hmacKeys := range [][]string{nil, {testKey}} {
		tok := keyTokens(t, testNow, pemOf(t, false, ec), hmacKeys...)
		tok.cache = nil // every attempt goes through the full check
		good, err := tok.sign(identity{OpenID: "oVictim", AppID: testAppID})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tok.verify(good); err != nil {
			t.Fatalf("the genuine token: %v", err)
		}
		kid := tok.signer.kid
		pubDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
		pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
		jwkJSON, _ := json.Marshal(tok.signer.pubJWK)
		goodSig, _ := b64.DecodeString(good[strings.LastIndex(good, ".")+1:])
		foreign := newP256(t)

		forged := map[string]string{
			"HS256 keyed with the PEM public key":          resign(good, `{"alg":"HS256","typ":"JWT"}`, hs256(pubPEM)),
			"HS256 keyed with the PEM public key, our kid": resign(good, `{"alg":"HS256","typ":"JWT","kid":"`+kid+`"}`, hs256(pubPEM)),
			"HS256 keyed with the DER public key":          resign(good, `{"alg":"HS256","typ":"JWT"}`, hs256(pubDER)),
			"HS256 keyed with the JWK":                     resign(good, `{"alg":"HS256","typ":"JWT","kid":"`+kid+`"}`, hs256(jwkJSON)),
			"HS256 keyed with the JWK x":                   resign(good, `{"alg":"HS256"}`, hs256([]byte(tok.signer.pubJWK.X))),
			"DER signature": resign(good, `{"alg":"ES256","typ":"JWT","kid":"`+kid+`"}`, func(string) []byte {
				return derOf(goodSig)
			}),
			"a foreign key with our kid": resign(good, `{"alg":"ES256","typ":"JWT","kid":"`+kid+`"}`, func(in string) []byte {
				k, _ := ecKey(&foreign.PublicKey, foreign)
				s, _ := k.sign(in)
				return s
			}),
			"a foreign key without kid": resign(good, `{"alg":"ES256","typ":"JWT"}`, func(in string) []byte {
				k, _ := ecKey(&foreign.PublicKey, foreign)
				s, _ := k.sign(in)
				return s
			}),
			"unknown kid":           resign(good, `{"alg":"ES256","typ":"JWT","kid":"nope"}`, func(string) []byte { return goodSig }),
			"ES384 header":          resign(good, `{"alg":"ES384","typ":"JWT","kid":"`+kid+`"}`, func(string) []byte { return goodSig }),
			"RS256 header":          resign(good, `{"alg":"RS256","typ":"JWT"}`, func(string) []byte { return goodSig }),
			"none":                  resign(good, `{"alg":"none","typ":"JWT"}`, func(string) []byte { return nil }),
			"EdDSA header, our kid": resign(good, `{"alg":"EdDSA","typ":"JWT","kid":"`+kid+`"}`, func(string) []byte { return goodSig }),
		}
		for name, token := range forged {
			if id, err := tok.verify(token); !errors.Is(err, errInvalidToken) {
				t.Errorf("HMAC keys %d: %s: verify = %+v, %v; want errInvalidToken", len(hmacKeys), name, id, err)
			}
		}
	}
}

// TestMigrationAndRotation follows the README's steps: HS256 to ES256
// without logging anyone out, then a new key added second, moved first,
// and the old one dropped.
func TestMigrationAndRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newP256(t), newP256(t)

	hsOnly := newTestTokens(testNow, testKey)
	hsToken, _ := hsOnly.sign(identity{OpenID: "oOld", AppID: testAppID})

	both := keyTokens(t, testNow, pemOf(t, false, oldKey), testKey)
	if both.signer.alg != algES256 {
		t.Fatalf("with TOKEN_SECRET and TOKEN_KEY_FILE the signer is %s, want ES256", both.signer.alg)
	}
	if pub := both.publicKeys(); len(pub) != 1 || pub[0].alg != algES256 || bytes.Contains(jwks(pub), []byte(testKey)) {
		t.Errorf("published keys with TOKEN_SECRET beside TOKEN_KEY_FILE: %s; want the P-256 key only", jwks(pub))
	}
	if _, err := both.verify(hsToken); err != nil {
		t.Errorf("an HS256 token from before the move: %v", err)
	}
	esOld, _ := both.sign(identity{OpenID: "oNew", AppID: testAppID})
	if _, err := hsOnly.verify(esOld); err == nil {
		t.Errorf("an HMAC-only verifier accepted an ES256 token")
	}

	// Rotation: [old, new] → [new, old] → [new].
	step1 := keyTokens(t, testNow, pemOf(t, false, oldKey, newKey))
	step2 := keyTokens(t, testNow, pemOf(t, false, newKey, oldKey))
	step3 := keyTokens(t, testNow, pemOf(t, false, newKey))
	if !bytes.Contains(jwks(step1.publicKeys()), []byte(step2.signer.kid)) {
		t.Errorf("the new key is not published before it signs")
	}
	tok2, _ := step2.sign(identity{OpenID: "o2", AppID: testAppID})
	for name, tk := range map[string]*tokens{"step 1": step1, "step 2": step2, "step 3": step3} {
		if _, err := tk.verify(tok2); err != nil {
			t.Errorf("%s does not verify a token of the new key: %v", name, err)
		}
	}
	if _, err := step2.verify(esOld); err != nil {
		t.Errorf("step 2 does not verify a token of the old key: %v", err)
	}
	if _, err := step3.verify(esOld); err == nil {
		t.Errorf("after the old key is dropped, its tokens still verify")
	}
}

// TestTokenCache checks that a verified token is not checked again, that
// an entry never outlives its token, and that the cache is bounded.
func TestTokenCache(t *testing.T) {
	t.Parallel()
	now := testNow
	tok := keyTokens(t, now, pemOf(t, false, newP256(t)))
	tok.now = func() time.Time { return now }
	token, _ := tok.sign(identity{OpenID: "oCached", AppID: testAppID})
	if _, err := tok.verify(token); err != nil {
		t.Fatal(err)
	}
	// With the keys gone, only the cache can answer.
	keys := tok.keys
	tok.keys = nil
	if id, err := tok.verify(token); err != nil || id.OpenID != "oCached" {
		t.Errorf("second verify = %+v, %v; want the cached identity without a signature check", id, err)
	}
	if _, err := tok.verify(token + "x"); err == nil {
		t.Errorf("a different token was answered from the cache")
	}
	now = now.Add(2*time.Hour + tokenLeeway)
	if _, err := tok.verify(token); err == nil {
		t.Errorf("an expired token was answered from the cache")
	}
	tok.keys = keys
	if _, err := tok.verify(token); err == nil {
		t.Errorf("an expired token verified")
	}

	c := newTokenCache(3)
	for i := range 10 {
		c.put(sha256.Sum256([]byte{byte(i)}), identity{OpenID: "o", Exp: testNow.Unix() + 10})
	}
	if c.len() != 3 {
		t.Errorf("cache of 3 holds %d after 10 puts", c.len())
	}
}

func TestJWKSAndDiscovery(t *testing.T) {
	t.Parallel()
	ec, ed := newP256(t), newEd25519(t)
	keyFile := writeKeyFile(t, pemOf(t, false, ec, ed))
	in := startRun(t, map[string]string{"WX_MOCK": "1", "TOKEN_KEY_FILE": keyFile, "TOKEN_ISSUER": "https://login.example.com/"})

	a := do(t, mustRequest("GET", in.url+"/.well-known/jwks.json"))
	if a.status != 200 || a.header.Get("Cache-Control") != "public, max-age=300" || a.header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("jwks = %d %v %s", a.status, a.header, a.raw)
	}
	keys, _ := a.body["keys"].([]any)
	if len(keys) != 2 || strings.Contains(a.raw, `"d"`) {
		t.Fatalf("jwks = %s, want two public keys in file order", a.raw)
	}
	if k0 := keys[0].(map[string]any); k0["kty"] != "EC" || k0["alg"] != "ES256" {
		t.Errorf("first key = %v, want the P-256 key", k0)
	}
	if h := do(t, mustRequest("HEAD", in.url+"/.well-known/jwks.json")); h.status != 200 || h.raw != "" {
		t.Errorf("HEAD jwks = %d %q", h.status, h.raw)
	}
	wantError(t, do(t, mustRequest("POST", in.url+"/.well-known/jwks.json")), 405, "method_not_allowed")

	d := do(t, mustRequest("GET", in.url+"/.well-known/openid-configuration"))
	if d.status != 200 || d.str("issuer") != "https://login.example.com" ||
		d.str("jwks_uri") != "https://login.example.com/.well-known/jwks.json" || d.header.Get("Cache-Control") != "public, max-age=300" {
		t.Errorf("discovery = %d %s", d.status, d.raw)
	}
	if algs, _ := d.body["id_token_signing_alg_values_supported"].([]any); len(algs) != 2 || algs[0] != "ES256" || algs[1] != "EdDSA" {
		t.Errorf("algorithms = %v", d.body["id_token_signing_alg_values_supported"])
	}

	// The token's iss is the issuer, and /session accepts it.
	login := in.login(t, "abc")
	parts := strings.Split(login.str("token"), ".")
	payload, _ := b64.DecodeString(parts[1])
	if !strings.Contains(string(payload), `"iss":"https://login.example.com"`) {
		t.Errorf("payload = %s, want iss = the issuer", payload)
	}
	s := do(t, bearerRequest("GET", in.url+"/session", login.str("token")))
	if s.status != 200 || s.str("openid") != login.str("openid") {
		t.Errorf("session = %d %s", s.status, s.raw)
	}

	// Without TOKEN_KEY_FILE both are 404; a name as issuer has no discovery.
	plain := startRun(t, map[string]string{"WX_MOCK": "1", "TOKEN_ISSUER": "https://login.example.com"})
	wantError(t, do(t, mustRequest("GET", plain.url+"/.well-known/jwks.json")), 404, "not_found")
	wantError(t, do(t, mustRequest("GET", plain.url+"/.well-known/openid-configuration")), 404, "not_found")
	named := startRun(t, map[string]string{"WX_MOCK": "1", "TOKEN_KEY_FILE": keyFile})
	wantError(t, do(t, mustRequest("GET", named.url+"/.well-known/openid-configuration")), 404, "not_found")
	if a := do(t, mustRequest("GET", named.url+"/.well-known/jwks.json")); a.status != 200 {
		t.Errorf("jwks with a plain issuer = %d", a.status)
	}
}

func TestIssuerSetting(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{
		"":                           "wxlogin",
		"my-app":                     "my-app",
		"https://login.example.com/": "https://login.example.com",
		"https://x.example/auth":     "https://x.example/auth",
	} {
		c, err := loadConfig(nil, envOf(with(realEnv, "TOKEN_ISSUER", v)), io.Discard)
		if err != nil || c.TokenIssuer != want {
			t.Errorf("TOKEN_ISSUER=%q: %q, %v; want %q", v, c.TokenIssuer, err, want)
		}
	}
	for _, v := range []string{"ftp://x.example", "https://", "https://x.example/?a=1", "https://x.example/#f", "://x"} {
		_, err := loadConfig(nil, envOf(with(realEnv, "TOKEN_ISSUER", v)), io.Discard)
		if ce, ok := errors.AsType[*configError](err); !ok || !strings.HasPrefix(ce.Error(), "TOKEN_ISSUER: ") {
			t.Errorf("TOKEN_ISSUER=%q: %v, want exit 2 naming TOKEN_ISSUER", v, err)
		}
	}
}

func TestGenKey(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"wxlogin", "-genkey"}, envOf(nil), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(out.Bytes())
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("-genkey printed %q, want a PRIVATE KEY block", out.String())
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if ec, ok := k.(*ecdsa.PrivateKey); err != nil || !ok || ec.Curve != elliptic.P256() {
		t.Fatalf("-genkey key = %T, %v; want P-256", k, err)
	}
	if c, err := loadConfig(nil, envOf(with(realEnv, "TOKEN_KEY_FILE", writeKeyFile(t, out.Bytes()))), io.Discard); err != nil || len(c.SigningKeys) != 1 {
		t.Errorf("the -genkey key as TOKEN_KEY_FILE: %v", err)
	}
}

func bearerRequest(method, url, token string) *http.Request {
	r := mustRequest(method, url)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// FuzzVerifyPublicKeyToken feeds arbitrary tokens to a verifier holding a
// P-256 key, an Ed25519 key and an HMAC key. It must never panic, and
// whatever it accepts must carry a valid signature by one of them under
// that key's own algorithm, our issuer and a configured audience.
func FuzzVerifyPublicKeyToken(f *testing.F) {
	ec, ed := newP256(f), newEd25519(f)
	tok := keyTokens(f, testNow, pemOf(f, false, ec, ed), testKey)
	tok.cache = nil
	good, _ := tok.sign(identity{OpenID: "o1", AppID: testAppID})
	f.Add(good)
	f.Add(resign(good, `{"alg":"HS256","typ":"JWT"}`, hs256([]byte(testKey))))
	f.Add(resign(good, `{"alg":"EdDSA","kid":"`+tok.keys[1].kid+`"}`, func(in string) []byte { s, _ := tok.keys[1].sign(in); return s }))
	f.Add(resign(good, `{"alg":"ES256","kid":"nope"}`, func(string) []byte { return nil }))
	f.Add("e30.e30.")
	f.Fuzz(func(t *testing.T, token string) {
		id, err := tok.verify(token)
		if err != nil {
			if !errors.Is(err, errInvalidToken) {
				t.Fatalf("verify error %v is not errInvalidToken", err)
			}
			return
		}
		parts := strings.Split(token, ".")
		var h joseHeader
		hb, _ := b64.DecodeString(parts[0])
		sig, _ := b64.DecodeString(parts[2])
		if json.Unmarshal(hb, &h) != nil {
			t.Fatalf("accepted a token whose header is not JSON: %q", token)
		}
		signed := false
		for _, k := range tok.keys {
			signed = signed || (k.alg == h.Alg && k.verify(parts[0]+"."+parts[1], sig))
		}
		if !signed || id.OpenID == "" || id.AppID != testAppID {
			t.Fatalf("accepted %q as %+v", token, id)
		}
	})
}
