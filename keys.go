package main

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
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Token signing algorithms. Each key knows its one algorithm, and a token
// is checked only under its key's own (RFC 8725 §2.1, §3.1).
const (
	algHS256 = "HS256"
	algES256 = "ES256"
	algEdDSA = "EdDSA"
)

// tokenKey is one key that signs and verifies tokens: an HMAC secret
// (HS256), a P-256 key (ES256) or an Ed25519 key (EdDSA).
type tokenKey struct {
	alg    string
	kid    string // RFC 7638 thumbprint of the public key; "" for HMAC
	secret []byte // HS256

	ec     *ecdsa.PrivateKey // ES256; nil for a verify-only key
	ecPub  *ecdsa.PublicKey
	ed     ed25519.PrivateKey // EdDSA; nil for a verify-only key
	edPub  ed25519.PublicKey
	pubJWK publicJWK // what the JWKS publishes
}

// publicJWK is a public key as RFC 7517 writes it. It has no field for a
// private member: the JWKS cannot leak one.
type publicJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

var b64 = base64.RawURLEncoding

func hmacKey(secret []byte) *tokenKey { return &tokenKey{alg: algHS256, secret: secret} }

// ecKey makes an ES256 key from a P-256 public key and, to sign, its
// private key.
func ecKey(pub *ecdsa.PublicKey, priv *ecdsa.PrivateKey) (*tokenKey, error) {
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
	return &tokenKey{alg: algES256, kid: kid, ec: priv, ecPub: pub,
		pubJWK: publicJWK{Kty: "EC", Crv: "P-256", X: x, Y: y, Kid: kid, Alg: algES256, Use: "sig"}}, nil
}

// edKey makes an EdDSA key from an Ed25519 public key and, to sign, its
// private key.
func edKey(pub ed25519.PublicKey, priv ed25519.PrivateKey) *tokenKey {
	x := b64.EncodeToString(pub)
	kid := thumbprint(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`)
	return &tokenKey{alg: algEdDSA, kid: kid, ed: priv, edPub: pub,
		pubJWK: publicJWK{Kty: "OKP", Crv: "Ed25519", X: x, Kid: kid, Alg: algEdDSA, Use: "sig"}}
}

func thumbprint(canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return b64.EncodeToString(sum[:])
}

// sign returns the JWS signature of input: an HMAC, the 64-byte r‖s of
// RFC 7518 §3.4 (not ASN.1 DER), or an Ed25519 signature.
func (k *tokenKey) sign(input string) ([]byte, error) {
	switch k.alg {
	case algHS256:
		return mac(k.secret, input), nil
	case algES256:
		h := sha256.Sum256([]byte(input))
		der, err := ecdsa.SignASN1(rand.Reader, k.ec, h[:])
		if err != nil {
			return nil, err
		}
		return rawSignature(der)
	case algEdDSA:
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
func (k *tokenKey) verify(input string, sig []byte) bool {
	switch k.alg {
	case algHS256:
		return hmac.Equal(sig, mac(k.secret, input))
	case algES256:
		if len(sig) != 64 { // a DER signature is refused, whatever it says
			return false
		}
		h := sha256.Sum256([]byte(input))
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k.ecPub, h[:], r, s)
	case algEdDSA:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.edPub, []byte(input), sig)
	}
	return false
}

// keyFile is the parser of TOKEN_KEY_FILE: a PEM file of one or more
// private keys, PKCS#8 (PRIVATE KEY) or SEC 1 (EC PRIVATE KEY). Errors say
// which block is wrong and why, never what it holds.
func keyFile(keys *[]*tokenKey) func(string) error {
	return func(path string) error {
		*keys = nil
		if path == "" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		*keys, err = parseKeys(data)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	}
}

func parseKeys(data []byte) ([]*tokenKey, error) {
	var keys []*tokenKey
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
		var k *tokenKey
		switch p := priv.(type) {
		case *ecdsa.PrivateKey:
			if k, err = ecKey(&p.PublicKey, p); err != nil {
				return nil, fmt.Errorf("PEM block %d: %v", n, err)
			}
		case ed25519.PrivateKey:
			k = edKey(p.Public().(ed25519.PublicKey), p)
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

// genKey writes a new P-256 private key as PKCS#8 PEM: -genkey.
func genKey(w io.Writer) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	return pem.Encode(w, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// jwks is the body of /.well-known/jwks.json: the keys' public halves, in
// order. Callers pass tokens.publicKeys(), which leaves out HMAC keys.
func jwks(keys []*tokenKey) []byte {
	set := struct {
		Keys []publicJWK `json:"keys"`
	}{Keys: []publicJWK{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.pubJWK)
	}
	b, _ := json.Marshal(set)
	return b
}

// handleJWKS serves GET /.well-known/jwks.json: the public keys, for
// gateways and libraries that verify tokens themselves. Without
// TOKEN_KEY_FILE there is nothing to publish.
func handleJWKS(tok *tokens) http.Handler {
	var body []byte
	if pub := tok.publicKeys(); len(pub) > 0 {
		body = jwks(pub)
	}
	return publicJSON(body)
}

// handleDiscovery serves GET /.well-known/openid-configuration when the
// issuer is a URL and there are public keys: enough for go-oidc, Spring's
// issuer-uri and gateways' discovery to find the JWKS.
func handleDiscovery(tok *tokens) http.Handler {
	var body []byte
	if pub := tok.publicKeys(); len(pub) > 0 && strings.Contains(tok.issuer, "://") {
		var algs []string
		for _, k := range pub {
			if !slices.Contains(algs, k.alg) {
				algs = append(algs, k.alg)
			}
		}
		body, _ = json.Marshal(map[string]any{
			"issuer":                                tok.issuer,
			"jwks_uri":                              tok.issuer + "/.well-known/jwks.json",
			"id_token_signing_alg_values_supported": algs,
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "unionid", "phone_number", "phone_number_verified"},
		})
	}
	return publicJSON(body)
}

// publicJSON serves a fixed JSON body that caches may keep five minutes;
// a nil body is 404.
func publicJSON(body []byte) http.Handler {
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if body == nil {
			writeError(w, errNotFound)
			return
		}
		h := w.Header()
		h["Content-Type"] = jsonContentType
		h["Cache-Control"] = publicCache
		h["Content-Length"] = []string{length}
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	})
}
