package wechat

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFakeMockCodes: each mock code gives its documented answer every time,
// for each API; -1 is retried by the client, the others are not.
func TestFakeMockCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		api     string
		code    string
		errcode int
	}{
		{APICode2Session, MockInvalid, CodeInvalidCode},
		{APICode2Session, MockUsed, CodeCodeUsed},
		{APICode2Session, MockRisky, CodeHighRisk},
		{APICode2Session, MockRateLimit, CodeRateLimited},
		{APICode2Session, MockBusy, CodeBusy},
		{APIPhoneNumber, MockInvalid, CodeInvalidCode},
		{APIPhoneNumber, MockRateLimit, CodeRateLimited},
		{APIPhoneNumber, MockBusy, CodeBusy},
	}
	const times = 3
	for _, tt := range tests {
		t.Run(tt.api+"/"+tt.code, func(t *testing.T) {
			t.Parallel()
			f, base := startFake(t, FakeOptions{})
			c := newTestClient(t, base, Options{})
			for i := range times {
				var err error
				if tt.api == APICode2Session {
					_, err = c.Code2Session(context.Background(), testAppID, tt.code)
				} else {
					_, err = c.PhoneNumber(context.Background(), testAppID, testOpenID, tt.code)
				}
				we := wantErrcode(t, fmt.Sprintf("%s(%q) #%d", tt.api, tt.code, i+1), err, tt.api, tt.errcode)
				if we != nil && !strings.HasPrefix(we.Msg, errmsgs[tt.errcode]) {
					t.Errorf("%s(%q): errmsg %q, want WeChat's %q", tt.api, tt.code, we.Msg, errmsgs[tt.errcode])
				}
			}
			perCall := 1
			if tt.errcode == CodeBusy {
				perCall = maxAttempts
			}
			got := codeCalls(f, tt.code)
			if tt.api == APIPhoneNumber {
				got = phoneCalls(f, tt.code)
			}
			if got != times*perCall {
				t.Errorf("WeChat saw %q %d times, want %d", tt.code, got, times*perCall)
			}
		})
	}
	// Codes of one API mean nothing special to the other.
	t.Run("login-only codes on the phone API", func(t *testing.T) {
		t.Parallel()
		_, base := startFake(t, FakeOptions{})
		c := newTestClient(t, base, Options{})
		for _, code := range []string{MockUsed, MockRisky} {
			p, err := c.PhoneNumber(context.Background(), testAppID, testOpenID, code)
			if err != nil || p.PurePhoneNumber != MockPhone(code) {
				t.Errorf("PhoneNumber(%q) = %+v, %v, want the fake's number", code, p, err)
			}
		}
	})
}

// TestFakePhoneCodeUse: a phone code is used up only when WeChat accepted
// it; an error answer leaves it usable.
func TestFakePhoneCodeUse(t *testing.T) {
	t.Parallel()
	f, base := startFake(t, FakeOptions{})
	c := newTestClient(t, base, Options{})
	ctx := context.Background()
	phoneURL := func(token string) string { return base + PhoneNumberPath + "?access_token=" + url.QueryEscape(token) }

	// Refused for a bad access_token: p1 is still new.
	if got := postJSON(t, phoneURL("not-a-token"), `{"code":"p1","openid":"o"}`); got["errcode"] != float64(CodeInvalidCredential) {
		t.Errorf("getuserphonenumber with a bad token answered %v, want errcode %d", got, CodeInvalidCredential)
	}
	if p, err := c.PhoneNumber(ctx, testAppID, testOpenID, "p1"); err != nil || p.PurePhoneNumber != MockPhone("p1") {
		t.Errorf("PhoneNumber(%q) after a refused call = %+v, %v, want the number", "p1", p, err)
	}
	for i := range 2 {
		_, err := c.PhoneNumber(ctx, testAppID, testOpenID, "p1")
		wantErrcode(t, fmt.Sprintf("PhoneNumber(%q) used, #%d", "p1", i+1), err, APIPhoneNumber, CodeInvalidCode)
	}
	// Refused for an expired token: p2 is still new.
	tok := currentToken(f, testAppID)
	f.ExpireTokens()
	if got := postJSON(t, phoneURL(tok), `{"code":"p2","openid":"o"}`); got["errcode"] != float64(CodeAccessTokenExpired) {
		t.Errorf("getuserphonenumber with an expired token answered %v, want errcode %d", got, CodeAccessTokenExpired)
	}
	if p, err := c.PhoneNumber(ctx, testAppID, testOpenID, "p2"); err != nil || p.PurePhoneNumber != MockPhone("p2") {
		t.Errorf("PhoneNumber(%q) after refused calls = %+v, %v, want the number", "p2", p, err)
	}
	_, err := c.PhoneNumber(ctx, testAppID, testOpenID, "p2")
	wantErrcode(t, "PhoneNumber(p2) used", err, APIPhoneNumber, CodeInvalidCode)
	// An empty code is invalid.
	_, err = c.PhoneNumber(ctx, testAppID, testOpenID, "")
	wantErrcode(t, `PhoneNumber("")`, err, APIPhoneNumber, CodeInvalidCode)
	// A request the fake cannot read.
	if got := postJSON(t, phoneURL(currentToken(f, testAppID)), `{"code":`); got["errcode"] != float64(CodeDataFormat) {
		t.Errorf("getuserphonenumber with a broken body answered %v, want errcode %d", got, CodeDataFormat)
	}
}

