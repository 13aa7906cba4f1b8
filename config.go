package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"wxlogin/internal/oidc"
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
	OpenBaseURL     string // WeChat's authorization pages, without a trailing slash
	UnionIDSubject  bool   // TOKEN_SUBJECT=unionid: mini-program tokens' sub is the unionid

	// Straight from the table, for the rules after it.
	secret, secretFile, secretDir string
	tokenSecret, tokenSecretFile  string
	port                          string
	baseURL                       string
	clientsFile                   string
	keyFile                       string // TOKEN_KEY_FILE's path
	web, oa                       webApp

	// Actions: do this and exit.
	Healthcheck bool   // -healthcheck: probe a running instance
	Version     bool   // -version: print the version
	GenKey      bool   // -genkey: print a new private key
	GenKeyAlg   string // -alg: its algorithm

	// Made by the rules that join settings.
	Apps           []wechat.App  // the mini-programs, with their secrets; in mock mode, fake ones
	Clients        []oidc.Client // the relying parties: the web login is on when there are any
	WebApp, OAApp  wechat.App    // the website app and the official account; ID "" when not set
	MockKey        bool          // mock mode signs with the public development key
	AnyApp         bool          // mock mode without WX_APPID: any well-formed AppID a request names is served
	BaseURL        string        // WeChat API base, without a trailing slash; "" in mock mode
	TokenKeys      []*token.Key  // the key file's keys, then TOKEN_SECRET's: the first signs
	TLSCertificate *tls.Certificate
	Warnings       []string // worth a WARN line once the logger exists

	mockWeChat http.Handler // mock mode's fake WeChat, whose pages the browser reaches on our port

	// Test hooks.
	now        func() time.Time  // the clock of tokens, the web login and limits; time.Now if nil
	transport  http.RoundTripper // to WeChat, instead of the tuned transport
	retryDelay time.Duration     // the first backoff before a retry
}

// clock is the service's clock: time.Now, or a test's.
func (c Config) clock() func() time.Time {
	if c.now != nil {
		return c.now
	}
	return time.Now
}

