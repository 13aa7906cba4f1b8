package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Distinctive values, so a test can search logs and errors for them.
const (
	testAppID  = "wx0123456789abcdef"
	testSecret = "S3cretAppSecretValue9f8e7d"
)

var testApps = []App{{testAppID, testSecret}}

// fakeWeChat is an httptest server standing in for WeChat. It records every
// query it receives; answer decides what it says (nil: the built-in mock).
type fakeWeChat struct {
	*httptest.Server
	mu    sync.Mutex
	calls []url.Values
}

func newFakeWeChat(t testing.TB, answer http.HandlerFunc) *fakeWeChat {
	t.Helper()
	f := &fakeWeChat{}
	var h http.Handler = answer
	if answer == nil {
		h = newMockWeChat(testApps)
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls = append(f.calls, r.URL.Query())
		f.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// callsFor counts the requests that carried js_code=code.
func (f *fakeWeChat) callsFor(code string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, q := range f.calls {
		if q.Get("js_code") == code {
			n++
		}
	}
	return n
}

// callsSince returns the queries received after the first n.
func (f *fakeWeChat) callsSince(n int) []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.calls[n:]...)
}

func (f *fakeWeChat) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
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

// testService is the whole HTTP API served on loopback, talking to a fake
// WeChat through the real client.
type testService struct {
	*httptest.Server
	wechat  *fakeWeChat
	wx      *wxClient
	tok     *tokens // nil: tokens off
	api     *server
	metrics *metrics
	logs    *syncBuffer
}

type serviceOption func(*testService, *Config)

func withMaxInflight(n int) serviceOption {
	return func(_ *testService, c *Config) { c.MaxInflight = n }
}

// withConfig changes the configuration the server is built from.
func withConfig(f func(*Config)) serviceOption { return func(_ *testService, c *Config) { f(c) } }

// withTokens turns HS256 tokens on with these keys and clock.
func withTokens(now func() time.Time, keys ...string) serviceOption {
	return func(s *testService, c *Config) {
		s.tok = newTokens(hmacKeys(keys...), nil, 2*time.Hour, tokenIssuer, c.appIDs(), now)
	}
}

// hmacKeys is TOKEN_SECRET's keys as loadConfig makes them.
func hmacKeys(keys ...string) [][]byte {
	var h [][]byte
	for _, k := range keys {
		h = append(h, []byte(k))
	}
	return h
}

// testConfig is the configuration of a test service: one app, no limits.
func testConfig() Config {
	return Config{Apps: testApps, MaxInflight: 16, Timeout: 2 * time.Second, TokenTTL: 2 * time.Hour, TokenIssuer: tokenIssuer}
}

func newTestService(t testing.TB, answer http.HandlerFunc, opts ...serviceOption) *testService {
	t.Helper()
	s := &testService{wechat: newFakeWeChat(t, answer), logs: &syncBuffer{}}
	cfg := testConfig()
	for _, o := range opts {
		o(s, &cfg)
	}
	s.wx = newWXClient(s.wechat.URL, cfg.Apps, cfg.Timeout, cfg.MaxInflight)
	s.wx.retryBase = time.Millisecond
	logger := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s.metrics = newMetrics("test", cfg.appIDs())
	s.wx.observe = s.metrics.upstream
	s.api = newServer(cfg, logger, s.wx, s.tok, s.metrics)
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
