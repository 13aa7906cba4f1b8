package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"wxlogin/internal/wechat"
)

// errcodeAnswerA answers like WeChat with this errcode and an errmsg the
// client must never see. Shared with part B's tests: move to
// helpers_test.go as errcodeAnswer.
func errcodeAnswerA(code int) http.HandlerFunc {
	return stringAnswerA(fmt.Sprintf(`{"errcode":%d,"errmsg":"errmsg-detail, rid: 1"}`, code))
}

// stringAnswerA answers like WeChat with this body. Shared with part B's
// tests: move to helpers_test.go as stringAnswer.
func stringAnswerA(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { wechatJSON(w, body) }
}

// hangUpA closes the connection without answering. Shared with part B's
// tests: move to helpers_test.go as hangUp.
func hangUpA(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// codeCallsA counts the code2Session requests the fake received with
// js_code=code. Shared with part B's tests: move to helpers_test.go.
func codeCallsA(f *wechat.Fake, code string) int {
	n := 0
	for _, c := range f.CallsTo(wechat.Code2SessionPath) {
		if c.Query.Get("js_code") == code {
			n++
		}
	}
	return n
}

// checkCall checks one request the fake WeChat received: its method, its
// whole query and, for a POST, its whole JSON body.
func checkCall(t testing.TB, c wechat.Call, method string, query url.Values, body map[string]any) {
	t.Helper()
	if c.Method != method {
		t.Errorf("WeChat got %s %s, want %s", c.Method, c.Path, method)
	}
	if !reflect.DeepEqual(c.Query, query) {
		t.Errorf("WeChat got query %v on %s, want %v", redactedQuery(c.Query), c.Path, redactedQuery(query))
	}
	if body == nil {
		if len(c.Body) != 0 {
			t.Errorf("WeChat got a body of %d bytes on %s, want none", len(c.Body), c.Path)
		}
		return
	}
	if got := c.JSON(); !reflect.DeepEqual(got, body) {
		t.Errorf("WeChat got body %s on %s, want %v", redactedBody(c.Body), c.Path, body)
	}
}

// redactedQuery shows a query's names and whether each value is the test
// secret, so a failure message never prints the secret itself.
func redactedQuery(q url.Values) string {
	var b strings.Builder
	for k, vs := range q {
		for _, v := range vs {
			if v == testSecret {
				v = "[the test secret]"
			}
			fmt.Fprintf(&b, "%s=%q ", k, v)
		}
	}
	return b.String()
}

func redactedBody(body []byte) string {
	return strings.ReplaceAll(string(body), testSecret, "[the test secret]")
}

// loginQuery is the query code2Session must receive for code.
func loginQuery(appID, secret, code string) url.Values {
	return url.Values{"appid": {appID}, "secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
}

func TestLoginSuccess(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	a := s.login(t, "abc")
	if a.status != http.StatusOK {
		t.Fatalf("login(%q) = %d %s, want 200", "abc", a.status, a.raw)
	}
	if want := wechat.MockOpenID(testAppID, "abc"); a.str("openid") != want {
		t.Errorf("login(%q) openid = %q, want %q", "abc", a.str("openid"), want)
	}
	if want := wechat.MockUnionID("abc"); a.str("unionid") != want {
		t.Errorf("login(%q) unionid = %q, want %q", "abc", a.str("unionid"), want)
	}
	for k := range a.body {
		if k != "openid" && k != "unionid" {
			t.Errorf("answer %s has field %q; tokens are off, so only openid and unionid belong", a.raw, k)
		}
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q, want application/json; charset=utf-8", ct)
	}
	if cc := a.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	calls := s.wechat.Calls()
	if len(calls) != 1 || calls[0].Path != wechat.Code2SessionPath {
		t.Fatalf("WeChat got %d calls, want 1 to %s", len(calls), wechat.Code2SessionPath)
	}
	checkCall(t, calls[0], http.MethodGet, loginQuery(testAppID, testSecret, "abc"), nil)
}

func TestLoginWithoutUnionID(t *testing.T) {
	t.Parallel()
	const sessionKey = "SessionKeyValue0123456789"
	s := newTestService(t)
	s.wechat.Intercept(wechat.Code2SessionPath, stringAnswerA(`{"openid":"oAAA","session_key":"`+sessionKey+`"}`))
	a := s.login(t, "abc")
	if a.status != http.StatusOK || a.str("openid") != "oAAA" {
		t.Fatalf("login(%q) = %d %s, want 200 with openid oAAA", "abc", a.status, a.raw)
	}
	if _, ok := a.body["unionid"]; ok {
		t.Errorf("answer %s has a unionid, but WeChat sent none", a.raw)
	}
	if strings.Contains(a.raw, sessionKey) || strings.Contains(a.raw, "session_key") {
		t.Errorf("answer %s passes on the session_key", a.raw)
	}
}

// TestLoginErrors walks SPEC §2's error table for everything WeChat can say
// to code2Session.
func TestLoginErrors(t *testing.T) {
	t.Parallel()
	type row struct {
		name       string
		answer     http.HandlerFunc
		status     int
		code       string
		retryAfter string
		calls      int
	}
	// pad is a successful answer of exactly n bytes.
	pad := func(n int) string {
		const head, tail = `{"openid":"o1","pad":"`, `"}`
		return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
	}
	tests := []row{
		{"40029 invalid code", errcodeAnswerA(40029), 401, "invalid_code", "", 1},
		{"40163 code used", errcodeAnswerA(40163), 401, "invalid_code", "", 1},
		{"40226 risky user", errcodeAnswerA(40226), 403, "user_blocked", "", 1},
		{"45011 rate limit", errcodeAnswerA(45011), 429, "rate_limited", "60", 1},
		{"-1 busy after retries", errcodeAnswerA(-1), 503, "unavailable", "1", 3},
		{"errcode as string", stringAnswerA(`{"errcode":"40163","errmsg":"errmsg-detail"}`), 401, "invalid_code", "", 1},
		{"89503 is not misconfigured for code2Session", errcodeAnswerA(89503), 502, "upstream_error", "", 1},
		{"unknown errcode", errcodeAnswerA(99999), 502, "upstream_error", "", 1},
		{"HTTP 500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", 500) }, 502, "upstream_error", "", 1},
		{"HTTP 302 not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/", http.StatusFound)
		}, 502, "upstream_error", "", 1},
		{"garbage", stringAnswerA("<html>bad gateway</html>"), 502, "upstream_error", "", 1},
		{"empty body", stringAnswerA(""), 502, "upstream_error", "", 1},
		{"JSON array", stringAnswerA(`[1,2]`), 502, "upstream_error", "", 1},
		{"success without openid", stringAnswerA(`{"session_key":"sk","unionid":"u"}`), 502, "upstream_error", "", 1},
		{"openid in another case", stringAnswerA(`{"OpenID":"o1","session_key":"sk"}`), 502, "upstream_error", "", 1},
		{"errcode not numeric", stringAnswerA(`{"errcode":"busy","errmsg":"x"}`), 502, "upstream_error", "", 1},
		{"errcode fraction", stringAnswerA(`{"errcode":1.5}`), 502, "upstream_error", "", 1},
		{"body of 64 KiB", stringAnswerA(pad(64 << 10)), 200, "", "", 1},
		{"body over 64 KiB", stringAnswerA(pad(64<<10 + 1)), 502, "upstream_error", "", 1},
		{"connection closed", hangUpA, 502, "upstream_error", "", 1},
	}
	for _, code := range []int{40002, 40013, 40125, 40164, 41002, 41004, 48001} {
		tests = append(tests, row{fmt.Sprintf("%d misconfigured", code), errcodeAnswerA(code), 500, "misconfigured", "", 1})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newTestService(t)
			s.wechat.Intercept(wechat.Code2SessionPath, tt.answer)
			a := s.login(t, "abc")
			if tt.status == 200 {
				if a.status != 200 || a.str("openid") != "o1" {
					t.Fatalf("login(%q) = %d %s, want 200 with openid o1", "abc", a.status, a.raw)
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
			calls := s.wechat.Calls()
			if len(calls) != tt.calls {
				t.Errorf("WeChat got %d calls, want %d", len(calls), tt.calls)
			}
			for _, c := range calls {
				checkCall(t, c, http.MethodGet, loginQuery(testAppID, testSecret, "abc"), nil)
			}
		})
	}
}

