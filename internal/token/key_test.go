package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"strings"
	"testing"
	"time"
)

// TestRFC8037 checks the Ed25519 example of RFC 8037 appendix A byte for
// byte: the public key from the private one (A.1, A.2), its RFC 7638
// thumbprint (A.3), and the signature (A.4; Ed25519 is deterministic).
func TestRFC8037(t *testing.T) {
	t.Parallel()
	d, err := b64.DecodeString("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
	if err != nil {
		t.Fatal(err)
	}
	k := edKey(ed25519.NewKeyFromSeed(d))
	if k.jwk.X != "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" {
		t.Errorf("x = %s, want the RFC's A.2 public key", k.jwk.X)
	}
	if k.ID() != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" || k.jwk.Kid != k.ID() {
		t.Errorf("kid = %s (JWK %s), want the RFC's A.3 thumbprint", k.ID(), k.jwk.Kid)
	}
	const input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
	const want = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
	sig, err := k.sign(input)
	if err != nil || b64.EncodeToString(sig) != want {
		t.Errorf("sign(RFC 8037 A.4) = %s, %v; want the RFC's %s", b64.EncodeToString(sig), err, want)
	}
	if !k.verify(input, sig) || k.verify(input+"x", sig) {
		t.Errorf("verify does not tell the RFC's signature from a wrong input")
	}
}

// TestRFC7515ES256 checks the ES256 example of RFC 7515 appendix A.3
// (ECDSA signing is randomised, so only verification has a fixed vector).
// The RFC's signature has a high s, which wxlogin refuses: its low-s twin
// (r, n−s), the one signature wxlogin accepts for that input, verifies.
func TestRFC7515ES256(t *testing.T) {
	t.Parallel()
	xs, _ := b64.DecodeString("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU")
	ys, _ := b64.DecodeString("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0")
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, xs...), ys...))
	if err != nil {
		t.Fatal(err)
	}
	// ecKey reads only the public half; the private scalar is not needed to verify.
	k, err := ecKey(&ecdsa.PrivateKey{PublicKey: *pub})
	if err != nil {
		t.Fatal(err)
	}
	const input = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
	rfc, _ := b64.DecodeString("DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q")
	sum := sha256.Sum256([]byte(input))
	if !ecdsa.VerifyASN1(pub, sum[:], derOf(rfc)) {
		t.Fatal("the RFC 7515 A.3 signature does not verify with crypto/ecdsa")
	}
	if new(big.Int).SetBytes(rfc[32:]).Cmp(p256HalfOrder) <= 0 {
		t.Fatal("the RFC 7515 A.3 signature has a low s; this test expects its high s")
	}
	if k.verify(input, rfc) {
		t.Error("verify(RFC 7515 A.3, high s) = true, want false: only the low-s twin is accepted")
	}
	low := twin(rfc)
	if !k.verify(input, low) {
		t.Fatal("verify(RFC 7515 A.3 as (r, n−s)) = false, want true")
	}
	if k.verify(input, derOf(low)) {
		t.Error("verify(the same signature in DER) = true; only r‖s may")
	}
	bad := bytes.Clone(low)
	bad[10] ^= 1
	if k.verify(input, bad) || k.verify(input+"x", low) {
		t.Error("verify accepts a changed signature or a changed input")
	}
}

// twin is the other ECDSA signature (r, n−s) of the same input and key.
func twin(sig []byte) []byte {
	out := bytes.Clone(sig)
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s).FillBytes(out[32:])
	return out
}

