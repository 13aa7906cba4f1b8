package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// envOf turns a map into a getenv.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const realAppID = "wx1234567890abcdef"

var realEnv = map[string]string{"WX_APPID": realAppID, "WX_SECRET": "sekret"}

func with(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(nil, envOf(realEnv), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Apps: []App{{realAppID, "sekret"}}, Addr: ":2020", BaseURL: "https://api.weixin.qq.com",
		Timeout: 5 * time.Second, MaxInflight: 512, TokenTTL: 2 * time.Hour, TokenIssuer: "wxlogin",
		PhoneLimit: rate{10, time.Hour}, ShutdownTimeout: 10 * time.Second, LogFormat: "json", LogLevel: slog.LevelInfo}
	if !slices.Equal(c.Apps, want.Apps) || c.Addr != want.Addr || c.BaseURL != want.BaseURL ||
		c.Timeout != want.Timeout || c.MaxInflight != want.MaxInflight || c.TokenTTL != want.TokenTTL ||
		c.TokenIssuer != want.TokenIssuer || c.PhoneLimit != want.PhoneLimit || c.RateLimit != (rate{}) ||
		c.DrainDelay != 0 || len(c.TrustedProxies) != 0 || len(c.SigningKeys) != 0 ||
		c.ShutdownTimeout != want.ShutdownTimeout || c.LogFormat != want.LogFormat || c.LogLevel != want.LogLevel ||
		c.Mock || len(c.TokenKeys) != 0 {
		t.Errorf("loadConfig = %+v, want %+v", c, want)
	}
	// Tokens off outside mock mode: one warning naming both ways to turn them on.
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "TOKEN_SECRET") || !strings.Contains(c.Warnings[0], "TOKEN_KEY_FILE") {
		t.Errorf("warnings = %q, want one about tokens being off", c.Warnings)
	}
}

