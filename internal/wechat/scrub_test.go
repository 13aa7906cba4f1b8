package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// Distinctive sensitive values with characters that URL escaping changes,
// so that both spellings can be searched for.
const (
	scrubSecret = "Top Secret&Value+123"
	scrubCode   = "Login Code/456"
	scrubToken  = "AccessTokenSecretValue0123456789"
)

// wantScrubbed fails when err is nil or its text holds any of values, plain
// or URL-escaped.
func wantScrubbed(t *testing.T, what string, err error, values ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	for _, v := range values {
		for _, s := range []string{v, url.QueryEscape(v), url.PathEscape(v)} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q contains %q", what, err, s)
			}
		}
	}
}

// TestErrorsScrubbed: no error from the client carries the AppSecret, the
// code or the access_token, whatever fails: the *url.Error of a transport
// failure quotes the whole URL, and WeChat may echo what it got.
func TestErrorsScrubbed(t *testing.T) {
	t.Parallel()
	apps := []App{{testAppID, scrubSecret}}
	echo := func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Code string `json:"code"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		Answer(w, map[string]any{"errcode": CodeInvalidCode,
			"errmsg": "bad " + r.URL.RawQuery + " " + r.URL.Query().Encode() + " " + body.Code + " " + scrubSecret})
	}
	answers := map[string]http.HandlerFunc{
		"hang up":        hangUp,
		"no answer":      func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
		"500 with URL":   func(w http.ResponseWriter, r *http.Request) { http.Error(w, r.URL.String(), 500) },
		"echo in errmsg": echo,
		"redirect": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere?"+r.URL.RawQuery, http.StatusFound)
		},
		"JSON error quoting the body": answerString(`{"openid":"` + scrubCode + `" ` + scrubSecret + `}`),
	}
	for name, h := range answers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, base := startFake(t, FakeOptions{Apps: apps})
			f.Intercept(Code2SessionPath, h)
			f.Intercept(StableTokenPath, answerString(`{"access_token":"`+scrubToken+`","expires_in":7200}`))
			f.Intercept(PhoneNumberPath, h)
			c := newTestClient(t, base, Options{Apps: apps, Timeout: 200 * time.Millisecond})
			_, err := c.Code2Session(context.Background(), testAppID, scrubCode)
			wantScrubbed(t, "Code2Session", err, scrubSecret, scrubCode)
			_, err = c.PhoneNumber(context.Background(), testAppID, testOpenID, scrubCode)
			wantScrubbed(t, "PhoneNumber", err, scrubSecret, scrubCode, scrubToken)
		})
	}
	t.Run("stable_token echoes", func(t *testing.T) {
		t.Parallel()
		f, base := startFake(t, FakeOptions{Apps: apps})
		f.Intercept(StableTokenPath, func(w http.ResponseWriter, r *http.Request) {
			var body map[string]any
			json.NewDecoder(r.Body).Decode(&body)
			Answer(w, map[string]any{"errcode": CodeInvalidSecret, "errmsg": "invalid appsecret " + body["secret"].(string)})
		})
		c := newTestClient(t, base, Options{Apps: apps})
		_, err := c.PhoneNumber(context.Background(), testAppID, testOpenID, scrubCode)
		wantErrcode(t, "PhoneNumber", err, APIStableToken, CodeInvalidSecret)
		wantScrubbed(t, "PhoneNumber", err, scrubSecret, scrubCode)
	})
	// Bad base URLs: some fail to parse (url.Parse quotes the whole URL),
	// some to connect.
	for _, base := range []string{
		"http://" + closedAddr(t),
		"http://127.0.0.1:99999",
		"http://exa mple.com",
		"http://[::1",
		"http://%zz",
		"ftp://127.0.0.1",
		"http://127.0.0.1\x7f",
	} {
		t.Run("base "+base, func(t *testing.T) {
			t.Parallel()
			c := newTestClient(t, base, Options{Apps: apps, Timeout: time.Second})
			_, err := c.Code2Session(context.Background(), testAppID, scrubCode)
			wantScrubbed(t, "Code2Session", err, scrubSecret, scrubCode)
			_, err = c.PhoneNumber(context.Background(), testAppID, testOpenID, scrubCode)
			wantScrubbed(t, "PhoneNumber", err, scrubSecret, scrubCode)
		})
	}
	// A transport that answers as http.Client does, with a *url.Error
	// quoting the whole URL: the error keeps its kind (a dial failure,
	// retried) but not the *url.Error.
	t.Run("transport returns a *url.Error", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int32
		tr := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			calls.Add(1)
			return nil, &url.Error{Op: r.Method, URL: r.URL.String(),
				Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
		})
		c := newTestClient(t, "http://127.0.0.1:1", Options{Apps: apps, Transport: tr})
		_, err := c.Code2Session(context.Background(), testAppID, scrubCode)
		wantScrubbed(t, "Code2Session", err, scrubSecret, scrubCode)
		if ue, ok := errors.AsType[*url.Error](err); ok {
			t.Errorf("Code2Session = %v, which unwraps to a *url.Error (%d-byte URL, secret and all)", err, len(ue.URL))
		}
		if op, ok := errors.AsType[*net.OpError](err); !ok || op.Op != "dial" {
			t.Errorf("Code2Session = %v, want it to unwrap to the dial error", err)
		}
		if n := calls.Load(); n != maxAttempts {
			t.Errorf("the transport was called %d times, want %d (a dial failure is retried)", n, maxAttempts)
		}
	})
	// The phone call's URL holds the access_token.
	t.Run("phone hang up", func(t *testing.T) {
		t.Parallel()
		f, base := startFake(t, FakeOptions{})
		f.Intercept(PhoneNumberPath, hangUp)
		c := newTestClient(t, base, Options{})
		_, err := c.PhoneNumber(context.Background(), testAppID, testOpenID, scrubCode)
		if _, ok := errors.AsType[*url.Error](err); ok {
			t.Errorf("PhoneNumber = %v, a *url.Error, which quotes the URL", err)
		}
		wantScrubbed(t, "PhoneNumber", err, currentToken(f, testAppID), testSecret, scrubCode)
	})
}

// roundTripFunc is a RoundTripper of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// cutAt is s cut to at most n bytes at a character boundary: what an
// errmsg must come out as, once scrubbed.
func cutAt(s string, n int) string {
	end := 0
	for i, r := range s {
		if i+utf8.RuneLen(r) > n {
			break
		}
		end = i + utf8.RuneLen(r)
	}
	return s[:end]
}

// TestErrmsgScrubbedThenCut: WeChat's errmsg is scrubbed of the secret,
// the code and the access_token first, then cut to 200 bytes at a character
// boundary. Cutting first would leave the head of a value that straddles
// the cut, which scrubbing then no longer recognises.
func TestErrmsgScrubbedThenCut(t *testing.T) {
	t.Parallel()
	const secret = "Zq7Xk2Wm9Vb4Nt6Ry" // no character of the filler
	apps := []App{{testAppID, secret}}
	pad := func(n int) string { return strings.Repeat(".", n) }
	han := func(n int) string { return strings.Repeat("码", n) } // 3 bytes each
	tests := []struct {
		name string
		api  string
		msg  string // {secret}, {code}, {token} are replaced by the values sent
	}{
		{"secret at 0", APICode2Session, "{secret}" + pad(300)},
		{"secret at 150", APICode2Session, pad(150) + "{secret}" + pad(100)},
		{"secret straddles the cut", APICode2Session, pad(190) + "{secret}" + pad(50)},
		{"secret ends at the cut", APICode2Session, pad(183) + "{secret}" + pad(50)},
		{"secret one byte before the cut", APICode2Session, pad(199) + "{secret}"},
		{"secret at the cut", APICode2Session, pad(200) + "{secret}"},
		{"code straddles the cut", APICode2Session, pad(195) + "{code}" + pad(20)},
		{"secret straddles, then a character across the cut", APICode2Session, pad(185) + "{secret}" + han(20)},
		{"characters across the cut", APICode2Session, pad(1) + han(80)},
		{"characters across the cut, shifted", APICode2Session, pad(2) + han(80)},
		{"characters after a secret", APICode2Session, han(10) + "{secret}" + han(80)},
		{"short", APICode2Session, "invalid code {code}, rid: 1"},
		{"stable_token secret straddles", APIStableToken, pad(190) + "{secret}" + pad(50)},
		{"token straddles the cut", APIPhoneNumber, pad(180) + "{token}" + pad(50)},
		{"token straddles, then characters", APIPhoneNumber, pad(170) + "{token}" + han(30)},
		{"phone code straddles the cut", APIPhoneNumber, pad(195) + "{code}" + pad(50)},
		{"phone secret straddles the cut", APIPhoneNumber, pad(190) + "{secret}" + pad(50)},
	}
	const code = "Kj8Hg5Fd3Sa1"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, base := startFake(t, FakeOptions{Apps: apps})
			sentc := make(chan string, 1) // the errmsg as WeChat sent it
			f.Intercept(apiPaths[tt.api], func(w http.ResponseWriter, r *http.Request) {
				msg := strings.NewReplacer("{secret}", secret, "{code}", code,
					"{token}", r.URL.Query().Get("access_token")).Replace(tt.msg)
				sentc <- msg
				Answer(w, map[string]any{"errcode": CodeInvalidCode, "errmsg": msg})
			})
			c := newTestClient(t, base, Options{Apps: apps})
			var err error
			switch tt.api {
			case APICode2Session:
				_, err = c.Code2Session(context.Background(), testAppID, code)
			case APIStableToken:
				_, _, err = c.stableToken(context.Background(), testAppID)
			default:
				_, err = c.PhoneNumber(context.Background(), testAppID, testOpenID, code)
			}
			we := wantErrcode(t, tt.api, err, tt.api, CodeInvalidCode)
			if we == nil {
				return
			}
			sent := <-sentc
			token := currentToken(f, testAppID)
			scrubbed := strings.NewReplacer(secret, "[redacted]", code, "[redacted]").Replace(sent)
			if token != "" {
				scrubbed = strings.ReplaceAll(scrubbed, token, "[redacted]")
			}
			if want := cutAt(scrubbed, maxErrmsg); we.Msg != want {
				t.Errorf("errmsg %q came out as %q, want %q", sent, we.Msg, want)
			}
			if len(we.Msg) > maxErrmsg || !utf8.ValidString(we.Msg) {
				t.Errorf("errmsg = %q (%d bytes), want at most %d bytes of whole characters", we.Msg, len(we.Msg), maxErrmsg)
			}
			// No piece of a value: any 3 bytes of it in a row.
			for _, v := range []string{secret, code, token} {
				for i := 0; i+3 <= len(v); i++ {
					if strings.Contains(we.Error(), v[i:i+3]) {
						t.Errorf("error %q holds %q, a piece of a sensitive value", we.Error(), v[i:i+3])
						break
					}
				}
			}
		})
	}
}

// TestScrub: both spellings of a value go, and an empty value is ignored.
func TestScrub(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in        string
		sensitive []string
		want      string
	}{
		{"a " + scrubSecret + " b", []string{scrubSecret}, "a [redacted] b"},
		{"q=" + url.QueryEscape(scrubSecret), []string{scrubSecret}, "q=[redacted]"},
		{"x", []string{""}, "x"},
		{"s1 s2 s1", []string{"s1", "s2"}, "[redacted] [redacted] [redacted]"},
	}
	for _, tt := range tests {
		if got := scrub(tt.in, tt.sensitive); got != tt.want {
			t.Errorf("scrub(%q, %q) = %q, want %q", tt.in, tt.sensitive, got, tt.want)
		}
	}
}
