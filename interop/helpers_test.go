package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the wxlogin binary built for this run.
var binDir string

func TestMain(m *testing.M) {
	if os.Getenv("WXLOGIN_INTEROP_PREPARE") == "1" {
		// Only prepare the tools into their caches (oauth2-proxy built,
		// Auth.js installed); the tests run later.
		logf := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
		if modules, why := ensureAuthJS(logf); modules != "" {
			fmt.Println("Auth.js ready:", modules)
		} else {
			fmt.Println("SKIP: Auth.js:", why)
		}
		if bin, why := ensureOAuth2Proxy(logf); bin != "" {
			fmt.Println("oauth2-proxy ready:", bin)
		} else {
			fmt.Println("SKIP: oauth2-proxy:", why)
		}
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "wxlogin-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
	buildOut  []byte
)

// wxloginBinary is the wxlogin under test: WXLOGIN_BIN when set, else
// built once from the parent directory (the main module).
func wxloginBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("WXLOGIN_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(binDir, "wxlogin")
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
		cmd.Dir = ".."
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build wxlogin: %v\n%s", buildErr, buildOut)
	}
	return bin
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// syncBuffer collects a child process's output for the failure message.
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

// childEnv is the environment a child starts from: only what finding
// programs and a temporary directory need, so that settings in the
// caller's environment (WX_*, TOKEN_*, OAUTH2_PROXY_*, a proxy) cannot
// change what is tested.
func childEnv() []string {
	var env []string
	for _, name := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// startProcess runs name until the test ends and waits, at most wait,
// until addr accepts connections. Its output is returned, and shown when
// the test fails.
func startProcess(t *testing.T, addr string, wait time.Duration, env []string, name string, args ...string) *syncBuffer {
	t.Helper()
	cmd := exec.Command(name, args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(childEnv(), env...)
	// Its own process group, so that nothing it starts outlives it;
	// WaitDelay, so that a child holding the pipe cannot hang the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
	for deadline := time.Now().Add(wait); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return out
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before listening on %s:\n%s", name, addr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s within %v:\n%s", name, addr, wait, out.String())
		}
	}
}

// client is one relying party for wxlogin's clients file.
type client struct {
	ID          string
	Secret      string // "" for a public client
	RedirectURI string
	IDTokenAlg  string // "" for wxlogin's default
}

// instance is a running wxlogin.
type instance struct {
	Issuer string // http://localhost:PORT, the mock's issuer
	Log    *syncBuffer
}

// startWxlogin runs wxlogin in mock mode on 127.0.0.1 with the web login
// on for clients; env adds settings (TOKEN_KEY_FILE …).
func startWxlogin(t *testing.T, clients []client, env ...string) *instance {
	t.Helper()
	type entry struct {
		ID           string   `json:"client_id"`
		SecretSHA256 string   `json:"secret_sha256,omitempty"`
		Public       bool     `json:"public,omitempty"`
		RedirectURIs []string `json:"redirect_uris"`
		IDTokenAlg   string   `json:"id_token_alg,omitempty"`
	}
	var file struct {
		Clients []entry `json:"clients"`
	}
	for _, c := range clients {
		e := entry{ID: c.ID, Public: c.Secret == "", RedirectURIs: []string{c.RedirectURI}, IDTokenAlg: c.IDTokenAlg}
		if c.Secret != "" {
			sum := sha256.Sum256([]byte(c.Secret))
			e.SecretSHA256 = hex.EncodeToString(sum[:])
		}
		file.Clients = append(file.Clients, e)
	}
	data, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "clients.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	bin := wxloginBinary(t)
	port := freePort(t)
	addr := "127.0.0.1:" + port
	log := startProcess(t, addr, 10*time.Second, env, bin, "-mock", "-oidc-clients", path, "-addr", addr)
	return &instance{Issuer: "http://localhost:" + port, Log: log}
}

// callbackServer is a client's redirect_uri: it records what the browser
// brought back.
type callbackServer struct {
	*httptest.Server
	mu   sync.Mutex
	got  []url.Values
	path string
}

// newCallbackServer serves /callback on 127.0.0.1; its URL is given with
// host, so that a test can register http://localhost:…/callback too.
func newCallbackServer(t *testing.T) *callbackServer {
	t.Helper()
	cb := &callbackServer{path: "/callback"}
	cb.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != cb.path {
			http.NotFound(w, r)
			return
		}
		cb.mu.Lock()
		cb.got = append(cb.got, r.URL.Query())
		cb.mu.Unlock()
		io.WriteString(w, "logged in")
	}))
	t.Cleanup(cb.Close)
	return cb
}

// RedirectURI is the callback's URL with host (127.0.0.1 or localhost).
func (cb *callbackServer) RedirectURI(host string) string {
	_, port, _ := net.SplitHostPort(cb.Listener.Addr().String())
	return "http://" + net.JoinHostPort(host, port) + cb.path
}

// Queries returns the callbacks received so far.
func (cb *callbackServer) Queries() []url.Values {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return append([]url.Values(nil), cb.got...)
}

// browser is an http.Client as a browser is one: cookies, redirects
// followed (at most 10), a bound on the whole request.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	var hops []string
	return &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		hops = append(hops, req.URL.Scheme+"://"+req.URL.Host+req.URL.Path)
		if len(via) >= 10 {
			return fmt.Errorf("more than 10 redirects: %v", hops)
		}
		return nil
	}}
}

// visit GETs u with the browser, following redirects, and returns the last
// answer's status, the URL it came from and its body.
func visit(t *testing.T, b *http.Client, u string) (int, *url.URL, string) {
	t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		t.Fatalf("GET %s (following redirects): %v", redactQuery(u), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Request.URL, string(body)
}

// redactQuery drops a URL's query, which may hold a code or state.
func redactQuery(u string) string {
	base, _, _ := strings.Cut(u, "?")
	return base
}

// miniProgramUnionID asks wxlogin's mini-program login (POST /openid) for
// the unionid of code: a web login with the same mock code must give the
// same person.
func miniProgramUnionID(t *testing.T, wx *instance, code string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"code": code})
	resp, err := http.Post(wx.Issuer+"/openid", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		OpenID  string `json:"openid"`
		UnionID string `json:"unionid"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK || got.UnionID == "" {
		t.Fatalf("POST /openid = %d, %+v, %v; want 200 with a unionid", resp.StatusCode, got, err)
	}
	return got.UnionID
}

// jwtHeader decodes a JWT's header (no verification: the verifier under
// test does that).
func jwtHeader(t *testing.T, jwt string) map[string]any {
	t.Helper()
	h, _, ok := strings.Cut(jwt, ".")
	if !ok {
		t.Fatalf("not a JWT: %d bytes", len(jwt))
	}
	var header map[string]any
	if err := json.Unmarshal(decodeSegment(t, h), &header); err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	return header
}

func decodeSegment(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("JWT segment is not base64url: %v", err)
	}
	return b
}

// urlQuery is u's query.
func urlQuery(u string) (url.Values, error) {
	p, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	return p.Query(), nil
}
