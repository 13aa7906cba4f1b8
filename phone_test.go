package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// phoneService is a test service with HS256 tokens on.
func phoneService(t testing.TB, opts ...serviceOption) *testService {
	t.Helper()
	return newTestService(t, append(opts, withTokens(testKey))...)
}

// phone POSTs a body to /phonenumber with the login token.
func (s *testService) phone(t testing.TB, tok, contentType, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/phonenumber", strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(t, req)
}

// phoneCodeIn is the code of a getuserphonenumber request, for a fake's
// intercept to answer by.
func phoneCodeIn(r *http.Request) string {
	var req struct {
		Code string `json:"code"`
	}
	b, _ := io.ReadAll(r.Body)
	json.Unmarshal(b, &req)
	return req.Code
}

// phoneAnswer is getuserphonenumber's success for a mainland number, with
// the watermark of app.
func phoneAnswer(pure, app string) string {
	return `{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"+86` + pure + `","purePhoneNumber":"` + pure +
		`","countryCode":"86","watermark":{"timestamp":1800000000,"appid":"` + app + `"}}}`
}

// stableTokenBody is the body stable_token must receive: normal mode,
// never a forced refresh.
func stableTokenBody(appID, secret string) map[string]any {
	return map[string]any{"grant_type": "client_credential", "appid": appID, "secret": secret, "force_refresh": false}
}

// stableTokenOf asks the fake WeChat itself for app's access_token, as
// another system would (this call is recorded too).
func stableTokenOf(t testing.TB, f *wechat.Fake, appID, secret string, force bool) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"grant_type": "client_credential", "appid": appID, "secret": secret, "force_refresh": force})
	rec := httptest.NewRecorder()
	f.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, wechat.StableTokenPath, strings.NewReader(string(body))))
	var r struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || r.AccessToken == "" {
		t.Fatalf("stable_token of the fake: no access_token (%v)", err)
	}
	return r.AccessToken
}

