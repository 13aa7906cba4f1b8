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
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
		if wg := f.warming.Load(); wg != nil {
			wg.Done()
			wg.Wait()
		}
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
	if upstream {
		var arrived sync.WaitGroup
		arrived.Add(concurrency)
		f.warming.Store(&arrived)
	}
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			if err := login(); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	f.warming.Store(nil)
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
	wx.http.Transport.(*http.Transport).TLSClientConfig = f.trust()
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
			wx.http.Transport = memoryWeChat{}
			benchLogins(b, c, f, newServer(benchConfig(), logger, wx, nil, newMetrics("bench", []string{testAppID})), false)
		})
	}
}
