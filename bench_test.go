package main

// Benchmarks of the whole login path over loopback, in one process:
//
//	load client → wxlogin's handler (httptest.NewServer) → fake WeChat (httptest TLS server)
//
// Run: go test -run '^$' -bench . -benchmem
//
// Each benchmark runs at 64 and 256 concurrent clients, with the fake
// answering at once and after 2 ms, and reports TLS handshakes and upstream
// connections per login. The pools are warmed first: what is measured is the
// steady state, where a tuned client re-dials nothing. The CPU figures here
// count the whole process (load client and fake too); BenchmarkProcessCPU
// measures the service's own process against a minimal program.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// benchApps are the apps the benchmarks' fake WeChat knows.
var benchApps = []wechat.App{{ID: "wx00000000000000a1", Secret: "a"}, {ID: testAppID, Secret: testSecret}, {ID: "wx00000000000000c3", Secret: "c"}}

var (
	benchConcurrency = []int{64, 256}
	benchLatency     = []time.Duration{0, 2 * time.Millisecond}
)

// benchWeChat serves the fake WeChat over TLS, answering after a fixed
// latency, and counts handshakes and connections.
type benchWeChat struct {
	*httptest.Server
	handshakes atomic.Int64
	conns      atomic.Int64
	// warming, while set, holds each answer until all warm-up logins have
	// arrived, so that every client ends up with a connection of its own.
	warming atomic.Pointer[sync.WaitGroup]
}

func newBenchWeChat(b *testing.B, latency time.Duration) *benchWeChat {
	f := &benchWeChat{}
	fake := wechat.NewFake(wechat.FakeOptions{Apps: benchApps})
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != wechat.StableTokenPath {
			f.hold()
		}
		if latency > 0 {
			time.Sleep(latency)
		}
		fake.ServeHTTP(w, r)
	}))
	f.TLS = &tls.Config{VerifyConnection: func(tls.ConnectionState) error {
		f.handshakes.Add(1) // called once per completed handshake, full or resumed
		return nil
	}}
	f.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	f.StartTLS()
	b.Cleanup(f.Close)
	return f
}

// hold, while warming is set, keeps this answer until all warm-up requests
// have arrived.
func (f *benchWeChat) hold() {
	if wg := f.warming.Load(); wg != nil {
		wg.Done()
		wg.Wait()
	}
}

// warmPools sends n requests at once with one, so that every pool on the
// way (load client → wxlogin → fake WeChat) ends up with n connections and
// none is dialled while measuring. Requests that reach WeChat reach f (nil
// when none does), which holds each until all have arrived.
func warmPools(b *testing.B, f *benchWeChat, n int, one func() error) {
	if f != nil {
		var arrived sync.WaitGroup
		arrived.Add(n)
		f.warming.Store(&arrived)
		defer f.warming.Store(nil)
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := one(); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
}

// trust returns a TLS config that trusts the fake's certificate.
func (f *benchWeChat) trust() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(f.Certificate())
	return &tls.Config{RootCAs: pool}
}

