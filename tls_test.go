package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// writeCert writes a fresh self-signed certificate for 127.0.0.1 with this
// serial number, and its key, as PEM files in dir.
func writeCert(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "wxlogin test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	certA, keyA := writeCert(t, a, 1)
	_, keyB := writeCert(t, b, 2)
	garbage := writeFile(t, "not a certificate")
	tests := []struct {
		name      string
		args      []string
		cert, key string
		want      string
	}{
		{"pair that does not match", nil, certA, keyB, "TLS_CERT_FILE and TLS_KEY_FILE: "},
		{"missing key", nil, certA, filepath.Join(a, "missing.pem"), "TLS_KEY_FILE: "},
		{"missing certificate", nil, filepath.Join(a, "missing.pem"), keyA, "TLS_CERT_FILE: "},
		{"garbage certificate", nil, garbage, keyA, "TLS_CERT_FILE and TLS_KEY_FILE: "},
		{"key as certificate", nil, keyA, keyA, "TLS_CERT_FILE and TLS_KEY_FILE: "},
		{"pair from flags", []string{"-tls-cert", certA, "-tls-key", keyB}, "", "", "-tls-cert and -tls-key: "},
		{"certificate flag", []string{"-tls-cert", filepath.Join(a, "missing.pem")}, "", keyA, "-tls-cert: "},
	}
	for _, tt := range tests {
		env := with(realEnv)
		if tt.cert != "" {
			env["TLS_CERT_FILE"] = tt.cert
		}
		if tt.key != "" {
			env["TLS_KEY_FILE"] = tt.key
		}
		_, err := loadConfig(tt.args, envOf(env), io.Discard)
		if _, ok := errors.AsType[*configError](err); !ok || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: loadConfig = %v, want one line of exit 2 starting %q", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: loadConfig = %q shows key material", tt.name, err)
		}
	}
}

// certSerial connects with client and returns the serial number of the
// certificate served, and the HTTP version spoken.
func certSerial(t *testing.T, client *http.Client, url string) (int64, int) {
	t.Helper()
	resp, err := client.Get(url + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over TLS: %v", err)
	}
	resp.Body.Close()
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64(), resp.ProtoMajor
}

// tlsClient is a client with its own connections that trusts any
// certificate (the test's own self-signed ones) and speaks HTTP/2.
func tlsClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2: true,
	}}
}

// TestTLSReload serves HTTPS and HTTP/2, and swaps the certificate on SIGHUP
// without dropping open connections; a bad file at reload keeps the old
// one. Not parallel: it signals the whole test process.
func TestTLSReload(t *testing.T) {
	// Hold SIGHUP ourselves too, so a signal can never end the test binary.
	hold := make(chan os.Signal, 8)
	signal.Notify(hold, syscall.SIGHUP)
	defer signal.Stop(hold)

	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, 1)
	in := startRun(t, map[string]string{"WX_MOCK": "1", "TLS_CERT_FILE": certFile, "TLS_KEY_FILE": keyFile})
	url := "https://" + in.addr
	if !strings.Contains(in.logs.String(), `"msg":"serving HTTPS`) {
		t.Errorf("no startup line about serving HTTPS:\n%s", in.logs)
	}

	kept := tlsClient()
	if got, proto := certSerial(t, kept, url); got != 1 || proto != 2 {
		t.Fatalf("served certificate %d over HTTP/%d, want 1 over HTTP/2", got, proto)
	}
	if resp, err := http.Get("http://" + in.addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("plain HTTP to the HTTPS port: 200, want it refused")
		}
	}
	if err := run(context.Background(), []string{"wxlogin", "-healthcheck"}, envOf(map[string]string{
		"ADDR": in.addr, "TLS_CERT_FILE": certFile, "TLS_KEY_FILE": keyFile}), io.Discard, &syncBuffer{}); err != nil {
		t.Errorf("-healthcheck over HTTPS: %v", err)
	}

	hangup := func(logged string) {
		t.Helper()
		before := strings.Count(in.logs.String(), logged)
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		waitFor(t, func() bool { return strings.Count(in.logs.String(), logged) > before })
	}
	writeCert(t, dir, 2) // certbot renews
	hangup("TLS certificate reloaded")
	if got, _ := certSerial(t, tlsClient(), url); got != 2 {
		t.Errorf("after SIGHUP a new connection got certificate %d, want 2", got)
	}
	if got, _ := certSerial(t, kept, url); got != 1 {
		t.Errorf("the connection opened before SIGHUP got certificate %d, want it kept open (1)", got)
	}

	if err := os.WriteFile(certFile, []byte("half-written"), 0o600); err != nil {
		t.Fatal(err)
	}
	hangup("TLS certificate reload failed")
	if !strings.Contains(in.logs.String(), `"level":"ERROR","msg":"TLS certificate reload failed`) {
		t.Errorf("a failed reload is not logged at ERROR:\n%s", in.logs)
	}
	if got, _ := certSerial(t, tlsClient(), url); got != 2 {
		t.Errorf("after a bad reload a new connection got certificate %d, want the previous one (2)", got)
	}
	if err := in.stop(t); err != nil {
		t.Errorf("run = %v", err)
	}
}

