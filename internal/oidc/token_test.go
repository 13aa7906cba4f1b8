package oidc

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// TestTokenRequest: the form's checks and client authentication, before
// the code is looked at.
func TestTokenRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const code = "any-code"
	form := func(kv ...string) url.Values { return tokenForm(code, confRedirect, kv...) }
	b64 := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	twice := func(form url.Values, name, v1, v2 string) url.Values { form[name] = []string{v1, v2}; return form }
	for _, tt := range []struct {
		name   string
		form   url.Values
		auth   string
		client string // the client authenticated; "" when refused
		status int
		err    string
		basic  bool // BasicTried
	}{
		{"client_secret_basic", form(), basic(confID, confSecret), confID, 0, "", false},
		{"client_secret_basic, lower-case scheme", form(), "basic " + basic(confID, confSecret)[6:], confID, 0, "", false},
		{"client_secret_basic, id and secret to form-encode", tokenForm(code, oddRedir), basic(oddID, oddSecret), oddID, 0, "", false},
		{"client_secret_basic, id and secret not form-encoded", tokenForm(code, oddRedir), b64(oddID + ":" + oddSecret), "", 401, "invalid_client", true},
		{"client_secret_basic, the space as %20", tokenForm(code, oddRedir), b64("a%3Ab%25c%2Bd:p%40ss%20w%3Ard%2B%2F%3D"), oddID, 0, "", false},
		{"client_secret_basic, the secret's + not encoded", tokenForm(code, oddRedir), b64("a%3Ab%25c%2Bd:p%40ss+w%3Ard+%2F%3D"), "", 401, "invalid_client", true},
		{"client_secret_basic, the id's + not encoded", tokenForm(code, oddRedir), b64("a%3Ab%25c+d:p%40ss+w%3Ard%2B%2F%3D"), "", 401, "invalid_client", true},
		{"client_secret_basic, client_id also in the form", form("client_id", confID), basic(confID, confSecret), confID, 0, "", false},
		{"client_secret_post", form("client_id", confID, "client_secret", confSecret), "", confID, 0, "", false},
		{"client_secret_post, id and secret to form-encode", tokenForm(code, oddRedir, "client_id", oddID, "client_secret", oddSecret), "", oddID, 0, "", false},
		{"a bearer header is not client auth", form("client_id", confID, "client_secret", confSecret), "Bearer abc", confID, 0, "", false},
		{"public client, client_id", tokenForm(code, pubRedirect, "client_id", pubID), "", pubID, 0, "", false},
		{"public client, Basic without secret", tokenForm(code, pubRedirect), basic(pubID, ""), pubID, 0, "", false},
		{"public client with a secret (post)", tokenForm(code, pubRedirect, "client_id", pubID, "client_secret", "x"), "", "", 401, "invalid_client", false},
		{"public client with a secret (Basic)", tokenForm(code, pubRedirect), basic(pubID, "x"), "", 401, "invalid_client", true},
		{"Basic and client_secret both", form("client_secret", confSecret), basic(confID, confSecret), "", 400, "invalid_request", false},
		{"Basic and another client_id", form("client_id", esID), basic(confID, confSecret), "", 400, "invalid_request", false},
		{"Basic not base64", form(), "Basic !!!", "", 401, "invalid_client", true},
		{"Basic without colon", form(), b64(confID), "", 401, "invalid_client", true},
		{"Basic, empty id", form(), b64(":" + confSecret), "", 401, "invalid_client", true},
		{"Basic, empty", form(), "Basic ", "", 401, "invalid_client", true},
		{"Basic, bad escape in the id", form(), b64("%zz:" + confSecret), "", 401, "invalid_client", true},
		{"Basic, bad escape in the secret", form(), b64(confID + ":%zz"), "", 401, "invalid_client", true},
		{"Basic, wrong secret", form(), basic(confID, confSecret+"x"), "", 401, "invalid_client", true},
		{"Basic, another client's secret", form(), basic(confID, esSecret), "", 401, "invalid_client", true},
		{"Basic, unknown client", form(), basic("nobody", confSecret), "", 401, "invalid_client", true},
		{"post, wrong secret", form("client_id", confID, "client_secret", confSecret+"x"), "", "", 401, "invalid_client", false},
		{"post, secret in another case", form("client_id", confID, "client_secret", strings.ToUpper(confSecret)), "", "", 401, "invalid_client", false},
		{"post, the secret's hash as the secret", form("client_id", confID, "client_secret", sha256Hex(confSecret)), "", "", 401, "invalid_client", false},
		{"post, unknown client", form("client_id", "nobody", "client_secret", confSecret), "", "", 401, "invalid_client", false},
		{"confidential client without secret", form("client_id", confID), "", "", 401, "invalid_client", false},
		{"confidential client, Basic without secret", form(), basic(confID, ""), "", 401, "invalid_client", true},
		{"no client auth", form(), "", "", 401, "invalid_client", false},
		{"secret without client_id", form("client_secret", confSecret), "", "", 401, "invalid_client", false},
		{"no grant_type", form("grant_type", "", "client_id", confID, "client_secret", confSecret), "", "", 400, "invalid_request", false},
		{"grant_type refresh_token", form("grant_type", "refresh_token"), basic(confID, confSecret), "", 400, "unsupported_grant_type", false},
		{"grant_type client_credentials, no auth", form("grant_type", "client_credentials"), "", "", 400, "unsupported_grant_type", false},
		{"no code", form("code", ""), basic(confID, confSecret), "", 400, "invalid_request", false},
		{"no redirect_uri", form("redirect_uri", ""), basic(confID, confSecret), "", 400, "invalid_request", false},
		{"code twice", url.Values{"grant_type": {"authorization_code"}, "code": {code, code}, "redirect_uri": {confRedirect}}, basic(confID, confSecret), "", 400, "invalid_request", false},
		{"grant_type twice", url.Values{"grant_type": {"authorization_code", "authorization_code"}, "code": {code}, "redirect_uri": {confRedirect}}, basic(confID, confSecret), "", 400, "invalid_request", false},
		{"client_secret twice", twice(form("client_id", confID), "client_secret", confSecret, confSecret), "", "", 400, "invalid_request", false},
		{"client_id twice", twice(form("client_secret", confSecret), "client_id", confID, confID), "", "", 400, "invalid_request", false},
		{"code_verifier twice", twice(form(), "code_verifier", rfcVerifier, rfcVerifier), basic(confID, confSecret), "", 400, "invalid_request", false},
		{"an unknown parameter twice", twice(form(), "resource", "a", "b"), basic(confID, confSecret), "", 400, "invalid_request", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, terr := f.p.TokenRequest(tt.form, tt.auth)
			if tt.client != "" {
				if terr != nil || g == nil || g.client.ID != tt.client || g.code != code {
					t.Fatalf("TokenRequest(%s) = %+v, %+v; want client %s", tt.name, g, terr, tt.client)
				}
				return
			}
			if g != nil || terr == nil || terr.Status != tt.status || terr.Code != tt.err || terr.BasicTried != tt.basic || terr.Description == "" {
				t.Fatalf("TokenRequest(%s) = %+v, %+v; want %d %s, BasicTried %v", tt.name, g, terr, tt.status, tt.err, tt.basic)
			}
			text := terr.Error() + terr.Description
			if terr.Err != nil {
				text += terr.Err.Error()
			}
			for _, secret := range []string{confSecret, oddSecret, esSecret, url.QueryEscape(oddSecret), code} {
				if strings.Contains(text, secret) {
					t.Errorf("TokenRequest(%s) error %q holds a secret or the code", tt.name, text)
				}
			}
		})
	}
}

