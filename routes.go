package main

import (
	"log/slog"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// server is the whole HTTP API. Every dependency is given to newServer, so
// a test builds a complete server in one line.
type server struct {
	wx         *wechat.Client
	tok        *token.Set // nil: tokens off
	m          *metrics
	apps       []string // configured AppIDs, in order
	inflight   *inflight
	rateLimit  *limiter[netip.Addr] // per client address; nil: off
	phoneLimit *limiter[[2]string]  // per AppID and openid; nil: off
	proxies    []netip.Prefix
	draining   atomic.Bool // set on SIGTERM: /healthz answers 503
	handler    http.Handler
}

// newServer builds the API from the configuration and its dependencies;
// tok is nil when tokens are off.
func newServer(cfg Config, logger *slog.Logger, wx *wechat.Client, tok *token.Set, m *metrics) *server {
	s := &server{
		wx: wx, tok: tok, m: m, apps: cfg.appIDs(),
		inflight:   &inflight{max: int64(cfg.MaxInflight)},
		rateLimit:  newLimiter[netip.Addr](cfg.RateLimit, limiterCap, time.Now),
		phoneLimit: newLimiter[[2]string](cfg.PhoneLimit, limiterCap, time.Now),
		proxies:    cfg.TrustedProxies,
	}
	mux := http.NewServeMux()
	mux.Handle("/openid", s.handleOpenID())
	mux.Handle("/phonenumber", s.handlePhoneNumber())
	mux.Handle("/session", getOrHead(s.handleSession()))
	mux.Handle("/.well-known/jwks.json", getOrHead(handleJWKS(tok)))
	mux.Handle("/.well-known/openid-configuration", getOrHead(handleDiscovery(tok)))
	mux.Handle("/healthz", getOrHead(s.handleHealthz()))
	mux.Handle("/metrics", getOrHead(handleMetrics(m, s.inflight)))
	mux.Handle("/", handleNotFound())
	s.handler = logRequests(logger, s.proxies, mux)
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// drain makes /healthz answer 503, so load balancers stop sending new
// requests, while everything else is still served.
func (s *server) drain() { s.draining.Store(true) }

// limitClient applies RATE_LIMIT to the request's client address.
func (s *server) limitClient(r *http.Request) error {
	if s.rateLimit == nil {
		return nil
	}
	if ok, wait := s.rateLimit.allow(clientAddr(r, s.proxies)); !ok {
		return rateLimited("too many requests from this address; retry later", wait)
	}
	return nil
}

func (s *server) handleHealthz() http.Handler {
	type status struct {
		Status string `json:"status"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			encode(w, http.StatusServiceUnavailable, status{"draining"})
			return
		}
		encode(w, http.StatusOK, status{"ok"})
	})
}

// getOrHead answers methods other than GET and HEAD with the SPEC's 405.
func getOrHead(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, methodNotAllowed("GET, HEAD"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func handleNotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errNotFound)
	})
}
