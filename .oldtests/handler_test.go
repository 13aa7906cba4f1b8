package main

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestLoginSuccess(t *testing.T) {
	t.Parallel()
	s := newTestService(t, nil)
	a := s.login(t, "abc")
	if a.status != http.StatusOK {
		t.Fatalf("login = %d %s, want 200", a.status, a.raw)
	}
	if want := mockID("openid", testAppID, "abc"); a.str("openid") != want {
		t.Errorf("openid = %q, want %q", a.str("openid"), want)
	}
	if a.str("unionid") == "" || a.str("unionid") == a.str("openid") {
		t.Errorf("unionid = %q, want one distinct from the openid %q", a.str("unionid"), a.str("openid"))
	}
	for k := range a.body {
		if k != "openid" && k != "unionid" {
			t.Errorf("answer %s has field %q; tokens are off, so only openid and unionid belong", a.raw, k)
		}
	}
	if strings.Contains(a.raw, "session_key") || strings.Contains(a.raw, mockID("session_key", testAppID, "abc")[1:25]) {
		t.Errorf("answer %s leaks session_key", a.raw)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	q := s.wechat.callsSince(0)[0]
	for k, want := range map[string]string{"appid": testAppID, "secret": testSecret, "js_code": "abc", "grant_type": "authorization_code"} {
		if got := q.Get(k); got != want {
			t.Errorf("WeChat got %s=%q, want %q", k, got, want)
		}
	}
}

func TestLoginWithoutUnionID(t *testing.T) {
	t.Parallel()
	s := newTestService(t, func(w http.ResponseWriter, r *http.Request) {
		wechatJSON(w, `{"openid":"oAAA","session_key":"sk"}`)
	})
	a := s.login(t, "abc")
	if a.status != http.StatusOK || a.str("openid") != "oAAA" {
		t.Fatalf("login = %d %s, want 200 with openid oAAA", a.status, a.raw)
	}
	if _, ok := a.body["unionid"]; ok {
		t.Errorf("answer %s has a unionid, but WeChat sent none", a.raw)
	}
}

// TestLoginErrors walks SPEC §2's error table for everything WeChat can say.
func TestLoginErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		answer     http.HandlerFunc
		status     int
		code       string
		retryAfter string
	}{
		{"40029 invalid code", errcodeAnswer(40029), 401, "invalid_code", ""},
		{"40163 code used", errcodeAnswer(40163), 401, "invalid_code", ""},
		{"40226 risky user", errcodeAnswer(40226), 403, "user_blocked", ""},
		{"45011 rate limit", errcodeAnswer(45011), 429, "rate_limited", "60"},
		{"-1 busy after retries", errcodeAnswer(-1), 503, "unavailable", "1"},
		{"errcode as string", stringAnswer(`{"errcode":"40163","errmsg":"code been used"}`), 401, "invalid_code", ""},
		{"unknown errcode", errcodeAnswer(99999), 502, "upstream_error", ""},
		{"HTTP 500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", 500) }, 502, "upstream_error", ""},
		{"HTTP 302", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/", http.StatusFound)
		}, 502, "upstream_error", ""},
		{"garbage", stringAnswer("<html>bad gateway</html>"), 502, "upstream_error", ""},
		{"empty body", stringAnswer(""), 502, "upstream_error", ""},
		{"JSON array", stringAnswer(`[1,2]`), 502, "upstream_error", ""},
		{"success without openid", stringAnswer(`{"session_key":"sk","unionid":"u"}`), 502, "upstream_error", ""},
		{"errcode not numeric", stringAnswer(`{"errcode":"busy","errmsg":"x"}`), 502, "upstream_error", ""},
		{"errcode fraction", stringAnswer(`{"errcode":1.5}`), 502, "upstream_error", ""},
		{"body over 64 KiB", stringAnswer(`{"openid":"o1","pad":"` + strings.Repeat("x", 1<<20) + `"}`), 502, "upstream_error", ""},
		{"connection closed", hangUp, 502, "upstream_error", ""},
	}
	for _, code := range []int{40002, 40013, 40125, 40164, 41002, 41004, 48001} {
		tests = append(tests, struct {
			name       string
			answer     http.HandlerFunc
			status     int
			code       string
			retryAfter string
		}{fmt.Sprintf("%d misconfigured", code), errcodeAnswer(code), 500, "misconfigured", ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newTestService(t, tt.answer)
			a := s.login(t, "abc")
			wantError(t, a, tt.status, tt.code)
			if got := a.header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			if strings.Contains(a.raw, "errmsg-detail") {
				t.Errorf("answer %s echoes WeChat's errmsg", a.raw)
			}
		})
	}
}

