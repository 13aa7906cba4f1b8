package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// envOf turns a map into a getenv.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeFile writes content to a new file in a temporary directory and
// returns its path.
func writeFile(t testing.TB, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const realAppID = "wx1234567890abcdef"

// realEnv is the least a real (not mock) instance needs.
var realEnv = map[string]string{"WX_APPID": realAppID, "WX_SECRET": "sekret"}

// with is a copy of base with the pairs kv set.
func with(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// Two HMAC keys that HMACKey accepts.
const (
	configKey1 = "9f2c41d07be85a36c1e0f4b7d2a93e58"
	configKey2 = "Zq7Lm2Xv9Rt4Kw8Ny3Pb6Hs1Jd5Fg0Ac"
)

// sameKey reports whether a token signed with a verifies with b alone.
func sameKey(a, b *token.Key) bool {
	if a == nil || b == nil || a.Alg() != b.Alg() || a.ID() != b.ID() {
		return false
	}
	opts := func(k *token.Key) token.Options {
		return token.Options{Keys: []*token.Key{k}, TTL: time.Hour, Issuer: "sameKey", CacheSize: -1}
	}
	tok, err := token.New(opts(a)).Sign(token.Claims{Subject: "s", Audience: token.Audience{"a"}})
	if err != nil {
		return false
	}
	_, err = token.New(opts(b)).Verify(tok)
	return err == nil
}

// keyNames names each key by the entry of known it is, or "?" and its
// algorithm.
func keyNames(keys []*token.Key, known map[string]*token.Key) []string {
	names := []string{}
	for _, k := range keys {
		name := "?" + k.Alg()
		for n, want := range known {
			if sameKey(k, want) {
				name = n
			}
		}
		names = append(names, name)
	}
	return names
}

// mustHMAC is the HS256 key of secret.
func mustHMAC(t testing.TB, secret string) *token.Key {
	t.Helper()
	k, err := token.HMACKey([]byte(secret))
	if err != nil {
		t.Fatalf("HMACKey: %v", err)
	}
	return k
}

// parsedKeys reads a PEM key file's keys as loadConfig does.
func parsedKeys(t testing.TB, pemBytes []byte) []*token.Key {
	t.Helper()
	keys, err := token.ParseKeys(pemBytes)
	if err != nil {
		t.Fatalf("ParseKeys: %v", err)
	}
	return keys
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(nil, envOf(realEnv), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"Apps", c.Apps, []wechat.App{{ID: realAppID, Secret: "sekret"}}},
		{"Addr", c.Addr, ":2020"},
		{"BaseURL", c.BaseURL, "https://api.weixin.qq.com"},
		{"Timeout", c.Timeout, 5 * time.Second},
		{"MaxInflight", c.MaxInflight, 512},
		{"Mock", c.Mock, false},
		{"MockKey", c.MockKey, false},
		{"TokenTTL", c.TokenTTL, 2 * time.Hour},
		{"TokenKeys", len(c.TokenKeys), 0},
		{"KeyFile", len(c.KeyFile), 0},
		{"TokenIssuer", c.TokenIssuer, "wxlogin"},
		{"PhoneLimit", c.PhoneLimit, rate{10, time.Hour}},
		{"RateLimit", c.RateLimit, rate{}},
		{"TrustedProxies", len(c.TrustedProxies), 0},
		{"DrainDelay", c.DrainDelay, time.Duration(0)},
		{"TLS", []any{c.TLSCert, c.TLSKey, c.TLSCertificate == nil}, []any{"", "", true}},
		{"ShutdownTimeout", c.ShutdownTimeout, 10 * time.Second},
		{"LogFormat", c.LogFormat, "json"},
		{"LogLevel", c.LogLevel, slog.LevelInfo},
		{"actions", []bool{c.Healthcheck, c.Version, c.GenKey}, []bool{false, false, false}},
	} {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("loadConfig(realEnv).%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	// Tokens off outside mock mode: one warning naming both ways to turn them on.
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "TOKEN_SECRET") || !strings.Contains(c.Warnings[0], "TOKEN_KEY_FILE") {
		t.Errorf("loadConfig(realEnv).Warnings = %q, want one about tokens being off", c.Warnings)
	}
}

func TestConfigValues(t *testing.T) {
	t.Parallel()
	certFile, keyFile := writeCert(t, t.TempDir(), 1)
	ecPEM := pemOf(t, false, newP256(t), newEd25519(t))
	fileKeys := parsedKeys(t, ecPEM)
	tokenKeyFile := writeKeyFile(t, ecPEM)
	known := map[string]*token.Key{
		"key1": mustHMAC(t, configKey1), "key2": mustHMAC(t, configKey2), "dev": token.MockKey(),
		"file1": fileKeys[0], "file2": fileKeys[1],
	}
	names := func(keys []*token.Key) any { return keyNames(keys, known) }
	tests := []struct {
		name string
		args []string
		env  map[string]string
		get  func(Config) any
		want any
	}{
		{"PORT", nil, with(realEnv, "PORT", "8080"), func(c Config) any { return c.Addr }, ":8080"},
		{"ADDR beats PORT", nil, with(realEnv, "PORT", "8080", "ADDR", "127.0.0.1:9"), func(c Config) any { return c.Addr }, "127.0.0.1:9"},
		{"flag beats ADDR", []string{"-addr", ":7"}, with(realEnv, "ADDR", ":9"), func(c Config) any { return c.Addr }, ":7"},
		{"flag beats WX_APPID", []string{"-appid", "wxffffffffffffffff"}, realEnv, func(c Config) any { return c.Apps }, []wechat.App{{ID: "wxffffffffffffffff", Secret: "sekret"}}},
		{"secret file trimmed", nil, map[string]string{"WX_APPID": realAppID, "WX_SECRET_FILE": writeFile(t, "  s3cr3t \n")}, func(c Config) any { return c.Apps }, []wechat.App{{ID: realAppID, Secret: "s3cr3t"}}},
		{"-secret-file", []string{"-secret-file", writeFile(t, "fromfile\n")}, map[string]string{"WX_APPID": realAppID}, func(c Config) any { return c.Apps }, []wechat.App{{ID: realAppID, Secret: "fromfile"}}},
		{"base URL trailing slash", nil, with(realEnv, "WX_API_BASE_URL", "https://gw.example/wx/"), func(c Config) any { return c.BaseURL }, "https://gw.example/wx"},
		{"http base URL warns", nil, with(realEnv, "WX_API_BASE_URL", "http://gw:8080"), func(c Config) any {
			return []any{c.BaseURL, strings.Contains(strings.Join(c.Warnings, "|"), "plain http")}
		}, []any{"http://gw:8080", true}},
		{"durations", []string{"-wx-timeout", "1500ms"}, with(realEnv, "WX_TIMEOUT", "9s", "TOKEN_TTL", "1s", "SHUTDOWN_TIMEOUT", "0s"), func(c Config) any {
			return []time.Duration{c.Timeout, c.TokenTTL, c.ShutdownTimeout}
		}, []time.Duration{1500 * time.Millisecond, time.Second, 0}},
		{"max inflight", nil, with(realEnv, "MAX_INFLIGHT", "3"), func(c Config) any { return c.MaxInflight }, 3},
		{"mock needs nothing", nil, map[string]string{"WX_MOCK": "yes"}, func(c Config) any {
			return []any{c.Mock, c.Apps, c.BaseURL, c.MockKey, names(c.TokenKeys), len(c.KeyFile)}
		}, []any{true, []wechat.App{{ID: "wxmock", Secret: wechat.MockSecret}}, "", true, []string{"dev"}, 0}},
		{"-mock", []string{"-mock"}, nil, func(c Config) any { return c.Mock }, true},
		{"-mock=false beats WX_MOCK", []string{"-mock=false"}, with(realEnv, "WX_MOCK", "1"), func(c Config) any { return []any{c.Mock, c.BaseURL} }, []any{false, wechat.DefaultBaseURL}},
		{"WX_MOCK=TRUE", nil, map[string]string{"WX_MOCK": "TRUE"}, func(c Config) any { return c.Mock }, true},
		{"WX_MOCK=0", nil, with(realEnv, "WX_MOCK", "0"), func(c Config) any { return c.Mock }, false},
		{"mock keeps its AppID", nil, map[string]string{"WX_MOCK": "1", "WX_APPID": "wxmine"}, func(c Config) any { return c.Apps }, []wechat.App{{ID: "wxmine", Secret: wechat.MockSecret}}},
		{"mock ignores secret and base URL", nil, map[string]string{"WX_MOCK": "1", "WX_SECRET": "s", "WX_API_BASE_URL": "not a url"}, func(c Config) any {
			return []any{c.Apps[0].Secret, c.BaseURL, len(c.Warnings)}
		}, []any{wechat.MockSecret, "", 2}},
		{"mock with TOKEN_SECRET signs with it", nil, map[string]string{"WX_MOCK": "1", "TOKEN_SECRET": configKey1}, func(c Config) any {
			return []any{c.MockKey, names(c.TokenKeys)}
		}, []any{false, []string{"key1"}}},
		{"mock with TOKEN_KEY_FILE signs with it", nil, map[string]string{"WX_MOCK": "1", "TOKEN_KEY_FILE": tokenKeyFile}, func(c Config) any {
			return []any{c.MockKey, names(c.TokenKeys), names(c.KeyFile)}
		}, []any{false, []string{"file1", "file2"}, []string{"file1", "file2"}}},
		{"token keys trimmed, in order", nil, with(realEnv, "TOKEN_SECRET", " "+configKey1+" , "+configKey2), func(c Config) any {
			return []any{names(c.TokenKeys), len(c.KeyFile), len(c.Warnings)}
		}, []any{[]string{"key1", "key2"}, 0, 0}},
		{"TOKEN_SECRET_FILE", nil, with(realEnv, "TOKEN_SECRET_FILE", writeFile(t, configKey2+"\n")), func(c Config) any { return names(c.TokenKeys) }, []string{"key2"}},
		{"TOKEN_KEY_FILE", nil, with(realEnv, "TOKEN_KEY_FILE", tokenKeyFile), func(c Config) any {
			return []any{names(c.TokenKeys), names(c.KeyFile)}
		}, []any{[]string{"file1", "file2"}, []string{"file1", "file2"}}},
		{"key file first, then TOKEN_SECRET", nil, with(realEnv, "TOKEN_SECRET", configKey2+","+configKey1, "TOKEN_KEY_FILE", tokenKeyFile), func(c Config) any {
			return []any{names(c.TokenKeys), names(c.KeyFile)}
		}, []any{[]string{"file1", "file2", "key2", "key1"}, []string{"file1", "file2"}}},
		{"-token-key-file", []string{"-token-key-file", tokenKeyFile}, realEnv, func(c Config) any { return names(c.KeyFile) }, []string{"file1", "file2"}},
		{"text logs at debug", nil, with(realEnv, "LOG_FORMAT", "TEXT", "LOG_LEVEL", "Debug"), func(c Config) any {
			return []any{c.LogFormat, c.LogLevel}
		}, []any{"text", slog.LevelDebug}},
		{"LOG_LEVEL warning", nil, with(realEnv, "LOG_LEVEL", "warning"), func(c Config) any { return c.LogLevel }, slog.LevelWarn},
		{"TLS pair", nil, with(realEnv, "TLS_CERT_FILE", certFile, "TLS_KEY_FILE", keyFile), func(c Config) any {
			return []any{c.TLSCert, c.TLSKey, c.TLSCertificate != nil}
		}, []any{certFile, keyFile, true}},
		{"-healthcheck", []string{"-healthcheck"}, realEnv, func(c Config) any { return c.Healthcheck }, true},
		{"-version needs nothing else", []string{"-version"}, map[string]string{"WX_TIMEOUT": "junk"}, func(c Config) any { return c.Version }, true},
		{"-genkey needs nothing else", []string{"-genkey"}, nil, func(c Config) any { return c.GenKey }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(tt.args, envOf(tt.env), io.Discard)
			if err != nil {
				t.Fatalf("loadConfig(%q, %v) = %v", tt.args, tt.env, err)
			}
			if got := tt.get(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("loadConfig(%q, %v) gives %v, want %v", tt.args, tt.env, got, tt.want)
			}
		})
	}
}

// TestConfigErrors checks that every bad setting stops startup (exit 2)
// with one line that names the variable, or the flag when the value came
// from one, and never shows a secret.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	short := "ShortKeyValue-31-bytes-long-xyz"
	repeated := strings.Repeat("k", 32)
	p384 := mustP384(t)
	// Values that must never appear in an error.
	secrets := []string{"sekret", short, repeated, token.DevelopmentKey, configKey1, configKey2}
	tests := []struct {
		args []string
		env  map[string]string
		want string // what the error must start with
	}{
		{nil, map[string]string{"WX_SECRET": "sekret"}, "WX_APPID: required"},
		{nil, map[string]string{"WX_APPID": realAppID}, "WX_SECRET: required"},
		{nil, map[string]string{"WX_APPID": realAppID, "WX_SECRET_FILE": "/nonexistent/secret"}, "WX_SECRET_FILE: "},
		{[]string{"-secret-file", "/nonexistent/secret"}, map[string]string{"WX_APPID": realAppID}, "-secret-file: "},
		{nil, map[string]string{"WX_APPID": realAppID, "WX_SECRET_FILE": writeFile(t, " \n\t")}, "WX_SECRET_FILE: "},
		{nil, with(realEnv, "WX_SECRET_FILE", writeFile(t, "x")), "WX_SECRET and WX_SECRET_FILE are both set"},
		{nil, with(realEnv, "WX_APPID", "wx0123"), `WX_APPID: "wx0123" is not an AppID`},
		{nil, with(realEnv, "WX_API_BASE_URL", "api.weixin.qq.com"), "WX_API_BASE_URL: "},
		{nil, with(realEnv, "WX_API_BASE_URL", "ftp://x"), "WX_API_BASE_URL: "},
		{nil, with(realEnv, "WX_API_BASE_URL", "https://"), "WX_API_BASE_URL: "},
		{nil, with(realEnv, "WX_API_BASE_URL", "https://x/?a=b"), "WX_API_BASE_URL: "},
		{[]string{"-wx-base-url", "/relative"}, realEnv, "-wx-base-url: "},
		{nil, with(realEnv, "WX_TIMEOUT", "5"), "WX_TIMEOUT: "},
		{nil, with(realEnv, "WX_TIMEOUT", "0s"), "WX_TIMEOUT: "},
		{nil, with(realEnv, "WX_TIMEOUT", "-1s"), "WX_TIMEOUT: "},
		{[]string{"-wx-timeout", "soon"}, realEnv, "-wx-timeout: "},
		{nil, with(realEnv, "TOKEN_TTL", "0"), "TOKEN_TTL: "},
		{nil, with(realEnv, "TOKEN_TTL", "500ms"), "TOKEN_TTL: "},
		{nil, with(realEnv, "SHUTDOWN_TIMEOUT", "-1s"), "SHUTDOWN_TIMEOUT: "},
		{nil, with(realEnv, "MAX_INFLIGHT", "0"), "MAX_INFLIGHT: "},
		{nil, with(realEnv, "MAX_INFLIGHT", "many"), "MAX_INFLIGHT: "},
		{[]string{"-max-inflight", "-3"}, realEnv, "-max-inflight: "},
		{nil, with(realEnv, "PORT", "http"), "PORT: "},
		{nil, with(realEnv, "PORT", "70000"), "PORT: "},
		{nil, with(realEnv, "ADDR", "2020"), "ADDR: "},
		{nil, with(realEnv, "ADDR", ":http-alt"), "ADDR: "},
		{nil, with(realEnv, "WX_MOCK", "on"), "WX_MOCK: "},
		{nil, with(realEnv, "TOKEN_SECRET", short), "TOKEN_SECRET: key 1 "},
		{nil, with(realEnv, "TOKEN_SECRET", configKey1+","), "TOKEN_SECRET: key 2 "},
		{nil, with(realEnv, "TOKEN_SECRET", configKey1+","+short), "TOKEN_SECRET: key 2 "},
		// Keys anyone knows: the public development key, one byte repeated.
		{nil, with(realEnv, "TOKEN_SECRET", token.DevelopmentKey), "TOKEN_SECRET: key 1 "},
		{nil, with(realEnv, "TOKEN_SECRET", repeated), "TOKEN_SECRET: key 1 "},
		{nil, with(realEnv, "TOKEN_SECRET", configKey1+", "+token.DevelopmentKey), "TOKEN_SECRET: key 2 "},
		{nil, map[string]string{"WX_MOCK": "1", "TOKEN_SECRET": token.DevelopmentKey}, "TOKEN_SECRET: key 1 "},
		{nil, with(realEnv, "TOKEN_SECRET_FILE", writeFile(t, token.DevelopmentKey+"\n")), "TOKEN_SECRET_FILE: key 1 "},
		{[]string{"-token-secret-file", writeFile(t, repeated)}, realEnv, "-token-secret-file: key 1 "},
		{nil, with(realEnv, "TOKEN_SECRET_FILE", writeFile(t, short)), "TOKEN_SECRET_FILE: key 1 "},
		{nil, with(realEnv, "TOKEN_SECRET", configKey1, "TOKEN_SECRET_FILE", writeFile(t, configKey2)), "TOKEN_SECRET and TOKEN_SECRET_FILE are both set"},
		{nil, with(realEnv, "TOKEN_SECRET_FILE", "/nonexistent"), "TOKEN_SECRET_FILE: "},
		{nil, with(realEnv, "TOKEN_KEY_FILE", "/nonexistent/key.pem"), "TOKEN_KEY_FILE: "},
		{nil, with(realEnv, "TOKEN_KEY_FILE", writeKeyFile(t, nil)), "TOKEN_KEY_FILE: "},
		{nil, with(realEnv, "TOKEN_KEY_FILE", writeKeyFile(t, pemOf(t, false, p384))), "TOKEN_KEY_FILE: "},
		{[]string{"-token-key-file", writeKeyFile(t, selfSigned(t, newP256(t)))}, realEnv, "-token-key-file: "},
		{nil, with(realEnv, "TOKEN_ISSUER", "ftp://x"), "TOKEN_ISSUER: "},
		{nil, with(realEnv, "TLS_CERT_FILE", "c.pem"), "TLS_KEY_FILE: required when TLS_CERT_FILE"},
		{[]string{"-tls-key", "k.pem"}, realEnv, "TLS_CERT_FILE: required when -tls-key"},
		{nil, with(realEnv, "LOG_FORMAT", "xml"), "LOG_FORMAT: "},
		{nil, with(realEnv, "LOG_LEVEL", "verbose"), "LOG_LEVEL: "},
		{[]string{"-log-level", "loud"}, realEnv, "-log-level: "},
		{[]string{"-no-such-flag"}, realEnv, "flag provided but not defined: -no-such-flag"},
		{[]string{"-mock=maybe"}, nil, "invalid boolean value"},
		{[]string{"extra"}, realEnv, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.want, ": "), func(t *testing.T) {
			t.Parallel()
			_, err := loadConfig(tt.args, envOf(tt.env), io.Discard)
			if _, ok := errors.AsType[*configError](err); !ok {
				t.Fatalf("loadConfig(%q, %v) = %v, want a *configError (exit 2)", tt.args, tt.env, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("loadConfig(%q, %v) = %q, want one line starting %q", tt.args, tt.env, msg, tt.want)
			}
			for _, s := range secrets {
				if strings.Contains(msg, s) {
					t.Errorf("loadConfig(%q, …) = %q: it shows a secret", tt.args, msg)
				}
			}
		})
	}
}