func TestConfigValues(t *testing.T) {
	t.Parallel()
	key1, key2 := strings.Repeat("k", 32), strings.Repeat("q", 40)
	certFile, keyFile := writeCert(t, t.TempDir(), 1)
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(Config) bool
	}{
		{"PORT", nil, with(realEnv, "PORT", "8080"), func(c Config) bool { return c.Addr == ":8080" }},
		{"ADDR beats PORT", nil, with(realEnv, "PORT", "8080", "ADDR", "127.0.0.1:9"), func(c Config) bool { return c.Addr == "127.0.0.1:9" }},
		{"flag beats ADDR", []string{"-addr", ":7"}, with(realEnv, "ADDR", ":9"), func(c Config) bool { return c.Addr == ":7" }},
		{"flag beats WX_APPID", []string{"-appid", "wxffffffffffffffff"}, realEnv, func(c Config) bool { return c.Apps[0].ID == "wxffffffffffffffff" }},
		{"secret file trimmed", nil, map[string]string{"WX_APPID": realAppID, "WX_SECRET_FILE": writeFile(t, "  s3cr3t \n")}, func(c Config) bool { return c.Apps[0].Secret == "s3cr3t" }},
		{"-secret-file", []string{"-secret-file", writeFile(t, "fromfile\n")}, map[string]string{"WX_APPID": realAppID}, func(c Config) bool { return c.Apps[0].Secret == "fromfile" }},
		{"base URL trailing slash", nil, with(realEnv, "WX_API_BASE_URL", "https://gw.example/wx/"), func(c Config) bool { return c.BaseURL == "https://gw.example/wx" }},
		{"http base URL warns", nil, with(realEnv, "WX_API_BASE_URL", "http://gw:8080"), func(c Config) bool {
			return c.BaseURL == "http://gw:8080" && strings.Contains(strings.Join(c.Warnings, "|"), "plain http")
		}},
		{"durations", []string{"-wx-timeout", "1500ms"}, with(realEnv, "WX_TIMEOUT", "9s", "TOKEN_TTL", "1s", "SHUTDOWN_TIMEOUT", "0s"), func(c Config) bool {
			return c.Timeout == 1500*time.Millisecond && c.TokenTTL == time.Second && c.ShutdownTimeout == 0
		}},
		{"max inflight", nil, with(realEnv, "MAX_INFLIGHT", "3"), func(c Config) bool { return c.MaxInflight == 3 }},
		{"mock needs nothing", nil, map[string]string{"WX_MOCK": "yes"}, func(c Config) bool { return c.Mock && c.Apps[0].ID == "wxmock" && len(c.Apps) == 1 }},
		{"-mock", []string{"-mock"}, nil, func(c Config) bool { return c.Mock }},
		{"-mock=false beats WX_MOCK", []string{"-mock=false"}, with(realEnv, "WX_MOCK", "1"), func(c Config) bool { return !c.Mock }},
		{"WX_MOCK=TRUE", nil, map[string]string{"WX_MOCK": "TRUE"}, func(c Config) bool { return c.Mock }},
		{"WX_MOCK=0", nil, with(realEnv, "WX_MOCK", "0"), func(c Config) bool { return !c.Mock }},
		{"mock keeps its AppID", nil, map[string]string{"WX_MOCK": "1", "WX_APPID": "wxmine"}, func(c Config) bool { return c.Apps[0].ID == "wxmine" }},
		{"mock ignores secret and base URL", nil, map[string]string{"WX_MOCK": "1", "WX_SECRET": "s", "WX_API_BASE_URL": "not a url"}, func(c Config) bool {
			return c.Apps[0].Secret == mockSecret && len(c.Warnings) == 2
		}},
		{"token keys trimmed", nil, with(realEnv, "TOKEN_SECRET", " "+key1+" , "+key2), func(c Config) bool {
			return len(c.TokenKeys) == 2 && string(c.TokenKeys[0]) == key1 && string(c.TokenKeys[1]) == key2
		}},
		{"token key file", nil, with(realEnv, "TOKEN_SECRET_FILE", writeFile(t, key1+"\n")), func(c Config) bool {
			return len(c.TokenKeys) == 1 && string(c.TokenKeys[0]) == key1
		}},
		{"text logs at debug", nil, with(realEnv, "LOG_FORMAT", "TEXT", "LOG_LEVEL", "Debug"), func(c Config) bool {
			return c.LogFormat == "text" && c.LogLevel == slog.LevelDebug
		}},
		{"TLS pair", nil, with(realEnv, "TLS_CERT_FILE", certFile, "TLS_KEY_FILE", keyFile), func(c Config) bool {
			return c.TLSCert == certFile && c.TLSKey == keyFile && c.TLSCertificate != nil
		}},
		{"-healthcheck", []string{"-healthcheck"}, realEnv, func(c Config) bool { return c.Healthcheck }},
	}
	for _, tt := range tests {
		c, err := loadConfig(tt.args, envOf(tt.env), io.Discard)
		if err != nil {
			t.Errorf("%s: loadConfig: %v", tt.name, err)
			continue
		}
		if !tt.check(c) {
			t.Errorf("%s: loadConfig = %+v", tt.name, c)
		}
	}
}