// wechatApps are every WeChat app the service calls: the mini-programs
// and the web login's apps.
func (c Config) wechatApps() []wechat.App {
	apps := slices.Clone(c.Apps)
	for _, a := range []wechat.App{c.WebApp, c.OAApp} {
		if a.ID != "" {
			apps = append(apps, a)
		}
	}
	return apps
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
		{env: "WX_APPID", flag: "appid", usage: "mini-program AppID, or several separated by commas; required unless mock mode or the web login alone", parse: list(&c.AppIDs)},
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
		{env: "TOKEN_TTL", flag: "token-ttl", def: "2h", usage: "lifetime of the tokens wxlogin signs (login tokens, and the web login's)", parse: duration(&c.TokenTTL, time.Second)},
		{env: "TOKEN_KEY_FILE", flag: "token-key-file", usage: "PEM private key(s), P-256, Ed25519 or RSA, for ES256/EdDSA/RS256 tokens and the JWKS (wxlogin -genkey makes one)", parse: keyFile(&c.KeyFile, &c.keyFile)},
		{env: "TOKEN_ISSUER", flag: "token-issuer", def: defaultIssuer, usage: "iss of the tokens; an https:// (or http://) URL also serves OpenID discovery", parse: issuer(&c.TokenIssuer)},
		{env: "PHONE_LIMIT", flag: "phone-limit", def: "10/1h", usage: "phone-number requests per user, N/duration; 0 = off", parse: rateSetting(&c.PhoneLimit)},
		{env: "RATE_LIMIT", flag: "rate-limit", def: "off", usage: "logins, phone requests, /callback and /token per client address (IPv6: per /64), N/duration", parse: rateSetting(&c.RateLimit)},
		{env: "TRUSTED_PROXIES", flag: "trusted-proxies", usage: "CIDRs or addresses whose X-Forwarded-For is believed, comma-separated", parse: prefixes(&c.TrustedProxies)},
		{env: "DRAIN_DELAY", flag: "drain-delay", def: "0s", usage: "after SIGTERM, serve this long with /healthz 503 before shutting down", parse: duration(&c.DrainDelay, 0)},
		{env: "TLS_CERT_FILE", flag: "tls-cert", usage: "TLS certificate file: serve HTTPS (and HTTP/2); re-read on SIGHUP", health: true, parse: text(&c.TLSCert)},
		{env: "TLS_KEY_FILE", flag: "tls-key", usage: "TLS private key file; both or neither", health: true, parse: text(&c.TLSKey)},
		{env: "SHUTDOWN_TIMEOUT", flag: "shutdown-timeout", def: "10s", usage: "how long in-flight requests get after SIGTERM/SIGINT", parse: duration(&c.ShutdownTimeout, 0)},
		{env: "LOG_FORMAT", flag: "log-format", def: "json", usage: "json or text (to stderr)", parse: oneOf(&c.LogFormat, "json", "text")},
		{env: "LOG_LEVEL", flag: "log-level", def: "info", usage: "debug, info, warn or error", parse: logLevel(&c.LogLevel)},
		{env: "OIDC_CLIENTS_FILE", flag: "oidc-clients", usage: "JSON file of the web login's OpenID Connect clients; turns the provider on", parse: text(&c.clientsFile)},
		{env: "WX_WEB_APPID", flag: "web-appid", usage: "Open Platform website app: QR-code login in desktop browsers", parse: text(&c.web.id)},
		{env: "WX_WEB_SECRET", usage: "its AppSecret (or WX_WEB_SECRET_FILE, or WX_SECRET_DIR/<AppID>)", parse: text(&c.web.secret)},
		{env: "WX_WEB_SECRET_FILE", flag: "web-secret-file", usage: "file holding the website app's AppSecret", parse: text(&c.web.secretFile)},
		{env: "WX_OA_APPID", flag: "oa-appid", usage: "official account (service account): web login inside WeChat", parse: text(&c.oa.id)},
		{env: "WX_OA_SECRET", usage: "its AppSecret (or WX_OA_SECRET_FILE, or WX_SECRET_DIR/<AppID>)", parse: text(&c.oa.secret)},
		{env: "WX_OA_SECRET_FILE", flag: "oa-secret-file", usage: "file holding the official account's AppSecret", parse: text(&c.oa.secretFile)},
		{env: "WX_OPEN_BASE_URL", flag: "wx-open-base-url", def: defaultOpenBaseURL, usage: "base of WeChat's authorization pages", parse: baseURL(&c.OpenBaseURL)},
		{env: "TOKEN_SUBJECT", flag: "token-subject", def: "openid", usage: "sub of mini-program tokens: openid, or unionid to match the web login's sub", parse: subject(&c.UnionIDSubject)},
	}
}

// webApp is the settings of a web login's WeChat app, before the rules.
type webApp struct{ id, secret, secretFile string }

const defaultOpenBaseURL = "https://open.weixin.qq.com"

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
	fs.BoolVar(&c.GenKey, "genkey", false, "print a new private key (PKCS#8 PEM) for TOKEN_KEY_FILE and exit")
	fs.StringVar(&c.GenKeyAlg, "alg", token.ES256, "the algorithm of -genkey's key: ES256, EdDSA or RS256")
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
	algGiven := false
	fs.Visit(func(f *flag.Flag) { algGiven = algGiven || f.Name == "alg" })
	switch {
	case algGiven && !c.GenKey:
		return Config{}, &configError{"-alg", "only with -genkey"}
	case c.GenKey && !slices.Contains([]string{token.ES256, token.EdDSA, token.RS256}, c.GenKeyAlg):
		return Config{}, &configError{"-alg", fmt.Sprintf("%q is not ES256, EdDSA or RS256", c.GenKeyAlg)}
	case c.Version || c.GenKey:
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

// printUsage is -h: the table, secret rows included as variables only.
func printUsage(w io.Writer, table []setting) {
	fmt.Fprint(w, "usage: wxlogin [flags]\n       wxlogin -mock | -healthcheck | -genkey [-alg ES256|EdDSA|RS256] | -version\n\n"+
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
	fmt.Fprint(w, "\nActions: -healthcheck (probe /healthz, exit 0 or 1), -genkey (print a new\nprivate key for TOKEN_KEY_FILE: -alg ES256, the default, EdDSA or RS256), -version.\n")
}
