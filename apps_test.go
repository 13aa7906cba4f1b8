package main

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// Three mini-programs. Shared with part B's TestSecretDir: move to
// helpers_test.go as shopApp, staffApp and trialApp.
const (
	shopAppA  = "wx00000000000000a1"
	staffAppA = "wx00000000000000b2"
	trialAppA = "wx00000000000000c3"
)

// referer is the Referer WeChat sets on wx.request from app.
func referer(app string) string { return "https://servicewechat.com/" + app + "/7/page-frame.html" }

// TestChooseApp checks which app a login is for, first match wins: body,
// X-WX-APPID, Referer, the only app.
func TestChooseApp(t *testing.T) {
	t.Parallel()
	several := &server{apps: []string{shopAppA, staffAppA, trialAppA}}
	one := &server{apps: []string{shopAppA}}
	tests := []struct {
		name    string
		s       *server
		body    string
		header  string
		referer string
		want    string // an AppID, or an error code
	}{
		{"body", several, staffAppA, trialAppA, referer(shopAppA), staffAppA},
		{"header", several, "", trialAppA, referer(shopAppA), trialAppA},
		{"header with spaces", several, "", " " + trialAppA + " ", "", trialAppA},
		{"referer", several, "", "", referer(shopAppA), shopAppA},
		{"referer devtools", several, "", "", "https://servicewechat.com/" + staffAppA + "/devtools/page-frame.html", staffAppA},
		{"referer version 0", several, "", "", "https://servicewechat.com/" + trialAppA + "/0/page-frame.html", trialAppA},
		{"none of several", several, "", "", "", "invalid_request"},
		{"the only app", one, "", "", "", shopAppA},
		{"unknown in body", several, "wx0000000000000000", "", "", "unknown_app"},
		{"body in another case", several, strings.ToUpper(shopAppA), "", "", "unknown_app"},
		{"unknown in header", one, "", "wxffffffffffffffff", "", "unknown_app"},
		{"unknown AppID in referer", one, "", "", referer("wxffffffffffffffff"), "unknown_app"},
		{"body beats an unknown header", several, shopAppA, "wxffffffffffffffff", "", shopAppA},
		{"referer of another shape ignored", one, "", "", "https://example.com/" + staffAppA + "/1/page-frame.html", shopAppA},
		{"referer without page-frame ignored", one, "", "", "https://servicewechat.com/" + staffAppA + "/1/index.html", shopAppA},
		{"referer bad version ignored", one, "", "", "https://servicewechat.com/" + staffAppA + "/v1/page-frame.html", shopAppA},
		{"referer with more parts ignored", one, "", "", "https://servicewechat.com/" + staffAppA + "/1/x/page-frame.html", shopAppA},
		{"touristappid ignored", one, "", "", "https://servicewechat.com/touristappid/devtools/page-frame.html", shopAppA},
		{"garbage referer ignored", several, "", staffAppA, "\x00garbage", staffAppA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest("POST", "/openid", nil)
			if tt.header != "" {
				r.Header.Set("X-WX-APPID", tt.header)
			}
			if tt.referer != "" {
				r.Header.Set("Referer", tt.referer)
			}
			got, err := tt.s.chooseApp(tt.body, r)
			if err != nil {
				got = clientError(err).code
			}
			if got != tt.want {
				t.Errorf("chooseApp(%q, X-WX-APPID %q, Referer %q) = %s, want %s", tt.body, tt.header, tt.referer, got, tt.want)
			}
		})
	}
}