func errcodeAnswer(code int) http.HandlerFunc {
	return stringAnswer(fmt.Sprintf(`{"errcode":%d,"errmsg":"errmsg-detail, rid: 1"}`, code))
}

func stringAnswer(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { wechatJSON(w, body) }
}

// hangUp closes the connection without answering.
func hangUp(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestLoginDeadline(t *testing.T) {
	t.Parallel()
	s := newTestService(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	s.wx.timeout = 50 * time.Millisecond
	wantError(t, s.login(t, "abc"), 504, "upstream_timeout")
}

// TestMockCodes checks that each mock-* code produces its WeChat error
// through the whole service.
func TestMockCodes(t *testing.T) {
	t.Parallel()
	s := newTestService(t, nil)
	tests := []struct {
		code   string
		status int
		error  string
	}{
		{"mock-invalid", 401, "invalid_code"},
		{"mock-used", 401, "invalid_code"},
		{"mock-risky", 403, "user_blocked"},
		{"mock-ratelimit", 429, "rate_limited"},
		{"mock-busy", 503, "unavailable"},
	}
	for _, tt := range tests {
		wantError(t, s.login(t, tt.code), tt.status, tt.error)
	}
	if n := s.wechat.callsFor("mock-busy"); n != maxAttempts {
		t.Errorf("mock-busy reached WeChat %d times, want %d (1 call + 2 retries)", n, maxAttempts)
	}
	if n := s.wechat.callsFor("mock-used"); n != 1 {
		t.Errorf("mock-used reached WeChat %d times, want 1 (no retry once a code may be spent)", n)
	}
}

// TestBadRequests checks every malformed request is answered before WeChat
// is called.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	s := newTestService(t, nil)
	json := "application/json"
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
		{"code null", "POST", json, `{"code":null}`, 400, "invalid_request"},
		{"code empty", "POST", json, `{"code":""}`, 400, "invalid_request"},
		{"code a number", "POST", json, `{"code":123}`, 400, "invalid_request"},
		{"code 129 chars", "POST", json, `{"code":"` + strings.Repeat("a", 129) + `"}`, 400, "invalid_request"},
		{"code with space", "POST", json, `{"code":"ab c"}`, 400, "invalid_request"},
		{"code with plus", "POST", json, `{"code":"ab+c"}`, 400, "invalid_request"},
		{"code with ampersand", "POST", json, `{"code":"a&secret=x"}`, 400, "invalid_request"},
		{"code with dot", "POST", json, `{"code":"a.b"}`, 400, "invalid_request"},
		{"code with slash", "POST", json, `{"code":"a/b"}`, 400, "invalid_request"},
		{"code with non-ASCII", "POST", json, `{"code":"码abc"}`, 400, "invalid_request"},
		{"code with NUL", "POST", json, `{"code":"a\u0000b"}`, 400, "invalid_request"},
		{"form without code", "POST", "application/x-www-form-urlencoded", `kode=abc`, 400, "invalid_request"},
		{"malformed form", "POST", "application/x-www-form-urlencoded", `code=%zz`, 400, "invalid_request"},
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
	if n := s.wechat.callCount(); n != 0 {
		t.Errorf("WeChat was called %d times by bad requests, want 0", n)
	}
}

// TestBodyLimit checks the 4 KiB limit is exact, with and without a
// Content-Length.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	s := newTestService(t, nil)
	body := func(n int) string { return `{"code":"abc"}` + strings.Repeat(" ", n-14) }
	for _, chunked := range []bool{false, true} {
		for size, status := range map[int]int{4096: 200, 4097: 413} {
			t.Run(fmt.Sprintf("%d chunked=%v", size, chunked), func(t *testing.T) {
				var r io.Reader = strings.NewReader(body(size))
				if chunked {
					r = io.MultiReader(r) // hides the length: sent chunked
				}
				req, _ := http.NewRequest("POST", s.URL+"/openid", r)
				req.Header.Set("Content-Type", "application/json")
				a := do(t, req)
				if a.status != status {
					t.Errorf("POST of %d bytes = %d %s, want %d", size, a.status, a.raw, status)
				}
			})
		}
	}
}

