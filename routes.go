package main

import (
	"log/slog"
	"net/http"
	"net/netip"
	"sync/atomic"

	"wxlogin/internal/oidc"
	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// mockWeChatPath is where mock mode serves its fake WeChat's pages, on our
// own port, so that a browser reaches them wherever it reaches wxlogin.
const mockWeChatPath = "/mock-wechat"

// server is the whole HTTP API. Every dependency is given to newServer, so
// a test builds a complete server in one line.
type server struct {
	wx         *wechat.Client
	tok        *token.Set     // nil: tokens off
	web        *oidc.Provider // nil: the web login is off
	m          *metrics
	apps       []string // configured AppIDs, in order
	inflight   *inflight
	rateLimit  *limiter[netip.Addr] // per client address; nil: off
	phoneLimit *limiter[[2]string]  // per AppID and openid; nil: off
	proxies    []netip.Prefix
	// unionIDSubject: mini-program tokens' sub is the unionid (TOKEN_SUBJECT)
	unionIDSubject bool
	anyApp         bool        // mock mode without WX_APPID: any well-formed AppID is an app
	draining       atomic.Bool // set on SIGTERM: /healthz answers 503
	handler        http.Handler
}

// newServer builds the API from the configuration and its dependencies;
// tok is nil when tokens are off, web when the web login is.
func newServer(cfg Config, logger *slog.Logger, wx *wechat.Client, tok *token.Set, web *oidc.Provider, m *metrics) *server {
	s := &server{
		wx: wx, tok: tok, web: web, m: m, apps: cfg.appIDs(), unionIDSubject: cfg.UnionIDSubject, anyApp: cfg.AnyApp,
		inflight:   &inflight{max: int64(cfg.MaxInflight)},
		rateLimit:  newLimiter[netip.Addr](cfg.RateLimit, limiterCap, cfg.clock()),
		phoneLimit: newLimiter[[2]string](cfg.PhoneLimit, limiterCap, cfg.clock()),
		proxies:    cfg.TrustedProxies,
	}
	mux := http.NewServeMux()
	mux.Handle("/openid", s.miniProgram(s.handleOpenID()))
	mux.Handle("/phonenumber", s.miniProgram(s.handlePhoneNumber()))
	mux.Handle("/session", getOrHead(s.handleSession()))
	mux.Handle("/.well-known/jwks.json", getOrHead(publicJSON(tok.JWKS(), errNoJWKS)))
	mux.Handle("/.well-known/openid-configuration", getOrHead(publicJSON(discovery(tok, web), errNoDiscovery)))
	mux.Handle("/authorize", s.webLogin(s.handleAuthorize()))
	mux.Handle("/callback", s.webLogin(s.handleCallback()))
	mux.Handle("/token", s.webLogin(s.handleToken()))
	mux.Handle("/userinfo", s.webLogin(s.handleUserInfo()))
	mux.Handle("/healthz", getOrHead(s.handleHealthz()))
	mux.Handle("/metrics", getOrHead(handleMetrics(m, s.inflight)))
	if cfg.mockWeChat != nil {
		mux.Handle(mockWeChatPath+"/", http.StripPrefix(mockWeChatPath, cfg.mockWeChat))
	}
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
	if ok, wait := s.rateLimit.allow(limitKey(clientAddr(r, s.proxies))); !ok {
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

// app returns the configured app named, or "": in mock mode without
// WX_APPID, any well-formed AppID is one.
func (s *server) app(named string) string {
	for _, a := range s.apps {
		if a == named {
			return a
		}
	}
	// A web client's id is never an app: its tokens (an id_token) are not
	// a mini-program's.
	if s.anyApp && wechat.IsMockAppID(named) && (s.web == nil || !s.web.IsClient(named)) {
		return named
	}
	return ""
}

// miniProgram answers 404 when no mini-program is configured: a web-only
// deployment.
func (s *server) miniProgram(next http.Handler) http.Handler {
	if len(s.apps) > 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: http.StatusNotFound, code: "not_found",
			message: "no mini-program is configured on this login service (WX_APPID): it serves the web login only"})
	})
}

// webLogin answers 404 when the web login is off.
func (s *server) webLogin(next http.Handler) http.Handler {
	if s.web != nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeError(w, errWebLoginOff) })
}

func handleNotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errNotFound)
	})
}
