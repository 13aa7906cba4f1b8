package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

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

// TestMockAnyApp: mock mode without WX_APPID serves whatever well-formed
// AppID a request names — in the body, in X-WX-APPID, in WeChat's Referer —
// so a mini-program with its real AppID logs in unchanged: the token's aud
// is that AppID, /session accepts it and answers it, /phonenumber works
// for it. A request naming none is for wxmock; a malformed one is refused
// without being echoed.
func TestMockAnyApp(t *testing.T) {
	t.Parallel()
	in := startRun(t, map[string]string{"WX_MOCK": "1"})
	const realShaped = "wx00000000000000d4" // configured nowhere
	dev := token.New(token.Options{Keys: []*token.Key{token.MockKey()}, TTL: time.Hour, Issuer: defaultIssuer})
	tests := []struct {
		name, appid, header, referer string
		want                         string // the AppID served
	}{
		{"body", realShaped, "", "", realShaped},
		{"X-WX-APPID", "", realShaped, "", realShaped},
		{"Referer", "", "", referer(realShaped), realShaped},
		{"a mock-shaped AppID", "my-shop_1", "", "", "my-shop_1"},
		{"none", "", "", "", mockAppID},
		{"a Referer of another shape names none", "", "", "https://servicewechat.com/touristappid/devtools/page-frame.html", mockAppID},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := fmt.Sprintf("any%d", i)
			body, _ := json.Marshal(map[string]string{"code": code, "appid": tt.appid})
			req, _ := http.NewRequest("POST", in.url+"/openid", strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			if tt.header != "" {
				req.Header.Set("X-WX-APPID", tt.header)
			}
			if tt.referer != "" {
				req.Header.Set("Referer", tt.referer)
			}
			a := do(t, req)
			if a.status != 200 || a.str("openid") != wechat.MockOpenID(tt.want, code) {
				t.Fatalf("mock login naming %s = %d %s, want 200 with the fake's openid for %s", tt.want, a.status, a.raw, tt.want)
			}
			c, err := dev.Verify(a.str("token"))
			if err != nil || !reflect.DeepEqual(c.Audience, token.Audience{tt.want}) {
				t.Errorf("mock token: aud %v, %v; want [%s]", c.Audience, err, tt.want)
			}
			sess := do(t, bearerRequest("GET", in.url+"/session", a.str("token")))
			if sess.status != 200 || sess.str("appid") != tt.want || sess.header.Get("X-Appid") != tt.want || sess.str("openid") != a.str("openid") {
				t.Errorf("GET /session = %d %s (X-Appid %q), want 200 for %s", sess.status, sess.raw, sess.header.Get("X-Appid"), tt.want)
			}
			phoneCode := "p" + code
			preq := bearerRequest("POST", in.url+"/phonenumber", a.str("token"))
			preq.Body = io.NopCloser(strings.NewReader(`{"code":"` + phoneCode + `"}`))
			preq.Header.Set("Content-Type", "application/json")
			p := do(t, preq)
			if p.status != 200 || p.str("openid") != a.str("openid") || p.str("pure_phone_number") != wechat.MockPhone(phoneCode) {
				t.Errorf("POST /phonenumber = %d %s, want 200 with the fake's number for %s", p.status, p.raw, tt.want)
			}
			if c, err := dev.Verify(p.str("token")); err != nil || !reflect.DeepEqual(c.Audience, token.Audience{tt.want}) {
				t.Errorf("phone token: aud %v, %v; want [%s]", c.Audience, err, tt.want)
			}
		})
	}
	// Malformed: refused, and not echoed.
	for _, bad := range []string{"bad id<b>", strings.Repeat("a", 33), "wx.0123"} {
		body, _ := json.Marshal(map[string]string{"code": "abc", "appid": bad})
		a := postAt(t, in.url, "application/json", string(body))
		wantError(t, a, 400, "unknown_app")
		if m := a.str("message"); strings.Contains(m, bad) || !strings.Contains(m, "not well-formed") {
			t.Errorf("login naming %q: message %q, want it to say the AppID is not well-formed, without echoing it", bad, m)
		}
	}
	// An AppID a client picks never becomes a metric label.
	resp, err := http.Get(in.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(m), realShaped) || strings.Contains(string(m), "my-shop_1") {
		t.Errorf("/metrics has a label of an AppID a request named")
	}
}

// TestUnknownAppNamed: with WX_APPID set, in real and in mock mode, an
// AppID that is not configured is 400 unknown_app whose message names the
// AppID sent, wherever it was sent; a malformed one is not echoed.
func TestUnknownAppNamed(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	mock := startRun(t, map[string]string{"WX_MOCK": "1", "WX_APPID": "wxmine"})
	const other = "wx1111111111111111"
	tests := []struct {
		name                 string
		appid, header, refer string
		want                 string // in the message; "" for not well-formed
	}{
		{"body", other, "", "", other},
		{"X-WX-APPID", "", "wx2222222222222222", "", "wx2222222222222222"},
		{"Referer", "", "", referer("wx3333333333333333"), "wx3333333333333333"},
		{"mock-shaped", "my-shop", "", "", "my-shop"},
		{"malformed body", "bad id<b>", "", "", ""},
		{"malformed header", "", "wx-" + strings.Repeat("0", 40), "", ""},
	}
	for _, base := range []struct{ name, url string }{{"real", s.URL}, {"mock with WX_APPID", mock.url}} {
		for _, tt := range tests {
			req, _ := http.NewRequest("POST", base.url+"/openid", strings.NewReader(`{"code":"abc","appid":"`+tt.appid+`"}`))
			if tt.header != "" {
				req.Header.Set("X-WX-APPID", tt.header)
			}
			if tt.refer != "" {
				req.Header.Set("Referer", tt.refer)
			}
			a := do(t, req)
			wantError(t, a, 400, "unknown_app")
			msg := a.str("message")
			switch {
			case tt.want != "" && !strings.Contains(msg, "AppID "+tt.want+" is not configured"):
				t.Errorf("%s, %s: message %q, want it to name %s", base.name, tt.name, msg, tt.want)
			case tt.want == "" && (!strings.Contains(msg, "not well-formed") || strings.Contains(msg, "<b>") || strings.Contains(msg, "0000000000")):
				t.Errorf("%s, %s: message %q, want \"not well-formed\" without the AppID", base.name, tt.name, msg)
			}
		}
	}
	if n := len(s.wechat.Calls()); n != 0 {
		t.Errorf("WeChat received %d calls for AppIDs that are not configured, want 0", n)
	}
	// The configured one still works in mock mode.
	a := postAt(t, mock.url, "application/json", `{"code":"abc","appid":"wxmine"}`)
	if a.status != 200 || a.str("openid") != wechat.MockOpenID("wxmine", "abc") {
		t.Errorf("mock login for its WX_APPID = %d %s, want 200", a.status, a.raw)
	}
}