// TestLowS: every ES256 signature wxlogin makes has s ≤ n/2, and the
// high-s twin of a valid token, valid ECDSA too, is refused: a token has
// one spelling.
func TestLowS(t *testing.T) {
	t.Parallel()
	ec := newP256(t)
	s := New(Options{Keys: parseKeys(t, ec), TTL: time.Hour, Issuer: testIssuer, CacheSize: -1, Now: fixedClock(testNow)})
	var tokens []string
	for i := range 64 {
		token := mustSign(t, s, claimsFor(fmt.Sprintf("oLowS%d", i)))
		_, _, sig := segments(t, token)
		raw, err := b64.DecodeString(sig)
		if err != nil || len(raw) != 64 {
			t.Fatalf("token %d: signature of %d bytes, %v; want 64", i, len(raw), err)
		}
		if new(big.Int).SetBytes(raw[32:]).Cmp(p256HalfOrder) > 0 {
			t.Errorf("token %d: s > n/2, want a low s", i)
		}
		tokens = append(tokens, token)
	}
	for i, token := range tokens {
		if _, err := s.Verify(token); err != nil {
			t.Errorf("Verify(token %d) = %v, want ok", i, err)
		}
		head, payload, sig := segments(t, token)
		raw, _ := b64.DecodeString(sig)
		high := twin(raw)
		sum := sha256.Sum256([]byte(head + "." + payload))
		if !ecdsa.Verify(&ec.PublicKey, sum[:], new(big.Int).SetBytes(high[:32]), new(big.Int).SetBytes(high[32:])) {
			t.Fatalf("token %d: (r, n−s) does not verify with crypto/ecdsa; the test is wrong", i)
		}
		if c, err := s.Verify(head + "." + payload + "." + b64.EncodeToString(high)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Verify(token %d with (r, n−s)) = %+v, %v; want %v", i, c, err, ErrInvalid)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	t.Parallel()
	ec, ec2, ed := newP256(t), newP256(t), newEd25519(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecParams := []byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n")
	cert := selfSigned(t, ec)
	pubDER, _ := x509.MarshalPKIXPublicKey(&ec2.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	good := []struct {
		name string
		data []byte
		pubs []any // the keys' public halves, in order
	}{
		{"PKCS#8 P-256", pemOf(t, false, ec), []any{&ec.PublicKey}},
		{"SEC 1 after EC PARAMETERS (openssl ecparam -genkey)", join(ecParams, pemOf(t, true, ec)), []any{&ec.PublicKey}},
		{"PKCS#8 Ed25519", pemOf(t, false, ed), []any{ed.Public()}},
		{"two keys, certificate and public key skipped", join(pemOf(t, false, ed), cert, pubPEM, pemOf(t, false, ec)), []any{ed.Public(), &ec.PublicKey}},
		{"text around the blocks", join([]byte("# made by openssl\n"), pemOf(t, false, ec2), []byte("trailing\n")), []any{&ec2.PublicKey}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			keys, err := ParseKeys(tt.data)
			if err != nil {
				t.Fatalf("ParseKeys = %v", err)
			}
			if len(keys) != len(tt.pubs) {
				t.Fatalf("ParseKeys = %d keys, want %d", len(keys), len(tt.pubs))
			}
			for i, k := range keys {
				switch want := tt.pubs[i].(type) {
				case *ecdsa.PublicKey:
					if k.Alg() != ES256 || !k.ecPub.Equal(want) {
						t.Errorf("key %d = %s, want the ES256 key of the file", i+1, k.Alg())
					}
				case ed25519.PublicKey:
					if k.Alg() != EdDSA || !k.edPub.Equal(want) {
						t.Errorf("key %d = %s, want the EdDSA key of the file", i+1, k.Alg())
					}
				}
			}
		})
	}

	rsaPKCS1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	broken := []byte("-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----\n")
	opaque := func(typ string) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: bytes.Repeat([]byte("secret-material!"), 8)})
	}
	bad := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no PRIVATE KEY"},
		{"garbage", []byte("not a key at all"), "no PRIVATE KEY"},
		{"certificate only", cert, "no PRIVATE KEY"},
		{"EC PARAMETERS and a public key only", join(ecParams, pubPEM), "no PRIVATE KEY"},
		{"RSA PKCS#8", pemOf(t, false, rsaKey), "PEM block 1 is a *rsa.PrivateKey key"},
		{"RSA PKCS#1", rsaPKCS1, "PEM block 1 is an RSA PRIVATE KEY"},
		{"encrypted", opaque("ENCRYPTED PRIVATE KEY"), "PEM block 1 is an ENCRYPTED PRIVATE KEY"},
		{"OpenSSH", opaque("OPENSSH PRIVATE KEY"), "PEM block 1 is an OPENSSH PRIVATE KEY"},
		{"P-384", pemOf(t, false, p384), "PEM block 1: an EC key on P-384"},
		{"P-384 SEC 1", pemOf(t, true, p384), "PEM block 1: an EC key on P-384"},
		{"broken key", broken, "PEM block 1 (PRIVATE KEY) is not a valid key"},
		{"broken SEC 1 key", opaque("EC PRIVATE KEY"), "PEM block 1 (EC PRIVATE KEY) is not a valid key"},
		{"same key twice", pemOf(t, false, ec, ec), "PEM block 2 repeats an earlier key"},
		{"same key as PKCS#8 and SEC 1", join(pemOf(t, false, ec), pemOf(t, true, ec)), "PEM block 2 repeats an earlier key"},
		{"RSA after a certificate", join(cert, pemOf(t, false, rsaKey)), "PEM block 2 is a *rsa.PrivateKey key"},
		{"broken key after a good one", join(pemOf(t, false, ed), ecParams, broken), "PEM block 3 (PRIVATE KEY) is not a valid key"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			keys, err := ParseKeys(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseKeys = %d keys, %v; want an error containing %q", len(keys), err, tt.want)
			}
			// Never the key material: no line of a PEM body in the message.
			for _, line := range strings.Split(string(tt.data), "\n") {
				if len(line) > 16 && !strings.HasPrefix(line, "-----") && strings.Contains(err.Error(), line) {
					t.Errorf("ParseKeys error %q shows key material", err)
				}
			}
			if strings.Contains(err.Error(), "secret-material") {
				t.Errorf("ParseKeys error %q shows the block's bytes", err)
			}
		})
	}
}

