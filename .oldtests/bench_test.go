package main

// Benchmarks of the whole login path over loopback:
//
//	load client → wxlogin's handler (httptest.NewServer) → fake WeChat (httptest TLS server)
//
// Run: go test -run '^$' -bench . -benchmem
//
// Each benchmark runs at 64 and 256 concurrent clients, with the fake
// answering at once and after 2 ms, and reports TLS handshakes and upstream
// connections per login. The pools are warmed first: what is measured is the
// steady state, where a tuned client re-dials nothing.

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
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
)

var (
	benchConcurrency = []int{64, 256}
	benchLatency     = []time.Duration{0, 2 * time.Millisecond}
)

// benchWeChat is a TLS fake of code2Session that counts handshakes and
// connections.
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
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hold()
		if latency > 0 {
			time.Sleep(latency)
		}
		code := r.URL.Query().Get("js_code")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, `{"session_key":"c2Vzc2lvbmtleQ==","openid":"o`+code+`"}`)
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
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"o`+code+`"`)) {
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
func benchService(f *benchWeChat, tok *tokens) http.Handler {
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil)) // info level: one line per request, formatted
	wx := newWXClient(f.URL, []App{{testAppID, testSecret}}, 5*time.Second, defaultMaxInflight)
	wx.transport.(*http.Transport).TLSClientConfig = f.trust()
	m := newMetrics("bench", []string{testAppID})
	wx.observe = m.upstream
	return newServer(benchConfig(), logger, wx, tok, m)
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
		forEachLoad(b, func(b *testing.B, c int, f *benchWeChat) { benchLogins(b, c, f, benchService(f, nil), true) })
	})
	b.Run("tokens=on", func(b *testing.B) {
		forEachLoad(b, func(b *testing.B, c int, f *benchWeChat) {
			benchLogins(b, c, f, benchService(f, newTestTokens(time.Now(), testKey)), true)
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
		t := newTransport(defaultMaxInflight)
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

// memoryWeChat answers code2Session from memory, without a network.
type memoryWeChat struct{}

func (memoryWeChat) RoundTrip(r *http.Request) (*http.Response, error) {
	body := `{"session_key":"c2Vzc2lvbmtleQ==","openid":"o` + r.URL.Query().Get("js_code") + `"}`
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/plain"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

// BenchmarkLoginNoUpstream is the real handler with WeChat answering from
// memory: the ceiling of the HTTP stack on this machine.
func BenchmarkLoginNoUpstream(b *testing.B) {
	for _, c := range benchConcurrency {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			f := newBenchWeChat(b, 0) // counts stay 0: nothing reaches it
			logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
			wx := newWXClient("http://wechat.invalid", []App{{testAppID, testSecret}}, 5*time.Second, defaultMaxInflight)
			wx.transport = memoryWeChat{}
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
func benchServer(b *testing.B, f *benchWeChat, edit func(*Config), tok func(apps []string) *tokens) (*server, *tokens) {
	cfg := benchConfig()
	if edit != nil {
		edit(&cfg)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	wx := newWXClient(f.URL, cfg.Apps, cfg.Timeout, cfg.MaxInflight)
	wx.transport.(*http.Transport).TLSClientConfig = f.trust()
	b.Cleanup(wx.transport.(*http.Transport).CloseIdleConnections) // or later variants pay for this one's connections
	m := newMetrics("bench", cfg.appIDs())
	wx.observe = m.upstream
	var t *tokens
	if tok != nil {
		t = tok(cfg.appIDs())
	}
	return newServer(cfg, logger, wx, t, m), t
}

func hsTokens(apps []string) *tokens {
	return newTokens([][]byte{[]byte(testKey)}, nil, 2*time.Hour, tokenIssuer, apps, time.Now)
}

func keyFileTokens(b *testing.B, key any) func(apps []string) *tokens {
	return func(apps []string) *tokens {
		keys, err := parseKeys(pemOf(b, false, key))
		if err != nil {
			b.Fatal(err)
		}
		return newTokens(nil, keys, 2*time.Hour, tokenIssuer, apps, time.Now)
	}
}

func loginRequest(base string, i int64) *http.Request {
	r, _ := http.NewRequest("POST", base+"/openid", strings.NewReader(`{"code":"c`+strconv.FormatInt(i, 10)+`"}`))
	r.Header["Content-Type"] = []string{"application/json"}
	return r
}

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
		tok  func([]string) *tokens
	}{
		{"healthz", hsTokens},
		{"HS256", hsTokens},
		{"ES256", keyFileTokens(b, newP256(b))},
		{"EdDSA", keyFileTokens(b, newEd25519(b))},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			srv, tok := benchServer(b, newBenchWeChat(b, 0), nil, v.tok)
			token, _ := tok.sign(identity{OpenID: "oBenchUser0123456789abcdefgh", UnionID: "oBenchUnion123456789abcdefgh", AppID: testAppID})
			path := "/session"
			if v.name == "healthz" {
				path = "/healthz"
			}
			benchCPU(b, nil, srv, func(base string, _ int64) *http.Request {
				r, _ := http.NewRequest("GET", base+path, nil)
				r.Header["Authorization"] = []string{"Bearer " + token}
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
		c.Apps = []App{{"wx00000000000000a1", "a"}, {testAppID, testSecret}, {"wx00000000000000c3", "c"}}
	}
	variants := []struct {
		name string
		edit func(*Config)
		tok  func([]string) *tokens
		req  func(string, int64) *http.Request
	}{
		{"tokens=off", nil, nil, loginRequest},
		{"tokens=HS256", nil, hsTokens, loginRequest},
		{"tokens=ES256", nil, keyFileTokens(b, newP256(b)), loginRequest},
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
// both from a fake over TLS. login+bearer is a login that also carries the
// phone request's Authorization header, which the phone API requires: the
// cost of that header (sent, parsed, logged) on top of a login.
func BenchmarkPhoneCPU(b *testing.B) {
	for _, name := range []string{"login", "login+bearer", "phone"} {
		b.Run(name, func(b *testing.B) {
			f := newBenchWeChat(b, 0)
			mock := newMockWeChat(testApps)
			phoneAnswer := []byte(`{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"+8613800138000","purePhoneNumber":"13800138000","countryCode":"86","watermark":{"timestamp":1,"appid":"` + testAppID + `"}}}`)
			// The fake answers code2Session itself and the phone number with
			// a fixed answer (the benchmark's codes repeat); stable_token
			// comes from the mock. Set before the first request.
			f.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case phoneNumberPath:
					f.hold()
					w.Header()["Content-Type"] = []string{"text/plain"}
					w.Write(phoneAnswer)
				case stableTokenPath:
					mock.ServeHTTP(w, r)
				default:
					f.hold()
					code := r.URL.Query().Get("js_code")
					wechatJSON(w, `{"session_key":"c2Vzc2lvbmtleQ==","openid":"o`+code+`"}`)
				}
			})
			srv, tok := benchServer(b, f, func(c *Config) { c.PhoneLimit = rate{} }, hsTokens)
			token, _ := tok.sign(identity{OpenID: "oBenchUser0123456789abcdefgh", AppID: testAppID})
			switch name {
			case "login":
				benchCPU(b, f, srv, loginRequest, 200)
				return
			case "login+bearer":
				benchCPU(b, f, srv, func(base string, i int64) *http.Request {
					r := loginRequest(base, i)
					r.Header["Authorization"] = []string{"Bearer " + token}
					return r
				}, 200)
				return
			}
			benchCPU(b, f, srv, func(base string, i int64) *http.Request {
				r, _ := http.NewRequest("POST", base+"/phonenumber", strings.NewReader(`{"code":"p`+strconv.FormatInt(i, 10)+`"}`))
				r.Header["Content-Type"] = []string{"application/json"}
				r.Header["Authorization"] = []string{"Bearer " + token}
				return r
			}, 200)
		})
	}
}

// BenchmarkUnavoidable is the cost no implementation can skip: one
// signature per token issued, and one check of a token not seen before.
func BenchmarkUnavoidable(b *testing.B) {
	p256, ed := newP256(b), newEd25519(b)
	for _, v := range []struct {
		name string
		tok  *tokens
	}{
		{"HS256", hsTokens([]string{testAppID})},
		{"ES256", keyFileTokens(b, p256)([]string{testAppID})},
		{"EdDSA", keyFileTokens(b, ed)([]string{testAppID})},
	} {
		id := identity{OpenID: "oBenchUser0123456789abcdefgh", UnionID: "oBenchUnion123456789abcdefgh", AppID: testAppID}
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
		b.Run("sign/"+v.name, func(b *testing.B) {
			parallelCPU(b, func() { v.tok.sign(id) })
		})
		b.Run("verify-uncached/"+v.name, func(b *testing.B) {
			v.tok.cache = nil
			token, _ := v.tok.sign(id)
			parallelCPU(b, func() {
				if _, err := v.tok.verify(token); err != nil {
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

// BenchmarkTokenCache measures the verified-token cache: bytes per entry
// when full, and the heap after a million distinct tokens, which must stay
// within the cap (tokenCacheSize entries).
func BenchmarkTokenCache(b *testing.B) {
	for b.Loop() {
		before := heapInUse()
		c := newTokenCache(tokenCacheSize)
		for i := range 1_000_000 {
			sum := sha256.Sum256([]byte(strconv.Itoa(i)))
			n := strconv.Itoa(i)
			c.put(sum, identity{OpenID: "oBenchUser0123456789abcd" + n[len(n)-1:], UnionID: "oBenchUnion123456789abcd" + n[len(n)-1:],
				AppID: "wx0123456789abcdef", Phone: "+861380013" + fmt.Sprintf("%04d", i%10000), Exp: time.Now().Unix() + 7200})
		}
		after := heapInUse()
		if c.len() != tokenCacheSize {
			b.Fatalf("cache holds %d after 1M tokens, want its cap %d", c.len(), tokenCacheSize)
		}
		b.ReportMetric(float64(after-before)/float64(c.len()), "bytes/entry")
		b.ReportMetric(float64(after-before)/(1<<20), "MiB-after-1M-tokens")
		runtime.KeepAlive(c)
	}
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

// BenchmarkParseReply is WeChat's phone answer read as wxlogin reads it
// (pickJSON) and by encoding/json alone, on one goroutine:
//
//	go test -run '^$' -bench ParseReply -cpu 1
func BenchmarkParseReply(b *testing.B) {
	body := []byte(wxAnswers[6])
	b.Run("pickJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r phoneReply
			if err := parseReply(apiPhoneNumber, body, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r phoneReply
			if err := json.Unmarshal(body, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
