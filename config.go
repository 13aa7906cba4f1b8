package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Config is every setting of the service, read and validated once at start.
type Config struct {
	Apps            []App // in WX_APPID order; at least one
	Addr            string
	BaseURL         string // WeChat API base, without a trailing slash
	Timeout         time.Duration
	MaxInflight     int
	Mock            bool
	TokenKeys       [][]byte    // HMAC keys: the first signs (unless KeyFile), all verify
	SigningKeys     []*tokenKey // from TOKEN_KEY_FILE: the first signs, all verify and are published
	TokenTTL        time.Duration
	TokenIssuer     string // iss of every token; an http(s) URL also turns on discovery
	PhoneLimit      rate   // per openid; zero = off
	RateLimit       rate   // per client address; zero = off
	TrustedProxies  []netip.Prefix
	DrainDelay      time.Duration
	TLSCert, TLSKey string
	TLSCertificate  *tls.Certificate // loaded at startup from TLSCert and TLSKey
	ShutdownTimeout time.Duration
	LogFormat       string
	LogLevel        slog.Level

	Healthcheck bool // -healthcheck: probe a running instance and exit
	Version     bool // -version: print the version and exit
	GenKey      bool // -genkey: print a new P-256 private key and exit

	// Warnings are things worth a WARN line once the logger exists.
	Warnings []string
}

// App is one mini-program: its AppID and AppSecret.
type App struct {
	ID     string
	Secret string // never logged
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
	defaultBaseURL     = "https://api.weixin.qq.com"
	mockAppID          = "wxmock"
	minTokenKeyLen     = 32
	defaultMaxInflight = 512
)

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

// setting is one row of the configuration table: where a value comes from,
// and what turns it into a field of Config.
type setting struct {
	env    string // the environment variable
	flag   string // the flag without its dash; "" for secrets and PORT
	def    string // default, as the user would write it ("" = none)
	usage  string
	health bool // -healthcheck reads it too (it reads nothing else)
	// parse checks the value (flag, else variable, else def) and stores
	// it. Its error is the problem only: the caller names the setting.
	parse func(v string) error
}