func selfSigned(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
		NotBefore: testNow, NotAfter: testNow.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestGenerateKey: a new P-256 key as PKCS#8 PEM, which ParseKeys reads.
func TestGenerateKey(t *testing.T) {
	t.Parallel()
	var kids []string
	for range 2 {
		out, err := GenerateKey()
		if err != nil {
			t.Fatalf("GenerateKey() = %v", err)
		}
		block, rest := pem.Decode(out)
		if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
			t.Fatalf("GenerateKey() = %d bytes, want one PRIVATE KEY block", len(out))
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if ec, ok := k.(*ecdsa.PrivateKey); err != nil || !ok || ec.Curve != elliptic.P256() {
			t.Fatalf("GenerateKey() key = %T, %v; want a P-256 key", k, err)
		}
		keys, err := ParseKeys(out)
		if err != nil || len(keys) != 1 || keys[0].Alg() != ES256 {
			t.Fatalf("ParseKeys(GenerateKey()) = %d keys, %v; want one ES256 key", len(keys), err)
		}
		kids = append(kids, keys[0].ID())
	}
	if kids[0] == kids[1] {
		t.Errorf("GenerateKey() made the same key twice")
	}
}

// TestHMACKey: a key of at least 32 bytes that is not a known one.
func TestHMACKey(t *testing.T) {
	t.Parallel()
	random := make([]byte, 32)
	rand.Read(random)
	for _, tt := range []struct {
		name   string
		secret string
		want   string // in the error; "" for ok
	}{
		{"random 32 bytes", string(random), ""},
		{"test key", testKey, ""},
		{"64 bytes", testKey + testKey, ""},
		{"empty", "", "0 bytes"},
		{"31 bytes", "short-but-nearly:q8R2nV5xK1wP7z", "31 bytes"},
		{"16 bytes", "Zk3v9Qx2LpW7sN1r", "16 bytes"},
		{"the development key", DevelopmentKey, "development key"},
		{"32 identical bytes", strings.Repeat("k", 32), "one character repeated"},
		{"64 zero bytes", strings.Repeat("\x00", 64), "one character repeated"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := HMACKey([]byte(tt.secret))
			if tt.want == "" {
				if err != nil || k == nil || k.Alg() != HS256 || k.ID() != "" {
					t.Fatalf("HMACKey(%d bytes) = key %v, %v; want an HS256 key without kid", len(tt.secret), k != nil, err)
				}
				return
			}
			if err == nil || k != nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("HMACKey(%s) = key %v, %v; want an error containing %q", tt.name, k != nil, err, tt.want)
			}
			if len(tt.secret) > 0 && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("HMACKey(%s) error %q holds the key", tt.name, err)
			}
		})
	}

	// The development key signs and verifies in mock mode, as HMAC-SHA256.
	s := newSet(t, testNow, MockKey())
	token := mustSign(t, s, claimsFor("oMock"))
	if c, err := s.Verify(token); err != nil || c.Subject != "oMock" {
		t.Errorf("MockKey: Verify(Sign) = %+v, %v; want oMock", c, err)
	}
	head, payload, sig := segments(t, token)
	if want := enc(hs256([]byte(DevelopmentKey))(head + "." + payload)); sig != want {
		t.Errorf("MockKey signature = %s, want HMAC-SHA256 with DevelopmentKey %s", sig, want)
	}
}

