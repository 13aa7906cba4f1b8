package token

import (
	"encoding/json"
	"slices"
	"strings"
)

// PublicKeys are the keys a JWKS publishes: every key but the HMAC ones,
// which are secrets. None when tokens are off (s is nil).
func (s *Set) PublicKeys() []*Key {
	if s == nil {
		return nil
	}
	var pub []*Key
	for _, k := range s.keys {
		if k.alg != HS256 {
			pub = append(pub, k)
		}
	}
	return pub
}

// JWKS is the JSON Web Key Set of the public keys, in key order, or nil
// when there is none to publish.
func (s *Set) JWKS() []byte {
	pub := s.PublicKeys()
	if len(pub) == 0 {
		return nil
	}
	set := struct {
		Keys []JWK `json:"keys"`
	}{}
	for _, k := range pub {
		set.Keys = append(set.Keys, k.jwk)
	}
	b, _ := json.Marshal(set)
	return b
}

// Discovery is the OpenID Provider Metadata (OpenID Connect Discovery 1.0
// §3) that wxlogin serves.
type Discovery struct {
	Issuer        string   `json:"issuer"`
	JWKSURI       string   `json:"jwks_uri"`
	IDTokenAlgs   []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypes []string `json:"response_types_supported"`
	SubjectTypes  []string `json:"subject_types_supported"`
	Claims        []string `json:"claims_supported"`
}

// Discovery is the metadata for the JWKS, or false when there is none to
// serve: the issuer is not an http(s) URL, or there is no public key.
func (s *Set) Discovery() (Discovery, bool) {
	pub := s.PublicKeys()
	if len(pub) == 0 || !strings.Contains(s.issuer, "://") {
		return Discovery{}, false
	}
	var algs []string
	for _, k := range pub {
		if !slices.Contains(algs, k.alg) {
			algs = append(algs, k.alg)
		}
	}
	return Discovery{
		Issuer:        s.issuer,
		JWKSURI:       s.issuer + "/.well-known/jwks.json",
		IDTokenAlgs:   algs,
		ResponseTypes: []string{"id_token"},
		SubjectTypes:  []string{"public"},
		Claims:        []string{"sub", "iss", "aud", "exp", "iat", "unionid", "phone_number", "phone_number_verified"},
	}, true
}
