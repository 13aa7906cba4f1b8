// Package oidc is wxlogin's OpenID Connect provider for the web: it turns
// WeChat's two web logins — the Open Platform website app's QR code
// (snsapi_login) and the official account's authorization inside WeChat
// (snsapi_userinfo) — into the standard authorization code flow, so that
// any OIDC client logs its users in with WeChat, and one person is one
// sub (the unionid) on the web and in the mini-program.
//
// Nothing is stored. The authorization request travels sealed in a cookie
// between /authorize and /callback, the code is a sealed blob, the tokens
// are JWTs; the only memory is the bounded set of redeemed code ids.
// Sealing keys are derived from the token key file's first key, so every
// replica with the same file completes any step of a login.
//
// The package decides; package main speaks HTTP: each step returns what
// to answer (a redirect, a page, a JSON body) and the metrics result.
package oidc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// Lifetimes of what travels between the steps.
const (
	RequestTTL = 10 * time.Minute // the sealed authorization request (the cookie's Max-Age)
	codeTTL    = 60 * time.Second // our authorization code
)

// CookieName is the cookie that carries the authorization request from
// /authorize to /callback.
const CookieName = "wxlogin_auth"

// The WeChat flows.
const (
	FlowWebsite = "website" // Open Platform website app: QR code in a desktop browser
	FlowOA      = "oa"      // official account: web authorization inside WeChat
)

// Options configure a Provider.
type Options struct {
	Issuer      string // TOKEN_ISSUER: an http(s) URL without a trailing slash
	Clients     []Client
	WebAppID    string // website app; "" = none
	OAAppID     string // official account; "" = none
	OpenBaseURL string // base of WeChat's authorization pages
	Tokens      *token.Set
	WeChat      *wechat.Client
	// SealKey is the key the sealing keys are derived from: the token key
	// file's first key.
	SealKey *token.Key
	// PassLoginHint passes /authorize's login_hint on to WeChat's page:
	// mock mode's fake WeChat takes it for the code it hands back.
	PassLoginHint bool
	Now           func() time.Time // time.Now if nil
}

// Provider is the OpenID Connect provider.
type Provider struct {
	issuer     string
	clients    map[string]*Client
	webAppID   string
	oaAppID    string
	openBase   string
	tokens     *token.Set
	wx         *wechat.Client
	cookie     sealer
	code       sealer
	redeemed   *redeemed
	passHint   bool
	now        func() time.Time
	cookiePath string
	secure     bool
}

// New returns the provider for o.
func New(o Options) (*Provider, error) {
	u, err := url.Parse(o.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("the issuer must be an absolute http(s) URL")
	}
	if o.SealKey == nil || o.Tokens == nil {
		return nil, errors.New("the provider needs the token key file's keys")
	}
	p := &Provider{
		issuer: o.Issuer, clients: map[string]*Client{}, webAppID: o.WebAppID, oaAppID: o.OAAppID,
		openBase: strings.TrimRight(o.OpenBaseURL, "/"), tokens: o.Tokens, wx: o.WeChat,
		redeemed: newRedeemed(redeemedCap), passHint: o.PassLoginHint, now: o.Now,
		cookiePath: u.Path + "/callback", secure: u.Scheme == "https",
	}
	if p.now == nil {
		p.now = time.Now
	}
	for i := range o.Clients {
		p.clients[o.Clients[i].ID] = &o.Clients[i]
	}
	if p.cookie, err = newSealer(o.SealKey.Derive("wxlogin oidc authorization request v1"), CookieName); err != nil {
		return nil, err
	}
	if p.code, err = newSealer(o.SealKey.Derive("wxlogin oidc authorization code v1"), "code"); err != nil {
		return nil, err
	}
	return p, nil
}

// IsClient reports whether id is a registered client: an access token
// whose aud is a client is a web login's.
func (p *Provider) IsClient(id string) bool { _, ok := p.clients[id]; return ok }