func TestPhoneNumber(t *testing.T) {
	t.Parallel()
	s := phoneService(t)
	tok := s.loginToken(t, "abc")
	openid := wechat.MockOpenID(testAppID, "abc")
	a := s.phone(t, tok, "application/json", `{"code":"phone1"}`)
	pure := wechat.MockPhone("phone1")
	want := map[string]any{"openid": openid, "phone_number": "+86" + pure, "pure_phone_number": pure,
		"country_code": "86", "expires_in": 7200.0, "token": a.str("token")}
	if a.status != 200 || a.str("token") == "" || !reflect.DeepEqual(a.body, want) {
		t.Fatalf("phonenumber = %d %s, want 200 with %v", a.status, a.raw, want)
	}
	if cc := a.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	// The new token carries the number as OpenID Connect claims.
	c, err := s.tok.Verify(a.str("token"))
	if err != nil {
		t.Fatalf("Verify(the new token) = %v", err)
	}
	if c.Subject != openid || c.UnionID != wechat.MockUnionID("abc") || !reflect.DeepEqual(c.Audience, token.Audience{testAppID}) ||
		c.Phone != "+86"+pure || !c.PhoneVerified {
		t.Errorf("new token's claims = %+v", c)
	}
	parts := strings.Split(a.str("token"), ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err != nil || json.Unmarshal(payload, &claims) != nil || claims["phone_number"] != "+86"+pure || claims["phone_number_verified"] != true {
		t.Errorf("new token's payload = %s, want phone_number and phone_number_verified", payload)
	}
	sess := do(t, bearerRequest("GET", s.URL+"/session", a.str("token")))
	if sess.status != 200 || sess.str("phone_number") != "+86"+pure || sess.header.Get("X-Phone-Number") != "+86"+pure || sess.header.Get("X-Openid") != openid {
		t.Errorf("session with the new token = %d %s %v", sess.status, sess.raw, sess.header)
	}
	// The old token still works, without a number.
	if old := do(t, bearerRequest("GET", s.URL+"/session", tok)); old.status != 200 || old.str("phone_number") != "" || old.header.Get("X-Phone-Number") != "" {
		t.Errorf("session with the login token = %d %s", old.status, old.raw)
	}
	// A second number for the same user reuses the access_token.
	if b := s.phone(t, tok, "", `{"code":"phone2"}`); b.status != 200 || b.str("pure_phone_number") != wechat.MockPhone("phone2") {
		t.Errorf("second phone request = %d %s, want 200", b.status, b.raw)
	}
	// A code works once: WeChat accepted it.
	wantError(t, s.phone(t, tok, "", `{"code":"phone1"}`), 401, "invalid_code")

	// What WeChat received: one stable_token call, then three phone calls
	// with that token and exactly the code and the openid.
	stable := s.wechat.CallsTo(wechat.StableTokenPath)
	if len(stable) != 1 {
		t.Fatalf("WeChat got %d stable_token calls, want 1 (the access_token reused)", len(stable))
	}
	checkCall(t, stable[0], http.MethodPost, url.Values{}, stableTokenBody(testAppID, testSecret))
	accessToken := stableTokenOf(t, s.wechat, testAppID, testSecret, false)
	phones := s.wechat.CallsTo(wechat.PhoneNumberPath)
	if len(phones) != 3 {
		t.Fatalf("WeChat got %d phone calls, want 3", len(phones))
	}
	for i, code := range []string{"phone1", "phone2", "phone1"} {
		checkCall(t, phones[i], http.MethodPost, url.Values{"access_token": {accessToken}}, map[string]any{"code": code, "openid": openid})
	}
}

// TestPhoneOrderOfChecks sends requests wrong in two ways at once: the
// first check in the SPEC's order answers, and nothing reaches WeChat.
func TestPhoneOrderOfChecks(t *testing.T) {
	t.Parallel()
	s := phoneService(t, withMaxInflight(1), withConfig(func(c *Config) { c.PhoneLimit = rate{1, time.Hour} }))
	good := s.loginToken(t, "abc")
	big := `{"code":"` + strings.Repeat("a", 5000) + `"}`
	a := do(t, bearerRequest("GET", s.URL+"/phonenumber", "bad"))
	wantError(t, a, 405, "method_not_allowed")
	if a.header.Get("Allow") != "POST" {
		t.Errorf("Allow = %q, want POST", a.header.Get("Allow"))
	}
	a = s.phone(t, "", "text/plain", big)
	wantError(t, a, 401, "invalid_token")
	if got := a.header.Get("WWW-Authenticate"); got != "Bearer" {
		t.Errorf("no token: WWW-Authenticate = %q, want Bearer", got)
	}
	a = s.phone(t, good+"x", "text/plain", big)
	wantError(t, a, 401, "invalid_token")
	if got := a.header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Errorf("bad token: WWW-Authenticate = %q", got)
	}
	wantError(t, s.phone(t, good, "text/plain", big), 415, "unsupported_media_type")
	wantError(t, s.phone(t, good, "application/json", big), 413, "request_too_large")
	wantError(t, s.phone(t, good, "application/json", `{"code":"bad code"}`), 400, "invalid_request")
	wantError(t, s.phone(t, good, "application/json", `{"Code":"p1"}`), 400, "invalid_request")
	wantError(t, s.phone(t, good, "application/json", `[]`), 400, "invalid_request")
	if n := len(s.wechat.Calls()) - 1; n != 0 { // the login's
		t.Errorf("wrong requests made %d calls to WeChat, want 0", n)
	}
	// PHONE_LIMIT (1 an hour) after everything else, before MAX_INFLIGHT.
	if a := s.phone(t, good, "", `{"code":"p1","Code":"bad!"}`); a.status != 200 || a.str("pure_phone_number") != wechat.MockPhone("p1") {
		t.Fatalf("first phone request = %d %s, want 200 with p1's number", a.status, a.raw)
	}
	a = s.phone(t, good, "", `{"code":"p2"}`)
	wantError(t, a, 429, "rate_limited")
	if ra := a.header.Get("Retry-After"); ra != "3600" {
		t.Errorf("Retry-After = %q, want 3600 (one an hour, just used)", ra)
	}
	wantError(t, s.phone(t, good, "", `{"code":"bad code"}`), 400, "invalid_request") // still 400, no budget spent
	// Another user has a budget of their own.
	if a := s.phone(t, s.loginToken(t, "other"), "", `{"code":"p3"}`); a.status != 200 {
		t.Errorf("another user's phone request = %d %s", a.status, a.raw)
	}
	if n := len(s.wechat.CallsTo(wechat.PhoneNumberPath)); n != 2 {
		t.Errorf("WeChat got %d phone calls, want 2", n)
	}
	// Tokens off: the endpoint does not exist.
	off := newTestService(t)
	wantError(t, off.phone(t, good, "", `{"code":"p4"}`), 404, "not_found")
	if n := len(off.wechat.Calls()); n != 0 {
		t.Errorf("with tokens off WeChat got %d calls", n)
	}
}

