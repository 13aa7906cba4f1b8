package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Distinctive values, so a test can search errors for them.
const (
	testAppID  = "wx0123456789abcdef"
	testSecret = "S3cretAppSecretValue9f8e7d"
	testOpenID = "oTestOpenID0123456789abcdefg"
)

var testApps = []App{{ID: testAppID, Secret: testSecret}}

// startFake serves a fake WeChat on loopback, recording every request. With
// o.Apps nil it knows testApps; a non-nil empty list makes it take any
// well-formed AppID with MockSecret.
func startFake(t testing.TB, o FakeOptions) (*Fake, string) {
	t.Helper()
	if o.Apps == nil {
		o.Apps = testApps
	}
	o.Record = true
	f := NewFake(o)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// newTestClient is the real client pointed at base: testApps unless o.Apps
// is set, a 2 s timeout and a 1 ms retry delay unless o says otherwise.
func newTestClient(t testing.TB, base string, o Options) *Client {
	t.Helper()
	o.BaseURL = base
	if o.Apps == nil {
		o.Apps = testApps
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = time.Millisecond
	}
	c := NewClient(o)
	if tr, ok := c.transport.(*http.Transport); ok {
		t.Cleanup(tr.CloseIdleConnections)
	}
	return c
}

// answerString answers like WeChat: body as text/plain with HTTP 200.
func answerString(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}
}

// hangUp closes the connection without answering.
func hangUp(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// closedAddr is a loopback address nothing listens on: every dial to it is
// refused.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// codeCalls counts the code2Session calls the fake received for code.
func codeCalls(f *Fake, code string) int {
	n := 0
	for _, c := range f.CallsTo(Code2SessionPath) {
		if c.Query.Get("js_code") == code {
			n++
		}
	}
	return n
}

// phoneCalls counts the getuserphonenumber calls the fake received for a
// phone code.
func phoneCalls(f *Fake, code string) int {
	n := 0
	for _, c := range f.CallsTo(PhoneNumberPath) {
		if c.JSON()["code"] == code {
			n++
		}
	}
	return n
}

// currentToken is the access_token the fake holds for appID.
func currentToken(f *Fake, appID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens[appID].value
}

// wantErrcode fails unless err is a *Error from api with errcode code.
func wantErrcode(t testing.TB, what string, err error, api string, code int) *Error {
	t.Helper()
	we, ok := errors.AsType[*Error](err)
	if !ok || we.Code != code || we.API != api {
		t.Errorf("%s = %v, want %s errcode %d", what, err, api, code)
		return nil
	}
	return we
}

// postJSON POSTs body to url as another client of WeChat would, and decodes
// the answer.
func postJSON(t testing.TB, url, body string) map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return roundTrip(t, req)
}

// getURL GETs url and decodes the answer.
func getURL(t testing.TB, url string) map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return roundTrip(t, req)
}

func roundTrip(t testing.TB, req *http.Request) map[string]any {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return map[string]any{"status": float64(resp.StatusCode)}
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&m); err != nil {
		t.Fatalf("%s %s: answer %q is not a JSON object: %v", req.Method, req.URL.Path, b, err)
	}
	return m
}
