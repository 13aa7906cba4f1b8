package main

import (
	"context"
	"errors"
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
		if !s.enter() {
			fail(errOverload)
			return
		}
		p, err := s.phoneNumber(r.Context(), id, req.Code)
		s.leave()
		if err != nil {
			fail(err)
			return
		}
		id.Phone = "+" + string(p.CountryCode) + p.PurePhoneNumber
		token, err := s.tok.sign(id)
		if err != nil {
			fail(err)
			return
		}
		encode(w, http.StatusOK, phoneResponse{
			OpenID: id.OpenID, PhoneNumber: id.Phone, PurePhoneNumber: p.PurePhoneNumber,
			CountryCode: string(p.CountryCode), Token: token, ExpiresIn: int64(s.tok.ttl / time.Second),
		})
		s.m.phone(id.AppID, "ok")
	})
}

// phoneNumber asks WeChat for the number of the user id, with the app's
// cached access_token. When WeChat says that token is no longer valid
// (another system forced a refresh, or it expired early), it is dropped,
// fetched once more in normal mode, and the call retried once. All of it
// happens within WX_TIMEOUT.
func (s *server) phoneNumber(ctx context.Context, id identity, code string) (phoneInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, s.wx.timeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		token, err := s.access.get(ctx, id.AppID)
		if err != nil {
			return phoneInfo{}, err
		}
		p, err := s.wx.userPhoneNumber(ctx, token, id.AppID, id.OpenID, code)
		if attempt == 1 && staleAccessToken(err) {
			s.access.drop(id.AppID, token)
			continue
		}
		return p, err
	}
}

// staleAccessToken reports whether WeChat refused the access_token itself:
// 40001 (invalid, e.g. replaced by a forced refresh elsewhere), 40014
// (malformed), 42001 (expired).
func staleAccessToken(err error) bool {
	we, ok := errors.AsType[*WxError](err)
	return ok && (we.Code == 40001 || we.Code == 40014 || we.Code == 42001)
}
