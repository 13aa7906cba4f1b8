package main

import (
	"net/http"
	"strings"

	"wxlogin/internal/token"
)

// identity is what a verified login token says: the user, the app, and
// when the token expires. It is what /session answers.
type identity struct {
	OpenID  string
	UnionID string
	AppID   string
	Phone   string
	Exp     int64
}

// claims are the claims of a new token for id.
func (id identity) claims() token.Claims {
	c := token.Claims{Subject: id.OpenID, UnionID: id.UnionID, Audience: token.Audience{id.AppID}}
	if id.Phone != "" {
		c.Phone, c.PhoneVerified = id.Phone, true
	}
	return c
}

// bearer verifies the request's login token: signed by one of our keys,
// for one of the configured apps.
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
	app := ""
	for _, a := range s.apps {
		if c.Audience.Contains(a) {
			app = a
			break
		}
	}
	if app == "" {
		return identity{}, errBadToken
	}
	id := identity{OpenID: c.Subject, UnionID: c.UnionID, AppID: app, Exp: c.Expiry}
	if c.PhoneVerified {
		id.Phone = c.Phone
	}
	return id, nil
}

type sessionResponse struct {
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
	AppID     string `json:"appid"`
	Phone     string `json:"phone_number,omitempty"`
	ExpiresAt int64  `json:"expires_at"` // unix seconds
}

// handleSession serves GET /session: it verifies a login token, for a
// gateway (nginx auth_request, Traefik forwardAuth) that then passes
// X-Openid on to the app. With tokens off it does not exist.
func (s *server) handleSession() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.tok == nil {
			writeError(w, errNotFound)
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
		if id.Phone != "" {
			h["X-Phone-Number"] = []string{id.Phone}
		}
		encode(w, http.StatusOK, sessionResponse{OpenID: id.OpenID, UnionID: id.UnionID, AppID: id.AppID, Phone: id.Phone, ExpiresAt: id.Exp})
	})
}
