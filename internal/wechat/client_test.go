package wechat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRequestsWeChatReceives decodes what the fake WeChat received for each
// API: method, path, query and JSON body, exactly.
func TestRequestsWeChatReceives(t *testing.T) {
	t.Parallel()
	f, base := startFake(t, FakeOptions{})
	c := newTestClient(t, base, Options{})
	ctx := context.Background()
	if _, err := c.Code2Session(ctx, testAppID, "code1"); err != nil {
		t.Fatalf("Code2Session: %v", err)
	}
	if _, err := c.PhoneNumber(ctx, testAppID, testOpenID, "phone1"); err != nil {
		t.Fatalf("PhoneNumber: %v", err)
	}
	calls := f.Calls()
	if len(calls) != 3 {
		t.Fatalf("WeChat received %d calls, want 3 (code2Session, stable_token, getuserphonenumber): %+v", len(calls), calls)
	}
	tests := []struct {
		api    string
		method string
		path   string
		query  url.Values
		body   map[string]any // nil: no body
	}{
		{APICode2Session, http.MethodGet, Code2SessionPath, url.Values{
			"appid": {testAppID}, "secret": {testSecret}, "js_code": {"code1"}, "grant_type": {"authorization_code"},
		}, nil},
		{APIStableToken, http.MethodPost, StableTokenPath, url.Values{}, map[string]any{
			"grant_type": "client_credential", "appid": testAppID, "secret": testSecret, "force_refresh": false,
		}},
		{APIPhoneNumber, http.MethodPost, PhoneNumberPath, url.Values{"access_token": {currentToken(f, testAppID)}},
			map[string]any{"code": "phone1", "openid": testOpenID}},
	}
	for i, tt := range tests {
		got := calls[i]
		if got.Method != tt.method || got.Path != tt.path {
			t.Errorf("%s: WeChat received %s %s, want %s %s", tt.api, got.Method, got.Path, tt.method, tt.path)
		}
		if !reflect.DeepEqual(got.Query, tt.query) {
			t.Errorf("%s: query = %v, want %v", tt.api, got.Query, tt.query)
		}
		if tt.body == nil {
			if len(got.Body) != 0 {
				t.Errorf("%s: body = %q, want none", tt.api, got.Body)
			}
		} else if j := got.JSON(); !reflect.DeepEqual(j, tt.body) {
			t.Errorf("%s: body = %s (decoded %v), want %v", tt.api, got.Body, j, tt.body)
		}
	}
	if tok := calls[2].Query.Get("access_token"); !strings.HasPrefix(tok, "mock-access-token-") {
		t.Errorf("getuserphonenumber's access_token = %q, want the one the fake handed out", tok)
	}
}

