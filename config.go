package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of the service, read and validated once at start.
type Config struct {
	AppID           string
	Secret          string // the AppSecret; never logged
	Addr            string
	BaseURL         string // WeChat API base, without a trailing slash
	Timeout         time.Duration
	MaxInflight     int
	Mock            bool
	TokenKeys       [][]byte // the first signs, all verify; empty = no tokens
	TokenTTL        time.Duration
	TLSCert, TLSKey string
	TLSCertificate  *tls.Certificate // loaded at startup from TLSCert and TLSKey
	ShutdownTimeout time.Duration
	LogFormat       string
	LogLevel        slog.Level

	Healthcheck bool // -healthcheck: probe a running instance and exit
	Version     bool // -version: print the version and exit

	// Warnings are things worth a WARN line once the logger exists.
	Warnings []string
}

// Defaults that the SPEC fixes.
const (
	defaultPort        = "2020"
	defaultBaseURL     = "https://api.weixin.qq.com"
	mockAppID          = "wxmock"
	minTokenKeyLen     = 32
	defaultMaxInflight = 512
)

// setting is one value as given, with the name to blame in an error: the
// flag when it was given, else the variable.
type setting struct{ value, name string }

// configError is a setting that stops startup; main exits 2 on it.
type configError struct {
	setting string // the variable or flag, as the user wrote it
	problem string
}

func (e *configError) Error() string {
	if e.setting == "" {
		return e.problem
	}
	return e.setting + ": " + e.problem
}