// TestLoginNotReplayed: a connection that breaks after the request went
// out is not retried, even on a reused keep-alive connection, where
// net/http would silently send a replayable request again and spend the
// single-use code twice.
func TestLoginNotReplayed(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	fallback := wechat.NewFake(wechat.FakeOptions{Apps: testApps})
	s.wechat.Intercept(wechat.Code2SessionPath, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("js_code") == "hangup" {
			hangUpA(w, r)
			return
		}
		fallback.ServeHTTP(w, r)
	})
	for _, code := range []string{"warm1", "warm2"} { // leaves an idle connection to reuse
		if a := s.login(t, code); a.status != 200 {
			t.Fatalf("login(%q) = %d %s, want 200", code, a.status, a.raw)
		}
	}
	wantError(t, s.login(t, "hangup"), 502, "upstream_error")
	if n := codeCallsA(s.wechat, "hangup"); n != 1 {
		t.Errorf("WeChat got the broken login %d times, want 1", n)
	}
}

func TestLoginDeadline(t *testing.T) {
	t.Parallel()
	s := newTestService(t, withConfig(func(c *Config) { c.Timeout = 50 * time.Millisecond }))
	s.wechat.Intercept(wechat.Code2SessionPath, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	start := time.Now()
	wantError(t, s.login(t, "abc"), 504, "upstream_timeout")
	if d := time.Since(start); d > time.Second {
		t.Errorf("a login with WX_TIMEOUT 50ms took %v", d)
	}
	if n := codeCallsA(s.wechat, "abc"); n != 1 {
		t.Errorf("WeChat got %d calls, want 1 (no retry after the deadline)", n)
	}
}

// TestMockCodes checks through the whole service that each mock code gives
// its WeChat error, every time.
func TestMockCodes(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	tests := []struct {
		code       string
		status     int
		error      string
		retryAfter string
		calls      int // per login
	}{
		{wechat.MockInvalid, 401, "invalid_code", "", 1},
		{wechat.MockUsed, 401, "invalid_code", "", 1}, // never retried: a code may be spent
		{wechat.MockRisky, 403, "user_blocked", "", 1},
		{wechat.MockRateLimit, 429, "rate_limited", "60", 1},
		{wechat.MockBusy, 503, "unavailable", "1", 3}, // one call and 2 retries
	}
	for _, tt := range tests {
		for i := range 2 {
			a := s.login(t, tt.code)
			wantError(t, a, tt.status, tt.error)
			if got := a.header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("login(%q) #%d: Retry-After = %q, want %q", tt.code, i+1, got, tt.retryAfter)
			}
		}
		if n := codeCallsA(s.wechat, tt.code); n != 2*tt.calls {
			t.Errorf("WeChat got %q %d times in 2 logins, want %d", tt.code, n, 2*tt.calls)
		}
	}
	if a := s.login(t, "abc"); a.status != 200 || a.str("openid") != wechat.MockOpenID(testAppID, "abc") {
		t.Errorf("login(%q) after the mock codes = %d %s, want 200", "abc", a.status, a.raw)
	}
}