// TestConfigErrors checks that every bad setting stops startup with an
// error that names the variable, or the flag when it came from one.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	short := strings.Repeat("k", 31)
	tests := []struct {
		args []string
		env  map[string]string
		name string // what the error must start with
	}{
		{nil, map[string]string{"WX_SECRET": "s"}, "WX_APPID"},
		{nil, map[string]string{"WX_APPID": realAppID}, "WX_SECRET"},
		{nil, map[string]string{"WX_APPID": realAppID, "WX_SECRET_FILE": "/nonexistent/secret"}, "WX_SECRET_FILE"},
		{[]string{"-secret-file", "/nonexistent/secret"}, map[string]string{"WX_APPID": realAppID}, "-secret-file"},
		{nil, map[string]string{"WX_APPID": realAppID, "WX_SECRET_FILE": writeFile(t, " \n\t")}, "WX_SECRET_FILE"},
		{nil, with(realEnv, "WX_SECRET_FILE", writeFile(t, "x")), "WX_SECRET"},
		{nil, with(realEnv, "WX_API_BASE_URL", "api.weixin.qq.com"), "WX_API_BASE_URL"},
		{nil, with(realEnv, "WX_API_BASE_URL", "ftp://x"), "WX_API_BASE_URL"},
		{nil, with(realEnv, "WX_API_BASE_URL", "https://"), "WX_API_BASE_URL"},
		{nil, with(realEnv, "WX_API_BASE_URL", "https://x/?a=b"), "WX_API_BASE_URL"},
		{[]string{"-wx-base-url", "/relative"}, realEnv, "-wx-base-url"},
		{nil, with(realEnv, "WX_TIMEOUT", "5"), "WX_TIMEOUT"},
		{nil, with(realEnv, "WX_TIMEOUT", "0s"), "WX_TIMEOUT"},
		{nil, with(realEnv, "WX_TIMEOUT", "-1s"), "WX_TIMEOUT"},
		{[]string{"-wx-timeout", "soon"}, realEnv, "-wx-timeout"},
		{nil, with(realEnv, "TOKEN_TTL", "0"), "TOKEN_TTL"},
		{nil, with(realEnv, "TOKEN_TTL", "500ms"), "TOKEN_TTL"},
		{nil, with(realEnv, "SHUTDOWN_TIMEOUT", "-1s"), "SHUTDOWN_TIMEOUT"},
		{nil, with(realEnv, "MAX_INFLIGHT", "0"), "MAX_INFLIGHT"},
		{nil, with(realEnv, "MAX_INFLIGHT", "many"), "MAX_INFLIGHT"},
		{[]string{"-max-inflight", "-3"}, realEnv, "-max-inflight"},
		{nil, with(realEnv, "PORT", "http"), "PORT"},
		{nil, with(realEnv, "PORT", "70000"), "PORT"},
		{nil, with(realEnv, "ADDR", "2020"), "ADDR"},
		{nil, with(realEnv, "ADDR", ":http-alt"), "ADDR"},
		{nil, with(realEnv, "WX_MOCK", "on"), "WX_MOCK"},
		{nil, with(realEnv, "TOKEN_SECRET", short), "TOKEN_SECRET"},
		{nil, with(realEnv, "TOKEN_SECRET", strings.Repeat("k", 32)+","), "TOKEN_SECRET"},
		{nil, with(realEnv, "TOKEN_SECRET_FILE", writeFile(t, short)), "TOKEN_SECRET_FILE"},
		{nil, with(realEnv, "TOKEN_SECRET", strings.Repeat("k", 32), "TOKEN_SECRET_FILE", writeFile(t, strings.Repeat("k", 32))), "TOKEN_SECRET"},
		{nil, with(realEnv, "TOKEN_SECRET_FILE", "/nonexistent"), "TOKEN_SECRET_FILE"},
		{nil, with(realEnv, "TLS_CERT_FILE", "c.pem"), "TLS_KEY_FILE"},
		{[]string{"-tls-key", "k.pem"}, realEnv, "TLS_CERT_FILE: required when -tls-key"},
		{nil, with(realEnv, "LOG_FORMAT", "xml"), "LOG_FORMAT"},
		{nil, with(realEnv, "LOG_LEVEL", "verbose"), "LOG_LEVEL"},
		{[]string{"-log-level", "loud"}, realEnv, "-log-level"},
		{[]string{"-no-such-flag"}, realEnv, "flag provided but not defined: -no-such-flag"},
		{[]string{"-mock=maybe"}, nil, "invalid boolean value"},
		{[]string{"extra"}, realEnv, "unexpected argument"},
	}
	for _, tt := range tests {
		_, err := loadConfig(tt.args, envOf(tt.env), io.Discard)
		var ce *configError
		if !errors.As(err, &ce) {
			t.Errorf("loadConfig(%q, %v) = %v, want a *configError", tt.args, tt.env, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), tt.name) || strings.Contains(err.Error(), "\n") {
			t.Errorf("loadConfig(%q, %v) = %q, want one line starting %q", tt.args, tt.env, err, tt.name)
		}
		if strings.Contains(err.Error(), short) || strings.Contains(err.Error(), "sekret") {
			t.Errorf("loadConfig error %q shows a secret", err)
		}
	}
}

