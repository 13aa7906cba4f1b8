package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// Config is every setting of the service, read and validated once at start.
type Config struct {
	// Straight from the table.
	AppIDs          []string // WX_APPID, in order
	Addr            string
	Timeout         time.Duration
	MaxInflight     int
	Mock            bool
	TokenTTL        time.Duration
	KeyFile         []*token.Key // TOKEN_KEY_FILE: the first signs, all verify and are published
	TokenIssuer     string       // iss of every token; an http(s) URL also turns on discovery
	PhoneLimit      rate         // per openid; zero = off
	RateLimit       rate         // per client address; zero = off
	TrustedProxies  []netip.Prefix
	DrainDelay      time.Duration
	TLSCert, TLSKey string
	ShutdownTimeout time.Duration
	LogFormat       string
	LogLevel        slog.Level

	// Straight from the table, for the rules after it.
	secret, secretFile, secretDir string
	tokenSecret, tokenSecretFile  string
	port                          string
	baseURL                       string

	// Actions: do this and exit.
	Healthcheck bool // -healthcheck: probe a running instance
	Version     bool // -version: print the version
	GenKey      bool // -genkey: print a new P-256 private key

	// Made by the rules that join settings.
	Apps           []wechat.App // the mini-programs, with their secrets; in mock mode, fake ones
	MockKey        bool         // mock mode signs with the public development key
	BaseURL        string       // WeChat API base, without a trailing slash; "" in mock mode
	TokenKeys      []*token.Key // the key file's keys, then TOKEN_SECRET's: the first signs
	TLSCertificate *tls.Certificate
	Warnings       []string // worth a WARN line once the logger exists

	now func() time.Time // the clock of tokens and limits; time.Now if nil (tests set it)
}

// appIDs lists the configured AppIDs in order.
func (c Config) appIDs() []string {
	ids := make([]string, len(c.Apps))
	for i, a := range c.Apps {
		ids[i] = a.ID
	}
	return ids
}

// Defaults that the SPEC fixes.
const (
	defaultPort        = "2020"
	mockAppID          = "wxmock"
	defaultMaxInflight = 512
	defaultIssuer      = "wxlogin"
)

// setting is one row of the configuration table: where a value comes from,
// and what turns it into a field of Config.
type setting struct {
	env     string // the environment variable
	flag    string // the flag without its dash; "" for secrets and PORT
	def     string // default, as the user would write it ("" = none)
	usage   string
	boolean bool // a flag that needs no value (-mock)
	health  bool // -healthcheck reads it too (it reads nothing else)
	// parse checks the value (flag, else variable, else def) and stores
	// it. Its error is the problem only: the caller names the setting.
	parse func(v string) error
}