// TestPhoneErrors maps every errcode of SPEC §9, for both APIs, and checks
// what WeChat received each time.
func TestPhoneErrors(t *testing.T) {
	t.Parallel()
	const (
		phonePath  = wechat.PhoneNumberPath
		stablePath = wechat.StableTokenPath
	)
	type row struct {
		name       string
		path       string
		answer     http.HandlerFunc
		status     int
		code       string
		retryAfter string
		phoneCalls int
		tokenCalls int
	}
	phoneInfo := func(info string) http.HandlerFunc {
		return stringAnswerA(`{"errcode":0,"errmsg":"ok","phone_info":` + info + `}`)
	}
	rows := []row{
		{"phone 40029", phonePath, errcodeAnswerA(40029), 401, "invalid_code", "", 1, 1},
		{"phone 40029 as a string", phonePath, stringAnswerA(`{"errcode":"40029","errmsg":"errmsg-detail"}`), 401, "invalid_code", "", 1, 1},
		{"phone 45011", phonePath, errcodeAnswerA(45011), 429, "rate_limited", "60", 1, 1},
		{"phone -1 after retries", phonePath, errcodeAnswerA(-1), 503, "unavailable", "1", 3, 1},
		{"phone 40001 after a refetch", phonePath, errcodeAnswerA(40001), 502, "upstream_error", "", 2, 2},
		{"phone 42001 after a refetch", phonePath, errcodeAnswerA(42001), 502, "upstream_error", "", 2, 2},
		{"phone 40014 after a refetch", phonePath, errcodeAnswerA(40014), 502, "upstream_error", "", 2, 2},
		{"phone 40163 is not in its table", phonePath, errcodeAnswerA(40163), 502, "upstream_error", "", 1, 1},
		{"phone 40226 is not in its table", phonePath, errcodeAnswerA(40226), 502, "upstream_error", "", 1, 1},
		{"phone 45009 is not in its table", phonePath, errcodeAnswerA(45009), 502, "upstream_error", "", 1, 1},
		{"phone unknown errcode", phonePath, errcodeAnswerA(12345), 502, "upstream_error", "", 1, 1},
		{"phone_info missing", phonePath, stringAnswerA(`{"errcode":0,"errmsg":"ok"}`), 502, "upstream_error", "", 1, 1},
		{"phone_info in another case", phonePath, stringAnswerA(strings.Replace(phoneAnswer("13800138000", testAppID), "phone_info", "Phone_Info", 1)), 502, "upstream_error", "", 1, 1},
		{"purePhoneNumber missing", phonePath, phoneInfo(`{"phoneNumber":"+8613800138000","countryCode":"86","watermark":{"appid":"` + testAppID + `"}}`), 502, "upstream_error", "", 1, 1},
		{"countryCode missing", phonePath, phoneInfo(`{"purePhoneNumber":"13800138000","watermark":{"appid":"` + testAppID + `"}}`), 502, "upstream_error", "", 1, 1},
		{"number not digits", phonePath, phoneInfo(`{"purePhoneNumber":"1380013800x","countryCode":"86","watermark":{"appid":"` + testAppID + `"}}`), 502, "upstream_error", "", 1, 1},
		{"watermark of another app", phonePath, stringAnswerA(phoneAnswer("13800138000", "wxffffffffffffffff")), 502, "upstream_error", "", 1, 1},
		{"watermark missing", phonePath, phoneInfo(`{"purePhoneNumber":"13800138000","countryCode":"86"}`), 502, "upstream_error", "", 1, 1},
		{"countryCode a number", phonePath, phoneInfo(`{"purePhoneNumber":"13800138000","countryCode":86,"watermark":{"appid":"` + testAppID + `"}}`), 200, "", "", 1, 1},
		{"phone not JSON", phonePath, stringAnswerA(`not json`), 502, "upstream_error", "", 1, 1},
		{"phone HTTP 500", phonePath, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", 500) }, 502, "upstream_error", "", 1, 1},
		{"phone hang-up", phonePath, hangUpA, 502, "upstream_error", "", 1, 1},
		{"stable_token -1 after retries", stablePath, errcodeAnswerA(-1), 503, "unavailable", "1", 0, 3},
		{"stable_token 45009", stablePath, errcodeAnswerA(45009), 503, "unavailable", "60", 0, 1},
		{"stable_token 45011", stablePath, errcodeAnswerA(45011), 503, "unavailable", "60", 0, 1},
		{"stable_token 48001 is not misconfigured", stablePath, errcodeAnswerA(48001), 502, "upstream_error", "", 0, 1},
		{"stable_token unknown errcode", stablePath, errcodeAnswerA(99999), 502, "upstream_error", "", 0, 1},
		{"stable_token without access_token", stablePath, stringAnswerA(`{"expires_in":7200}`), 502, "upstream_error", "", 0, 1},
		{"stable_token without expires_in", stablePath, stringAnswerA(`{"access_token":"AT"}`), 502, "upstream_error", "", 0, 1},
		{"stable_token expires_in 0", stablePath, stringAnswerA(`{"access_token":"AT","expires_in":0}`), 502, "upstream_error", "", 0, 1},
		{"stable_token in another case", stablePath, stringAnswerA(`{"Access_Token":"AT","expires_in":7200}`), 502, "upstream_error", "", 0, 1},
		{"stable_token not JSON", stablePath, stringAnswerA(`<html>`), 502, "upstream_error", "", 0, 1},
		{"stable_token hang-up", stablePath, hangUpA, 502, "upstream_error", "", 0, 1},
	}
	for _, c := range []int{40002, 40013, 40125, 40164, 41002, 41004, 48001, 89503} {
		rows = append(rows, row{fmt.Sprintf("phone %d misconfigured", c), phonePath, errcodeAnswerA(c), 500, "misconfigured", "", 1, 1})
	}
	for _, c := range []int{40002, 40013, 40125, 40164, 41002, 41004, 89503} {
		rows = append(rows, row{fmt.Sprintf("stable_token %d misconfigured", c), stablePath, errcodeAnswerA(c), 500, "misconfigured", "", 0, 1})
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := phoneService(t)
			s.wechat.Intercept(tt.path, tt.answer)
			a := s.phone(t, s.loginToken(t, "abc"), "", `{"code":"pc"}`)
			if tt.status == 200 {
				if a.status != 200 || a.str("phone_number") != "+8613800138000" {
					t.Errorf("phonenumber = %d %s, want 200 with +8613800138000", a.status, a.raw)
				}
			} else {
				wantError(t, a, tt.status, tt.code)
			}
			if got := a.header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			if strings.Contains(a.raw, "errmsg-detail") {
				t.Errorf("answer %s echoes WeChat's errmsg", a.raw)
			}
			phones, stable := s.wechat.CallsTo(phonePath), s.wechat.CallsTo(stablePath)
			if len(phones) != tt.phoneCalls || len(stable) != tt.tokenCalls {
				t.Errorf("WeChat got %d phone and %d stable_token calls, want %d and %d", len(phones), len(stable), tt.phoneCalls, tt.tokenCalls)
			}
			for _, c := range stable {
				checkCall(t, c, http.MethodPost, url.Values{}, stableTokenBody(testAppID, testSecret))
			}
			for _, c := range phones {
				if c.Query.Get("access_token") == "" || len(c.Query) != 1 {
					t.Errorf("phone call query has %d values, access_token set %v; want access_token only", len(c.Query), c.Query.Get("access_token") != "")
				}
				checkCall(t, c, http.MethodPost, c.Query, map[string]any{"code": "pc", "openid": wechat.MockOpenID(testAppID, "abc")})
			}
		})
	}
}

