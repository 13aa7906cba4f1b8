package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// authjsDir holds the Node application that runs Auth.js (@auth/core):
// package.json pins the version, package-lock.json every dependency.
const authjsDir = "testdata/authjs"

var (
	authjsOnce    sync.Once
	authjsModules string
	authjsSkip    string
)

// ensureAuthJS returns a node_modules with testdata/authjs's locked
// dependencies: installed once with npm ci into
// $HOME/.cache/wxlogin-interop/authjs/<hash of package.json and the lock>
// and reused while neither changes. "" and a reason when node (20 or
// newer) or npm is missing or the install fails (no network). TestMain
// calls it alone when WXLOGIN_INTEROP_PREPARE=1.
func ensureAuthJS(logf func(string, ...any)) (string, string) {
	authjsOnce.Do(func() { authjsModules, authjsSkip = installAuthJS(logf) })
	return authjsModules, authjsSkip
}

func installAuthJS(logf func(string, ...any)) (string, string) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", tool + " is not installed"
		}
	}
	out, err := exec.Command("node", "--version").Output()
	if err != nil {
		return "", "node --version: " + err.Error()
	}
	version := strings.TrimSpace(string(out))
	major, _, _ := strings.Cut(strings.TrimPrefix(version, "v"), ".")
	if n, err := strconv.Atoi(major); err != nil || n < 20 {
		return "", "node " + version + " is older than 20"
	}
	pkg, err := os.ReadFile(filepath.Join(authjsDir, "package.json"))
	if err != nil {
		return "", err.Error()
	}
	lock, err := os.ReadFile(filepath.Join(authjsDir, "package-lock.json"))
	if err != nil {
		return "", err.Error()
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", "no home directory to cache node_modules in: " + err.Error()
	}
	root := filepath.Join(home, ".cache", "wxlogin-interop", "authjs")
	sum := sha256.Sum256(append(append(pkg, 0), lock...))
	dir := filepath.Join(root, hex.EncodeToString(sum[:8]))
	done := filepath.Join(dir, ".installed")
	if _, err := os.Stat(done); err == nil {
		return filepath.Join(dir, "node_modules"), ""
	}

	// Install into a directory of its own and rename it into place, so
	// that two test processes at once cannot see half an install.
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err.Error()
	}
	tmp, err := os.MkdirTemp(root, "tmp-")
	if err != nil {
		return "", err.Error()
	}
	defer os.RemoveAll(tmp)
	for name, data := range map[string][]byte{"package.json": pkg, "package-lock.json": lock} {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return "", err.Error()
		}
	}
	logf("npm ci for Auth.js into %s (once; later runs reuse it)", dir)
	started := time.Now()
	// Bounded: without a registry npm would retry for minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = tmp
	// npm's own settings (registry, proxy, CA) come from the environment
	// and its configuration.
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false", "npm_config_fetch_timeout=30000",
		"npm_config_fetch_retries=2", "npm_config_fetch_retry_mintimeout=1000", "npm_config_fetch_retry_maxtimeout=5000")
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "npm ci: " + err.Error() + "\n" + lastLines(string(out), 5)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".installed"), nil, 0o644); err != nil {
		return "", err.Error()
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(done); statErr != nil {
			return "", "install " + dir + ": " + err.Error()
		}
		// Another process installed the same lock first.
	}
	logf("npm ci for Auth.js took %v", time.Since(started).Round(100*time.Millisecond))
	// Installs of other locks are stale now.
	if entries, err := os.ReadDir(root); err == nil {
		for _, e := range entries {
			if name := e.Name(); e.IsDir() && name != filepath.Base(dir) && !strings.HasPrefix(name, "tmp-") {
				os.RemoveAll(filepath.Join(root, name))
			}
		}
	}
	return filepath.Join(dir, "node_modules"), ""
}

// authjsCoreVersion is the @auth/core that package.json pins.
func authjsCoreVersion(t *testing.T) string {
	t.Helper()
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile(filepath.Join(authjsDir, "package.json"))
	if err == nil {
		err = json.Unmarshal(b, &pkg)
	}
	if err != nil || pkg.Dependencies["@auth/core"] == "" {
		t.Fatalf("%s/package.json names no @auth/core: %v", authjsDir, err)
	}
	return pkg.Dependencies["@auth/core"]
}

