package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// oauth2ProxyVersion is the oauth2-proxy the test runs: built once with
// go install into $HOME/.cache/wxlogin-interop/bin and reused.
const (
	oauth2ProxyModule  = "github.com/oauth2-proxy/oauth2-proxy/v7"
	oauth2ProxyVersion = "v7.15.6"
)

var (
	proxyOnce sync.Once
	proxyBin  string
	proxySkip string
)

// oauth2ProxyBinary is WXLOGIN_OAUTH2_PROXY when set, else the cached
// build of oauth2ProxyVersion, built now when it is absent or another
// version. "" and a reason when there is none and it cannot be built.
func oauth2ProxyBinary(t *testing.T) (string, string) {
	t.Helper()
	if bin := os.Getenv("WXLOGIN_OAUTH2_PROXY"); bin != "" {
		return bin, ""
	}
	return ensureOAuth2Proxy(t.Logf)
}

// ensureOAuth2Proxy returns the cached oauth2-proxy, building it the first
// time (logged with logf); "" and a reason when it cannot be built.
// TestMain calls it alone when WXLOGIN_INTEROP_PREPARE=1, so that CI can
// build it in the background while other work runs.
func ensureOAuth2Proxy(logf func(string, ...any)) (string, string) {
	proxyOnce.Do(func() {
		home, err := os.UserHomeDir()
		if err != nil {
			proxySkip = "no home directory to cache oauth2-proxy in: " + err.Error()
			return
		}
		dir := filepath.Join(home, ".cache", "wxlogin-interop", "bin")
		bin := filepath.Join(dir, "oauth2-proxy")
		if builtVersion(bin) == oauth2ProxyVersion {
			proxyBin = bin
			return
		}
		// 2 to 4 minutes on 2 cores, with the caches cold.
		logf("building oauth2-proxy %s into %s (once; later runs reuse it)", oauth2ProxyVersion, dir)
		started := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "install", oauth2ProxyModule+"@"+oauth2ProxyVersion)
		cmd.Dir = os.TempDir() // outside this module: go install pkg@version ignores go.mod anyway
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			proxySkip = "go install " + oauth2ProxyModule + "@" + oauth2ProxyVersion + ": " + err.Error() + "\n" + lastLines(string(out), 5)
			return
		}
		if v := builtVersion(bin); v != oauth2ProxyVersion {
			proxySkip = "go install built oauth2-proxy " + v + ", not " + oauth2ProxyVersion
			return
		}
		logf("built oauth2-proxy %s in %v", oauth2ProxyVersion, time.Since(started).Round(time.Second))
		proxyBin = bin
	})
	return proxyBin, proxySkip
}

// builtVersion is the version of oauth2-proxy's module a binary was built
// from, as go version -m reads it; "" when there is no such binary.
func builtVersion(bin string) string {
	if _, err := os.Stat(bin); err != nil {
		return ""
	}
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "mod" && f[1] == oauth2ProxyModule {
			return f[2]
		}
	}
	return ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// oauth2ProxyArgs are the flags the README's oauth2-proxy recipe uses,
// for wxlogin at issuer and oauth2-proxy at proxy (both http://host:port).
// A user has no e-mail address: the unionid (sub) stands in for it.
func oauth2ProxyArgs(issuer, proxy, clientID, clientSecret, cookieSecret, upstream string) []string {
	return []string{
		"--provider=oidc",
		"--oidc-issuer-url=" + issuer,
		"--client-id=" + clientID,
		"--client-secret=" + clientSecret,
		"--redirect-url=" + proxy + "/oauth2/callback",
		"--scope=openid",
		"--code-challenge-method=S256",
		"--insecure-oidc-skip-nonce=false",
		"--oidc-email-claim=sub",
		"--email-domain=*",
		"--skip-provider-button",
		"--set-xauthrequest",
		"--pass-access-token",
		"--cookie-secret=" + cookieSecret,
		"--cookie-secure=false",
		"--upstream=" + upstream,
		"--http-address=" + strings.TrimPrefix(proxy, "http://"),
	}
}

