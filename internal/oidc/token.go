package oidc

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"wxlogin/internal/token"
)

// TokenError is an OAuth error of the token endpoint (RFC 6749 §5.2).
type TokenError struct {
	Status      int
	Code        string
	Description string
	BasicTried  bool  // answer 401 with WWW-Authenticate: Basic
	Err         error // detail for the log
}

func (e *TokenError) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Description
}

func (e *TokenError) Unwrap() error { return e.Err }

func tokenError(status int, code, description string) *TokenError {
	return &TokenError{Status: status, Code: code, Description: description}
}

// TokenResponse is a successful token endpoint answer.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	IDToken     string `json:"id_token"`
	Scope       string `json:"scope"`
}

// Grant is a token request whose form and client checked out: what the
// redemption needs.
type Grant struct {
	client      *Client
	code        string
	redirectURI string
	verifier    string
}

// TokenRequest checks POST /token's form and authenticates the client
// (client_secret_basic, client_secret_post, or a public client's
// client_id). authorization is the request's Authorization header.
func (p *Provider) TokenRequest(form url.Values, authorization string) (*Grant, *TokenError) {
	for name, v := range form {
		if len(v) > 1 {
			return nil, tokenError(http.StatusBadRequest, "invalid_request", name+" is given more than once")
		}
	}
	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
	case "":
		return nil, tokenError(http.StatusBadRequest, "invalid_request", "grant_type is required")
	default:
		return nil, tokenError(http.StatusBadRequest, "unsupported_grant_type", "only grant_type=authorization_code is supported")
	}

	id, secret, basic := basicAuth(authorization)
	if basic {
		switch {
		case id == "":
			return nil, &TokenError{Status: http.StatusUnauthorized, Code: "invalid_client", Description: "the Basic credentials are malformed", BasicTried: true}
		case form.Get("client_secret") != "":
			return nil, tokenError(http.StatusBadRequest, "invalid_request", "use one client authentication method, not Basic and client_secret both")
		case form.Get("client_id") != "" && form.Get("client_id") != id:
			return nil, tokenError(http.StatusBadRequest, "invalid_request", "client_id differs from the Basic credentials")
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	c := p.clients[id]
	fail := func(description string) *TokenError {
		return &TokenError{Status: http.StatusUnauthorized, Code: "invalid_client", Description: description, BasicTried: basic}
	}
	switch {
	case id == "":
		return nil, fail("client authentication is required")
	case c == nil:
		return nil, fail("unknown client")
	case c.Public && secret != "":
		return nil, fail("a public client has no secret")
	case !c.Public && !secretMatches(secret, c.SecretSHA256):
		return nil, fail("client authentication failed")
	}

	g := &Grant{client: c, code: form.Get("code"), redirectURI: form.Get("redirect_uri"), verifier: form.Get("code_verifier")}
	switch {
	case g.code == "":
		return nil, tokenError(http.StatusBadRequest, "invalid_request", "code is required")
	case g.redirectURI == "":
		return nil, tokenError(http.StatusBadRequest, "invalid_request", "redirect_uri is required")
	}
	return g, nil
}

// basicAuth reads client_secret_basic credentials: the client id and
// secret, each form-urlencoded (RFC 6749 §2.3.1), then HTTP Basic. ok
// reports whether Basic was tried at all.
func basicAuth(h string) (id, secret string, ok bool) {
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return "", "", true
	}
	u, s, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", true
	}
	if id, err = url.QueryUnescape(u); err != nil {
		return "", "", true
	}
	if secret, err = url.QueryUnescape(s); err != nil {
		return "", "", true
	}
	return id, secret, true
}

// secretMatches compares the presented secret's SHA-256 with the stored
// one in constant time: the file holds no secret in clear.
func secretMatches(secret string, sum []byte) bool {
	got := sha256.Sum256([]byte(secret))
	return secret != "" && subtle.ConstantTimeCompare(got[:], sum) == 1
}