// TestConfigErrorsHideURLCredentials: a URL setting refused for its user
// info (or for not parsing) is named, but its password is not shown.
func TestConfigErrorsHideURLCredentials(t *testing.T) {
	t.Parallel()
	const password = "PassW0rdInURL"
	for _, tt := range []struct{ env, value string }{
		{"WX_API_BASE_URL", "https://user:" + password + "@gw.example/"},
		{"WX_API_BASE_URL", "https://user:" + password + "@gw.example/%zz"},
		{"TOKEN_ISSUER", "https://user:" + password + "@login.example"},
	} {
		_, err := loadConfig(nil, envOf(with(realEnv, tt.env, tt.value)), io.Discard)
		if _, ok := errors.AsType[*configError](err); !ok || !strings.HasPrefix(err.Error(), tt.env+": ") {
			t.Errorf("loadConfig(%s with user info) = %v, want exit 2 naming %s", tt.env, err, tt.env)
		}
		if err != nil && strings.Contains(err.Error(), password) {
			t.Errorf("loadConfig(%s with user info) = %q: it shows the password", tt.env, err)
		}
	}
}

// TestLimitSettings covers the settings of SPEC §11.
func TestLimitSettings(t *testing.T) {
	t.Parallel()
	good := []struct {
		env  map[string]string
		get  func(Config) any
		want any
	}{
		{with(realEnv, "RATE_LIMIT", "600/1m"), func(c Config) any { return c.RateLimit }, rate{600, time.Minute}},
		{with(realEnv, "RATE_LIMIT", "off"), func(c Config) any { return c.RateLimit }, rate{}},
		{with(realEnv, "PHONE_LIMIT", "0"), func(c Config) any { return c.PhoneLimit }, rate{}},
		{with(realEnv, "PHONE_LIMIT", "3/24h"), func(c Config) any { return c.PhoneLimit }, rate{3, 24 * time.Hour}},
		{with(realEnv, "TRUSTED_PROXIES", "10.0.0.0/8, 192.168.0.1,::1, fd00::/8, ::ffff:10.1.2.3"), func(c Config) any { return c.TrustedProxies },
			[]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.0.1/32"), netip.MustParsePrefix("::1/128"),
				netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("10.1.2.3/32")}},
		{with(realEnv, "TRUSTED_PROXIES", "10.1.2.3/8"), func(c Config) any { return c.TrustedProxies }, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{with(realEnv, "DRAIN_DELAY", "5s"), func(c Config) any { return c.DrainDelay }, 5 * time.Second},
	}
	for _, tt := range good {
		c, err := loadConfig(nil, envOf(tt.env), io.Discard)
		if err != nil {
			t.Errorf("loadConfig(%v) = %v", tt.env, err)
			continue
		}
		if got := tt.get(c); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("loadConfig(%v) gives %v, want %v", tt.env, got, tt.want)
		}
	}
	for _, kv := range [][2]string{
		{"RATE_LIMIT", "0/1m"}, {"RATE_LIMIT", "10"}, {"RATE_LIMIT", "x/1m"}, {"RATE_LIMIT", "10/0s"}, {"RATE_LIMIT", "-1/1m"},
		{"PHONE_LIMIT", "10/soon"}, {"PHONE_LIMIT", "1.5/1h"},
		{"TRUSTED_PROXIES", "300.1.1.1/8"}, {"TRUSTED_PROXIES", "abc"}, {"TRUSTED_PROXIES", "10.0.0.0/33"},
		{"DRAIN_DELAY", "-1s"}, {"DRAIN_DELAY", "5"},
	} {
		_, err := loadConfig(nil, envOf(with(realEnv, kv[0], kv[1])), io.Discard)
		if _, ok := errors.AsType[*configError](err); !ok || !strings.HasPrefix(err.Error(), kv[0]+": ") {
			t.Errorf("loadConfig(%s=%q) = %v, want exit 2 naming %s", kv[0], kv[1], err, kv[0])
		}
	}
	if _, err := loadConfig([]string{"-rate-limit", "10"}, envOf(realEnv), io.Discard); err == nil || !strings.HasPrefix(err.Error(), "-rate-limit: ") {
		t.Errorf("loadConfig(-rate-limit 10) = %v, want an error naming the flag", err)
	}
}

