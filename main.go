// Command wxlogin is the login backend for WeChat mini-programs.
//
// A mini-program calls wx.login(), POSTs the code to /openid, and gets the
// user's openid (and unionid) back from WeChat's code2Session, plus a signed
// login token (HS256 with TOKEN_SECRET, ES256/EdDSA with TOKEN_KEY_FILE).
// POST /phonenumber exchanges getPhoneNumber's code for the user's number.
// The AppSecret, the access_token and session_key never leave the process.
//
// Usage:
//
//	wxlogin -mock                                  # try it: a fake WeChat built in
//	WX_APPID=wx… WX_SECRET_FILE=/run/secrets/wx TOKEN_KEY_FILE=key.pem wxlogin
//	wxlogin -genkey > key.pem                      # a P-256 key for TOKEN_KEY_FILE
//	wxlogin -healthcheck                           # probe a running instance
//
// Settings come from environment variables, most with a flag too; see
// README.md or wxlogin -h.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "wxlogin:", err)
		if _, ok := errors.AsType[*configError](err); ok {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

const (
	maxHeaderBytes  = 16 << 10
	healthcheckWait = 5 * time.Second
)

// serverTimeouts bound what a slow or idle client can hold: its headers must
// arrive within readHeader, the whole request within read, and an idle
// keep-alive connection is closed after idle.
type serverTimeouts struct{ readHeader, read, idle time.Duration }

var productionTimeouts = serverTimeouts{readHeader: 10 * time.Second, read: 30 * time.Second, idle: 120 * time.Second}

// newHTTPServer is the http.Server that serves handler. A login may take
// wxTimeout on top of reading its request, so writes get that much longer.
func newHTTPServer(handler http.Handler, logger *slog.Logger, wxTimeout time.Duration, t serverTimeouts) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		WriteTimeout:      t.read + wxTimeout + 5*time.Second,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(serverErrors{logger}, "", 0),
	}
}

// serverErrors takes net/http's own error lines into the log: at warn,
// except TLS handshake errors (scanners, mobile clients giving up), which
// say nothing an operator can act on and go to debug.
type serverErrors struct{ logger *slog.Logger }

func (e serverErrors) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		level = slog.LevelDebug
	}
	e.logger.Log(context.Background(), level, msg)
	return len(p), nil
}