// TestRedeemInvalidGrant: every reason a code is refused, 400
// invalid_grant; a code refused after it unsealed is used up, so the
// right request fails after it.
func TestRedeemInvalidGrant(t *testing.T) {
	t.Parallel()
	other := newFixture(t, withKeys(keyFile(t, "es2", "es")))
	pkce := []string{"code_challenge", rfcChallenge, "code_challenge_method", "S256"}
	for _, tt := range []struct {
		name    string
		auth    []string // the authorization request's extra parameters
		after   time.Duration
		request func(code string) (url.Values, string) // the token request
		usedUp  bool                                   // the right request fails after
	}{
		{"code garbage", nil, 0, func(string) (url.Values, string) {
			return tokenForm("garbage", confRedirect), basic(confID, confSecret)
		}, false},
		{"code changed", nil, 0, func(code string) (url.Values, string) {
			return tokenForm(flipChar(code, len(code)/2), confRedirect), basic(confID, confSecret)
		}, false},
		{"code of another key file", nil, 0, func(string) (url.Values, string) {
			return tokenForm(other.login(t, authQuery(confID, confRedirect), "wxcode"), confRedirect), basic(confID, confSecret)
		}, false},
		{"code expired: 61 s", nil, 61 * time.Second, func(code string) (url.Values, string) {
			return tokenForm(code, confRedirect), basic(confID, confSecret)
		}, false},
		{"another client", nil, 0, func(code string) (url.Values, string) {
			return tokenForm(code, confRedirect), basic(esID, esSecret)
		}, true},
		{"another client, its redirect_uri", nil, 0, func(code string) (url.Values, string) {
			return tokenForm(code, esRedirect), basic(esID, esSecret)
		}, true},
		{"another registered redirect_uri", nil, 0, func(code string) (url.Values, string) {
			return tokenForm(code, confRedirect2), basic(confID, confSecret)
		}, true},
		{"redirect_uri with a trailing slash", nil, 0, func(code string) (url.Values, string) {
			return tokenForm(code, confRedirect+"/"), basic(confID, confSecret)
		}, true},
		{"verifier missing", pkce, 0, func(code string) (url.Values, string) {
			return tokenForm(code, confRedirect), basic(confID, confSecret)
		}, true},
		{"verifier wrong", pkce, 0, func(code string) (url.Values, string) {
			return tokenForm(code, confRedirect, "code_verifier", strings.Repeat("v", 43)), basic(confID, confSecret)
		}, true},
		{"verifier without challenge", nil, 0, func(code string) (url.Values, string) {
			return tokenForm(code, confRedirect, "code_verifier", rfcVerifier), basic(confID, confSecret)
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			code := f.login(t, authQuery(confID, confRedirect, tt.auth...), "wxcode-grant")
			f.clock.Add(tt.after)
			form, auth := tt.request(code)
			resp, terr := f.tryRedeem(form, auth)
			if resp != nil || terr == nil || terr.Status != http.StatusBadRequest || terr.Code != "invalid_grant" || terr.Err == nil {
				t.Fatalf("Redeem(%s) = %+v, %+v; want 400 invalid_grant with a reason for the log", tt.name, resp, terr)
			}
			for _, secret := range []string{code, rfcVerifier, confSecret} {
				if strings.Contains(terr.Error()+terr.Err.Error(), secret) {
					t.Errorf("Redeem(%s) error %q (%v) holds the code, verifier or secret", tt.name, terr, terr.Err)
				}
			}
			if tt.after != 0 {
				return
			}
			right := tokenForm(code, confRedirect)
			if len(tt.auth) > 0 {
				right.Set("code_verifier", rfcVerifier)
			}
			resp, terr = f.tryRedeem(right, basic(confID, confSecret))
			if tt.usedUp && (resp != nil || terr == nil || terr.Code != "invalid_grant") {
				t.Errorf("after %s, Redeem(the right request) = %+v, %+v; want invalid_grant: the code is used up", tt.name, resp, terr)
			}
			if !tt.usedUp && terr != nil {
				t.Errorf("after %s, Redeem(the right request) = %+v; want tokens: that code never unsealed", tt.name, terr)
			}
		})
	}
}