// loadConfig reads flags (args, without the program name) and the
// environment through getenv. A flag beats its variable; secrets come only
// from the environment or from files.
func loadConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	fs := flag.NewFlagSet("wxlogin", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned as one line, not printed here
	fs.Usage = func() {}
	fs.String("appid", "", "mini-program AppID (`WX_APPID`)")
	fs.String("secret-file", "", "file holding the AppSecret (`WX_SECRET_FILE`)")
	fs.String("addr", "", "listen address (`ADDR`; default :2020, or :$PORT)")
	fs.String("wx-base-url", "", "WeChat API base URL (`WX_API_BASE_URL`; default "+defaultBaseURL+")")
	fs.String("wx-timeout", "", "deadline for one login's upstream work, retries included (`WX_TIMEOUT`; default 5s)")
	fs.String("max-inflight", "", "logins in flight at once before answering 503 (`MAX_INFLIGHT`; default 512)")
	fs.Bool("mock", false, "mock mode: a fake WeChat built in, no credentials needed (WX_MOCK=1)")
	fs.String("token-secret-file", "", "file holding the login-token key(s) (`TOKEN_SECRET_FILE`)")
	fs.String("token-ttl", "", "lifetime of a login token (`TOKEN_TTL`; default 2h)")
	fs.String("tls-cert", "", "TLS certificate file; serve HTTPS (`TLS_CERT_FILE`)")
	fs.String("tls-key", "", "TLS private key file (`TLS_KEY_FILE`)")
	fs.String("shutdown-timeout", "", "grace period for in-flight requests on SIGTERM (`SHUTDOWN_TIMEOUT`; default 10s)")
	fs.String("log-format", "", "json or text (`LOG_FORMAT`; default json)")
	fs.String("log-level", "", "debug, info, warn or error (`LOG_LEVEL`; default info)")
	healthcheck := fs.Bool("healthcheck", false, "call this instance's /healthz and exit 0 or 1")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(usage, "usage: wxlogin [flags]\n\nEach flag has an environment variable (named in brackets); a flag beats its\nvariable. Secrets come only from the environment or files. See README.md.\n\n")
			fs.SetOutput(usage)
			fs.PrintDefaults()
			return Config{}, err
		}
		return Config{}, &configError{problem: err.Error() + " (see wxlogin -h)"}
	}
	if fs.NArg() > 0 {
		return Config{}, &configError{problem: fmt.Sprintf("unexpected argument %q (see wxlogin -h)", fs.Arg(0))}
	}

	if *version {
		return Config{Version: true}, nil // needs no other setting
	}

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// get reads a setting: the flag when it was given, else the variable.
	get := func(env, flagName string) setting {
		if set[flagName] {
			return setting{fs.Lookup(flagName).Value.String(), "-" + flagName}
		}
		return setting{getenv(env), env}
	}

	c := Config{Healthcheck: *healthcheck, Version: *version}
	var err error

	if set["mock"] {
		c.Mock = fs.Lookup("mock").Value.String() == "true"
	} else if c.Mock, err = parseSwitch(getenv("WX_MOCK")); err != nil {
		return Config{}, &configError{"WX_MOCK", err.Error()}
	}

	c.AppID = strings.TrimSpace(get("WX_APPID", "appid").value)
	secret := setting{getenv("WX_SECRET"), "WX_SECRET"}
	secretFile := get("WX_SECRET_FILE", "secret-file")
	baseURL := get("WX_API_BASE_URL", "wx-base-url")
	if c.Mock {
		if c.AppID == "" {
			c.AppID = mockAppID
		}
		if secret.value != "" || secretFile.value != "" {
			c.Warnings = append(c.Warnings, "mock mode ignores WX_SECRET and WX_SECRET_FILE")
		}
		if baseURL.value != "" {
			c.Warnings = append(c.Warnings, "mock mode ignores "+baseURL.name)
		}
	} else {
		if c.AppID == "" {
			return Config{}, &configError{"WX_APPID", "required (or run with -mock to try the service without credentials)"}
		}
		if c.Secret, err = secretFrom(secret, secretFile); err != nil {
			return Config{}, err
		}
		if c.Secret == "" {
			return Config{}, &configError{"WX_SECRET", "required: set WX_SECRET or WX_SECRET_FILE (or run with -mock)"}
		}
		if baseURL.value == "" {
			baseURL.value = defaultBaseURL
		}
		if c.BaseURL, err = parseBaseURL(baseURL.value); err != nil {
			return Config{}, &configError{baseURL.name, err.Error()}
		}
		if strings.HasPrefix(c.BaseURL, "http://") {
			c.Warnings = append(c.Warnings, "WeChat API base URL is plain http: the AppSecret travels unencrypted")
		}
	}

	if c.Addr, err = listenAddr(get("ADDR", "addr")); err != nil {
		return Config{}, err
	}
	if port := getenv("PORT"); port != "" {
		if _, err := parsePort(port); err != nil {
			return Config{}, &configError{"PORT", err.Error()}
		}
		if get("ADDR", "addr").value == "" {
			c.Addr = ":" + port
		}
	}

	if c.Timeout, err = durationSetting(get("WX_TIMEOUT", "wx-timeout"), 5*time.Second, time.Nanosecond); err != nil {
		return Config{}, err
	}
	if c.TokenTTL, err = durationSetting(get("TOKEN_TTL", "token-ttl"), 2*time.Hour, time.Second); err != nil {
		return Config{}, err
	}
	if c.ShutdownTimeout, err = durationSetting(get("SHUTDOWN_TIMEOUT", "shutdown-timeout"), 10*time.Second, 0); err != nil {
		return Config{}, err
	}

	c.MaxInflight = defaultMaxInflight
	if v := get("MAX_INFLIGHT", "max-inflight"); v.value != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v.value))
		if err != nil || n < 1 {
			return Config{}, &configError{v.name, fmt.Sprintf("%q is not a whole number of at least 1", v.value)}
		}
		c.MaxInflight = n
	}

	tokenSecret := setting{getenv("TOKEN_SECRET"), "TOKEN_SECRET"}
	tokenFile := get("TOKEN_SECRET_FILE", "token-secret-file")
	keys, err := secretFrom(tokenSecret, tokenFile)
	if err != nil {
		return Config{}, err
	}
	if keys != "" {
		from := tokenSecret.name
		if tokenFile.value != "" {
			from = tokenFile.name
		}
		if c.TokenKeys, err = parseTokenKeys(keys); err != nil {
			return Config{}, &configError{from, err.Error()}
		}
	}

	cert, key := get("TLS_CERT_FILE", "tls-cert"), get("TLS_KEY_FILE", "tls-key")
	switch {
	case cert.value != "" && key.value == "":
		return Config{}, &configError{key.name, "required when " + cert.name + " is set (both or neither)"}
	case cert.value == "" && key.value != "":
		return Config{}, &configError{cert.name, "required when " + key.name + " is set (both or neither)"}
	}
	if cert.value != "" {
		c.TLSCert, c.TLSKey = cert.value, key.value
		if c.TLSCertificate, err = loadKeyPair(cert, key); err != nil {
			return Config{}, err
		}
	}

	format := get("LOG_FORMAT", "log-format")
	switch c.LogFormat = strings.ToLower(strings.TrimSpace(format.value)); c.LogFormat {
	case "":
		c.LogFormat = "json"
	case "json", "text":
	default:
		return Config{}, &configError{format.name, fmt.Sprintf("%q is not json or text", format.value)}
	}
	level := get("LOG_LEVEL", "log-level")
	switch strings.ToLower(strings.TrimSpace(level.value)) {
	case "", "info":
		c.LogLevel = slog.LevelInfo
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		return Config{}, &configError{level.name, fmt.Sprintf("%q is not debug, info, warn or error", level.value)}
	}
	return c, nil
}

