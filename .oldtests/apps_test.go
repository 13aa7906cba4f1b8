package main

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Three mini-programs for these tests.
const (
	shopApp  = "wx00000000000000a1"
	staffApp = "wx00000000000000b2"
	trialApp = "wx00000000000000c3"
)

var threeApps = []App{{shopApp, "shop-secret"}, {staffApp, "staff-secret"}, {trialApp, "trial-secret"}}

func referer(app string) string { return "https://servicewechat.com/" + app + "/7/page-frame.html" }

// TestChooseApp checks which app a login is for, first match wins: body,
// X-WX-APPID, Referer, the only app.
func TestChooseApp(t *testing.T) {
	t.Parallel()
	several := &server{apps: []string{shopApp, staffApp, trialApp}}
	one := &server{apps: []string{shopApp}}
	tests := []struct {
		name    string
		s       *server
		body    string
		header  string
		referer string
		want    string // an AppID, or an error code
	}{
		{"body", several, staffApp, trialApp, referer(shopApp), staffApp},
		{"header", several, "", trialApp, referer(shopApp), trialApp},
		{"referer", several, "", "", referer(shopApp), shopApp},
		{"referer devtools", several, "", "", "https://servicewechat.com/" + staffApp + "/devtools/page-frame.html", staffApp},
		{"referer version 0", several, "", "", "https://servicewechat.com/" + trialApp + "/0/page-frame.html", trialApp},
		{"none of several", several, "", "", "", "invalid_request"},
		{"the only app", one, "", "", "", shopApp},
		{"unknown in body", several, "wx0000000000000000", "", "", "unknown_app"},
		{"unknown in header", one, "", "wxffffffffffffffff", "", "unknown_app"},
		{"unknown AppID in referer", one, "", "", referer("wxffffffffffffffff"), "unknown_app"},
		{"body beats an unknown header", several, shopApp, "wxffffffffffffffff", "", shopApp},
		{"referer of another shape ignored", one, "", "", "https://example.com/" + staffApp + "/1/page-frame.html", shopApp},
		{"referer without page-frame ignored", one, "", "", "https://servicewechat.com/" + staffApp + "/1/index.html", shopApp},
		{"referer bad version ignored", one, "", "", "https://servicewechat.com/" + staffApp + "/v1/page-frame.html", shopApp},
		{"touristappid ignored", one, "", "", "https://servicewechat.com/touristappid/devtools/page-frame.html", shopApp},
		{"garbage referer ignored", several, "", staffApp, "\x00garbage", staffApp},
	}
	for _, tt := range tests {
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
			t.Errorf("%s: chooseApp = %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestSeveralApps runs one service for three apps, one of them with a
// wrong secret: each login goes to WeChat with its own AppID and secret,
// tokens carry aud = that AppID, and the broken app fails alone.
func TestSeveralApps(t *testing.T) {
	t.Parallel()
	wechat := newMockWeChat([]App{{shopApp, "shop-secret"}, {staffApp, "staff-secret"}, {trialApp, "the-right-trial-secret"}})
	s := newTestService(t, wechat.ServeHTTP, withConfig(func(c *Config) { c.Apps = threeApps }), withTokens(time.Now, testKey))
	loginAs := func(body, header string) answer {
		req, _ := http.NewRequest("POST", s.URL+"/openid", strings.NewReader(body))
		if header != "" {
			req.Header.Set("Referer", referer(header))
		}
		return do(t, req)
	}
	shop := loginAs(`{"code":"abc","appid":"`+shopApp+`"}`, "")
	staff := loginAs(`{"code":"abc"}`, staffApp)
	if shop.status != 200 || staff.status != 200 {
		t.Fatalf("logins = %d %s / %d %s", shop.status, shop.raw, staff.status, staff.raw)
	}
	if shop.str("openid") != mockID("openid", shopApp, "abc") || staff.str("openid") != mockID("openid", staffApp, "abc") {
		t.Errorf("openids %s, %s: not each app's own", shop.str("openid"), staff.str("openid"))
	}
	for app, a := range map[string]answer{shopApp: shop, staffApp: staff} {
		sess := do(t, bearerRequest("GET", s.URL+"/session", a.str("token")))
		if sess.str("appid") != app || sess.header.Get("X-Appid") != app {
			t.Errorf("session of a %s token = %s %v", app, sess.raw, sess.header)
		}
	}
	// What WeChat saw: each app with its own secret.
	for _, q := range s.wechat.callsSince(0) {
		if want := map[string]string{shopApp: "shop-secret", staffApp: "staff-secret", trialApp: "trial-secret"}[q.Get("appid")]; q.Get("secret") != want {
			t.Errorf("WeChat got appid %s with another app's secret", q.Get("appid"))
		}
	}
	// The trial app's secret is wrong: only its logins fail.
	wantError(t, loginAs(`{"code":"abc","appid":"`+trialApp+`"}`, ""), 500, "misconfigured")
	if a := loginAs(`{"code":"def","appid":"`+shopApp+`"}`, ""); a.status != 200 {
		t.Errorf("the shop after the trial app failed = %d", a.status)
	}
	n := s.wechat.callCount()
	wantError(t, loginAs(`{"code":"abc"}`, ""), 400, "invalid_request")
	wantError(t, loginAs(`{"code":"abc","appid":"wx1111111111111111"}`, ""), 400, "unknown_app")
	if s.wechat.callCount() != n {
		t.Errorf("a login without a known app reached WeChat")
	}
	m := string(s.metrics.appendText(nil))
	for _, want := range []string{
		`wxlogin_logins_total{appid="` + shopApp + `",result="ok"} 2`,
		`wxlogin_logins_total{appid="` + trialApp + `",result="misconfigured"} 1`,
		`wxlogin_logins_total{appid="",result="unknown_app"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(m, "wx1111111111111111") {
		t.Errorf("an unconfigured AppID became a metric label")
	}
}

// kubeSecretDir lays out files the way Kubernetes mounts a Secret: each
// key a symlink through ..data into a timestamped directory.
func kubeSecretDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_11_30_02_00_00.123456789")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(ts, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSecretDir(t *testing.T) {
	t.Parallel()
	dir := kubeSecretDir(t, map[string]string{shopApp: "shop-secret\n", staffApp: "  staff-secret ", "README": "ignored"})
	c, err := loadConfig(nil, envOf(map[string]string{"WX_APPID": shopApp + ", " + staffApp, "WX_SECRET_DIR": dir}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Apps) != 2 || c.Apps[0] != (App{shopApp, "shop-secret"}) || c.Apps[1] != (App{staffApp, "staff-secret"}) {
		t.Errorf("apps = %+v", c.Apps)
	}
	// One app may use the directory too.
	if c, err := loadConfig(nil, envOf(map[string]string{"WX_APPID": staffApp, "WX_SECRET_DIR": dir}), io.Discard); err != nil || c.Apps[0].Secret != "staff-secret" {
		t.Errorf("one app from WX_SECRET_DIR: %+v, %v", c.Apps, err)
	}
	empty := kubeSecretDir(t, map[string]string{shopApp: "s", staffApp: " \n"})
	bad := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"WX_APPID": shopApp + "," + staffApp, "WX_SECRET": "s"}, "WX_SECRET: one secret for 2 AppIDs"},
		{map[string]string{"WX_APPID": shopApp + "," + staffApp, "WX_SECRET_FILE": writeFile(t, "s")}, "WX_SECRET_FILE: one secret"},
		{map[string]string{"WX_APPID": shopApp + "," + staffApp}, "WX_SECRET_DIR: required for 2 AppIDs"},
		{map[string]string{"WX_APPID": shopApp + "," + trialApp, "WX_SECRET_DIR": dir}, "WX_SECRET_DIR: AppID " + trialApp + ": "},
		{map[string]string{"WX_APPID": shopApp + "," + staffApp, "WX_SECRET_DIR": empty}, "WX_SECRET_DIR: AppID " + staffApp + ": "},
		{map[string]string{"WX_APPID": shopApp, "WX_SECRET_DIR": "/nonexistent"}, "WX_SECRET_DIR: /nonexistent is not a readable directory"},
		{map[string]string{"WX_APPID": shopApp, "WX_SECRET_DIR": dir, "WX_SECRET": "s"}, "WX_SECRET_DIR and WX_SECRET or WX_SECRET_FILE are both set"},
		{map[string]string{"WX_APPID": "wx 0123456789abcdef", "WX_SECRET": "s"}, `WX_APPID: "wx 0123456789abcdef" is not an AppID`},
		{map[string]string{"WX_APPID": "wx0123456789ABCDEF", "WX_SECRET": "s"}, "WX_APPID: "},
		{map[string]string{"WX_APPID": shopApp + ",wxshort", "WX_SECRET_DIR": dir}, `WX_APPID: "wxshort" is not an AppID`},
		{map[string]string{"WX_APPID": shopApp + "," + shopApp, "WX_SECRET_DIR": dir}, "WX_APPID: "},
		{map[string]string{"WX_MOCK": "1", "WX_APPID": "bad id!"}, "WX_APPID: "},
	}
	for _, tt := range bad {
		_, err := loadConfig(nil, envOf(tt.env), io.Discard)
		var ce *configError
		if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("loadConfig(%v) = %v, want exit 2 with %q", tt.env, err, tt.want)
		}
		if err != nil && (strings.Contains(err.Error(), "shop-secret") || strings.Contains(err.Error(), "staff-secret")) {
			t.Errorf("the error %q shows a secret", err)
		}
	}
	// Mock mode takes the list; every AppID is fake.
	if c, err := loadConfig(nil, envOf(map[string]string{"WX_MOCK": "1", "WX_APPID": "wxmock,wxshop"}), io.Discard); err != nil || len(c.Apps) != 2 || c.Apps[1].ID != "wxshop" {
		t.Errorf("mock with two apps: %+v, %v", c.Apps, err)
	}
}