// TestCode2SessionRequest: with a base URL that has a path of its own and
// parameters that need escaping, WeChat still receives each parameter once
// and unchanged, in a plain GET without a body.
func TestCode2SessionRequest(t *testing.T) {
	t.Parallel()
	const appID, secret = "wx&id", "se cret&appid=evil+/%"
	const code = "a b&grant_type=x+y/%?#码"
	f := NewFake(FakeOptions{Apps: []App{{appID, secret}}, Record: true})
	type seen struct {
		path             string
		contentLength    int64
		transferEncoding []string
		contentType      string
	}
	var mu sync.Mutex
	var last seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = seen{r.URL.Path, r.ContentLength, r.TransferEncoding, r.Header.Get("Content-Type")}
		mu.Unlock()
		http.StripPrefix("/wx", f).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	for _, base := range []string{srv.URL + "/wx", srv.URL + "/wx/"} {
		c := newTestClient(t, base, Options{Apps: []App{{appID, secret}}})
		s, err := c.Code2Session(context.Background(), appID, code)
		if err != nil {
			t.Fatalf("Code2Session via %s: %v", base, err)
		}
		if want := MockOpenID(appID, code); s.OpenID != want {
			t.Errorf("Code2Session via %s = %+v, want openid %s", base, s, want)
		}
		mu.Lock()
		got := last
		mu.Unlock()
		if got.path != "/wx"+Code2SessionPath {
			t.Errorf("via %s: path = %q, want %q", base, got.path, "/wx"+Code2SessionPath)
		}
		if got.contentLength != 0 || got.transferEncoding != nil || got.contentType != "" {
			t.Errorf("via %s: request has length %d, transfer encoding %q, content type %q; want a plain GET without body",
				base, got.contentLength, got.transferEncoding, got.contentType)
		}
		calls := f.CallsTo(Code2SessionPath)
		q := calls[len(calls)-1].Query
		want := url.Values{"appid": {appID}, "secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
		if calls[len(calls)-1].Method != http.MethodGet || !reflect.DeepEqual(q, want) {
			t.Errorf("via %s: WeChat received %s with query %q, want GET with %q", base, calls[len(calls)-1].Method, q, want)
		}
	}
}

// TestPostContentType: the POSTs to WeChat say they are JSON.
func TestPostContentType(t *testing.T) {
	t.Parallel()
	f := NewFake(FakeOptions{Apps: testApps})
	var mu sync.Mutex
	types := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		types[r.URL.Path] = r.Method + " " + r.Header.Get("Content-Type")
		mu.Unlock()
		f.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL, Options{})
	if _, err := c.PhoneNumber(context.Background(), testAppID, testOpenID, "p1"); err != nil {
		t.Fatalf("PhoneNumber: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range []string{StableTokenPath, PhoneNumberPath} {
		if want := "POST application/json; charset=utf-8"; types[p] != want {
			t.Errorf("%s: received %q, want %q", p, types[p], want)
		}
	}
}

// TestCode2Session: the fake's session for a code, the same every time.
func TestCode2Session(t *testing.T) {
	t.Parallel()
	f, base := startFake(t, FakeOptions{})
	c := newTestClient(t, base, Options{})
	want := Session{OpenID: MockOpenID(testAppID, "abc"), UnionID: MockUnionID("abc")}
	for i := range 3 {
		s, err := c.Code2Session(context.Background(), testAppID, "abc")
		if err != nil || s != want {
			t.Errorf("Code2Session(%q) #%d = %+v, %v, want %+v", "abc", i+1, s, err, want)
		}
	}
	if n := codeCalls(f, "abc"); n != 3 {
		t.Errorf("WeChat saw the code %d times, want 3", n)
	}
}

// Success answers of each API, for the retry tables.
const (
	c2sOK   = `{"openid":"o1","session_key":"sk"}`
	tokenOK = `{"access_token":"AT1","expires_in":7200}`
	phoneOK = `{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"+8613800138000","purePhoneNumber":"13800138000","countryCode":"86","watermark":{"timestamp":1,"appid":"` + testAppID + `"}}}`
)

// sequence answers the n-th request (from 0) with answers[n], the last
// one repeating.
func sequence(answers ...string) http.HandlerFunc {
	var n atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		answerString(answers[min(i, len(answers)-1)])(w, r)
	}
}

// callAPI makes one call of api through c, with code as the login or phone
// code, and reports whether it succeeded with the success answer above.
func callAPI(c *Client, api, code string) (bool, error) {
	ctx := context.Background()
	switch api {
	case APICode2Session:
		s, err := c.Code2Session(ctx, testAppID, code)
		return s.OpenID == "o1", err
	case APIStableToken:
		tok, ttl, err := c.stableToken(ctx, testAppID)
		return tok == "AT1" && ttl == 7200*time.Second, err
	default:
		p, err := c.PhoneNumber(ctx, testAppID, testOpenID, code)
		return p == Phone{CountryCode: "86", PurePhoneNumber: "13800138000"}, err
	}
}

var apiPaths = map[string]string{APICode2Session: Code2SessionPath, APIStableToken: StableTokenPath, APIPhoneNumber: PhoneNumberPath}

