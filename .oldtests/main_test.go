package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMain lets a test run the real main() in a child process, to see its
// exit status and stderr.
func TestMain(m *testing.M) {
	if os.Getenv("WXLOGIN_TEST_MAIN") == "1" {
		os.Args = append([]string{"wxlogin"}, strings.Fields(os.Getenv("WXLOGIN_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// instance is the whole program started through run().
type instance struct {
	url    string
	addr   string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

var listeningRE = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// startRun starts run() with env (ADDR defaults to a free loopback port)
// and waits until it listens.
func startRun(t *testing.T, env map[string]string, args ...string) *instance {
	t.Helper()
	env = with(env)
	if env["ADDR"] == "" {
		env["ADDR"] = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- run(ctx, append([]string{"wxlogin"}, args...), envOf(env), in.logs, in.logs) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(in.logs.String()); m != nil {
			in.addr, in.url = m[1], "http://"+m[1]
			break
		}
		select {
		case err := <-in.done:
			t.Fatalf("run ended before listening: %v\n%s", err, in.logs)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("run did not listen within 10s:\n%s", in.logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Cleanup(func() { in.stop(t) })
	return in
}

// stop cancels run's context, as SIGTERM does, and returns run's error.
func (in *instance) stop(t *testing.T) error {
	t.Helper()
	in.cancel()
	select {
	case err := <-in.done:
		in.done <- err // a later stop sees the same result
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of its context ending")
		return nil
	}
}

func (in *instance) login(t *testing.T, code string) answer {
	t.Helper()
	return loginAt(t, in.url, code)
}

func TestRunMock(t *testing.T) {
	t.Parallel()
	in := startRun(t, map[string]string{"WX_MOCK": "1"})
	if a := in.login(t, "abc"); a.status != 200 || a.str("openid") != mockID("openid", mockAppID, "abc") {
		t.Errorf("mock login = %d %s, want 200 with the mock openid", a.status, a.raw)
	}
	wantError(t, in.login(t, "mock-risky"), 403, "user_blocked")
	if a := do(t, mustRequest("GET", in.url+"/healthz")); a.status != 200 {
		t.Errorf("healthz = %d", a.status)
	}
	if !strings.Contains(in.logs.String(), `"level":"WARN","msg":"mock mode`) {
		t.Errorf("no WARN line about mock mode in:\n%s", in.logs)
	}
	if err := in.stop(t); err != nil {
		t.Errorf("run after cancel = %v, want nil", err)
	}
}

func TestRunReal(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, nil)
	in := startRun(t, map[string]string{"WX_APPID": testAppID, "WX_SECRET": testSecret, "WX_API_BASE_URL": f.URL + "/"})
	if a := in.login(t, "abc"); a.status != 200 || a.str("openid") != mockID("openid", testAppID, "abc") {
		t.Errorf("login = %d %s, want 200", a.status, a.raw)
	}
	if f.callsFor("abc") != 1 {
		t.Errorf("WeChat saw the code %d times, want 1", f.callsFor("abc"))
	}
	if !strings.Contains(in.logs.String(), "plain http") {
		t.Errorf("no warning about a plain-http base URL in:\n%s", in.logs)
	}
}

// TestGracefulShutdown checks that a login in flight when SIGTERM comes
// gets its answer, that new connections are refused, and that run returns
// nil.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	f := newFakeWeChat(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		wechatJSON(w, `{"openid":"o1"}`)
	})
	in := startRun(t, map[string]string{"WX_APPID": testAppID, "WX_SECRET": testSecret, "WX_API_BASE_URL": f.URL})
	answered := make(chan answer)
	go func() { answered <- in.login(t, "abc") }()
	<-entered

	in.cancel()
	waitFor(t, func() bool { return strings.Contains(in.logs.String(), "shutting down") })
	if conn, err := net.DialTimeout("tcp", in.addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("a new connection was accepted during shutdown")
	}
	close(release)
	if a := <-answered; a.status != 200 || a.str("openid") != "o1" {
		t.Errorf("in-flight login = %d %s, want 200", a.status, a.raw)
	}
	if err := in.stop(t); err != nil {
		t.Errorf("run = %v, want nil", err)
	}
}

// TestShutdownTimeout checks that requests still in flight when
// SHUTDOWN_TIMEOUT runs out are closed and run reports it (exit 1).
func TestShutdownTimeout(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	f := newFakeWeChat(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	})
	in := startRun(t, map[string]string{"WX_APPID": testAppID, "WX_SECRET": testSecret, "WX_API_BASE_URL": f.URL,
		"WX_TIMEOUT": "20s", "SHUTDOWN_TIMEOUT": "100ms"})
	go func() {
		resp, err := http.Post(in.url+"/openid", "application/json", strings.NewReader(`{"code":"abc"}`))
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	err := in.stop(t)
	var ce *configError
	if err == nil || errors.As(err, &ce) {
		t.Errorf("run = %v, want a shutdown error (exit 1)", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
	}
}

func TestAddressInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = run(context.Background(), []string{"wxlogin", "-mock"}, envOf(map[string]string{"ADDR": ln.Addr().String()}), io.Discard, &syncBuffer{})
	var ce *configError
	if err == nil || errors.As(err, &ce) {
		t.Errorf("run on a busy address = %v, want a listen error (exit 1)", err)
	}
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	in := startRun(t, map[string]string{"WX_MOCK": "1"})
	_, port, _ := net.SplitHostPort(in.addr)
	for _, addr := range []string{in.addr, ":" + port, "0.0.0.0:" + port} {
		env := envOf(map[string]string{"WX_MOCK": "1", "ADDR": addr})
		if err := run(context.Background(), []string{"wxlogin", "-healthcheck"}, env, io.Discard, &syncBuffer{}); err != nil {
			t.Errorf("-healthcheck with ADDR=%s: %v, want nil", addr, err)
		}
	}
	env := envOf(map[string]string{"WX_MOCK": "1", "PORT": port})
	if err := run(context.Background(), []string{"wxlogin", "-healthcheck"}, env, io.Discard, &syncBuffer{}); err != nil {
		t.Errorf("-healthcheck with PORT=%s: %v, want nil", port, err)
	}
	in.stop(t)
	env = envOf(map[string]string{"WX_MOCK": "1", "ADDR": in.addr})
	if err := run(context.Background(), []string{"wxlogin", "-healthcheck"}, env, io.Discard, &syncBuffer{}); err == nil {
		t.Errorf("-healthcheck of a stopped instance = nil, want an error")
	}
}

// TestExitStatus runs the real main() in a child process.
func TestExitStatus(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := free.Addr().String() // nothing listens there
	free.Close()
	tests := []struct {
		env    []string
		args   string
		status int
		stderr string
	}{
		{nil, "", 2, "wxlogin: WX_APPID: required"},
		{[]string{"WX_APPID=a", "WX_SECRET=s", "WX_TIMEOUT=fast"}, "", 2, "wxlogin: WX_TIMEOUT: "},
		{[]string{"WX_MOCK=1"}, "-max-inflight 0", 2, "wxlogin: -max-inflight: "},
		{[]string{"WX_MOCK=1"}, "-bogus", 2, "wxlogin: flag provided but not defined: -bogus"},
		{[]string{"WX_MOCK=1", "ADDR=" + ln.Addr().String()}, "", 1, "wxlogin: listen: "},
		{[]string{"WX_MOCK=1", "ADDR=" + closed}, "-healthcheck", 1, "wxlogin: healthcheck: "},
	}
	for _, tt := range tests {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append([]string{"WXLOGIN_TEST_MAIN=1", "WXLOGIN_TEST_ARGS=" + tt.args}, tt.env...)
		var stderr syncBuffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		status := 0
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			status = ee.ExitCode()
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		last := lines[len(lines)-1]
		if status != tt.status || !strings.HasPrefix(last, tt.stderr) {
			t.Errorf("wxlogin %s with %v: exit %d, stderr %q; want exit %d and %q", tt.args, tt.env, status, stderr.String(), tt.status, tt.stderr)
		}
		if tt.status == 2 && len(lines) != 1 {
			t.Errorf("wxlogin %s with %v: stderr has %d lines, want 1:\n%s", tt.args, tt.env, len(lines), stderr.String())
		}
	}
}

// TestLogsNeverLeak drives every kind of failure through the whole program
// at debug level and checks the log holds no secret, code or session_key.
func TestLogsNeverLeak(t *testing.T) {
	t.Parallel()
	const sessionKey = "SessionKeyValue0123456789"
	faults := map[string]http.HandlerFunc{
		"ok":      stringAnswer(`{"openid":"o1","session_key":"` + sessionKey + `"}`),
		"invalid": errcodeAnswer(40029),
		"busy":    errcodeAnswer(-1),
		"config":  errcodeAnswer(40164),
		"unknown": errcodeAnswer(12345),
		"status":  func(w http.ResponseWriter, r *http.Request) { http.Error(w, r.URL.RawQuery, 500) },
		"garbage": stringAnswer("garbage " + sessionKey),
		"nouser":  stringAnswer(`{"session_key":"` + sessionKey + `"}`),
		"huge":    stringAnswer(`{"session_key":"` + sessionKey + strings.Repeat("x", 70<<10) + `"}`),
		"hangup":  hangUp,
		"hang":    func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
		"echo": func(w http.ResponseWriter, r *http.Request) {
			wechatJSON(w, `{"errcode":40029,"errmsg":"`+r.URL.RawQuery+`"}`)
		},
	}
	f := newFakeWeChat(t, func(w http.ResponseWriter, r *http.Request) {
		kind, _, _ := strings.Cut(r.URL.Query().Get("js_code"), "Z")
		faults[kind](w, r)
	})
	env := map[string]string{"WX_APPID": testAppID, "WX_SECRET": testSecret, "WX_API_BASE_URL": f.URL,
		"WX_TIMEOUT": "300ms", "LOG_LEVEL": "debug"}
	in := startRun(t, env)
	var codes []string
	for kind := range faults {
		code := kind + "ZSecretCode" + kind
		codes = append(codes, code)
		in.login(t, code)
	}
	// And once more with nothing answering at all.
	f.Close()
	codes = append(codes, "downZSecretCode")
	wantError(t, in.login(t, "downZSecretCode"), 502, "upstream_error")
	in.stop(t)

	logs := in.logs.String()
	for _, s := range append(codes, testSecret, sessionKey) {
		if strings.Contains(logs, s) {
			t.Errorf("the log contains %q:\n%s", s, logs)
		}
	}
	if n := strings.Count(logs, `"msg":"request"`); n != len(codes) {
		t.Errorf("got %d request log lines, want %d", n, len(codes))
	}
}

// TestRollingUpdate is a rolling update as Kubernetes does it: SIGTERM
// comes while clients keep opening new connections and logging in. With
// DRAIN_DELAY, /healthz turns 503 at once, every request is still served
// (new connections included) until the delay ends, and then the process
// shuts down cleanly.
func TestRollingUpdate(t *testing.T) {
	t.Parallel()
	in := startRun(t, map[string]string{"WX_MOCK": "1", "DRAIN_DELAY": "1500ms"})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // a new connection each time
	var failed, served atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			for i := 0; i < 2000; i++ { // bounded; stop ends it first
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Post(in.url+"/openid", "application/json", strings.NewReader(fmt.Sprintf(`{"code":"c%d_%d"}`, c, i)))
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
				} else {
					served.Add(1)
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	in.cancel() // SIGTERM
	waitFor(t, func() bool { return strings.Contains(in.logs.String(), `"msg":"draining`) })
	h := do(t, mustRequest("GET", in.url+"/healthz"))
	if h.status != 503 || h.str("status") != "draining" {
		t.Errorf("healthz while draining = %d %s, want 503 draining", h.status, h.raw)
	}
	before := served.Load()
	time.Sleep(700 * time.Millisecond) // load balancers still send during the delay
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d requests failed during the rolling update (%d served)", failed.Load(), served.Load())
	}
	if served.Load() == before {
		t.Errorf("no request was served while draining")
	}
	if err := in.stop(t); err != nil {
		t.Errorf("run after the drain = %v, want nil", err)
	}
}

// TestHealthcheckReducedEnvironment runs the real binary's -healthcheck
// with only ADDR, as a container health check may: exit 0.
func TestHealthcheckReducedEnvironment(t *testing.T) {
	t.Parallel()
	in := startRun(t, map[string]string{"WX_MOCK": "1"})
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{"WXLOGIN_TEST_MAIN=1", "WXLOGIN_TEST_ARGS=-healthcheck", "ADDR=" + in.addr, "WX_TIMEOUT=junk"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("-healthcheck with only ADDR (and a junk WX_TIMEOUT): %v\n%s", err, out)
	}
}

// TestJSONNotHTMLEscaped: answers keep <, > and & as they are.
func TestJSONNotHTMLEscaped(t *testing.T) {
	t.Parallel()
	s := newTestService(t, nil, withTokens(time.Now, testKey))
	a := do(t, mustRequest("GET", s.URL+"/session"))
	if !strings.Contains(a.raw, "Bearer <token>") || strings.Contains(a.raw, `\u003c`) {
		t.Errorf("answer %s escapes HTML characters", a.raw)
	}
	rec := httptest.NewRecorder()
	encode(rec, 200, map[string]string{"m": "a&b<c>"})
	if got := rec.Body.String(); got != "{\"m\":\"a&b<c>\"}\n" {
		t.Errorf("encode = %q", got)
	}
}
