package oidc

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestParseClients reads the tests' clients file: every field, the
// secret's hash decoded (upper-case hex too), and the id_token_alg.
func TestParseClients(t *testing.T) {
	t.Parallel()
	clients, err := ParseClients([]byte(testClientsJSON()), []string{"RS256", "ES256"})
	if err != nil {
		t.Fatalf("ParseClients = %v", err)
	}
	sum := func(s string) []byte { b, _ := hex.DecodeString(sha256Hex(s)); return b }
	want := []Client{
		{ID: confID, SecretSHA256: sum(confSecret), RedirectURIs: []string{confRedirect, confRedirect2}, IDTokenAlg: "RS256"},
		{ID: pubID, Public: true, RedirectURIs: []string{pubRedirect}, IDTokenAlg: "RS256"},
		{ID: esID, SecretSHA256: sum(esSecret), RedirectURIs: []string{esRedirect}, IDTokenAlg: "ES256"},
		{ID: oddID, SecretSHA256: sum(oddSecret), RedirectURIs: []string{oddRedir}, IDTokenAlg: "RS256"},
	}
	if !reflect.DeepEqual(clients, want) {
		t.Errorf("ParseClients =\n%+v\nwant\n%+v", clients, want)
	}
}

// fileOf is a clients file of one client with these members.
func fileOf(members string) string { return `{"clients":[{` + members + `}]}` }

const okSecret = `"secret_sha256":"` + "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8" + `"`

// TestParseClientsAlg: id_token_alg defaults to RS256 when the key file
// has an RSA key, else to its first key's algorithm; one given must have
// a key.
func TestParseClientsAlg(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		alg     string // the client's id_token_alg; "" for none
		algs    []string
		want    string
		wantErr bool
	}{
		{"RSA only", "", []string{"RS256"}, "RS256", false},
		{"RSA second", "", []string{"ES256", "RS256"}, "RS256", false},
		{"RSA last", "", []string{"EdDSA", "ES256", "RS256"}, "RS256", false},
		{"no RSA: the first", "", []string{"ES256", "EdDSA"}, "ES256", false},
		{"no RSA: the first, EdDSA", "", []string{"EdDSA", "ES256"}, "EdDSA", false},
		{"ES256 given, RSA first", "ES256", []string{"RS256", "ES256"}, "ES256", false},
		{"EdDSA given", "EdDSA", []string{"RS256", "ES256", "EdDSA"}, "EdDSA", false},
		{"RS256 given, no RSA key", "RS256", []string{"ES256"}, "", true},
		{"ES256 given, RSA only", "ES256", []string{"RS256"}, "", true},
		{"lower case", "rs256", []string{"RS256"}, "", true},
		{"none", "none", []string{"RS256"}, "", true},
		{"HS256", "HS256", []string{"RS256"}, "", true},
		{"no keys at all", "RS256", nil, "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			members := `"client_id":"c1",` + okSecret + `,"redirect_uris":["https://rp.example.com/cb"]`
			if tt.alg != "" {
				members += `,"id_token_alg":"` + tt.alg + `"`
			}
			clients, err := ParseClients([]byte(fileOf(members)), tt.algs)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), `id_token_alg "`+tt.alg+`"`) || !strings.Contains(err.Error(), `client "c1"`) {
					t.Errorf("ParseClients(id_token_alg %q, keys %v) = %+v, %v; want an error naming the client and the alg", tt.alg, tt.algs, clients, err)
				}
				return
			}
			if err != nil || len(clients) != 1 || clients[0].IDTokenAlg != tt.want {
				t.Errorf("ParseClients(id_token_alg %q, keys %v) = %+v, %v; want id_token_alg %s", tt.alg, tt.algs, clients, err, tt.want)
			}
		})
	}
}