// settings is the configuration table: every setting the service has, in
// the order -h and the README list them.
func settings(c *Config) []setting {
	return []setting{
		{env: "WX_APPID", flag: "appid", usage: "mini-program AppID, or several separated by commas; required unless mock mode", parse: list(&c.AppIDs)},
		{env: "WX_SECRET", usage: "AppSecret of the one AppID (or WX_SECRET_FILE, WX_SECRET_DIR)", parse: text(&c.secret)},
		{env: "WX_SECRET_FILE", flag: "secret-file", usage: "file holding the AppSecret (Docker/Kubernetes secrets)", parse: text(&c.secretFile)},
		{env: "WX_SECRET_DIR", flag: "secret-dir", usage: "directory with one AppSecret file per AppID, named by the AppID", parse: text(&c.secretDir)},
		{env: "ADDR", flag: "addr", def: ":" + defaultPort, usage: "listen address host:port (default :$PORT when PORT is set)", health: true, parse: listenAddr(&c.Addr)},
		{env: "PORT", usage: "port to listen on when ADDR is not set (Cloud Hosting, Heroku-style platforms)", health: true, parse: port(&c.port)},
		{env: "WX_API_BASE_URL", flag: "wx-base-url", def: wechat.DefaultBaseURL, usage: "WeChat API base URL; http:// only for tests and internal gateways", parse: text(&c.baseURL)},
		{env: "WX_TIMEOUT", flag: "wx-timeout", def: "5s", usage: "deadline for one request's whole upstream work, retries included", parse: duration(&c.Timeout, time.Nanosecond)},
		{env: "MAX_INFLIGHT", flag: "max-inflight", def: strconv.Itoa(defaultMaxInflight), usage: "requests waiting for WeChat at once; beyond it, 503 at once", parse: atLeastOne(&c.MaxInflight)},
		{env: "WX_MOCK", flag: "mock", boolean: true, usage: "mock mode: a fake WeChat built in, no credentials needed (1, true, yes)", parse: onOff(&c.Mock)},
		{env: "TOKEN_SECRET", usage: "HMAC key(s) for HS256 login tokens, comma-separated, each >= 32 bytes", parse: text(&c.tokenSecret)},
		{env: "TOKEN_SECRET_FILE", flag: "token-secret-file", usage: "the same, from a file", parse: text(&c.tokenSecretFile)},
		{env: "TOKEN_TTL", flag: "token-ttl", def: "2h", usage: "lifetime of a login token", parse: duration(&c.TokenTTL, time.Second)},
		{env: "TOKEN_KEY_FILE", flag: "token-key-file", usage: "PEM private key(s), P-256 or Ed25519, for ES256/EdDSA tokens and the JWKS (wxlogin -genkey makes one)", parse: keyFile(&c.KeyFile)},
		{env: "TOKEN_ISSUER", flag: "token-issuer", def: defaultIssuer, usage: "iss of the tokens; an https:// URL also serves OpenID discovery", parse: issuer(&c.TokenIssuer)},
		{env: "PHONE_LIMIT", flag: "phone-limit", def: "10/1h", usage: "phone-number requests per user, N/duration; 0 = off", parse: rateSetting(&c.PhoneLimit)},
		{env: "RATE_LIMIT", flag: "rate-limit", def: "off", usage: "logins and phone requests per client address, N/duration", parse: rateSetting(&c.RateLimit)},
		{env: "TRUSTED_PROXIES", flag: "trusted-proxies", usage: "CIDRs or addresses whose X-Forwarded-For is believed, comma-separated", parse: prefixes(&c.TrustedProxies)},
		{env: "DRAIN_DELAY", flag: "drain-delay", def: "0s", usage: "after SIGTERM, serve this long with /healthz 503 before shutting down", parse: duration(&c.DrainDelay, 0)},
		{env: "TLS_CERT_FILE", flag: "tls-cert", usage: "TLS certificate file: serve HTTPS (and HTTP/2); re-read on SIGHUP", health: true, parse: text(&c.TLSCert)},
		{env: "TLS_KEY_FILE", flag: "tls-key", usage: "TLS private key file; both or neither", health: true, parse: text(&c.TLSKey)},
		{env: "SHUTDOWN_TIMEOUT", flag: "shutdown-timeout", def: "10s", usage: "how long in-flight requests get after SIGTERM/SIGINT", parse: duration(&c.ShutdownTimeout, 0)},
		{env: "LOG_FORMAT", flag: "log-format", def: "json", usage: "json or text (to stderr)", parse: oneOf(&c.LogFormat, "json", "text")},
		{env: "LOG_LEVEL", flag: "log-level", def: "info", usage: "debug, info, warn or error", parse: logLevel(&c.LogLevel)},
	}
}

// flagValue is a flag that remembers whether it was given; a boolean one
// (-mock) needs no value.
type flagValue struct {
	value   string
	set     bool
	boolean bool
}

func (f *flagValue) String() string { return f.value }
func (f *flagValue) Set(v string) error {
	if f.boolean {
		if _, err := strconv.ParseBool(v); err != nil {
			return errors.New("not true or false")
		}
	}
	f.value, f.set = v, true
	return nil
}
func (f *flagValue) IsBoolFlag() bool { return f.boolean }

// names says what an error about a setting blames: the flag when it was
// given, else the variable. given says whether it was set at all.
type names map[string]struct {
	name  string
	given bool
}

func (n names) of(env string) string {
	if e, ok := n[env]; ok {
		return e.name
	}
	return env
}