// serveTLS serves handler over TLS on loopback with the server run builds
// (newHTTPServer), logging to logs at debug, and returns its address.
func serveTLS(t *testing.T, handler http.Handler, logs *syncBuffer) string {
	t.Helper()
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := newHTTPServer(handler, logger, 2*time.Second, productionTimeouts)
	certFile, keyFile := writeCert(t, t.TempDir(), 1)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestHTTP2Streams: one HTTP/2 connection carries at most 32 requests at
// once (the default, 250, would let a few connections hold thousands of
// handlers), and a body that never arrives on a stream is given up after
// bodyTimeout, not the 30 s ReadTimeout. 40 logins whose bodies stall are
// sent with net/http's own client, which keeps to what the server
// advertises: it must spread them over connections, and every one is
// answered within about bodyTimeout.
func TestHTTP2Streams(t *testing.T) {
	t.Parallel()
	built := newHTTPServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler), time.Second, productionTimeouts)
	if built.HTTP2 == nil || built.HTTP2.MaxConcurrentStreams != 32 {
		t.Errorf("newHTTPServer's HTTP2 = %+v, want MaxConcurrentStreams 32", built.HTTP2)
	}
	if testing.Short() {
		t.Skip("waits bodyTimeout (5 s)")
	}
	s := newTestService(t)
	var (
		mu              sync.Mutex
		active          = map[string]int{} // by connection: handlers running now
		most, conns, in int
	)
	count := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if active[r.RemoteAddr] == 0 && r.URL.Path == "/openid" {
			conns++
		}
		active[r.RemoteAddr]++
		most, in = max(most, active[r.RemoteAddr]), in+1
		mu.Unlock()
		defer func() {
			mu.Lock()
			active[r.RemoteAddr]--
			mu.Unlock()
		}()
		s.api.ServeHTTP(w, r)
	})
	addr := serveTLS(t, count, &syncBuffer{})
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	// One request first, so that the client has the server's SETTINGS.
	if _, proto := certSerial(t, client, "https://"+addr); proto != 2 {
		t.Fatalf("GET /healthz over HTTP/%d, want HTTP/2", proto)
	}

	const requests = 40
	type result struct {
		status int
		body   string
		took   time.Duration
		err    error
	}
	results := make(chan result, requests)
	start := time.Now()
	for range requests {
		go func() {
			body, stall := io.Pipe() // its end is never written: the body never arrives
			defer stall.Close()
			req, _ := http.NewRequest("POST", "https://"+addr+"/openid", body)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				results <- result{err: err, took: time.Since(start)}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- result{status: resp.StatusCode, body: string(b), took: time.Since(start)}
		}()
	}
	for range requests {
		r := <-results
		switch {
		case r.err != nil:
			t.Errorf("a login whose body stalls: %v after %v, want an answer within about %v", r.err, r.took, bodyTimeout)
		case r.status != 400 || !strings.Contains(r.body, `"invalid_request"`):
			t.Errorf("a login whose body stalls = %d %s, want 400 invalid_request", r.status, r.body)
		case r.took < bodyTimeout || r.took > bodyTimeout+1500*time.Millisecond:
			t.Errorf("a login whose body stalls was answered after %v, want about bodyTimeout (%v), not ReadTimeout (%v)", r.took, bodyTimeout, productionTimeouts.read)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d requests over %d connections, at most %d at once on one", in, conns, most)
	if in != requests+1 || most > 32 || conns < 2 {
		t.Errorf("%d requests reached the handler, at most %d at once on one connection, over %d connections; want %d, at most 32, at least 2",
			in, most, conns, requests+1)
	}
	if n := len(s.wechat.Calls()); n != 0 {
		t.Errorf("WeChat received %d calls for logins without a body, want 0", n)
	}
}

// TestHTTP1OnHTTP2Connection: a client that negotiates h2 and then speaks
// HTTP/1 makes its own mistake; net/http's line about it is at debug, and
// nothing is logged at warn.
func TestHTTP1OnHTTP2Connection(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	addr := serveTLS(t, http.NotFoundHandler(), &logs)
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, conn) // the server closes the connection
	const preface = "http2: server: error reading preface from client"
	waitFor(t, func() bool { return strings.Contains(logs.String(), preface) })
	for _, l := range logs.lines(t) {
		msg, _ := l["msg"].(string)
		if strings.HasPrefix(msg, preface) && l["level"] != "DEBUG" {
			t.Errorf("%q logged at %v, want DEBUG", msg, l["level"])
		}
		if l["level"] == "WARN" || l["level"] == "ERROR" {
			t.Errorf("a client's mistake logged at %v: %q", l["level"], msg)
		}
	}
}