// authjsRecipe is the README's Auth.js recipe (the js block with type
// "oidc"), which README.zh-CN.md must carry unchanged, as a module that
// exports it, with the issuer taken from WECHAT_ISSUER.
func authjsRecipe(t *testing.T) string {
	t.Helper()
	block := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, m := range regexp.MustCompile("(?s)```js\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
			if strings.Contains(m[1], `type: "oidc"`) {
				found = append(found, m[1])
			}
		}
		if len(found) != 1 {
			t.Fatalf("%s has %d js blocks with type \"oidc\", want the Auth.js recipe alone", name, len(found))
		}
		return found[0]
	}
	recipe := block("README.md")
	if zh := block("README.zh-CN.md"); zh != recipe {
		t.Fatalf("README.zh-CN.md's Auth.js recipe differs from README.md's:\n%s\nvs\n%s", zh, recipe)
	}
	const issuer = `issuer: "https://login.example.com",`
	if strings.Count(recipe, issuer) != 1 {
		t.Fatalf("the README's Auth.js recipe no longer has %s", issuer)
	}
	recipe = strings.Replace(recipe, issuer, "issuer: process.env.WECHAT_ISSUER,", 1)
	return "export default {\n" + recipe + "};\n"
}

// startAuthJS runs testdata/authjs/server.mjs with recipe, as the client
// clientID of wxlogin at issuer, at app (http://127.0.0.1:PORT).
func startAuthJS(t *testing.T, modules, recipe, app, issuer, clientID, clientSecret string) {
	t.Helper()
	dir := t.TempDir()
	server, err := os.ReadFile(filepath.Join(authjsDir, "server.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"server.mjs": string(server), "recipe.mjs": recipe} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Node finds @auth/core from server.mjs's directory up.
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	authSecret := make([]byte, 32)
	rand.Read(authSecret)
	addr := strings.TrimPrefix(app, "http://")
	startProcess(t, addr, 20*time.Second, []string{
		"AUTHJS_RECIPE=" + filepath.Join(dir, "recipe.mjs"),
		"AUTH_SECRET=" + base64.StdEncoding.EncodeToString(authSecret),
		"WECHAT_ISSUER=" + issuer,
		"WECHAT_CLIENT_ID=" + clientID,
		"WECHAT_CLIENT_SECRET=" + clientSecret,
		"LISTEN=" + addr,
	}, "node", filepath.Join(dir, "server.mjs"))
}

// TestAuthJS logs a browser in to a web application that uses Auth.js
// (@auth/core, the core of next-auth v5) with the README's recipe: a
// generic OIDC provider found by discovery, PKCE S256, state and nonce,
// Auth.js's default client_secret_basic (with a secret that must be
// form-urlencoded in it); Auth.js checks the callback's iss, redeems the
// code, validates the id_token's claims, and its session then names the
// unionid. For an RS256 and an ES256 client.
func TestAuthJS(t *testing.T) {
	t.Parallel()
	modules, why := ensureAuthJS(t.Logf)
	if modules == "" {
		t.Skip("SKIP interop: Auth.js: " + why)
	}
	t.Logf("@auth/core %s, node %s", authjsCoreVersion(t), nodeVersion())
	recipe := authjsRecipe(t)

	appRS := "http://127.0.0.1:" + freePort(t)
	appES := "http://127.0.0.1:" + freePort(t)
	// ':' must be escaped inside Basic credentials, '+' and '/' and '%'
	// in their form-urlencoding (RFC 6749 §2.3.1).
	secretRS, secretES := rand.Text()+"+/:%=", rand.Text()+"+/:%="
	wx := startWxlogin(t, []client{
		{ID: "authjs-rs256", Secret: secretRS, RedirectURI: appRS + "/auth/callback/wechat"},
		{ID: "authjs-es256", Secret: secretES, RedirectURI: appES + "/auth/callback/wechat", IDTokenAlg: "ES256"},
	})

	tests := []struct{ name, app, clientID, secret string }{
		{"RS256", appRS, "authjs-rs256", secretRS},
		{"ES256", appES, "authjs-es256", secretES},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			startAuthJS(t, modules, recipe, tt.app, wx.Issuer, tt.clientID, tt.secret)
			hint := "interop-authjs-" + rand.Text()
			wantID := miniProgramUnionID(t, wx, hint)
			b, hops := authjsBrowser(t)

			if s := authjsSession(t, b, tt.app); s != nil {
				t.Fatalf("/auth/session before the login = %v, want null", s)
			}

			// Sign in as Auth.js's signIn("wechat", {redirectTo},
			// {login_hint}) does: POST the form with the CSRF token;
			// the query becomes the authorization request's.
			form := url.Values{"csrfToken": {authjsCSRF(t, b, tt.app)}, "callbackUrl": {tt.app + "/after-login"}}
			resp, err := b.PostForm(tt.app+"/auth/signin/wechat?login_hint="+url.QueryEscape(hint), form)
			if err != nil {
				t.Fatalf("POST /auth/signin/wechat (following redirects): %v", err)
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			wantHops := []string{
				wx.Issuer + "/authorize",
				wx.Issuer + "/mock-wechat/connect/qrconnect",
				wx.Issuer + "/callback",
				tt.app + "/auth/callback/wechat",
				tt.app + "/after-login",
			}
			if got := hops(); resp.StatusCode != http.StatusOK || !slices.Equal(got, wantHops) {
				t.Fatalf("the browser went %v and got %d:\n%s\nwant %v and 200 from the application", got, resp.StatusCode, body, wantHops)
			}

			s := authjsSession(t, b, tt.app)
			user, _ := s["user"].(map[string]any)
			if user == nil || user["id"] != wantID {
				t.Fatalf("/auth/session after the login = %v; want user.id %q, the unionid", s, wantID)
			}
			if _, err := time.Parse(time.RFC3339, fmt.Sprint(s["expires"])); err != nil {
				t.Errorf("/auth/session's expires = %v, want a time", s["expires"])
			}

			// Auth.js took the user from the id_token, whose claims it
			// checked but not its signature, as the README says: it never
			// fetched the JWKS nor called /userinfo. (A newer Auth.js that
			// does: the README's note needs updating.)
			for _, path := range []string{"/.well-known/jwks.json", "/userinfo"} {
				if strings.Contains(wx.Log.String(), `"path":"`+path+`"`) {
					t.Errorf("Auth.js requested %s; the README says it does not", path)
				}
			}

			// Sign out: the session is gone.
			resp, err = b.PostForm(tt.app+"/auth/signout", url.Values{"csrfToken": {authjsCSRF(t, b, tt.app)}, "callbackUrl": {tt.app + "/"}})
			if err != nil {
				t.Fatalf("POST /auth/signout: %v", err)
			}
			resp.Body.Close()
			if s := authjsSession(t, b, tt.app); s != nil {
				t.Errorf("/auth/session after signing out = %v, want null", s)
			}
		})
	}
}

// authjsBrowser is a browser (cookies, at most 10 redirects) and the
// URLs (without query) its redirects went to since it was last asked.
func authjsBrowser(t *testing.T) (*http.Client, func() []string) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var hops []string
	b := &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		mu.Lock()
		defer mu.Unlock()
		hops = append(hops, req.URL.Scheme+"://"+req.URL.Host+req.URL.Path)
		if len(via) >= 10 {
			return fmt.Errorf("more than 10 redirects: %v", hops)
		}
		return nil
	}}
	return b, func() []string {
		mu.Lock()
		defer mu.Unlock()
		got := hops
		hops = nil
		return got
	}
}

// authjsCSRF is Auth.js's CSRF token (GET /auth/csrf also sets its cookie).
func authjsCSRF(t *testing.T, b *http.Client, app string) string {
	t.Helper()
	var got struct {
		CSRFToken string `json:"csrfToken"`
	}
	authjsGetJSON(t, b, app+"/auth/csrf", &got)
	if got.CSRFToken == "" {
		t.Fatal("GET /auth/csrf gave no csrfToken")
	}
	return got.CSRFToken
}

// authjsSession is GET /auth/session: nil when Auth.js answers null (no
// session).
func authjsSession(t *testing.T, b *http.Client, app string) map[string]any {
	t.Helper()
	var s map[string]any
	authjsGetJSON(t, b, app+"/auth/session", &s)
	return s
}

func authjsGetJSON(t *testing.T, b *http.Client, u string, v any) {
	t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d:\n%s", u, resp.StatusCode, body)
	}
	if err := json.Unmarshal(bytes.TrimSpace(body), v); err != nil {
		t.Fatalf("GET %s: %v in %q", u, err, body)
	}
}

// nodeVersion is node --version, for the log.
func nodeVersion() string {
	out, _ := exec.Command("node", "--version").Output()
	return strings.TrimSpace(string(out))
}
