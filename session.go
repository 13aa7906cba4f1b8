package main

import (
	"net/http"
	"strings"

	"wxlogin/internal/token"
)

// identity is what a verified token says: the user, the app, and when the
// token expires. It is what /session answers.
type identity struct {
	Subject  string // the token's sub: the openid, or the unionid (TOKEN_SUBJECT, the web login)
	OpenID   string
	UnionID  string
	AppID    string // the WeChat app the user logged in with
	ClientID string // a web login's client; "" for a mini-program's token
	Phone    string
	Exp      int64
}

// claims are the claims of a new mini-program token for id.
func (id identity) claims() token.Claims {
	c := token.Claims{Subject: id.Subject, UnionID: id.UnionID, Audience: token.Audience{id.AppID}}
	if id.Subject != id.OpenID {
		c.OpenID = id.OpenID
	}
	if id.Phone != "" {
		c.Phone, c.PhoneVerified = id.Phone, true
	}
	return c
}

// bearer verifies the request's token: signed by one of our keys, and
// either a mini-program's login token (for a configured app) or a web
// login's access token (for a registered client). An id_token is neither.
func (s *server) bearer(r *http.Request) (identity, error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return identity{}, errNoToken
	}
	scheme, tok, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return identity{}, errBadToken
	}
	c, err := s.tok.Verify(strings.TrimSpace(tok))
	if err != nil {
		return identity{}, err
	}
	id := identity{Subject: c.Subject, OpenID: c.OpenID, UnionID: c.UnionID, Exp: c.Expiry}
	if id.OpenID == "" {
		id.OpenID = c.Subject // TOKEN_SUBJECT=openid: the sub is the openid
	}
	if c.PhoneVerified {
		id.Phone = c.Phone
	}
	if c.Scope == "" {
		for _, aud := range c.Audience {
			if app := s.app(aud); app != "" {
				id.AppID = app
				return id, nil
			}
		}
		return identity{}, errBadToken
	}
	if s.web != nil {
		if client, err := s.web.AccessToken(c); err == nil {
			id.AppID, id.ClientID = c.AppID, client
			return id, nil
		}
	}
	return identity{}, errBadToken
}

type sessionResponse struct {
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
	AppID     string `json:"appid"`
	ClientID  string `json:"client_id,omitempty"`
	Phone     string `json:"phone_number,omitempty"`
	ExpiresAt int64  `json:"expires_at"` // unix seconds
}

// handleSession serves GET /session: it verifies a token, for a gateway
// (nginx auth_request, Traefik forwardAuth) that then passes X-Openid and
// the other identity headers on to the app. With tokens off it does not
// exist.
func (s *server) handleSession() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.tok == nil {
			writeError(w, errTokensOff)
			return
		}
		id, err := s.bearer(r)
		if err != nil {
			writeError(w, err)
			return
		}
		h := w.Header()
		h["X-Openid"] = []string{id.OpenID}
		h["X-Appid"] = []string{id.AppID}
		if id.UnionID != "" {
			h["X-Unionid"] = []string{id.UnionID}
		}
		if id.ClientID != "" {
			h["X-Client-Id"] = []string{id.ClientID}
		}
		if id.Phone != "" {
			h["X-Phone-Number"] = []string{id.Phone}
		}
		encode(w, http.StatusOK, sessionResponse{OpenID: id.OpenID, UnionID: id.UnionID, AppID: id.AppID,
			ClientID: id.ClientID, Phone: id.Phone, ExpiresAt: id.Exp})
	})
}