// TestFakeChecksApps: an unknown AppID, a wrong or missing secret, a
// missing AppID each give WeChat's errcode, every time, on both APIs that
// take them.
func TestFakeChecksApps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		app     App // the client's
		appID   string
		errcode int
	}{
		{"unknown appid", App{"wxffffffffffffffff", testSecret}, "wxffffffffffffffff", CodeInvalidAppID},
		{"wrong secret", App{testAppID, "wrong"}, testAppID, CodeInvalidSecret},
		{"missing secret", App{testAppID, ""}, testAppID, CodeSecretMissing},
		{"missing appid", App{"", testSecret}, "", CodeAppIDMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, base := startFake(t, FakeOptions{})
			c := newTestClient(t, base, Options{Apps: []App{tt.app}})
			for i := range 2 {
				_, err := c.Code2Session(context.Background(), tt.appID, "abc")
				if we := wantErrcode(t, fmt.Sprintf("Code2Session #%d", i+1), err, APICode2Session, tt.errcode); we != nil && !we.Misconfigured() {
					t.Errorf("Code2Session = %v, want Misconfigured", err)
				}
				_, err = c.PhoneNumber(context.Background(), tt.appID, testOpenID, "pc")
				if we := wantErrcode(t, fmt.Sprintf("PhoneNumber #%d", i+1), err, APIStableToken, tt.errcode); we != nil && !we.Misconfigured() {
					t.Errorf("PhoneNumber = %v, want Misconfigured", err)
				}
			}
			if n := len(f.CallsTo(PhoneNumberPath)); n != 0 {
				t.Errorf("getuserphonenumber calls = %d, want 0 without a token", n)
			}
		})
	}
	t.Run("raw requests", func(t *testing.T) {
		t.Parallel()
		_, base := startFake(t, FakeOptions{})
		q := url.Values{"appid": {testAppID}, "secret": {testSecret}, "js_code": {"abc"}, "grant_type": {"client_credential"}}
		if got := getURL(t, base+Code2SessionPath+"?"+q.Encode()); got["errcode"] != float64(CodeInvalidGrantType) {
			t.Errorf("code2Session with grant_type client_credential answered %v, want errcode %d", got, CodeInvalidGrantType)
		}
		q.Set("grant_type", "authorization_code")
		q.Del("js_code")
		if got := getURL(t, base+Code2SessionPath+"?"+q.Encode()); got["errcode"] != float64(CodeInvalidCode) {
			t.Errorf("code2Session without js_code answered %v, want errcode %d", got, CodeInvalidCode)
		}
		body := `{"grant_type":"authorization_code","appid":"` + testAppID + `","secret":"` + testSecret + `"}`
		if got := postJSON(t, base+StableTokenPath, body); got["errcode"] != float64(CodeInvalidGrantType) {
			t.Errorf("stable_token with grant_type authorization_code answered %v, want errcode %d", got, CodeInvalidGrantType)
		}
		if got := postJSON(t, base+StableTokenPath, `not json`); got["errcode"] != float64(CodeDataFormat) {
			t.Errorf("stable_token with a broken body answered %v, want errcode %d", got, CodeDataFormat)
		}
		if got := getURL(t, base+StableTokenPath); got["status"] != float64(404) {
			t.Errorf("GET stable_token answered %v, want 404", got)
		}
		if got := getURL(t, base+"/cgi-bin/token"); got["status"] != float64(404) {
			t.Errorf("GET an unknown path answered %v, want 404", got)
		}
	})
}

