package oidc

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

// clientsFile is the JSON of OIDC_CLIENTS_FILE.
type clientsFile struct {
	Clients []struct {
		ID           string   `json:"client_id"`
		SecretSHA256 string   `json:"secret_sha256"`
		Public       bool     `json:"public"`
		RedirectURIs []string `json:"redirect_uris"`
		IDTokenAlg   string   `json:"id_token_alg"`
	} `json:"clients"`
}

// ParseClients reads the clients file. algs are the algorithms the token
// key file has keys for, in file order; a client's id_token_alg must be one
// of them, and defaults to RS256 when there is an RSA key, else the first.
// Errors name the client, never a secret.
func ParseClients(data []byte, algs []string) ([]Client, error) {
	var f clientsFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a clients file: %v", err)
	}
	if dec.More() {
		return nil, errors.New("not a clients file: data after the JSON object")
	}
	if len(f.Clients) == 0 {
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
	for i, fc := range f.Clients {
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
