package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
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
	if err := prefixes(&trusted)("10.0.0.0/8, 192.168.1.1, fd00::/8, fe80::/10"); err != nil {
		t.Fatal(err)
	}
	const unparsed = "unparsed" // want: the hop's own synthetic address in 100::/64
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
		{"10.1.2.3:80", []string{"garbage, 10.2.2.2"}, unparsed},              // not an address: the text stands for the client, not the proxy
		{"10.1.2.3:80", []string{"unknown"}, unparsed},                        // what nginx writes for a client it does not know
		{"10.1.2.3:80", []string{"1.2.3.4, _hidden"}, unparsed},               // an obfuscated id (RFC 7239 style)
		{"10.1.2.3:80", []string{"198.51.100.7:4711"}, "198.51.100.7"},        // ip:port, as some load balancers write it
		{"10.1.2.3:80", []string{"[2001:db8::7]:443"}, "2001:db8::7"},         // [v6]:port
		{"10.1.2.3:80", []string{"[::ffff:1.2.3.4]:80"}, "1.2.3.4"},           // [v4-mapped]:port
		{"10.1.2.3:80", []string{"1.2.3.4, 10.9.9.9:8080"}, "1.2.3.4"},        // a trusted hop with a port is still trusted
		{"10.1.2.3:80", []string{"fe80::1%eth0"}, "fe80::1"},                  // a zone names the proxy's link: dropped
		{"10.1.2.3:80", []string{"1.2.3.4, fe80::9%eth1"}, "1.2.3.4"},         // a zoned trusted hop is still trusted
		{"[fe80::1%eth0]:80", nil, "fe80::1"},                                 // a zoned peer
		{"[fe80::1%eth0]:80", []string{"2001:db8::9"}, "2001:db8::9"},         // a zoned trusted peer's header is believed
		{"[fe80::1%eth0]:80", []string{"fe80::2%eth0"}, "fe80::2"},            // all trusted: the left-most, without its zone
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
		got := clientAddr(r, trusted)
		if tt.want == unparsed {
			if !discardOnly.Contains(got) {
				t.Errorf("clientAddr(%s, %q) = %s, want an address in %s standing for the text", tt.remote, tt.xff, got, discardOnly)
			}
			continue
		}
		if got.String() != tt.want {
			t.Errorf("clientAddr(%s, %q) = %s, want %s", tt.remote, tt.xff, got, tt.want)
		}
	}
	// A hop that is not an address is a client of its own: one per text,
	// the same each time, none of them the proxy or a real address.
	hop := func(xff string) netip.Addr {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.1.2.3:80"
		r.Header.Set("X-Forwarded-For", xff)
		return clientAddr(r, trusted)
	}
	seen := map[netip.Addr]string{}
	for _, text := range []string{"unknown", "_hidden", "_gazonk", "garbage", "[2001:db8::1]", "1.2.3.4.5", "UNKNOWN"} {
		a := hop(text)
		if other, ok := seen[a]; ok {
			t.Errorf("X-Forwarded-For %q and %q are the same client %s, want two", text, other, a)
		}
		seen[a] = text
		if again := hop(" " + text + " "); again != a {
			t.Errorf("X-Forwarded-For %q = %s, then %s: want one client per text", text, a, again)
		}
	}
}

// discardOnly is RFC 6666's discard-only prefix, which stands for the
// X-Forwarded-For hops that are not addresses.
var discardOnly = netip.MustParsePrefix("100::/64")

// TestLimitKey: RATE_LIMIT counts an IPv6 client by its /64 (one user or
// network picks any address in it), an IPv4 one by its address.
func TestLimitKey(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ addr, want string }{
		{"198.51.100.7", "198.51.100.7"},
		{"2001:db8:1:2::1", "2001:db8:1:2::"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::"},
		{"2001:db8:1:3::1", "2001:db8:1:3::"},
		{"fe80::1%eth0", "fe80::"},
	} {
		if got := limitKey(netip.MustParseAddr(tt.addr)); got.String() != tt.want {
			t.Errorf("limitKey(%s) = %s, want %s", tt.addr, got, tt.want)
		}
	}
}