func TestPhoneDeadline(t *testing.T) {
	t.Parallel()
	for _, path := range []string{wechat.PhoneNumberPath, wechat.StableTokenPath} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			s := phoneService(t, withConfig(func(c *Config) { c.Timeout = 100 * time.Millisecond }))
			tok := s.loginToken(t, "abc")
			s.wechat.Intercept(path, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
			start := time.Now()
			wantError(t, s.phone(t, tok, "", `{"code":"pc"}`), 504, "upstream_timeout")
			if d := time.Since(start); d > time.Second {
				t.Errorf("a phone request with WX_TIMEOUT 100ms took %v", d)
			}
			if n := len(s.wechat.CallsTo(path)); n != 1 {
				t.Errorf("WeChat got %d calls to %s, want 1", n, path)
			}
		})
	}
}

// TestForcedRefreshElsewhere: another system forces a refresh of the
// access_token, so ours answers 40001. wxlogin drops it, fetches once more
// in normal mode, retries once with the same code, and succeeds: the code
// was not used up by the refused call.
func TestForcedRefreshElsewhere(t *testing.T) {
	t.Parallel()
	s := phoneService(t)
	tok := s.loginToken(t, "abc")
	if a := s.phone(t, tok, "", `{"code":"p1"}`); a.status != 200 {
		t.Fatalf("first = %d %s", a.status, a.raw)
	}
	first := s.wechat.CallsTo(wechat.PhoneNumberPath)[0].Query.Get("access_token")
	// The other system.
	second := stableTokenOf(t, s.wechat, testAppID, testSecret, true)
	if second == first {
		t.Fatalf("a forced refresh gave the same access_token")
	}

	if a := s.phone(t, tok, "", `{"code":"p2"}`); a.status != 200 || a.str("pure_phone_number") != wechat.MockPhone("p2") {
		t.Fatalf("after a forced refresh elsewhere = %d %s", a.status, a.raw)
	}
	// stable_token: ours, the other system's, ours again. Phone: p1, then
	// p2 refused with 40001 and p2 again with the new token.
	stable, phones := s.wechat.CallsTo(wechat.StableTokenPath), s.wechat.CallsTo(wechat.PhoneNumberPath)
	if len(stable) != 3 || len(phones) != 3 {
		t.Fatalf("stable_token calls %d, phone calls %d; want 3 and 3", len(stable), len(phones))
	}
	for _, i := range []int{0, 2} {
		checkCall(t, stable[i], http.MethodPost, url.Values{}, stableTokenBody(testAppID, testSecret))
	}
	openid := wechat.MockOpenID(testAppID, "abc")
	for i, want := range []struct{ code, accessToken string }{{"p1", first}, {"p2", first}, {"p2", second}} {
		checkCall(t, phones[i], http.MethodPost, url.Values{"access_token": {want.accessToken}}, map[string]any{"code": want.code, "openid": openid})
	}
}

