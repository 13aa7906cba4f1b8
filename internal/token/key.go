package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// Signing algorithms. Each key knows its one algorithm, and a token is
// checked only under its key's own (RFC 8725 §2.1, §3.1).
const (
	HS256 = "HS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// MinHMACKeyLen is the shortest HMAC key accepted (RFC 8725 §3.5).
const MinHMACKeyLen = 32

// b64 is base64url without padding, strict: of the spellings that decode
// to the same bytes (the unused low bits of the last character), only the
// canonical one is accepted, so a token has one spelling.
var b64 = base64.RawURLEncoding.Strict()

// Key is one key that signs and verifies tokens: an HMAC secret (HS256), a
// P-256 key (ES256) or an Ed25519 key (EdDSA).
type Key struct {
	alg    string
	kid    string // RFC 7638 thumbprint of the public key; "" for HMAC
	secret []byte // HS256

	ec    *ecdsa.PrivateKey // ES256
	ecPub *ecdsa.PublicKey
	ed    ed25519.PrivateKey // EdDSA
	edPub ed25519.PublicKey
	jwk   JWK // what the JWKS publishes
}

// Alg is the key's algorithm.
func (k *Key) Alg() string { return k.alg }

// ID is the key's kid: its RFC 7638 thumbprint ("" for an HMAC key).
func (k *Key) ID() string { return k.kid }

// JWK is a public key as RFC 7517 writes it. It has no field for a private
// member: a JWKS cannot leak one.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// HMACKey returns the HS256 key for secret, or why it is not one: shorter
// than MinHMACKeyLen, or a key anyone knows (DevelopmentKey, one byte
// repeated).
func HMACKey(secret []byte) (*Key, error) {
	switch {
	case len(secret) < MinHMACKeyLen:
		return nil, fmt.Errorf("%d bytes; a key needs at least %d random bytes (openssl rand -base64 32)", len(secret), MinHMACKeyLen)
	case string(secret) == DevelopmentKey:
		return nil, errors.New("is mock mode's public development key; make a random one (openssl rand -base64 32)")
	case len(bytes.Trim(secret, string(secret[:1]))) == 0:
		return nil, errors.New("is one character repeated; make a random one (openssl rand -base64 32)")
	}
	return &Key{alg: HS256, secret: secret}, nil
}

// DevelopmentKey signs tokens in mock mode, so that its whole flow works
// out of the box. It is public: HMACKey refuses it, so no real instance
// accepts a token made in mock mode.
const DevelopmentKey = "wxlogin-mock-mode-development-key-NOT-SECRET"

// MockKey is the key of DevelopmentKey, for mock mode only.
func MockKey() *Key { return &Key{alg: HS256, secret: []byte(DevelopmentKey)} }

// ecKey makes an ES256 key from a P-256 key pair.
func ecKey(priv *ecdsa.PrivateKey) (*Key, error) {
	pub := &priv.PublicKey
	if pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("an EC key on %s; only P-256 (ES256) is supported", pub.Curve.Params().Name)
	}
	point, err := pub.Bytes() // 0x04 ‖ x ‖ y, each 32 bytes
	if err != nil {
		return nil, err
	}
	x, y := b64.EncodeToString(point[1:33]), b64.EncodeToString(point[33:])
	// RFC 7638 §3.2: the required members, in lexicographic order, no spaces.
	kid := thumbprint(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`)
	return &Key{alg: ES256, kid: kid, ec: priv, ecPub: pub,
		jwk: JWK{Kty: "EC", Crv: "P-256", X: x, Y: y, Kid: kid, Alg: ES256, Use: "sig"}}, nil
}

// edKey makes an EdDSA key from an Ed25519 private key.
func edKey(priv ed25519.PrivateKey) *Key {
	pub := priv.Public().(ed25519.PublicKey)
	x := b64.EncodeToString(pub)
	kid := thumbprint(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`)
	return &Key{alg: EdDSA, kid: kid, ed: priv, edPub: pub,
		jwk: JWK{Kty: "OKP", Crv: "Ed25519", X: x, Kid: kid, Alg: EdDSA, Use: "sig"}}
}

func thumbprint(canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return b64.EncodeToString(sum[:])
}

// p256HalfOrder is n/2 of P-256: an ECDSA signature (r, s) verifies as
// (r, n-s) too, so only the low s ≤ n/2 is made and accepted, and a token
// has one spelling.
var p256HalfOrder = new(big.Int).Rsh(elliptic.P256().Params().N, 1)

