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
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
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