// TestFakeAnyApp: a fake without apps takes any well-formed AppID with
// MockSecret, and nothing else.
func TestFakeAnyApp(t *testing.T) {
	t.Parallel()
	_, base := startFake(t, FakeOptions{Apps: []App{}})
	c := newTestClient(t, base, Options{Apps: []App{}, AnyAppSecret: MockSecret})
	wrong := newTestClient(t, base, Options{Apps: []App{}, AnyAppSecret: "not-the-mock-secret"})
	ctx := context.Background()
	for _, appID := range []string{"wxany", "wx0123456789abcdef", "A-b_9", strings.Repeat("a", 32)} {
		if s, err := c.Code2Session(ctx, appID, "abc"); err != nil || s.OpenID != MockOpenID(appID, "abc") {
			t.Errorf("Code2Session(%q) = %+v, %v, want the mock openid", appID, s, err)
		}
		if p, err := c.PhoneNumber(ctx, appID, testOpenID, "p-"+appID); err != nil || p.PurePhoneNumber != MockPhone("p-"+appID) {
			t.Errorf("PhoneNumber for %q = %+v, %v, want the mock number", appID, p, err)
		}
		_, err := wrong.Code2Session(ctx, appID, "abc")
		wantErrcode(t, fmt.Sprintf("Code2Session(%q) with another secret", appID), err, APICode2Session, CodeInvalidSecret)
	}
	for _, appID := range []string{strings.Repeat("a", 33), "wx.bad", "wx bad", "wx码"} {
		_, err := c.Code2Session(ctx, appID, "abc")
		wantErrcode(t, fmt.Sprintf("Code2Session(%q)", appID), err, APICode2Session, CodeInvalidAppID)
		_, err = c.PhoneNumber(ctx, appID, testOpenID, "pc")
		wantErrcode(t, fmt.Sprintf("PhoneNumber for %q", appID), err, APIStableToken, CodeInvalidAppID)
	}
}

// TestMockIDs: an openid is "o" and 27 URL-safe characters, the same for a
// code every time, distinct per app; the unionid is the same for a code
// across apps and is not the openid.
func TestMockIDs(t *testing.T) {
	t.Parallel()
	const app2 = "wxfedcba9876543210"
	f, base := startFake(t, FakeOptions{Apps: []App{testApps[0], {app2, "second-secret"}}})
	c := newTestClient(t, base, Options{Apps: []App{testApps[0], {app2, "second-secret"}}})
	shape := regexp.MustCompile(`^o[A-Za-z0-9_-]{27}$`)
	ctx := context.Background()
	seen := map[string]string{}
	for _, code := range []string{"abc", "abd", "mock-x"} {
		var union string
		for _, app := range []string{testAppID, app2} {
			for i := range 2 {
				s, err := c.Code2Session(ctx, app, code)
				if err != nil {
					t.Fatalf("Code2Session(%q, %q) = %v", app, code, err)
				}
				if s.OpenID != MockOpenID(app, code) || s.UnionID != MockUnionID(code) {
					t.Errorf("Code2Session(%q, %q) #%d = %+v, want openid %s and unionid %s",
						app, code, i+1, s, MockOpenID(app, code), MockUnionID(code))
				}
				for _, id := range []string{s.OpenID, s.UnionID} {
					if !shape.MatchString(id) {
						t.Errorf("id %q is not o and 27 URL-safe characters", id)
					}
				}
				if s.OpenID == s.UnionID {
					t.Errorf("Code2Session(%q, %q): openid = unionid = %s", app, code, s.OpenID)
				}
				if union != "" && s.UnionID != union {
					t.Errorf("unionid of %q in %s = %s, want %s as in the other app", code, app, s.UnionID, union)
				}
				union = s.UnionID
				if prev, ok := seen[s.OpenID]; ok && prev != app+" "+code {
					t.Errorf("openid %s for %s %s and for %s", s.OpenID, app, code, prev)
				}
				seen[s.OpenID] = app + " " + code
			}
		}
		if prev, ok := seen[union]; ok && prev != "union "+code {
			t.Errorf("unionid %s of %q is also %s", union, code, prev)
		}
		seen[union] = "union " + code
	}
	if n := len(f.CallsTo(Code2SessionPath)); n != 12 {
		t.Errorf("code2Session calls = %d, want 12", n)
	}
	phone := regexp.MustCompile(`^1[0-9]{10}$`)
	for _, code := range []string{"p1", "p2", ""} {
		if got := MockPhone(code); !phone.MatchString(got) || got != MockPhone(code) {
			t.Errorf("MockPhone(%q) = %q, want 1 and ten digits, the same every time", code, got)
		}
	}
	if MockPhone("p1") == MockPhone("p2") {
		t.Errorf("MockPhone(p1) = MockPhone(p2) = %s", MockPhone("p1"))
	}
}

