package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
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
			cancel()
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

// waitFor waits up to 10 s for cond, checking every 5 ms.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
	}
}

// cutConnection closes the connection without answering.
func cutConnection(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// realEnvFor is the environment of a real-mode instance that talks to the
// fake WeChat at base.
func realEnvFor(base string, kv ...string) map[string]string {
	return with(map[string]string{"WX_APPID": testAppID, "WX_SECRET": testSecret, "WX_API_BASE_URL": base}, kv...)
}

func TestRunMock(t *testing.T) {
	t.Parallel()
	in := startRun(t, map[string]string{"WX_MOCK": "1"})
	a := in.login(t, "abc")
	if a.status != 200 || a.str("openid") != wechat.MockOpenID(mockAppID, "abc") || a.str("unionid") != wechat.MockUnionID("abc") || a.str("token") == "" {
		t.Errorf("mock login = %d %s, want 200 with the fake's openid and unionid for %s, and a token", a.status, a.raw, mockAppID)
	}
	wantError(t, in.login(t, wechat.MockRisky), 403, "user_blocked")
	wantError(t, in.login(t, wechat.MockInvalid), 401, "invalid_code")
	if a := do(t, mustRequest("GET", in.url+"/healthz")); a.status != 200 || a.str("status") != "ok" {
		t.Errorf("GET /healthz = %d %s, want 200 ok", a.status, a.raw)
	}
	var warned, listening map[string]any
	for _, l := range in.logs.lines(t) {
		if msg, _ := l["msg"].(string); strings.HasPrefix(msg, "mock mode") && l["level"] == "WARN" {
			warned = l
		} else if msg == "listening" {
			listening = l
		}
	}
	if warned == nil || warned["appid"] != mockAppID || !strings.HasPrefix(fmt.Sprint(warned["fake_wechat"]), "http://127.0.0.1:") {
		t.Errorf("mock mode's WARN line = %v, want one naming %s and a loopback fake WeChat", warned, mockAppID)
	}
	if listening == nil || listening["mock"] != true || listening["wechat"] != warned["fake_wechat"] || listening["tokens"] != "HS256" {
		t.Errorf("listening line = %v, want mock true, the fake's URL and HS256 tokens", listening)
	}
	if err := in.stop(t); err != nil {
		t.Errorf("run after cancel = %v, want nil", err)
	}
}

// TestRunReal runs real mode against the fake WeChat, through the base URL
// setting, and checks what WeChat received.
func TestRunReal(t *testing.T) {
	t.Parallel()
	f, srv := newFake(t, testApps)
	in := startRun(t, realEnvFor(srv.URL+"/", "TOKEN_SECRET", testKey))
	a := in.login(t, "abc")
	if a.status != 200 || a.str("openid") != wechat.MockOpenID(testAppID, "abc") || a.str("token") == "" {
		t.Errorf("login = %d %s, want 200 with the fake's openid and a token", a.status, a.raw)
	}
	calls := f.Calls()
	if len(calls) != 1 {
		t.Fatalf("WeChat received %d calls, want 1", len(calls))
	}
	c := calls[0]
	want := map[string][]string{"appid": {testAppID}, "secret": {testSecret}, "js_code": {"abc"}, "grant_type": {"authorization_code"}}
	if c.Method != "GET" || c.Path != wechat.Code2SessionPath || !reflect.DeepEqual(map[string][]string(c.Query), want) {
		t.Errorf("WeChat received %s %s with %d query values, want GET %s with exactly appid, secret, js_code and grant_type", c.Method, c.Path, len(c.Query), wechat.Code2SessionPath)
	}
	if !strings.Contains(in.logs.String(), "plain http") {
		t.Errorf("no warning about a plain-http base URL in:\n%s", in.logs)
	}
	if strings.Contains(in.logs.String(), testSecret) {
		t.Errorf("the log contains the AppSecret")
	}
}

// TestGracefulShutdown checks that a login in flight when SIGTERM comes
// gets its answer, that new connections are refused, and that run returns
// nil.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	f, srv := newFake(t, testApps)
	f.Intercept(wechat.Code2SessionPath, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		wechat.Answer(w, map[string]string{"openid": "o1"})
	})
	in := startRun(t, realEnvFor(srv.URL))
	answered := make(chan answer, 1)
	go func() { answered <- in.login(t, "abc") }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the login did not reach WeChat within 10s")
	}

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
	if !strings.Contains(in.logs.String(), `"msg":"stopped"`) {
		t.Errorf("no \"stopped\" line after a clean shutdown:\n%s", in.logs)
	}
}