// TestBadRequests checks every malformed request is answered before WeChat
// is called.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	json := "application/json"
	form := "application/x-www-form-urlencoded"
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		status      int
		code        string
	}{
		{"GET", "GET", "", "", 405, "method_not_allowed"},
		{"PUT", "PUT", json, `{"code":"abc"}`, 405, "method_not_allowed"},
		{"text/plain", "POST", "text/plain", `{"code":"abc"}`, 415, "unsupported_media_type"},
		{"multipart", "POST", "multipart/form-data; boundary=x", `--x--`, 415, "unsupported_media_type"},
		{"malformed media type", "POST", "application/", `{"code":"abc"}`, 415, "unsupported_media_type"},
		{"415 before 413", "POST", "text/plain", strings.Repeat("x", 5000), 415, "unsupported_media_type"},
		{"not JSON", "POST", json, `code=abc`, 400, "invalid_request"},
		{"truncated JSON", "POST", json, `{"code":"abc"`, 400, "invalid_request"},
		{"empty body", "POST", json, ``, 400, "invalid_request"},
		{"null", "POST", json, `null`, 400, "invalid_request"},
		{"array", "POST", json, `[{"code":"abc"}]`, 400, "invalid_request"},
		{"string", "POST", json, `"abc"`, 400, "invalid_request"},
		{"two objects", "POST", json, `{"code":"abc"}{"code":"def"}`, 400, "invalid_request"},
		{"trailing data", "POST", json, `{"code":"abc"} x`, 400, "invalid_request"},
		{"code missing", "POST", json, `{"kode":"abc"}`, 400, "invalid_request"},
		{"code in another case", "POST", json, `{"Code":"abc"}`, 400, "invalid_request"},
		{"code null", "POST", json, `{"code":null}`, 400, "invalid_request"},
		{"code empty", "POST", json, `{"code":""}`, 400, "invalid_request"},
		{"code a number", "POST", json, `{"code":123}`, 400, "invalid_request"},
		{"code an object", "POST", json, `{"code":{"code":"abc"}}`, 400, "invalid_request"},
		{"code 129 chars", "POST", json, `{"code":"` + strings.Repeat("a", 129) + `"}`, 400, "invalid_request"},
		{"code with space", "POST", json, `{"code":"ab c"}`, 400, "invalid_request"},
		{"code with plus", "POST", json, `{"code":"ab+c"}`, 400, "invalid_request"},
		{"code with ampersand", "POST", json, `{"code":"a&secret=x"}`, 400, "invalid_request"},
		{"code with dot", "POST", json, `{"code":"a.b"}`, 400, "invalid_request"},
		{"code with slash", "POST", json, `{"code":"a/b"}`, 400, "invalid_request"},
		{"code with non-ASCII", "POST", json, `{"code":"码abc"}`, 400, "invalid_request"},
		{"code with NUL", "POST", json, `{"code":"a\u0000b"}`, 400, "invalid_request"},
		{"appid a number", "POST", json, `{"code":"abc","appid":5}`, 400, "invalid_request"},
		{"unknown appid", "POST", json, `{"code":"abc","appid":"wxffffffffffffffff"}`, 400, "unknown_app"},
		{"form without code", "POST", form, `kode=abc`, 400, "invalid_request"},
		{"form with Code", "POST", form, `Code=abc`, 400, "invalid_request"},
		{"malformed form", "POST", form, `code=%zz`, 400, "invalid_request"},
		{"form with a semicolon", "POST", form, `code=abc;x=1`, 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, s.URL+"/openid", strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			a := do(t, req)
			wantError(t, a, tt.status, tt.code)
			if tt.status == 405 && a.header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", a.header.Get("Allow"))
			}
		})
	}
	if n := len(s.wechat.Calls()); n != 0 {
		t.Errorf("WeChat was called %d times by bad requests, want 0", n)
	}
}

