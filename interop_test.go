package main

// Interop: real verifiers, as a gateway or a backend would run them, check
// tokens from a running wxlogin, configured with the README's own recipes.
// Each test skips with a note where its tool is not installed (.ci/run
// installs them from Debian's packages: python3-jwt, haproxy, caddy,
// nginx-light).

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"wxlogin/internal/token"
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

// readmeRecipe is the README's fenced code block in lang that contains
// marker, with each pair of replace applied; a replacement that finds
// nothing fails the test, so the recipe tested is the README's.
func readmeRecipe(t *testing.T, lang, marker string, replace ...string) string {
	t.Helper()
	text := readFile(t, "README.md")
	for _, m := range regexp.MustCompile("(?s)```"+regexp.QuoteMeta(lang)+"\n(.*?)```").FindAllStringSubmatch(text, -1) {
		if !strings.Contains(m[1], marker) {
			continue
		}
		block := m[1]
		for i := 0; i+1 < len(replace); i += 2 {
			if !strings.Contains(block, replace[i]) {
				t.Fatalf("the README's %s recipe no longer contains %q", lang, replace[i])
			}
			block = strings.ReplaceAll(block, replace[i], replace[i+1])
		}
		return block
	}
	t.Fatalf("the README has no %s recipe with %q", lang, marker)
	return ""
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
	const issuer = "https://login.example.com"
	for alg, key := range map[string]any{"ES256": newP256(t), "EdDSA": newEd25519(t)} {
		in := startRun(t, map[string]string{"WX_MOCK": "1", "TOKEN_KEY_FILE": writeKeyFile(t, pemOf(t, false, key)), "TOKEN_ISSUER": issuer})
		a := in.login(t, "pyjwt")
		verify := func(tok, aud string) (string, error) {
			out, err := exec.Command(py, "-c", script, in.url+"/.well-known/jwks.json", tok, aud, issuer, alg).CombinedOutput()
			return strings.TrimSpace(string(out)), err
		}
		if sub, err := verify(a.str("token"), mockAppID); err != nil || sub != a.str("openid") {
			t.Errorf("%s: PyJWT says %q, %v; want the openid %s", alg, sub, err, a.str("openid"))
		}
		tok := a.str("token")
		if out, err := verify(tok[:len(tok)-4]+"AAAA", mockAppID); err == nil {
			t.Errorf("%s: PyJWT accepted a tampered token: %s", alg, out)
		}
		if out, err := verify(tok, "wxother"); err == nil {
			t.Errorf("%s: PyJWT accepted the token for another audience: %s", alg, out)
		}
	}
}

// TestInteropHAProxy verifies an ES256 token with HAProxy's jwt_verify, as
// the README's recipe configures it: the public key from the key file, the
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
	recipe := readmeRecipe(t, "haproxy", "jwt_verify",
		"bind :443 ssl crt /etc/haproxy/site.pem", "bind 127.0.0.1:"+port,
		"/etc/haproxy/wxlogin-pub.pem", pub,
		"wx0123456789abcdef", mockAppID,
		"default_backend app", `http-request return status 200 content-type text/plain lf-string "openid=%[req.hdr(X-Openid)]"`)
	cfg := filepath.Join(dir, "haproxy.cfg")
	conf := "defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n" + recipe
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startTool(t, "127.0.0.1:"+port, haproxy, "-db", "-f", cfg)

	get := func(tok string) (int, string) {
		return plainAnswer(t, bearerRequest("GET", "http://127.0.0.1:"+port+"/api/orders", tok))
	}
	a := in.login(t, "haproxy")
	if status, body := get(a.str("token")); status != 200 || body != "openid="+a.str("openid") {
		t.Errorf("HAProxy with a good token: %d %q, want 200 and the openid", status, body)
	}
	// Tokens it must refuse: tampered, none, expired, another audience or
	// issuer, HS256 keyed with the public key.
	keys, err := token.ParseKeys(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	signer := func(issuer string, now time.Time, aud string) string {
		t.Helper()
		v, err := token.New(token.Options{Keys: keys, TTL: time.Hour, Issuer: issuer, Now: fixedClock(now)}).
			Sign(token.Claims{Subject: "oX", Audience: token.Audience{aud}})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	now := time.Now()
	if status, _ := get(signer(defaultIssuer, now, mockAppID)); status != 200 {
		t.Errorf("HAProxy with a token signed here: %d, want 200 (the refusals below would prove nothing)", status)
	}
	tok := a.str("token")
	for name, bad := range map[string]string{
		"tampered":                        tok[:len(tok)-4] + "AAAA",
		"no":                              "",
		"expired":                         signer(defaultIssuer, now.Add(-2*time.Hour), mockAppID),
		"another audience's":              signer(defaultIssuer, now, "wxother"),
		"another issuer's":                signer("evil", now, mockAppID),
		"HS256 keyed with the public key": resignToken(tok, `{"alg":"HS256","typ":"JWT"}`, hmacSHA256(publicPEM(t, key))),
	} {
		if status, _ := get(bad); status != 401 {
			t.Errorf("HAProxy with %s token: %d, want 401", name, status)
		}
	}
}

// resignToken replaces a token's header and signs it with sign.
func resignToken(tok, header string, sign func(input string) []byte) string {
	b64 := base64.RawURLEncoding
	_, rest, _ := strings.Cut(tok, ".")
	payload, _, _ := strings.Cut(rest, ".")
	input := b64.EncodeToString([]byte(header)) + "." + payload
	return input + "." + b64.EncodeToString(sign(input))
}

func hmacSHA256(key []byte) func(string) []byte {
	return func(input string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(input))
		return m.Sum(nil)
	}
}