// benchLogins drives POST /openid on handler with the given concurrency
// and reports per-login upstream handshakes and connections. upstream says
// whether the handler's logins reach f.
func benchLogins(b *testing.B, concurrency int, f *benchWeChat, handler http.Handler, upstream bool) {
	srv := httptest.NewServer(handler)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}}
	defer client.CloseIdleConnections()
	var seq atomic.Int64
	login := func() error {
		code := "c" + strconv.FormatInt(seq.Add(1), 10)
		resp, err := client.Post(srv.URL+"/openid", "application/json", strings.NewReader(`{"code":"`+code+`"}`))
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"`+wechat.MockOpenID(testAppID, code)+`"`)) {
			return fmt.Errorf("login = %d %s", resp.StatusCode, body)
		}
		return nil
	}

	// Warm every pool with one round at full concurrency.
	var holder *benchWeChat // the fake, where the logins reach it
	if upstream {
		holder = f
	}
	warmPools(b, holder, concurrency, login)
	f.handshakes.Store(0)
	f.conns.Store(0)

	b.SetParallelism((concurrency + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := login(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(f.handshakes.Load())/float64(b.N), "handshakes/login")
	b.ReportMetric(float64(f.conns.Load())/float64(b.N), "upstream-conns/login")
}

// forEachLoad runs body at every concurrency and latency.
func forEachLoad(b *testing.B, body func(b *testing.B, concurrency int, f *benchWeChat)) {
	for _, c := range benchConcurrency {
		for _, l := range benchLatency {
			b.Run(fmt.Sprintf("c=%d/latency=%v", c, l), func(b *testing.B) {
				body(b, c, newBenchWeChat(b, l))
			})
		}
	}
}

// benchService is the real service, as run() builds it, pointed at f.
func benchService(b *testing.B, f *benchWeChat, tok *token.Set) http.Handler {
	srv, _ := benchServer(b, f, nil, func([]string) *token.Set { return tok })
	return srv
}

// benchConfig is the service's configuration in the benchmarks: one app,
// the default in-flight limit, no rate limits.
func benchConfig() Config {
	c := testConfig()
	c.MaxInflight, c.Timeout = defaultMaxInflight, 5*time.Second
	return c
}

// BenchmarkLogin is the real service end to end, without and with tokens.
func BenchmarkLogin(b *testing.B) {
	b.Run("tokens=off", func(b *testing.B) {
		forEachLoad(b, func(b *testing.B, c int, f *benchWeChat) { benchLogins(b, c, f, benchService(b, f, nil), true) })
	})
	b.Run("tokens=on", func(b *testing.B) {
		forEachLoad(b, func(b *testing.B, c int, f *benchWeChat) {
			benchLogins(b, c, f, benchService(b, f, hsTokens(nil)), true)
		})
	})
}

// floorHandler is the smallest correct login: decode, call WeChat through
// client, encode. No checks, no logging, no retries.
func floorHandler(base string, client *http.Client) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Code string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		q := url.Values{"appid": {testAppID}, "secret": {testSecret}, "js_code": {req.Code}, "grant_type": {"authorization_code"}}
		resp, err := client.Get(base + "/sns/jscode2session?" + q.Encode())
		if err != nil {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var out struct {
			OpenID  string `json:"openid"`
			UnionID string `json:"unionid,omitempty"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
}

// BenchmarkLoginFloor is the floor our checks must stay near: the same
// traffic through floorHandler and one tuned, shared client.
func BenchmarkLoginFloor(b *testing.B) {
	forEachLoad(b, func(b *testing.B, c int, f *benchWeChat) {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns, t.MaxIdleConnsPerHost = defaultMaxInflight, defaultMaxInflight
		t.TLSClientConfig = f.trust()
		benchLogins(b, c, f, floorHandler(f.URL, &http.Client{Transport: t}), true)
	})
}

// BenchmarkLoginDefaultClient is the floor through http.DefaultClient's
// transport settings, as the usual tutorial code and the popular SDKs call
// WeChat: only 2 idle connections per host. (A clone of DefaultTransport,
// changed only to trust the fake's certificate.)
func BenchmarkLoginDefaultClient(b *testing.B) {
	forEachLoad(b, func(b *testing.B, c int, f *benchWeChat) {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = f.trust()
		benchLogins(b, c, f, floorHandler(f.URL, &http.Client{Transport: t}), true)
	})
}

// memoryWeChat is the fake WeChat answering in memory, without a network.
type memoryWeChat struct{ fake *wechat.Fake }

func (m memoryWeChat) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	m.fake.ServeHTTP(w, r)
	resp := w.Result()
	resp.Request = r
	return resp, nil
}

// BenchmarkLoginNoUpstream is the real handler with WeChat answering from
// memory: the ceiling of the HTTP stack on this machine.
func BenchmarkLoginNoUpstream(b *testing.B) {
	for _, c := range benchConcurrency {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			f := newBenchWeChat(b, 0) // counts stay 0: nothing reaches it
			logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
			wx := wechat.NewClient(wechat.Options{BaseURL: "http://wechat.invalid", Apps: benchApps,
				Transport: memoryWeChat{wechat.NewFake(wechat.FakeOptions{Apps: benchApps})}})
			benchLogins(b, c, f, newServer(benchConfig(), logger, wx, nil, newMetrics("bench", []string{testAppID})), false)
		})
	}
}

// CPU benchmarks. ns/op above is wall time with every goroutine sharing
// the machine; the figures that compare two variants are CPU time per
// request (user + system time of the whole process, from getrusage:
// load client, wxlogin, fake WeChat), reported as cpu-ns/op. Run:
//
//	go test -run '^$' -bench 'CPU|Cache|LimiterBytes|Unavoidable' -count 5