// TestExactMemberNames: the body's members are matched exactly as the SPEC
// spells them; another case names nothing, and an escaped spelling of the
// exact name is the name.
func TestExactMemberNames(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	const form = "application/x-www-form-urlencoded"
	tests := []struct {
		contentType, body string
		code              string // the code WeChat must get; "" for a 400
	}{
		{"application/json", `{"Code":"abc"}`, ""},
		{"application/json", `{"CODE":"abc"}`, ""},
		{"application/json", `{"code":"bad!","Code":"good"}`, ""},
		{"application/json", `{"code":"good","Code":"bad!"}`, "good"},
		{"application/json", `{"Code":"bad!","code":"good","CODE":"worse!"}`, "good"},
		{"application/json", `{"co\u0064e":"abc"}`, "abc"},
		{"application/json", `{"\u0063\u006f\u0064\u0065":"esc"}`, "esc"},
		{"application/json", `{"code":"\u0061bc"}`, "abc"},
		{"application/json", `{"code":"first","code":"last"}`, "last"},
		{"application/json", `{"code":"last","code":null}`, "last"},
		{"application/json", `{"code":"abc","Appid":"wxffffffffffffffff","APPID":5}`, "abc"},
		{form, `Code=abc`, ""},
		{form, `CODE=abc&x=1`, ""},
		{form, `code=abc&Code=bad!`, "abc"},
		{form, `Code=bad!&code=abc`, "abc"},
		{form, `code=first&code=second`, "first"}, // a form's first value, as before
		{form, `{"Code":"abc"}`, ""},              // a JSON object under a form header is JSON
		{form, `{"code":"json","Code":"bad!"}`, "json"},
	}
	for _, tt := range tests {
		before := len(s.wechat.Calls())
		a := s.post(t, tt.contentType, tt.body)
		calls := s.wechat.Calls()[before:]
		if tt.code == "" {
			if a.status != 400 || a.str("error") != "invalid_request" {
				t.Errorf("POST %q (%s) = %d %s, want 400 invalid_request", tt.body, tt.contentType, a.status, a.raw)
			}
			if len(calls) != 0 {
				t.Errorf("POST %q (%s) reached WeChat %d times, want 0", tt.body, tt.contentType, len(calls))
			}
			continue
		}
		if a.status != 200 || a.str("openid") != wechat.MockOpenID(testAppID, tt.code) {
			t.Errorf("POST %q (%s) = %d %s, want 200 with the openid of %q", tt.body, tt.contentType, a.status, a.raw, tt.code)
		}
		if len(calls) != 1 || calls[0].Query.Get("js_code") != tt.code {
			t.Errorf("POST %q (%s): WeChat got %d calls, want 1 with js_code %q", tt.body, tt.contentType, len(calls), tt.code)
		}
	}
}

// TestExactMemberNamesRandom sends 2 000 random JSON objects built from the
// member names code, Code, CODE, appid and x, written plainly or with
// escapes, and checks each answer against a decoding of the body made here,
// independently: 200 exactly when the exact member "code" (the last one)
// is a valid code and the exact "appid", if any, is the configured app.
func TestExactMemberNamesRandom(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	r := rand.New(rand.NewPCG(2026, 11))
	deadline := time.Now().Add(30 * time.Second)
	counts := map[int]int{}
	for i := range 2000 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d bodies in 30 s", i)
		}
		body := randomBody(r)
		want := wantLogin("json", body)
		before := len(s.wechat.Calls())
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/openid", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		s.api.ServeHTTP(rec, req)
		calls := s.wechat.Calls()[before:]
		var got map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("POST %q: answer %q is not JSON: %v", body, rec.Body, err)
		}
		counts[rec.Code]++
		if errCode, _ := got["error"].(string); rec.Code != want.status || errCode != want.error {
			t.Fatalf("POST %q = %d %s, want %d %s", body, rec.Code, rec.Body, want.status, want.error)
		}
		if len(calls) != want.calls {
			t.Fatalf("POST %q reached WeChat %d times, want %d", body, len(calls), want.calls)
		}
		if want.status == 200 {
			if got["openid"] != wechat.MockOpenID(testAppID, want.code) || calls[0].Query.Get("js_code") != want.code {
				t.Fatalf("POST %q = %s, WeChat got js_code %q; want the code %q", body, rec.Body, calls[0].Query.Get("js_code"), want.code)
			}
		}
	}
	// Both answers must be common, or the test proves little.
	if counts[200] < 200 || counts[400] < 200 {
		t.Errorf("answers by status = %v, want at least 200 of both 200 and 400", counts)
	}
}