// TestShutdownTimeout checks that requests still in flight when
// SHUTDOWN_TIMEOUT runs out are closed and run reports it (exit 1).
func TestShutdownTimeout(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	f, srv := newFake(t, testApps)
	f.Intercept(wechat.Code2SessionPath, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	})
	in := startRun(t, realEnvFor(srv.URL, "WX_TIMEOUT", "20s", "SHUTDOWN_TIMEOUT", "100ms"))
	go func() {
		resp, err := http.Post(in.url+"/openid", "application/json", strings.NewReader(`{"code":"abc"}`))
		if err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the login did not reach WeChat within 10s")
	}
	start := time.Now()
	err := in.stop(t)
	if _, ok := errors.AsType[*configError](err); err == nil || ok || !strings.Contains(err.Error(), "100ms") {
		t.Errorf("run = %v, want a shutdown error naming the 100ms grace (exit 1)", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("run took %v after SIGTERM, want about SHUTDOWN_TIMEOUT (100ms)", d)
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
	if _, ok := errors.AsType[*configError](err); err == nil || ok || !strings.HasPrefix(err.Error(), "listen: ") {
		t.Errorf("run on a busy address = %v, want a listen error (exit 1)", err)
	}
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	in := startRun(t, map[string]string{"WX_MOCK": "1"})
	_, port, _ := net.SplitHostPort(in.addr)
	healthcheck := func(env map[string]string) error {
		return run(context.Background(), []string{"wxlogin", "-healthcheck"}, envOf(env), io.Discard, &syncBuffer{})
	}
	for _, env := range []map[string]string{
		{"WX_MOCK": "1", "ADDR": in.addr},
		{"WX_MOCK": "1", "ADDR": ":" + port},
		{"WX_MOCK": "1", "ADDR": "0.0.0.0:" + port},
		{"WX_MOCK": "1", "PORT": port},
	} {
		if err := healthcheck(env); err != nil {
			t.Errorf("-healthcheck with %v: %v, want nil", env, err)
		}
	}
	// Draining: /healthz answers 503, and the check fails.
	drained := startRun(t, map[string]string{"WX_MOCK": "1", "DRAIN_DELAY": "2s"})
	drained.cancel()
	waitFor(t, func() bool { return strings.Contains(drained.logs.String(), `"msg":"draining`) })
	if err := healthcheck(map[string]string{"ADDR": drained.addr}); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("-healthcheck of a draining instance = %v, want an error naming 503", err)
	}
	in.stop(t)
	if err := healthcheck(map[string]string{"WX_MOCK": "1", "ADDR": in.addr}); err == nil {
		t.Errorf("-healthcheck of a stopped instance = nil, want an error")
	}
}