// TestSeveralApps runs one service for three apps, one of them configured
// with a wrong secret: each login and each access_token goes to WeChat
// with its own AppID and secret, tokens carry aud = that AppID, and the
// broken app fails alone.
func TestSeveralApps(t *testing.T) {
	t.Parallel()
	secrets := map[string]string{shopAppA: "shop-secret", staffAppA: "staff-secret", trialAppA: "wrong-trial-secret"}
	apps := []wechat.App{{ID: shopAppA, Secret: secrets[shopAppA]}, {ID: staffAppA, Secret: secrets[staffAppA]}, {ID: trialAppA, Secret: secrets[trialAppA]}}
	s := phoneService(t, withConfig(func(c *Config) { c.Apps = apps }))
	// WeChat knows the trial app's right secret.
	wx := wechat.NewFake(wechat.FakeOptions{Apps: []wechat.App{apps[0], apps[1], {ID: trialAppA, Secret: "the-right-trial-secret"}}})
	s.wechat.Intercept(wechat.Code2SessionPath, wx.ServeHTTP)

	loginAs := func(body, ref string) answer {
		req, _ := http.NewRequest("POST", s.URL+"/openid", strings.NewReader(body))
		if ref != "" {
			req.Header.Set("Referer", referer(ref))
		}
		return do(t, req)
	}
	shop := loginAs(`{"code":"abc","appid":"`+shopAppA+`"}`, "")
	staff := loginAs(`{"code":"abc"}`, staffAppA)
	if shop.status != 200 || staff.status != 200 {
		t.Fatalf("logins = %d %s / %d %s", shop.status, shop.raw, staff.status, staff.raw)
	}
	if shop.str("openid") != wechat.MockOpenID(shopAppA, "abc") || staff.str("openid") != wechat.MockOpenID(staffAppA, "abc") {
		t.Errorf("openids %s, %s: not each app's own", shop.str("openid"), staff.str("openid"))
	}
	if shop.str("unionid") != staff.str("unionid") || shop.str("unionid") != wechat.MockUnionID("abc") {
		t.Errorf("unionids %s, %s: want one person's, the same in both apps", shop.str("unionid"), staff.str("unionid"))
	}
	for app, a := range map[string]answer{shopAppA: shop, staffAppA: staff} {
		c, err := s.tok.Verify(a.str("token"))
		if err != nil || !reflect.DeepEqual(c.Audience, token.Audience{app}) {
			t.Errorf("a %s token: aud %v, err %v; want aud [%s]", app, c.Audience, err, app)
		}
		sess := do(t, bearerRequest("GET", s.URL+"/session", a.str("token")))
		if sess.status != 200 || sess.str("appid") != app || sess.header.Get("X-Appid") != app {
			t.Errorf("session of a %s token = %d %s, X-Appid %q", app, sess.status, sess.raw, sess.header.Get("X-Appid"))
		}
		// Each app has its own access_token.
		if p := s.phone(t, a.str("token"), "", `{"code":"p-`+app+`"}`); p.status != 200 || p.str("openid") != a.str("openid") {
			t.Errorf("phone of a %s token = %d %s", app, p.status, p.raw)
		}
	}
	// The trial app's secret is wrong: only its logins fail.
	wantError(t, loginAs(`{"code":"abc","appid":"`+trialAppA+`"}`, ""), 500, "misconfigured")
	if a := loginAs(`{"code":"def","appid":"`+shopAppA+`"}`, ""); a.status != 200 {
		t.Errorf("the shop after the trial app failed = %d %s", a.status, a.raw)
	}
	n := len(s.wechat.Calls())
	wantError(t, loginAs(`{"code":"abc"}`, ""), 400, "invalid_request")
	wantError(t, loginAs(`{"code":"abc","appid":"wx1111111111111111"}`, ""), 400, "unknown_app")
	wantError(t, loginAs(`{"code":"abc"}`, "wx1111111111111111"), 400, "unknown_app")
	if len(s.wechat.Calls()) != n {
		t.Errorf("a login without a known app reached WeChat")
	}

	// What WeChat received: each app with its own secret, every time.
	logins := s.wechat.CallsTo(wechat.Code2SessionPath)
	if len(logins) != 4 {
		t.Errorf("WeChat got %d logins, want 4", len(logins))
	}
	for _, c := range logins {
		app := c.Query.Get("appid")
		checkCall(t, c, http.MethodGet, loginQuery(app, secrets[app], c.Query.Get("js_code")), nil)
		if secrets[app] == "" {
			t.Errorf("WeChat got a login for %q, not a configured app", app)
		}
	}
	stable := s.wechat.CallsTo(wechat.StableTokenPath)
	if len(stable) != 2 {
		t.Fatalf("WeChat got %d stable_token calls, want 2 (one per app)", len(stable))
	}
	seen := map[string]bool{}
	for _, c := range stable {
		app, _ := c.JSON()["appid"].(string)
		seen[app] = true
		checkCall(t, c, http.MethodPost, url.Values{}, stableTokenBody(app, secrets[app]))
	}
	if !seen[shopAppA] || !seen[staffAppA] {
		t.Errorf("stable_token calls for %v, want the shop's and the staff's", seen)
	}
	phones := s.wechat.CallsTo(wechat.PhoneNumberPath)
	if len(phones) != 2 || phones[0].Query.Get("access_token") == phones[1].Query.Get("access_token") {
		t.Errorf("WeChat got %d phone calls, want 2 with different access_tokens", len(phones))
	}

	e := parseExposition(t, string(s.metrics.appendText(nil, 0)))
	for k, want := range map[string]float64{
		`wxlogin_logins_total{appid="` + shopAppA + `",result="ok"}`:             2,
		`wxlogin_logins_total{appid="` + staffAppA + `",result="ok"}`:            1,
		`wxlogin_logins_total{appid="` + trialAppA + `",result="misconfigured"}`: 1,
		`wxlogin_logins_total{appid="` + trialAppA + `",result="ok"}`:            0,
		`wxlogin_logins_total{appid="",result="invalid_request"}`:                1,
		`wxlogin_logins_total{appid="",result="unknown_app"}`:                    2,
		`wxlogin_phone_requests_total{appid="` + shopAppA + `",result="ok"}`:     1,
		`wxlogin_phone_requests_total{appid="` + staffAppA + `",result="ok"}`:    1,
		`wxlogin_stable_token_total{result="ok"}`:                                2,
	} {
		if got, ok := e.samples[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	if m := string(s.metrics.appendText(nil, 0)); strings.Contains(m, "wx1111111111111111") {
		t.Errorf("an unconfigured AppID became a metric label")
	}
}
