package main

// Interop: real verifiers, as a gateway or a backend would run them, check
// tokens from a running wxlogin. Each test skips with a note where its tool
// is not installed (.ci/run installs them from Debian's packages:
// python3-jwt, haproxy, caddy, nginx-light).

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

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

// startTool runs a tool in the background until the test ends, and waits
// until addr accepts connections.
func startTool(t *testing.T, addr string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	// A process group, so that the tool's own children (nginx's workers)
	// end with it; WaitDelay, so that a child still holding the output
	// pipe cannot hang the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s:\n%s", name, addr, out.String())
		}
	}
}

// pythonWithJWT finds a python3 that has PyJWT (Debian's python3-jwt lives
// in /usr/bin/python3, which may not be first on PATH).
func pythonWithJWT() string {
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import jwt, cryptography").Run() == nil {
			return py
		}
	}
	return ""
}

// TestInteropPyJWT verifies ES256 and EdDSA tokens with PyJWT's
// PyJWKClient, which fetches the running service's JWKS and picks the key
// by kid, pinned to the algorithm, audience and issuer.
func TestInteropPyJWT(t *testing.T) {
	t.Parallel()
	py := pythonWithJWT()
	if py == "" {
		t.Skip("SKIP interop: PyJWT not installed (Debian python3-jwt, python3-cryptography)")
	}
	const script = `
import sys, jwt
url, token, aud, iss, alg = sys.argv[1:]
key = jwt.PyJWKClient(url).get_signing_key_from_jwt(token)
claims = jwt.decode(token, key.key, algorithms=[alg], audience=aud, issuer=iss)
print(claims["sub"])
`
	for alg, key := range map[string]any{"ES256": newP256(t), "EdDSA": newEd25519(t)} {
		in := startRun(t, map[string]string{"WX_MOCK": "1", "TOKEN_KEY_FILE": writeKeyFile(t, pemOf(t, false, key)),
			"TOKEN_ISSUER": "https://login.example.com"})
		a := in.login(t, "pyjwt")
		verify := func(token string) (string, error) {
			out, err := exec.Command(py, "-c", script, in.url+"/.well-known/jwks.json", token, mockAppID, "https://login.example.com", alg).CombinedOutput()
			return strings.TrimSpace(string(out)), err
		}
		if sub, err := verify(a.str("token")); err != nil || sub != a.str("openid") {
			t.Errorf("%s: PyJWT says %q, %v; want the openid %s", alg, sub, err, a.str("openid"))
		}
		tampered := a.str("token")[:len(a.str("token"))-4] + "AAAA"
		if out, err := verify(tampered); err == nil {
			t.Errorf("%s: PyJWT accepted a tampered token: %s", alg, out)
		}
	}
}

// TestInteropHAProxy verifies an ES256 token with HAProxy's jwt_verify, as
// the README's recipe configures it: the public key from the JWKS, the
// algorithm pinned, exp, iss and aud checked.
func TestInteropHAProxy(t *testing.T) {
	t.Parallel()
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("SKIP interop: haproxy not installed (Debian haproxy)")
	}
	key := newP256(t)
	keyPEM := pemOf(t, false, key)
	in := startRun(t, map[string]string{"WX_MOCK": "1", "TOKEN_KEY_FILE": writeKeyFile(t, keyPEM)})
	dir := t.TempDir()
	pub := filepath.Join(dir, "wxlogin-pub.pem")
	if err := os.WriteFile(pub, publicPEM(t, key), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cfg := filepath.Join(dir, "haproxy.cfg")
	os.WriteFile(cfg, []byte(fmt.Sprintf(haproxyConfig, port, pub, mockAppID)), 0o644)
	startTool(t, "127.0.0.1:"+port, haproxy, "-db", "-f", cfg)

	get := func(token string) (int, string) {
		req := mustRequest("GET", "http://127.0.0.1:"+port+"/api/orders")
		if token != "" {
			req = bearerRequest("GET", req.URL.String(), token)
		}
		return text(t, req)
	}
	a := in.login(t, "haproxy")
	if status, body := get(a.str("token")); status != 200 || body != "openid="+a.str("openid") {
		t.Errorf("HAProxy with a good token: %d %q, want 200 and the openid", status, body)
	}
	// Tokens it must refuse: tampered, none, expired, another audience.
	keys, _ := parseKeys(keyPEM)
	signer := newTokens(nil, keys, time.Hour, tokenIssuer, []string{mockAppID}, time.Now)
	now := time.Now().Unix()
	expired, _ := signer.signClaims(claims{Sub: "oX", Iat: now - 7200, Exp: now - 3600, Iss: tokenIssuer, Aud: audience{mockAppID}})
	otherAud, _ := signer.signClaims(claims{Sub: "oX", Iat: now, Exp: now + 3600, Iss: tokenIssuer, Aud: audience{"wxother"}})
	otherIss, _ := signer.signClaims(claims{Sub: "oX", Iat: now, Exp: now + 3600, Iss: "evil", Aud: audience{mockAppID}})
	for name, token := range map[string]string{
		"tampered": a.str("token")[:len(a.str("token"))-4] + "AAAA",
		"none":     "", "expired": expired, "other aud": otherAud, "other iss": otherIss,
		"HS256 keyed with the public key": resign(a.str("token"), `{"alg":"HS256","typ":"JWT"}`, hs256(publicPEM(t, key))),
	} {
		if status, _ := get(token); status != 401 {
			t.Errorf("HAProxy with %s token: %d, want 401", name, status)
		}
	}
}

