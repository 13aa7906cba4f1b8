package main

// Hardening: a fault-and-load soak, load shedding, slow and idle clients,
// and shutdown under load. All traffic stays on loopback; every loop is
// bounded in count, and every wait in time.

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soakKinds are the fake WeChat's behaviours, chosen by the code's prefix,
// with their share of the traffic and the answer each must produce.
var soakKinds = []struct {
	kind   string
	weight int
	status int
	error  string
	calls  int // requests WeChat must see for the code
}{
	{"ok", 50, 200, "", 1},
	{"slow", 10, 200, "", 1},    // answers after 5 ms
	{"busyonce", 8, 200, "", 2}, // -1, then success on the retry
	{"busy", 4, 503, "unavailable", 3},
	{"limit", 8, 429, "rate_limited", 1},
	{"garbage", 6, 502, "upstream_error", 1},
	{"huge", 3, 502, "upstream_error", 1}, // 70 KiB: read stops at 64 KiB, before EOF
	{"e500", 6, 502, "upstream_error", 1},
	{"reset", 6, 502, "upstream_error", 1},  // connection closed, no answer
	{"hang", 1, 504, "upstream_timeout", 1}, // never answers: costs WX_TIMEOUT
}

// soakWeChat is a fake WeChat that misbehaves by code and counts its open
// connections.
type soakWeChat struct {
	*httptest.Server
	open  atomic.Int64
	mu    sync.Mutex
	calls map[string]int
}

func newSoakWeChat(t testing.TB) *soakWeChat {
	f := &soakWeChat{calls: map[string]int{}}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := r.URL.Query().Get("js_code")
		f.mu.Lock()
		f.calls[code]++
		n := f.calls[code]
		f.mu.Unlock()
		kind, _, _ := strings.Cut(code, "-")
		ok := `{"openid":"o` + code + `","session_key":"SoakSessionKey"}`
		switch kind {
		case "ok":
			wechatJSON(w, ok)
		case "slow":
			time.Sleep(5 * time.Millisecond)
			wechatJSON(w, ok)
		case "busyonce":
			if n == 1 {
				wechatJSON(w, `{"errcode":-1,"errmsg":"system error"}`)
				return
			}
			wechatJSON(w, ok)
		case "busy":
			wechatJSON(w, `{"errcode":-1,"errmsg":"system error"}`)
		case "limit":
			wechatJSON(w, `{"errcode":45011,"errmsg":"api minute-quota reach limit"}`)
		case "garbage":
			wechatJSON(w, "<html>502 Bad Gateway "+code+"</html>")
		case "huge":
			wechatJSON(w, `{"openid":"o`+code+`","pad":"`+strings.Repeat("x", 70<<10)+`"}`)
		case "e500":
			http.Error(w, "internal error", 500)
		case "reset":
			hangUp(w, r)
		case "hang":
			<-r.Context().Done()
		}
	}))
	f.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			f.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			f.open.Add(-1)
		}
	}
	f.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	f.Start()
	t.Cleanup(f.Close)
	return f
}

// TestSoak sends tens of thousands of logins at high concurrency through the
// whole service to a WeChat that misbehaves in every way, and checks every
// answer, that nothing leaks afterwards, and that the log holds no secret.
func TestSoak(t *testing.T) {
	total, workers := 20000, 128
	if testing.Short() {
		total = 2000
	}
	f := newSoakWeChat(t)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// WX_TIMEOUT: long enough that no answering login hits it even under the
	// race detector on 2 cores; each hang costs that much.
	wx := newWXClient(f.URL, []App{{testAppID, testSecret}}, 2*time.Second, defaultMaxInflight)
	wx.retryBase = time.Millisecond
	tok := newTokens([][]byte{[]byte(testKey)}, nil, time.Hour, tokenIssuer, []string{testAppID}, time.Now)
	svc := httptest.NewUnstartedServer(nil)
	svc.Config = newHTTPServer(newServer(benchConfig(), logger, wx, tok, newMetrics("soak", []string{testAppID})), logger, wx.timeout, productionTimeouts)
	svc.Start()
	defer svc.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 30 * time.Second}

	runtime.GC()
	baseline := runtime.NumGoroutine()

	var wheel []int // index into soakKinds, weighted
	for i, k := range soakKinds {
		for range k.weight {
			wheel = append(wheel, i)
		}
	}
	var next atomic.Int64
	var mismatches atomic.Int64
	var report sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				n := next.Add(1)
				if n > int64(total) {
					return
				}
				k := soakKinds[wheel[int(n)%len(wheel)]]
				code := fmt.Sprintf("%s-SoakCode%d", k.kind, n)
				if err := checkSoakLogin(client, svc.URL, code, k.status, k.error, tok); err != nil {
					mismatches.Add(1)
					report.Do(func() { t.Errorf("first mismatch: %v", err) })
				}
			}
		})
	}
	wg.Wait()
	if m := mismatches.Load(); m > 0 {
		t.Errorf("%d of %d answers did not match their code", m, total)
	}

	// WeChat saw each code exactly as often as it should have.
	f.mu.Lock()
	for code, n := range f.calls {
		kind, _, _ := strings.Cut(code, "-")
		for _, k := range soakKinds {
			if k.kind == kind && n != k.calls {
				t.Errorf("WeChat saw %s %d times, want %d", code, n, k.calls)
			}
		}
	}
	if len(f.calls) != total {
		t.Errorf("WeChat saw %d distinct codes, want %d", len(f.calls), total)
	}
	f.mu.Unlock()

	// Nothing leaks: once idle connections are closed, the fake has no open
	// connection and the goroutines are back to the baseline.
	client.CloseIdleConnections()
	wx.transport.(*http.Transport).CloseIdleConnections()
	waitFor(t, func() bool { return f.open.Load() == 0 })
	waitFor(t, func() bool { runtime.GC(); return runtime.NumGoroutine() <= baseline })

	text := logs.String()
	for _, s := range []string{testSecret, "SoakCode", "SoakSessionKey", testKey, "eyJ"} {
		if strings.Contains(text, s) {
			t.Errorf("the log contains %q", s)
		}
	}
	if n := strings.Count(text, `"msg":"request"`); n != total {
		t.Errorf("%d request log lines, want %d", n, total)
	}
}

