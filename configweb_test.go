package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// The web login's settings: what loadConfig accepts, what it refuses
// (exit 2, naming the setting and never a secret), and the defaults.

// miniSecret is the mini-program's AppSecret in these tests.
const miniSecret = "MiniProgramSecret-c0ffee77"

// webConfigFiles are the files of a web login's configuration: the
// clients file and TOKEN_KEY_FILE (an RSA key, then a P-256 key).
type webConfigFiles struct {
	clients, keyFile string
}

func newWebConfigFiles(t *testing.T) webConfigFiles {
	t.Helper()
	p := testKeyPEMs()
	return webConfigFiles{clients: writeFile(t, testClientsJSON()), keyFile: writeKeyFile(t, append(slices.Clone(p.rsa1), p.ec...))}
}

// env is the environment of an instance with the mini-program and the web
// login on, both web apps with their secrets; kv add or replace
// variables ("" unsets one).
func (f webConfigFiles) env(kv ...string) map[string]string {
	m := map[string]string{
		"WX_APPID": realAppID, "WX_SECRET": miniSecret,
		"OIDC_CLIENTS_FILE": f.clients, "TOKEN_ISSUER": "https://login.example.com", "TOKEN_KEY_FILE": f.keyFile,
		"WX_WEB_APPID": testWebAppID, "WX_WEB_SECRET": testWebSecret, "WX_OA_APPID": testOAAppID, "WX_OA_SECRET": testOASecret,
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
			continue
		}
		m[kv[i]] = kv[i+1]
	}
	return m
}

// clientsWith is a clients file of one client, given as the JSON members
// inside its object.
func clientsWith(t *testing.T, members string) string {
	t.Helper()
	return writeFile(t, `{"clients":[{`+members+`}]}`)
}

