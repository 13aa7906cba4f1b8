package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseCode2Session(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body    string
		want    Session
		errcode int  // want a *WxError with this code
		bad     bool // want errBadUpstream
	}{
		{body: `{"openid":"o1","session_key":"sk"}`, want: Session{OpenID: "o1"}},
		{body: `{"openid":"o1","unionid":"u1","session_key":"sk","errcode":0,"errmsg":"ok"}`, want: Session{OpenID: "o1", UnionID: "u1"}},
		{body: `{"openid":"o1","errcode":"0"}`, want: Session{OpenID: "o1"}},
		{body: `{"openid":"o1","errcode":null}`, want: Session{OpenID: "o1"}},
		{body: ` {"openid":"o1"} ` + "\n", want: Session{OpenID: "o1"}},
		{body: `{"errcode":40029,"errmsg":"invalid code"}`, errcode: 40029},
		{body: `{"errcode":"40163","errmsg":"code been used"}`, errcode: 40163},
		{body: `{"errcode":-1,"errmsg":"system error"}`, errcode: -1},
		{body: `{"errcode":"-1"}`, errcode: -1},
		{body: `{"errcode":45011,"openid":"o1"}`, errcode: 45011},
		{body: `{"errcode":"abc"}`, bad: true},
		{body: `{"errcode":""}`, bad: true},
		{body: `{"errcode":1.5}`, bad: true},
		{body: `{"errcode":true}`, bad: true},
		{body: `{"errcode":99999999999999999999999}`, bad: true},
		{body: `{"session_key":"sk"}`, bad: true},
		{body: `{"openid":""}`, bad: true},
		{body: `{"openid":123}`, bad: true},
		{body: `{}`, bad: true},
		{body: `null`, bad: true},
		{body: `[]`, bad: true},
		{body: `"openid"`, bad: true},
		{body: ``, bad: true},
		{body: `<html>502</html>`, bad: true},
		{body: `{"openid":"o1"}{"openid":"o2"}`, bad: true},
	}
	for _, tt := range tests {
		got, err := parseCode2Session([]byte(tt.body))
		var we *WxError
		switch {
		case tt.errcode != 0:
			if !errors.As(err, &we) || we.Code != tt.errcode {
				t.Errorf("parseCode2Session(%q) error = %v, want errcode %d", tt.body, err, tt.errcode)
			}
		case tt.bad:
			if !errors.Is(err, errBadUpstream) {
				t.Errorf("parseCode2Session(%q) error = %v, want errBadUpstream", tt.body, err)
			}
		default:
			if err != nil || got != tt.want {
				t.Errorf("parseCode2Session(%q) = %+v, %v, want %+v", tt.body, got, err, tt.want)
			}
		}
	}
}

// TestCode2SessionRequest checks what WeChat receives: path (with a base
// URL's own prefix kept), every parameter escaped and unchanged.
func TestCode2SessionRequest(t *testing.T) {
	t.Parallel()
	var got *http.Request
	f := newFakeWeChat(t, func(w http.ResponseWriter, r *http.Request) {
		got = r
		wechatJSON(w, `{"openid":"o1"}`)
	})
	secret := "se cret&appid=evil+/%"
	code := "a b&grant_type=x+y/%?#码"
	for _, base := range []string{f.URL, f.URL + "/wx", f.URL + "/wx/"} {
		prefix, _ := strings.CutPrefix(strings.TrimSuffix(base, "/"), f.URL)
		baseURL, err := parseBaseURL(base)
		if err != nil {
			t.Fatalf("parseBaseURL(%q): %v", base, err)
		}
		c := newWXClient(baseURL, []App{{"wx&id", secret}}, time.Second, 4)
		if _, err := c.code2Session(context.Background(), "wx&id", code); err != nil {
			t.Fatalf("code2Session via %s: %v", base, err)
		}
		if want := prefix + "/sns/jscode2session"; got.URL.Path != want {
			t.Errorf("path = %q, want %q", got.URL.Path, want)
		}
		if got.Method != "GET" || got.ContentLength != 0 || got.Header.Get("Transfer-Encoding") != "" {
			t.Errorf("request = %s with length %d, want a GET without body", got.Method, got.ContentLength)
		}
		q := got.URL.Query()
		for k, want := range map[string]string{"appid": "wx&id", "secret": secret, "js_code": code, "grant_type": "authorization_code"} {
			if q.Get(k) != want || len(q[k]) != 1 {
				t.Errorf("WeChat got %s=%q, want %q once", k, q[k], want)
			}
		}
	}
}