// cpuTime is the CPU time this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchCPU sends requests made by req to handler from 32 concurrent
// clients over loopback HTTP and reports CPU per request. Requests that
// reach WeChat reach f (nil for those that do not): all pools are warmed to
// 32 connections first, and a TLS handshake while measuring is an error.
func benchCPU(b *testing.B, f *benchWeChat, handler http.Handler, req func(base string, i int64) *http.Request, wantStatus int) {
	srv := httptest.NewServer(handler)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}
	defer client.CloseIdleConnections()
	var seq atomic.Int64
	one := func() error {
		resp, err := client.Do(req(srv.URL, seq.Add(1)))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != wantStatus {
			return fmt.Errorf("status %d, want %d", resp.StatusCode, wantStatus)
		}
		return nil
	}
	for range 64 { // the first requests, one at a time (the access_token is fetched)
		if err := one(); err != nil {
			b.Fatal(err)
		}
	}
	const parallelism = 16 // 32 clients on 2 cores
	clients := parallelism * runtime.GOMAXPROCS(0)
	warmPools(b, f, clients, one)
	if f != nil {
		f.handshakes.Store(0)
	}
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	runtime.GC()
	start := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := one(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	if f != nil && f.handshakes.Load() != 0 {
		b.Errorf("%d TLS handshakes with WeChat while measuring: the warm-up missed a connection", f.handshakes.Load())
	}
}

// benchServer is the real service as run() builds it (info-level JSON log
// to nowhere), with cfg changed by edit and tokens from keys.
func benchServer(b *testing.B, f *benchWeChat, edit func(*Config), tok func(apps []string) *token.Set) (*server, *token.Set) {
	cfg := benchConfig()
	if edit != nil {
		edit(&cfg)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil)) // info level: one line per request, formatted
	m := newMetrics("bench", cfg.appIDs())
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost, t.IdleConnTimeout = cfg.MaxInflight, cfg.MaxInflight, 30*time.Second
	t.TLSClientConfig = f.trust()
	b.Cleanup(t.CloseIdleConnections) // or later variants pay for this one's connections
	wx := wechat.NewClient(wechat.Options{BaseURL: f.URL, Apps: cfg.Apps, Timeout: cfg.Timeout, Transport: t,
		Observe: m.upstream, TokenFetched: func(err error) { m.stableToken(resultOf(err)) }})
	var ts *token.Set
	if tok != nil {
		ts = tok(cfg.appIDs())
	}
	return newServer(cfg, logger, wx, ts, m), ts
}

func hsTokens([]string) *token.Set {
	return token.New(token.Options{Keys: hmacKeys(testKey), TTL: 2 * time.Hour, Issuer: defaultIssuer})
}

// keyFileTokens are tokens signed with a new key of alg (ES256 or EdDSA).
func keyFileTokens(b *testing.B, alg string) func([]string) *token.Set {
	var key any
	var err error
	if alg == token.EdDSA {
		_, key, err = ed25519.GenerateKey(rand.Reader)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		b.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	keys, err := token.ParseKeys(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		b.Fatal(err)
	}
	return func([]string) *token.Set {
		return token.New(token.Options{Keys: keys, TTL: 2 * time.Hour, Issuer: defaultIssuer})
	}
}

// benchUser is the claims of the benchmarks' tokens.
var benchUser = token.Claims{Subject: "oBenchUser0123456789abcdefgh", UnionID: "oBenchUnion123456789abcdefgh", Audience: token.Audience{testAppID}}

// appLoginRequest names the app in the body, as auth.js does.
func appLoginRequest(base string, i int64) *http.Request {
	r, _ := http.NewRequest("POST", base+"/openid", strings.NewReader(`{"code":"c`+strconv.FormatInt(i, 10)+`","appid":"`+testAppID+`"}`))
	r.Header["Content-Type"] = []string{"application/json"}
	return r
}

// BenchmarkSessionCPU is /session with one reused token, the hot path
// behind a gateway, against /healthz on the same server.
func BenchmarkSessionCPU(b *testing.B) {
	variants := []struct {
		name string
		tok  func([]string) *token.Set
	}{
		{"healthz", hsTokens},
		{"HS256", hsTokens},
		{"ES256", keyFileTokens(b, token.ES256)},
		{"EdDSA", keyFileTokens(b, token.EdDSA)},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			srv, tok := benchServer(b, newBenchWeChat(b, 0), nil, v.tok)
			tk, _ := tok.Sign(benchUser)
			path := "/session"
			if v.name == "healthz" {
				path = "/healthz"
			}
			benchCPU(b, nil, srv, func(base string, _ int64) *http.Request {
				r, _ := http.NewRequest("GET", base+path, nil)
				r.Header["Authorization"] = []string{"Bearer " + tk}
				return r
			}, 200)
		})
	}
}

