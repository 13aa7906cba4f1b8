package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"
)

// TestAccessTokenSingleFlight: 256 concurrent cold requests for an app's
// token make exactly one stable_token call; a waiter with a short deadline
// gives up alone, without failing the fetch the others wait on.
func TestAccessTokenSingleFlight(t *testing.T) {
	t.Parallel()
	f, base := startFake(t, FakeOptions{})
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce) // before the server closes: no handler left blocked
	f.Intercept(StableTokenPath, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		answerString(tokenOK)(w, r)
	})
	c := newTestClient(t, base, Options{})

	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if tok, err := c.tokens.get(short, testAppID); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("tokens.get with a short deadline = %q, %v, want DeadlineExceeded", tok, err)
	}
	const n = 256
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			tok, err := c.tokens.get(context.Background(), testAppID)
			if err == nil && tok != "AT1" {
				err = fmt.Errorf("token %q, want AT1", tok)
			}
			errs <- err
		})
	}
	time.Sleep(20 * time.Millisecond) // let them all wait on the one fetch
	releaseOnce()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("tokens.get = %v", err)
		}
	}
	if got := len(f.CallsTo(StableTokenPath)); got != 1 {
		t.Errorf("stable_token calls = %d, want 1", got)
	}
}

// testClock is a settable clock, safe for concurrent use.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Unix(1_800_000_000, 0)} }

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *testClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// TestAccessTokenRefresh: a token is used until min(60 s, expires_in/2)
// before it expires, then fetched again; drop forgets only the current
// token.
func TestAccessTokenRefresh(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	n := 0
	ttl := 2 * time.Second
	at := newAccessTokens(func(ctx context.Context, appID string) (string, time.Duration, error) {
		n++
		return fmt.Sprintf("AT%d", n), ttl, nil
	}, time.Second, clock.Now, nil)
	get := func() string {
		t.Helper()
		tok, err := at.get(context.Background(), testAppID)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	steps := []struct {
		name    string
		advance time.Duration
		drop    string
		ttl     time.Duration // of the fetches from here on; 0: unchanged
		want    string
	}{
		{name: "first", want: "AT1"},
		{name: "0.9 s, still fresh", advance: 900 * time.Millisecond, want: "AT1"},
		{name: "1 s before a 2 s token expires", advance: 100 * time.Millisecond, want: "AT2"},
		{name: "drop the current token", drop: "AT2", ttl: 7200 * time.Second, want: "AT3"},
		{name: "7139 s", advance: 7139 * time.Second, want: "AT3"},
		{name: "60 s before a 7200 s token expires", advance: time.Second, want: "AT4"},
		{name: "drop a token that is no longer current", drop: "AT3", want: "AT4"},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		if s.ttl != 0 {
			ttl = s.ttl
		}
		if s.drop != "" {
			at.drop(testAppID, s.drop)
		}
		if got := get(); got != s.want {
			t.Errorf("%s: token = %s, want %s", s.name, got, s.want)
		}
	}
}

// TestAccessTokenRefreshThroughClient: with the client's clock, the cached
// token serves until 60 s before it expires; then one stable_token call
// fetches it again.
func TestAccessTokenRefreshThroughClient(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	f, base := startFake(t, FakeOptions{Now: clock.Now})
	c := newTestClient(t, base, Options{Now: clock.Now})
	steps := []struct {
		advance time.Duration
		calls   int // stable_token calls so far
	}{
		{0, 1},
		{7139 * time.Second, 1},
		{time.Second, 2},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		code := fmt.Sprintf("p%d", i)
		if p, err := c.PhoneNumber(context.Background(), testAppID, testOpenID, code); err != nil || p.PurePhoneNumber != MockPhone(code) {
			t.Fatalf("PhoneNumber(%q) after %v = %+v, %v", code, s.advance, p, err)
		}
		if got := len(f.CallsTo(StableTokenPath)); got != s.calls {
			t.Errorf("after %v: stable_token calls = %d, want %d", s.advance, got, s.calls)
		}
	}
}

// wantNoForcedRefresh fails when any stable_token call but those at the
// indexes in others (another system's) asked for anything but the normal
// mode, with exactly the body stable_token takes.
func wantNoForcedRefresh(t *testing.T, f *Fake, others ...int) {
	t.Helper()
	want := map[string]any{"grant_type": "client_credential", "appid": testAppID, "secret": testSecret, "force_refresh": false}
	for i, c := range f.CallsTo(StableTokenPath) {
		if !contains(others, i) && !reflect.DeepEqual(c.JSON(), want) {
			t.Errorf("stable_token call %d had body %s, want %v", i, c.Body, want)
		}
	}
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// TestForcedRefreshElsewhere: another system forces a refresh of the
// access_token, so ours answers 40001. The client drops it, fetches once
// more in normal mode, retries once, and succeeds; it never forces a
// refresh itself.
func TestForcedRefreshElsewhere(t *testing.T) {
	t.Parallel()
	f, base := startFake(t, FakeOptions{})
	c := newTestClient(t, base, Options{})
	ctx := context.Background()
	if _, err := c.PhoneNumber(ctx, testAppID, testOpenID, "p1"); err != nil {
		t.Fatalf("first PhoneNumber: %v", err)
	}
	old := currentToken(f, testAppID)
	other := postJSON(t, base+StableTokenPath,
		`{"grant_type":"client_credential","appid":"`+testAppID+`","secret":"`+testSecret+`","force_refresh":true}`)
	if other["access_token"] == old || other["access_token"] == nil {
		t.Fatalf("the forced refresh answered %v, want a new token", other)
	}
	p, err := c.PhoneNumber(ctx, testAppID, testOpenID, "p2")
	if err != nil || p.PurePhoneNumber != MockPhone("p2") {
		t.Fatalf("PhoneNumber after a forced refresh elsewhere = %+v, %v", p, err)
	}
	// stable_token: ours, the other system's, ours again. Phone: p1, then
	// p2 refused (40001) and p2 again.
	if st, ph := len(f.CallsTo(StableTokenPath)), len(f.CallsTo(PhoneNumberPath)); st != 3 || ph != 3 {
		t.Errorf("stable_token calls %d, phone calls %d; want 3 and 3", st, ph)
	}
	phones := f.CallsTo(PhoneNumberPath)
	if got := phones[1].Query.Get("access_token"); got != old {
		t.Errorf("the refused call used %q, want the old token", got)
	}
	if got := phones[2].Query.Get("access_token"); got != other["access_token"] {
		t.Errorf("the retry used %q, want the new token %v", got, other["access_token"])
	}
	wantNoForcedRefresh(t, f, 1)
}

// TestTokenExpiredEarly: WeChat says the cached token expired (42001)
// before the cache thought so: refetched once, retried once, and the phone
// code, which WeChat did not accept the first time, still works.
func TestTokenExpiredEarly(t *testing.T) {
	t.Parallel()
	f, base := startFake(t, FakeOptions{})
	c := newTestClient(t, base, Options{})
	ctx := context.Background()
	if _, err := c.PhoneNumber(ctx, testAppID, testOpenID, "p1"); err != nil {
		t.Fatalf("first PhoneNumber: %v", err)
	}
	f.ExpireTokens()
	if p, err := c.PhoneNumber(ctx, testAppID, testOpenID, "p2"); err != nil || p.PurePhoneNumber != MockPhone("p2") {
		t.Fatalf("PhoneNumber with an expired token = %+v, %v", p, err)
	}
	if st, ph := len(f.CallsTo(StableTokenPath)), phoneCalls(f, "p2"); st != 2 || ph != 2 {
		t.Errorf("stable_token calls %d, p2 calls %d; want 2 and 2", st, ph)
	}
	wantNoForcedRefresh(t, f)
}

// TestTokenFailureNotCached: a failed fetch is not kept: the next request
// fetches again.
func TestTokenFailureNotCached(t *testing.T) {
	t.Parallel()
	f, base := startFake(t, FakeOptions{})
	f.Intercept(StableTokenPath, answerString(`{"errcode":45009,"errmsg":"reach max api daily quota limit"}`))
	var mu sync.Mutex
	var fetched []int
	c := newTestClient(t, base, Options{TokenFetched: func(err error) {
		mu.Lock()
		fetched = append(fetched, Errcode(err))
		mu.Unlock()
	}})
	ctx := context.Background()
	_, err := c.PhoneNumber(ctx, testAppID, testOpenID, "p1")
	wantErrcode(t, "PhoneNumber with stable_token over quota", err, APIStableToken, CodeQuotaReached)
	f.Intercept(StableTokenPath, nil)
	if _, err := c.PhoneNumber(ctx, testAppID, testOpenID, "p1"); err != nil {
		t.Fatalf("PhoneNumber once stable_token works again = %v", err)
	}
	if st := len(f.CallsTo(StableTokenPath)); st != 2 {
		t.Errorf("stable_token calls = %d, want 2", st)
	}
	if n := phoneCalls(f, "p1"); n != 1 {
		t.Errorf("p1 reached getuserphonenumber %d times, want 1 (not while there was no token)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []int{CodeQuotaReached, 0}; !reflect.DeepEqual(fetched, want) {
		t.Errorf("TokenFetched saw errcodes %v, want %v", fetched, want)
	}
}

// TestPhoneNumber: the fake's number for a code, the access_token fetched
// once and reused, a code that works once.
func TestPhoneNumber(t *testing.T) {
	t.Parallel()
	f, base := startFake(t, FakeOptions{})
	c := newTestClient(t, base, Options{})
	ctx := context.Background()
	for _, code := range []string{"phone1", "phone2"} {
		p, err := c.PhoneNumber(ctx, testAppID, testOpenID, code)
		want := Phone{CountryCode: "86", PurePhoneNumber: MockPhone(code)}
		if err != nil || p != want {
			t.Errorf("PhoneNumber(%q) = %+v, %v, want %+v", code, p, err, want)
		}
		if got := p.E164(); got != "+86"+MockPhone(code) {
			t.Errorf("E164() = %q, want %q", got, "+86"+MockPhone(code))
		}
	}
	if st := len(f.CallsTo(StableTokenPath)); st != 1 {
		t.Errorf("stable_token calls = %d, want 1 (the token is reused)", st)
	}
	_, err := c.PhoneNumber(ctx, testAppID, testOpenID, "phone1")
	wantErrcode(t, "PhoneNumber with a used code", err, APIPhoneNumber, CodeInvalidCode)
}

// TestPhoneNumberErrors: the errcodes and bad answers of
// getuserphonenumber and of the stable_token before it, at the client:
// which error, which API, how many calls.
func TestPhoneNumberErrors(t *testing.T) {
	t.Parallel()
	type row struct {
		path, body    string
		errcode       int
		api           string // of the *Error
		bad           bool   // ErrBadAnswer
		misconfigured bool
		stableCalls   int
		phoneCalls    int
	}
	errc := func(n int) string { return fmt.Sprintf(`{"errcode":%d,"errmsg":"x"}`, n) }
	phone := func(info string) string { return `{"errcode":0,"errmsg":"ok","phone_info":` + info + `}` }
	ph, st := PhoneNumberPath, StableTokenPath
	rows := []row{
		{path: ph, body: errc(CodeInvalidCode), errcode: CodeInvalidCode, api: APIPhoneNumber, stableCalls: 1, phoneCalls: 1},
		{path: ph, body: errc(CodeRateLimited), errcode: CodeRateLimited, api: APIPhoneNumber, stableCalls: 1, phoneCalls: 1},
		{path: ph, body: errc(CodeBusy), errcode: CodeBusy, api: APIPhoneNumber, stableCalls: 1, phoneCalls: 3},
		// A stale token: dropped, fetched again, retried once.
		{path: ph, body: errc(CodeInvalidCredential), errcode: CodeInvalidCredential, api: APIPhoneNumber, stableCalls: 2, phoneCalls: 2},
		{path: ph, body: errc(CodeAccessTokenExpired), errcode: CodeAccessTokenExpired, api: APIPhoneNumber, stableCalls: 2, phoneCalls: 2},
		{path: ph, body: errc(CodeInvalidAccessToken), errcode: CodeInvalidAccessToken, api: APIPhoneNumber, stableCalls: 2, phoneCalls: 2},
		{path: ph, body: errc(12345), errcode: 12345, api: APIPhoneNumber, stableCalls: 1, phoneCalls: 1},
		{path: ph, body: `{"errcode":0,"errmsg":"ok"}`, bad: true, stableCalls: 1, phoneCalls: 1},
		{path: ph, body: phone(`{"phoneNumber":"+8613800138000","countryCode":"86","watermark":{"appid":"` + testAppID + `"}}`), bad: true, stableCalls: 1, phoneCalls: 1},
		{path: ph, body: phone(`{"purePhoneNumber":"13800138000","watermark":{"appid":"` + testAppID + `"}}`), bad: true, stableCalls: 1, phoneCalls: 1},
		{path: ph, body: phone(`{"purePhoneNumber":"13800138000","countryCode":"86","watermark":{"appid":"wxffffffffffffffff"}}`), bad: true, stableCalls: 1, phoneCalls: 1},
		{path: ph, body: phone(`{"purePhoneNumber":"13800138000","countryCode":"86"}`), bad: true, stableCalls: 1, phoneCalls: 1},
		{path: ph, body: phone(`{"purePhoneNumber":"1380013800x","countryCode":"86","watermark":{"appid":"` + testAppID + `"}}`), bad: true, stableCalls: 1, phoneCalls: 1},
		{path: ph, body: phone(`{"purePhoneNumber":"13800138000","countryCode":"+86","watermark":{"appid":"` + testAppID + `"}}`), bad: true, stableCalls: 1, phoneCalls: 1},
		{path: ph, body: phone(`{"PurePhoneNumber":"13800138000","countryCode":"86","watermark":{"appid":"` + testAppID + `"}}`), bad: true, stableCalls: 1, phoneCalls: 1},
		{path: ph, body: phone(`"13800138000"`), bad: true, stableCalls: 1, phoneCalls: 1},
		{path: ph, body: `not json`, bad: true, stableCalls: 1, phoneCalls: 1},
		{path: st, body: errc(CodeBusy), errcode: CodeBusy, api: APIStableToken, stableCalls: 3},
		{path: st, body: errc(CodeQuotaReached), errcode: CodeQuotaReached, api: APIStableToken, stableCalls: 1},
		{path: st, body: errc(CodeRateLimited), errcode: CodeRateLimited, api: APIStableToken, stableCalls: 1},
		{path: st, body: errc(99999), errcode: 99999, api: APIStableToken, stableCalls: 1},
		{path: st, body: `{"expires_in":7200}`, bad: true, stableCalls: 1},
		{path: st, body: `{"access_token":"AT","expires_in":0}`, bad: true, stableCalls: 1},
		{path: st, body: `{"access_token":"AT","expires_in":-5}`, bad: true, stableCalls: 1},
		{path: st, body: `{"access_token":"AT","expires_in":"7200"}`, bad: true, stableCalls: 1},
		{path: st, body: `{"Access_Token":"AT","expires_in":7200}`, bad: true, stableCalls: 1},
	}
	for _, c := range []int{CodeInvalidGrantType, CodeInvalidAppID, CodeInvalidSecret, CodeIPNotAllowed, CodeAppIDMissing, CodeSecretMissing, CodeUnauthorized, CodeIPConfirmPending} {
		rows = append(rows, row{path: ph, body: errc(c), errcode: c, api: APIPhoneNumber, misconfigured: true, stableCalls: 1, phoneCalls: 1})
	}
	for _, c := range []int{CodeInvalidGrantType, CodeInvalidAppID, CodeInvalidSecret, CodeIPNotAllowed, CodeAppIDMissing, CodeSecretMissing, CodeIPConfirmPending} {
		rows = append(rows, row{path: st, body: errc(c), errcode: c, api: APIStableToken, misconfigured: true, stableCalls: 1})
	}
	rows = append(rows, row{path: st, body: errc(CodeUnauthorized), errcode: CodeUnauthorized, api: APIStableToken, stableCalls: 1})
	for _, tt := range rows {
		t.Run(tt.path+" "+tt.body, func(t *testing.T) {
			t.Parallel()
			f, base := startFake(t, FakeOptions{})
			f.Intercept(tt.path, answerString(tt.body))
			c := newTestClient(t, base, Options{})
			p, err := c.PhoneNumber(context.Background(), testAppID, testOpenID, "pc")
			if p != (Phone{}) {
				t.Errorf("PhoneNumber = %+v, want no number", p)
			}
			if tt.bad {
				if !errors.Is(err, ErrBadAnswer) {
					t.Errorf("PhoneNumber = %v, want ErrBadAnswer", err)
				}
			} else if we := wantErrcode(t, "PhoneNumber", err, tt.api, tt.errcode); we != nil && we.Misconfigured() != tt.misconfigured {
				t.Errorf("PhoneNumber = %v: Misconfigured() = %v, want %v", err, we.Misconfigured(), tt.misconfigured)
			}
			if s, p := len(f.CallsTo(StableTokenPath)), len(f.CallsTo(PhoneNumberPath)); s != tt.stableCalls || p != tt.phoneCalls {
				t.Errorf("stable_token calls %d, phone calls %d; want %d and %d", s, p, tt.stableCalls, tt.phoneCalls)
			}
			wantNoForcedRefresh(t, f)
		})
	}
}
