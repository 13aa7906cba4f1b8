package main

// BenchmarkProcessCPU measures the CPU time of the service's own process
// per request, against a minimal program (testdata/floor) that does the
// same WeChat call and signs the same kind of token: both run as child
// processes, built from this tree; the load client and the fake WeChat
// run in the test process, whose CPU is not counted. CPU is read from
// /proc/<pid>/stat (user + system time of every thread of the child).
//
//	go test -run '^$' -bench ProcessCPU -benchtime 20000x
//
// WXLOGIN_BENCH_BIN=path runs that binary as wxlogin instead of this tree's
// build (to measure an earlier version against the same floor).
//
// Each variant runs paired rounds: in each, the floor and wxlogin, fresh
// processes, serve b.N requests each at the same time, from 64 clients
// that alternate between them, so that both see the same load and the
// same noise of the machine. It reports the medians of both and of the
// per-round ratios.

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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

// tlsFake serves the fake WeChat over TLS on loopback, and writes its
// certificate where a child's SSL_CERT_FILE can name it.
func tlsFake(b *testing.B, apps []wechat.App) (url, certFile string) {
	srv := httptest.NewUnstartedServer(wechat.NewFake(wechat.FakeOptions{Apps: apps}))
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	b.Cleanup(srv.Close)
	certFile = filepath.Join(b.TempDir(), "wechat.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(certFile, pemBytes, 0o600); err != nil {
		b.Fatal(err)
	}
	return srv.URL, certFile
}

// child is a program under load, started with env on a free loopback port.
type child struct {
	cmd  *exec.Cmd
	base string
}

func startChild(b *testing.B, bin string, env []string) *child {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
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

// side is one program under load: how it starts, and what it is sent.
type side struct {
	name  string
	start func() *child
	req   func(base string, i int64) *http.Request
}

// loadCPU sends n requests to each child at once, those of side k made by
// reqs[k]: clients concurrent clients, each alternating between the
// children, so that all run under the same load and the same noise of the
// machine. After warming every connection pool it returns each child's CPU
// per request.
func loadCPU(b *testing.B, children []*child, reqs []func(string, int64) *http.Request, clients, n int) []time.Duration {
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 2 * clients, MaxIdleConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	var seq atomic.Int64
	one := func(k int) error {
		resp, err := client.Do(reqs[k](children[k].base, seq.Add(1)))
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		return nil
	}
	// clients at once, each sending its share of n rounds of one request
	// to every child, starting at a different child.
	burst := func(n int) {
		var wg sync.WaitGroup
		var left atomic.Int64
		left.Store(int64(n))
		for i := range clients {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					for k := range children {
						if err := one((i + k) % len(children)); err != nil {
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
// under the same load for rounds rounds of b.N requests each, and reports
// both CPU medians and the median of the per-round ratios (other / base).
func pairedRounds(b *testing.B, rounds int, base, other side) {
	const clients = 64
	var baseCPU, otherCPU, ratios []float64
	for range rounds {
		children := []*child{base.start(), other.start()}
		per := loadCPU(b, children, []func(string, int64) *http.Request{base.req, other.req}, clients, b.N)
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

// BenchmarkProcessCPU compares, in the service's own process:
//
//	login/ALG      a login with ALG tokens against the floor program
//	session/ALG    GET /session with one reused token against /healthz
//	phone          POST /phonenumber (warm access_token) against a login
func BenchmarkProcessCPU(b *testing.B) {
	wxlogin, floor := buildBinaries(b)
	keyFile := filepath.Join(b.TempDir(), "key.pem")
	pemKey, err := token.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pemKey, 0o600); err != nil {
		b.Fatal(err)
	}
	keys, err := token.ParseKeys(pemKey)
	if err != nil {
		b.Fatal(err)
	}
	const rounds = 7
	for _, alg := range []string{"HS256", "ES256"} {
		env := []string{"TOKEN_SECRET=" + testKey}
		set := token.New(token.Options{Keys: hmacKeys(testKey), TTL: 2 * time.Hour, Issuer: defaultIssuer})
		if alg == "ES256" {
			env = []string{"TOKEN_KEY_FILE=" + keyFile}
			set = token.New(token.Options{Keys: keys, TTL: 2 * time.Hour, Issuer: defaultIssuer})
		}
		start := func(b *testing.B, bin string, extra ...string) func() *child {
			base, certFile := tlsFake(b, testApps)
			return func() *child {
				return startChild(b, bin, append([]string{"WX_API_BASE_URL=" + base, "SSL_CERT_FILE=" + certFile,
					"WX_APPID=" + testAppID, "WX_SECRET=" + testSecret}, append(env, extra...)...))
			}
		}
		b.Run("login/"+alg, func(b *testing.B) {
			pairedRounds(b, rounds, side{"floor", start(b, floor), loginRequest}, side{"wxlogin", start(b, wxlogin), loginRequest})
		})
		tk, err := set.Sign(benchUser)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("session/"+alg, func(b *testing.B) {
			get := func(path string) func(string, int64) *http.Request {
				return func(base string, _ int64) *http.Request {
					r, _ := http.NewRequest(http.MethodGet, base+path, nil)
					r.Header["Authorization"] = []string{"Bearer " + tk}
					return r
				}
			}
			pairedRounds(b, rounds, side{"healthz", start(b, wxlogin), get("/healthz")}, side{"session", start(b, wxlogin), get("/session")})
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
		phone := func(base string, i int64) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, base+"/phonenumber", strings.NewReader(`{"code":"p`+strconv.FormatInt(i, 10)+`"}`))
			r.Header["Content-Type"] = []string{"application/json"}
			r.Header["Authorization"] = []string{"Bearer " + tk}
			return r
		}
		start := func() *child {
			base, certFile := tlsFake(b, testApps) // a fresh fake: phone codes work once
			return startChild(b, wxlogin, []string{"WX_API_BASE_URL=" + base, "SSL_CERT_FILE=" + certFile,
				"WX_APPID=" + testAppID, "WX_SECRET=" + testSecret, "TOKEN_SECRET=" + testKey, "PHONE_LIMIT=0"})
		}
		pairedRounds(b, rounds, side{"login", start, loginRequest}, side{"phone", start, phone})
	})
}

func loginRequest(base string, i int64) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, base+"/openid", strings.NewReader(`{"code":"c`+strconv.FormatInt(i, 10)+`"}`))
	r.Header["Content-Type"] = []string{"application/json"}
	return r
}
