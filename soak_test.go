package main

// Hardening: a fault-and-load soak, load shedding, slow and idle clients,
// and shutdown under load. All traffic stays on loopback; every loop is
// bounded in count, and every wait in time.

import (
	"bufio"
	"encoding/json"
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

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
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

// soakWeChat is the fake WeChat misbehaving by code, on a server that
// counts its open connections.
type soakWeChat struct {
	*httptest.Server
	fake *wechat.Fake
	open atomic.Int64
}

func newSoakWeChat(t testing.TB) *soakWeChat {
	t.Helper()
	f := &soakWeChat{fake: wechat.NewFake(wechat.FakeOptions{Apps: testApps, Record: true})}
	var mu sync.Mutex
	seen := map[string]int{} // calls per code so far, for busyonce
	f.fake.Intercept(wechat.Code2SessionPath, func(w http.ResponseWriter, r *http.Request) {
		code := r.URL.Query().Get("js_code")
		mu.Lock()
		seen[code]++
		n := seen[code]
		mu.Unlock()
		kind, _, _ := strings.Cut(code, "-")
		ok := map[string]string{"openid": "o" + code, "session_key": "SoakSessionKey"}
		switch kind {
		case "ok":
			wechat.Answer(w, ok)
		case "slow":
			time.Sleep(5 * time.Millisecond)
			wechat.Answer(w, ok)
		case "busyonce":
			if n == 1 {
				wechat.AnswerError(w, wechat.CodeBusy)
				return
			}
			wechat.Answer(w, ok)
		case "busy":
			wechat.AnswerError(w, wechat.CodeBusy)
		case "limit":
			wechat.AnswerError(w, wechat.CodeRateLimited)
		case "garbage":
			wechatJSON(w, "<html>502 Bad Gateway "+code+"</html>")
		case "huge":
			wechatJSON(w, `{"openid":"o`+code+`","pad":"`+strings.Repeat("x", 70<<10)+`"}`)
		case "e500":
			http.Error(w, "internal error", 500)
		case "reset":
			cutConnection(w, r)
		case "hang":
			<-r.Context().Done()
		default:
			http.Error(w, "unknown kind", 400)
		}
	})
	f.Server = httptest.NewUnstartedServer(f.fake)
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
// answer, what WeChat received, that nothing leaks afterwards, and that the
// log holds no secret.
func TestSoak(t *testing.T) {
	total, workers := 20000, 128
	if testing.Short() {
		total = 2000
	}
	f := newSoakWeChat(t)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := testConfig()
	cfg.MaxInflight = defaultMaxInflight
	// The client's connections to WeChat are the test's, to close them at
	// the end; sized as the client sizes its own for MAX_INFLIGHT.
	upstream := http.DefaultTransport.(*http.Transport).Clone()
	upstream.MaxIdleConns, upstream.MaxIdleConnsPerHost = cfg.MaxInflight, cfg.MaxInflight
	// WX_TIMEOUT: long enough that no answering login hits it even under the
	// race detector on 2 cores; each hang costs that much.
	wx := wechat.NewClient(wechat.Options{BaseURL: f.URL, Apps: cfg.Apps, Timeout: cfg.Timeout, MaxIdle: cfg.MaxInflight,
		Transport: upstream, RetryDelay: time.Millisecond})
	tok := token.New(token.Options{Keys: hmacKeys(testKey), TTL: time.Hour, Issuer: defaultIssuer})
	svc := httptest.NewUnstartedServer(nil)
	svc.Config = newHTTPServer(newServer(cfg, logger, wx, tok, newMetrics("soak", cfg.appIDs())), logger, cfg.Timeout, productionTimeouts)
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
	var next, mismatches atomic.Int64
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

	// WeChat received each code exactly as often as it should have, each
	// time for our app with its secret, and nothing else.
	calls := f.fake.Calls()
	perCode := map[string]int{}
	for _, c := range calls {
		q := c.Query
		if c.Method != "GET" || c.Path != wechat.Code2SessionPath || q.Get("appid") != testAppID || q.Get("secret") != testSecret || q.Get("grant_type") != "authorization_code" {
			t.Errorf("WeChat received %s %s for appid %q (secret right: %v), want only code2Session GETs for %s", c.Method, c.Path, q.Get("appid"), q.Get("secret") == testSecret, testAppID)
			break
		}
		perCode[q.Get("js_code")]++
	}
	wrong := 0
	for code, n := range perCode {
		kind, _, _ := strings.Cut(code, "-")
		for _, k := range soakKinds {
			if k.kind == kind && n != k.calls {
				if wrong++; wrong <= 5 {
					t.Errorf("WeChat received %s %d times, want %d", code, n, k.calls)
				}
			}
		}
	}
	if wrong > 5 {
		t.Errorf("… and %d more codes received a wrong number of times", wrong-5)
	}
	if len(perCode) != total {
		t.Errorf("WeChat received %d distinct codes, want %d", len(perCode), total)
	}

	// Nothing leaks: once idle connections are closed, the fake has no open
	// connection and the goroutines are back to the baseline.
	client.CloseIdleConnections()
	upstream.CloseIdleConnections()
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
func checkSoakLogin(client *http.Client, base, code string, status int, wantErr string, tok *token.Set) error {
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
	var a map[string]any
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Errorf("%s: answer %q is not JSON: %v", code, body, err)
	}
	if status != 200 {
		if a["error"] != wantErr || len(a) != 2 {
			return fmt.Errorf("%s: %s, want error %s", code, body, wantErr)
		}
		if ra := map[string]string{"rate_limited": "60", "unavailable": "1"}[wantErr]; resp.Header.Get("Retry-After") != ra {
			return fmt.Errorf("%s: Retry-After %q, want %q", code, resp.Header.Get("Retry-After"), ra)
		}
		return nil
	}
	if a["openid"] != "o"+code {
		return fmt.Errorf("%s: %s, want its openid", code, body)
	}
	signed, _ := a["token"].(string)
	if c, err := tok.Verify(signed); err != nil || c.Subject != "o"+code || !c.Audience.Contains(testAppID) {
		return fmt.Errorf("%s: token does not verify for its openid and app: %v", code, err)
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
	s := newTestService(t, withMaxInflight(limit))
	s.wechat.Intercept(wechat.Code2SessionPath, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if strings.HasPrefix(q.Get("js_code"), "hold") {
			held.Add(1)
			select {
			case <-release:
			case <-time.After(20 * time.Second):
			}
		}
		wechat.Answer(w, map[string]string{"openid": wechat.MockOpenID(q.Get("appid"), q.Get("js_code"))})
	})

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
	if calls := s.wechat.CallsTo(wechat.Code2SessionPath); len(calls) != limit {
		t.Errorf("WeChat received %d requests, want only the %d holders", len(calls), limit)
	} else {
		for _, c := range calls {
			if !strings.HasPrefix(c.Query.Get("js_code"), "hold") {
				t.Errorf("WeChat received a refused login's code")
			}
		}
	}

	close(release)
	for range limit {
		if a := <-holders; a.status != 200 {
			t.Errorf("holder = %d %s, want 200", a.status, a.raw)
		}
	}
	for i := range 2 * limit {
		code := fmt.Sprintf("after%d", i)
		if a := s.login(t, code); a.status != 200 || a.str("openid") != wechat.MockOpenID(testAppID, code) {
			t.Errorf("login after the load dropped = %d %s, want 200 with its openid", a.status, a.raw)
		}
	}
}

// TestSlowClients opens hundreds of connections that trickle their headers
// or body, or sit idle, against a server with short timeouts: each is cut
// off by the server, while other clients keep being served.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	_, fake := newFake(t, testApps)
	logger := slog.New(slog.DiscardHandler)
	cfg := testConfig()
	wx := wechat.NewClient(wechat.Options{BaseURL: fake.URL, Apps: cfg.Apps, Timeout: time.Second, MaxIdle: 16})
	timeouts := serverTimeouts{readHeader: 300 * time.Millisecond, read: 600 * time.Millisecond, idle: 300 * time.Millisecond}
	svc := httptest.NewUnstartedServer(nil)
	svc.Config = newHTTPServer(newServer(cfg, logger, wx, nil, newMetrics("t", cfg.appIDs())), logger, time.Second, timeouts)
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
	for i := range 20 {
		code := fmt.Sprintf("normal%d", i)
		if a := loginAt(t, svc.URL, code); a.status != 200 || a.str("openid") != wechat.MockOpenID(testAppID, code) {
			t.Errorf("an ordinary login among slow clients = %d %s, want 200 with its openid", a.status, a.raw)
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
// middle of a stream of logins: every login WeChat received gets its
// answer, the listener refuses new connections, and run returns nil (exit 0).
func TestShutdownUnderLoad(t *testing.T) {
	t.Parallel()
	var seen sync.Map // codes WeChat answered
	f, srv := newFake(t, testApps)
	f.Intercept(wechat.Code2SessionPath, func(w http.ResponseWriter, r *http.Request) {
		code := r.URL.Query().Get("js_code")
		time.Sleep(10 * time.Millisecond)
		seen.Store(code, true)
		wechat.Answer(w, map[string]string{"openid": "o" + code})
	})
	in := startRun(t, realEnvFor(srv.URL, "SHUTDOWN_TIMEOUT", "5s"))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}

	var answered sync.Map // codes that got a 200
	var done, seq atomic.Int64
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
				var a map[string]any
				if err == nil && resp.StatusCode == 200 && json.Unmarshal(body, &a) == nil && a["openid"] == "o"+code {
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

	lost, reached := 0, 0
	seen.Range(func(code, _ any) bool {
		reached++
		if _, ok := answered.Load(code); !ok {
			lost++
		}
		return true
	})
	if lost > 0 {
		t.Errorf("%d of %d logins reached WeChat but got no answer", lost, reached)
	}
	if n := len(f.CallsTo(wechat.Code2SessionPath)); n < reached {
		t.Errorf("the fake recorded %d calls, fewer than the %d codes it answered", n, reached)
	}
	if c, err := net.DialTimeout("tcp", in.addr, time.Second); err == nil {
		c.Close()
		t.Errorf("a connection was accepted after shutdown")
	}
}