// checkSoakLogin makes one login and checks its answer.
func checkSoakLogin(client *http.Client, base, code string, status int, wantErr string, tok *tokens) error {
	resp, err := client.Post(base+"/openid", "application/json", strings.NewReader(`{"code":"`+code+`"}`))
	if err != nil {
		return fmt.Errorf("%s: %v", code, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%s: reading answer: %v", code, err)
	}
	if resp.StatusCode != status {
		return fmt.Errorf("%s: status %d %s, want %d", code, resp.StatusCode, body, status)
	}
	if status != 200 {
		if !strings.Contains(string(body), `"error":"`+wantErr+`"`) {
			return fmt.Errorf("%s: %s, want error %s", code, body, wantErr)
		}
		if ra := map[string]string{"rate_limited": "60", "unavailable": "1"}[wantErr]; resp.Header.Get("Retry-After") != ra {
			return fmt.Errorf("%s: Retry-After %q, want %q", code, resp.Header.Get("Retry-After"), ra)
		}
		return nil
	}
	if !strings.Contains(string(body), `"openid":"o`+code+`"`) {
		return fmt.Errorf("%s: %s, want its openid", code, body)
	}
	_, after, _ := strings.Cut(string(body), `"token":"`)
	token, _, _ := strings.Cut(after, `"`)
	if c, err := tok.verify(token); err != nil || c.OpenID != "o"+code {
		return fmt.Errorf("%s: token does not verify for its openid: %v", code, err)
	}
	return nil
}

// TestLoadShedding fills MAX_INFLIGHT, then sends a burst: every extra login
// is refused with 503 at once (they are all answered while the slots are
// still held: nothing queues), and logins succeed again once load drops.
func TestLoadShedding(t *testing.T) {
	t.Parallel()
	const limit, burst = 4, 64
	var held atomic.Int32
	release := make(chan struct{})
	s := newTestService(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Query().Get("js_code"), "hold") {
			held.Add(1)
			<-release
		}
		newMockWeChat(testApps).ServeHTTP(w, r)
	}, withMaxInflight(limit))

	holders := make(chan answer, limit)
	for i := range limit {
		go func() { holders <- s.login(t, fmt.Sprintf("hold%d", i)) }()
	}
	waitFor(t, func() bool { return held.Load() == limit })

	var wg sync.WaitGroup
	var refused atomic.Int32
	for i := range burst {
		wg.Go(func() {
			a := s.login(t, fmt.Sprintf("extra%d", i))
			if a.status == 503 && a.str("error") == "unavailable" && a.header.Get("Retry-After") == "1" {
				refused.Add(1)
			}
		})
	}
	wg.Wait() // all answered while the holders still hold their slots
	if refused.Load() != burst {
		t.Errorf("%d of %d extra logins were refused with 503 unavailable, want all", refused.Load(), burst)
	}
	if n := s.wechat.callCount(); n != limit {
		t.Errorf("WeChat saw %d requests, want only the %d holders", n, limit)
	}

	close(release)
	for range limit {
		if a := <-holders; a.status != 200 {
			t.Errorf("holder = %d %s, want 200", a.status, a.raw)
		}
	}
	for i := range 2 * limit {
		if a := s.login(t, fmt.Sprintf("after%d", i)); a.status != 200 {
			t.Errorf("login after the load dropped = %d %s, want 200", a.status, a.raw)
		}
	}
}