// randomBody is a JSON object of 0–4 members named code, Code, CODE, appid
// or x, with values that are valid codes, invalid codes, AppIDs or other
// JSON, names and strings sometimes written with \u escapes.
func randomBody(r *rand.Rand) string {
	names := []string{"code", "Code", "CODE", "appid", "x"}
	space := func() string { return []string{"", "", " ", "\n\t"}[r.IntN(4)] }
	var b strings.Builder
	b.WriteString(space() + "{")
	for i := range r.IntN(5) {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(space() + randomQuote(r, names[r.IntN(len(names))]) + space() + ":" + space())
		b.WriteString(randomValue(r) + space())
	}
	b.WriteString("}" + space())
	return b.String()
}

func randomValue(r *rand.Rand) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	switch r.IntN(12) {
	case 0, 1, 2, 3: // valid codes
		c := make([]byte, 1+r.IntN(20))
		for i := range c {
			c[i] = alphabet[r.IntN(len(alphabet))]
		}
		return randomQuote(r, string(c))
	case 4:
		return randomQuote(r, strings.Repeat("a", 128))
	case 5: // invalid codes
		return randomQuote(r, []string{"", "bad!", "a b", "a.b", strings.Repeat("a", 129), "码"}[r.IntN(6)])
	case 6:
		return randomQuote(r, testAppID)
	case 7:
		return randomQuote(r, "wxffffffffffffffff")
	case 8:
		return "null"
	case 9:
		return []string{"123", "true", "-1.5e3"}[r.IntN(3)]
	case 10:
		return `{"code":"nested"}`
	default:
		return `["abc"]`
	}
}

// randomQuote writes s as a JSON string, each ASCII character escaped as
// \u00XX one time in four.
func randomQuote(r *rand.Rand, s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		if c < utf8.RuneSelf && r.IntN(4) == 0 {
			fmt.Fprintf(&b, `\u%04x`, c)
		} else {
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// loginWant is what POST /openid must answer, worked out here without the
// service's code.
type loginWant struct {
	status int
	error  string // "" for 200
	code   string // what WeChat must get as js_code
	calls  int    // calls to code2Session
}

var validCodeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// mockAnswers are the fake WeChat's answers to the mock login codes.
var mockAnswers = map[string]loginWant{
	wechat.MockInvalid:   {401, "invalid_code", wechat.MockInvalid, 1},
	wechat.MockUsed:      {401, "invalid_code", wechat.MockUsed, 1},
	wechat.MockRisky:     {403, "user_blocked", wechat.MockRisky, 1},
	wechat.MockRateLimit: {429, "rate_limited", wechat.MockRateLimit, 1},
	wechat.MockBusy:      {503, "unavailable", wechat.MockBusy, 3},
}

// wantLogin is the answer of the single-app test service to body, read as
// kind "json" or "form" (a form body that starts like a JSON object is
// read as JSON, for curl -d).
func wantLogin(kind, body string) loginWant {
	bad := loginWant{status: 400, error: "invalid_request"}
	if len(body) > 4096 {
		return loginWant{status: 413, error: "request_too_large"}
	}
	var code, appid string
	if kind == "form" && !strings.HasPrefix(strings.TrimLeft(body, " \t\r\n"), "{") {
		v, err := url.ParseQuery(body)
		if err != nil {
			return bad
		}
		code, appid = v.Get("code"), v.Get("appid")
	} else {
		var ok bool
		if code, appid, ok = exactFields([]byte(body)); !ok {
			return bad
		}
	}
	switch {
	case !validCodeRE.MatchString(code):
		return bad
	case appid != "" && appid != testAppID:
		return loginWant{status: 400, error: "unknown_app"}
	}
	if w, ok := mockAnswers[code]; ok {
		return w
	}
	return loginWant{status: 200, code: code, calls: 1}
}

// exactFields reads the members "code" and "appid" of body, which must be
// exactly one JSON object, by their exact names after unescaping, the last
// one winning, as encoding/json does it: null leaves a value as it is, and
// a value that is not a string makes the body bad.
func exactFields(body []byte) (code, appid string, ok bool) {
	if !json.Valid(body) {
		return "", "", false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", "", false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", "", false
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return "", "", false
		}
		var into *string
		switch name {
		case "code":
			into = &code
		case "appid":
			into = &appid
		default:
			continue
		}
		raw = bytes.TrimSpace(raw)
		if string(raw) == "null" {
			continue
		}
		if raw[0] != '"' || json.Unmarshal(raw, into) != nil {
			return "", "", false
		}
	}
	return code, appid, true
}

// TestBodyLimit checks the 4 KiB limit is exact, with and without a
// Content-Length.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	body := func(n int) string { return `{"code":"abc"}` + strings.Repeat(" ", n-14) }
	for _, chunked := range []bool{false, true} {
		for _, tt := range []struct{ size, status int }{{4096, 200}, {4097, 413}} {
			t.Run(fmt.Sprintf("%d chunked=%v", tt.size, chunked), func(t *testing.T) {
				var r io.Reader = strings.NewReader(body(tt.size))
				if chunked {
					r = io.MultiReader(r) // hides the length: sent chunked
				}
				req, _ := http.NewRequest("POST", s.URL+"/openid", r)
				req.Header.Set("Content-Type", "application/json")
				a := do(t, req)
				if tt.status == 413 {
					wantError(t, a, 413, "request_too_large")
				} else if a.status != 200 {
					t.Errorf("POST of %d bytes = %d %s, want 200", tt.size, a.status, a.raw)
				}
			})
		}
	}
	if n := codeCallsA(s.wechat, "abc"); n != 2 {
		t.Errorf("WeChat got %d logins, want 2 (only the bodies within the limit)", n)
	}
}