// TestExitStatus runs the real main() in a child process: a bad setting
// is exit 2 and exactly one line on stderr, naming the setting and never
// the secret; a failure at run time is exit 1.
func TestExitStatus(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() }) // after the parallel subtests, not when this function returns
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := free.Addr().String() // nothing listens there
	free.Close()
	realVars := []string{"WX_APPID=" + testAppID, "WX_SECRET=" + testSecret}
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
		{append(realVars, "TOKEN_SECRET="+token.DevelopmentKey), "", 2, "wxlogin: TOKEN_SECRET: key 1 "},
		{append(realVars, "TOKEN_SECRET="+strings.Repeat("x", 32)), "", 2, "wxlogin: TOKEN_SECRET: key 1 "},
		{append(realVars, "TOKEN_SECRET="+testKey+","+testKey[:20]), "", 2, "wxlogin: TOKEN_SECRET: key 2 "},
		{[]string{"WX_MOCK=1", "ADDR=" + ln.Addr().String()}, "", 1, "wxlogin: listen: "},
		{[]string{"WX_MOCK=1", "ADDR=" + closed}, "-healthcheck", 1, "wxlogin: healthcheck: "},
		{[]string{"WX_MOCK=1", "ADDR=nonsense"}, "-healthcheck", 1, "wxlogin: healthcheck: ADDR: "},
		{nil, "-version", 0, "wxlogin "},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.stderr), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0])
			cmd.Env = append([]string{"WXLOGIN_TEST_MAIN=1", "WXLOGIN_TEST_ARGS=" + tt.args}, tt.env...)
			var stderr syncBuffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			status := 0
			if ee, ok := errors.AsType[*exec.ExitError](err); ok {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			out := stderr.String()
			lines := strings.Split(strings.TrimSpace(out), "\n")
			last := lines[len(lines)-1]
			if status != tt.status || !strings.HasPrefix(last, tt.stderr) {
				t.Errorf("wxlogin %s with %v: exit %d, stderr %q; want exit %d and %q", tt.args, tt.env, status, out, tt.status, tt.stderr)
			}
			if tt.status != 1 && len(lines) != 1 {
				t.Errorf("wxlogin %s with %v: stderr has %d lines, want 1:\n%s", tt.args, tt.env, len(lines), out)
			}
			for _, s := range []string{testSecret, token.DevelopmentKey, strings.Repeat("x", 32), testKey[:20]} {
				if strings.Contains(out, s) {
					t.Errorf("wxlogin %s: stderr %q shows a secret", tt.args, out)
				}
			}
		})
	}
}

// TestGenKey: -genkey prints a P-256 key that TOKEN_KEY_FILE takes.
func TestGenKey(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"wxlogin", "-genkey"}, envOf(nil), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(out.Bytes())
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("-genkey printed %d bytes, want exactly one PRIVATE KEY block", out.Len())
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if ec, ok := k.(*ecdsa.PrivateKey); err != nil || !ok || ec.Curve != elliptic.P256() {
		t.Fatalf("-genkey key = %T, %v; want P-256", k, err)
	}
	c, err := loadConfig(nil, envOf(with(realEnv, "TOKEN_KEY_FILE", writeKeyFile(t, out.Bytes()))), io.Discard)
	if err != nil || len(c.KeyFile) != 1 || c.KeyFile[0].Alg() != token.ES256 || len(c.TokenKeys) != 1 {
		t.Errorf("the -genkey key as TOKEN_KEY_FILE: %d keys, %v; want one ES256 key", len(c.KeyFile), err)
	}
	var again bytes.Buffer
	run(context.Background(), []string{"wxlogin", "-genkey"}, envOf(nil), &again, io.Discard)
	if bytes.Equal(out.Bytes(), again.Bytes()) {
		t.Errorf("two runs of -genkey printed the same key")
	}
}

