package interop

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestGoOIDC logs in through wxlogin with go-oidc and golang.org/x/oauth2,
// as a Go web application would: discovery, the authorization code flow
// with PKCE and a nonce through a browser (cookies, redirects, the mock's
// WeChat pages), the code exchange, the id_token verified against the
// JWKS, and /userinfo.
func TestGoOIDC(t *testing.T) {
	t.Parallel()
	cbBasic, cbPublic, cbES256 := newCallbackServer(t), newCallbackServer(t), newCallbackServer(t)
	secret, secretES := rand.Text(), rand.Text()
	// Mock mode's own RSA key, made at start.
	wx := startWxlogin(t, []client{
		{ID: "go-web", Secret: secret, RedirectURI: cbBasic.RedirectURI("127.0.0.1")},
		{ID: "go-spa", RedirectURI: cbPublic.RedirectURI("localhost")},
	})
	// Mock mode also makes an ES256 key, for a client that asks for ES256
	// id_tokens; its RSA key still signs access tokens.
	wxES := startWxlogin(t, []client{
		{ID: "go-es256", Secret: secretES, RedirectURI: cbES256.RedirectURI("127.0.0.1"), IDTokenAlg: "ES256"},
	})

	tests := []struct {
		name   string
		wx     *instance
		cb     *callbackServer
		client client
		style  oauth2.AuthStyle
		method string // its token_endpoint_auth_method
		alg    string
	}{
		{"confidential client_secret_basic RS256", wx, cbBasic, client{ID: "go-web", Secret: secret, RedirectURI: cbBasic.RedirectURI("127.0.0.1")}, oauth2.AuthStyleInHeader, "client_secret_basic", "RS256"},
		{"public PKCE only RS256", wx, cbPublic, client{ID: "go-spa", RedirectURI: cbPublic.RedirectURI("localhost")}, oauth2.AuthStyleInParams, "none", "RS256"},
		{"confidential client_secret_basic ES256", wxES, cbES256, client{ID: "go-es256", Secret: secretES, RedirectURI: cbES256.RedirectURI("127.0.0.1")}, oauth2.AuthStyleInHeader, "client_secret_basic", "ES256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ctx = oidc.ClientContext(ctx, &http.Client{Timeout: 10 * time.Second})

			provider, err := oidc.NewProvider(ctx, tt.wx.Issuer)
			if err != nil {
				t.Fatalf("oidc.NewProvider(%q) = %v", tt.wx.Issuer, err)
			}
			var meta struct {
				Algs       []string `json:"id_token_signing_alg_values_supported"`
				Challenges []string `json:"code_challenge_methods_supported"`
				AuthMethod []string `json:"token_endpoint_auth_methods_supported"`
			}
			if err := provider.Claims(&meta); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(meta.Algs, tt.alg) || !slices.Contains(meta.Challenges, "S256") || !slices.Contains(meta.AuthMethod, tt.method) {
				t.Errorf("discovery: id_token_signing_alg_values_supported = %v, code_challenge_methods_supported = %v, token_endpoint_auth_methods_supported = %v; want %s, S256, %s",
					meta.Algs, meta.Challenges, meta.AuthMethod, tt.alg, tt.method)
			}
			endpoint := provider.Endpoint()
			if endpoint.AuthURL != tt.wx.Issuer+"/authorize" || endpoint.TokenURL != tt.wx.Issuer+"/token" || provider.UserInfoEndpoint() != tt.wx.Issuer+"/userinfo" {
				t.Errorf("endpoints = %q, %q, %q; want the issuer's /authorize, /token, /userinfo", endpoint.AuthURL, endpoint.TokenURL, provider.UserInfoEndpoint())
			}
			endpoint.AuthStyle = tt.style
			conf := oauth2.Config{ClientID: tt.client.ID, ClientSecret: tt.client.Secret, Endpoint: endpoint,
				RedirectURL: tt.client.RedirectURI, Scopes: []string{oidc.ScopeOpenID}}
			verifier := provider.Verifier(&oidc.Config{ClientID: tt.client.ID, SupportedSigningAlgs: []string{tt.alg}})

			// The mock WeChat hands back login_hint as its code, so the
			// mini-program login with the same code names the same user.
			hint := "interop-go-" + rand.Text()
			wantSub := miniProgramUnionID(t, tt.wx, hint)
			started := time.Now()
			pkce, nonce := oauth2.GenerateVerifier(), rand.Text()
			code := authorize(t, tt.wx, tt.cb, conf.AuthCodeURL(rand.Text(), oidc.Nonce(nonce), oauth2.S256ChallengeOption(pkce),
				oauth2.SetAuthURLParam("login_hint", hint)))

			tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(pkce))
			if err != nil {
				t.Fatalf("Exchange = %v", err)
			}
			if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.Expiry.Before(time.Now()) {
				t.Errorf("token: type %q, access_token %d bytes, expiry %v; want Bearer, a token, a future expiry", tok.TokenType, len(tok.AccessToken), tok.Expiry)
			}
			rawID, _ := tok.Extra("id_token").(string)
			if got := jwtHeader(t, rawID)["alg"]; got != tt.alg {
				t.Errorf("id_token alg = %v, want %s", got, tt.alg)
			}
			idt, err := verifier.Verify(ctx, rawID)
			if err != nil {
				t.Fatalf("Verify(id_token) = %v", err)
			}
			if idt.Nonce != nonce {
				t.Errorf("id_token nonce = %q, want the request's %q", idt.Nonce, nonce)
			}
			if idt.Subject != wantSub || idt.Issuer != tt.wx.Issuer || !slices.Equal(idt.Audience, []string{tt.client.ID}) {
				t.Errorf("id_token sub, iss, aud = %q, %q, %q; want %q (the unionid), %q, [%q]", idt.Subject, idt.Issuer, idt.Audience, wantSub, tt.wx.Issuer, tt.client.ID)
			}
			var claims struct {
				OpenID   string `json:"openid"`
				AppID    string `json:"appid"`
				AuthTime int64  `json:"auth_time"`
			}
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if claims.OpenID == "" || claims.AppID != "wxmock-web" || claims.AuthTime < started.Unix()-1 || claims.AuthTime > time.Now().Unix()+1 {
				t.Errorf("id_token openid, appid, auth_time = %q, %q, %d; want an openid, wxmock-web, the login's time (%d)", claims.OpenID, claims.AppID, claims.AuthTime, started.Unix())
			}

			info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("UserInfo = %v", err)
			}
			var ui struct {
				UnionID string `json:"unionid"`
				OpenID  string `json:"openid"`
				AppID   string `json:"appid"`
			}
			if err := info.Claims(&ui); err != nil {
				t.Fatal(err)
			}
			if info.Subject != wantSub || ui.UnionID != wantSub || ui.OpenID != claims.OpenID || ui.AppID != "wxmock-web" {
				t.Errorf("userinfo = sub %q, %+v; want sub and unionid %q, the id_token's openid %q, appid wxmock-web", info.Subject, ui, wantSub, claims.OpenID)
			}

			// The code is single use, and a code is bound to its
			// code_verifier: x/oauth2 reports both as invalid_grant.
			_, err = conf.Exchange(ctx, code, oauth2.VerifierOption(pkce))
			wantInvalidGrant(t, "Exchange(the same code again)", err)
			code = authorize(t, tt.wx, tt.cb, conf.AuthCodeURL(rand.Text(), oidc.Nonce(rand.Text()), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			_, err = conf.Exchange(ctx, code, oauth2.VerifierOption(pkce))
			wantInvalidGrant(t, "Exchange(another login's code_verifier)", err)
		})
	}
}