// TestRetries checks that only what cannot have spent the code is retried,
// at most twice.
func TestRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		answers []string // answer n (from 0) to the same code; the last repeats
		calls   int
		errcode int
		ok      bool
	}{
		{"busy then success", []string{`{"errcode":-1}`, `{"openid":"o1"}`}, 2, 0, true},
		{"busy twice then success", []string{`{"errcode":-1}`, `{"errcode":"-1"}`, `{"openid":"o1"}`}, 3, 0, true},
		{"always busy", []string{`{"errcode":-1}`}, 3, -1, false},
		{"busy then used", []string{`{"errcode":-1}`, `{"errcode":40163}`}, 2, 40163, false},
		{"invalid code", []string{`{"errcode":40029}`}, 1, 40029, false},
		{"rate limited", []string{`{"errcode":45011}`}, 1, 45011, false},
		{"garbage", []string{`garbage`}, 1, 0, false},
		{"success", []string{`{"openid":"o1"}`}, 1, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			f := newFakeWeChat(t, func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				wechatJSON(w, tt.answers[min(i, len(tt.answers)-1)])
			})
			c := newWXClient(f.URL, []App{{testAppID, testSecret}}, 2*time.Second, 4)
			c.retryBase = time.Millisecond
			s, err := c.code2Session(context.Background(), testAppID, "abc")
			if got := f.callsFor("abc"); got != tt.calls {
				t.Errorf("WeChat saw the code %d times, want %d", got, tt.calls)
			}
			if tt.ok != (err == nil) || tt.ok && s.OpenID != "o1" {
				t.Fatalf("code2Session = %+v, %v, want ok=%v", s, err, tt.ok)
			}
			var we *WxError
			if tt.errcode != 0 && (!errors.As(err, &we) || we.Code != tt.errcode) {
				t.Errorf("code2Session error = %v, want errcode %d", err, tt.errcode)
			}
		})
	}
}

// TestRetryDialFailure checks that failing to connect at all is retried
// (WeChat cannot have seen the code), at most twice.
func TestRetryDialFailure(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every dial is refused

	c := newWXClient("http://"+addr, []App{{testAppID, testSecret}}, 2*time.Second, 4)
	c.retryBase = time.Millisecond
	var dials atomic.Int32
	tr := c.transport.(*http.Transport)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	_, err = c.code2Session(context.Background(), testAppID, "abc")
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("code2Session to a closed port: %v, want a connection error", err)
	}
	if got := dials.Load(); got != maxAttempts {
		t.Errorf("dialled %d times, want %d", got, maxAttempts)
	}
	if got := clientError(err); got.code != "upstream_error" {
		t.Errorf("clientError(%v) = %s, want upstream_error", err, got.code)
	}
}

// TestBusyDeadline checks that when the deadline falls before the next
// retry, the answer is what WeChat last said (busy → 503), at once.
func TestBusyDeadline(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, errcodeAnswer(-1))
	c := newWXClient(f.URL, []App{{testAppID, testSecret}}, 200*time.Millisecond, 4)
	c.retryBase = time.Hour
	_, err := c.code2Session(context.Background(), testAppID, "abc")
	var we *WxError
	if !errors.As(err, &we) || we.Code != -1 {
		t.Fatalf("code2Session = %v, want errcode -1", err)
	}
	if got := clientError(err); got.status != 503 {
		t.Errorf("status = %d, want 503", got.status)
	}
	if n := f.callsFor("abc"); n != 1 {
		t.Errorf("WeChat saw the code %d times, want 1", n)
	}
}