// TestPublicKeyTokens signs with ES256 and EdDSA and checks the header, the
// signature's form, and that an independent verifier built from the JWKS
// alone accepts the token.
func TestPublicKeyTokens(t *testing.T) {
	t.Parallel()
	for _, key := range []any{newP256(t), newEd25519(t)} {
		s := newSet(t, testNow, parseKeys(t, key)...)
		t.Run(s.Alg(), func(t *testing.T) {
			t.Parallel()
			c := claimsFor("oUser")
			c.UnionID = "oUnion"
			token := mustSign(t, s, c)
			head, payload, sigSeg := segments(t, token)
			h := decodeSegment(t, head)
			if want := map[string]any{"alg": s.Alg(), "typ": "JWT", "kid": s.signer.ID()}; !maps.Equal(h, want) {
				t.Errorf("header = %v, want %v", h, want)
			}
			sig, err := b64.DecodeString(sigSeg)
			if err != nil || len(sig) != 64 {
				t.Errorf("%s signature is %d bytes, want 64 (r‖s, not DER)", s.Alg(), len(sig))
			}

			// An independent check from the published JWK.
			var set struct{ Keys []map[string]string }
			if err := json.Unmarshal(s.JWKS(), &set); err != nil || len(set.Keys) != 1 {
				t.Fatalf("JWKS() = %s, %v; want one key", s.JWKS(), err)
			}
			jwk := set.Keys[0]
			input := []byte(head + "." + payload)
			x, _ := b64.DecodeString(jwk["x"])
			members := map[string]string{"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}
			switch jwk["kty"] {
			case "EC":
				y, _ := b64.DecodeString(jwk["y"])
				members["y"] = jwk["y"]
				pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
				sum := sha256.Sum256(input)
				if err != nil || !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
					t.Errorf("the ES256 token does not verify with the JWKS key: %v", err)
				}
			case "OKP":
				if len(x) != ed25519.PublicKeySize || !ed25519.Verify(x, input, sig) {
					t.Errorf("the EdDSA token does not verify with the JWKS key")
				}
			default:
				t.Fatalf("JWK kty = %q", jwk["kty"])
			}
			// RFC 7638: the thumbprint of the required members, sorted, no spaces.
			canonical, _ := json.Marshal(members)
			sum := sha256.Sum256(canonical)
			if kid := b64.EncodeToString(sum[:]); jwk["kid"] != kid || h["kid"] != kid {
				t.Errorf("kid: JWK %s, header %v; want the RFC 7638 thumbprint %s", jwk["kid"], h["kid"], kid)
			}
			if jwk["alg"] != s.Alg() || jwk["use"] != "sig" {
				t.Errorf("JWK = %v, want alg %s and use sig", jwk, s.Alg())
			}
			got, err := s.Verify(token)
			if err != nil || got.Subject != "oUser" || got.UnionID != "oUnion" || !got.Audience.Contains(testAppID) {
				t.Errorf("Verify(Sign(%+v)) = %+v, %v", c, got, err)
			}
		})
	}
}

