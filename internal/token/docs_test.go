package token

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"
)

// jwkMembers are the members each kind of public JWK has, and no other.
var jwkMembers = map[string][]string{
	"EC":  {"alg", "crv", "kid", "kty", "use", "x", "y"},
	"OKP": {"alg", "crv", "kid", "kty", "use", "x"},
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	ec, ed, ec2 := newP256(t), newEd25519(t), newP256(t)
	pub := parseKeys(t, ec, ed, ec2)
	hs := hmacKey(t, testKey)

	var none *Set
	if got := none.JWKS(); got != nil {
		t.Errorf("nil Set: JWKS() = %s, want nil", got)
	}
	if got := none.PublicKeys(); got != nil {
		t.Errorf("nil Set: PublicKeys() = %v, want nil", got)
	}
	if got := newSet(t, testNow, hs).JWKS(); got != nil {
		t.Errorf("HMAC only: JWKS() = %s, want nil (an HMAC key is a secret)", got)
	}
	if got := newSet(t, testNow, hs).PublicKeys(); got != nil {
		t.Errorf("HMAC only: PublicKeys() = %v, want none", got)
	}

	for _, tt := range []struct {
		name string
		keys []*Key
	}{
		{"public keys, then HMAC", append(slices.Clone(pub), hs)},
		{"HMAC first (signs), then public keys", append([]*Key{hs}, pub...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSet(t, testNow, tt.keys...)
			if got := s.PublicKeys(); !slices.Equal(got, pub) {
				t.Errorf("PublicKeys() = %d keys, want the %d public keys in order", len(got), len(pub))
			}
			raw := s.JWKS()
			var set map[string][]map[string]any
			if err := json.Unmarshal(raw, &set); err != nil || len(set) != 1 {
				t.Fatalf("JWKS() = %s, %v; want {\"keys\": [...]}", raw, err)
			}
			keys := set["keys"]
			if len(keys) != len(pub) {
				t.Fatalf("JWKS() has %d keys, want %d", len(keys), len(pub))
			}
			for i, jwk := range keys {
				want := map[string]any{"kty": pub[i].jwk.Kty, "crv": pub[i].jwk.Crv, "x": pub[i].jwk.X,
					"kid": pub[i].ID(), "alg": pub[i].Alg(), "use": "sig"}
				if pub[i].jwk.Y != "" {
					want["y"] = pub[i].jwk.Y
				}
				if !maps.Equal(jwk, want) {
					t.Errorf("JWKS() key %d = %v, want %v", i, jwk, want)
				}
				if got := slices.Sorted(maps.Keys(jwk)); !slices.Equal(got, jwkMembers[pub[i].jwk.Kty]) {
					t.Errorf("JWKS() key %d has members %v, want exactly %v", i, got, jwkMembers[pub[i].jwk.Kty])
				}
			}
			if keys[0]["kty"] != "EC" || keys[1]["kty"] != "OKP" || keys[2]["kty"] != "EC" {
				t.Errorf("JWKS() key types %v %v %v, want EC OKP EC (key order)", keys[0]["kty"], keys[1]["kty"], keys[2]["kty"])
			}
			// No private half: neither the P-256 scalars nor the Ed25519 seed,
			// nor the HMAC secret, in any spelling.
			secrets := [][]byte{[]byte(testKey), []byte(enc([]byte(testKey))), []byte(b64.EncodeToString(ed.Seed()))}
			for _, k := range []*ecdsa.PrivateKey{ec, ec2} {
				d, err := k.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				secrets = append(secrets, []byte(b64.EncodeToString(d)))
			}
			for i, secret := range secrets {
				if bytes.Contains(raw, secret) {
					t.Errorf("JWKS() holds private material %d", i)
				}
			}
			if bytes.Contains(raw, []byte(`"d"`)) {
				t.Errorf("JWKS() has a \"d\" member")
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	pub := parseKeys(t, newP256(t), newEd25519(t), newP256(t))
	hs := hmacKey(t, testKey)
	const issuer = "https://login.example.com"
	set := func(issuer string, keys ...*Key) *Set {
		return New(Options{Keys: keys, TTL: time.Hour, Issuer: issuer, Now: fixedClock(testNow)})
	}

	for _, tt := range []struct {
		name string
		s    *Set
	}{
		{"nil Set", nil},
		{"HMAC only, URL issuer", set(issuer, hs)},
		{"public keys, a name as issuer", set("wxlogin", pub...)},
		{"public keys, empty issuer", set("", pub...)},
	} {
		if d, ok := tt.s.Discovery(); ok || !reflect.DeepEqual(d, Discovery{}) {
			t.Errorf("%s: Discovery() = %+v, %v; want none", tt.name, d, ok)
		}
	}

	for _, tt := range []struct {
		name string
		s    *Set
		algs []any
	}{
		{"ES256, EdDSA, ES256 and HMAC", set(issuer, append(slices.Clone(pub), hs)...), []any{"ES256", "EdDSA"}},
		{"HMAC signs, EdDSA", set(issuer, hs, pub[1]), []any{"EdDSA"}},
		{"http", set("http://127.0.0.1:8080/auth", pub[0]), []any{"ES256"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, ok := tt.s.Discovery()
			if !ok {
				t.Fatalf("Discovery() = none, want the metadata")
			}
			raw, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			iss := tt.s.issuer
			want := map[string]any{
				"issuer":                                iss,
				"jwks_uri":                              iss + "/.well-known/jwks.json",
				"id_token_signing_alg_values_supported": tt.algs,
				"response_types_supported":              []any{"id_token"},
				"subject_types_supported":               []any{"public"},
				"claims_supported":                      []any{"sub", "iss", "aud", "exp", "iat", "unionid", "phone_number", "phone_number_verified"},
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Discovery() = %s, want %v", raw, want)
			}
		})
	}
}