// TestLimiterKeepsExhaustedKeys: a client that has used its budget is not
// forgotten when many other keys arrive within the period (a flood of new
// addresses must not buy anyone a fresh bucket), and the limiter stays
// within its cap meanwhile.
func TestLimiterKeepsExhaustedKeys(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	l := newLimiter[netip.Addr](rate{3, time.Hour}, limiterCap, func() time.Time { return now })
	victim := netip.MustParseAddr("203.0.113.9")
	for i := range 3 {
		if ok, _ := l.allow(victim); !ok {
			t.Fatalf("request %d of 3 refused", i+1)
		}
	}
	if ok, _ := l.allow(victim); ok {
		t.Fatal("4th request of 3/1h allowed")
	}
	start := now
	const others = 100_000
	for i := range others {
		now = now.Add(time.Millisecond) // 100 s in all: well within the hour
		if ok, _ := l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})); !ok {
			t.Fatalf("new key %d refused", i)
		}
		if i%1000 == 0 && l.keys() > limiterCap {
			t.Fatalf("after %d keys the limiter holds %d, over its cap %d", i+1, l.keys(), limiterCap)
		}
	}
	if k := l.keys(); k > limiterCap {
		t.Errorf("the limiter holds %d keys, over its cap %d", k, limiterCap)
	}
	// One token comes back every 20 minutes: the wait is what is left of it.
	ok, wait := l.allow(victim)
	if want := 20*time.Minute - now.Sub(start); ok || wait < want-time.Second || wait > want+time.Second {
		t.Errorf("after %d other keys the exhausted client = %v, wait %v; want refused, wait %v", others, ok, wait, want)
	}
	now = start.Add(20 * time.Minute)
	if ok, _ := l.allow(victim); !ok {
		t.Errorf("after 20 minutes the client's token is not back")
	}
}