// parseSwitch reads an on/off variable such as WX_MOCK.
func parseSwitch(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes":
		return true, nil
	case "", "0", "false", "no":
		return false, nil
	}
	return false, fmt.Errorf("%q is not one of 1, true, yes, 0, false, no", v)
}

// secretFrom returns a secret given directly (value) or in a file, trimmed.
// Giving both is ambiguous; a file that cannot be read or is empty is an
// error. An empty result means neither was given.
func secretFrom(value, file setting) (string, error) {
	if value.value != "" && file.value != "" {
		return "", &configError{value.name, "and " + file.name + " are both set: give only one"}
	}
	if file.value == "" {
		return strings.TrimSpace(value.value), nil
	}
	b, err := os.ReadFile(file.value)
	if err != nil {
		// The *PathError names the file, never its content.
		return "", &configError{file.name, err.Error()}
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", &configError{file.name, fmt.Sprintf("file %s is empty", file.value)}
	}
	return s, nil
}

// parseBaseURL checks that raw is an absolute http(s) URL and returns it
// without a trailing slash, so that the endpoint path is never doubled.
func parseBaseURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("%q is not a URL", raw)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute http:// or https:// URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q must not have a query, fragment or user info", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// listenAddr validates a listen address; empty means the default.
func listenAddr(s setting) (string, error) {
	addr, name := s.value, s.name
	if addr == "" {
		return ":" + defaultPort, nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", &configError{name, fmt.Sprintf("%q is not host:port (for example :2020)", addr)}
	}
	if _, err := parsePort(port); err != nil {
		return "", &configError{name, err.Error()}
	}
	return addr, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	return n, nil
}

// durationSetting parses a Go duration no shorter than lowest (0: not
// negative; 1ns: positive); empty means def.
func durationSetting(s setting, def, lowest time.Duration) (time.Duration, error) {
	v, name := s.value, s.name
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, &configError{name, fmt.Sprintf("%q is not a duration such as 5s or 2h", v)}
	}
	switch {
	case d >= lowest:
		return d, nil
	case lowest == 0:
		return 0, &configError{name, fmt.Sprintf("%q must not be negative", v)}
	case lowest == time.Nanosecond:
		return 0, &configError{name, fmt.Sprintf("%q must be positive", v)}
	}
	return 0, &configError{name, fmt.Sprintf("%q must be at least %v", v, lowest)}
}

// parseTokenKeys splits comma-separated HMAC keys, trimming spaces.
func parseTokenKeys(s string) ([][]byte, error) {
	var keys [][]byte
	for i, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		if len(k) < minTokenKeyLen {
			// Say which key and how long, never the key itself.
			return nil, fmt.Errorf("key %d is %d bytes; each key needs at least %d random bytes (openssl rand -base64 32)", i+1, len(k), minTokenKeyLen)
		}
		keys = append(keys, []byte(k))
	}
	return keys, nil
}