// TestParseClientsRedirectURIs: absolute https, or http on the local
// machine only; no fragment, no user info.
func TestParseClientsRedirectURIs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		uri  string
		want string // in the error; "" for ok
	}{
		{"https://rp.example.com/cb", ""},
		{"https://rp.example.com:8443/cb?x=1&y=2", ""},
		{"https://rp.example.com", ""},
		{"https://rp.example.com/cb?", ""},
		{"http://localhost/cb", ""},
		{"http://localhost:3000/cb", ""},
		{"http://127.0.0.1:8080/cb", ""},
		{"http://127.0.0.1/cb", ""},
		{"http://[::1]:8080/cb", ""},
		{"http://[::1]/cb", ""},
		{"com.example.app:/oauth", "is not an absolute URL"}, // no host
		{"/cb", "is not an absolute URL"},
		{"//rp.example.com/cb", "is not an absolute URL"},
		{"rp.example.com/cb", "is not an absolute URL"},
		{"https:rp.example.com/cb", "is not an absolute URL"},
		{"https:///cb", "is not an absolute URL"},
		{"", "is not an absolute URL"},
		{"https://rp.example.com/cb#x", "has a fragment"},
		{"https://rp.example.com/cb#", "has a fragment"},
		{"http://localhost/cb#frag", "has a fragment"},
		{"https://user:pass@rp.example.com/cb", "has user info"},
		{"https://user@rp.example.com/cb", "has user info"},
		{"http://rp.example.com/cb", "is not https://"},
		{"http://localhost.example.com/cb", "is not https://"},
		{"http://127.0.0.2/cb", "is not https://"},
		{"http://0.0.0.0/cb", "is not https://"},
		{"http://[::2]/cb", "is not https://"},
		{"http://192.168.1.10/cb", "is not https://"},
		{"ftp://rp.example.com/cb", "is not https://"},
		{"wss://rp.example.com/cb", "is not https://"},
		{"javascript://rp.example.com/%0aalert(1)", "is not https://"},
	} {
		t.Run(tt.uri, func(t *testing.T) {
			t.Parallel()
			members := fmt.Sprintf(`"client_id":"c1",%s,"redirect_uris":["https://ok.example.com/cb",%q]`, okSecret, tt.uri)
			clients, err := ParseClients([]byte(fileOf(members)), []string{"RS256"})
			if tt.want == "" {
				if err != nil || len(clients) != 1 || clients[0].RedirectURIs[1] != tt.uri {
					t.Errorf("ParseClients(redirect_uri %q) = %+v, %v; want it accepted as it is", tt.uri, clients, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `client "c1"`) {
				t.Errorf("ParseClients(redirect_uri %q) = %+v, %v; want an error naming the client and containing %q", tt.uri, clients, err, tt.want)
			}
		})
	}
}

// TestParseClientsErrors: every clients file the service refuses to start
// with, each error naming the client (by id, else by position) and never
// holding a secret_sha256 value.
func TestParseClientsErrors(t *testing.T) {
	t.Parallel()
	const ok = `"client_id":"c1",` + okSecret + `,"redirect_uris":["https://rp.example.com/cb"]`
	const badHash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeZ"
	for _, tt := range []struct {
		name, file, want string
	}{
		{"empty", ``, "not a clients file"},
		{"not JSON", `clients: [c1]`, "not a clients file"},
		{"a JSON array", `[{` + ok + `}]`, "not a clients file"},
		{"cut short", `{"clients":[{` + ok, "not a clients file"},
		{"a second object after", fileOf(ok) + ` {}`, "data after the JSON object"},
		{"no clients member", `{}`, "no client"},
		{"clients null", `{"clients":null}`, "no client"},
		{"clients empty", `{"clients":[]}`, "no client"},
		{"clients an object", `{"clients":{` + ok + `}}`, "no client"},
		{"unknown top-level member", `{"clients":[{` + ok + `}],"issuer":"x"}`, `unknown member "issuer"`},
		{"unknown client member", fileOf(ok + `,"client_secret":"hunter2hunter2"`), `client 1: unknown member "client_secret"`},
		{"unknown client member: a typo", fileOf(ok + `,"redirect_uri":"https://rp.example.com/cb"`), `client 1: unknown member "redirect_uri"`},
		{"secret_sha256 of the empty secret", fileOf(`"client_id":"c1","secret_sha256":"` + sha256Hex("") + `","redirect_uris":["https://rp.example.com/cb"]`), "SHA-256 of an empty secret"},
		{"no client_id", fileOf(okSecret + `,"redirect_uris":["https://rp.example.com/cb"]`), "client 1 has no client_id"},
		{"empty client_id, second client", `{"clients":[{` + ok + `},{"client_id":"",` + okSecret + `,"redirect_uris":["https://rp.example.com/cb"]}]}`, "client 2 has no client_id"},
		{"client_id with a space", fileOf(`"client_id":"my app",` + okSecret + `,"redirect_uris":["https://rp.example.com/cb"]`), "printable ASCII"},
		{"client_id with a tab", fileOf(`"client_id":"app\t1",` + okSecret + `,"redirect_uris":["https://rp.example.com/cb"]`), "printable ASCII"},
		{"client_id not ASCII", fileOf(`"client_id":"应用",` + okSecret + `,"redirect_uris":["https://rp.example.com/cb"]`), "printable ASCII"},
		{"client_id of 129 characters", fileOf(`"client_id":"` + strings.Repeat("c", 129) + `",` + okSecret + `,"redirect_uris":["https://rp.example.com/cb"]`), "1–128"},
		{"duplicate client_id", `{"clients":[{` + ok + `},{` + ok + `}]}`, `client "c1" is listed twice`},
		{"no redirect_uris", fileOf(`"client_id":"c1",` + okSecret), `client "c1" has no redirect_uris`},
		{"empty redirect_uris", fileOf(`"client_id":"c1",` + okSecret + `,"redirect_uris":[]`), `client "c1" has no redirect_uris`},
		{"redirect_uris a string", fileOf(`"client_id":"c1",` + okSecret + `,"redirect_uris":"https://rp.example.com/cb"`), "client 1: redirect_uris: "},
		{"a bad redirect_uri after a good one", fileOf(`"client_id":"c1",` + okSecret + `,"redirect_uris":["https://rp.example.com/cb","http://rp.example.com/cb"]`), `client "c1": redirect_uri "http://rp.example.com/cb" is not https://`},
		{"confidential without secret_sha256", fileOf(`"client_id":"c1","redirect_uris":["https://rp.example.com/cb"]`), `client "c1" is confidential and needs secret_sha256`},
		{"public false without secret_sha256", fileOf(`"client_id":"c1","public":false,"redirect_uris":["https://rp.example.com/cb"]`), `client "c1" is confidential and needs secret_sha256`},
		{"secret_sha256 not hex", fileOf(`"client_id":"c1","secret_sha256":"` + badHash + `","redirect_uris":["https://rp.example.com/cb"]`), "needs secret_sha256: 64 hex digits"},
		{"secret_sha256 of 63 digits", fileOf(`"client_id":"c1","secret_sha256":"` + badHash[:63] + `","redirect_uris":["https://rp.example.com/cb"]`), "needs secret_sha256: 64 hex digits"},
		{"secret_sha256 of 62 digits", fileOf(`"client_id":"c1","secret_sha256":"` + sha256Hex("x")[:62] + `","redirect_uris":["https://rp.example.com/cb"]`), "needs secret_sha256: 64 hex digits"},
		{"secret_sha256 of 66 digits", fileOf(`"client_id":"c1","secret_sha256":"` + sha256Hex("x") + `00","redirect_uris":["https://rp.example.com/cb"]`), "needs secret_sha256: 64 hex digits"},
		{"secret_sha256 is the secret itself", fileOf(`"client_id":"c1","secret_sha256":"hunter2-the-plain-secret","redirect_uris":["https://rp.example.com/cb"]`), "needs secret_sha256"},
		{"public with a secret_sha256", fileOf(`"client_id":"c1","public":true,` + okSecret + `,"redirect_uris":["https://rp.example.com/cb"]`), `client "c1" is public and has a secret_sha256`},
		{"public not a boolean", fileOf(ok + `,"public":"yes"`), "client 1: public: "},
		{"id_token_alg without a key", fileOf(ok + `,"id_token_alg":"EdDSA"`), `client "c1": id_token_alg "EdDSA" has no key in TOKEN_KEY_FILE (it has RS256, ES256)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clients, err := ParseClients([]byte(tt.file), []string{"RS256", "ES256"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseClients(%s) = %+v, %v; want an error containing %q", tt.name, clients, err, tt.want)
			}
			if clients != nil {
				t.Errorf("ParseClients(%s) = %d clients beside the error, want none", tt.name, len(clients))
			}
			for _, secret := range []string{"5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8", badHash[:60], "hunter2"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("ParseClients(%s) error %q holds a secret (%s…)", tt.name, err, secret[:8])
				}
			}
		})
	}
}

// TestParseClientsNotJSON: a clients file is one JSON object and nothing
// after it.
func TestParseClientsNotJSON(t *testing.T) {
	t.Parallel()
	const ok = `"client_id":"c1",` + okSecret + `,"redirect_uris":["https://rp.example.com/cb"]`
	good := fileOf(ok)
	if _, err := ParseClients([]byte(good+"\n"), []string{"RS256"}); err != nil {
		t.Fatalf("ParseClients(a good file with a newline) = %v", err)
	}
	for _, tail := range []string{"}", "]", " }", "x", "{}", "[]", "null", `"more"`, "0"} {
		t.Run(tail, func(t *testing.T) {
			t.Parallel()
			file := good + tail
			if clients, err := ParseClients([]byte(file), []string{"RS256"}); err == nil {
				t.Errorf("ParseClients(%s) = %d clients, nil; want an error: not one JSON object", file, len(clients))
			}
		})
	}
}

// TestParseClientsMemberNames: a member name matches exactly, and is
// given once: "Public" or "CLIENT_ID" is an unknown member (a typo that
// would otherwise change what the file says), and of a member given twice
// neither value can be trusted.
func TestParseClientsMemberNames(t *testing.T) {
	t.Parallel()
	const uris = `"redirect_uris":["https://rp.example.com/cb"]`
	for _, tt := range []struct{ name, file string }{
		{"CLIENT_ID", fileOf(`"CLIENT_ID":"c1",` + okSecret + `,` + uris)},
		{"Public", fileOf(`"client_id":"c1","Public":true,` + uris)},
		{"Redirect_URIs", fileOf(`"client_id":"c1",` + okSecret + `,"Redirect_URIs":["https://rp.example.com/cb"]`)},
		{"Clients", `{"Clients":[{"client_id":"c1",` + okSecret + `,` + uris + `}]}`},
		{"secret_sha256 twice", fileOf(`"client_id":"c1",` + okSecret + `,"secret_sha256":"` + sha256Hex("other") + `",` + uris)},
		{"client_id twice", fileOf(`"client_id":"c1","client_id":"c2",` + okSecret + `,` + uris)},
		{"public twice", fileOf(`"client_id":"c1","public":false,"public":true,` + uris)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if clients, err := ParseClients([]byte(tt.file), []string{"RS256"}); err == nil {
				t.Errorf("ParseClients(%s) = %+v, nil; want an error", tt.file, clients)
			}
		})
	}
}