// TestPhoneExpiredToken: WeChat expires the access_token before we expect
// it (42001): fetched again, the same code retried, and accepted.
func TestPhoneExpiredToken(t *testing.T) {
	t.Parallel()
	s := phoneService(t)
	tok := s.loginToken(t, "abc")
	if a := s.phone(t, tok, "", `{"code":"p1"}`); a.status != 200 {
		t.Fatalf("first = %d %s", a.status, a.raw)
	}
	s.wechat.ExpireTokens()
	if a := s.phone(t, tok, "", `{"code":"p2"}`); a.status != 200 || a.str("pure_phone_number") != wechat.MockPhone("p2") {
		t.Fatalf("after WeChat expired the token = %d %s", a.status, a.raw)
	}
	stable, phones := s.wechat.CallsTo(wechat.StableTokenPath), s.wechat.CallsTo(wechat.PhoneNumberPath)
	if len(stable) != 2 || len(phones) != 3 {
		t.Fatalf("stable_token calls %d, phone calls %d; want 2 and 3", len(stable), len(phones))
	}
	if phones[1].Query.Get("access_token") == phones[2].Query.Get("access_token") {
		t.Errorf("the retry used the expired access_token again")
	}
	if c1, c2 := phones[1].JSON()["code"], phones[2].JSON()["code"]; c1 != "p2" || c2 != "p2" {
		t.Errorf("phone calls had codes %v and %v, want p2 both times", c1, c2)
	}
}

