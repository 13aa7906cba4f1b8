package main

import (
	"net/http"
	"time"
)

type phoneResponse struct {
	OpenID          string `json:"openid"`
	PhoneNumber     string `json:"phone_number"` // E.164
	PurePhoneNumber string `json:"pure_phone_number"`
	CountryCode     string `json:"country_code"`
	Token           string `json:"token"`
	ExpiresIn       int64  `json:"expires_in"`
}

// handlePhoneNumber serves POST /phonenumber: the login token names the
// user and the app, the body carries getPhoneNumber's code. Checks run in
// the SPEC's order: method, token, Content-Type, size, body, RATE_LIMIT,
// PHONE_LIMIT, MAX_INFLIGHT; then WeChat.
func (s *server) handlePhoneNumber() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.tok == nil {
			writeError(w, errNotFound)
			return
		}
		var id identity
		fail := func(err error) { s.m.phone(id.AppID, writeError(w, err)) }
		if r.Method != http.MethodPost {
			fail(methodNotAllowed(http.MethodPost))
			return
		}
		id, err := s.bearer(r)
		if err != nil {
			fail(err)
			return
		}
		req, err := decodeCode(w, r)
		if err != nil {
			fail(err)
			return
		}
		if err := s.limitClient(r); err != nil {
			fail(err)
			return
		}
		if s.phoneLimit != nil {
			if ok, wait := s.phoneLimit.allow([2]string{id.AppID, id.OpenID}); !ok {
				fail(rateLimited("too many phone-number requests for this user; retry later", wait))
				return
			}
		}
		if !s.inflight.enter() {
			fail(errOverload)
			return
		}
		p, err := s.wx.PhoneNumber(r.Context(), id.AppID, id.OpenID, req.Code)
		s.inflight.leave()
		if err != nil {
			fail(err)
			return
		}
		id.Phone = p.E164()
		tok, err := s.tok.Sign(id.claims())
		if err != nil {
			fail(err)
			return
		}
		encode(w, http.StatusOK, phoneResponse{
			OpenID: id.OpenID, PhoneNumber: id.Phone, PurePhoneNumber: p.PurePhoneNumber,
			CountryCode: p.CountryCode, Token: tok, ExpiresIn: int64(s.tok.TTL() / time.Second),
		})
		s.m.phone(id.AppID, "ok")
	})
}