// TestRetries: only what proves WeChat did not act (errcode -1) is retried,
// at most twice, for each API.
func TestRetries(t *testing.T) {
	t.Parallel()
	busy, busyStr := `{"errcode":-1,"errmsg":"system error"}`, `{"errcode":"-1"}`
	tests := []struct {
		name    string
		answers []string // the last repeats
		calls   int
		errcode int
		bad     bool // ErrBadAnswer
	}{
		{"busy then success", []string{busy, "OK"}, 2, 0, false},
		{"busy twice then success", []string{busy, busyStr, "OK"}, 3, 0, false},
		{"always busy", []string{busy}, 3, CodeBusy, false},
		{"busy then invalid", []string{busy, `{"errcode":40029}`}, 2, CodeInvalidCode, false},
		{"invalid code", []string{`{"errcode":40029}`}, 1, CodeInvalidCode, false},
		{"code used", []string{`{"errcode":40163}`}, 1, CodeCodeUsed, false},
		{"rate limited", []string{`{"errcode":45011}`}, 1, CodeRateLimited, false},
		{"garbage", []string{`garbage`}, 1, 0, true},
		{"busy then garbage", []string{busy, `garbage`}, 2, 0, true},
		{"success", []string{"OK"}, 1, 0, false},
	}
	ok := map[string]string{APICode2Session: c2sOK, APIStableToken: tokenOK, APIPhoneNumber: phoneOK}
	for _, api := range []string{APICode2Session, APIStableToken, APIPhoneNumber} {
		for _, tt := range tests {
			t.Run(api+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				answers := append([]string(nil), tt.answers...)
				for i, a := range answers {
					if a == "OK" {
						answers[i] = ok[api]
					}
				}
				f, base := startFake(t, FakeOptions{})
				f.Intercept(apiPaths[api], sequence(answers...))
				c := newTestClient(t, base, Options{})
				good, err := callAPI(c, api, "abc")
				if n := len(f.CallsTo(apiPaths[api])); n != tt.calls {
					t.Errorf("%s: WeChat received %d calls, want %d", api, n, tt.calls)
				}
				switch {
				case tt.errcode != 0:
					wantErrcode(t, api, err, api, tt.errcode)
				case tt.bad:
					if !errors.Is(err, ErrBadAnswer) {
						t.Errorf("%s = %v, want ErrBadAnswer", api, err)
					}
				case err != nil || !good:
					t.Errorf("%s = %v, %v, want the success answer", api, good, err)
				}
			})
		}
	}
}

// countingTransport dials through a counter.
func countingTransport(dials *atomic.Int32) *http.Transport {
	var d net.Dialer
	return &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, network, addr)
	}}
}

// TestRetryDialFailure: failing to connect at all is retried (WeChat cannot
// have seen anything), at most twice, for each API.
func TestRetryDialFailure(t *testing.T) {
	t.Parallel()
	base := "http://" + closedAddr(t)
	for _, api := range []string{APICode2Session, APIStableToken, APIPhoneNumber} {
		t.Run(api, func(t *testing.T) {
			t.Parallel()
			var dials atomic.Int32
			c := newTestClient(t, base, Options{Transport: countingTransport(&dials)})
			_, err := callAPI(c, api, "abc")
			if op, ok := errors.AsType[*net.OpError](err); !ok || op.Op != "dial" {
				t.Fatalf("%s to a closed port = %v, want a dial error", api, err)
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrBadAnswer) || Errcode(err) != 0 {
				t.Errorf("%s to a closed port = %v, want only a dial error", api, err)
			}
			// getuserphonenumber needs a token first: its stable_token is
			// what fails to connect.
			if n := dials.Load(); n != maxAttempts {
				t.Errorf("%s: dialled %d times, want %d", api, n, maxAttempts)
			}
		})
	}
}

// TestBusyDeadline: when the deadline falls before the next retry, the
// error is what WeChat last said (-1), not a timeout, and it comes at once.
func TestBusyDeadline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		timeout    time.Duration // the client's
		ctxTimeout time.Duration // the caller's; 0 for none
		retryDelay time.Duration
		calls      int
		atOnce     bool // returns well before the deadline
	}{
		{"retry after the client's deadline", time.Second, 0, time.Hour, 1, true},
		{"retry after the caller's deadline", 5 * time.Second, time.Second, time.Hour, 1, true},
		// Backoffs of 100–200 ms, then 200–400 ms: the first retry fits in
		// 300 ms, the second does not.
		{"deadline during the retries", 300 * time.Millisecond, 0, 200 * time.Millisecond, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, base := startFake(t, FakeOptions{})
			c := newTestClient(t, base, Options{Timeout: tt.timeout, RetryDelay: tt.retryDelay})
			ctx := context.Background()
			if tt.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
				defer cancel()
			}
			start := time.Now()
			_, err := c.Code2Session(ctx, testAppID, MockBusy)
			elapsed := time.Since(start)
			wantErrcode(t, "Code2Session(mock-busy)", err, APICode2Session, CodeBusy)
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Code2Session(mock-busy) = %v, want the -1 error, not a timeout", err)
			}
			if n := codeCalls(f, MockBusy); n != tt.calls {
				t.Errorf("WeChat saw the code %d times, want %d", n, tt.calls)
			}
			if tt.atOnce && elapsed > 500*time.Millisecond {
				t.Errorf("Code2Session(mock-busy) took %v, want an answer at once", elapsed)
			}
		})
	}
}