// TestAcceptedBodies checks the Content-Types and shapes the SPEC accepts.
func TestAcceptedBodies(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	code := "0a1B-_zZ9" + strings.Repeat("x", maxCodeLen-9) // every kind of allowed character, at the limit
	tests := []struct{ contentType, body string }{
		{"", `{"code":"` + code + `"}`},
		{"application/json", `{"code":"` + code + `"}`},
		{"application/json; charset=utf-8", `{"code":"` + code + `"}`},
		{"Application/JSON; Charset=UTF-8", `{"code":"` + code + `"}`},
		{"application/json; charset=gbk", `{"code":"` + code + `"}`},
		{"application/json", `  {"code":"` + code + `", "extra": [1, {"x": 2}]}` + "\n"},
		{"application/json", `{"code":"` + code + `","appid":"` + testAppID + `"}`},
		{"application/json", `{"code":"` + code + `","appid":""}`},
		{"application/x-www-form-urlencoded", "code=" + code},
		{"application/x-www-form-urlencoded; charset=UTF-8", "other=1&code=" + code},
		{"application/x-www-form-urlencoded", `{"code":"` + code + `"}`}, // curl -d '{"code":…}' without -H
	}
	for _, tt := range tests {
		a := s.post(t, tt.contentType, tt.body)
		if a.status != 200 || a.str("openid") != wechat.MockOpenID(testAppID, code) {
			t.Errorf("POST %q with %q = %d %s, want 200 with the code's openid", tt.body, tt.contentType, a.status, a.raw)
		}
	}
	calls := s.wechat.Calls()
	if len(calls) != len(tests) {
		t.Fatalf("WeChat got %d calls, want %d", len(calls), len(tests))
	}
	for _, c := range calls {
		checkCall(t, c, http.MethodGet, loginQuery(testAppID, testSecret, code), nil)
	}
}

// requestIDRE is what a generated request id must look like: one the
// service would also accept from a client.
var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func TestRequestID(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	uuid := "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
	tests := []struct {
		sent string
		echo bool
	}{
		{uuid, true},
		{"a", true},
		{"req.1_A-b", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"has space", false},
		{"semi;colon", false},
		{"", false},
	}
	for _, path := range []string{"/healthz", "/nowhere", "/openid"} {
		seen := map[string]bool{}
		for _, tt := range tests {
			req, _ := http.NewRequest("GET", s.URL+path, nil)
			if tt.sent != "" {
				req.Header.Set("X-Request-Id", tt.sent)
			}
			got := do(t, req).header.Get("X-Request-Id")
			switch {
			case tt.echo && got != tt.sent:
				t.Errorf("GET %s with X-Request-Id %q: got %q, want it echoed", path, tt.sent, got)
			case !tt.echo && (got == tt.sent || !requestIDRE.MatchString(got) || seen[got]):
				t.Errorf("GET %s with X-Request-Id %q: got %q, want a new generated id", path, tt.sent, got)
			}
			seen[got] = true
		}
	}
}

func TestOtherEndpoints(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/healthz", 200, ""},
		{"HEAD", "/healthz", 200, ""},
		{"POST", "/healthz", 405, "method_not_allowed"},
		{"GET", "/", 404, "not_found"},
		{"GET", "/openid/", 404, "not_found"},
		{"POST", "/login", 404, "not_found"},
		{"GET", "/sns/jscode2session", 404, "not_found"},
		{"POST", "/phonenumber", 404, "not_found"}, // tokens off
		{"POST", "/metrics", 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, s.URL+tt.path, nil)
		a := do(t, req)
		if tt.code != "" {
			wantError(t, a, tt.status, tt.code)
			continue
		}
		if a.status != tt.status {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, a.status, tt.status)
		}
		if tt.method == "GET" && (a.str("status") != "ok" || len(a.body) != 1) {
			t.Errorf("%s %s = %s, want {\"status\":\"ok\"}", tt.method, tt.path, a.raw)
		}
		if tt.method == "HEAD" && a.raw != "" {
			t.Errorf("%s %s has a body %q", tt.method, tt.path, a.raw)
		}
	}
	req, _ := http.NewRequest("DELETE", s.URL+"/healthz", nil)
	if allow := do(t, req).header.Get("Allow"); allow != "GET, HEAD" {
		t.Errorf("DELETE /healthz: Allow = %q, want GET, HEAD", allow)
	}
	if n := len(s.wechat.Calls()); n != 0 {
		t.Errorf("WeChat got %d calls, want 0", n)
	}
}