func TestWebConfigErrors(t *testing.T) {
	t.Parallel()
	f := newWebConfigFiles(t)
	const leaked = "LeakedSecretValue-77aa" // a secret where a setting or a file should not hold one
	hash := `"secret_sha256":"` + sha256Hex(shopSecret) + `"`
	redirect := `"redirect_uris":["https://a.example/cb"]`
	dirWithMini := kubeSecretDir(t, map[string]string{realAppID: "dir-secret", testWebAppID: testWebSecret})
	dirWithoutOA := kubeSecretDir(t, map[string]string{testWebAppID: testWebSecret})
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(small)
	smallKey := writeKeyFile(t, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	rsaOnly := writeKeyFile(t, testKeyPEMs().rsa1)

	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		setting string   // the setting the error names first ("" for a problem joining two)
		also    []string // more the message must say
	}{
		// The issuer and the keys.
		{"issuer not a URL", nil, f.env("TOKEN_ISSUER", "wxlogin"), "TOKEN_ISSUER", nil},
		{"issuer unset", nil, f.env("TOKEN_ISSUER", ""), "TOKEN_ISSUER", nil},
		{"issuer not http(s)", nil, f.env("TOKEN_ISSUER", "ftp://login.example.com"), "TOKEN_ISSUER", nil},
		{"issuer with a password", nil, f.env("TOKEN_ISSUER", "https://u:"+leaked+"@login.example.com"), "TOKEN_ISSUER", nil},
		{"-token-issuer not a URL", []string{"-token-issuer", "wxlogin"}, f.env(), "-token-issuer", nil},
		{"no key file", nil, f.env("TOKEN_KEY_FILE", ""), "TOKEN_KEY_FILE", []string{"RS256"}},
		{"HMAC keys only", nil, f.env("TOKEN_KEY_FILE", "", "TOKEN_SECRET", configKey1), "TOKEN_KEY_FILE", nil},
		{"no RSA key: discovery must list RS256", nil, f.env("TOKEN_KEY_FILE", writeKeyFile(t, testKeyPEMs().ec)), "TOKEN_KEY_FILE", []string{"RSA"}},
		{"RSA key under 2048 bits", nil, f.env("TOKEN_KEY_FILE", smallKey), "TOKEN_KEY_FILE", nil},
		{"mock mode, issuer given as a name", nil, f.env("WX_MOCK", "1", "TOKEN_ISSUER", "wxlogin", "TOKEN_KEY_FILE", ""), "TOKEN_ISSUER", nil},
		{"mock mode with a key file", nil, f.env("WX_MOCK", "1"), "TOKEN_KEY_FILE", []string{"mock mode"}},
		{"mock mode, port 0", nil, f.env("WX_MOCK", "1", "TOKEN_KEY_FILE", "", "TOKEN_ISSUER", "", "ADDR", "127.0.0.1:0"), "ADDR", nil},

		// The web apps.
		{"neither web app", nil, f.env("WX_WEB_APPID", "", "WX_WEB_SECRET", "", "WX_OA_APPID", "", "WX_OA_SECRET", ""), "OIDC_CLIENTS_FILE", []string{"WX_WEB_APPID", "WX_OA_APPID"}},
		{"website AppID malformed", nil, f.env("WX_WEB_APPID", "wxNOTANAPPID"), "WX_WEB_APPID", nil},
		{"official account AppID malformed", nil, f.env("WX_OA_APPID", "wx0123"), "WX_OA_APPID", nil},
		{"-web-appid malformed", []string{"-web-appid", "web"}, f.env(), "-web-appid", nil},
		{"-oa-appid malformed", []string{"-oa-appid", "WX778899AABBCCDDEE"}, f.env(), "-oa-appid", nil},
		{"website AppID without its secret", nil, f.env("WX_WEB_SECRET", ""), "WX_WEB_SECRET", []string{testWebAppID}},
		{"official account without its secret", nil, f.env("WX_OA_SECRET", ""), "WX_OA_SECRET", []string{testOAAppID}},
		{"website secret without AppID", nil, f.env("WX_WEB_APPID", ""), "WX_WEB_APPID", nil},
		{"official account secret file without AppID", nil, f.env("WX_OA_APPID", "", "WX_OA_SECRET", "", "WX_OA_SECRET_FILE", writeFile(t, leaked)), "WX_OA_APPID", nil},
		{"website secret twice", nil, f.env("WX_WEB_SECRET_FILE", writeFile(t, leaked)), "", []string{"WX_WEB_SECRET", "WX_WEB_SECRET_FILE"}},
		{"website secret file missing", nil, f.env("WX_WEB_SECRET", "", "WX_WEB_SECRET_FILE", "/nonexistent/web-secret"), "WX_WEB_SECRET_FILE", nil},
		{"-web-secret-file empty", []string{"-web-secret-file", writeFile(t, " \n")}, f.env("WX_WEB_SECRET", ""), "-web-secret-file", nil},
		{"-oa-secret-file missing", []string{"-oa-secret-file", "/nonexistent/oa"}, f.env("WX_OA_SECRET", ""), "-oa-secret-file", nil},
		{"official account's file missing in WX_SECRET_DIR", nil, f.env("WX_OA_SECRET", "", "WX_SECRET_DIR", dirWithoutOA), "WX_SECRET_DIR", []string{testOAAppID}},
		{"WX_SECRET_DIR not a directory", nil, f.env("WX_WEB_SECRET", "", "WX_SECRET_DIR", "/nonexistent/dir"), "WX_SECRET_DIR", nil},
		{"mini-program secret from two sources", nil, f.env("WX_SECRET_DIR", dirWithMini), "", []string{realAppID, "two secrets", "WX_SECRET_DIR"}},
		{"WX_OPEN_BASE_URL not http(s)", nil, f.env("WX_OPEN_BASE_URL", "ftp://open.example.com"), "WX_OPEN_BASE_URL", nil},
		{"WX_OPEN_BASE_URL with a password", nil, f.env("WX_OPEN_BASE_URL", "https://u:"+leaked+"@open.example.com"), "WX_OPEN_BASE_URL", nil},
		{"-wx-open-base-url with a query", []string{"-wx-open-base-url", "https://open.example.com/?a=1"}, f.env(), "-wx-open-base-url", nil},
		{"TOKEN_SUBJECT", nil, f.env("TOKEN_SUBJECT", "email"), "TOKEN_SUBJECT", []string{"openid", "unionid"}},
		{"-token-subject", []string{"-token-subject", "sub"}, f.env(), "-token-subject", nil},

		// The clients file.
		{"clients file missing", nil, f.env("OIDC_CLIENTS_FILE", "/nonexistent/clients.json"), "OIDC_CLIENTS_FILE", nil},
		{"-oidc-clients missing", []string{"-oidc-clients", "/nonexistent/clients.json"}, f.env("OIDC_CLIENTS_FILE", ""), "-oidc-clients", nil},
		{"clients file not JSON", nil, f.env("OIDC_CLIENTS_FILE", writeFile(t, "clients:\n  - id: "+leaked)), "OIDC_CLIENTS_FILE", nil},
		{"no client", nil, f.env("OIDC_CLIENTS_FILE", writeFile(t, `{"clients":[]}`)), "OIDC_CLIENTS_FILE", nil},
		{"no clients member", nil, f.env("OIDC_CLIENTS_FILE", writeFile(t, `{}`)), "OIDC_CLIENTS_FILE", nil},
		{"data after the object", nil, f.env("OIDC_CLIENTS_FILE", writeFile(t, `{"clients":[{"client_id":"a",`+redirect+`,"public":true}]} {}`)), "OIDC_CLIENTS_FILE", nil},
		{"duplicate client_id", nil, f.env("OIDC_CLIENTS_FILE", writeFile(t, `{"clients":[{"client_id":"a",`+redirect+`,"public":true},{"client_id":"a",`+redirect+`,"public":true}]}`)), "OIDC_CLIENTS_FILE", []string{`"a"`}},
		{"unknown member", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+redirect+`,"client_secret":"`+leaked+`"`)), "OIDC_CLIENTS_FILE", []string{"client_secret"}},
		{"member twice", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+redirect+`,"public":true,"public":false`)), "OIDC_CLIENTS_FILE", []string{"public"}},
		{"member in another case", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+redirect+`,"Public":true`)), "OIDC_CLIENTS_FILE", []string{"Public"}},
		{"member of the wrong type", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+redirect+`,"public":"`+leaked+`"`)), "OIDC_CLIENTS_FILE", []string{"public"}},
		{"SHA-256 of an empty secret", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+redirect+`,"secret_sha256":"`+sha256Hex("")+`"`)), "OIDC_CLIENTS_FILE", []string{"empty"}},
		{"unknown top-level member", nil, f.env("OIDC_CLIENTS_FILE", writeFile(t, `{"client":[]}`)), "OIDC_CLIENTS_FILE", nil},
		{"no client_id", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, redirect+`,"public":true`)), "OIDC_CLIENTS_FILE", nil},
		{"client_id with a space", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a b",`+redirect+`,"public":true`)), "OIDC_CLIENTS_FILE", nil},
		{"no redirect_uris", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+hash)), "OIDC_CLIENTS_FILE", []string{"redirect_uris"}},
		{"empty redirect_uris", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+hash+`,"redirect_uris":[]`)), "OIDC_CLIENTS_FILE", nil},
		{"redirect_uri http", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+hash+`,"redirect_uris":["http://shop.example.com/cb"]`)), "OIDC_CLIENTS_FILE", []string{"https"}},
		{"redirect_uri http, localhost lookalike", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+hash+`,"redirect_uris":["http://localhost.evil.example/cb"]`)), "OIDC_CLIENTS_FILE", nil},
		{"redirect_uri relative", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+hash+`,"redirect_uris":["/cb"]`)), "OIDC_CLIENTS_FILE", nil},
		{"redirect_uri not http at all", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+hash+`,"redirect_uris":["myapp://cb"]`)), "OIDC_CLIENTS_FILE", nil},
		{"redirect_uri with a fragment", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+hash+`,"redirect_uris":["https://a.example/cb#x"]`)), "OIDC_CLIENTS_FILE", []string{"fragment"}},
		{"redirect_uri with an empty fragment", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+hash+`,"redirect_uris":["https://a.example/cb#"]`)), "OIDC_CLIENTS_FILE", nil},
		{"redirect_uri with user info", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+hash+`,"redirect_uris":["https://u@a.example/cb"]`)), "OIDC_CLIENTS_FILE", nil},
		{"confidential without secret_sha256", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+redirect)), "OIDC_CLIENTS_FILE", []string{"secret_sha256"}},
		{"secret_sha256 short", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+redirect+`,"secret_sha256":"`+sha256Hex(shopSecret)[:62]+`"`)), "OIDC_CLIENTS_FILE", nil},
		{"secret_sha256 not hex", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+redirect+`,"secret_sha256":"`+strings.Repeat("g", 64)+`"`)), "OIDC_CLIENTS_FILE", nil},
		{"secret in clear as secret_sha256", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+redirect+`,"secret_sha256":"`+leaked+`"`)), "OIDC_CLIENTS_FILE", nil},
		{"public with secret_sha256", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+redirect+`,`+hash+`,"public":true`)), "OIDC_CLIENTS_FILE", nil},
		{"id_token_alg without a key", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+redirect+`,"public":true,"id_token_alg":"EdDSA"`)), "OIDC_CLIENTS_FILE", []string{"EdDSA"}},
		{"id_token_alg ES256, RSA key only", nil, f.env("TOKEN_KEY_FILE", rsaOnly), "OIDC_CLIENTS_FILE", []string{"ES256", esClient}},
		{"id_token_alg HS256", nil, f.env("TOKEN_SECRET", configKey1, "OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"a",`+redirect+`,"public":true,"id_token_alg":"HS256"`)), "OIDC_CLIENTS_FILE", nil},
		{"client_id is a mini-program AppID", nil, f.env("OIDC_CLIENTS_FILE", clientsWith(t, `"client_id":"`+realAppID+`",`+redirect+`,"public":true`)), "OIDC_CLIENTS_FILE", []string{realAppID}},
		{"client_id is a mock mini-program AppID", nil, map[string]string{"WX_MOCK": "1", "OIDC_CLIENTS_FILE": clientsWith(t, `"client_id":"wxmock",`+redirect+`,"public":true`)}, "OIDC_CLIENTS_FILE", nil},
	}
	secrets := []string{miniSecret, testWebSecret, testOASecret, shopSecret, esSecret, leaked, "dir-secret", string(testKeyPEMs().rsa1[40:80])}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadConfig(tt.args, envOf(tt.env), io.Discard)
			ce, ok := errors.AsType[*configError](err)
			if !ok {
				t.Fatalf("loadConfig(%s) = %v, want a *configError (exit 2)", tt.name, err)
			}
			if ce.setting != tt.setting {
				t.Errorf("loadConfig(%s) = %q, names %q, want %q", tt.name, err, ce.setting, tt.setting)
			}
			for _, s := range tt.also {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("loadConfig(%s) = %q, want it to say %q", tt.name, err, s)
				}
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("loadConfig(%s) = %q: it shows a secret", tt.name, err)
				}
			}
		})
	}
}

