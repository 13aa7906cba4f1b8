package oidc

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// PKCE (RFC 7636) with S256 only: "plain" protects nothing that TLS does
// not.

// validChallenge reports whether c can be BASE64URL(SHA-256(verifier)):
// 43 characters of the base64url alphabet.
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(c)
	return err == nil
}

// validVerifier reports whether v is a code_verifier: 43–128 characters of
// A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1).
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// s256 is BASE64URL(SHA-256(ASCII(verifier))) (RFC 7636 §4.2).
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// verifierMatches reports whether verifier proves challenge.
func verifierMatches(verifier, challenge string) bool {
	return validVerifier(verifier) && subtle.ConstantTimeCompare([]byte(s256(verifier)), []byte(challenge)) == 1
}
