package oidc

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
)

// sealer seals values with AES-256-GCM: what must survive between the
// steps of a login (the authorization request, the code) travels in the
// browser's cookie or in the code, and only a replica with the same key can
// read or make one. The purpose is bound as additional data, and each use
// has a key of its own.
type sealer struct {
	aead    cipher.AEAD
	purpose []byte
}

var errUnseal = errors.New("does not unseal")

func newSealer(key []byte, purpose string) (sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return sealer{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealer{}, err
	}
	return sealer{aead: aead, purpose: []byte(purpose)}, nil
}

// seal encrypts v's JSON under a random nonce, as base64url.
func (s sealer) seal(v any) string {
	plain, err := json.Marshal(v)
	if err != nil {
		panic("oidc: seal: " + err.Error()) // our own fixed types
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, s.purpose))
}

// open decrypts and authenticates text into v.
func (s sealer) open(text string, v any) error {
	b, err := base64.RawURLEncoding.Strict().DecodeString(text)
	if err != nil || len(b) < s.aead.NonceSize()+s.aead.Overhead() {
		return errUnseal
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, b[:n], b[n:], s.purpose)
	if err != nil {
		return errUnseal
	}
	if json.Unmarshal(plain, v) != nil {
		return errUnseal
	}
	return nil
}