func TestWebConfigValues(t *testing.T) {
	t.Parallel()
	f := newWebConfigFiles(t)
	ks := webKeys(t)
	secretDir := kubeSecretDir(t, map[string]string{testWebAppID: testWebSecret + "\n", testOAAppID: "  " + testOASecret})
	tests := []struct {
		name string
		args []string
		env  map[string]string
		get  func(Config) any
		want any
	}{
		{"defaults", nil, f.env(), func(c Config) any {
			return []any{c.OpenBaseURL, c.UnionIDSubject, c.WebApp, c.OAApp, c.Apps, c.TokenIssuer, len(c.KeyFile), len(c.TokenKeys), c.Warnings}
		}, []any{"https://open.weixin.qq.com", false, wechat.App{ID: testWebAppID, Secret: testWebSecret}, wechat.App{ID: testOAAppID, Secret: testOASecret},
			[]wechat.App{{ID: realAppID, Secret: miniSecret}}, "https://login.example.com", 2, 2, []string(nil)}},
		{"clients", nil, f.env(), func(c Config) any {
			var out []string
			for _, cl := range c.Clients {
				out = append(out, cl.ID+" "+cl.IDTokenAlg+" "+strings.Join(cl.RedirectURIs, ","))
			}
			return out
		}, []string{shopClient + " RS256 " + shopRedirect + ",https://shop.example.com/other", esClient + " ES256 " + esRedirect, spaClient + " RS256 " + spaRedirect}},
		{"confidential clients keep only the hash", nil, f.env(), func(c Config) any {
			return []any{c.Clients[0].Public, len(c.Clients[0].SecretSHA256), c.Clients[2].Public, len(c.Clients[2].SecretSHA256)}
		}, []any{false, 32, true, 0}},
		{"TOKEN_SUBJECT=unionid", nil, f.env("TOKEN_SUBJECT", "unionid"), func(c Config) any { return c.UnionIDSubject }, true},
		{"TOKEN_SUBJECT=UnionID", nil, f.env("TOKEN_SUBJECT", "UnionID"), func(c Config) any { return c.UnionIDSubject }, true},
		{"-token-subject beats TOKEN_SUBJECT", []string{"-token-subject", "openid"}, f.env("TOKEN_SUBJECT", "unionid"), func(c Config) any { return c.UnionIDSubject }, false},
		{"TOKEN_SUBJECT without the web login", nil, with(realEnv, "TOKEN_SUBJECT", "unionid"), func(c Config) any { return c.UnionIDSubject }, true},
		{"WX_OPEN_BASE_URL", nil, f.env("WX_OPEN_BASE_URL", "https://open.example.com/wx/"), func(c Config) any { return c.OpenBaseURL }, "https://open.example.com/wx"},
		{"-wx-open-base-url", []string{"-wx-open-base-url", "http://127.0.0.1:9"}, f.env(), func(c Config) any { return c.OpenBaseURL }, "http://127.0.0.1:9"},
		{"issuer's trailing slash dropped", nil, f.env("TOKEN_ISSUER", "https://login.example.com/auth/"), func(c Config) any { return c.TokenIssuer }, "https://login.example.com/auth"},
		{"web secrets from WX_SECRET_DIR, the mini-program's from WX_SECRET", nil,
			f.env("WX_WEB_SECRET", "", "WX_OA_SECRET", "", "WX_SECRET_DIR", secretDir), func(c Config) any { return []any{c.Apps, c.WebApp, c.OAApp} },
			[]any{[]wechat.App{{ID: realAppID, Secret: miniSecret}}, wechat.App{ID: testWebAppID, Secret: testWebSecret}, wechat.App{ID: testOAAppID, Secret: testOASecret}}},
		{"web secrets from WX_SECRET_DIR, the mini-program's from WX_SECRET_FILE", nil,
			f.env("WX_SECRET", "", "WX_SECRET_FILE", writeFile(t, miniSecret+"\n"), "WX_WEB_SECRET", "", "WX_OA_SECRET", "", "WX_SECRET_DIR", secretDir),
			func(c Config) any { return []any{c.Apps, c.WebApp.Secret, c.OAApp.Secret} },
			[]any{[]wechat.App{{ID: realAppID, Secret: miniSecret}}, testWebSecret, testOASecret}},
		{"web secret files", []string{"-web-secret-file", writeFile(t, " web-from-flag\n")}, f.env("WX_WEB_SECRET", "", "WX_OA_SECRET", "", "WX_OA_SECRET_FILE", writeFile(t, "oa-from-file")),
			func(c Config) any { return []string{c.WebApp.Secret, c.OAApp.Secret} }, []string{"web-from-flag", "oa-from-file"}},
		{"a variable's secret beats WX_SECRET_DIR", nil, f.env("WX_SECRET_DIR", secretDir, "WX_WEB_SECRET", "web-direct"), func(c Config) any { return c.WebApp.Secret }, "web-direct"},
		{"web only", nil, f.env("WX_APPID", "", "WX_SECRET", ""), func(c Config) any { return []any{len(c.Apps), c.WebApp.ID, len(c.Clients)} }, []any{0, testWebAppID, 3}},
		{"website app only", nil, f.env("WX_OA_APPID", "", "WX_OA_SECRET", ""), func(c Config) any { return []string{c.WebApp.ID, c.OAApp.ID} }, []string{testWebAppID, ""}},
		{"official account only", nil, f.env("WX_WEB_APPID", "", "WX_WEB_SECRET", ""), func(c Config) any { return []string{c.WebApp.ID, c.OAApp.ID} }, []string{"", testOAAppID}},
		{"flags", []string{"-oidc-clients", f.clients, "-web-appid", testWebAppID, "-oa-appid", testOAAppID}, f.env("OIDC_CLIENTS_FILE", "", "WX_WEB_APPID", "", "WX_OA_APPID", ""),
			func(c Config) any { return []any{len(c.Clients), c.WebApp.ID, c.OAApp.ID} }, []any{3, testWebAppID, testOAAppID}},
		{"http redirect_uris on the local machine", nil, f.env("OIDC_CLIENTS_FILE", writeFile(t, `{"clients":[{"client_id":"dev","public":true,"redirect_uris":["http://localhost:3000/cb","http://127.0.0.1/cb","http://[::1]:8080/cb"]}]}`)),
			func(c Config) any { return c.Clients[0].RedirectURIs }, []string{"http://localhost:3000/cb", "http://127.0.0.1/cb", "http://[::1]:8080/cb"}},
		{"the key file's keys sign, then TOKEN_SECRET's", nil, f.env("TOKEN_SECRET", configKey1), func(c Config) any {
			return []string{c.TokenKeys[0].Alg(), c.TokenKeys[1].Alg(), c.TokenKeys[2].Alg()}
		}, []string{"RS256", "ES256", "HS256"}},
		{"id_token_alg defaults to RS256 with an RSA key after others", nil,
			f.env("TOKEN_KEY_FILE", writeKeyFile(t, append(slices.Clone(testKeyPEMs().ec), testKeyPEMs().rsa1...))),
			func(c Config) any { return []string{c.Clients[0].IDTokenAlg, c.Clients[2].IDTokenAlg} }, []string{"RS256", "RS256"}},
		{"PKCS#1 RSA key", nil, f.env("TOKEN_KEY_FILE", writeKeyFile(t, pkcs1(t, testKeyPEMs().rsa2)), "OIDC_CLIENTS_FILE", writeFile(t, `{"clients":[{"client_id":"a","public":true,"redirect_uris":["https://a.example/cb"]}]}`)),
			func(c Config) any { return []string{c.KeyFile[0].Alg(), c.KeyFile[0].ID()} }, []string{"RS256", ks.rsa2.ID()}},
		{"web apps without the web login warn", nil, with(realEnv, "WX_WEB_APPID", testWebAppID), func(c Config) any {
			return []any{c.WebApp.ID, len(c.Clients), strings.Contains(strings.Join(c.Warnings, "|"), "OIDC_CLIENTS_FILE")}
		}, []any{"", 0, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(tt.args, envOf(tt.env), io.Discard)
			if err != nil {
				t.Fatalf("loadConfig(%s) = %v", tt.name, err)
			}
			if got := tt.get(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("loadConfig(%s) = %#v, want %#v", tt.name, got, tt.want)
			}
		})
	}
}