// TestBothSetMessage: "X and Y are both set", not a garbled sentence.
func TestBothSetMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, with(realEnv, "TOKEN_SECRET", configKey1, "TOKEN_SECRET_FILE", writeFile(t, configKey1)),
			"TOKEN_SECRET and TOKEN_SECRET_FILE are both set: give only one"},
		{[]string{"-token-secret-file", writeFile(t, configKey1)}, with(realEnv, "TOKEN_SECRET", configKey1),
			"TOKEN_SECRET and -token-secret-file are both set: give only one"},
		{nil, with(realEnv, "WX_SECRET_FILE", writeFile(t, "x")),
			"WX_SECRET and WX_SECRET_FILE are both set: give only one"},
	}
	for _, tt := range tests {
		_, err := loadConfig(tt.args, envOf(tt.env), io.Discard)
		if err == nil || err.Error() != tt.want {
			t.Errorf("loadConfig(%q, …) = %v, want %q", tt.args, err, tt.want)
		}
	}
}

// TestHealthcheckEnvironment: -healthcheck reads only the address and TLS
// settings, and never exits 2 whatever else the environment holds.
func TestHealthcheckEnvironment(t *testing.T) {
	t.Parallel()
	c, err := loadConfig([]string{"-healthcheck"}, envOf(map[string]string{"ADDR": ":8080"}), io.Discard)
	if err != nil || c.Addr != ":8080" {
		t.Errorf("loadConfig(-healthcheck, ADDR only) = %q, %v; want :8080", c.Addr, err)
	}
	junk := map[string]string{"PORT": "9000", "WX_TIMEOUT": "nonsense", "WX_APPID": "bad", "TOKEN_SECRET": "short", "TOKEN_KEY_FILE": "/nonexistent"}
	c, err = loadConfig([]string{"-healthcheck"}, envOf(junk), io.Discard)
	if err != nil || c.Addr != ":9000" {
		t.Errorf("loadConfig(-healthcheck, PORT and junk elsewhere) = %q, %v; want :9000", c.Addr, err)
	}
	for _, env := range []map[string]string{
		{"ADDR": "nonsense"},
		{"TLS_CERT_FILE": "c.pem"},
	} {
		_, err = loadConfig([]string{"-healthcheck"}, envOf(env), io.Discard)
		if err == nil {
			t.Errorf("loadConfig(-healthcheck, %v) = nil, want an error", env)
			continue
		}
		if _, ok := errors.AsType[*configError](err); ok || !strings.HasPrefix(err.Error(), "healthcheck: ") {
			t.Errorf("loadConfig(-healthcheck, %v) = %v, want a healthcheck error (exit 1), not a *configError (exit 2)", env, err)
		}
	}
}

