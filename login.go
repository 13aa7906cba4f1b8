package main

import (
	"net/http"
	"strings"
	"time"

	"wxlogin/internal/wechat"
)

type loginResponse struct {
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
	Token     string `json:"token,omitempty"`
	ExpiresIn int64  `json:"expires_in,omitempty"` // seconds
}

// handleOpenID serves POST /openid: checks the request in the SPEC's order
// (method, Content-Type, size, body, app, rate limit, in-flight limit),
// then asks WeChat.
func (s *server) handleOpenID() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app := ""
		fail := func(err error) { s.m.login(app, writeError(w, err)) }
		if r.Method != http.MethodPost {
			fail(methodNotAllowed(http.MethodPost))
			return
		}
		req, err := decodeCode(w, r)
		if err != nil {
			fail(err)
			return
		}
		if app, err = s.chooseApp(req.AppID, r); err != nil {
			fail(err)
			return
		}
		if err := s.limitClient(r); err != nil {
			fail(err)
			return
		}
		if !s.inflight.enter() {
			fail(errOverload)
			return
		}
		sess, err := s.wx.Code2Session(r.Context(), app, req.Code)
		s.inflight.leave()
		if err != nil {
			fail(err)
			return
		}
		if s.unionIDSubject && sess.UnionID == "" {
			fail(errUnionIDMissing) // the person must be one identity, or no login
			return
		}
		resp := loginResponse{OpenID: sess.OpenID, UnionID: sess.UnionID}
		if s.tok != nil {
			id := identity{Subject: sess.OpenID, OpenID: sess.OpenID, UnionID: sess.UnionID, AppID: app}
			if s.unionIDSubject {
				id.Subject = sess.UnionID
			}
			if resp.Token, err = s.tok.Sign(id.claims()); err != nil {
				fail(err)
				return
			}
			resp.ExpiresIn = int64(s.tok.TTL() / time.Second)
		}
		encode(w, http.StatusOK, resp)
		s.m.login(app, "ok")
	})
}

// chooseApp picks the mini-program a login is for, first match wins: the
// body's appid, the X-WX-APPID header, the Referer WeChat sets on
// wx.request, the only AppID configured.
func (s *server) chooseApp(fromBody string, r *http.Request) (string, error) {
	named := fromBody
	if named == "" {
		named = strings.TrimSpace(r.Header.Get("X-Wx-Appid")) // X-WX-APPID, in canonical form
	}
	if named == "" {
		named = refererAppID(r.Header.Get("Referer"), s.apps)
	}
	if named == "" {
		if len(s.apps) == 1 {
			return s.apps[0], nil
		}
		return "", errNoApp
	}
	if app := s.app(named); app != "" {
		return app, nil
	}
	return "", unknownApp(named)
}

// refererAppID reads the AppID from the Referer WeChat sets on wx.request,
// https://servicewechat.com/{appid}/{version}/page-frame.html, where the
// version is 0 (develop), a number, or devtools. A Referer of another
// shape, or one whose AppID is neither configured nor shaped like a real
// one (the devtools' touristappid), names nothing.
func refererAppID(ref string, apps []string) string {
	rest, ok := strings.CutPrefix(ref, "https://servicewechat.com/")
	if !ok {
		return ""
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[2] != "page-frame.html" || (parts[1] != "devtools" && !isDigits(parts[1])) {
		return ""
	}
	for _, a := range apps {
		if a == parts[0] {
			return a
		}
	}
	if wechat.IsAppID(parts[0]) {
		return parts[0]
	}
	return ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