// pkcs1 re-encodes a PKCS#8 RSA key as PKCS#1 (RSA PRIVATE KEY).
func pkcs1(t *testing.T, pkcs8 []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(pkcs8)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey))})
}

func TestWebConfigMock(t *testing.T) {
	t.Parallel()
	clients := writeFile(t, `{"clients":[{"client_id":"`+shopClient+`","secret_sha256":"`+sha256Hex(shopSecret)+`","redirect_uris":["`+shopRedirect+`"]}]}`)
	tests := []struct {
		name        string
		env         map[string]string
		issuer      string
		madeKey     bool
		webID, oaID string
	}{
		{"defaults", map[string]string{"WX_MOCK": "1", "OIDC_CLIENTS_FILE": clients, "ADDR": "127.0.0.1:4321"}, "http://localhost:4321", true, "wxmock-web", "wxmock-oa"},
		{"PORT", map[string]string{"WX_MOCK": "1", "OIDC_CLIENTS_FILE": clients, "PORT": "5555"}, "http://localhost:5555", true, "wxmock-web", "wxmock-oa"},
		{"default port", map[string]string{"WX_MOCK": "1", "OIDC_CLIENTS_FILE": clients}, "http://localhost:2020", true, "wxmock-web", "wxmock-oa"},
		{"issuer given", map[string]string{"WX_MOCK": "1", "OIDC_CLIENTS_FILE": clients, "TOKEN_ISSUER": "https://login.test"}, "https://login.test", true, "wxmock-web", "wxmock-oa"},
		{"AppIDs given", map[string]string{"WX_MOCK": "1", "OIDC_CLIENTS_FILE": clients, "WX_WEB_APPID": "my-web", "WX_OA_APPID": "my_oa"}, "http://localhost:2020", true, "my-web", "my_oa"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(nil, envOf(tt.env), io.Discard)
			if err != nil {
				t.Fatalf("loadConfig(%s) = %v", tt.name, err)
			}
			if c.TokenIssuer != tt.issuer {
				t.Errorf("TokenIssuer = %q, want %q", c.TokenIssuer, tt.issuer)
			}
			if want := (wechat.App{ID: tt.webID, Secret: wechat.MockSecret}); c.WebApp != want {
				t.Errorf("WebApp = %+v, want %+v", c.WebApp, want)
			}
			if want := (wechat.App{ID: tt.oaID, Secret: wechat.MockSecret}); c.OAApp != want {
				t.Errorf("OAApp = %+v, want %+v", c.OAApp, want)
			}
			if len(c.KeyFile) != 2 || c.KeyFile[0].Alg() != token.RS256 || c.KeyFile[1].Alg() != token.ES256 ||
				len(c.TokenKeys) != 2 || c.TokenKeys[0] != c.KeyFile[0] || c.MockKey {
				t.Fatalf("keys: %d in the key file, %d token keys, MockKey %v; want an RSA key that signs and an ES256 key", len(c.KeyFile), len(c.TokenKeys), c.MockKey)
			}
			warned := strings.Contains(strings.Join(c.Warnings, "|"), "keys made at start")
			if warned != tt.madeKey {
				t.Errorf("warned of a key made at start: %v, want %v (%q)", warned, tt.madeKey, c.Warnings)
			}
			if len(c.Apps) != 1 || c.Apps[0].ID != mockAppID || len(c.Clients) != 1 {
				t.Errorf("Apps = %+v, Clients = %d; want the mock mini-program and the one client", c.Apps, len(c.Clients))
			}
		})
	}
	// Two starts make two keys.
	env := envOf(tests[0].env)
	c1, err1 := loadConfig(nil, env, io.Discard)
	c2, err2 := loadConfig(nil, env, io.Discard)
	if err1 != nil || err2 != nil || c1.KeyFile[0].ID() == c2.KeyFile[0].ID() {
		t.Errorf("two mock starts: %v, %v; want two different RSA keys", err1, err2)
	}
}