// TestAlgorithmConfusion checks that the token never chooses how it is
// checked (RFC 8725 §2.1): every forgery a public key makes possible is
// refused, with and without HMAC keys configured beside it.
func TestAlgorithmConfusion(t *testing.T) {
	t.Parallel()
	ec, foreign := newP256(t), newP256(t)
	foreignKey := parseKeys(t, foreign)[0]
	for _, extra := range [][]*Key{nil, {hmacKey(t, testKey)}} {
		keys := append(parseKeys(t, ec), extra...)
		s := New(Options{Keys: keys, TTL: time.Hour, Issuer: testIssuer, CacheSize: -1, Now: fixedClock(testNow)})
		good := mustSign(t, s, claimsFor("oVictim"))
		if _, err := s.Verify(good); err != nil {
			t.Fatalf("Verify(the genuine token) = %v", err)
		}
		resigned := resign(good, `{"alg":"ES256","kid":"`+s.signer.ID()+`"}`, keySigner(t, s.signer))
		if _, err := s.Verify(resigned); err != nil {
			t.Fatalf("Verify(the token re-signed by its key) = %v; the forgeries below would prove nothing", err)
		}
		kid := s.signer.ID()
		pubDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
		pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
		jwkJSON, _ := json.Marshal(s.signer.jwk)
		_, _, sigSeg := segments(t, good)
		goodSig, _ := b64.DecodeString(sigSeg)
		same := func(string) []byte { return goodSig }

		forged := []struct{ name, token string }{
			{"HS256 keyed with the PEM public key", resign(good, `{"alg":"HS256","typ":"JWT"}`, hs256(pubPEM))},
			{"HS256 keyed with the PEM public key, our kid", resign(good, `{"alg":"HS256","typ":"JWT","kid":"`+kid+`"}`, hs256(pubPEM))},
			{"HS256 keyed with the DER public key", resign(good, `{"alg":"HS256","typ":"JWT"}`, hs256(pubDER))},
			{"HS256 keyed with the JWK", resign(good, `{"alg":"HS256","typ":"JWT","kid":"`+kid+`"}`, hs256(jwkJSON))},
			{"HS256 keyed with the JWKS", resign(good, `{"alg":"HS256"}`, hs256(s.JWKS()))},
			{"HS256 keyed with the JWK x", resign(good, `{"alg":"HS256"}`, hs256([]byte(s.signer.jwk.X)))},
			{"DER signature", resign(good, `{"alg":"ES256","typ":"JWT","kid":"`+kid+`"}`, func(string) []byte { return derOf(goodSig) })},
			{"a foreign key with our kid", resign(good, `{"alg":"ES256","typ":"JWT","kid":"`+kid+`"}`, keySigner(t, foreignKey))},
			{"a foreign key without kid", resign(good, `{"alg":"ES256","typ":"JWT"}`, keySigner(t, foreignKey))},
			{"unknown kid", resign(good, `{"alg":"ES256","typ":"JWT","kid":"nope"}`, same)},
			{"empty kid", resign(good, `{"alg":"ES256","typ":"JWT","kid":""}`, same)},
			{"ES384 header", resign(good, `{"alg":"ES384","typ":"JWT","kid":"`+kid+`"}`, same)},
			{"RS256 header", resign(good, `{"alg":"RS256","typ":"JWT"}`, same)},
			{"none", resign(good, `{"alg":"none","typ":"JWT"}`, func(string) []byte { return nil })},
			{"EdDSA header, our kid", resign(good, `{"alg":"EdDSA","typ":"JWT","kid":"`+kid+`"}`, same)},
			// Validly signed by our key: only the alg its header names differs.
			{"our key's signature, alg EdDSA, our kid", resign(good, `{"alg":"EdDSA","typ":"JWT","kid":"`+kid+`"}`, keySigner(t, s.signer))},
			{"our key's signature, alg HS256, our kid", resign(good, `{"alg":"HS256","typ":"JWT","kid":"`+kid+`"}`, keySigner(t, s.signer))},
			{"our key's signature, alg none, our kid", resign(good, `{"alg":"none","typ":"JWT","kid":"`+kid+`"}`, keySigner(t, s.signer))},
			{"our key's signature, alg HS256", resign(good, `{"alg":"HS256","typ":"JWT"}`, keySigner(t, s.signer))},
			{"our key's signature, alg ES384", resign(good, `{"alg":"ES384","typ":"JWT"}`, keySigner(t, s.signer))},
			{"our key's signature, no alg, our kid", resign(good, `{"typ":"JWT","kid":"`+kid+`"}`, keySigner(t, s.signer))},
		}
		for _, tt := range forged {
			t.Run(fmt.Sprintf("%d HMAC keys/%s", len(extra), tt.name), func(t *testing.T) {
				t.Parallel()
				if c, err := s.Verify(tt.token); !errors.Is(err, ErrInvalid) {
					t.Errorf("Verify(%s) = %+v, %v; want %v", tt.name, c, err, ErrInvalid)
				}
			})
		}
	}
}

