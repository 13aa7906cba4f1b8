package main

// BenchmarkProcessCPU measures the CPU time of the service's own process
// per request, against a minimal program (testdata/floor) that makes the
// same WeChat calls and the same signatures: both run as child processes,
// built from this tree; the load client and the fake WeChat run in the
// test process, whose CPU is not counted. CPU is read from
// /proc/<pid>/stat (user + system time of every thread of the child).
//
//	go test -run '^$' -bench ProcessCPU -benchtime 20000x
//
// Each variant runs paired rounds: in each, two fresh processes serve b.N
// operations each at the same time, from 64 clients that alternate between
// them, so that both see the same load and the same noise of the machine.
// It reports the medians of both and of the per-round ratios.
//
// WXLOGIN_BENCH_BIN=path runs that binary as wxlogin instead of this tree's
// build (to measure an earlier version against the same floor).

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// clockTicks is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which Linux fixes at 100 for user space.
const clockTicks = 100

// processCPU is the user + system CPU time the process pid has used.
func processCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: cannot read utime and stime", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// buildBinaries builds wxlogin and the floor program into a temporary
// directory.
func buildBinaries(b *testing.B) (wxlogin, floor string) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc/<pid>/stat: Linux only")
	}
	dir := b.TempDir()
	wxlogin, floor = filepath.Join(dir, "wxlogin"), filepath.Join(dir, "floor")
	for _, c := range [][]string{{"-o", wxlogin, "."}, {"-o", floor, "./testdata/floor"}} {
		out, err := exec.Command("go", append([]string{"build"}, c...)...).CombinedOutput()
		if err != nil {
			b.Fatalf("go build %v: %v\n%s", c, err, out)
		}
	}
	if bin := os.Getenv("WXLOGIN_BENCH_BIN"); bin != "" {
		wxlogin = bin // another build of wxlogin, to compare it with this one
	}
	return wxlogin, floor
}

// benchFake serves the fake WeChat over TLS on loopback, and writes its
// certificate where a child's SSL_CERT_FILE can name it.
type benchFake struct {
	url      string
	certFile string
	pool     *x509.CertPool // for the load client, which follows the browser to its pages
}

func tlsFake(b *testing.B, apps []wechat.App) benchFake {
	srv := httptest.NewUnstartedServer(wechat.NewFake(wechat.FakeOptions{Apps: apps}))
	srv.StartTLS()
	b.Cleanup(srv.Close)
	f := benchFake{url: srv.URL, certFile: filepath.Join(b.TempDir(), "wechat.pem"), pool: x509.NewCertPool()}
	f.pool.AddCert(srv.Certificate())
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(f.certFile, pemBytes, 0o600); err != nil {
		b.Fatal(err)
	}
	return f
}

// freeAddr is a loopback address no one listens on.
func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// child is a program under load.
type child struct {
	cmd  *exec.Cmd
	base string
}

// startChild starts bin with env, listening on addr.
func startChild(b *testing.B, bin, addr string, env []string) *child {
	cmd := exec.Command(bin)
	cmd.Env = append(env, "ADDR="+addr, "PATH="+os.Getenv("PATH"))
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { devnull.Close() })
	cmd.Stdout, cmd.Stderr = devnull, devnull // the log is written, as in production, and dropped
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &child{cmd: cmd, base: "http://" + addr}
	b.Cleanup(c.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
			return c
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not listen on %s", bin, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the child.
func (c *child) stop() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
}

// op is one operation of a load: one request, or the several of a web
// login. client follows no redirect.
type op func(client *http.Client, base string, i int64) error

// request is the op that sends what req makes and wants 200.
func request(req func(base string, i int64) *http.Request) op {
	return func(client *http.Client, base string, i int64) error {
		_, err := roundTrip(client, req(base, i), http.StatusOK)
		return err
	}
}