// TestPhoneMockCodes: each mock phone code gives its answer every time,
// since WeChat never accepted it; a real code is used up once accepted.
func TestPhoneMockCodes(t *testing.T) {
	t.Parallel()
	s := phoneService(t)
	tok := s.loginToken(t, "abc")
	tests := []struct {
		code       string
		status     int
		error      string
		retryAfter string
		calls      int // phone calls per request
	}{
		{wechat.MockInvalid, 401, "invalid_code", "", 1},
		{wechat.MockRateLimit, 429, "rate_limited", "60", 1},
		{wechat.MockBusy, 503, "unavailable", "1", 3},
	}
	for _, tt := range tests {
		before := len(s.wechat.CallsTo(wechat.PhoneNumberPath))
		for i := range 2 {
			a := s.phone(t, tok, "", `{"code":"`+tt.code+`"}`)
			wantError(t, a, tt.status, tt.error)
			if got := a.header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("phone(%q) #%d: Retry-After = %q, want %q", tt.code, i+1, got, tt.retryAfter)
			}
		}
		if n := len(s.wechat.CallsTo(wechat.PhoneNumberPath)) - before; n != 2*tt.calls {
			t.Errorf("WeChat got %d phone calls for 2 requests with %q, want %d", n, tt.code, 2*tt.calls)
		}
	}
	if a := s.phone(t, tok, "", `{"code":"real"}`); a.status != 200 || a.str("pure_phone_number") != wechat.MockPhone("real") {
		t.Errorf("phone(%q) = %d %s, want 200", "real", a.status, a.raw)
	}
	wantError(t, s.phone(t, tok, "", `{"code":"real"}`), 401, "invalid_code")
	if n := len(s.wechat.CallsTo(wechat.StableTokenPath)); n != 1 {
		t.Errorf("WeChat got %d stable_token calls, want 1", n)
	}
}

// TestPhoneNeverLeaks drives phone requests through every kind of fault
// and checks that neither the access_token nor a phone number nor a code
// reaches the log (at debug) or the metrics.
func TestPhoneNeverLeaks(t *testing.T) {
	t.Parallel()
	const accessToken = "AccessTokenSecretValue0123456789"
	const pure = "13912345678"
	s := phoneService(t)
	s.wechat.Intercept(wechat.StableTokenPath, stringAnswerA(`{"access_token":"`+accessToken+`","expires_in":7200}`))
	s.wechat.Intercept(wechat.PhoneNumberPath, func(w http.ResponseWriter, r *http.Request) {
		code := phoneCodeIn(r)
		switch {
		case strings.HasPrefix(code, "ok"):
			wechatJSON(w, phoneAnswer(pure, testAppID))
		case strings.HasPrefix(code, "echo"):
			wechatJSON(w, `{"errcode":40029,"errmsg":"`+r.URL.RawQuery+` `+code+` `+testSecret+`"}`)
		case strings.HasPrefix(code, "hangup"):
			hangUpA(w, r)
		case strings.HasPrefix(code, "status"):
			http.Error(w, r.URL.RawQuery, 500)
		default:
			wechatJSON(w, `{"errcode":40001,"errmsg":"invalid credential access_token `+accessToken+`"}`)
		}
	})
	tok := s.loginToken(t, "abc")
	results := map[string]int{}
	for _, code := range []string{"okSecretPhoneCode1", "echoSecretPhoneCode2", "hangupSecretPhoneCode3", "statusSecretPhoneCode4", "staleSecretPhoneCode5"} {
		a := s.phone(t, tok, "", `{"code":"`+code+`"}`)
		results[a.str("error")]++
		if strings.Contains(a.raw, accessToken) || strings.Contains(a.raw, "SecretPhoneCode") {
			t.Errorf("answer %s holds the access_token or the code", a.raw)
		}
	}
	if want := map[string]int{"": 1, "invalid_code": 1, "upstream_error": 3}; !reflect.DeepEqual(results, want) {
		t.Errorf("answers by error = %v, want %v", results, want)
	}
	logs := s.logs.String()
	for _, secret := range []string{accessToken, pure, "SecretPhoneCode", testSecret} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, `"errcode":40029`) || !strings.Contains(logs, `"path":"/phonenumber"`) {
		t.Errorf("the log lacks the phone requests:\n%s", logs)
	}
	// The metrics: results by app, and stable_token fetches.
	e := parseExposition(t, string(s.metrics.appendText(nil, 0)))
	for k, want := range map[string]float64{
		`wxlogin_phone_requests_total{appid="` + testAppID + `",result="ok"}`:             1,
		`wxlogin_phone_requests_total{appid="` + testAppID + `",result="invalid_code"}`:   1,
		`wxlogin_phone_requests_total{appid="` + testAppID + `",result="upstream_error"}`: 3,
		`wxlogin_stable_token_total{result="ok"}`:                                         2, // the stale token was fetched again
	} {
		if got := e.samples[k]; got != want {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	m := string(s.metrics.appendText(nil, 0))
	for _, secret := range []string{accessToken, pure, "SecretPhoneCode", testSecret} {
		if strings.Contains(m, secret) {
			t.Errorf("the metrics hold %q", secret)
		}
	}
}