// TestMaxInflight checks that logins and phone requests beyond the limit
// are refused at once with 503, that bad requests are still told what is
// wrong, and that logins succeed again once load drops.
func TestMaxInflight(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}, 1), make(chan struct{})
	s := newTestService(t, withMaxInflight(1), withTokens(testKey))
	fallback := wechat.NewFake(wechat.FakeOptions{Apps: testApps})
	s.wechat.Intercept(wechat.Code2SessionPath, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("js_code") == "slow" {
			entered <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		fallback.ServeHTTP(w, r)
	})
	token := s.loginToken(t, "abc")

	done := make(chan int, 1)
	go func() { // not through do: t.Fatal belongs to the test's goroutine
		resp, err := http.Post(s.URL+"/openid", "application/json", strings.NewReader(`{"code":"slow"}`))
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow login never reached WeChat")
	}
	a := s.login(t, "def")
	wantError(t, a, 503, "unavailable")
	if a.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q, want 1", a.header.Get("Retry-After"))
	}
	p := s.phone(t, token, "", `{"code":"p1"}`)
	wantError(t, p, 503, "unavailable")
	wantError(t, s.login(t, "bad code"), 400, "invalid_request")
	if n := codeCallsA(s.wechat, "def"); n != 0 {
		t.Errorf("the refused login reached WeChat %d times", n)
	}
	if n := len(s.wechat.CallsTo(wechat.PhoneNumberPath)) + len(s.wechat.CallsTo(wechat.StableTokenPath)); n != 0 {
		t.Errorf("the refused phone request made %d calls to WeChat", n)
	}

	close(release)
	if status := <-done; status != 200 {
		t.Errorf("the login in flight = %d, want 200", status)
	}
	if a := s.login(t, "def"); a.status != 200 {
		t.Errorf("login after load dropped = %d %s, want 200", a.status, a.raw)
	}
	if n := s.metrics.logins.n[[2]string{testAppID, "unavailable"}].Load(); n != 1 {
		t.Errorf("logins counted unavailable = %d, want 1", n)
	}
}

// TestRequestLog checks the one line per request and what it must say.
func TestRequestLog(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	s.wechat.Intercept(wechat.Code2SessionPath, errcodeAnswerA(40125))
	req, _ := http.NewRequest("POST", s.URL+"/openid", strings.NewReader(`{"code":"abc"}`))
	req.Header.Set("X-Request-Id", "trace-1")
	wantError(t, do(t, req), 500, "misconfigured")
	do(t, mustRequest("GET", s.URL+"/healthz"))

	lines := s.logs.lines(t)
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2:\n%s", len(lines), s.logs)
	}
	l := lines[0]
	want := map[string]any{"msg": "request", "level": "ERROR", "method": "POST", "path": "/openid",
		"status": float64(500), "request_id": "trace-1", "errcode": float64(40125), "error": "misconfigured"}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("log %s = %v, want %v", k, l[k], v)
		}
	}
	for _, k := range []string{"duration_ms", "remote", "detail"} {
		if _, ok := l[k]; !ok {
			t.Errorf("log line has no %s: %v", k, l)
		}
	}
	if d, _ := l["detail"].(string); !strings.Contains(d, "errmsg-detail") {
		t.Errorf("log detail = %q, want WeChat's errmsg in it", d)
	}
	if lines[1]["level"] != "DEBUG" || lines[1]["path"] != "/healthz" {
		t.Errorf("healthz log line = %v, want it at DEBUG", lines[1])
	}
}

// TestRequestLogErrmsg: WeChat's errmsg reaches the log scrubbed of the
// secret and the code first, then cut to 200 bytes at a character
// boundary, so a secret across the cut leaves no part of itself behind.
func TestRequestLogErrmsg(t *testing.T) {
	t.Parallel()
	const code = "LogSecretCode42"
	tests := []struct {
		name, errmsg, want string
	}{
		{"secret and code", "bad " + testSecret + " for " + code, "bad [redacted] for [redacted]"},
		{"secret across the cut", strings.Repeat("x", 190) + testSecret + "tail", strings.Repeat("x", 190) + "[redacted]"},
		{"code across the cut", strings.Repeat("y", 195) + code, strings.Repeat("y", 195) + "[reda"},
		{"cut inside a character", strings.Repeat("z", 199) + "码码", strings.Repeat("z", 199)},
		{"200 bytes kept", strings.Repeat("码", 66) + "ab", strings.Repeat("码", 66) + "ab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newTestService(t)
			body, _ := json.Marshal(map[string]any{"errcode": 40125, "errmsg": tt.errmsg})
			s.wechat.Intercept(wechat.Code2SessionPath, stringAnswerA(string(body)))
			wantError(t, s.login(t, code), 500, "misconfigured")
			logs := s.logs.String()
			for _, secret := range []string{testSecret[:8], code[:8]} {
				if strings.Contains(logs, secret) {
					t.Errorf("the log holds %q:\n%s", secret, logs)
				}
			}
			lines := s.logs.lines(t)
			detail, _ := lines[0]["detail"].(string)
			_, msg, _ := strings.Cut(detail, "errcode 40125: ")
			if msg != tt.want {
				t.Errorf("errmsg in the log = %q, want %q", msg, tt.want)
			}
			if len(msg) > 200 || !utf8.ValidString(msg) {
				t.Errorf("errmsg in the log is %d bytes, valid UTF-8 %v; want at most 200, valid", len(msg), utf8.ValidString(msg))
			}
		})
	}
}