// roundTrip sends req and checks the status.
func roundTrip(client *http.Client, req *http.Request, status int) (*http.Response, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status {
		return nil, fmt.Errorf("%s %s: status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, status, body)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// side is one program under load: how it starts, and what it is sent.
type side struct {
	name  string
	start func() *child
	op    op
}

// loadCPU runs n operations on each child at once, those of child k by
// ops[k]: clients concurrent clients, each alternating between the
// children, so that all run under the same load and the same noise of the
// machine. After warming every connection pool it returns each child's CPU
// per operation.
func loadCPU(b *testing.B, children []*child, ops []op, clients, n int, pool *x509.CertPool) []time.Duration {
	client := &http.Client{
		Transport:     &http.Transport{MaxIdleConns: 4 * clients, MaxIdleConnsPerHost: clients, TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	var seq atomic.Int64
	// clients at once, each running its share of n rounds of one
	// operation on every child, starting at a different child.
	burst := func(n int) {
		var wg sync.WaitGroup
		var left atomic.Int64
		left.Store(int64(n))
		for i := range clients {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					for k := range children {
						c := (i + k) % len(children)
						if err := ops[c](client, children[c].base, seq.Add(1)); err != nil {
							b.Error(err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
	}
	burst(10 * clients) // warm every pool: client → child → fake WeChat
	start := make([]time.Duration, len(children))
	for i, c := range children {
		start[i] = processCPU(b, c.cmd.Process.Pid)
	}
	burst(n)
	per := make([]time.Duration, len(children))
	for i, c := range children {
		per[i] = (processCPU(b, c.cmd.Process.Pid) - start[i]) / time.Duration(n)
	}
	return per
}

// pairedRounds runs two sides, fresh processes each round, side by side
// under the same load for rounds rounds of n operations each, and reports
// both CPU medians and the median of the per-round ratios (other / base).
func pairedRounds(b *testing.B, rounds, n int, pool *x509.CertPool, base, other side) {
	const clients = 64
	var baseCPU, otherCPU, ratios []float64
	for range rounds {
		children := []*child{base.start(), other.start()}
		per := loadCPU(b, children, []op{base.op, other.op}, clients, n, pool)
		for _, c := range children {
			c.stop()
		}
		baseCPU, otherCPU = append(baseCPU, float64(per[0])), append(otherCPU, float64(per[1]))
		ratios = append(ratios, float64(per[1])/float64(per[0]))
	}
	b.ReportMetric(median(baseCPU), base.name+"-cpu-ns/op")
	b.ReportMetric(median(otherCPU), other.name+"-cpu-ns/op")
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(slices.Min(ratios), "ratio-min")
	b.ReportMetric(slices.Max(ratios), "ratio-max")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// keyFileOf writes a new key of alg where a child's TOKEN_KEY_FILE can
// name it, and returns the path and the parsed key.
func keyFileOf(b *testing.B, alg string) (string, []*token.Key) {
	pemKey, err := token.GenerateKey(alg)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), alg+".pem")
	if err := os.WriteFile(path, pemKey, 0o600); err != nil {
		b.Fatal(err)
	}
	keys, err := token.ParseKeys(pemKey)
	if err != nil {
		b.Fatal(err)
	}
	return path, keys
}

// BenchmarkProcessCPU compares, in the service's own process:
//
//	login/ALG      a login with ALG tokens against the floor program
//	session/ALG    GET /session with one reused token against /healthz
//	phone          POST /phonenumber (warm access_token) against a login
//	web/RS256      a whole web login (authorize, callback, token) against
//	               the floor's, both signing an RS256 id_token and access
//	               token; b.N/20 of them
func BenchmarkProcessCPU(b *testing.B) {
	wxlogin, floor := buildBinaries(b)
	ecFile, ecKeys := keyFileOf(b, token.ES256)
	const rounds = 7
	for _, alg := range []string{"HS256", "ES256"} {
		env := []string{"TOKEN_SECRET=" + testKey}
		set := token.New(token.Options{Keys: hmacKeys(testKey), TTL: 2 * time.Hour, Issuer: defaultIssuer})
		if alg == "ES256" {
			env = []string{"TOKEN_KEY_FILE=" + ecFile}
			set = token.New(token.Options{Keys: ecKeys, TTL: 2 * time.Hour, Issuer: defaultIssuer})
		}
		var f benchFake
		start := func(b *testing.B, bin string, extra ...string) func() *child {
			f = tlsFake(b, testApps)
			return func() *child {
				return startChild(b, bin, freeAddr(b), append([]string{"WX_API_BASE_URL=" + f.url, "SSL_CERT_FILE=" + f.certFile,
					"WX_APPID=" + testAppID, "WX_SECRET=" + testSecret}, append(env, extra...)...))
			}
		}
		b.Run("login/"+alg, func(b *testing.B) {
			floorSide, wxSide := side{"floor", start(b, floor), request(loginRequest)}, side{"wxlogin", start(b, wxlogin), request(loginRequest)}
			pairedRounds(b, rounds, b.N, f.pool, floorSide, wxSide)
		})
		tk, err := set.Sign(benchUser)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("session/"+alg, func(b *testing.B) {
			get := func(path string) op {
				return request(func(base string, _ int64) *http.Request {
					r, _ := http.NewRequest(http.MethodGet, base+path, nil)
					r.Header["Authorization"] = []string{"Bearer " + tk}
					return r
				})
			}
			healthz, session := side{"healthz", start(b, wxlogin), get("/healthz")}, side{"session", start(b, wxlogin), get("/session")}
			pairedRounds(b, rounds, b.N, f.pool, healthz, session)
		})
	}
	b.Run("phone", func(b *testing.B) {
		set := token.New(token.Options{Keys: hmacKeys(testKey), TTL: 2 * time.Hour, Issuer: defaultIssuer})
		c := benchUser
		c.Subject = wechat.MockOpenID(testAppID, "bench")
		tk, err := set.Sign(c)
		if err != nil {
			b.Fatal(err)
		}
		phone := request(func(base string, i int64) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, base+"/phonenumber", strings.NewReader(`{"code":"p`+strconv.FormatInt(i, 10)+`"}`))
			r.Header["Content-Type"] = []string{"application/json"}
			r.Header["Authorization"] = []string{"Bearer " + tk}
			return r
		})
		var pool *x509.CertPool
		start := func() *child {
			f := tlsFake(b, testApps) // a fresh fake: phone codes work once
			pool = f.pool
			return startChild(b, wxlogin, freeAddr(b), []string{"WX_API_BASE_URL=" + f.url, "SSL_CERT_FILE=" + f.certFile,
				"WX_APPID=" + testAppID, "WX_SECRET=" + testSecret, "TOKEN_SECRET=" + testKey, "PHONE_LIMIT=0"})
		}
		pairedRounds(b, rounds, b.N, pool, side{"login", start, request(loginRequest)}, side{"phone", start, phone})
	})
	b.Run("web/RS256", func(b *testing.B) { benchWebLogin(b, wxlogin, floor, rounds) })
}

// The web login's client, registered in the clients file.
const (
	webAppID       = "wx00000000000000e1"
	webClientID    = "bench"
	webSecret      = "bench-client-secret"
	webRedirectURI = "https://app.example/callback"
)

// benchWebLogin runs whole web logins — /authorize, WeChat's page (the
// fake), /callback, /token — against wxlogin and against the floor's, both
// with an RSA key: an RS256 id_token and an RS256 access token each.
func benchWebLogin(b *testing.B, wxlogin, floor string, rounds int) {
	rsaFile, _ := keyFileOf(b, token.RS256)
	sum := sha256Hex(webSecret)
	clients := filepath.Join(b.TempDir(), "clients.json")
	if err := os.WriteFile(clients, []byte(`{"clients":[{"client_id":"`+webClientID+`","secret_sha256":"`+sum+
		`","redirect_uris":["`+webRedirectURI+`"]}]}`), 0o600); err != nil {
		b.Fatal(err)
	}
	f := tlsFake(b, []wechat.App{{ID: webAppID, Secret: testSecret}})
	start := func(bin string) func() *child {
		return func() *child {
			addr := freeAddr(b)
			return startChild(b, bin, addr, []string{"WX_API_BASE_URL=" + f.url, "WX_OPEN_BASE_URL=" + f.url, "SSL_CERT_FILE=" + f.certFile,
				"WX_WEB_APPID=" + webAppID, "WX_WEB_SECRET=" + testSecret, "TOKEN_KEY_FILE=" + rsaFile, "OIDC_CLIENTS_FILE=" + clients,
				"TOKEN_ISSUER=http://" + addr, "ISSUER=http://" + addr})
		}
	}
	// A web login costs two RSA signatures, about 20 logins' worth of CPU:
	// a twentieth of b.N of them measure as long.
	pairedRounds(b, rounds, max(b.N/20, 1), f.pool, side{"floor", start(floor), webLogin}, side{"wxlogin", start(wxlogin), webLogin})
}

// webLogin is one whole web login, as a browser and the client's server
// make it.
func webLogin(client *http.Client, base string, i int64) error {
	state := "s" + strconv.FormatInt(i, 10)
	q := url.Values{"client_id": {webClientID}, "redirect_uri": {webRedirectURI}, "response_type": {"code"},
		"scope": {"openid"}, "state": {state}, "nonce": {"n" + state}}
	authorize, err := roundTrip(client, mustRequest(http.MethodGet, base+"/authorize?"+q.Encode()), http.StatusFound)
	if err != nil {
		return err
	}
	page, _, _ := strings.Cut(authorize.Header.Get("Location"), "#")
	wechatPage, err := roundTrip(client, mustRequest(http.MethodGet, page), http.StatusFound)
	if err != nil {
		return err
	}
	cb := mustRequest(http.MethodGet, wechatPage.Header.Get("Location"))
	for _, c := range authorize.Cookies() {
		cb.AddCookie(c)
	}
	callback, err := roundTrip(client, cb, http.StatusFound)
	if err != nil {
		return err
	}
	back, err := url.Parse(callback.Header.Get("Location"))
	if err != nil || back.Query().Get("state") != state {
		return fmt.Errorf("callback: sent the browser to %q", callback.Header.Get("Location"))
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {webRedirectURI}}
	tr, _ := http.NewRequest(http.MethodPost, base+"/token", strings.NewReader(form.Encode()))
	tr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tr.SetBasicAuth(webClientID, webSecret)
	resp, err := roundTrip(client, tr, http.StatusOK)
	if err != nil {
		return err
	}
	var tok struct {
		IDToken string `json:"id_token"`
	}
	if json.NewDecoder(resp.Body).Decode(&tok) != nil || tok.IDToken == "" {
		return errors.New("token: no id_token")
	}
	return nil
}

func loginRequest(base string, i int64) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, base+"/openid", strings.NewReader(`{"code":"c`+strconv.FormatInt(i, 10)+`"}`))
	r.Header["Content-Type"] = []string{"application/json"}
	return r
}