// Endpoint is the public URL of one of the provider's routes.
func (p *Provider) Endpoint(path string) string { return p.issuer + path }

// CookiePath is the Path of the cookie: /callback under the issuer's path.
func (p *Provider) CookiePath() string { return p.cookiePath }

// SecureCookie reports whether the cookie is Secure (an https issuer).
func (p *Provider) SecureCookie() bool { return p.secure }

// Problem names a page the browser is shown instead of a redirect.
type Problem string

// The pages.
const (
	ProblemUnknownClient Problem = "unknown_client"       // 400: no redirect to a client we do not know
	ProblemRedirectURI   Problem = "invalid_redirect_uri" // 400: never a redirect to an unregistered URI
	ProblemOpenInWeChat  Problem = "open_in_wechat"       // 400: official account only, outside WeChat
	ProblemExpired       Problem = "login_expired"        // 400: no, a bad or an expired cookie, or another state
)

// Step is what a browser-facing endpoint answers: a page (Problem, or the
// "Continue with WeChat" page when Continue is set) or a redirect to
// Location. Cookie is a sealed authorization request to set; ClearCookie
// asks to delete it. Result is the metrics label (ok or the error code),
// Err the detail for the log.
type Step struct {
	Problem     Problem
	Continue    string
	Location    string
	Cookie      string
	ClearCookie bool
	Result      string
	Err         error
}

// pending is the authorization request, sealed in the cookie while the
// user is at WeChat.
type pending struct {
	ClientID    string `json:"c"`
	RedirectURI string `json:"r"`
	State       string `json:"s,omitempty"`
	Nonce       string `json:"n,omitempty"`
	Challenge   string `json:"p,omitempty"`
	Flow        string `json:"f"`
	WXState     string `json:"w"`
	Exp         int64  `json:"e"`
}

// grant is our authorization code, sealed: who logged in, for which
// client, and until when.
type grant struct {
	ID          string `json:"i"`
	UnionID     string `json:"u"`
	OpenID      string `json:"o"`
	AppID       string `json:"a"`
	ClientID    string `json:"c"`
	RedirectURI string `json:"r"`
	Nonce       string `json:"n,omitempty"`
	Challenge   string `json:"p,omitempty"`
	AuthTime    int64  `json:"t"`
	Exp         int64  `json:"e"`
}

// Bounds of what travels in the cookie, which browsers keep to 4 KiB:
// state (oauth2-proxy puts the page's whole path and query in it) and
// nonce, and the sealed cookie itself.
const (
	maxParam  = 2048
	maxCookie = 3800
)

// single returns the one value of name in q, or false when it is given
// more than once (RFC 6749 §3.1: parameters must not repeat).
func single(q url.Values, name string) (string, bool) {
	v := q[name]
	switch len(v) {
	case 0:
		return "", true
	case 1:
		return v[0], true
	}
	return "", false
}