// TestNoTransportResend checks that WeChat sees a code at most 3 times even
// when pooled connections break: net/http re-sends a replayable request once
// per broken pooled connection, each time spending the code.
func TestNoTransportResend(t *testing.T) {
	t.Parallel()
	const pooled = 8
	var arrived sync.WaitGroup
	arrived.Add(pooled)
	f := newFakeWeChat(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("js_code") == "doomed" {
			hangUp(w, r)
			return
		}
		arrived.Done()
		arrived.Wait() // hold all until each has its own connection
		wechatJSON(w, `{"openid":"o1"}`)
	})
	c := newWXClient(f.URL, []App{{testAppID, testSecret}}, 2*time.Second, pooled)
	c.retryBase = time.Millisecond

	var wg sync.WaitGroup
	for range pooled {
		wg.Go(func() {
			if _, err := c.code2Session(context.Background(), testAppID, "warm"); err != nil {
				t.Errorf("warming the pool: %v", err)
			}
		})
	}
	wg.Wait()

	_, err := c.code2Session(context.Background(), testAppID, "doomed")
	if err == nil {
		t.Fatal("code2Session succeeded against a server that hangs up")
	}
	if n := f.callsFor("doomed"); n != 1 {
		t.Errorf("WeChat saw the code %d times, want 1 (max %d)", n, maxAttempts)
	}
}

// TestErrorsScrubbed checks that no error from the client carries the
// secret or the code, whatever fails.
func TestErrorsScrubbed(t *testing.T) {
	t.Parallel()
	secret, code := "TopSecretValue123", "LoginCode456"
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	answers := map[string]http.HandlerFunc{
		"hang up": hangUp,
		"hang":    func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
		"500":     func(w http.ResponseWriter, r *http.Request) { http.Error(w, r.URL.String(), 500) },
		"echo in errmsg": func(w http.ResponseWriter, r *http.Request) {
			wechatJSON(w, `{"errcode":40029,"errmsg":"bad `+r.URL.RawQuery+`"}`)
		},
		"redirect": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere?"+r.URL.RawQuery, http.StatusFound)
		},
	}
	check := func(name string, err error) {
		if err == nil {
			t.Errorf("%s: no error", name)
			return
		}
		for _, s := range []string{secret, code} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q contains %q", name, err, s)
			}
		}
	}
	for name, h := range answers {
		f := newFakeWeChat(t, h)
		c := newWXClient(f.URL, []App{{testAppID, secret}}, 100*time.Millisecond, 4)
		_, err := c.code2Session(context.Background(), testAppID, code)
		check(name, err)
	}
	c := newWXClient("http://"+closed, []App{{testAppID, secret}}, time.Second, 4)
	c.retryBase = time.Millisecond
	_, err := c.code2Session(context.Background(), testAppID, code)
	check("connection refused", err)
}

// FuzzParseCode2Session feeds WeChat's answer parser arbitrary bodies: it
// never panics, and every outcome is one of the three kinds the handler maps.
func FuzzParseCode2Session(f *testing.F) {
	for _, seed := range []string{
		`{"openid":"o1","session_key":"sk","unionid":"u1"}`,
		`{"errcode":40029,"errmsg":"invalid code"}`,
		`{"errcode":"-1"}`,
		`{"errcode":1.5}`,
		`{"errcode":null,"openid":"o"}`,
		`[]`, `null`, ``, `{"openid":""}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := parseCode2Session(body)
		var we *WxError
		switch {
		case err == nil:
			if s.OpenID == "" {
				t.Fatalf("parseCode2Session(%q) succeeded without an openid", body)
			}
			if !json.Valid(body) {
				t.Fatalf("parseCode2Session(%q) succeeded on invalid JSON", body)
			}
		case errors.As(err, &we):
			if we.Code == 0 {
				t.Fatalf("parseCode2Session(%q) = WxError with errcode 0", body)
			}
		case !errors.Is(err, errBadUpstream):
			t.Fatalf("parseCode2Session(%q) = %v: neither a WxError nor errBadUpstream", body, err)
		}
	})
}
