package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// Distinctive values, so a test can search logs and errors for them.
const (
	testAppID  = "wx0123456789abcdef"
	testSecret = "S3cretAppSecretValue9f8e7d"
	testKey    = "0123456789abcdef0123456789abcdef-test-key"
)

var testApps = []wechat.App{{ID: testAppID, Secret: testSecret}}

// newFake starts the one fake WeChat on loopback for apps, recording every
// request.
func newFake(t testing.TB, apps []wechat.App) (*wechat.Fake, *httptest.Server) {
	t.Helper()
	f := wechat.NewFake(wechat.FakeOptions{Apps: apps, Record: true})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// wechatJSON answers like WeChat: JSON as text/plain with HTTP 200.
func wechatJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, body)
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines decodes the JSON log lines written so far.
func (b *syncBuffer) lines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// testService is the whole HTTP API served on loopback, talking to the
// fake WeChat through the real client.
type testService struct {
	*httptest.Server
	wechat  *wechat.Fake
	cfg     Config
	tok     *token.Set // nil: tokens off
	api     *server
	metrics *metrics
	logs    *syncBuffer
}

// serviceOption changes the configuration a test service is built from.
type serviceOption func(*Config)

func withMaxInflight(n int) serviceOption { return func(c *Config) { c.MaxInflight = n } }

// withConfig changes the configuration the server is built from.
func withConfig(f func(*Config)) serviceOption { return serviceOption(f) }

// withTokens turns HS256 tokens on with these keys.
func withTokens(keys ...string) serviceOption {
	return func(c *Config) { c.TokenKeys = hmacKeys(keys...) }
}

// withClock is the tokens' clock.
func withClock(now func() time.Time) serviceOption {
	return func(c *Config) { c.now = now }
}

// hmacKeys is TOKEN_SECRET's keys as loadConfig makes them.
func hmacKeys(keys ...string) []*token.Key {
	var ks []*token.Key
	for _, k := range keys {
		key, err := token.HMACKey([]byte(k))
		if err != nil {
			panic(err)
		}
		ks = append(ks, key)
	}
	return ks
}

// testConfig is the configuration of a test service: one app, no limits,
// tokens off.
func testConfig() Config {
	return Config{Apps: testApps, MaxInflight: 16, Timeout: 2 * time.Second, TokenTTL: 2 * time.Hour, TokenIssuer: defaultIssuer}
}

// newTestService builds the service as run does, pointed at a fresh fake
// WeChat that knows the configured apps.
func newTestService(t testing.TB, opts ...serviceOption) *testService {
	t.Helper()
	cfg := testConfig()
	for _, o := range opts {
		o(&cfg)
	}
	fake, srv := newFake(t, cfg.Apps)
	s := &testService{wechat: fake, cfg: cfg, logs: &syncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s.metrics = newMetrics("test", cfg.appIDs())
	wx := wechat.NewClient(wechat.Options{
		BaseURL: srv.URL, Apps: cfg.Apps, Timeout: cfg.Timeout, MaxIdle: cfg.MaxInflight,
		RetryDelay: time.Millisecond, Observe: s.metrics.upstream,
		TokenFetched: func(err error) { s.metrics.stableToken(resultOf(err)) },
	})
	s.tok = token.New(token.Options{Keys: cfg.TokenKeys, TTL: cfg.TokenTTL, Issuer: cfg.TokenIssuer, Now: cfg.now})
	s.api = newServer(cfg, logger, wx, s.tok, s.metrics)
	s.Server = httptest.NewServer(s.api)
	t.Cleanup(s.Close)
	return s
}

// answer is a decoded response.
type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a answer) str(key string) string { s, _ := a.body[key].(string); return s }

// do sends a request and decodes the JSON answer.
func do(t testing.TB, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL.Path, err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if req.Method != http.MethodHead {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("%s %s: body %q is not a JSON object: %v", req.Method, req.URL.Path, raw, err)
		}
	}
	return a
}

// login POSTs a JSON body with the given code to /openid.
func (s *testService) login(t testing.TB, code string) answer {
	t.Helper()
	return loginAt(t, s.URL, code)
}

func (s *testService) post(t testing.TB, contentType, body string) answer {
	t.Helper()
	return postAt(t, s.URL, contentType, body)
}

// loginToken logs in and returns the token.
func (s *testService) loginToken(t testing.TB, code string) string {
	t.Helper()
	a := s.login(t, code)
	if a.status != 200 || a.str("token") == "" {
		t.Fatalf("login = %d %s", a.status, a.raw)
	}
	return a.str("token")
}

// loginAt POSTs {"code": code} to base's /openid.
func loginAt(t testing.TB, base, code string) answer {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"code": code})
	return postAt(t, base, "application/json", string(body))
}

func postAt(t testing.TB, base, contentType, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/openid", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(t, req)
}

// bearerRequest is a request with the token as Authorization: Bearer.
func bearerRequest(method, url, tok string) *http.Request {
	req, _ := http.NewRequest(method, url, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req
}

// wantError checks an answer is the SPEC's error shape with this status
// and code.
func wantError(t testing.TB, a answer, status int, code string) {
	t.Helper()
	if a.status != status || a.str("error") != code {
		t.Fatalf("answer = %d %s, want %d with error %q", a.status, a.raw, status, code)
	}
	if a.str("message") == "" {
		t.Errorf("error answer %s has no message", a.raw)
	}
	if len(a.body) != 2 {
		t.Errorf("error answer %s has fields beyond error and message", a.raw)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q, want application/json; charset=utf-8", ct)
	}
	if a.header.Get("X-Request-Id") == "" {
		t.Errorf("error answer has no X-Request-Id")
	}
}

// fixedClock is a clock stopped at t.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// mustRequest is a request without a body.
func mustRequest(method, url string) *http.Request {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		panic(err)
	}
	return req
}