// TestDeadline: a WeChat that does not answer shows as
// context.DeadlineExceeded, within the client's timeout, and is not
// retried.
func TestDeadline(t *testing.T) {
	t.Parallel()
	f, base := startFake(t, FakeOptions{})
	f.Intercept(Code2SessionPath, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c := newTestClient(t, base, Options{Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := c.Code2Session(context.Background(), testAppID, "abc")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Code2Session against a silent WeChat = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Code2Session took %v, want about the 100 ms timeout", d)
	}
	if n := codeCalls(f, "abc"); n != 1 {
		t.Errorf("WeChat saw the code %d times, want 1", n)
	}
}

// TestNoTransportResend: WeChat sees a code once even when the pooled
// connection breaks: net/http re-sends a replayable request once per broken
// pooled connection, each time spending the code.
func TestNoTransportResend(t *testing.T) {
	t.Parallel()
	const pooled = 8
	f, base := startFake(t, FakeOptions{})
	var arrived sync.WaitGroup
	arrived.Add(pooled)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	f.Intercept(Code2SessionPath, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("js_code") == "doomed" {
			hangUp(w, r)
			return
		}
		arrived.Done()
		select { // hold all until each has its own connection
		case <-all:
		case <-time.After(5 * time.Second):
		}
		answerString(c2sOK)(w, r)
	})
	c := newTestClient(t, base, Options{MaxIdle: pooled})
	var wg sync.WaitGroup
	for range pooled {
		wg.Go(func() {
			if _, err := c.Code2Session(context.Background(), testAppID, "warm"); err != nil {
				t.Errorf("warming the pool: %v", err)
			}
		})
	}
	wg.Wait()
	_, err := c.Code2Session(context.Background(), testAppID, "doomed")
	if err == nil {
		t.Fatal("Code2Session succeeded against a WeChat that hangs up")
	}
	if n := codeCalls(f, "doomed"); n != 1 {
		t.Errorf("WeChat saw the code %d times, want 1", n)
	}
}

// TestBadAnswers: answers that are not what code2Session promises are
// ErrBadAnswer, and a redirect is not followed.
func TestBadAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer http.HandlerFunc
	}{
		{"500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", 500) }},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, Code2SessionPath+"?"+r.URL.RawQuery+"&again=1", http.StatusFound)
		}},
		{"over 64 KiB", answerString(`{"openid":"o1","x":"` + strings.Repeat("x", maxAnswerBytes) + `"}`)},
		{"not JSON", answerString(`<html>502 Bad Gateway</html>`)},
		{"success without openid", answerString(`{"session_key":"sk"}`)},
		{"empty openid", answerString(`{"openid":""}`)},
		{"openid in another case", answerString(`{"OpenID":"o1"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, base := startFake(t, FakeOptions{})
			f.Intercept(Code2SessionPath, tt.answer)
			c := newTestClient(t, base, Options{})
			s, err := c.Code2Session(context.Background(), testAppID, "abc")
			if !errors.Is(err, ErrBadAnswer) || s != (Session{}) {
				t.Errorf("Code2Session = %+v, %v, want ErrBadAnswer", s, err)
			}
			if n := len(f.CallsTo(Code2SessionPath)); n != 1 {
				t.Errorf("WeChat received %d calls, want 1", n)
			}
		})
	}
}

// TestObserve: every call to WeChat is observed with its API and errcode.
func TestObserve(t *testing.T) {
	t.Parallel()
	_, base := startFake(t, FakeOptions{})
	var mu sync.Mutex
	var got []string
	var fetched []error
	c := newTestClient(t, base, Options{
		Observe: func(api string, d time.Duration, errcode int) {
			mu.Lock()
			defer mu.Unlock()
			if d < 0 {
				t.Errorf("observed %s with duration %v", api, d)
			}
			got = append(got, fmt.Sprintf("%s %d", api, errcode))
		},
		TokenFetched: func(err error) { mu.Lock(); fetched = append(fetched, err); mu.Unlock() },
	})
	ctx := context.Background()
	c.Code2Session(ctx, testAppID, "abc")
	c.Code2Session(ctx, testAppID, MockInvalid)
	c.Code2Session(ctx, testAppID, MockBusy)
	c.PhoneNumber(ctx, testAppID, testOpenID, "p1")
	c.PhoneNumber(ctx, testAppID, testOpenID, MockRateLimit)
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"code2session 0", "code2session 40029", "code2session -1", "code2session -1", "code2session -1",
		"stable_token 0", "getuserphonenumber 0", "getuserphonenumber 45011",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("observed %q, want %q", got, want)
	}
	if len(fetched) != 1 || fetched[0] != nil {
		t.Errorf("TokenFetched saw %v, want one fetch without error", fetched)
	}
}