// loadConfig reads flags (args, without the program name) and the
// environment through getenv. A flag beats its variable, which beats the
// default; secrets come only from the environment or from files.
func loadConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	var c Config
	table := settings(&c)

	fs := flag.NewFlagSet("wxlogin", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned as one line, not printed here
	fs.Usage = func() {}
	flags := map[string]*flagValue{}
	for _, s := range table {
		if s.flag != "" {
			flags[s.env] = &flagValue{boolean: s.boolean}
			fs.Var(flags[s.env], s.flag, s.usage)
		}
	}
	fs.BoolVar(&c.Healthcheck, "healthcheck", false, "call this instance's /healthz and exit 0 or 1")
	fs.BoolVar(&c.Version, "version", false, "print the version and exit")
	fs.BoolVar(&c.GenKey, "genkey", false, "print a new P-256 private key (PKCS#8 PEM) for TOKEN_KEY_FILE and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(usage, table)
			return Config{}, err
		}
		return Config{}, &configError{problem: err.Error() + " (see wxlogin -h)"}
	}
	if fs.NArg() > 0 {
		return Config{}, &configError{problem: fmt.Sprintf("unexpected argument %q (see wxlogin -h)", fs.Arg(0))}
	}
	if c.Version || c.GenKey {
		return c, nil // they need no other setting
	}

	n := names{}
	for _, s := range table {
		if c.Healthcheck && !s.health {
			continue // -healthcheck works whatever else the environment holds
		}
		v, name := getenv(s.env), s.env
		if f := flags[s.env]; f != nil && f.set {
			v, name = f.value, "-"+s.flag
		}
		n[s.env] = struct {
			name  string
			given bool
		}{name, v != ""}
		if v == "" {
			v = s.def
		}
		if err := s.parse(v); err != nil {
			return Config{}, c.settingError(&configError{name, err.Error()})
		}
	}
	if err := c.join(n); err != nil {
		return Config{}, c.settingError(err)
	}
	return c, nil
}

// settingError is err as it stops startup (exit 2), or, for -healthcheck,
// as a failed check (exit 1): a probe reports, it never exits 2.
func (c *Config) settingError(err error) error {
	if c.Healthcheck {
		return errors.New("healthcheck: " + err.Error())
	}
	return err
}

// join applies the rules that join several settings: the listen port,
// TLS pairs, the AppIDs and their secrets, and the token keys.
func (c *Config) join(n names) error {
	if c.port != "" && !n["ADDR"].given {
		c.Addr = ":" + c.port
	}
	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		return &configError{n.of("TLS_KEY_FILE"), "required when " + n.of("TLS_CERT_FILE") + " is set (both or neither)"}
	case c.TLSCert == "" && c.TLSKey != "":
		return &configError{n.of("TLS_CERT_FILE"), "required when " + n.of("TLS_KEY_FILE") + " is set (both or neither)"}
	}
	if c.Healthcheck {
		return nil // it needs to know TLS is on, not the certificate
	}
	if c.TLSCert != "" {
		var err error
		if c.TLSCertificate, err = loadKeyPair(c.TLSCert, c.TLSKey, n.of("TLS_CERT_FILE"), n.of("TLS_KEY_FILE")); err != nil {
			return err
		}
	}
	if err := c.apps(n); err != nil {
		return err
	}
	return c.tokenKeys(n)
}

