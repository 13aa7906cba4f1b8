package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Test keys: random-looking, at least 32 bytes, not one character
// repeated (HMACKey refuses those).
const (
	testKey    = "Zk3v9Qx2LpW7sN1rT8yB4mC6dH0jE5aU"
	testKeyOld = "old-key:q8R2nV5xK1wP7zL3tY9bM4cF6hJ0"
	testAppID  = "wx0123456789abcdef"
	testIssuer = "wxlogin"
)

// testNow is the injected time of every test that checks expiry.
var testNow = time.Unix(1_800_000_000, 0)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// hmacKey is the HS256 key of secret, which must be accepted.
func hmacKey(t testing.TB, secret string) *Key {
	t.Helper()
	k, err := HMACKey([]byte(secret))
	if err != nil {
		t.Fatalf("HMACKey(%d bytes) = %v", len(secret), err)
	}
	return k
}

// newSet is a Set of keys (the first signs) with a 2 h lifetime, the
// default issuer and the clock at now.
func newSet(t testing.TB, now time.Time, keys ...*Key) *Set {
	t.Helper()
	s := New(Options{Keys: keys, TTL: 2 * time.Hour, Issuer: testIssuer, Now: fixedClock(now)})
	if s == nil {
		t.Fatal("New with keys = nil")
	}
	return s
}

// claimsFor is what the main package signs for a login.
func claimsFor(sub string) Claims {
	return Claims{Subject: sub, Audience: Audience{testAppID}}
}

// mustSign signs c with s.
func mustSign(t testing.TB, s *Set, c Claims) string {
	t.Helper()
	tok, err := s.Sign(c)
	if err != nil {
		t.Fatalf("Sign(%+v) = %v", c, err)
	}
	return tok
}

// enc is base64url without padding, as JWS spells its segments.
func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// forgeRaw signs an arbitrary header and payload with an HMAC key: a token
// whose signature is valid, for tests of what else refuses it.
func forgeRaw(key, header, payload string) string {
	input := enc([]byte(header)) + "." + enc([]byte(payload))
	return input + "." + enc(hs256([]byte(key))(input))
}

// hs256 signs with HMAC-SHA256 under key, independently of the package.
func hs256(key []byte) func(string) []byte {
	return func(input string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(input))
		return m.Sum(nil)
	}
}

// resign replaces a token's header and signs it with sign.
func resign(token, header string, sign func(input string) []byte) string {
	_, rest, _ := strings.Cut(token, ".")
	payload, _, _ := strings.Cut(rest, ".")
	input := enc([]byte(header)) + "." + payload
	return input + "." + enc(sign(input))
}

// segments splits a token into its three segments.
func segments(t testing.TB, token string) (head, payload, sig string) {
	t.Helper()
	head, rest, ok1 := strings.Cut(token, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		t.Fatalf("token has fewer than 3 segments")
	}
	return head, payload, sig
}

// keySigner signs with one of the package's keys.
func keySigner(t testing.TB, k *Key) func(string) []byte {
	t.Helper()
	return func(input string) []byte {
		sig, err := k.sign(input)
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		return sig
	}
}

// pemOf encodes keys as one PEM file: PKCS#8, or SEC 1 for EC keys if sec1.
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

// parseKeys is ParseKeys of the PEM of keys, which must succeed.
func parseKeys(t testing.TB, keys ...any) []*Key {
	t.Helper()
	ks, err := ParseKeys(pemOf(t, false, keys...))
	if err != nil {
		t.Fatalf("ParseKeys = %v", err)
	}
	return ks
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

// derOf re-encodes a 64-byte r‖s signature as ASN.1 DER, the form
// ecdsa.SignASN1 produces and JWS forbids.
func derOf(sig []byte) []byte {
	integer := func(b []byte) []byte {
		b = bytes.TrimLeft(b, "\x00")
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return append([]byte{2, byte(len(b))}, b...)
	}
	body := append(integer(sig[:32]), integer(sig[32:])...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

// newRSA is an RSA key of 2048 bits, precomputed (testdata/rsa2048.pem,
// or rsa2048b.pem if second): making one takes a while.
func newRSA(t testing.TB, second bool) *rsa.PrivateKey {
	t.Helper()
	name := "rsa2048.pem"
	if second {
		name = "rsa2048b.pem"
	}
	_, k := readRSA(t, name, 2048)
	return k
}

// testdataRSA is the precomputed RSA key of testdata/rsa<bits>.pem:
// sizes too slow to make in a test (4096, 4097) or refused (2047).
func testdataRSA(t testing.TB, bits int) ([]byte, *rsa.PrivateKey) {
	t.Helper()
	return readRSA(t, fmt.Sprintf("rsa%d.pem", bits), bits)
}

// readRSA reads the PKCS#8 RSA key of bits bits in testdata/name.
func readRSA(t testing.TB, name string, bits int) ([]byte, *rsa.PrivateKey) {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("testdata/%s has no PEM block", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	priv, ok := k.(*rsa.PrivateKey)
	if err != nil || !ok || priv.N.BitLen() != bits {
		t.Fatalf("testdata/%s = %T, %v; want an RSA key of %d bits", name, k, err, bits)
	}
	return data, priv
}