// run is the whole program: it reads the configuration, builds the server
// and serves until ctx is done, then shuts down gracefully. A *configError
// means bad settings (exit 2); any other error exits 1.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(args[1:], getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case cfg.Version:
		fmt.Fprintln(stderr, "wxlogin", version())
		return nil
	case cfg.GenKey:
		pem, err := token.GenerateKey()
		if err != nil {
			return err
		}
		_, err = stdout.Write(pem)
		return err
	}
	if cfg.Healthcheck {
		return healthcheck(ctx, cfg)
	}

	logger := newLogger(cfg, stderr)
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}
	baseURL := cfg.BaseURL
	if cfg.Mock {
		fake := wechat.NewFake(wechat.FakeOptions{Apps: cfg.Apps})
		stopMock, url, err := serveLoopback(fake)
		if err != nil {
			return fmt.Errorf("mock wechat: %w", err)
		}
		defer stopMock()
		baseURL = url
		msg := "mock mode: logins go to a fake WeChat built into this process and every openid and phone number is fake; never use it in production"
		if cfg.MockKey {
			msg += "; login tokens are signed with a fixed, public development key"
		}
		logger.Warn(msg, "appid", strings.Join(cfg.appIDs(), ","), "fake_wechat", baseURL)
	}

	v := version()
	m := newMetrics(v, cfg.appIDs())
	wx := wechat.NewClient(wechat.Options{
		BaseURL: baseURL, Apps: cfg.Apps, Timeout: cfg.Timeout, MaxIdle: cfg.MaxInflight,
		Observe:      m.upstream,
		TokenFetched: func(err error) { m.stableToken(resultOf(err)) },
	})
	tok := token.New(token.Options{Keys: cfg.TokenKeys, TTL: cfg.TokenTTL, Issuer: cfg.TokenIssuer})
	api := newServer(cfg, logger, wx, tok, m)
	srv := newHTTPServer(api, logger, cfg.Timeout, productionTimeouts)
	if cfg.TLSCert != "" {
		certs := newCertReloader(cfg.TLSCert, cfg.TLSKey, cfg.TLSCertificate)
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.getCertificate}
		stopReload := reloadOnHangup(ctx, certs, logger)
		defer stopReload()
		logger.Info("serving HTTPS; SIGHUP re-reads the certificate", "cert", cfg.TLSCert, "not_after", notAfter(cfg.TLSCertificate))
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	signing := "off"
	if tok != nil {
		signing = tok.Alg()
	}
	logger.Info("listening", "addr", ln.Addr().String(), "tls", srv.TLSConfig != nil, "version", v,
		"mock", cfg.Mock, "wechat", baseURL, "apps", len(cfg.Apps), "max_inflight", cfg.MaxInflight,
		"tokens", signing, "token_keys", len(cfg.TokenKeys),
		"phone_limit", cfg.PhoneLimit.String(), "rate_limit", cfg.RateLimit.String(), "drain_delay", cfg.DrainDelay.String())

	served := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			served <- srv.ServeTLS(ln, "", "") // HTTP/2 is negotiated by default
			return
		}
		served <- srv.Serve(ln)
	}()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	if cfg.DrainDelay > 0 {
		// Load balancers and Kubernetes endpoints see /healthz fail and stop
		// sending; until then, everything is served as usual.
		api.drain()
		logger.Info("draining: /healthz answers 503, requests are still served", "for", cfg.DrainDelay.String())
		t := time.NewTimer(cfg.DrainDelay)
		select {
		case <-t.C:
		case err := <-served:
			t.Stop()
			return fmt.Errorf("serve: %w", err)
		}
	}

	// A fresh context: ctx is already done, and Shutdown given a done
	// context would drain nothing.
	logger.Info("shutting down", "grace", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: requests still in flight after %v, closed them", cfg.ShutdownTimeout)
	}
	logger.Info("stopped")
	return nil
}

// reloadOnHangup re-reads the certificate on every SIGHUP until ctx is done
// or stop is called. A bad file keeps the previous certificate in use.
func reloadOnHangup(ctx context.Context, certs *certReloader, logger *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				c, err := certs.reload()
				if err != nil {
					logger.Error("TLS certificate reload failed; still serving the previous certificate", "error", err.Error())
					continue
				}
				logger.Info("TLS certificate reloaded", "cert", certs.certFile, "not_after", notAfter(c))
			case <-ctx.Done():
				return
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// serveLoopback serves h on a loopback port: mock mode's fake WeChat,
// which logins reach through the same client as real ones.
func serveLoopback(h http.Handler) (stop func(), url string, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: productionTimeouts.readHeader}
	go srv.Serve(ln)
	return func() { srv.Close() }, "http://" + ln.Addr().String(), nil
}

// healthcheck calls /healthz on this instance's port and reports whether it
// answered 200, so that an image without curl can have a HEALTHCHECK.
func healthcheck(ctx context.Context, cfg Config) error {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme, tr := "http", &http.Transport{Proxy: nil}
	if cfg.TLSCert != "" {
		// It is our own process on the same machine: no name to verify.
		scheme, tr.TLSClientConfig = "https", &tls.Config{InsecureSkipVerify: true}
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckWait)
	defer cancel()
	url := scheme + "://" + net.JoinHostPort(host, port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", url, resp.Status)
	}
	return nil
}

// buildVersion is set at link time by the Dockerfile:
// -ldflags "-X main.buildVersion=v1.2.3". It is never written at run time.
var buildVersion string

// version is the version the binary was built as: the one given at link
// time, else the module version and VCS revision Go recorded.
func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v, rev, dirty := bi.Main.Version, "", ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		return v + " " + rev + dirty
	}
	return v
}