// TestAcceptedBodies checks the Content-Types and shapes the SPEC accepts.
func TestAcceptedBodies(t *testing.T) {
	t.Parallel()
	s := newTestService(t, nil)
	code := "0a1B-_zZ9" + strings.Repeat("x", maxCodeLen-9) // every kind of allowed character, at the limit
	tests := []struct{ contentType, body string }{
		{"", `{"code":"` + code + `"}`},
		{"application/json", `{"code":"` + code + `"}`},
		{"application/json; charset=utf-8", `{"code":"` + code + `"}`},
		{"Application/JSON; Charset=UTF-8", `{"code":"` + code + `"}`},
		{"application/json; charset=gbk", `{"code":"` + code + `"}`},
		{"application/json", `  {"code":"` + code + `", "extra": [1, {"x": 2}]}` + "\n"},
		{"application/x-www-form-urlencoded", "code=" + code},
		{"application/x-www-form-urlencoded; charset=UTF-8", "other=1&code=" + code},
		{"application/x-www-form-urlencoded", `{"code":"` + code + `"}`}, // curl -d '{"code":…}' without -H
	}
	for _, tt := range tests {
		a := s.post(t, tt.contentType, tt.body)
		if a.status != 200 || a.str("openid") != mockID("openid", testAppID, code) {
			t.Errorf("POST %q with %q = %d %s, want 200 with the code's openid", tt.body, tt.contentType, a.status, a.raw)
		}
	}
	if n := s.wechat.callsFor(code); n != len(tests) {
		t.Errorf("WeChat saw the code %d times, want %d (unchanged every time)", n, len(tests))
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	s := newTestService(t, nil)
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
		for _, tt := range tests {
			req, _ := http.NewRequest("GET", s.URL+path, nil)
			if tt.sent != "" {
				req.Header.Set("X-Request-Id", tt.sent)
			}
			got := do(t, req).header.Get("X-Request-Id")
			switch {
			case tt.echo && got != tt.sent:
				t.Errorf("GET %s with X-Request-Id %q: got %q, want it echoed", path, tt.sent, got)
			case !tt.echo && (got == tt.sent || !validRequestID(got)):
				t.Errorf("GET %s with X-Request-Id %q: got %q, want a generated id", path, tt.sent, got)
			}
		}
	}
}

func TestOtherEndpoints(t *testing.T) {
	t.Parallel()
	s := newTestService(t, nil)
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
		if tt.method == "GET" && a.str("status") != "ok" {
			t.Errorf("%s %s = %s, want {\"status\":\"ok\"}", tt.method, tt.path, a.raw)
		}
	}
	req, _ := http.NewRequest("DELETE", s.URL+"/healthz", nil)
	if allow := do(t, req).header.Get("Allow"); allow != "GET, HEAD" {
		t.Errorf("DELETE /healthz: Allow = %q, want GET, HEAD", allow)
	}
}