// apps reads the AppIDs and their secrets, and the base URL they are used
// with. Mock mode needs neither secrets nor a base URL.
func (c *Config) apps(n names) error {
	seen := map[string]bool{}
	for _, id := range c.AppIDs {
		if seen[id] {
			return &configError{n.of("WX_APPID"), fmt.Sprintf("%q is listed twice", id)}
		}
		seen[id] = true
		if !c.Mock && !wechat.IsAppID(id) || c.Mock && !wechat.IsMockAppID(id) {
			return &configError{n.of("WX_APPID"), fmt.Sprintf("%q is not an AppID (wx and 16 lowercase hex digits)", id)}
		}
	}
	if c.Mock {
		ids := c.AppIDs
		if len(ids) == 0 {
			ids = []string{mockAppID}
		}
		for _, id := range ids {
			c.Apps = append(c.Apps, wechat.App{ID: id, Secret: wechat.MockSecret})
		}
		if c.secret != "" || c.secretFile != "" || c.secretDir != "" {
			c.Warnings = append(c.Warnings, "mock mode ignores WX_SECRET, WX_SECRET_FILE and WX_SECRET_DIR")
		}
		if n["WX_API_BASE_URL"].given {
			c.Warnings = append(c.Warnings, "mock mode ignores "+n.of("WX_API_BASE_URL"))
		}
		return nil
	}
	ids := c.AppIDs
	if len(ids) == 0 {
		return &configError{"WX_APPID", "required (or run with -mock to try the service without credentials)"}
	}
	var err error
	if c.BaseURL, err = parseBaseURL(c.baseURL); err != nil {
		return &configError{n.of("WX_API_BASE_URL"), err.Error()}
	}
	if strings.HasPrefix(c.BaseURL, "http://") {
		c.Warnings = append(c.Warnings, "WeChat API base URL is plain http: the AppSecret travels unencrypted")
	}

	if len(ids) > 1 {
		for env, v := range map[string]string{"WX_SECRET": c.secret, "WX_SECRET_FILE": c.secretFile} {
			if v != "" {
				return &configError{n.of(env), fmt.Sprintf("one secret for %d AppIDs: put one file per AppID in WX_SECRET_DIR", len(ids))}
			}
		}
		if c.secretDir == "" {
			return &configError{"WX_SECRET_DIR", fmt.Sprintf("required for %d AppIDs: a directory with one AppSecret file per AppID", len(ids))}
		}
	}
	if c.secretDir != "" {
		if c.secret != "" || c.secretFile != "" {
			return &configError{problem: n.of("WX_SECRET_DIR") + " and WX_SECRET or WX_SECRET_FILE are both set: give only one"}
		}
		if fi, err := os.Stat(c.secretDir); err != nil || !fi.IsDir() {
			return &configError{n.of("WX_SECRET_DIR"), fmt.Sprintf("%s is not a readable directory", c.secretDir)}
		}
		for _, id := range ids {
			s, err := readSecretFile(filepath.Join(c.secretDir, id))
			if err != nil {
				return &configError{n.of("WX_SECRET_DIR"), "AppID " + id + ": " + err.Error()}
			}
			c.Apps = append(c.Apps, wechat.App{ID: id, Secret: s})
		}
		return nil
	}
	secret, _, err := secretFrom(c.secret, c.secretFile, "WX_SECRET", n.of("WX_SECRET_FILE"))
	if err != nil {
		return err
	}
	if secret == "" {
		return &configError{"WX_SECRET", "required: set WX_SECRET, WX_SECRET_FILE or WX_SECRET_DIR (or run with -mock)"}
	}
	c.Apps = []wechat.App{{ID: ids[0], Secret: secret}}
	return nil
}

// tokenKeys reads TOKEN_SECRET's HMAC keys and orders every key: the key
// file's first, so that it signs, then the HMAC keys, which still verify.
func (c *Config) tokenKeys(n names) error {
	keys, from, err := secretFrom(c.tokenSecret, c.tokenSecretFile, "TOKEN_SECRET", n.of("TOKEN_SECRET_FILE"))
	if err != nil {
		return err
	}
	c.TokenKeys = append(c.TokenKeys, c.KeyFile...)
	if keys != "" {
		for i, k := range strings.Split(keys, ",") {
			key, err := token.HMACKey([]byte(strings.TrimSpace(k)))
			if err != nil {
				// Say which key and what is wrong, never the key itself.
				return &configError{from, fmt.Sprintf("key %d %v", i+1, err)}
			}
			c.TokenKeys = append(c.TokenKeys, key)
		}
	}
	if c.TokenIssuer != defaultIssuer && strings.Contains(c.TokenIssuer, "://") && len(c.KeyFile) == 0 {
		c.Warnings = append(c.Warnings, "TOKEN_ISSUER is a URL but TOKEN_KEY_FILE is not set: OpenID discovery needs public keys, so it is off")
	}
	if !c.Mock && len(c.TokenKeys) == 0 {
		c.Warnings = append(c.Warnings, "login tokens are off: set TOKEN_SECRET (HS256) or TOKEN_KEY_FILE (ES256/EdDSA); logins return no token and /session, /phonenumber answer 404")
	}
	if c.Mock && len(c.TokenKeys) == 0 {
		c.TokenKeys, c.MockKey = []*token.Key{token.MockKey()}, true
	}
	return nil
}

// printUsage is -h: the table, secret rows included as variables only.
func printUsage(w io.Writer, table []setting) {
	fmt.Fprint(w, "usage: wxlogin [flags]\n       wxlogin -mock | -healthcheck | -genkey | -version\n\n"+
		"Every setting is an environment variable; most also have a flag, which beats\n"+
		"the variable. Secrets are variables or files only, never flags.\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tFLAG\tDEFAULT\tMEANING")
	for _, s := range table {
		f := "—"
		if s.flag != "" {
			f = "-" + s.flag
		}
		d := s.def
		if d == "" {
			d = "—"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.env, f, d, s.usage)
	}
	tw.Flush()
	fmt.Fprint(w, "\nActions: -healthcheck (probe /healthz, exit 0 or 1), -genkey (print a new\nP-256 key for TOKEN_KEY_FILE), -version.\n")
}
