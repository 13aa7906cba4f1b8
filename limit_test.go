package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"wxlogin/internal/wechat"
)

// TestLimiterArithmetic checks the token bucket with an injected clock:
// n at once, then one back every per/n, and Retry-After the time until
// the next one.
func TestLimiterArithmetic(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	l := newLimiter[string](rate{3, time.Minute}, 100, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("request %d of 3 refused", i+1)
		}
	}
	ok, wait := l.allow("a")
	if ok || wait != 20*time.Second {
		t.Errorf("4th = %v, wait %v; want refused, 20s (one token every 20 s)", ok, wait)
	}
	if ok, _ := l.allow("b"); !ok {
		t.Errorf("another key was refused")
	}
	now = now.Add(15 * time.Second)
	if ok, wait := l.allow("a"); ok || wait != 5*time.Second {
		t.Errorf("after 15 s = %v, wait %v; want refused, 5s", ok, wait)
	}
	now = now.Add(5 * time.Second)
	if ok, _ := l.allow("a"); !ok {
		t.Errorf("after 20 s a token is back, but refused")
	}
	// Idle for long: back to a full bucket, never more.
	now = now.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.allow("a"); !ok {
			t.Errorf("after an hour, request %d of 3 refused", i+1)
		}
	}
	if ok, _ := l.allow("a"); ok {
		t.Errorf("a bucket refilled beyond its size")
	}
	// A clock that steps back refills nothing.
	now = now.Add(-time.Minute)
	if ok, _ := l.allow("a"); ok {
		t.Errorf("a clock stepping back refilled the bucket")
	}
	for _, tt := range []struct {
		d    time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {3599*time.Second + 1, 3600}} {
		if got := retryAfterSeconds(tt.d); got != tt.want {
			t.Errorf("retryAfterSeconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
	if newLimiter[string](rate{}, 100, time.Now) != nil {
		t.Errorf("a zero rate made a limiter")
	}
}

// TestLimiterMemory floods a limiter with distinct keys: it never holds
// more than its cap, and forgets idle keys, which changes no answer.
func TestLimiterMemory(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	l := newLimiter[string](rate{1, time.Minute}, 1000, func() time.Time { return now })
	key := func(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255) }
	for i := range 200_000 {
		l.allow(key(i))
		if i%997 == 0 && l.keys() > 1000 {
			t.Fatalf("after %d keys the limiter holds %d, over its cap of 1000", i+1, l.keys())
		}
	}
	if k := l.keys(); k > 1000 {
		t.Errorf("limiter holds %d keys, cap 1000", k)
	}
	// The most recent keys are still limited.
	if ok, _ := l.allow(key(199_999)); ok {
		t.Errorf("the newest key was forgotten")
	}
	// Two idle periods later everything is gone: every bucket is full again anyway.
	now = now.Add(time.Minute)
	l.allow("x")
	now = now.Add(time.Minute)
	l.allow("y")
	if k := l.keys(); k > 2 {
		t.Errorf("after two idle minutes the limiter holds %d keys, want ≤ 2", k)
	}
	if ok, _ := l.allow(key(199_999)); !ok {
		t.Errorf("a key forgotten after two idle minutes was refused")
	}
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	var trusted []netip.Prefix
	if err := prefixes(&trusted)("10.0.0.0/8, 192.168.1.1, fd00::/8"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		remote string
		xff    []string
		want   string
	}{
		{"203.0.113.5:1234", nil, "203.0.113.5"},
		{"203.0.113.5:1234", []string{"1.2.3.4"}, "203.0.113.5"}, // untrusted peer: header ignored
		{"10.1.2.3:80", []string{"1.2.3.4"}, "1.2.3.4"},
		{"10.1.2.3:80", []string{"1.2.3.4, 10.9.9.9"}, "1.2.3.4"},             // a chain of trusted hops
		{"10.1.2.3:80", []string{"6.6.6.6, 1.2.3.4, 192.168.1.1"}, "1.2.3.4"}, // spoofed left part ignored
		{"10.1.2.3:80", []string{"6.6.6.6", "1.2.3.4"}, "1.2.3.4"},            // several headers
		{"10.1.2.3:80", []string{"garbage, 10.2.2.2"}, "10.2.2.2"},            // garbage: the last address vouched for
		{"10.1.2.3:80", []string{"10.5.5.5, 10.6.6.6"}, "10.5.5.5"},           // all trusted: the left-most
		{"10.1.2.3:80", nil, "10.1.2.3"},                                      // trusted peer, no header
		{"[fd00::1]:443", []string{"2001:db8::7"}, "2001:db8::7"},             // IPv6
		{"[::ffff:10.0.0.1]:80", []string{"::ffff:1.2.3.4"}, "1.2.3.4"},       // v4-mapped
		{"[2001:db8::1]:443", []string{"1.2.3.4"}, "2001:db8::1"},             // untrusted v6 peer
		{"10.1.2.3:80", []string{" 198.51.100.7 ,10.0.0.2 "}, "198.51.100.7"}, // spaces
		{"192.168.1.2:80", []string{"1.2.3.4"}, "192.168.1.2"},                // next to a trusted single address
		{"not an address", []string{"1.2.3.4"}, "invalid IP"},                 // not TCP: one shared key
	}
	for _, tt := range tests {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		for _, v := range tt.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := clientAddr(r, trusted).String(); got != tt.want {
			t.Errorf("clientAddr(%s, %q) = %s, want %s", tt.remote, tt.xff, got, tt.want)
		}
	}
}

// TestRateLimit checks RATE_LIMIT on both endpoints: 429 with an honest
// Retry-After, after every check that makes a request wrong, before
// WeChat; health and metrics never limited; the client in the log.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	s := phoneService(t, withConfig(func(c *Config) {
		c.RateLimit = rate{2, time.Minute}
		if err := prefixes(&c.TrustedProxies)("127.0.0.1"); err != nil {
			panic(err)
		}
	}))
	as := func(client string, r *http.Request) *http.Request {
		r.Header.Set("X-Forwarded-For", client)
		return r
	}
	loginFrom := func(client, body string) answer {
		req, _ := http.NewRequest("POST", s.URL+"/openid", strings.NewReader(body))
		return do(t, as(client, req))
	}
	tok := s.loginToken(t, "abc") // from 127.0.0.1 itself: its own budget
	for i := range 2 {
		if a := loginFrom("198.51.100.1", `{"code":"c`+fmt.Sprint(i)+`"}`); a.status != 200 {
			t.Fatalf("login %d = %d %s", i, a.status, a.raw)
		}
	}
	calls := len(s.wechat.Calls())
	wantError(t, loginFrom("198.51.100.1", `{"code":"bad code"}`), 400, "invalid_request") // wrong first, no budget
	a := loginFrom("198.51.100.1", `{"code":"c3"}`)
	wantError(t, a, 429, "rate_limited")
	if ra := a.header.Get("Retry-After"); ra != "30" {
		t.Errorf("Retry-After = %q, want 30 (2 a minute)", ra)
	}
	// Another client is not limited.
	if a := loginFrom("198.51.100.2", `{"code":"c4"}`); a.status != 200 {
		t.Errorf("another client = %d", a.status)
	}
	// /phonenumber shares the per-address budget.
	req, _ := http.NewRequest("POST", s.URL+"/phonenumber", strings.NewReader(`{"code":"p1"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	wantError(t, do(t, as("198.51.100.1", req)), 429, "rate_limited")
	if n := len(s.wechat.Calls()) - calls; n != 1 {
		t.Errorf("WeChat got %d calls after the limit was reached, want 1 (the other client's login)", n)
	}
	if n := codeCallsA(s.wechat, "c3"); n != 0 {
		t.Errorf("a limited login reached WeChat %d times", n)
	}
	if n := len(s.wechat.CallsTo(wechat.PhoneNumberPath)); n != 0 {
		t.Errorf("a limited phone request reached WeChat %d times", n)
	}
	for range 5 {
		if h := do(t, as("198.51.100.1", mustRequest("GET", s.URL+"/healthz"))); h.status != 200 {
			t.Errorf("healthz limited: %d", h.status)
		}
	}
	for range 3 {
		resp, err := http.DefaultClient.Do(as("198.51.100.1", mustRequest("GET", s.URL+"/metrics")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("metrics limited: %d", resp.StatusCode)
		}
	}
	if !strings.Contains(s.logs.String(), `"client":"198.51.100.1"`) {
		t.Errorf("the log has no client field:\n%s", s.logs)
	}
}

// TestRateLimitUntrustedPeer: without TRUSTED_PROXIES, X-Forwarded-For
// changes nothing — a client cannot pick a fresh address per request.
func TestRateLimitUntrustedPeer(t *testing.T) {
	t.Parallel()
	s := newTestService(t, withConfig(func(c *Config) { c.RateLimit = rate{1, time.Hour} }))
	for i, want := range []int{200, 429, 429} {
		req, _ := http.NewRequest("POST", s.URL+"/openid", strings.NewReader(`{"code":"c`+fmt.Sprint(i)+`"}`))
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
		if a := do(t, req); a.status != want {
			t.Errorf("login %d with a new spoofed address = %d, want %d", i, a.status, want)
		}
	}
	if n := len(s.wechat.Calls()); n != 1 {
		t.Errorf("WeChat got %d calls, want 1", n)
	}
	if strings.Contains(s.logs.String(), `"client"`) {
		t.Errorf("a client field without trusted proxies:\n%s", s.logs)
	}
}

func TestServerErrorLog(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := newHTTPServer(http.NotFoundHandler(), logger, time.Second, productionTimeouts)
	srv.ErrorLog.Print("http: TLS handshake error from 1.2.3.4:5: EOF")
	srv.ErrorLog.Print("http: Accept error: too many open files")
	lines := buf.lines(t)
	if len(lines) != 2 || lines[0]["level"] != "DEBUG" || lines[1]["level"] != "WARN" {
		t.Fatalf("server error lines = %v, want the handshake at DEBUG and the other at WARN", lines)
	}
	if lines[1]["msg"] != "http: Accept error: too many open files" {
		t.Errorf("server error line = %v, want net/http's message", lines[1])
	}
}