// FuzzOpenID sends arbitrary bodies and Content-Types to POST /openid. Every
// answer is an answer of SPEC §2's table; a request refused as malformed
// never reaches WeChat; and where the Content-Type is one the SPEC names,
// the answer is the one worked out here from the body by exact member names
// (wantLogin), with the code reaching WeChat unchanged.
func FuzzOpenID(f *testing.F) {
	seeds := []struct{ contentType, body string }{
		{"application/json", `{"code":"abc"}`},
		{"", `{"code":"0a1B-_z"}`},
		{"application/json; charset=utf-8", `{"code":"mock-used","x":[1,{}]}`},
		{"application/x-www-form-urlencoded", "code=abc&x=1"},
		{"application/x-www-form-urlencoded", `{"code":"abc"}`},
		{"application/json", `{"code":"a b"}`},
		{"application/json", `{"code":"abc"}{}`},
		{"text/plain", `{"code":"abc"}`},
		{"application/json", `null`},
		{"application/json", `{"code":"` + strings.Repeat("a", 129) + `"}`},
		{"application/json", strings.Repeat(" ", 4090) + `{"code":"a"}`},
		{"application/json", `{"Code":"abc"}`},
		{"application/json", `{"code":"good","Code":"bad!"}`},
		{"application/json", `{"co\u0064e":"abc","appid":"` + testAppID + `"}`},
		{"application/json", `{"code":"abc","code":null,"appid":"wxffffffffffffffff"}`},
	}
	for _, s := range seeds {
		f.Add(s.contentType, s.body)
	}
	s := newTestService(f)
	statuses := map[string]int{"invalid_request": 400, "unknown_app": 400, "method_not_allowed": 405, "request_too_large": 413,
		"unsupported_media_type": 415, "invalid_code": 401, "user_blocked": 403, "rate_limited": 429,
		"unavailable": 503, "misconfigured": 500, "upstream_error": 502, "upstream_timeout": 504}
	f.Fuzz(func(t *testing.T, contentType, body string) {
		req := httptest.NewRequest("POST", "/openid", strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		before := len(s.wechat.Calls())
		rec := httptest.NewRecorder()
		s.api.ServeHTTP(rec, req)
		calls := s.wechat.Calls()[before:]
		var got map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("answer %q is not JSON: %v", rec.Body, err)
		}
		errCode, _ := got["error"].(string)
		if rec.Code != 200 {
			if want, ok := statuses[errCode]; !ok || want != rec.Code || got["message"] == "" || len(got) != 2 {
				t.Fatalf("answer %d %s is not an error of the SPEC's table", rec.Code, rec.Body)
			}
		}
		kind := ""
		switch contentType {
		case "", "application/json":
			kind = "json"
		case "application/x-www-form-urlencoded":
			kind = "form"
		default:
			mt, _, err := mime.ParseMediaType(contentType)
			if err == nil || errors.Is(err, mime.ErrInvalidMediaParameter) {
				kind = map[string]string{"application/json": "json", "application/x-www-form-urlencoded": "form"}[mt]
			}
		}
		if kind == "" {
			if rec.Code != 415 || len(calls) != 0 {
				t.Fatalf("Content-Type %q: answer %d %s with %d calls, want 415 and none", contentType, rec.Code, rec.Body, len(calls))
			}
			return
		}
		want := wantLogin(kind, body)
		if rec.Code != want.status || errCode != want.error || len(calls) != want.calls {
			t.Fatalf("POST %q (%q) = %d %s with %d calls to WeChat, want %d %q with %d", body, contentType, rec.Code, rec.Body, len(calls), want.status, want.error, want.calls)
		}
		for _, c := range calls {
			if c.Query.Get("js_code") != want.code {
				t.Fatalf("POST %q (%q): WeChat got code %q, want %q", body, contentType, c.Query.Get("js_code"), want.code)
			}
		}
		if want.status == 200 && got["openid"] != wechat.MockOpenID(testAppID, want.code) {
			t.Fatalf("POST %q (%q) = %s, want the openid of %q", body, contentType, rec.Body, want.code)
		}
	})
}
