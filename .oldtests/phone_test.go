package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// phoneFake is WeChat for the phone tests: the built-in mock, with every
// call counted, every stable_token body kept, and any API answerable by
// hand instead.
type phoneFake struct {
	mock     *mockWX
	mu       sync.Mutex
	calls    map[string]int // by path
	bodies   []string       // stable_token request bodies
	override map[string]func(w http.ResponseWriter, r *http.Request, body []byte)
}

func newPhoneFake() *phoneFake {
	return &phoneFake{mock: newMockWeChat(testApps), calls: map[string]int{}, override: map[string]func(http.ResponseWriter, *http.Request, []byte){}}
}

func (f *phoneFake) answer(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls[r.URL.Path]++
	if r.URL.Path == stableTokenPath {
		f.bodies = append(f.bodies, string(body))
	}
	o := f.override[r.URL.Path]
	f.mu.Unlock()
	if o != nil {
		o(w, r, body)
		return
	}
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	f.mock.ServeHTTP(w, r)
}

func (f *phoneFake) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func (f *phoneFake) set(path string, h func(w http.ResponseWriter, r *http.Request, body []byte)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.override[path] = h
}

// phoneService is a test service with HS256 tokens, talking to f.
func phoneService(t *testing.T, f *phoneFake, opts ...serviceOption) *testService {
	t.Helper()
	return newTestService(t, f.answer, append(opts, withTokens(time.Now, testKey))...)
}

// loginToken logs in and returns the token.
func (s *testService) loginToken(t *testing.T, code string) string {
	t.Helper()
	a := s.login(t, code)
	if a.status != 200 || a.str("token") == "" {
		t.Fatalf("login = %d %s", a.status, a.raw)
	}
	return a.str("token")
}

// phone POSTs a phone code with the token.
func (s *testService) phone(t *testing.T, token, contentType, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/phonenumber", strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(t, req)
}

func TestPhoneNumber(t *testing.T) {
	t.Parallel()
	f := newPhoneFake()
	s := phoneService(t, f)
	token := s.loginToken(t, "abc")
	a := s.phone(t, token, "application/json", `{"code":"phone1"}`)
	pure := mockPhone("phone1")
	if a.status != 200 || a.str("phone_number") != "+86"+pure || a.str("pure_phone_number") != pure ||
		a.str("country_code") != "86" || a.str("openid") != mockID("openid", testAppID, "abc") || a.body["expires_in"] != 7200.0 {
		t.Fatalf("phonenumber = %d %s", a.status, a.raw)
	}
	// The new token carries the number as OpenID Connect claims.
	payload, _ := b64.DecodeString(strings.Split(a.str("token"), ".")[1])
	var c map[string]any
	json.Unmarshal(payload, &c)
	if c["phone_number"] != "+86"+pure || c["phone_number_verified"] != true || c["sub"] != a.str("openid") || c["aud"] != testAppID {
		t.Errorf("new token's claims = %s", payload)
	}
	sess := do(t, bearerRequest("GET", s.URL+"/session", a.str("token")))
	if sess.str("phone_number") != "+86"+pure || sess.header.Get("X-Phone-Number") != "+86"+pure || sess.header.Get("X-Openid") != a.str("openid") {
		t.Errorf("session with the new token = %s %v", sess.raw, sess.header)
	}
	// The old token still works, without a number.
	if old := do(t, bearerRequest("GET", s.URL+"/session", token)); old.status != 200 || old.str("phone_number") != "" || old.header.Get("X-Phone-Number") != "" {
		t.Errorf("session with the login token = %d %s", old.status, old.raw)
	}
	if f.count(stableTokenPath) != 1 || f.count(phoneNumberPath) != 1 {
		t.Errorf("WeChat saw %d stable_token and %d phone calls, want 1 and 1", f.count(stableTokenPath), f.count(phoneNumberPath))
	}
	// A second number for the same user reuses the access_token.
	if b := s.phone(t, token, "", `{"code":"phone2"}`); b.status != 200 || f.count(stableTokenPath) != 1 {
		t.Errorf("second phone request = %d, stable_token calls %d; want 200 and still 1", b.status, f.count(stableTokenPath))
	}
	// Codes work once.
	wantError(t, s.phone(t, token, "", `{"code":"phone1"}`), 401, "invalid_code")
	for _, body := range f.bodies {
		if !strings.Contains(body, `"force_refresh":false`) || !strings.Contains(body, `"grant_type":"client_credential"`) {
			t.Errorf("stable_token body %s, want grant_type client_credential and force_refresh false", body)
		}
	}
}

