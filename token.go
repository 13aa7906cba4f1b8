package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"
)

// Login tokens are JWTs (RFC 7519) signed HS256 with a shared key, or
// ES256/EdDSA with a private key whose public half the JWKS publishes, so
// that any standard JWT library or gateway verifies them.
const (
	tokenIssuer = "wxlogin"
	tokenLeeway = 30 * time.Second
	// mockTokenKey signs tokens in mock mode when no key is set, so the
	// whole flow works out of the box. It is public: never use it for real
	// users.
	mockTokenKey = "wxlogin-mock-mode-development-key-NOT-SECRET"
)

// errInvalidToken is every reason a token is refused; the client is told
// no more than that.
var errInvalidToken = errors.New("invalid token")

// tokens issues and verifies login tokens. The signer is the first key of
// TOKEN_KEY_FILE, else the first HMAC key; every key verifies, which is how
// keys rotate and how HS256 tokens stay valid after a move to ES256.
type tokens struct {
	signer *tokenKey
	header string      // base64url of the signer's JOSE header
	keys   []*tokenKey // every key that verifies
	ttl    time.Duration
	issuer string
	apps   []string // accepted audiences: the configured AppIDs
	now    func() time.Time
	cache  *tokenCache // verified tokens; nil = none
}

// newTokens builds the token service, or returns nil when there is no key.
func newTokens(hmacKeys [][]byte, keyFile []*tokenKey, ttl time.Duration, issuer string, apps []string, now func() time.Time) *tokens {
	t := &tokens{keys: keyFile, ttl: ttl, issuer: issuer, apps: apps, now: now, cache: newTokenCache(tokenCacheSize)}
	for _, k := range hmacKeys {
		t.keys = append(t.keys, hmacKey(k))
	}
	if len(t.keys) == 0 {
		return nil
	}
	t.signer = t.keys[0]
	h := `{"alg":"` + t.signer.alg + `","typ":"JWT"}`
	if t.signer.kid != "" {
		h = `{"alg":"` + t.signer.alg + `","typ":"JWT","kid":"` + t.signer.kid + `"}`
	}
	t.header = b64.EncodeToString([]byte(h))
	return t
}

// publicKeys are the keys the JWKS publishes: every key but the HMAC
// ones, which are secrets. None when tokens are off (t is nil).
func (t *tokens) publicKeys() []*tokenKey {
	if t == nil {
		return nil
	}
	var pub []*tokenKey
	for _, k := range t.keys {
		if k.alg != algHS256 {
			pub = append(pub, k)
		}
	}
	return pub
}

// claims are the token's payload.
type claims struct {
	Sub           string   `json:"sub"`
	UnionID       string   `json:"unionid,omitempty"`
	Phone         string   `json:"phone_number,omitempty"` // E.164, after POST /phonenumber
	PhoneVerified bool     `json:"phone_number_verified,omitempty"`
	Iat           int64    `json:"iat"`
	Exp           int64    `json:"exp"`
	Iss           string   `json:"iss"`
	Aud           audience `json:"aud"`
	Nbf           *int64   `json:"nbf,omitempty"`
}

// identity is what a verified token says: the user, the app, and when the
// token expires. It is what /session answers and what the cache holds.
type identity struct {
	OpenID  string
	UnionID string
	AppID   string
	Phone   string
	Exp     int64
}

// sign issues a token for a logged-in user of app.
func (t *tokens) sign(id identity) (string, error) {
	now := t.now().Unix()
	c := claims{
		Sub: id.OpenID, UnionID: id.UnionID,
		Iat: now, Exp: now + int64(t.ttl/time.Second),
		Iss: t.issuer, Aud: audience{id.AppID},
	}
	if id.Phone != "" {
		c.Phone, c.PhoneVerified = id.Phone, true
	}
	return t.signClaims(c)
}