// settings is the configuration table: every setting the service has, in
// the order -h and the README list them. Rows that depend on another
// setting (secrets on the AppIDs, the base URL on mock mode) store the raw
// value here and are checked after the loop.
func settings(c *Config, raw map[string]string) []setting {
	keep := func(env string) func(string) error {
		return func(v string) error { raw[env] = v; return nil }
	}
	return []setting{
		{env: "WX_APPID", flag: "appid", usage: "mini-program AppID, or several separated by commas; required unless mock mode", parse: keep("WX_APPID")},
		{env: "WX_SECRET", usage: "AppSecret of the one AppID (or WX_SECRET_FILE, WX_SECRET_DIR)", parse: keep("WX_SECRET")},
		{env: "WX_SECRET_FILE", flag: "secret-file", usage: "file holding the AppSecret (Docker/Kubernetes secrets)", parse: keep("WX_SECRET_FILE")},
		{env: "WX_SECRET_DIR", flag: "secret-dir", usage: "directory with one AppSecret file per AppID, named by the AppID", parse: keep("WX_SECRET_DIR")},
		{env: "ADDR", flag: "addr", def: ":" + defaultPort, usage: "listen address host:port (default :$PORT when PORT is set)", health: true, parse: listenAddr(&c.Addr)},
		{env: "PORT", usage: "port to listen on when ADDR is not set (Cloud Hosting, Heroku-style platforms)", health: true, parse: keep("PORT")},
		{env: "WX_API_BASE_URL", flag: "wx-base-url", def: defaultBaseURL, usage: "WeChat API base URL; http:// only for tests and internal gateways", parse: keep("WX_API_BASE_URL")},
		{env: "WX_TIMEOUT", flag: "wx-timeout", def: "5s", usage: "deadline for one request's whole upstream work, retries included", parse: duration(&c.Timeout, time.Nanosecond)},
		{env: "MAX_INFLIGHT", flag: "max-inflight", def: strconv.Itoa(defaultMaxInflight), usage: "requests waiting for WeChat at once; beyond it, 503 at once", parse: atLeastOne(&c.MaxInflight)},
		{env: "WX_MOCK", flag: "mock", usage: "mock mode: a fake WeChat built in, no credentials needed (1, true, yes)", parse: onOff(&c.Mock)},
		{env: "TOKEN_SECRET", usage: "HMAC key(s) for HS256 login tokens, comma-separated, each >= 32 bytes", parse: keep("TOKEN_SECRET")},
		{env: "TOKEN_SECRET_FILE", flag: "token-secret-file", usage: "the same, from a file", parse: keep("TOKEN_SECRET_FILE")},
		{env: "TOKEN_TTL", flag: "token-ttl", def: "2h", usage: "lifetime of a login token", parse: duration(&c.TokenTTL, time.Second)},
		{env: "TOKEN_KEY_FILE", flag: "token-key-file", usage: "PEM private key(s), P-256 or Ed25519, for ES256/EdDSA tokens and the JWKS (wxlogin -genkey makes one)", parse: keyFile(&c.SigningKeys)},
		{env: "TOKEN_ISSUER", flag: "token-issuer", def: tokenIssuer, usage: "iss of the tokens; an https:// URL also serves OpenID discovery", parse: issuer(&c.TokenIssuer)},
		{env: "PHONE_LIMIT", flag: "phone-limit", def: "10/1h", usage: "phone-number requests per user, N/duration; 0 = off", parse: rateSetting(&c.PhoneLimit)},
		{env: "RATE_LIMIT", flag: "rate-limit", def: "off", usage: "logins and phone requests per client address, N/duration", parse: rateSetting(&c.RateLimit)},
		{env: "TRUSTED_PROXIES", flag: "trusted-proxies", usage: "CIDRs or addresses whose X-Forwarded-For is believed, comma-separated", parse: prefixes(&c.TrustedProxies)},
		{env: "DRAIN_DELAY", flag: "drain-delay", def: "0s", usage: "after SIGTERM, serve this long with /healthz 503 before shutting down", parse: duration(&c.DrainDelay, 0)},
		{env: "TLS_CERT_FILE", flag: "tls-cert", usage: "TLS certificate file: serve HTTPS (and HTTP/2); re-read on SIGHUP", health: true, parse: keep("TLS_CERT_FILE")},
		{env: "TLS_KEY_FILE", flag: "tls-key", usage: "TLS private key file; both or neither", health: true, parse: keep("TLS_KEY_FILE")},
		{env: "SHUTDOWN_TIMEOUT", flag: "shutdown-timeout", def: "10s", usage: "how long in-flight requests get after SIGTERM/SIGINT", parse: duration(&c.ShutdownTimeout, 0)},
		{env: "LOG_FORMAT", flag: "log-format", def: "json", usage: "json or text (to stderr)", parse: oneOf(&c.LogFormat, "json", "text")},
		{env: "LOG_LEVEL", flag: "log-level", def: "info", usage: "debug, info, warn or error", parse: logLevel(&c.LogLevel)},
	}
}

// flagValue is a string flag that remembers whether it was given; a
// boolean one (-mock) needs no value.
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