// TestPhoneOrderOfChecks sends requests wrong in two ways at once: the
// first check in the SPEC's order answers, and nothing reaches WeChat.
func TestPhoneOrderOfChecks(t *testing.T) {
	t.Parallel()
	f := newPhoneFake()
	s := phoneService(t, f, withMaxInflight(1), withConfig(func(c *Config) { c.PhoneLimit = rate{1, time.Hour} }))
	good := s.loginToken(t, "abc")
	big := `{"code":"` + strings.Repeat("a", 5000) + `"}`
	get := func(token string) answer {
		return do(t, bearerRequest("GET", s.URL+"/phonenumber", token))
	}
	a := get("bad")
	wantError(t, a, 405, "method_not_allowed")
	if a.header.Get("Allow") != "POST" {
		t.Errorf("Allow = %q", a.header.Get("Allow"))
	}
	wantError(t, s.phone(t, "", "text/plain", big), 401, "invalid_token")
	wantError(t, s.phone(t, good+"x", "text/plain", big), 401, "invalid_token")
	wantError(t, s.phone(t, good, "text/plain", big), 415, "unsupported_media_type")
	wantError(t, s.phone(t, good, "application/json", big), 413, "request_too_large")
	wantError(t, s.phone(t, good, "application/json", `{"code":"bad code"}`), 400, "invalid_request")
	wantError(t, s.phone(t, good, "application/json", `[]`), 400, "invalid_request")
	if n := f.count(phoneNumberPath) + f.count(stableTokenPath); n != 0 {
		t.Errorf("wrong requests made %d calls to WeChat, want 0", n)
	}
	// PHONE_LIMIT (1 an hour) before MAX_INFLIGHT, after everything else.
	if a := s.phone(t, good, "", `{"code":"p1"}`); a.status != 200 {
		t.Fatalf("first phone request = %d %s", a.status, a.raw)
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
	if f.count(phoneNumberPath) != 2 {
		t.Errorf("WeChat saw %d phone calls, want 2", f.count(phoneNumberPath))
	}
	// Tokens off: the endpoint does not exist.
	off := newTestService(t, f.answer)
	wantError(t, off.phone(t, good, "", `{"code":"p4"}`), 404, "not_found")
}

func wxAnswer(body string) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) { wechatJSON(w, body) }
}

// TestPhoneErrors maps every errcode of SPEC §9, for both APIs.
func TestPhoneErrors(t *testing.T) {
	t.Parallel()
	type row struct {
		path, body string
		status     int
		code       string
		retryAfter string
		calls      int // calls to path
	}
	errc := func(n int) string { return fmt.Sprintf(`{"errcode":%d,"errmsg":"x"}`, n) }
	rows := []row{
		{phoneNumberPath, errc(40029), 401, "invalid_code", "", 1},
		{phoneNumberPath, errc(45011), 429, "rate_limited", "60", 1},
		{phoneNumberPath, errc(-1), 503, "unavailable", "1", 3},
		{phoneNumberPath, errc(40001), 502, "upstream_error", "", 2}, // refetched once, retried once
		{phoneNumberPath, errc(42001), 502, "upstream_error", "", 2},
		{phoneNumberPath, errc(40014), 502, "upstream_error", "", 2},
		{phoneNumberPath, errc(12345), 502, "upstream_error", "", 1},
		{phoneNumberPath, `{"errcode":0,"errmsg":"ok"}`, 502, "upstream_error", "", 1},
		{phoneNumberPath, `{"errcode":0,"phone_info":{"phoneNumber":"+8613800138000","countryCode":"86","watermark":{"appid":"` + testAppID + `"}}}`, 502, "upstream_error", "", 1},
		{phoneNumberPath, `{"errcode":0,"phone_info":{"purePhoneNumber":"13800138000","countryCode":"86","watermark":{"appid":"wxffffffffffffffff"}}}`, 502, "upstream_error", "", 1},
		{phoneNumberPath, `not json`, 502, "upstream_error", "", 1},
		{stableTokenPath, errc(-1), 503, "unavailable", "1", 3},
		{stableTokenPath, errc(45009), 503, "unavailable", "60", 1},
		{stableTokenPath, errc(45011), 503, "unavailable", "60", 1},
		{stableTokenPath, errc(40164), 500, "misconfigured", "", 1},
		{stableTokenPath, errc(99999), 502, "upstream_error", "", 1},
		{stableTokenPath, `{"expires_in":7200}`, 502, "upstream_error", "", 1},
	}
	for _, c := range []int{40002, 40013, 40125, 40164, 41002, 41004, 48001, 89503} {
		rows = append(rows, row{phoneNumberPath, errc(c), 500, "misconfigured", "", 1})
	}
	for _, c := range []int{40002, 40013, 40125, 41002, 41004, 89503} {
		rows = append(rows, row{stableTokenPath, errc(c), 500, "misconfigured", "", 1})
	}
	for _, tt := range rows {
		f := newPhoneFake()
		f.set(tt.path, wxAnswer(tt.body))
		s := phoneService(t, f)
		a := s.phone(t, s.loginToken(t, "abc"), "", `{"code":"pc"}`)
		name := tt.path + " " + tt.body
		wantError(t, a, tt.status, tt.code)
		if got := a.header.Get("Retry-After"); got != tt.retryAfter {
			t.Errorf("%s: Retry-After = %q, want %q", name, got, tt.retryAfter)
		}
		if got := f.count(tt.path); got != tt.calls {
			t.Errorf("%s: %d calls, want %d", name, got, tt.calls)
		}
	}
}