// TestMigrationAndRotation follows the README's steps: HS256 to ES256
// without logging anyone out, then a new key added second, moved first,
// and the old one dropped.
func TestMigrationAndRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newP256(t), newP256(t)
	hs := hmacKey(t, testKey)

	hsOnly := newSet(t, testNow, hs)
	hsToken := mustSign(t, hsOnly, claimsFor("oOld"))

	both := newSet(t, testNow, append(parseKeys(t, oldKey), hs)...)
	if both.Alg() != ES256 {
		t.Fatalf("keys ES256, HS256: the signer is %s, want ES256", both.Alg())
	}
	if pub := both.PublicKeys(); len(pub) != 1 || pub[0].Alg() != ES256 || bytes.Contains(both.JWKS(), []byte(testKey)) {
		t.Errorf("published keys beside an HMAC key: %s; want the P-256 key only", both.JWKS())
	}
	if _, err := both.Verify(hsToken); err != nil {
		t.Errorf("Verify(an HS256 token from before the move) = %v, want ok", err)
	}
	esOld := mustSign(t, both, claimsFor("oNew"))
	if _, err := hsOnly.Verify(esOld); !errors.Is(err, ErrInvalid) {
		t.Errorf("HMAC only: Verify(an ES256 token) = %v, want %v", err, ErrInvalid)
	}

	// Rotation: [old, new] → [new, old] → [new].
	step1 := newSet(t, testNow, parseKeys(t, oldKey, newKey)...)
	step2 := newSet(t, testNow, parseKeys(t, newKey, oldKey)...)
	step3 := newSet(t, testNow, parseKeys(t, newKey)...)
	if !bytes.Contains(step1.JWKS(), []byte(step2.signer.ID())) {
		t.Errorf("the new key is not published before it signs")
	}
	tok2 := mustSign(t, step2, claimsFor("o2"))
	for i, s := range []*Set{step1, step2, step3} {
		if _, err := s.Verify(tok2); err != nil {
			t.Errorf("step %d: Verify(a token of the new key) = %v, want ok", i+1, err)
		}
	}
	if _, err := step2.Verify(esOld); err != nil {
		t.Errorf("step 2: Verify(a token of the old key) = %v, want ok", err)
	}
	if _, err := step3.Verify(esOld); !errors.Is(err, ErrInvalid) {
		t.Errorf("step 3: Verify(a token of the dropped key) = %v, want %v", err, ErrInvalid)
	}
}

// FuzzVerifyPublicKeyToken feeds arbitrary tokens to a verifier holding a
// P-256 key, an Ed25519 key and an HMAC key. It must never panic, and
// whatever it accepts must carry a valid signature by one of them under
// that key's own algorithm, and our issuer.
func FuzzVerifyPublicKeyToken(f *testing.F) {
	keys := append(parseKeys(f, newP256(f), newEd25519(f)), hmacKey(f, testKey))
	s := New(Options{Keys: keys, TTL: time.Hour, Issuer: testIssuer, CacheSize: -1, Now: fixedClock(testNow)})
	good := mustSign(f, s, claimsFor("o1"))
	f.Add(good)
	f.Add(resign(good, `{"alg":"HS256","typ":"JWT"}`, hs256([]byte(testKey))))
	f.Add(resign(good, `{"alg":"EdDSA","kid":"`+keys[1].ID()+`"}`, keySigner(f, keys[1])))
	f.Add(resign(good, `{"alg":"ES256","kid":"nope"}`, func(string) []byte { return nil }))
	f.Add("e30.e30.")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := s.Verify(token)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify error %v is not %v", err, ErrInvalid)
			}
			return
		}
		head, payload, sigSeg := segments(t, token)
		var h struct{ Alg string }
		hb, _ := b64.DecodeString(head)
		sig, _ := b64.DecodeString(sigSeg)
		if json.Unmarshal(hb, &h) != nil {
			t.Fatalf("Verify accepted %q, whose header is not JSON", token)
		}
		signed := false
		for _, k := range keys {
			signed = signed || k.alg == h.Alg && k.verify(head+"."+payload, sig)
		}
		if !signed || c.Subject == "" || c.Issuer != testIssuer {
			t.Fatalf("Verify accepted %q as %s", token, showClaims(c))
		}
	})
}
