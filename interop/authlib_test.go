package interop

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// pythonWithAuthlib finds a python3 that has Authlib and requests
// (Debian's python3-authlib lives in /usr/bin/python3, which may not be
// first on PATH).
func pythonWithAuthlib() string {
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import authlib, requests").Run() == nil {
			return py
		}
	}
	return ""
}

// TestAuthlib logs in through wxlogin with Python's Authlib
// (testdata/authlib_client.py): discovery checked by
// OpenIDProviderMetadata, the code flow with PKCE S256 and a nonce through
// a requests session, client_secret_post, the id_token validated as a
// CodeIDToken against the JWKS with the algorithm pinned, /userinfo.
func TestAuthlib(t *testing.T) {
	t.Parallel()
	py := pythonWithAuthlib()
	if py == "" {
		t.Skip("SKIP interop: Authlib not installed (Debian python3-authlib, python3-requests)")
	}
	// Read here rather than run by path, so that go test's cache knows the
	// script.
	b, err := os.ReadFile("testdata/authlib_client.py")
	if err != nil {
		t.Fatal(err)
	}
	script := string(b)
	secretRS, secretES := rand.Text(), rand.Text()
	// The registered redirect_uri keeps a query of its own: the code,
	// state and iss are added to it.
	redirectRS := "http://127.0.0.1:" + freePort(t) + "/auth/callback?from=authlib"
	redirectES := "http://localhost:" + freePort(t) + "/auth/callback"
	wx := startWxlogin(t, []client{
		{ID: "authlib-rs256", Secret: secretRS, RedirectURI: redirectRS},
		{ID: "authlib-es256", Secret: secretES, RedirectURI: redirectES, IDTokenAlg: "ES256"},
	})

	tests := []struct {
		name, clientID, secret, redirectURI, alg string
	}{
		{"client_secret_post RS256", "authlib-rs256", secretRS, redirectRS, "RS256"},
		{"client_secret_post ES256", "authlib-es256", secretES, redirectES, "ES256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hint := "interop-authlib-" + rand.Text()
			wantSub := miniProgramUnionID(t, wx, hint)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, py, "-c", script, wx.Issuer, tt.clientID, tt.secret, tt.redirectURI, hint, tt.alg)
			cmd.Env = childEnv()
			var stderr syncBuffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("authlib_client.py: %v\n%s", err, stderr.String())
			}
			var got struct {
				Alg          string `json:"alg"`
				Sub          string `json:"sub"`
				Aud          any    `json:"aud"`
				NonceMatched bool   `json:"nonce_matched"`
				OpenID       string `json:"openid"`
				AppID        string `json:"appid"`
				UserInfo     struct {
					Sub     string `json:"sub"`
					UnionID string `json:"unionid"`
					OpenID  string `json:"openid"`
					AppID   string `json:"appid"`
				} `json:"userinfo"`
				ReplayStatus int      `json:"replay_status"`
				ReplayError  string   `json:"replay_error"`
				Hops         []string `json:"hops"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("authlib_client.py printed %q: %v", out, err)
			}
			wantHops := []string{"302 /authorize", "302 /mock-wechat/connect/qrconnect", "302 /callback"}
			if !slices.Equal(got.Hops, wantHops) {
				t.Errorf("the browser went %v, want %v", got.Hops, wantHops)
			}
			if got.Alg != tt.alg || got.Sub != wantSub || got.Aud != tt.clientID || !got.NonceMatched {
				t.Errorf("id_token alg %q, sub %q, aud %v, nonce matched %v; want %s, %q (the unionid), %q, true",
					got.Alg, got.Sub, got.Aud, got.NonceMatched, tt.alg, wantSub, tt.clientID)
			}
			if got.AppID != "wxmock-web" || !strings.HasPrefix(got.OpenID, "o") {
				t.Errorf("id_token appid %q, openid %q; want wxmock-web and an openid", got.AppID, got.OpenID)
			}
			if u := got.UserInfo; u.Sub != wantSub || u.UnionID != wantSub || u.OpenID != got.OpenID || u.AppID != "wxmock-web" {
				t.Errorf("userinfo = %+v; want sub and unionid %q, openid %q, appid wxmock-web", u, wantSub, got.OpenID)
			}
			if got.ReplayStatus != 400 || got.ReplayError != "invalid_grant" {
				t.Errorf("the same code again = %d %q, want 400 invalid_grant", got.ReplayStatus, got.ReplayError)
			}
		})
	}
}