func TestPhoneDeadline(t *testing.T) {
	t.Parallel()
	f := newPhoneFake()
	f.set(phoneNumberPath, func(w http.ResponseWriter, r *http.Request, _ []byte) { <-r.Context().Done() })
	s := phoneService(t, f, withConfig(func(c *Config) { c.Timeout = 200 * time.Millisecond }))
	wantError(t, s.phone(t, s.loginToken(t, "abc"), "", `{"code":"pc"}`), 504, "upstream_timeout")
}

// TestForcedRefreshElsewhere: another system forces a refresh of the
// access_token, so ours answers 40001. wxlogin drops it, fetches once more
// in normal mode, retries once, and succeeds.
func TestForcedRefreshElsewhere(t *testing.T) {
	t.Parallel()
	f := newPhoneFake()
	s := phoneService(t, f)
	token := s.loginToken(t, "abc")
	if a := s.phone(t, token, "", `{"code":"p1"}`); a.status != 200 {
		t.Fatalf("first = %d %s", a.status, a.raw)
	}
	// The other system.
	body := `{"grant_type":"client_credential","appid":"` + testAppID + `","secret":"` + testSecret + `","force_refresh":true}`
	resp, err := http.Post(s.wechat.URL+stableTokenPath, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	if a := s.phone(t, token, "", `{"code":"p2"}`); a.status != 200 || a.str("pure_phone_number") != mockPhone("p2") {
		t.Fatalf("after a forced refresh elsewhere = %d %s", a.status, a.raw)
	}
	// stable_token: ours, the other system's, ours again. Phone: 1, then 40001 and the retry.
	if st, ph := f.count(stableTokenPath), f.count(phoneNumberPath); st != 3 || ph != 3 {
		t.Errorf("stable_token calls %d, phone calls %d; want 3 and 3", st, ph)
	}
	for i, b := range f.bodies {
		if i != 1 && strings.Contains(b, `"force_refresh":true`) {
			t.Errorf("wxlogin forced a refresh: %s", b)
		}
	}
}

// TestAccessTokenSingleFlight: 256 concurrent cold requests, a slow
// stable_token: exactly one call; a waiter with a short deadline gives up
// alone.
func TestAccessTokenSingleFlight(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	release := make(chan struct{})
	f := newFakeWeChat(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-release
		wechatJSON(w, `{"access_token":"AT1","expires_in":7200}`)
	})
	wx := newWXClient(f.URL, testApps, 5*time.Second, 4)
	at := newAccessTokens(wx, time.Now)

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := at.get(short, testAppID); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a waiter with a short deadline: %v, want DeadlineExceeded", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 256)
	for range 256 {
		wg.Go(func() {
			tok, err := at.get(context.Background(), testAppID)
			if err == nil && tok != "AT1" {
				err = fmt.Errorf("token %q", tok)
			}
			errs <- err
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("get = %v", err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("stable_token calls = %d, want 1", n)
	}
}

// TestAccessTokenRefresh: a token of 2 seconds is used until 1 s before it
// expires (min(60 s, expires_in/2)), then fetched again.
func TestAccessTokenRefresh(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	n := 0
	at := &accessTokens{timeout: time.Second, now: clock, apps: map[string]*tokenFetch{},
		fetch: func(ctx context.Context, appID string) (string, time.Duration, error) {
			n++
			return fmt.Sprintf("AT%d", n), 2 * time.Second, nil
		}}
	get := func() string {
		tok, err := at.get(context.Background(), testAppID)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if got := get(); got != "AT1" {
		t.Fatalf("first = %s", got)
	}
	advance(900 * time.Millisecond)
	if got := get(); got != "AT1" {
		t.Errorf("at 0.9 s = %s, want AT1 (still fresh)", got)
	}
	advance(100 * time.Millisecond)
	if got := get(); got != "AT2" {
		t.Errorf("at 1.0 s = %s, want AT2 (1 s before expiry)", got)
	}
	// A long-lived token is refreshed 60 s before it expires.
	at.fetch = func(context.Context, string) (string, time.Duration, error) {
		n++
		return fmt.Sprintf("AT%d", n), 7200 * time.Second, nil
	}
	at.drop(testAppID, "AT2")
	if got := get(); got != "AT3" {
		t.Fatalf("after drop = %s", got)
	}
	advance(7139 * time.Second)
	if got := get(); got != "AT3" {
		t.Errorf("at 7139 s = %s, want AT3", got)
	}
	advance(time.Second)
	if got := get(); got != "AT4" {
		t.Errorf("at 7140 s = %s, want AT4", got)
	}
	// drop of a token that is no longer current changes nothing.
	at.drop(testAppID, "AT3")
	if got := get(); got != "AT4" {
		t.Errorf("after dropping a stale token = %s, want AT4", got)
	}
}

// TestPhoneNeverLeaks drives phone requests through every kind of fault
// and checks that neither the access_token nor a phone number nor a code
// reaches the log, and that errors carry neither.
func TestPhoneNeverLeaks(t *testing.T) {
	t.Parallel()
	const accessToken = "AccessTokenSecretValue0123456789"
	const pure = "13912345678"
	f := newPhoneFake()
	f.set(stableTokenPath, wxAnswer(`{"access_token":"`+accessToken+`","expires_in":7200}`))
	f.set(phoneNumberPath, func(w http.ResponseWriter, r *http.Request, body []byte) {
		var req struct{ Code string }
		json.Unmarshal(body, &req)
		switch {
		case strings.HasPrefix(req.Code, "ok"):
			wechatJSON(w, `{"errcode":0,"phone_info":{"phoneNumber":"+86`+pure+`","purePhoneNumber":"`+pure+`","countryCode":"86","watermark":{"appid":"`+testAppID+`"}}}`)
		case strings.HasPrefix(req.Code, "echo"):
			wechatJSON(w, `{"errcode":40029,"errmsg":"`+r.URL.RawQuery+` `+req.Code+`"}`)
		case strings.HasPrefix(req.Code, "hangup"):
			hangUp(w, r)
		case strings.HasPrefix(req.Code, "status"):
			http.Error(w, r.URL.RawQuery, 500)
		default:
			wechatJSON(w, `{"errcode":40001,"errmsg":"invalid credential access_token `+accessToken+`"}`)
		}
	})
	s := phoneService(t, f)
	token := s.loginToken(t, "abc")
	for _, code := range []string{"okSecretPhoneCode1", "echoSecretPhoneCode2", "hangupSecretPhoneCode3", "statusSecretPhoneCode4", "staleSecretPhoneCode5"} {
		s.phone(t, token, "", `{"code":"`+code+`"}`)
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
	m := string(s.metrics.appendText(nil))
	for _, want := range []string{
		`wxlogin_phone_requests_total{appid="` + testAppID + `",result="ok"} 1`,
		`wxlogin_phone_requests_total{appid="` + testAppID + `",result="invalid_code"} 1`,
		`wxlogin_stable_token_total{result="ok"} 2`, // the stale token was fetched again
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, m)
		}
	}
	if strings.Contains(m, pure) || strings.Contains(m, accessToken) {
		t.Errorf("metrics hold a number or the access_token")
	}
}