// TestSlowClients opens hundreds of connections that trickle their headers
// or body, or sit idle, against a server with short timeouts: each is cut
// off by the server, while other clients keep being served.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, nil)
	logger := slog.New(slog.DiscardHandler)
	wx := newWXClient(f.URL, []App{{testAppID, testSecret}}, time.Second, 16)
	timeouts := serverTimeouts{readHeader: 300 * time.Millisecond, read: 600 * time.Millisecond, idle: 300 * time.Millisecond}
	svc := httptest.NewUnstartedServer(nil)
	svc.Config = newHTTPServer(newServer(testConfig(), logger, wx, nil, newMetrics("t", []string{testAppID})), logger, wx.timeout, timeouts)
	svc.Start()
	defer svc.Close()
	addr := svc.Listener.Addr().String()

	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const each = 75
	var conns []net.Conn
	var stop atomic.Bool
	var trickles sync.WaitGroup
	for range each { // headers that never end
		c := dial()
		io.WriteString(c, "POST /openid HTTP/1.1\r\nHost: x\r\n")
		conns = append(conns, c)
		trickles.Go(func() {
			for i := 0; !stop.Load() && i < 100; i++ {
				if _, err := fmt.Fprintf(c, "X-Slow-%d: 1\r\n", i); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	for range each { // a body that never ends
		c := dial()
		io.WriteString(c, "POST /openid HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
		conns = append(conns, c)
		trickles.Go(func() {
			for i := 0; !stop.Load() && i < 100; i++ {
				if _, err := io.WriteString(c, " "); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	for range each { // connected, silent
		conns = append(conns, dial())
	}
	for range each { // one login, then idle on keep-alive
		c := dial()
		io.WriteString(c, "POST /openid HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"code\":\"abc\"}")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("keep-alive login: %v", err)
		}
		conns = append(conns, c)
	}

	// With all of those pinned, ordinary clients are served.
	s := &testService{Server: svc}
	for i := range 20 {
		if a := s.login(t, fmt.Sprintf("normal%d", i)); a.status != 200 {
			t.Errorf("an ordinary login among slow clients = %d %s", a.status, a.raw)
		}
	}

	// The server cuts every one of them: reads end well before the trickles
	// (100 × 50 ms) would have.
	var cut sync.WaitGroup
	var open atomic.Int32
	for _, c := range conns {
		cut.Go(func() {
			c.SetReadDeadline(time.Now().Add(4 * time.Second))
			_, err := io.Copy(io.Discard, c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				open.Add(1) // still open after 4 s: not cut by the server
			}
			c.Close()
		})
	}
	cut.Wait()
	stop.Store(true)
	trickles.Wait()
	if n := open.Load(); n > 0 {
		t.Errorf("%d of %d slow or idle connections were not closed by the server", n, len(conns))
	}
}

// TestShutdownUnderLoad cancels run's context (what SIGTERM does) in the
// middle of a stream of logins: every login WeChat saw gets its answer, the
// listener refuses new connections, and run returns nil (exit 0).
func TestShutdownUnderLoad(t *testing.T) {
	t.Parallel()
	var seen sync.Map // codes WeChat answered
	f := newFakeWeChat(t, func(w http.ResponseWriter, r *http.Request) {
		code := r.URL.Query().Get("js_code")
		time.Sleep(10 * time.Millisecond)
		seen.Store(code, true)
		wechatJSON(w, `{"openid":"o`+code+`"}`)
	})
	in := startRun(t, map[string]string{"WX_APPID": testAppID, "WX_SECRET": testSecret,
		"WX_API_BASE_URL": f.URL, "SHUTDOWN_TIMEOUT": "5s"})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}

	var answered sync.Map // codes that got a 200
	var done atomic.Int64
	var seq atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := 0; i < 2000; i++ { // bounded; shutdown ends it much sooner
				code := fmt.Sprintf("shut%d", seq.Add(1))
				resp, err := client.Post(in.url+"/openid", "application/json", strings.NewReader(`{"code":"`+code+`"}`))
				if err != nil {
					return // refused or cut: the server never took it
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode == 200 && strings.Contains(string(body), `"o`+code+`"`) {
					answered.Store(code, true)
					done.Add(1)
				}
			}
		})
	}
	waitFor(t, func() bool { return done.Load() >= 200 })
	in.cancel() // SIGTERM
	wg.Wait()   // the workers stop once the listener refuses them
	if err := in.stop(t); err != nil {
		t.Errorf("run = %v, want nil (exit 0)", err)
	}

	lost := 0
	seen.Range(func(code, _ any) bool {
		if _, ok := answered.Load(code); !ok {
			lost++
		}
		return true
	})
	if lost > 0 {
		t.Errorf("%d logins reached WeChat but got no answer", lost)
	}
	if c, err := net.DialTimeout("tcp", in.addr, time.Second); err == nil {
		c.Close()
		t.Errorf("a connection was accepted after shutdown")
	}
}