// TestRedeemExpiry: a code serves 60 seconds, to the second; an expired
// code is refused without being used up (and stays refused).
func TestRedeemExpiry(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		after time.Duration
		ok    bool
	}{
		{59 * time.Second, true},
		{60 * time.Second, true},
		{61 * time.Second, false},
		{time.Hour, false},
	} {
		f := newFixture(t)
		code := f.login(t, authQuery(confID, confRedirect), "wxcode-exp")
		f.clock.Add(tt.after)
		_, terr := f.tryRedeem(tokenForm(code, confRedirect), basic(confID, confSecret))
		if (terr == nil) != tt.ok || !tt.ok && terr.Code != "invalid_grant" {
			t.Errorf("Redeem %v after the callback = %+v; want ok %v", tt.after, terr, tt.ok)
		}
	}
}

// TestRedeemTwice: a code is redeemed once, even by requests at once.
func TestRedeemTwice(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	code := f.login(t, authQuery(confID, confRedirect), "wxcode-twice")
	f.redeem(t, tokenForm(code, confRedirect), basic(confID, confSecret))
	if resp, terr := f.tryRedeem(tokenForm(code, confRedirect), basic(confID, confSecret)); resp != nil || terr == nil || terr.Code != "invalid_grant" {
		t.Errorf("Redeem(a redeemed code) = %+v, %+v; want invalid_grant", resp, terr)
	}

	code = f.login(t, authQuery(confID, confRedirect), "wxcode-race")
	const n = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range n {
		wg.Go(func() {
			if _, terr := f.tryRedeem(tokenForm(code, confRedirect), basic(confID, confSecret)); terr == nil {
				mu.Lock()
				won++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d concurrent redemptions of one code: %d succeeded, want 1", n, won)
	}
}

// TestRedeemTokens: the id_token and the access_token, decoded and
// verified: their claims, their header (kid and alg of the client's
// id_token_alg), and the response.
func TestRedeemTokens(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		client, secret, redirect, alg string
		nonce                         string
	}{
		{confID, confSecret, confRedirect, token.RS256, "n-0S6_WzA2Mj"},
		{esID, esSecret, esRedirect, token.ES256, ""},
	} {
		t.Run(tt.client, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			st := f.authorize(t, authQuery(tt.client, tt.redirect, "nonce", tt.nonce), wechatUA)
			f.clock.Add(20 * time.Second)
			authTime := f.clock.Now().Unix()
			s := f.callback(t, st, "wxcode-tokens")
			f.clock.Add(30 * time.Second)
			iat := f.clock.Now().Unix()
			resp := f.redeem(t, tokenForm(queryOf(t, s.Location).Get("code"), tt.redirect), basic(tt.client, tt.secret))
			if resp.TokenType != "Bearer" || resp.ExpiresIn != int64(testTTL/time.Second) || resp.Scope != "openid" || resp.IDToken == "" || resp.AccessToken == "" {
				t.Errorf("Redeem = %+v; want Bearer, expires_in %d, scope openid and two tokens", resp, int64(testTTL/time.Second))
			}
			unionID, openID := wechat.MockUnionID("wxcode-tokens"), wechat.MockOpenID(oaAppID, "wxcode-tokens")
			exp := iat + int64(testTTL/time.Second)

			// The id_token: the client's algorithm, its key's kid.
			var idKey *token.Key
			for _, k := range f.keys {
				if k.Alg() == tt.alg {
					idKey = k
					break
				}
			}
			if h := segmentJSON(t, resp.IDToken, 0); h["alg"] != tt.alg || h["kid"] != idKey.ID() || h["typ"] != "JWT" || len(h) != 3 {
				t.Errorf("id_token header = %v, want alg %s, kid %s, typ JWT", h, tt.alg, idKey.ID())
			}
			want := map[string]any{"iss": testIssuer, "sub": unionID, "aud": tt.client, "iat": float64(iat), "exp": float64(exp),
				"auth_time": float64(authTime), "openid": openID, "appid": oaAppID}
			if tt.nonce != "" {
				want["nonce"] = tt.nonce
			}
			if got := segmentJSON(t, resp.IDToken, 1); !equalJSON(got, want) {
				t.Errorf("id_token claims = %v,\nwant %v", got, want)
			}
			// The access token: the first key (RSA), scope, unionid.
			if h := segmentJSON(t, resp.AccessToken, 0); h["alg"] != token.RS256 || h["kid"] != f.keys[0].ID() {
				t.Errorf("access_token header = %v, want the first key's (RS256, %s)", h, f.keys[0].ID())
			}
			want = map[string]any{"iss": testIssuer, "sub": unionID, "aud": tt.client, "iat": float64(iat), "exp": float64(exp),
				"openid": openID, "unionid": unionID, "appid": oaAppID, "scope": "openid"}
			if got := segmentJSON(t, resp.AccessToken, 1); !equalJSON(got, want) {
				t.Errorf("access_token claims = %v,\nwant %v", got, want)
			}
			// Both verify with the Set's keys (its JWKS).
			for name, tok := range map[string]string{"id_token": resp.IDToken, "access_token": resp.AccessToken} {
				if c, err := f.tokens.Verify(tok); err != nil || c.Subject != unionID || !c.Audience.Contains(tt.client) {
					t.Errorf("Verify(%s) = %+v, %v", name, c, err)
				}
			}
		})
	}
}

// equalJSON compares two decoded JSON objects of scalars.
func equalJSON(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestRedeemedBound: the set of redeemed codes is bounded; full of codes
// still valid, a redemption is refused (temporarily, the code not used);
// expired ids are swept to make room.
func TestRedeemedBound(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.p.redeemed = newRedeemed(2)
	redeem := func(code string) *TokenError {
		_, terr := f.tryRedeem(tokenForm(code, confRedirect), basic(confID, confSecret))
		return terr
	}
	for i := range 2 {
		if terr := redeem(f.login(t, authQuery(confID, confRedirect), "wxcode-a")); terr != nil {
			t.Fatalf("Redeem(code %d) = %+v", i+1, terr)
		}
	}
	f.clock.Add(30 * time.Second)
	third := f.login(t, authQuery(confID, confRedirect), "wxcode-b")
	terr := redeem(third)
	if terr == nil || terr.Status != http.StatusServiceUnavailable || terr.Code != "temporarily_unavailable" {
		t.Fatalf("Redeem(a third code, the set full) = %+v; want 503 temporarily_unavailable", terr)
	}
	if terr := redeem(third); terr == nil || terr.Code != "temporarily_unavailable" {
		t.Errorf("Redeem(the third code again, the set still full) = %+v; want temporarily_unavailable", terr)
	}
	// 31 s on, the first two codes have expired: swept, and the third,
	// never used, is redeemed.
	f.clock.Add(31 * time.Second)
	if terr := redeem(third); terr != nil {
		t.Fatalf("Redeem(the third code after the first two expired) = %+v; want tokens", terr)
	}
	if n := len(f.p.redeemed.ids); n != 1 {
		t.Errorf("the set holds %d ids after the sweep, want 1", n)
	}
	if terr := redeem(third); terr == nil || terr.Code != "invalid_grant" {
		t.Errorf("Redeem(the third code twice) = %+v; want invalid_grant", terr)
	}
}

// TestRedeemedSet is the set itself.
func TestRedeemedSet(t *testing.T) {
	t.Parallel()
	r := newRedeemed(2)
	now := testNow
	for _, tt := range []struct {
		id       string
		exp      int64
		ok, full bool
	}{
		{"a", now.Unix() + 60, true, false},
		{"a", now.Unix() + 60, false, false},
		{"b", now.Unix(), true, false},
		{"c", now.Unix() + 60, false, true},  // b expires now: not yet
		{"a", now.Unix() + 60, false, false}, // seen before, whether full or not
	} {
		if ok, full := r.use(tt.id, tt.exp, now); ok != tt.ok || full != tt.full {
			t.Errorf("use(%s) = %v, %v; want %v, %v", tt.id, ok, full, tt.ok, tt.full)
		}
	}
	if ok, full := r.use("c", now.Unix()+60, now.Add(time.Second)); !ok || full {
		t.Errorf("use(c) once b expired = %v, %v; want true, false", ok, full)
	}
	if _, seen := r.ids["b"]; seen || len(r.ids) != 2 {
		t.Errorf("ids = %v, want a and c (b swept)", r.ids)
	}
}

// TestUserInfo: an access token of the web login is answered; any other
// token is refused.
func TestUserInfo(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resp := f.redeem(t, tokenForm(f.login(t, authQuery(confID, confRedirect), "wxcode-ui"), confRedirect), basic(confID, confSecret))
	unionID, openID := wechat.MockUnionID("wxcode-ui"), wechat.MockOpenID(webAppID, "wxcode-ui")

	info, err := f.p.UserInfo(resp.AccessToken)
	if want := (UserInfo{Sub: unionID, UnionID: unionID, OpenID: openID, AppID: webAppID}); err != nil || info != want {
		t.Errorf("UserInfo(access token) = %+v, %v; want %+v", info, err, want)
	}
	c, err := f.tokens.Verify(resp.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if client, err := f.p.AccessToken(c); err != nil || client != confID {
		t.Errorf("AccessToken(access token) = %q, %v; want %s", client, err, confID)
	}

	// Other tokens the same keys sign.
	mini, _ := f.tokens.Sign(token.Claims{Subject: "oMini", Audience: token.Audience{miniAppID}, UnionID: unionID})
	miniScope, _ := f.tokens.Sign(token.Claims{Subject: "oMini", Audience: token.Audience{miniAppID}, Scope: "openid"})
	noScope, _ := f.tokens.Sign(token.Claims{Subject: unionID, Audience: token.Audience{confID}, OpenID: openID})
	otherIssuer := token.New(token.Options{Keys: f.keys, TTL: testTTL, Issuer: "https://other.example.com", Now: f.clock.Now})
	foreign, _ := otherIssuer.Sign(token.Claims{Subject: unionID, Audience: token.Audience{confID}, Scope: "openid"})
	otherKeys := token.New(token.Options{Keys: parseKeys(t, keyFile(t, "es2")), TTL: testTTL, Issuer: testIssuer, Now: f.clock.Now})
	forged, _ := otherKeys.Sign(token.Claims{Subject: unionID, Audience: token.Audience{confID}, Scope: "openid"})
	for _, tt := range []struct {
		name, tok string
		want      error
	}{
		{"id_token", resp.IDToken, ErrNotAccessToken},
		{"mini-program token", mini, ErrNotAccessToken},
		{"mini-program token with a scope", miniScope, ErrNotAccessToken},
		{"client audience without scope", noScope, ErrNotAccessToken},
		{"another issuer", foreign, token.ErrInvalid},
		{"another key", forged, token.ErrInvalid},
		{"garbage", "not.a.token", token.ErrInvalid},
		{"empty", "", token.ErrInvalid},
	} {
		if info, err := f.p.UserInfo(tt.tok); !errors.Is(err, tt.want) || info != (UserInfo{}) {
			t.Errorf("UserInfo(%s) = %+v, %v; want %v", tt.name, info, err, tt.want)
		}
	}

	// The access token expires with its TTL (and the leeway).
	f.clock.Add(testTTL + token.Leeway)
	if _, err := f.p.UserInfo(resp.AccessToken); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("UserInfo(an expired access token) = %v, want %v", err, token.ErrInvalid)
	}
}

// TestAccessTokenClaims: a web access token is for a registered client
// and has a scope; among several audiences, the client's is found.
func TestAccessTokenClaims(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct {
		name   string
		c      token.Claims
		client string // "" for refused
	}{
		{"client and scope", token.Claims{Audience: token.Audience{confID}, Scope: "openid"}, confID},
		{"a mini-program, then a client", token.Claims{Audience: token.Audience{miniAppID, pubID}, Scope: "openid"}, pubID},
		{"no scope", token.Claims{Audience: token.Audience{confID}}, ""},
		{"unknown client", token.Claims{Audience: token.Audience{"nobody"}, Scope: "openid"}, ""},
		{"a mini-program", token.Claims{Audience: token.Audience{miniAppID}, Scope: "openid"}, ""},
		{"no audience", token.Claims{Scope: "openid"}, ""},
	} {
		client, err := f.p.AccessToken(tt.c)
		if client != tt.client || (err == nil) != (tt.client != "") || err != nil && !errors.Is(err, ErrNotAccessToken) {
			t.Errorf("AccessToken(%s) = %q, %v; want %q", tt.name, client, err, tt.client)
		}
	}
}