// TestMaxInflight checks that logins beyond the limit are refused at once
// with 503, that bad requests are still told what is wrong, and that
// logins succeed again once load drops.
func TestMaxInflight(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	s := newTestService(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("js_code") == "slow" {
			entered <- struct{}{}
			<-release
		}
		newMockWeChat(testApps).ServeHTTP(w, r)
	}, withMaxInflight(1))

	done := make(chan answer)
	go func() { done <- s.login(t, "slow") }()
	<-entered

	a := s.login(t, "abc")
	wantError(t, a, 503, "unavailable")
	if a.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q, want 1", a.header.Get("Retry-After"))
	}
	wantError(t, s.login(t, "bad code"), 400, "invalid_request")
	if n := s.wechat.callsFor("abc"); n != 0 {
		t.Errorf("the refused login reached WeChat %d times", n)
	}

	close(release)
	if a := <-done; a.status != 200 {
		t.Errorf("the login in flight = %d %s, want 200", a.status, a.raw)
	}
	if a := s.login(t, "abc"); a.status != 200 {
		t.Errorf("login after load dropped = %d %s, want 200", a.status, a.raw)
	}
}

// TestRequestLog checks the one line per request and what it must say.
func TestRequestLog(t *testing.T) {
	t.Parallel()
	s := newTestService(t, errcodeAnswer(40125))
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
	if lines[1]["level"] != "DEBUG" || lines[1]["path"] != "/healthz" {
		t.Errorf("healthz log line = %v, want it at DEBUG", lines[1])
	}
}

func mustRequest(method, url string) *http.Request {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		panic(err)
	}
	return req
}

// FuzzOpenID sends arbitrary bodies and Content-Types to POST /openid. Every
// answer is 200 or an error of SPEC §2's table with its status; a request
// refused as malformed never reaches WeChat; and an accepted code reaches
// WeChat unchanged (the answer's openid is derived from what WeChat got).
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
	}
	for _, s := range seeds {
		f.Add(s.contentType, s.body)
	}
	s := newTestService(f, nil)
	handler := s.Config.Handler
	statuses := map[string]int{"invalid_request": 400, "method_not_allowed": 405, "request_too_large": 413,
		"unsupported_media_type": 415, "invalid_code": 401, "user_blocked": 403, "rate_limited": 429,
		"unavailable": 503, "misconfigured": 500, "upstream_error": 502, "upstream_timeout": 504}
	f.Fuzz(func(t *testing.T, contentType, body string) {
		req := httptest.NewRequest("POST", "/openid", strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		before := s.wechat.callCount()
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		var got map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("answer %q is not JSON: %v", rec.Body, err)
		}
		calls := s.wechat.callsSince(before)
		if rec.Code != 200 {
			code, _ := got["error"].(string)
			if want, ok := statuses[code]; !ok || want != rec.Code || got["message"] == "" || len(got) != 2 {
				t.Fatalf("answer %d %s is not an error of the SPEC's table", rec.Code, rec.Body)
			}
			if rec.Code < 500 && rec.Code != 401 && rec.Code != 403 && rec.Code != 429 && len(calls) > 0 {
				t.Fatalf("a request refused with %d reached WeChat", rec.Code)
			}
			return
		}
		if len(calls) != 1 {
			t.Fatalf("a login reached WeChat %d times, want 1", len(calls))
		}
		sent := calls[0].Get("js_code")
		if checkCode(sent) != nil || got["openid"] != mockID("openid", testAppID, sent) {
			t.Fatalf("WeChat got code %q, answer %s", sent, rec.Body)
		}
		if want := codeIn(contentType, body); sent != want {
			t.Fatalf("WeChat got code %q, want %q from the body %q", sent, want, body)
		}
	})
}

// codeIn decodes the code from a request body the plain way, to compare
// with what reached WeChat.
func codeIn(contentType, body string) string {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/x-www-form-urlencoded" && !isObject([]byte(body)) {
		v, _ := url.ParseQuery(body)
		return v.Get("code")
	}
	var req struct{ Code string }
	json.Unmarshal([]byte(body), &req)
	return req.Code
}