// TestLimitSettings covers the settings of SPEC §11.
func TestLimitSettings(t *testing.T) {
	t.Parallel()
	good := []struct {
		env   map[string]string
		check func(Config) bool
	}{
		{with(realEnv, "RATE_LIMIT", "600/1m"), func(c Config) bool { return c.RateLimit == rate{600, time.Minute} }},
		{with(realEnv, "RATE_LIMIT", "off"), func(c Config) bool { return c.RateLimit == rate{} }},
		{with(realEnv, "PHONE_LIMIT", "0"), func(c Config) bool { return c.PhoneLimit == rate{} }},
		{with(realEnv, "PHONE_LIMIT", "3/24h"), func(c Config) bool { return c.PhoneLimit == rate{3, 24 * time.Hour} }},
		{with(realEnv, "TRUSTED_PROXIES", "10.0.0.0/8, 192.168.0.1,::1, fd00::/8"), func(c Config) bool { return len(c.TrustedProxies) == 4 }},
		{with(realEnv, "DRAIN_DELAY", "5s"), func(c Config) bool { return c.DrainDelay == 5*time.Second }},
	}
	for _, tt := range good {
		c, err := loadConfig(nil, envOf(tt.env), io.Discard)
		if err != nil || !tt.check(c) {
			t.Errorf("loadConfig(%v) = %+v, %v", tt.env, c, err)
		}
	}
	for _, kv := range [][2]string{
		{"RATE_LIMIT", "0/1m"}, {"RATE_LIMIT", "10"}, {"RATE_LIMIT", "x/1m"}, {"RATE_LIMIT", "10/0s"}, {"RATE_LIMIT", "-1/1m"},
		{"PHONE_LIMIT", "10/soon"}, {"PHONE_LIMIT", "1.5/1h"},
		{"TRUSTED_PROXIES", "300.1.1.1/8"}, {"TRUSTED_PROXIES", "abc"}, {"TRUSTED_PROXIES", "10.0.0.0/33"},
		{"DRAIN_DELAY", "-1s"}, {"DRAIN_DELAY", "5"},
	} {
		_, err := loadConfig(nil, envOf(with(realEnv, kv[0], kv[1])), io.Discard)
		var ce *configError
		if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), kv[0]+": ") {
			t.Errorf("%s=%q: %v, want exit 2 naming %s", kv[0], kv[1], err, kv[0])
		}
	}
	if _, err := loadConfig([]string{"-rate-limit", "10"}, envOf(realEnv), io.Discard); err == nil || !strings.HasPrefix(err.Error(), "-rate-limit: ") {
		t.Errorf("-rate-limit 10: %v, want an error naming the flag", err)
	}
}

// TestBothSetMessage: "X and Y are both set", not a garbled sentence.
func TestBothSetMessage(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("k", 32)
	_, err := loadConfig(nil, envOf(with(realEnv, "TOKEN_SECRET", key, "TOKEN_SECRET_FILE", writeFile(t, key))), io.Discard)
	if err == nil || err.Error() != "TOKEN_SECRET and TOKEN_SECRET_FILE are both set: give only one" {
		t.Errorf("error = %v", err)
	}
}

// TestHealthcheckEnvironment: -healthcheck reads only the address and TLS
// settings, and never exits 2 whatever else the environment holds.
func TestHealthcheckEnvironment(t *testing.T) {
	t.Parallel()
	c, err := loadConfig([]string{"-healthcheck"}, envOf(map[string]string{"ADDR": ":8080"}), io.Discard)
	if err != nil || c.Addr != ":8080" {
		t.Errorf("-healthcheck with only ADDR: %+v, %v", c, err)
	}
	c, err = loadConfig([]string{"-healthcheck"}, envOf(map[string]string{"PORT": "9000", "WX_TIMEOUT": "nonsense", "WX_APPID": "bad"}), io.Discard)
	if err != nil || c.Addr != ":9000" {
		t.Errorf("-healthcheck with PORT and junk elsewhere: %+v, %v", c, err)
	}
	_, err = loadConfig([]string{"-healthcheck"}, envOf(map[string]string{"ADDR": "nonsense"}), io.Discard)
	if err == nil {
		t.Fatal("-healthcheck with a bad ADDR: no error")
	}
	if _, ok := errors.AsType[*configError](err); ok {
		t.Errorf("-healthcheck error %v is a *configError (exit 2), want exit 1", err)
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
	var c Config
	table := settings(&c, map[string]string{})
	var names []string
	for _, s := range table {
		names = append(names, s.env)
		if !regexp.MustCompile(`(?m)^` + s.env + `\s`).MatchString(out.String()) {
			t.Errorf("wxlogin -h does not list %s", s.env)
		}
		if s.flag != "" && !strings.Contains(out.String(), "-"+s.flag+" ") {
			t.Errorf("wxlogin -h does not show the flag -%s", s.flag)
		}
	}
	for _, secret := range []string{"WX_SECRET", "TOKEN_SECRET", "PORT"} {
		if !slices.Contains(names, secret) {
			t.Errorf("the table lacks %s", secret)
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