// TestHelpListsEverySetting: wxlogin -h names every setting of the table,
// secrets included as variables, and README's configuration tables (both
// languages) list exactly the same names.
func TestHelpListsEverySetting(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"wxlogin", "-h"}, envOf(nil), io.Discard, &out); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	var c Config
	var names []string
	for _, s := range settings(&c) {
		names = append(names, s.env)
		if !regexp.MustCompile(`(?m)^` + s.env + `\s`).MatchString(help) {
			t.Errorf("wxlogin -h does not list %s", s.env)
		}
		if s.flag != "" && !strings.Contains(help, "-"+s.flag+" ") {
			t.Errorf("wxlogin -h does not show the flag -%s", s.flag)
		}
	}
	// Secrets are never flags: a command line is visible to every user.
	for _, s := range settings(&c) {
		if strings.Contains(s.env, "SECRET") && !strings.HasSuffix(s.env, "_FILE") && !strings.HasSuffix(s.env, "_DIR") {
			if s.flag != "" || !regexp.MustCompile(`(?m)^`+s.env+`\s+—\s`).MatchString(help) {
				t.Errorf("the secret %s has the flag %q, want none", s.env, s.flag)
			}
		}
	}
	for _, want := range []string{"WX_SECRET", "TOKEN_SECRET", "PORT"} {
		if !slices.Contains(names, want) {
			t.Errorf("the settings table lacks %s", want)
		}
	}
	slices.Sort(names)
	for _, readme := range []string{"README.md", "README.zh-CN.md"} {
		text := readFile(t, readme)
		start := strings.Index(text, "| `WX_APPID`")
		if start < 0 {
			t.Errorf("%s has no configuration table", readme)
			continue
		}
		end := strings.Index(text[start:], "\n\n")
		if end < 0 {
			end = len(text) - start
		}
		var listed []string
		for _, line := range strings.Split(text[start:start+end], "\n") {
			cell := strings.Split(line, "|")[1]
			for _, m := range regexp.MustCompile("`([A-Z_]+)`").FindAllStringSubmatch(cell, -1) {
				listed = append(listed, m[1])
			}
		}
		slices.Sort(listed)
		if !slices.Equal(listed, names) {
			t.Errorf("%s's configuration table lists %v,\nthe settings table has %v", readme, listed, names)
		}
	}
}