// TestOAuth2Proxy puts oauth2-proxy, configured as an OIDC client of
// wxlogin, in front of an upstream, and logs a browser in through it: the
// proxy redeems the code, verifies the id_token (go-oidc inside, with the
// nonce), and hands the upstream the user (the unionid) in its headers.
func TestOAuth2Proxy(t *testing.T) {
	t.Parallel()
	bin, why := oauth2ProxyBinary(t)
	if bin == "" {
		t.Skip("SKIP interop: oauth2-proxy " + oauth2ProxyVersion + " is not installed and could not be built: " + why)
	}

	type seen struct{ User, Email, AccessToken string }
	var mu sync.Mutex
	var upstreamSaw []seen
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{r.Header.Get("X-Forwarded-User"), r.Header.Get("X-Forwarded-Email"), r.Header.Get("X-Forwarded-Access-Token")}
		mu.Lock()
		upstreamSaw = append(upstreamSaw, s)
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]string{"user": s.User, "email": s.Email})
	}))
	defer upstream.Close()

	proxy := "http://127.0.0.1:" + freePort(t)
	secret := rand.Text()
	wx := startWxlogin(t, []client{{ID: "oauth2-proxy", Secret: secret, RedirectURI: proxy + "/oauth2/callback"}})
	cookieSecret := make([]byte, 32)
	rand.Read(cookieSecret)
	args := oauth2ProxyArgs(wx.Issuer, proxy, "oauth2-proxy", secret, base64.URLEncoding.EncodeToString(cookieSecret), upstream.URL+"/")
	startProcess(t, strings.TrimPrefix(proxy, "http://"), 30*time.Second, []string{"HOME=" + t.TempDir()}, bin, args...)

	// The mock WeChat hands back login_hint as its code; oauth2-proxy
	// passes no login_hint, so the code is a fresh one and the unionid is
	// known only from the headers: /userinfo and /session must agree.
	b := browser(t)
	status, last, body := visit(t, b, proxy+"/private?x=1")
	if status != http.StatusOK || last.Path != "/private" || last.Host != strings.TrimPrefix(proxy, "http://") {
		t.Fatalf("GET %s/private = %d at %s%s; want 200 from the upstream after the login:\n%s", proxy, status, last.Host, last.Path, body)
	}
	mu.Lock()
	saw := append([]seen(nil), upstreamSaw...)
	mu.Unlock()
	if len(saw) != 1 {
		t.Fatalf("the upstream was reached %d times, want 1 (after the login)", len(saw))
	}
	user := saw[0]
	// oauth2-proxy takes the user from sub, the e-mail from sub too
	// (--oidc-email-claim=sub); both are the unionid.
	if user.User == "" || user.Email != user.User || user.AccessToken == "" {
		t.Fatalf("the upstream saw X-Forwarded-User %q, X-Forwarded-Email %q, an access token of %d bytes; want the unionid in both, and the token",
			user.User, user.Email, len(user.AccessToken))
	}

	// The access token oauth2-proxy passed on is wxlogin's: /userinfo
	// and /session name the same user.
	info := bearerJSON(t, wx.Issuer+"/userinfo", user.AccessToken)
	if info["sub"] != user.User || info["unionid"] != user.User || info["appid"] != "wxmock-web" {
		t.Errorf("/userinfo with the forwarded access token = %v; want sub and unionid %q, appid wxmock-web", info, user.User)
	}
	req, _ := http.NewRequest(http.MethodGet, wx.Issuer+"/session", nil)
	req.Header.Set("Authorization", "Bearer "+user.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Unionid") != user.User || resp.Header.Get("X-Client-Id") != "oauth2-proxy" {
		t.Errorf("/session with the forwarded access token = %d, X-Unionid %q, X-Client-Id %q; want 200, %q, oauth2-proxy",
			resp.StatusCode, resp.Header.Get("X-Unionid"), resp.Header.Get("X-Client-Id"), user.User)
	}

	// The session cookie now lets the browser through, and nginx's
	// auth_request endpoint answers 202 with the user.
	resp, err = b.Get(proxy + "/oauth2/auth")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Auth-Request-User") != user.User || resp.Header.Get("X-Auth-Request-Email") != user.User {
		t.Errorf("GET /oauth2/auth with the session = %d, X-Auth-Request-User %q, X-Auth-Request-Email %q; want 202 and %q in both",
			resp.StatusCode, resp.Header.Get("X-Auth-Request-User"), resp.Header.Get("X-Auth-Request-Email"), user.User)
	}
	// Without the session: 401, and no upstream.
	resp, err = http.Get(proxy + "/oauth2/auth")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /oauth2/auth without a session = %d, want 401", resp.StatusCode)
	}
}

// bearerJSON GETs u with a Bearer token and decodes the JSON object.
func bearerJSON(t *testing.T, u, tok string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, %v; want 200 with a JSON object", u, resp.StatusCode, err)
	}
	return v
}