// loadConfig reads flags (args, without the program name) and the
// environment through getenv. A flag beats its variable, which beats the
// default; secrets come only from the environment or from files.
func loadConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	var c Config
	raw := map[string]string{}
	table := settings(&c, raw)

	fs := flag.NewFlagSet("wxlogin", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned as one line, not printed here
	fs.Usage = func() {}
	flags := map[string]*flagValue{}
	for _, s := range table {
		if s.flag != "" {
			flags[s.env] = &flagValue{boolean: s.env == "WX_MOCK"}
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

	// name is what an error blames: the flag when it was given, else the
	// variable.
	name, given := map[string]string{}, map[string]bool{}
	for _, s := range table {
		if c.Healthcheck && !s.health {
			continue // -healthcheck works whatever else the environment holds
		}
		v, n := getenv(s.env), s.env
		if f := flags[s.env]; f != nil && f.set {
			v, n = f.value, "-"+s.flag
		}
		name[s.env], given[s.env] = n, v != ""
		if v == "" {
			v = s.def
		}
		if err := s.parse(v); err != nil {
			return Config{}, c.settingError(&configError{n, err.Error()})
		}
	}
	if err := c.crossChecks(raw, name, given); err != nil {
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

// crossChecks applies the rules that join several settings: the listen
// port, TLS pairs, the AppIDs and their secrets, and the token keys.
func (c *Config) crossChecks(raw, name map[string]string, given map[string]bool) error {
	if port := raw["PORT"]; port != "" {
		if _, err := parsePort(port); err != nil {
			return &configError{"PORT", err.Error()}
		}
		if !given["ADDR"] {
			c.Addr = ":" + port
		}
	}
	cert, key := raw["TLS_CERT_FILE"], raw["TLS_KEY_FILE"]
	switch {
	case cert != "" && key == "":
		return &configError{name["TLS_KEY_FILE"], "required when " + name["TLS_CERT_FILE"] + " is set (both or neither)"}
	case cert == "" && key != "":
		return &configError{name["TLS_CERT_FILE"], "required when " + name["TLS_KEY_FILE"] + " is set (both or neither)"}
	}
	c.TLSCert, c.TLSKey = cert, key
	if c.Healthcheck {
		return nil // it needs to know TLS is on, not the certificate
	}
	if cert != "" {
		var err error
		if c.TLSCertificate, err = loadKeyPair(cert, key, name["TLS_CERT_FILE"], name["TLS_KEY_FILE"]); err != nil {
			return err
		}
	}
	if err := c.apps(raw, name, given); err != nil {
		return err
	}

	keys, from, err := secretFrom(raw, name, "TOKEN_SECRET", "TOKEN_SECRET_FILE")
	if err != nil {
		return err
	}
	if keys != "" {
		if c.TokenKeys, err = parseTokenKeys(keys); err != nil {
			return &configError{from, err.Error()}
		}
	}
	if c.TokenIssuer != tokenIssuer && strings.Contains(c.TokenIssuer, "://") && len(c.SigningKeys) == 0 {
		c.Warnings = append(c.Warnings, "TOKEN_ISSUER is a URL but TOKEN_KEY_FILE is not set: OpenID discovery needs public keys, so it is off")
	}
	if !c.Mock && len(c.TokenKeys) == 0 && len(c.SigningKeys) == 0 {
		c.Warnings = append(c.Warnings, "login tokens are off: set TOKEN_SECRET (HS256) or TOKEN_KEY_FILE (ES256/EdDSA); logins return no token and /session, /phonenumber answer 404")
	}
	return nil
}

// apps reads the AppIDs and their secrets, and the base URL they are used
// with. Mock mode needs neither secrets nor a base URL.
func (c *Config) apps(raw, name map[string]string, given map[string]bool) error {
	var ids []string
	for _, id := range strings.Split(raw["WX_APPID"], ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			return &configError{name["WX_APPID"], fmt.Sprintf("%q is listed twice", id)}
		}
		seen[id] = true
		if !c.Mock && !isAppID(id) || c.Mock && !validMockAppID(id) {
			return &configError{name["WX_APPID"], fmt.Sprintf("%q is not an AppID (wx and 16 lowercase hex digits)", id)}
		}
	}
	if c.Mock {
		if len(ids) == 0 {
			ids = []string{mockAppID}
		}
		for _, id := range ids {
			c.Apps = append(c.Apps, App{ID: id, Secret: mockSecret})
		}
		if raw["WX_SECRET"] != "" || raw["WX_SECRET_FILE"] != "" || raw["WX_SECRET_DIR"] != "" {
			c.Warnings = append(c.Warnings, "mock mode ignores WX_SECRET, WX_SECRET_FILE and WX_SECRET_DIR")
		}
		if given["WX_API_BASE_URL"] {
			c.Warnings = append(c.Warnings, "mock mode ignores "+name["WX_API_BASE_URL"])
		}
		return nil
	}
	if len(ids) == 0 {
		return &configError{"WX_APPID", "required (or run with -mock to try the service without credentials)"}
	}
	var err error
	if c.BaseURL, err = parseBaseURL(raw["WX_API_BASE_URL"]); err != nil {
		return &configError{name["WX_API_BASE_URL"], err.Error()}
	}
	if strings.HasPrefix(c.BaseURL, "http://") {
		c.Warnings = append(c.Warnings, "WeChat API base URL is plain http: the AppSecret travels unencrypted")
	}

	dir := raw["WX_SECRET_DIR"]
	if len(ids) > 1 {
		for _, env := range []string{"WX_SECRET", "WX_SECRET_FILE"} {
			if raw[env] != "" {
				return &configError{name[env], fmt.Sprintf("one secret for %d AppIDs: put one file per AppID in WX_SECRET_DIR", len(ids))}
			}
		}
		if dir == "" {
			return &configError{"WX_SECRET_DIR", fmt.Sprintf("required for %d AppIDs: a directory with one AppSecret file per AppID", len(ids))}
		}
	}
	if dir != "" {
		if raw["WX_SECRET"] != "" || raw["WX_SECRET_FILE"] != "" {
			return &configError{problem: name["WX_SECRET_DIR"] + " and WX_SECRET or WX_SECRET_FILE are both set: give only one"}
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return &configError{name["WX_SECRET_DIR"], fmt.Sprintf("%s is not a readable directory", dir)}
		}
		for _, id := range ids {
			s, err := readSecretFile(filepath.Join(dir, id))
			if err != nil {
				return &configError{name["WX_SECRET_DIR"], "AppID " + id + ": " + err.Error()}
			}
			c.Apps = append(c.Apps, App{ID: id, Secret: s})
		}
		return nil
	}
	secret, _, err := secretFrom(raw, name, "WX_SECRET", "WX_SECRET_FILE")
	if err != nil {
		return err
	}
	if secret == "" {
		return &configError{"WX_SECRET", "required: set WX_SECRET, WX_SECRET_FILE or WX_SECRET_DIR (or run with -mock)"}
	}
	c.Apps = []App{{ID: ids[0], Secret: secret}}
	return nil
}

// isAppID reports whether id has the shape of a real AppID: wx and 16
// lowercase hex digits.
func isAppID(id string) bool {
	if len(id) != 18 || !strings.HasPrefix(id, "wx") {
		return false
	}
	for i := 2; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// validMockAppID accepts the made-up AppIDs of mock mode: 1–32 characters
// of A-Z a-z 0-9 - _.
func validMockAppID(id string) bool { return len(id) <= 32 && checkCode(id) == nil }

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

// Parsers of the table. Each stores into its field and returns the problem
// with the value, without naming the setting.

func duration(d *time.Duration, lowest time.Duration) func(string) error {
	return func(v string) error {
		x, err := time.ParseDuration(strings.TrimSpace(v))
		switch {
		case err != nil:
			return fmt.Errorf("%q is not a duration such as 5s or 2h", v)
		case x >= lowest:
			*d = x
			return nil
		case lowest == 0:
			return fmt.Errorf("%q must not be negative", v)
		case lowest == time.Nanosecond:
			return fmt.Errorf("%q must be positive", v)
		}
		return fmt.Errorf("%q must be at least %v", v, lowest)
	}
}

func atLeastOne(n *int) func(string) error {
	return func(v string) error {
		x, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || x < 1 {
			return fmt.Errorf("%q is not a whole number of at least 1", v)
		}
		*n = x
		return nil
	}
}

func onOff(b *bool) func(string) error {
	return func(v string) error {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "1", "true", "yes":
			*b = true
		case "", "0", "false", "no":
			*b = false
		default:
			return fmt.Errorf("%q is not one of 1, true, yes, 0, false, no", v)
		}
		return nil
	}
}

func oneOf(s *string, choices ...string) func(string) error {
	return func(v string) error {
		x := strings.ToLower(strings.TrimSpace(v))
		for _, c := range choices {
			if x == c {
				*s = x
				return nil
			}
		}
		return fmt.Errorf("%q is not %s", v, strings.Join(choices, " or "))
	}
}

func logLevel(l *slog.Level) func(string) error {
	return func(v string) error {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "info":
			*l = slog.LevelInfo
		case "debug":
			*l = slog.LevelDebug
		case "warn", "warning":
			*l = slog.LevelWarn
		case "error":
			*l = slog.LevelError
		default:
			return fmt.Errorf("%q is not debug, info, warn or error", v)
		}
		return nil
	}
}

// listenAddr validates a listen address, host:port with a numeric port.
func listenAddr(addr *string) func(string) error {
	return func(v string) error {
		_, port, err := net.SplitHostPort(v)
		if err != nil {
			return fmt.Errorf("%q is not host:port (for example :2020)", v)
		}
		if _, err := parsePort(port); err != nil {
			return err
		}
		*addr = v
		return nil
	}
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	return n, nil
}

// issuer accepts a name such as wxlogin, or an absolute http(s) URL without
// query or fragment (its trailing slash dropped), which turns on discovery.
func issuer(s *string) func(string) error {
	return func(v string) error {
		v = strings.TrimSpace(v)
		if v == "" {
			return errors.New("must not be empty")
		}
		if strings.Contains(v, "://") {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
				u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(v, "?") || strings.HasSuffix(v, "#") {
				return fmt.Errorf("%q is not an absolute https:// URL without query or fragment", v)
			}
			v = strings.TrimRight(v, "/")
		}
		*s = v
		return nil
	}
}

// rate is a limit of n events per period; the zero rate is no limit.
type rate struct {
	n   int
	per time.Duration
}

func (r rate) String() string {
	if r.n == 0 {
		return "off"
	}
	return strconv.Itoa(r.n) + "/" + r.per.String()
}

// rateSetting reads N/duration (600/1m, 10/1h); 0, off or empty is no limit.
func rateSetting(r *rate) func(string) error {
	return func(v string) error {
		v = strings.TrimSpace(v)
		switch strings.ToLower(v) {
		case "", "0", "off":
			*r = rate{}
			return nil
		}
		ns, ds, ok := strings.Cut(v, "/")
		n, err := strconv.Atoi(ns)
		if !ok || err != nil || n < 1 {
			return fmt.Errorf("%q is not N/duration with N at least 1, such as 600/1m or 10/1h (0 = off)", v)
		}
		d, err := time.ParseDuration(ds)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not N/duration with a positive duration, such as 600/1m or 10/1h", v)
		}
		*r = rate{n, d}
		return nil
	}
}

// prefixes reads comma-separated CIDRs or single addresses.
func prefixes(p *[]netip.Prefix) func(string) error {
	return func(v string) error {
		*p = nil
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			if pre, err := netip.ParsePrefix(s); err == nil {
				*p = append(*p, pre.Masked())
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return fmt.Errorf("%q is not an IP address or CIDR", s)
			}
			a = a.Unmap()
			*p = append(*p, netip.PrefixFrom(a, a.BitLen()))
		}
		return nil
	}
}

// secretFrom returns a secret given directly (the variable env) or in a
// file (fileEnv), trimmed, and the name to blame for it. Giving both is
// ambiguous; an unreadable or empty file is an error. An empty result
// means neither was given.
func secretFrom(raw, name map[string]string, env, fileEnv string) (secret, from string, err error) {
	value, file := raw[env], raw[fileEnv]
	if value != "" && file != "" {
		return "", "", &configError{problem: env + " and " + name[fileEnv] + " are both set: give only one"}
	}
	if file == "" {
		return strings.TrimSpace(value), env, nil
	}
	s, err := readSecretFile(file)
	if err != nil {
		return "", "", &configError{name[fileEnv], err.Error()}
	}
	return s, name[fileEnv], nil
}

// readSecretFile reads a secret file, trimmed; unreadable or empty is an
// error, which names the file and never its content.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err // a *PathError: the path and the reason
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("file %s is empty", path)
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