// sign returns the JWS signature of input: an HMAC, the 64-byte r‖s of
// RFC 7518 §3.4 (not ASN.1 DER) with a low s, or an Ed25519 signature.
func (k *Key) sign(input string) ([]byte, error) {
	switch k.alg {
	case HS256:
		return mac(k.secret, input), nil
	case ES256:
		h := sha256.Sum256([]byte(input))
		der, err := ecdsa.SignASN1(rand.Reader, k.ec, h[:])
		if err != nil {
			return nil, err
		}
		sig, err := rawSignature(der)
		if err != nil {
			return nil, err
		}
		if s := new(big.Int).SetBytes(sig[32:]); s.Cmp(p256HalfOrder) > 0 {
			s.Sub(elliptic.P256().Params().N, s).FillBytes(sig[32:])
		}
		return sig, nil
	case EdDSA:
		return ed25519.Sign(k.ed, []byte(input)), nil
	}
	return nil, errors.New("sign: unknown algorithm " + k.alg)
}

// rawSignature turns the ASN.1 DER ECDSA signature ecdsa.SignASN1 makes,
// SEQUENCE { INTEGER r, INTEGER s }, into the 64-byte r‖s of JWS, each
// big-endian and left-padded to 32 bytes.
func rawSignature(der []byte) ([]byte, error) {
	bad := errors.New("sign: unexpected ECDSA signature encoding")
	if len(der) < 8 || der[0] != 0x30 || int(der[1]) != len(der)-2 {
		return nil, bad
	}
	sig := make([]byte, 64)
	rest := der[2:]
	for i := range 2 {
		if len(rest) < 2 || rest[0] != 0x02 || int(rest[1]) > len(rest)-2 {
			return nil, bad
		}
		n := bytes.TrimLeft(rest[2:2+rest[1]], "\x00")
		if len(n) > 32 {
			return nil, bad
		}
		copy(sig[32*(i+1)-len(n):32*(i+1)], n)
		rest = rest[2+rest[1]:]
	}
	if len(rest) != 0 {
		return nil, bad
	}
	return sig, nil
}

// verify checks sig over input under the key's own algorithm.
func (k *Key) verify(input string, sig []byte) bool {
	switch k.alg {
	case HS256:
		return hmac.Equal(sig, mac(k.secret, input))
	case ES256:
		if len(sig) != 64 { // a DER signature is refused, whatever it says
			return false
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if s.Cmp(p256HalfOrder) > 0 {
			return false // the high-s twin of a valid signature
		}
		h := sha256.Sum256([]byte(input))
		return ecdsa.Verify(k.ecPub, h[:], r, s)
	case EdDSA:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.edPub, []byte(input), sig)
	}
	return false
}

func mac(key []byte, input string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return m.Sum(nil)
}

// ParseKeys reads a PEM file of one or more private keys, PKCS#8 (PRIVATE
// KEY) or SEC 1 (EC PRIVATE KEY), in file order. Certificates, EC
// PARAMETERS and public keys are skipped. Errors say which block is wrong
// and why, never what it holds.
func ParseKeys(data []byte) ([]*Key, error) {
	var keys []*Key
	seen := map[string]bool{}
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var priv any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			priv, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY":
			return nil, fmt.Errorf("PEM block %d is an %s; use an unencrypted P-256 or Ed25519 key (wxlogin -genkey)", n, block.Type)
		default:
			continue // certificates, EC PARAMETERS, public keys: not ours to use
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s) is not a valid key", n, block.Type)
		}
		var k *Key
		switch p := priv.(type) {
		case *ecdsa.PrivateKey:
			if k, err = ecKey(p); err != nil {
				return nil, fmt.Errorf("PEM block %d: %v", n, err)
			}
		case ed25519.PrivateKey:
			k = edKey(p)
		default:
			return nil, fmt.Errorf("PEM block %d is a %T key; only P-256 (ES256) and Ed25519 (EdDSA) are supported", n, priv)
		}
		if seen[k.kid] {
			return nil, fmt.Errorf("PEM block %d repeats an earlier key", n)
		}
		seen[k.kid] = true
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PRIVATE KEY or EC PRIVATE KEY block (wxlogin -genkey writes one)")
	}
	return keys, nil
}

// GenerateKey returns a new P-256 private key as PKCS#8 PEM.
func GenerateKey() ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