// signClaims encodes and signs c with the signing key.
func (t *tokens) signClaims(c claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	input := t.header + "." + b64.EncodeToString(payload)
	sig, err := t.signer.sign(input)
	if err != nil {
		return "", err
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// verify checks a token's header, signature and claims. A token verified
// before is answered from the cache, without repeating the signature
// check. Every failure is errInvalidToken, wrapped with the reason for the
// log; the token itself never appears in it.
func (t *tokens) verify(token string) (identity, error) {
	now := t.now()
	var sum [32]byte
	if t.cache != nil {
		sum = sha256.Sum256([]byte(token))
		if id, ok := t.cache.get(sum, now.Add(-tokenLeeway).Unix()); ok {
			return id, nil
		}
	}
	payload, err := t.verifySignature(token)
	if err != nil {
		return identity{}, err
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return identity{}, invalidToken("payload is not a JSON object of the expected claims")
	}
	switch {
	case c.Sub == "":
		return identity{}, invalidToken("no sub")
	case c.Exp == 0:
		return identity{}, invalidToken("no exp")
	case !now.Before(time.Unix(c.Exp, 0).Add(tokenLeeway)):
		return identity{}, invalidToken("expired")
	case c.Nbf != nil && now.Before(time.Unix(*c.Nbf, 0).Add(-tokenLeeway)):
		return identity{}, invalidToken("not valid yet (nbf)")
	case c.Iss != t.issuer:
		return identity{}, invalidToken("wrong iss")
	}
	app := c.Aud.first(t.apps)
	if app == "" {
		return identity{}, invalidToken("wrong aud")
	}
	id := identity{OpenID: c.Sub, UnionID: c.UnionID, AppID: app, Exp: c.Exp}
	if c.PhoneVerified {
		id.Phone = c.Phone
	}
	if t.cache != nil && (c.Nbf == nil || !now.Before(time.Unix(*c.Nbf, 0))) {
		t.cache.put(sum, id)
	}
	return id, nil
}

// joseHeader is the part of a token's header we read.
type joseHeader struct {
	Alg  string          `json:"alg"`
	Typ  *string         `json:"typ"`
	Kid  *string         `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

// verifySignature checks the JOSE header and the signature, and returns
// the decoded payload. The key is looked up first (by kid, else by alg)
// and the header's alg must be the key's own: the token never chooses how
// it is checked.
func (t *tokens) verifySignature(token string) ([]byte, error) {
	header, rest, ok1 := strings.Cut(token, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return nil, invalidToken("not three segments")
	}
	hb, err := b64.DecodeString(header)
	if err != nil {
		return nil, invalidToken("header is not base64url")
	}
	var h joseHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, invalidToken("header is not a JSON object")
	}
	switch {
	case h.Typ != nil && *h.Typ != "JWT":
		return nil, invalidToken("typ is not JWT")
	case h.Crit != nil:
		return nil, invalidToken("crit extensions are not supported")
	}
	got, err := b64.DecodeString(sig)
	if err != nil {
		return nil, invalidToken("signature is not base64url")
	}
	input := token[:len(header)+1+len(payload)]
	if !t.checkSignature(h, input, got) {
		return nil, invalidToken("bad signature, or no key for this alg/kid")
	}
	pb, err := b64.DecodeString(payload)
	if err != nil {
		return nil, invalidToken("payload is not base64url")
	}
	return pb, nil
}

// checkSignature finds the key(s) the header may use and checks sig.
func (t *tokens) checkSignature(h joseHeader, input string, sig []byte) bool {
	if h.Kid != nil {
		for _, k := range t.keys {
			if k.kid != "" && k.kid == *h.Kid {
				return k.alg == h.Alg && k.verify(input, sig)
			}
		}
		return false // an unknown kid
	}
	valid := false
	for _, k := range t.keys {
		if k.alg != h.Alg {
			continue
		}
		// No early exit for MACs: every HMAC key costs the same.
		valid = k.verify(input, sig) || valid
		if valid && k.alg != algHS256 {
			break
		}
	}
	return valid
}

func mac(key []byte, input string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return m.Sum(nil)
}

func invalidToken(reason string) error {
	return &reasonError{reason: reason, err: errInvalidToken}
}

// reasonError is errInvalidToken with the reason, for the log.
type reasonError struct {
	reason string
	err    error
}

func (e *reasonError) Error() string { return e.err.Error() + ": " + e.reason }
func (e *reasonError) Unwrap() error { return e.err }

// audience is the aud claim: a string when we sign, a string or an array of
// strings when we verify (RFC 7519 §4.1.3).
type audience []string

func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// first returns the first audience that is one of apps, or "".
func (a audience) first(apps []string) string {
	for _, v := range a {
		for _, app := range apps {
			if v == app {
				return app
			}
		}
	}
	return ""
}

// tokenCacheSize bounds the cache of verified tokens. An entry is the
// token's SHA-256 (32 bytes), an identity (four string headers and exp)
// and the strings it points to; with the map's own overhead that is about
// 530 bytes (BenchmarkTokenCache measures it), so the cache stays under
// about 17 MiB whatever tokens arrive.
const tokenCacheSize = 32_768

// tokenCache remembers tokens that verified, keyed by a hash of the whole
// token, so that /session behind a gateway does not repeat a public-key
// signature check on every API call. An entry never outlives its token's
// exp; when full, an arbitrary entry makes room.
type tokenCache struct {
	mu  sync.Mutex
	max int
	m   map[[32]byte]identity
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, m: make(map[[32]byte]identity)}
}

// get returns the identity of a cached token whose exp is after minExp.
func (c *tokenCache) get(sum [32]byte, minExp int64) (identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.m[sum]
	if ok && id.Exp <= minExp {
		delete(c.m, sum)
		return identity{}, false
	}
	return id, ok
}

func (c *tokenCache) put(sum [32]byte, id identity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k := range c.m { // map order is random: an arbitrary victim
			delete(c.m, k)
			break
		}
	}
	c.m[sum] = id
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
