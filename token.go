package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Login tokens are JWTs (RFC 7519) signed with HS256, so that any standard
// JWT library verifies them with the same key.
const (
	tokenIssuer = "wxlogin"
	tokenLeeway = 30 * time.Second
	// tokenHeader is base64url({"alg":"HS256","typ":"JWT"}), the same for
	// every token we sign.
	tokenHeader = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
	// mockTokenKey signs tokens in mock mode when no TOKEN_SECRET is set,
	// so the whole flow works out of the box. It is public: never use it
	// for real users.
	mockTokenKey = "wxlogin-mock-mode-development-key-NOT-SECRET"
)

// errInvalidToken is every reason a token is refused; the client is told
// no more than that.
var errInvalidToken = errors.New("invalid token")

// tokens issues and verifies login tokens. The first key signs; every key
// verifies, which is how keys rotate.
type tokens struct {
	keys  [][]byte
	ttl   time.Duration
	appID string // the audience
	now   func() time.Time
}

// claims are the token's payload.
type claims struct {
	Sub     string   `json:"sub"`
	UnionID string   `json:"unionid,omitempty"`
	Iat     int64    `json:"iat"`
	Exp     int64    `json:"exp"`
	Iss     string   `json:"iss"`
	Aud     audience `json:"aud"`
	Nbf     *int64   `json:"nbf,omitempty"`
}

// sign issues a token for a logged-in user.
func (t *tokens) sign(s Session) (token string, err error) {
	now := t.now().Unix()
	return t.signClaims(claims{
		Sub: s.OpenID, UnionID: s.UnionID,
		Iat: now, Exp: now + int64(t.ttl/time.Second),
		Iss: tokenIssuer, Aud: audience{t.appID},
	})
}

// signClaims encodes and signs c with the first key.
func (t *tokens) signClaims(c claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	input := tokenHeader + "." + base64.RawURLEncoding.EncodeToString(payload)
	return input + "." + base64.RawURLEncoding.EncodeToString(mac(t.keys[0], input)), nil
}

// verify checks a token's header, signature and claims, and returns the
// claims of a token that passes. Every failure is errInvalidToken, wrapped
// with the reason for the log; the token itself never appears in it.
func (t *tokens) verify(token string) (claims, error) {
	payload, err := verifySignature(token, t.keys)
	if err != nil {
		return claims{}, err
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return claims{}, invalidToken("payload is not a JSON object of the expected claims")
	}
	now := t.now()
	switch {
	case c.Sub == "":
		return claims{}, invalidToken("no sub")
	case c.Exp == 0:
		return claims{}, invalidToken("no exp")
	case !now.Before(time.Unix(c.Exp, 0).Add(tokenLeeway)):
		return claims{}, invalidToken("expired")
	case c.Nbf != nil && now.Before(time.Unix(*c.Nbf, 0).Add(-tokenLeeway)):
		return claims{}, invalidToken("not valid yet (nbf)")
	case c.Iss != tokenIssuer:
		return claims{}, invalidToken("wrong iss")
	case !c.Aud.contains(t.appID):
		return claims{}, invalidToken("wrong aud")
	}
	return c, nil
}

// verifySignature checks the JOSE header (HS256 only, before any crypto)
// and the MAC against every key, in constant time, and returns the decoded
// payload.
func verifySignature(token string, keys [][]byte) ([]byte, error) {
	header, rest, ok1 := strings.Cut(token, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return nil, invalidToken("not three segments")
	}
	hb, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return nil, invalidToken("header is not base64url")
	}
	var h struct {
		Alg  string          `json:"alg"`
		Typ  *string         `json:"typ"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, invalidToken("header is not a JSON object")
	}
	switch {
	case h.Alg != "HS256":
		return nil, invalidToken("alg is not HS256")
	case h.Typ != nil && *h.Typ != "JWT":
		return nil, invalidToken("typ is not JWT")
	case h.Crit != nil:
		return nil, invalidToken("crit extensions are not supported")
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return nil, invalidToken("signature is not base64url")
	}
	input := token[:len(header)+1+len(payload)]
	valid := false
	for _, k := range keys {
		valid = hmac.Equal(got, mac(k, input)) || valid // no early exit: every key costs the same
	}
	if !valid {
		return nil, invalidToken("bad signature")
	}
	pb, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, invalidToken("payload is not base64url")
	}
	return pb, nil
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

func (a audience) contains(s string) bool {
	for _, v := range a {
		if v == s {
			return true
		}
	}
	return false
}