// TestLimiterFloodOfExhaustedKeys: a flood of keys that each use up their
// bucket does not make every request start a new generation (each would
// copy what is kept): 300 000 requests, half of them refused, take a
// handful of swaps, within the cap, quickly.
func TestLimiterFloodOfExhaustedKeys(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	l := newLimiter[netip.Addr](rate{1, time.Hour}, limiterCap, func() time.Time { return now })
	since := func() time.Time {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.since
	}
	const keys = 150_000 // well past the second swap, from which exhausted keys are kept
	// Each swap leaves room for at least a quarter of the cap of new keys.
	maxSwaps := 2*keys/(limiterCap/4) + 1
	swaps, last, started := 0, since(), time.Now()
	for i := range keys {
		now = now.Add(time.Microsecond)
		k := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if ok, _ := l.allow(k); !ok {
			t.Fatalf("new key %d refused", i)
		}
		if ok, _ := l.allow(k); ok {
			t.Fatalf("key %d allowed twice at 1/1h", i)
		}
		if s := since(); !s.Equal(last) {
			swaps, last = swaps+1, s
		}
		if swaps > maxSwaps {
			t.Fatalf("after %d keys the limiter swapped generations %d times, want at most %d", i+1, swaps, maxSwaps)
		}
		if i%1000 == 0 && l.keys() > limiterCap {
			t.Fatalf("after %d keys the limiter holds %d, over its cap %d", i+1, l.keys(), limiterCap)
		}
	}
	if d := time.Since(started); d > 20*time.Second {
		t.Errorf("%d requests took %v, want a few seconds at most", 2*keys, d)
	}
	// The newest exhausted keys are still refused.
	for i := keys - 100; i < keys; i++ {
		if ok, _ := l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})); ok {
			t.Fatalf("exhausted key %d was forgotten", i)
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

// TestServerErrorLog: net/http's lines about a client's own mistakes go
// to debug; every other server error stays at warn.
func TestServerErrorLog(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := newHTTPServer(http.NotFoundHandler(), logger, time.Second, productionTimeouts)
	tests := []struct{ line, level string }{
		{"http: TLS handshake error from 1.2.3.4:5: EOF", "DEBUG"},
		{"http2: server: error reading preface from client 1.2.3.4:5: bogus greeting \"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\"", "DEBUG"},
		{"http2: received GOAWAY [FrameHeader GOAWAY len=8], starting graceful shutdown", "DEBUG"},
		{"http2: server connection error from 1.2.3.4:5: connection error: PROTOCOL_ERROR", "DEBUG"},
		{"http: Accept error: too many open files; retrying in 5ms", "WARN"},
		{"http: panic serving 1.2.3.4:5: boom", "WARN"},
		{"http: superfluous response.WriteHeader call from main.handler (x.go:1)", "WARN"},
		{"a line net/http may add one day about http: TLS handshake error", "WARN"},
	}
	for _, tt := range tests {
		srv.ErrorLog.Print(tt.line)
	}
	lines := buf.lines(t)
	if len(lines) != len(tests) {
		t.Fatalf("server error lines = %v, want %d", lines, len(tests))
	}
	for i, tt := range tests {
		if lines[i]["level"] != tt.level || lines[i]["msg"] != tt.line {
			t.Errorf("server error %q logged as %v %q, want %s with net/http's message", tt.line, lines[i]["level"], lines[i]["msg"], tt.level)
		}
	}
}

// TestRateLimitClientKeys runs RATE_LIMIT=3/1m behind a trusted proxy:
// an IPv6 client is counted by its /64 (the review saw eight addresses of
// one /64 get 200 in a row), another /64 has its own budget, zones are
// dropped, IPv4 clients are counted per address, hops written ip:port are
// their client's, and a hop that is not an address is not the proxy's
// budget. The log's client field never holds a zone or a port.
func TestRateLimitClientKeys(t *testing.T) {
	t.Parallel()
	s := newTestService(t, withConfig(func(c *Config) {
		c.RateLimit = rate{3, time.Minute}
		if err := prefixes(&c.TrustedProxies)("127.0.0.1"); err != nil {
			panic(err)
		}
	}))
	n, ok := 0, 0
	from := func(xff string) int {
		t.Helper()
		n++
		req, _ := http.NewRequest("POST", s.URL+"/openid", strings.NewReader(fmt.Sprintf(`{"code":"k%d"}`, n)))
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		a := do(t, req)
		if a.status == 200 {
			ok++
		} else {
			wantError(t, a, 429, "rate_limited")
		}
		return a.status
	}
	expect := func(name string, want []int, xffs ...string) {
		t.Helper()
		var got []int
		for _, x := range xffs {
			got = append(got, from(x))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: statuses %v, want %v", name, got, want)
		}
	}
	limited := []int{200, 200, 200, 429, 429, 429, 429, 429}
	expect("eight addresses of one /64", limited,
		"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::abcd",
		"2001:db8:1:2:1::", "2001:db8:1:2::3", "2001:db8:1:2::4", "2001:db8:1:2::5")
	expect("another /64", []int{200}, "2001:db8:1:3::1")
	expect("one address, two zones", []int{200, 200, 200, 429}, "fe80::1%eth0", "fe80::1%eth1", "fe80::1%eth0", "fe80::1%eth1")
	expect("IPv4 per address", []int{200, 200, 200, 429, 200}, "198.51.100.1", "198.51.100.1", "198.51.100.1", "198.51.100.1", "198.51.100.2")
	// The proxy's own budget, then hops that are not the proxy.
	expect("the proxy itself", []int{200, 200, 200, 429}, "", "", "", "")
	expect("ip:port", []int{200, 200, 200, 429}, "198.51.100.7:4711", "198.51.100.7:4712", "198.51.100.7", "198.51.100.7:1")
	expect("[v6]:port", []int{200, 200, 200, 429}, "[2001:db8:9::1]:443", "[2001:db8:9::2]:443", "2001:db8:9::3", "[2001:db8:9::1]:80")
	expect("a hop that is not an address", []int{200, 200, 200, 429}, "unknown", "unknown", " unknown", "unknown")
	expect("another text, another client", []int{200, 200, 200, 429}, "_hidden", "_hidden", "_hidden", "_hidden")

	if got := len(s.wechat.CallsTo(wechat.Code2SessionPath)); got != ok {
		t.Errorf("WeChat received %d logins, want the %d that were allowed", got, ok)
	}
	for _, l := range s.logs.lines(t) {
		if c, ok := l["client"].(string); ok && (strings.Contains(c, "%") || strings.Contains(c, "]") || strings.Count(c, ":") == 1) {
			t.Errorf("the log's client field %q holds a zone or a port", c)
		}
	}
	if logs := s.logs.String(); strings.Contains(logs, "eth0") || strings.Contains(logs, "eth1") {
		t.Errorf("a zone reached the log:\n%s", logs)
	}
	if !strings.Contains(s.logs.String(), `"client":"fe80::1"`) || !strings.Contains(s.logs.String(), `"client":"198.51.100.7"`) {
		t.Errorf("the log lacks the client fe80::1 or 198.51.100.7:\n%s", s.logs)
	}
}