// Authorize handles GET /authorize (OIDC Core §3.1.2): it checks the
// request and sends the browser to WeChat's page for the flow the
// User-Agent calls for, with the request sealed in the cookie.
func (p *Provider) Authorize(q url.Values, userAgent string) Step {
	clientID, ok1 := single(q, "client_id")
	redirectURI, ok2 := single(q, "redirect_uri")
	c := p.clients[clientID]
	if !ok1 || c == nil {
		return Step{Problem: ProblemUnknownClient, Result: string(ProblemUnknownClient)}
	}
	if !ok2 || !registered(c, redirectURI) {
		return Step{Problem: ProblemRedirectURI, Result: string(ProblemRedirectURI)}
	}
	state, _ := single(q, "state")
	fail := func(code, description string) Step {
		return Step{Location: withQuery(redirectURI, "error", code, "error_description", description, "state", state, "iss", p.issuer), Result: code}
	}
	for _, name := range []string{"response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "prompt", "response_mode", "login_hint"} {
		if _, ok := single(q, name); !ok {
			return fail("invalid_request", name+" is given more than once")
		}
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case q.Get("request") != "":
		return fail("request_not_supported", "request objects are not supported")
	case q.Get("request_uri") != "":
		return fail("request_uri_not_supported", "request_uri is not supported")
	case q.Get("response_type") != "code":
		return fail("unsupported_response_type", "only response_type=code is supported")
	case !hasScope(q.Get("scope"), "openid"):
		return fail("invalid_scope", "scope must contain openid")
	case q.Get("response_mode") != "" && q.Get("response_mode") != "query":
		return fail("invalid_request", "only response_mode=query is supported")
	case len(state) > maxParam || len(q.Get("nonce")) > maxParam:
		return fail("invalid_request", fmt.Sprintf("state and nonce are limited to %d bytes", maxParam))
	case challenge == "" && method != "":
		return fail("invalid_request", "code_challenge_method without code_challenge")
	case challenge != "" && method != "S256":
		return fail("invalid_request", "code_challenge_method must be S256 (plain is not supported)")
	case challenge != "" && !validChallenge(challenge):
		return fail("invalid_request", "code_challenge is not a base64url SHA-256")
	case c.Public && challenge == "":
		return fail("invalid_request", "a public client must use PKCE (code_challenge with S256)")
	case hasScope(q.Get("prompt"), "none"):
		return fail("login_required", "WeChat always asks the user; a silent login is not possible")
	}

	flow, appID := FlowWebsite, p.webAppID
	if strings.Contains(userAgent, "MicroMessenger") && p.oaAppID != "" || p.webAppID == "" {
		flow, appID = FlowOA, p.oaAppID
	}
	if flow == FlowOA && !strings.Contains(userAgent, "MicroMessenger") {
		return Step{Problem: ProblemOpenInWeChat, Result: string(ProblemOpenInWeChat)}
	}
	req := pending{ClientID: c.ID, RedirectURI: redirectURI, State: state, Nonce: q.Get("nonce"),
		Challenge: challenge, Flow: flow, WXState: randomHex(16), Exp: p.now().Add(RequestTTL).Unix()}
	page, scope := "/connect/qrconnect", "snsapi_login"
	if flow == FlowOA {
		page, scope = "/connect/oauth2/authorize", "snsapi_userinfo"
	}
	// WeChat's pages want the parameters in this order, and
	// #wechat_redirect at the end.
	target := p.openBase + page + "?appid=" + url.QueryEscape(appID) + "&redirect_uri=" + url.QueryEscape(p.issuer+"/callback") +
		"&response_type=code&scope=" + scope + "&state=" + req.WXState
	if hint := q.Get("login_hint"); p.passHint && hint != "" {
		target += "&login_hint=" + url.QueryEscape(hint)
	}
	target += "#wechat_redirect"
	s := Step{Cookie: p.cookie.seal(req), Result: "ok"}
	if len(s.Cookie) > maxCookie {
		return fail("invalid_request", "state, nonce and redirect_uri together are too long for the login cookie")
	}
	if flow == FlowOA {
		s.Continue = target // a page with a button: WeChat shows a "snapshot" to pages that jump on load
	} else {
		s.Location = target
	}
	return s
}

// Pending is a callback whose checks passed: what the exchange with WeChat
// needs.
type Pending struct {
	req  pending
	code string
}

// Callback checks GET /callback (the cookie, its state, WeChat's code)
// before anything is asked of WeChat. It returns the pending login, or the
// step to answer at once.
func (p *Provider) Callback(q url.Values, cookie string) (*Pending, Step) {
	var req pending
	switch {
	case cookie == "":
		return nil, Step{Problem: ProblemExpired, Result: string(ProblemExpired), Err: errors.New("no cookie: the login started elsewhere, or the cookie expired")}
	case p.cookie.open(cookie, &req) != nil:
		return nil, Step{Problem: ProblemExpired, Result: string(ProblemExpired), ClearCookie: true, Err: errors.New("the cookie does not unseal")}
	case p.now().Unix() > req.Exp:
		return nil, Step{Problem: ProblemExpired, Result: string(ProblemExpired), ClearCookie: true, Err: errors.New("the cookie expired")}
	case q.Get("state") != req.WXState || len(q["state"]) != 1:
		return nil, Step{Problem: ProblemExpired, Result: string(ProblemExpired), Err: errors.New("state is not the cookie's")}
	}
	code := q.Get("code")
	if code == "" {
		return nil, p.deny(req, "access_denied", "the user did not allow the login", errors.New("no code: the user declined"))
	}
	if len(q["code"]) != 1 || len(code) > 512 {
		return nil, p.deny(req, "invalid_request", "WeChat's answer is malformed", errors.New("code repeated or too long"))
	}
	return &Pending{req: req, code: code}, Step{}
}