// haproxyConfig is the README's HAProxy recipe with a stand-in backend.
const haproxyConfig = `
defaults
  mode http
  timeout connect 2s
  timeout client 5s
  timeout server 5s
frontend api
  bind 127.0.0.1:%[1]s
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
  http-request set-var(txn.now) date()
  http-request deny deny_status 401 unless { var(txn.alg) -m str ES256 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"%[2]s") -m int 1 }
  http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('$.iss') -m str wxlogin }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('$.aud') -m str %[3]s }
  http-request set-var(txn.openid) var(txn.bearer),jwt_payload_query('$.sub')
  http-request set-header X-Openid %%[var(txn.openid)]
  http-request return status 200 content-type text/plain lf-string "openid=%%[req.hdr(X-Openid)]"
`

// TestInteropCaddy puts Caddy's forward_auth in front of an API, asking
// GET /session, as the README's recipe does.
func TestInteropCaddy(t *testing.T) {
	t.Parallel()
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("SKIP interop: caddy not installed (Debian caddy)")
	}
	in := startRun(t, map[string]string{"WX_MOCK": "1"})
	port := freePort(t)
	cfg := filepath.Join(t.TempDir(), "Caddyfile")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %s
}
http://127.0.0.1:%s {
	bind 127.0.0.1
	forward_auth %s {
		uri /session
		copy_headers X-Openid X-Appid
	}
	respond "openid={http.request.header.X-Openid} appid={http.request.header.X-Appid}"
}
`, t.TempDir(), port, in.addr)), 0o644)
	startTool(t, "127.0.0.1:"+port, caddy, "run", "--config", cfg, "--adapter", "caddyfile")

	a := in.login(t, "caddy")
	status, body := text(t, bearerRequest("GET", "http://127.0.0.1:"+port+"/api", a.str("token")))
	if want := "openid=" + a.str("openid") + " appid=" + mockAppID; status != 200 || body != want {
		t.Errorf("through Caddy with a token: %d %q, want 200 %q", status, body, want)
	}
	bad := do(t, bearerRequest("GET", "http://127.0.0.1:"+port+"/api", a.str("token")+"x"))
	wantError(t, bad, 401, "invalid_token")
}

// text sends a request whose answer is plain text.
func text(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func publicPEM(t testing.TB, k any) []byte {
	t.Helper()
	var pub any
	switch k := k.(type) {
	case interface{ Public() crypto.PublicKey }:
		pub = k.Public()
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestInteropNginx runs the README's nginx auth_request recipe: nginx asks
// /session for every API call (a POST included, which is why the recipe
// sets proxy_method GET) and passes X-Openid and X-Appid to the app.
func TestInteropNginx(t *testing.T) {
	t.Parallel()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("SKIP interop: nginx not installed (Debian nginx-light)")
	}
	in := startRun(t, map[string]string{"WX_MOCK": "1"})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s openid=%s appid=%s", r.Method, r.Header.Get("X-Openid"), r.Header.Get("X-Appid"))
	}))
	defer app.Close()
	dir, port := t.TempDir(), freePort(t)
	conf := fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log stderr;
events {}
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:%[2]s;
    location = /_auth {
      internal;
      proxy_pass http://%[3]s/session;
      proxy_method GET;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Authorization $http_authorization;
    }
    location /api/ {
      auth_request /_auth;
      auth_request_set $openid $upstream_http_x_openid;
      auth_request_set $appid $upstream_http_x_appid;
      proxy_set_header X-Openid $openid;
      proxy_set_header X-Appid $appid;
      proxy_pass %[4]s;
    }
  }
}
`, dir, port, in.addr, app.URL)
	cfg := filepath.Join(dir, "nginx.conf")
	os.WriteFile(cfg, []byte(conf), 0o644)
	startTool(t, "127.0.0.1:"+port, nginx, "-p", dir, "-c", cfg)

	a := in.login(t, "nginx")
	for _, method := range []string{"GET", "POST"} {
		req, _ := http.NewRequest(method, "http://127.0.0.1:"+port+"/api/orders", strings.NewReader(`{"item":1}`))
		req.Header.Set("Authorization", "Bearer "+a.str("token"))
		status, body := text(t, req)
		if want := method + " openid=" + a.str("openid") + " appid=" + mockAppID; status != 200 || body != want {
			t.Errorf("%s through nginx with a token: %d %q, want 200 %q", method, status, body, want)
		}
	}
	for name, auth := range map[string]string{"no token": "", "tampered": "Bearer " + a.str("token") + "x"} {
		req, _ := http.NewRequest("POST", "http://127.0.0.1:"+port+"/api/orders", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if status, _ := text(t, req); status != 401 {
			t.Errorf("%s through nginx: %d, want 401", name, status)
		}
	}
}