// TestFakeInterceptAndCalls: an intercepted path is still recorded, its
// body readable by the handler; nil restores the fake's own answer.
func TestFakeInterceptAndCalls(t *testing.T) {
	t.Parallel()
	f, base := startFake(t, FakeOptions{})
	c := newTestClient(t, base, Options{})
	var mu sync.Mutex
	var gotBody string
	f.Intercept(StableTokenPath, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		gotBody = string(b)
		mu.Unlock()
		AnswerError(w, CodeBusy)
	})
	_, err := c.PhoneNumber(context.Background(), testAppID, testOpenID, "pc")
	wantErrcode(t, "PhoneNumber with stable_token intercepted", err, APIStableToken, CodeBusy)
	mu.Lock()
	defer mu.Unlock()
	calls := f.CallsTo(StableTokenPath)
	if len(calls) != maxAttempts {
		t.Errorf("recorded %d stable_token calls, want %d", len(calls), maxAttempts)
	} else if string(calls[0].Body) != gotBody || gotBody == "" {
		t.Errorf("recorded the stable_token body %q; the handler read %q", calls[0].Body, gotBody)
	}
	f.Intercept(StableTokenPath, nil)
	if _, err := c.PhoneNumber(context.Background(), testAppID, testOpenID, "pc"); err != nil {
		t.Errorf("PhoneNumber with the fake's own stable_token again = %v", err)
	}
	unrecorded := NewFake(FakeOptions{Apps: testApps})
	srv := httptest.NewServer(unrecorded)
	t.Cleanup(srv.Close)
	if _, err := newTestClient(t, srv.URL, Options{}).Code2Session(context.Background(), testAppID, "abc"); err != nil || len(unrecorded.Calls()) != 0 {
		t.Errorf("without Record: Code2Session = %v, %d calls kept, want no error and none kept", err, len(unrecorded.Calls()))
	}
}

// TestFakeTokenLastMinutes: as at WeChat, normal mode hands out the same
// access_token while it has more than 5 minutes left, with the time left
// as expires_in, and a new one in its last 5 minutes — never one with
// expires_in 0.
func TestFakeTokenLastMinutes(t *testing.T) {
	t.Parallel()
	start := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	now := start
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(d time.Duration) { mu.Lock(); now = start.Add(d); mu.Unlock() }
	_, base := startFake(t, FakeOptions{Now: clock})
	body := `{"grant_type":"client_credential","appid":"` + testApps[0].ID + `","secret":"` + testApps[0].Secret + `","force_refresh":false}`
	first := postJSON(t, base+StableTokenPath, body)
	for _, tc := range []struct {
		at      time.Duration
		same    bool
		expires float64
	}{
		{0, true, 7200},
		{7200*time.Second - 5*time.Minute - time.Second, true, 301},
		{7200*time.Second - 5*time.Minute + time.Second, false, 7200},
	} {
		set(tc.at)
		got := postJSON(t, base+StableTokenPath, body)
		if same := got["access_token"] == first["access_token"]; same != tc.same || got["expires_in"] != tc.expires {
			t.Errorf("at %v: stable_token = same token %v, expires_in %v; want same %v, %v", tc.at, same, got["expires_in"], tc.same, tc.expires)
		}
	}
}