// authorize sends a browser to authURL and follows it through wxlogin and
// the mock's WeChat back to the client's callback; it checks the
// authorization response (state echoed, iss = the issuer, no error) and
// returns the code.
func authorize(t *testing.T, wx *instance, cb *callbackServer, authURL string) string {
	t.Helper()
	before := len(cb.Queries())
	status, last, _ := visit(t, browser(t), authURL)
	if status != http.StatusOK || last.Path != "/callback" || len(cb.Queries()) != before+1 {
		t.Fatalf("the browser ended at %s %s with %d; want the client's callback with 200", last.Host, last.Path, status)
	}
	got := cb.Queries()[before]
	sent, err := urlQuery(authURL)
	if err != nil {
		t.Fatal(err)
	}
	if got.Get("error") != "" || got.Get("code") == "" || got.Get("state") != sent.Get("state") || got.Get("iss") != wx.Issuer {
		t.Fatalf("callback: error %q (%s), code %d bytes, state echoed %v, iss %q; want a code, the state, iss %q",
			got.Get("error"), got.Get("error_description"), len(got.Get("code")), got.Get("state") == sent.Get("state"), got.Get("iss"), wx.Issuer)
	}
	return got.Get("code")
}

// wantInvalidGrant checks that err is the token endpoint's invalid_grant.
func wantInvalidGrant(t *testing.T, what string, err error) {
	t.Helper()
	re, ok := errors.AsType[*oauth2.RetrieveError](err)
	if !ok || re.ErrorCode != "invalid_grant" || re.Response.StatusCode != http.StatusBadRequest {
		t.Errorf("%s = %v, want 400 invalid_grant", what, err)
	}
}