// BenchmarkLoginCPU is a whole login (client → wxlogin → fake WeChat over
// TLS) in each configuration whose cost is compared: tokens off, HS256,
// ES256; one app or three; RATE_LIMIT off or on; and a phone request with
// a warm access_token against a login.
func BenchmarkLoginCPU(b *testing.B) {
	three := func(c *Config) {
		c.Apps = benchApps
	}
	variants := []struct {
		name string
		edit func(*Config)
		tok  func([]string) *token.Set
		req  func(string, int64) *http.Request
	}{
		{"tokens=off", nil, nil, loginRequest},
		{"tokens=HS256", nil, hsTokens, loginRequest},
		{"tokens=ES256", nil, keyFileTokens(b, token.ES256), loginRequest},
		{"ratelimit=on", func(c *Config) { c.RateLimit = rate{1 << 30, time.Minute} }, nil, loginRequest},
		{"apps=1,appid-in-body", nil, nil, appLoginRequest},
		{"apps=3,appid-in-body", three, nil, appLoginRequest},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			f := newBenchWeChat(b, 0)
			srv, _ := benchServer(b, f, v.edit, v.tok)
			benchCPU(b, f, srv, v.req, 200)
		})
	}
}

// BenchmarkPhoneCPU is a phone request with a warm access_token, against
// a login with HS256 tokens on the same kind of server: WeChat answers
// both from the fake over TLS. login+bearer is a login that also carries
// the phone request's Authorization header, which the phone API requires:
// the cost of that header (sent, parsed, logged) on top of a login.
func BenchmarkPhoneCPU(b *testing.B) {
	for _, name := range []string{"login", "login+bearer", "phone"} {
		b.Run(name, func(b *testing.B) {
			f := newBenchWeChat(b, 0)
			srv, tok := benchServer(b, f, func(c *Config) { c.PhoneLimit = rate{} }, hsTokens)
			c := benchUser
			c.Subject = wechat.MockOpenID(testAppID, "bench")
			tk, _ := tok.Sign(c)
			switch name {
			case "login":
				benchCPU(b, f, srv, loginRequest, 200)
				return
			case "login+bearer":
				benchCPU(b, f, srv, func(base string, i int64) *http.Request {
					r := loginRequest(base, i)
					r.Header["Authorization"] = []string{"Bearer " + tk}
					return r
				}, 200)
				return
			}
			phone := strconv.FormatInt(time.Now().UnixNano(), 36) // phone codes work once per fake
			benchCPU(b, f, srv, func(base string, i int64) *http.Request {
				r, _ := http.NewRequest("POST", base+"/phonenumber", strings.NewReader(`{"code":"p`+phone+strconv.FormatInt(i, 10)+`"}`))
				r.Header["Content-Type"] = []string{"application/json"}
				r.Header["Authorization"] = []string{"Bearer " + tk}
				return r
			}, 200)
		})
	}
}

// BenchmarkUnavoidable is the cost no implementation can skip: one
// signature per token issued, and one check of a token not seen before.
func BenchmarkUnavoidable(b *testing.B) {
	for _, alg := range []string{token.HS256, token.ES256, token.EdDSA} {
		set := hsTokens(nil)
		if alg != token.HS256 {
			set = keyFileTokens(b, alg)(nil)
		}
		uncached := set
		if alg == token.HS256 {
			uncached = token.New(token.Options{Keys: hmacKeys(testKey), TTL: 2 * time.Hour, Issuer: defaultIssuer, CacheSize: -1})
		} else {
			uncached = token.New(token.Options{Keys: set.PublicKeys(), TTL: 2 * time.Hour, Issuer: defaultIssuer, CacheSize: -1})
		}
		// In parallel on every core, as in the CPU benchmarks, and in CPU
		// time, so that the figures add up with theirs.
		parallelCPU := func(b *testing.B, f func()) {
			start := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					f()
				}
			})
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
		b.Run("sign/"+alg, func(b *testing.B) {
			parallelCPU(b, func() { set.Sign(benchUser) })
		})
		b.Run("verify-uncached/"+alg, func(b *testing.B) {
			tk, _ := uncached.Sign(benchUser)
			parallelCPU(b, func() {
				if _, err := uncached.Verify(tk); err != nil {
					b.Error(err)
				}
			})
		})
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkLimiterBytes measures a limiter under a flood of distinct
// client addresses: bytes per key held, and the heap after 200 000
// addresses in one minute.
func BenchmarkLimiterBytes(b *testing.B) {
	for b.Loop() {
		before := heapInUse()
		l := newLimiter[netip.Addr](rate{600, time.Minute}, limiterCap, time.Now)
		for i := range 200_000 {
			l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/float64(l.keys()), "bytes/key")
		b.ReportMetric(float64(l.keys()), "keys-held")
		b.ReportMetric(float64(after-before)/(1<<20), "MiB-after-200k-addresses")
		runtime.KeepAlive(l)
	}
}