func TestGenKeyAlg(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{token.RS256, token.EdDSA, token.ES256} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			var out, errs bytes.Buffer
			if err := run(context.Background(), []string{"wxlogin", "-genkey", "-alg", alg}, envOf(nil), &out, &errs); err != nil {
				t.Fatalf("-genkey -alg %s: %v", alg, err)
			}
			keys, err := token.ParseKeys(out.Bytes())
			if err != nil || len(keys) != 1 || keys[0].Alg() != alg {
				t.Fatalf("-genkey -alg %s printed %d keys (%v), want one %s key", alg, len(keys), err, alg)
			}
			block, rest := pem.Decode(out.Bytes())
			if block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 || errs.Len() != 0 {
				t.Errorf("-genkey -alg %s: %s block, %d bytes after it, stderr %q; want one PKCS#8 block", alg, block.Type, len(rest), errs.String())
			}
			if alg == token.RS256 {
				k, _ := x509.ParsePKCS8PrivateKey(block.Bytes)
				if rk, ok := k.(*rsa.PrivateKey); !ok || rk.N.BitLen() != 2048 {
					t.Errorf("-genkey -alg RS256 key = %T, want RSA 2048", k)
				}
			}
		})
	}
	t.Run("-alg without -genkey", func(t *testing.T) {
		t.Parallel()
		for _, alg := range []string{token.RS256, token.EdDSA, token.ES256} { // ES256, the default, named too
			err := run(context.Background(), []string{"wxlogin", "-alg", alg}, envOf(realEnv), io.Discard, io.Discard)
			if ce, ok := errors.AsType[*configError](err); !ok || ce.setting != "-alg" {
				t.Errorf("run(-alg %s) = %v, want a *configError naming -alg (exit 2)", alg, err)
			}
		}
	})
	t.Run("unknown -alg", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		err := run(context.Background(), []string{"wxlogin", "-genkey", "-alg", "HS256"}, envOf(nil), &out, io.Discard)
		if ce, ok := errors.AsType[*configError](err); !ok || ce.setting != "-alg" || !strings.Contains(err.Error(), "HS256") || out.Len() != 0 {
			t.Errorf("run(-genkey -alg HS256) = %v, printed %d bytes; want a *configError naming -alg and HS256 (exit 2), and no key", err, out.Len())
		}
	})
}