// echoApp is the API behind a gateway: it answers with the method and the
// identity headers the gateway passed on.
func echoApp(t *testing.T) *httptest.Server {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s openid=%s appid=%s unionid=%s", r.Method, r.Header.Get("X-Openid"), r.Header.Get("X-Appid"), r.Header.Get("X-Unionid"))
	}))
	t.Cleanup(app.Close)
	return app
}

// TestInteropCaddy puts Caddy's forward_auth in front of an API, asking
// GET /session, with the README's recipe.
func TestInteropCaddy(t *testing.T) {
	t.Parallel()
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("SKIP interop: caddy not installed (Debian caddy)")
	}
	in := startRun(t, map[string]string{"WX_MOCK": "1"})
	app := echoApp(t)
	port := freePort(t)
	recipe := readmeRecipe(t, "caddyfile", "forward_auth",
		"api.example.com {", "http://127.0.0.1:"+port+" {\n\tbind 127.0.0.1",
		"forward_auth 127.0.0.1:2020", "forward_auth "+in.addr,
		"reverse_proxy 127.0.0.1:8080", "reverse_proxy "+app.Listener.Addr().String())
	cfg := filepath.Join(t.TempDir(), "Caddyfile")
	conf := fmt.Sprintf("{\n\tadmin off\n\tauto_https off\n\tstorage file_system %s\n}\n", t.TempDir()) + recipe
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startTool(t, "127.0.0.1:"+port, caddy, "run", "--config", cfg, "--adapter", "caddyfile")

	a := in.login(t, "caddy")
	for _, method := range []string{"GET", "POST"} {
		status, body := plainAnswer(t, bearerRequest(method, "http://127.0.0.1:"+port+"/api", a.str("token")))
		if want := method + " openid=" + a.str("openid") + " appid=" + mockAppID + " unionid=" + a.str("unionid"); status != 200 || body != want {
			t.Errorf("%s through Caddy with a token: %d %q, want 200 %q", method, status, body, want)
		}
	}
	// Caddy passes /session's refusal through as it is.
	wantError(t, do(t, bearerRequest("GET", "http://127.0.0.1:"+port+"/api", a.str("token")+"x")), 401, "invalid_token")
	wantError(t, do(t, bearerRequest("GET", "http://127.0.0.1:"+port+"/api", "")), 401, "invalid_token")
}

// plainAnswer sends a request whose answer is plain text.
func plainAnswer(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// publicPEM is the public half of a private key, as openssl pkey -pubout
// writes it.
func publicPEM(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
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
	app := echoApp(t)
	dir, port := t.TempDir(), freePort(t)
	recipe := readmeRecipe(t, "nginx", "auth_request",
		"http://127.0.0.1:2020/session", "http://"+in.addr+"/session",
		"proxy_pass http://127.0.0.1:8080;", "proxy_pass "+app.URL+";")
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
%[3]s
  }
}
`, dir, port, recipe)
	cfg := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startTool(t, "127.0.0.1:"+port, nginx, "-p", dir, "-c", cfg)

	a := in.login(t, "nginx")
	for _, method := range []string{"GET", "POST"} {
		req, _ := http.NewRequest(method, "http://127.0.0.1:"+port+"/api/orders", strings.NewReader(`{"item":1}`))
		req.Header.Set("Authorization", "Bearer "+a.str("token"))
		status, body := plainAnswer(t, req)
		if want := method + " openid=" + a.str("openid") + " appid=" + mockAppID + " unionid="; status != 200 || body != want {
			t.Errorf("%s through nginx with a token: %d %q, want 200 %q", method, status, body, want)
		}
	}
	for name, auth := range map[string]string{"no token": "", "tampered": "Bearer " + a.str("token") + "x"} {
		req, _ := http.NewRequest("POST", "http://127.0.0.1:"+port+"/api/orders", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if status, _ := plainAnswer(t, req); status != 401 {
			t.Errorf("%s through nginx: %d, want 401", name, status)
		}
	}
}