// Redeem turns a code into an id_token and an access_token. The code is
// used up once it unseals, whatever fails after (another client, another
// redirect_uri, a wrong code_verifier).
func (p *Provider) Redeem(g *Grant) (*TokenResponse, *TokenError) {
	invalid := func(reason string) *TokenError {
		return &TokenError{Status: http.StatusBadRequest, Code: "invalid_grant", Description: "the code is invalid, expired, used or not for this client",
			Err: errors.New(reason)}
	}
	var gr grant
	if p.code.open(g.code, &gr) != nil {
		return nil, invalid("the code does not unseal")
	}
	now := p.now()
	if now.Unix() > gr.Exp {
		return nil, invalid("the code expired")
	}
	switch ok, full := p.redeemed.use(gr.ID, gr.Exp, now); {
	case full:
		return nil, &TokenError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
			Description: "too many logins at once; try again", Err: errors.New("the set of redeemed codes is full")}
	case !ok:
		return nil, invalid("the code was redeemed before")
	}
	switch {
	case gr.ClientID != g.client.ID:
		return nil, invalid("the code was issued to another client")
	case gr.RedirectURI != g.redirectURI:
		return nil, invalid("redirect_uri differs from the authorization request's")
	case gr.Challenge == "" && g.verifier != "":
		return nil, invalid("code_verifier without a code_challenge in the authorization request")
	case gr.Challenge != "" && !verifierMatches(g.verifier, gr.Challenge):
		return nil, invalid("code_verifier is missing or does not match the code_challenge")
	}

	access, err := p.tokens.Sign(token.Claims{Subject: gr.UnionID, Audience: token.Audience{g.client.ID},
		OpenID: gr.OpenID, UnionID: gr.UnionID, AppID: gr.AppID, Scope: "openid"})
	if err != nil {
		return nil, &TokenError{Status: http.StatusInternalServerError, Code: "server_error", Description: "could not sign the tokens", Err: err}
	}
	id, err := p.tokens.SignWith(g.client.IDTokenAlg, token.Claims{Subject: gr.UnionID, Audience: token.Audience{g.client.ID},
		AuthTime: gr.AuthTime, Nonce: gr.Nonce, OpenID: gr.OpenID, AppID: gr.AppID})
	if err != nil {
		return nil, &TokenError{Status: http.StatusInternalServerError, Code: "server_error", Description: "could not sign the tokens", Err: err}
	}
	return &TokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(p.tokens.TTL() / time.Second),
		IDToken: id, Scope: "openid"}, nil
}

// UserInfo is what /userinfo answers (OIDC Core §5.3). WeChat no longer
// hands out real nicknames or avatars, so there are none.
type UserInfo struct {
	Sub     string `json:"sub"`
	UnionID string `json:"unionid"`
	OpenID  string `json:"openid"`
	AppID   string `json:"appid"`
}

// ErrNotAccessToken refuses a token that verified but is not a web
// login's access token: a mini-program login token, or an id_token.
var ErrNotAccessToken = errors.New("not an access token of the web login")

// AccessToken checks that c, verified claims, are a web login's access
// token: for a registered client, with a scope. It returns the client.
func (p *Provider) AccessToken(c token.Claims) (string, error) {
	for _, aud := range c.Audience {
		if p.IsClient(aud) && c.Scope != "" {
			return aud, nil
		}
	}
	return "", ErrNotAccessToken
}

// UserInfo answers /userinfo for an access token.
func (p *Provider) UserInfo(bearer string) (UserInfo, error) {
	c, err := p.tokens.Verify(bearer)
	if err != nil {
		return UserInfo{}, err
	}
	if _, err := p.AccessToken(c); err != nil {
		return UserInfo{}, err
	}
	return UserInfo{Sub: c.Subject, UnionID: c.UnionID, OpenID: c.OpenID, AppID: c.AppID}, nil
}