// kubeSecretDir lays out files the way Kubernetes mounts a Secret: each
// key a symlink through ..data into a timestamped directory.
func kubeSecretDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_11_30_02_00_00.123456789")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(ts, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSecretDir reads one AppSecret per AppID from a directory mounted as
// Kubernetes mounts a Secret, and refuses every ambiguous or incomplete
// setup with one line naming the setting and never a secret.
func TestSecretDir(t *testing.T) {
	t.Parallel()
	const (
		shop  = "wx00000000000000a1"
		staff = "wx00000000000000b2"
		trial = "wx00000000000000c3"
	)
	dir := kubeSecretDir(t, map[string]string{shop: "shop-secret\n", staff: "  staff-secret ", "README": "ignored"})
	c, err := loadConfig(nil, envOf(map[string]string{"WX_APPID": shop + ", " + staff, "WX_SECRET_DIR": dir}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := []wechat.App{{ID: shop, Secret: "shop-secret"}, {ID: staff, Secret: "staff-secret"}}; !slices.Equal(c.Apps, want) {
		t.Errorf("apps from WX_SECRET_DIR: %d apps, want %d with the trimmed secret of each", len(c.Apps), len(want))
	}
	if got := c.appIDs(); !slices.Equal(got, []string{shop, staff}) {
		t.Errorf("appIDs() = %v, want %v", got, []string{shop, staff})
	}
	// One app may use the directory too, and so may the flag.
	for _, args := range [][]string{nil, {"-secret-dir", dir}} {
		env := map[string]string{"WX_APPID": staff}
		if args == nil {
			env["WX_SECRET_DIR"] = dir
		}
		c, err := loadConfig(args, envOf(env), io.Discard)
		if err != nil || !slices.Equal(c.Apps, []wechat.App{{ID: staff, Secret: "staff-secret"}}) {
			t.Errorf("loadConfig(%q, one app from the directory) = %d apps, %v", args, len(c.Apps), err)
		}
	}
	empty := kubeSecretDir(t, map[string]string{shop: "s", staff: " \n"})
	bad := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{"WX_APPID": shop + "," + staff, "WX_SECRET": "s"}, "WX_SECRET: one secret for 2 AppIDs"},
		{nil, map[string]string{"WX_APPID": shop + "," + staff, "WX_SECRET_FILE": writeFile(t, "s")}, "WX_SECRET_FILE: one secret"},
		{nil, map[string]string{"WX_APPID": shop + "," + staff}, "WX_SECRET_DIR: required for 2 AppIDs"},
		{nil, map[string]string{"WX_APPID": shop + "," + trial, "WX_SECRET_DIR": dir}, "WX_SECRET_DIR: AppID " + trial + ": "},
		{[]string{"-secret-dir", dir}, map[string]string{"WX_APPID": shop + "," + trial}, "-secret-dir: AppID " + trial + ": "},
		{nil, map[string]string{"WX_APPID": shop + "," + staff, "WX_SECRET_DIR": empty}, "WX_SECRET_DIR: AppID " + staff + ": "},
		{nil, map[string]string{"WX_APPID": shop, "WX_SECRET_DIR": "/nonexistent"}, "WX_SECRET_DIR: /nonexistent is not a readable directory"},
		{nil, map[string]string{"WX_APPID": shop, "WX_SECRET_DIR": writeFile(t, "a file")}, "WX_SECRET_DIR: "},
		{nil, map[string]string{"WX_APPID": shop, "WX_SECRET_DIR": dir, "WX_SECRET": "s"}, "WX_SECRET_DIR and WX_SECRET or WX_SECRET_FILE are both set"},
		{nil, map[string]string{"WX_APPID": "wx 0123456789abcdef", "WX_SECRET": "s"}, `WX_APPID: "wx 0123456789abcdef" is not an AppID`},
		{nil, map[string]string{"WX_APPID": "wx0123456789ABCDEF", "WX_SECRET": "s"}, "WX_APPID: "},
		{nil, map[string]string{"WX_APPID": shop + ",wxshort", "WX_SECRET_DIR": dir}, `WX_APPID: "wxshort" is not an AppID`},
		{nil, map[string]string{"WX_APPID": shop + "," + shop, "WX_SECRET_DIR": dir}, "WX_APPID: " + fmt.Sprintf("%q", shop) + " is listed twice"},
		{nil, map[string]string{"WX_MOCK": "1", "WX_APPID": "bad id!"}, "WX_APPID: "},
	}
	for _, tt := range bad {
		_, err := loadConfig(tt.args, envOf(tt.env), io.Discard)
		if _, ok := errors.AsType[*configError](err); !ok || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("loadConfig(%q, %v) = %v, want one line of exit 2 starting %q", tt.args, tt.env, err, tt.want)
		}
		if err != nil && (strings.Contains(err.Error(), "shop-secret") || strings.Contains(err.Error(), "staff-secret")) {
			t.Errorf("loadConfig(%q, …) = %q: it shows a secret", tt.args, err)
		}
	}
	// Mock mode takes the list; every AppID is fake and needs no secret.
	c, err = loadConfig(nil, envOf(map[string]string{"WX_MOCK": "1", "WX_APPID": "wxmock,wxshop"}), io.Discard)
	if want := []wechat.App{{ID: "wxmock", Secret: wechat.MockSecret}, {ID: "wxshop", Secret: wechat.MockSecret}}; err != nil || !slices.Equal(c.Apps, want) {
		t.Errorf("loadConfig(mock with two apps) = %v, %v; want %v", c.Apps, err, want)
	}
}