// deny sends the browser back to the client with an error (and clears the
// cookie).
func (p *Provider) deny(req pending, code, description string, err error) Step {
	return Step{Location: withQuery(req.RedirectURI, "error", code, "error_description", description, "state", req.State, "iss", p.issuer),
		ClearCookie: true, Result: code, Err: err}
}

// Exchange asks WeChat who logged in, and sends the browser back to the
// client with our code, or with the error.
func (p *Provider) Exchange(ctx context.Context, pl *Pending) Step {
	req := pl.req
	appID := p.webAppID
	if req.Flow == FlowOA {
		appID = p.oaAppID
	}
	u, err := p.wx.OAuthAccessToken(ctx, appID, pl.code)
	if err != nil {
		we, _ := errors.AsType[*wechat.Error](err)
		switch {
		case we != nil && (we.Code == wechat.CodeInvalidCode || we.Code == wechat.CodeCodeUsed || we.Code == wechat.CodeCodeExpired):
			return p.deny(req, "access_denied", "the WeChat code is invalid or was used; try again", err)
		case we != nil && we.Misconfigured():
			return p.deny(req, "server_error", "the login service is misconfigured; tell its operator", err)
		}
		return p.deny(req, "temporarily_unavailable", "WeChat could not be asked; try again shortly", err)
	}
	switch {
	case u.SnapshotUser:
		return p.deny(req, "access_denied", "open the full page in WeChat and try again", errors.New("snapshot page user (is_snapshotuser=1)"))
	case u.UnionID == "":
		return p.deny(req, "access_denied", "this WeChat app is not bound to the Open Platform account", errors.New("no unionid: the app is not bound to an Open Platform account"))
	}
	now := p.now()
	g := grant{ID: randomHex(16), UnionID: u.UnionID, OpenID: u.OpenID, AppID: appID, ClientID: req.ClientID,
		RedirectURI: req.RedirectURI, Nonce: req.Nonce, Challenge: req.Challenge, AuthTime: now.Unix(), Exp: now.Add(codeTTL).Unix()}
	return Step{Location: withQuery(req.RedirectURI, "code", p.code.seal(g), "state", req.State, "iss", p.issuer), ClearCookie: true, Result: "ok"}
}

// registered reports whether uri is one of c's redirect URIs, exactly.
func registered(c *Client, uri string) bool {
	for _, r := range c.RedirectURIs {
		if r == uri {
			return true
		}
	}
	return false
}

// hasScope reports whether the space-separated list has v.
func hasScope(list, v string) bool {
	for _, s := range strings.Fields(list) {
		if s == v {
			return true
		}
	}
	return false
}

// withQuery adds name/value pairs (those with a value) to uri's query,
// keeping the query it has as it is.
func withQuery(uri string, kv ...string) string {
	add := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] != "" {
			add.Set(kv[i], kv[i+1])
		}
	}
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
		if strings.HasSuffix(uri, "?") || strings.HasSuffix(uri, "&") {
			sep = ""
		}
	}
	return uri + sep + add.Encode()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	const hex = "0123456789abcdef"
	out := make([]byte, 2*n)
	for i, c := range b {
		out[2*i], out[2*i+1] = hex[c>>4], hex[c&0xf]
	}
	return string(out)
}
