package oidc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
)

// Client is one relying party of the clients file.
type Client struct {
	ID           string
	Public       bool     // no secret; must use PKCE
	SecretSHA256 []byte   // of a confidential client's secret
	RedirectURIs []string // matched exactly
	IDTokenAlg   string   // the algorithm its id_tokens are signed with
}

// ParseClients reads the clients file. algs are the algorithms the token
// key file has keys for, in file order; a client's id_token_alg must be one
// of them, and defaults to RS256 when there is an RSA key, else the first.
// Member names must be exactly the documented ones, each once. Errors name
// the client, never a secret.
func ParseClients(data []byte, algs []string) ([]Client, error) {
	top, err := members(data, "clients")
	if err != nil {
		return nil, fmt.Errorf("not a clients file: %v", err)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(top["clients"], &list); err != nil || len(list) == 0 {
		return nil, errors.New(`no client: list them in {"clients": [...]}`)
	}
	defaultAlg := ""
	if len(algs) > 0 {
		defaultAlg = algs[0]
	}
	if slices.Contains(algs, "RS256") {
		defaultAlg = "RS256"
	}
	var clients []Client
	seen := map[string]bool{}
	for i, raw := range list {
		var fc fileClient
		if err := fc.read(raw); err != nil {
			return nil, fmt.Errorf("client %d: %v", i+1, err)
		}
		name := fmt.Sprintf("client %d", i+1)
		if fc.ID != "" {
			name = fmt.Sprintf("client %q", fc.ID)
		}
		c := Client{ID: fc.ID, Public: fc.Public, RedirectURIs: fc.RedirectURIs, IDTokenAlg: fc.IDTokenAlg}
		switch {
		case fc.ID == "":
			return nil, fmt.Errorf("%s has no client_id", name)
		case len(fc.ID) > 128 || strings.ContainsFunc(fc.ID, func(r rune) bool { return r < 0x21 || r > 0x7e }):
			return nil, fmt.Errorf("%s: client_id must be 1–128 printable ASCII characters without spaces", name)
		case seen[fc.ID]:
			return nil, fmt.Errorf("%s is listed twice", name)
		case len(fc.RedirectURIs) == 0:
			return nil, fmt.Errorf("%s has no redirect_uris", name)
		}
		seen[fc.ID] = true
		for _, u := range fc.RedirectURIs {
			if err := checkRedirectURI(u); err != nil {
				return nil, fmt.Errorf("%s: redirect_uri %q %v", name, u, err)
			}
		}
		switch {
		case fc.Public && fc.SecretSHA256 != "":
			return nil, fmt.Errorf("%s is public and has a secret_sha256: a public client has no secret", name)
		case !fc.Public:
			sum, err := hex.DecodeString(fc.SecretSHA256)
			if err != nil || len(sum) != 32 {
				return nil, fmt.Errorf("%s is confidential and needs secret_sha256: 64 hex digits, the SHA-256 of its secret (printf %%s \"$SECRET\" | sha256sum), or \"public\": true", name)
			}
			if empty := sha256.Sum256(nil); bytes.Equal(sum, empty[:]) {
				return nil, fmt.Errorf("%s: secret_sha256 is the SHA-256 of an empty secret, which no client can present", name)
			}
			c.SecretSHA256 = sum
		}
		switch {
		case c.IDTokenAlg == "":
			c.IDTokenAlg = defaultAlg
		case !slices.Contains(algs, c.IDTokenAlg):
			return nil, fmt.Errorf("%s: id_token_alg %q has no key in TOKEN_KEY_FILE (it has %s)", name, c.IDTokenAlg, strings.Join(algs, ", "))
		}
		clients = append(clients, c)
	}
	return clients, nil
}

// fileClient is one client as the file writes it.
type fileClient struct {
	ID           string
	SecretSHA256 string
	Public       bool
	RedirectURIs []string
	IDTokenAlg   string
}

// read decodes one client of the file, its members named exactly.
func (fc *fileClient) read(raw []byte) error {
	m, err := members(raw, "client_id", "secret_sha256", "public", "redirect_uris", "id_token_alg")
	if err != nil {
		return err
	}
	for name, dst := range map[string]any{"client_id": &fc.ID, "secret_sha256": &fc.SecretSHA256, "public": &fc.Public,
		"redirect_uris": &fc.RedirectURIs, "id_token_alg": &fc.IDTokenAlg} {
		if v, ok := m[name]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
		}
	}
	return nil
}

// members reads the JSON object raw and returns its members by name. A
// name not in allowed (in any spelling: encoding/json would take "Public"
// for "public"), a name given twice, or data after the object is refused:
// each reader of the file must see the same clients.
func members(raw []byte, allowed ...string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name := t.(string)
		if !slices.Contains(allowed, name) {
			return nil, fmt.Errorf("unknown member %q (members are %s)", name, strings.Join(allowed, ", "))
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("member %q is given twice", name)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		m[name] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return m, nil
}

// checkRedirectURI accepts an absolute https URL without a fragment, or
// http on the local machine (localhost, 127.0.0.1, [::1]) for development.
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return errors.New("is not an absolute URL")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("has a fragment (RFC 6749 §3.1.2)")
	case u.User != nil:
		return errors.New("has user info")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "::1"):
		return nil
	}
	return errors.New("is not https:// (http:// only for localhost, 127.0.0.1 and [::1])")
}