// TestLogsNeverLeak drives every kind of failure through the whole program
// at debug level and checks the log holds no secret, code or session_key.
func TestLogsNeverLeak(t *testing.T) {
	t.Parallel()
	const sessionKey = "SessionKeyValue0123456789"
	errcode := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { wechat.AnswerError(w, code) }
	}
	raw := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { wechatJSON(w, body) }
	}
	faults := map[string]http.HandlerFunc{
		"ok":      raw(`{"openid":"o1","session_key":"` + sessionKey + `"}`),
		"invalid": errcode(wechat.CodeInvalidCode),
		"busy":    errcode(wechat.CodeBusy),
		"config":  errcode(wechat.CodeInvalidSecret),
		"unknown": errcode(12345),
		"status":  func(w http.ResponseWriter, r *http.Request) { http.Error(w, r.URL.RawQuery, 500) },
		"garbage": raw("garbage " + sessionKey),
		"nouser":  raw(`{"session_key":"` + sessionKey + `"}`),
		"huge":    raw(`{"session_key":"` + sessionKey + strings.Repeat("x", 70<<10) + `"}`),
		"hangup":  cutConnection,
		"hang":    func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
		"echo": func(w http.ResponseWriter, r *http.Request) {
			wechatJSON(w, `{"errcode":40029,"errmsg":"`+r.URL.RawQuery+`"}`)
		},
		"echolong": func(w http.ResponseWriter, r *http.Request) {
			// The secret straddles the 200-byte cut: scrubbed first, then cut.
			wechatJSON(w, `{"errcode":40029,"errmsg":"`+strings.Repeat("é", 95)+testSecret+`"}`)
		},
	}
	f, srv := newFake(t, testApps)
	f.Intercept(wechat.Code2SessionPath, func(w http.ResponseWriter, r *http.Request) {
		kind, _, _ := strings.Cut(r.URL.Query().Get("js_code"), "Z")
		faults[kind](w, r)
	})
	in := startRun(t, realEnvFor(srv.URL, "WX_TIMEOUT", "300ms", "LOG_LEVEL", "debug"))
	var codes []string
	for kind := range faults {
		code := kind + "ZSecretCode" + kind
		codes = append(codes, code)
		in.login(t, code)
	}
	// Every code reached WeChat.
	seen := map[string]bool{}
	for _, c := range f.CallsTo(wechat.Code2SessionPath) {
		seen[c.Query.Get("js_code")] = true
	}
	for _, code := range codes {
		if !seen[code] {
			t.Errorf("WeChat never received the code of %s", code[:strings.Index(code, "Z")])
		}
	}
	// And once more with nothing answering at all.
	srv.Close()
	codes = append(codes, "downZSecretCode")
	wantError(t, in.login(t, "downZSecretCode"), 502, "upstream_error")
	in.stop(t)

	logs := in.logs.String()
	for _, s := range append(codes, testSecret, testSecret[:10], sessionKey, "SecretCode") {
		if strings.Contains(logs, s) {
			t.Errorf("the log contains %q:\n%s", s, logs)
		}
	}
	if n := strings.Count(logs, `"msg":"request"`); n != len(codes) {
		t.Errorf("got %d request log lines, want %d", n, len(codes))
	}
	// The errmsg WeChat sent back is in the log, scrubbed.
	if !strings.Contains(logs, "[redacted]") {
		t.Errorf("the log has no [redacted] errmsg: the echo of the query was dropped or not scrubbed")
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
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second} // a new connection each time
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
		t.Errorf("GET /healthz while draining = %d %s, want 503 draining", h.status, h.raw)
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
	cmd.Env = []string{"WXLOGIN_TEST_MAIN=1", "WXLOGIN_TEST_ARGS=-healthcheck", "ADDR=" + in.addr, "WX_TIMEOUT=junk", "TOKEN_SECRET=short"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("-healthcheck with only ADDR (and junk elsewhere): %v\n%s", err, out)
	}
}

// TestJSONNotHTMLEscaped: answers keep <, > and & as they are.
func TestJSONNotHTMLEscaped(t *testing.T) {
	t.Parallel()
	s := newTestService(t, withTokens(testKey))
	a := do(t, mustRequest("GET", s.URL+"/session"))
	if !strings.Contains(a.raw, "Bearer <token>") || strings.Contains(a.raw, `\u003c`) {
		t.Errorf("GET /session without a token = %s, want <token> unescaped", a.raw)
	}
	rec := httptest.NewRecorder()
	encode(rec, 200, map[string]string{"m": "a&b<c>"})
	if got := rec.Body.String(); got != "{\"m\":\"a&b<c>\"}\n" {
		t.Errorf("encode(a&b<c>) = %q, want it unescaped", got)
	}
}
