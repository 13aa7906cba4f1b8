// Package token issues and verifies wxlogin's tokens: JWTs (RFC 7519)
// signed HS256 with a shared key, or ES256/EdDSA with a private key whose
// public half the JWKS publishes, so that any standard JWT library or
// gateway verifies them.
//
// Each key is pinned to its algorithm: a token names its key (kid) or
// algorithm, and is checked only under that key's own algorithm. Every
// failure is ErrInvalid, wrapped with the reason for the log; a token never
// appears in an error.
package token

import (
	"crypto/sha256"
	"errors"
	"strings"
	"time"

	"wxlogin/internal/jsonpick"
)

// Leeway is the clock skew allowed on exp and nbf.
const Leeway = 30 * time.Second

// ErrInvalid is every reason a token is refused.
var ErrInvalid = errors.New("invalid token")

// Claims are a token's payload: the registered claims, and wxlogin's own.
type Claims struct {
	Subject   string   `json:"sub"`
	Issuer    string   `json:"iss"`
	Audience  Audience `json:"aud"`
	IssuedAt  int64    `json:"iat"`
	Expiry    int64    `json:"exp"`
	NotBefore *int64   `json:"nbf,omitempty"`

	OpenID        string `json:"openid,omitempty"`
	UnionID       string `json:"unionid,omitempty"`
	Phone         string `json:"phone_number,omitempty"` // E.164, after POST /phonenumber
	PhoneVerified bool   `json:"phone_number_verified,omitempty"`
}

// Set issues and verifies tokens with its keys: the first signs, every one
// verifies, which is how keys rotate and how HS256 tokens stay valid after
// a move to ES256.
type Set struct {
	signer *Key
	header string // base64url of the signer's JOSE header
	keys   []*Key
	ttl    time.Duration
	issuer string
	now    func() time.Time
	cache  *cache // verified tokens; nil: none
}

// Options configure a Set.
type Options struct {
	Keys      []*Key // the first signs; every one verifies
	TTL       time.Duration
	Issuer    string
	CacheSize int              // verified tokens kept; DefaultCacheSize if zero, none if negative
	Now       func() time.Time // time.Now if nil
}

// New returns the Set of o.Keys, or nil when there is none: tokens off.
func New(o Options) *Set {
	if len(o.Keys) == 0 {
		return nil
	}
	s := &Set{signer: o.Keys[0], keys: o.Keys, ttl: o.TTL, issuer: o.Issuer, now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	switch {
	case o.CacheSize == 0:
		s.cache = newCache(DefaultCacheSize)
	case o.CacheSize > 0:
		s.cache = newCache(o.CacheSize)
	}
	s.header = joseHeader(s.signer)
	return s
}

func joseHeader(k *Key) string {
	h := `{"alg":"` + k.alg + `","typ":"JWT"}`
	if k.kid != "" {
		h = `{"alg":"` + k.alg + `","typ":"JWT","kid":"` + k.kid + `"}`
	}
	return b64.EncodeToString([]byte(h))
}

// TTL is the lifetime of the tokens Sign makes.
func (s *Set) TTL() time.Duration { return s.ttl }

// Alg is the algorithm of the signing key.
func (s *Set) Alg() string { return s.signer.alg }

// Sign issues a token for c, with iss, iat and exp set: now, and now + the
// lifetime.
func (s *Set) Sign(c Claims) (string, error) {
	now := s.now().Unix()
	c.Issuer, c.IssuedAt, c.Expiry = s.issuer, now, now+int64(s.ttl/time.Second)
	input := s.header + "." + b64.EncodeToString(appendClaims(nil, &c))
	sig, err := s.signer.sign(input)
	if err != nil {
		return "", err
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// Verify checks a token's header, signature, exp, nbf and iss, and returns
// its claims; the audience is the caller's to check. A token verified
// before is answered from the cache, without repeating the signature
// check.
func (s *Set) Verify(token string) (Claims, error) {
	now := s.now()
	var sum [32]byte
	if s.cache != nil {
		sum = sha256.Sum256([]byte(token))
		if c, ok := s.cache.get(sum, now.Add(-Leeway).Unix()); ok {
			return c, nil
		}
	}
	payload, err := s.verifySignature(token)
	if err != nil {
		return Claims{}, err
	}
	var c Claims
	if err := claimsReader.Read(payload, &c); err != nil {
		return Claims{}, invalid("payload is not a JSON object of the expected claims, each given once")
	}
	switch {
	case c.Subject == "":
		return Claims{}, invalid("no sub")
	case c.Expiry == 0:
		return Claims{}, invalid("no exp")
	case !now.Before(time.Unix(c.Expiry, 0).Add(Leeway)):
		return Claims{}, invalid("expired")
	case c.NotBefore != nil && now.Before(time.Unix(*c.NotBefore, 0).Add(-Leeway)):
		return Claims{}, invalid("not valid yet (nbf)")
	case c.Issuer != s.issuer:
		return Claims{}, invalid("wrong iss")
	}
	if s.cache != nil && (c.NotBefore == nil || !now.Before(time.Unix(*c.NotBefore, 0))) {
		s.cache.put(sum, c)
	}
	return c, nil
}

// The readers of tokens: strict, so that a member given twice or in
// another case (which other verifiers read differently) refuses the token.
var (
	claimsReader = jsonpick.Strict[Claims]()
	headerReader = jsonpick.Strict[header]()
)

// header is the part of a token's JOSE header wxlogin reads.
type header struct {
	Alg  string   `json:"alg"`
	Typ  optional `json:"typ"`
	Kid  optional `json:"kid"`
	Crit any      `json:"crit"`
}

// optional is a string member that may be absent (or null).
type optional struct {
	set bool
	s   string
}

func (o *optional) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	s, ok := plainString(b)
	if !ok {
		if err := jsonUnmarshal(b, &s); err != nil {
			return err
		}
	}
	o.set, o.s = true, s
	return nil
}

// verifySignature checks the JOSE header and the signature, and returns
// the decoded payload. The key is looked up first (by kid, else by alg)
// and the header's alg must be the key's own: the token never chooses how
// it is checked.
func (s *Set) verifySignature(token string) ([]byte, error) {
	head, rest, ok1 := strings.Cut(token, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return nil, invalid("not three segments")
	}
	hb, err := b64.DecodeString(head)
	if err != nil {
		return nil, invalid("header is not base64url")
	}
	var h header
	if err := headerReader.Read(hb, &h); err != nil {
		return nil, invalid("header is not a JSON object of known members, each given once")
	}
	switch {
	case h.Typ.set && h.Typ.s != "JWT":
		return nil, invalid("typ is not JWT")
	case h.Crit != nil:
		return nil, invalid("crit extensions are not supported")
	}
	got, err := b64.DecodeString(sig)
	if err != nil {
		return nil, invalid("signature is not base64url")
	}
	input := token[:len(head)+1+len(payload)]
	if !s.checkSignature(h, input, got) {
		return nil, invalid("bad signature, or no key for this alg/kid")
	}
	pb, err := b64.DecodeString(payload)
	if err != nil {
		return nil, invalid("payload is not base64url")
	}
	return pb, nil
}

// checkSignature finds the key(s) the header may use and checks sig.
func (s *Set) checkSignature(h header, input string, sig []byte) bool {
	if h.Kid.set {
		for _, k := range s.keys {
			if k.kid != "" && k.kid == h.Kid.s {
				return k.alg == h.Alg && k.verify(input, sig)
			}
		}
		return false // an unknown kid
	}
	valid := false
	for _, k := range s.keys {
		if k.alg != h.Alg {
			continue
		}
		// No early exit for MACs: every HMAC key costs the same.
		valid = k.verify(input, sig) || valid
		if valid && k.alg != HS256 {
			break
		}
	}
	return valid
}

func invalid(reason string) error {
	return &reasonError{reason: reason}
}

// reasonError is ErrInvalid with the reason, for the log.
type reasonError struct{ reason string }

func (e *reasonError) Error() string { return ErrInvalid.Error() + ": " + e.reason }
func (e *reasonError) Unwrap() error { return ErrInvalid }

// Audience is the aud claim: a string when wxlogin signs, a string or an
// array of strings when it verifies (RFC 7519 §4.1.3).
type Audience []string

func (a *Audience) UnmarshalJSON(b []byte) error {
	if s, ok := plainString(b); ok {
		*a = Audience{s}
		return nil
	}
	var one string
	if err := jsonUnmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	return jsonUnmarshal(b, (*[]string)(a))
}

// Contains reports whether v is one of the audiences.
func (a Audience) Contains(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}
