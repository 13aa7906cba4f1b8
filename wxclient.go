package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// The WeChat APIs wxlogin calls, and what it accepts of them.
const (
	code2SessionPath = "/sns/jscode2session"
	stableTokenPath  = "/cgi-bin/stable_token"
	phoneNumberPath  = "/wxa/business/getuserphonenumber"
	maxUpstreamBody  = 64 << 10
	maxAttempts      = 3 // one call and at most 2 retries
	errcodeBusy      = -1
)

// Names of the APIs, as errors and metrics call them.
const (
	apiCode2Session = "code2session"
	apiStableToken  = "stable_token"
	apiPhoneNumber  = "getuserphonenumber"
)

// Session is what a login yields. WeChat's session_key is deliberately not
// decoded at all: what is never held cannot leak.
type Session struct {
	OpenID  string
	UnionID string
}

// WxError is an answer from WeChat carrying a non-zero errcode.
type WxError struct {
	API  string // which call answered it: apiCode2Session, …
	Code int
	Msg  string // WeChat's errmsg, scrubbed: for the log, never for the client
}

func (e *WxError) Error() string {
	return e.API + ": wechat errcode " + strconv.Itoa(e.Code) + ": " + e.Msg
}

// errBadUpstream marks answers that are not what the API promises: a
// non-200 status, an oversized or malformed body, success without the
// fields we need.
var errBadUpstream = errors.New("unexpected answer from wechat")

// wxClient makes every call to WeChat through one shared, tuned
// *http.Transport and one round-trip function, do.
type wxClient struct {
	base      string                                         // WeChat API base URL, without a trailing slash
	secrets   map[string]string                              // AppID → AppSecret
	c2sQuery  map[string]string                              // AppID → escaped appid, secret and grant_type
	transport http.RoundTripper                              // an *http.Transport; benchmarks answer from memory
	timeout   time.Duration                                  // one request's whole upstream work, retries included
	retryBase time.Duration                                  // first backoff; doubled, then jittered
	observe   func(api string, d time.Duration, errcode int) // each call to WeChat, when set
}

// newWXClient builds the client for apps. maxInflight sizes the idle pool
// so that a full load of concurrent requests reuses connections instead of
// re-dialling.
func newWXClient(baseURL string, apps []App, timeout time.Duration, maxInflight int) *wxClient {
	c := &wxClient{
		base:      baseURL,
		secrets:   map[string]string{},
		c2sQuery:  map[string]string{},
		transport: newTransport(maxInflight),
		timeout:   timeout,
		retryBase: 100 * time.Millisecond,
	}
	for _, a := range apps {
		c.secrets[a.ID] = a.Secret
		c.c2sQuery[a.ID] = url.Values{
			"appid":      {a.ID},
			"secret":     {a.Secret},
			"grant_type": {"authorization_code"},
		}.Encode()
	}
	return c
}

// newTransport clones http.DefaultTransport, so HTTPS_PROXY and NO_PROXY
// keep working, and sizes its idle pool for maxIdle concurrent requests.
// The default pool keeps 2 idle connections per host and 100 in all, so
// under load most calls would pay a fresh TCP and TLS handshake.
func newTransport(maxIdle int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = maxIdle
	t.MaxIdleConnsPerHost = maxIdle
	// Below the keep-alive timeouts of common servers and gateways (nginx
	// 75 s, many load balancers 60 s), so we rarely write to a connection
	// the other side is closing.
	t.IdleConnTimeout = 30 * time.Second
	return t
}

// wxStatus is the errcode and errmsg every WeChat answer may carry.
type wxStatus struct {
	ErrCode errcode `json:"errcode"`
	ErrMsg  string  `json:"errmsg"`
}

func (s *wxStatus) status() *wxStatus { return s }

// wxReply is an API's answer type; each embeds wxStatus and lists its
// fields for pickJSON, with the paths its struct tags give them.
type wxReply interface {
	status() *wxStatus
	fields() []jsonField
}

// code2Session exchanges a login code of app for the user's openid. It
// retries only where WeChat cannot have consumed the code (errcode -1,
// failure to connect), at most twice, all within c.timeout.
//
// Errors are a *WxError, errBadUpstream, or a transport error; a deadline
// shows as context.DeadlineExceeded. None contains the secret or the code.
func (c *wxClient) code2Session(ctx context.Context, appID, code string) (Session, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := c.base + code2SessionPath + "?" + c.c2sQuery[appID] + "&js_code=" + url.QueryEscape(code)
	var r code2SessionReply
	err := c.retry(ctx, func() error {
		r = code2SessionReply{}
		return c.do(ctx, apiCode2Session, u, nil, &r, c.secrets[appID], code)
	})
	if err != nil {
		return Session{}, err
	}
	if r.OpenID == "" {
		return Session{}, fmt.Errorf("code2session: %w: success without openid", errBadUpstream)
	}
	return Session{OpenID: r.OpenID, UnionID: r.UnionID}, nil
}

// code2SessionReply is the part of WeChat's answer we read. session_key is
// left out on purpose.
type code2SessionReply struct {
	wxStatus
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid"`
}

func (r *code2SessionReply) fields() []jsonField {
	return []jsonField{{"errcode", &r.ErrCode}, {"errmsg", &r.ErrMsg}, {"openid", &r.OpenID}, {"unionid", &r.UnionID}}
}

// stableToken fetches app's access_token with cgi-bin/stable_token in its
// normal mode, which hands every caller the same valid token: replicas
// share nothing and invalidate nobody's token. It never forces a refresh.
func (c *wxClient) stableToken(ctx context.Context, appID string) (token string, expiresIn time.Duration, err error) {
	body, _ := json.Marshal(map[string]any{
		"grant_type": "client_credential", "appid": appID, "secret": c.secrets[appID], "force_refresh": false,
	})
	var r stableTokenReply
	err = c.retry(ctx, func() error {
		r = stableTokenReply{}
		return c.do(ctx, apiStableToken, c.base+stableTokenPath, body, &r, c.secrets[appID])
	})
	if err != nil {
		return "", 0, err
	}
	if r.AccessToken == "" || r.ExpiresIn <= 0 {
		return "", 0, fmt.Errorf("stable_token: %w: success without access_token or expires_in", errBadUpstream)
	}
	return r.AccessToken, time.Duration(r.ExpiresIn) * time.Second, nil
}

// stableTokenReply is stable_token's answer.
type stableTokenReply struct {
	wxStatus
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

func (r *stableTokenReply) fields() []jsonField {
	return []jsonField{{"errcode", &r.ErrCode}, {"errmsg", &r.ErrMsg}, {"access_token", &r.AccessToken}, {"expires_in", &r.ExpiresIn}}
}

// phoneInfo is the phone number WeChat verified for a user.
type phoneInfo struct {
	// phoneNumber is not read: it is countryCode and purePhoneNumber.
	PurePhoneNumber string    `json:"purePhoneNumber"`
	CountryCode     flexValue `json:"countryCode"`
	Watermark       struct {
		AppID string `json:"appid"`
	} `json:"watermark"`
}

// phoneReply is getuserphonenumber's answer.
type phoneReply struct {
	wxStatus
	PhoneInfo phoneInfo `json:"phone_info"`
}

func (r *phoneReply) fields() []jsonField {
	p := &r.PhoneInfo
	return []jsonField{
		{"errcode", &r.ErrCode}, {"errmsg", &r.ErrMsg},
		{"phone_info.purePhoneNumber", &p.PurePhoneNumber},
		{"phone_info.countryCode", &p.CountryCode},
		{"phone_info.watermark.appid", &p.Watermark.AppID},
	}
}

// userPhoneNumber exchanges a getPhoneNumber code for the user's number,
// with one call (and retries on -1) of getuserphonenumber.
func (c *wxClient) userPhoneNumber(ctx context.Context, accessToken, appID, openID, code string) (phoneInfo, error) {
	body, _ := json.Marshal(struct {
		Code   string `json:"code"`
		OpenID string `json:"openid"`
	}{code, openID})
	u := c.base + phoneNumberPath + "?access_token=" + url.QueryEscape(accessToken)
	var r phoneReply
	err := c.retry(ctx, func() error {
		r = phoneReply{}
		return c.do(ctx, apiPhoneNumber, u, body, &r, accessToken, code, c.secrets[appID])
	})
	if err != nil {
		return phoneInfo{}, err
	}
	p := r.PhoneInfo
	switch {
	case p.PurePhoneNumber == "" || p.CountryCode == "":
		return phoneInfo{}, fmt.Errorf("getuserphonenumber: %w: no phone_info with purePhoneNumber and countryCode", errBadUpstream)
	case !isDigits(p.PurePhoneNumber) || !isDigits(string(p.CountryCode)):
		return phoneInfo{}, fmt.Errorf("getuserphonenumber: %w: phone number or country code is not digits", errBadUpstream)
	case p.Watermark.AppID != appID:
		return phoneInfo{}, fmt.Errorf("getuserphonenumber: %w: watermark is for another AppID", errBadUpstream)
	}
	return p, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// retry runs call once, and again at most twice where WeChat cannot have
// consumed anything (errcode -1, failure to connect), within ctx.
func (c *wxClient) retry(ctx context.Context, call func() error) error {
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil || attempt == maxAttempts || !retryable(ctx, err) {
			return err
		}
		delay := c.backoff(attempt)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
			return err // no time left to retry: report what WeChat last said
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// backoff is the wait before retry number attempt (1, 2): the base doubled
// each time, with the upper half jittered so replicas do not retry in step.
func (c *wxClient) backoff(attempt int) time.Duration {
	d := c.retryBase << (attempt - 1)
	return d/2 + rand.N(d/2+1)
}

// retryable reports whether err proves WeChat never acted on the request:
// it was busy (errcode -1, "try again"), or we never connected at all.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if code := errcodeOf(err); code != 0 {
		return code == errcodeBusy
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// do makes one call to WeChat: a GET when body is nil, else a POST of the
// JSON body. It reads at most 64 KiB of the answer into into, and returns a
// *WxError for a non-zero errcode. sensitive are the values (secret, code,
// access_token) scrubbed from every error; the URL, which holds some of
// them, never appears in one.
func (c *wxClient) do(ctx context.Context, api, u string, body []byte, into wxReply, sensitive ...string) (err error) {
	if c.observe != nil {
		start := time.Now()
		defer func() { c.observe(api, time.Since(start), errcodeOf(err)) }()
	}
	var req *http.Request
	if body == nil {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err == nil {
			// A GET with no body is "replayable": on a reused connection
			// that breaks before the answer, http.Transport silently sends
			// it again, once per pooled connection, each time spending the
			// same single-use code. A body (empty, and not rewindable)
			// makes it non-replayable. The "identity" transfer encoding
			// stops the transport from probing that body (a goroutine and a
			// 200 ms timer) and, when the probe is slow under load, from
			// sending the GET chunked: on the wire it stays a plain GET.
			req.Body = noReplay{}
			req.TransferEncoding = identityEncoding
		}
	} else {
		// A POST is never replayed by http.Transport.
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err == nil {
			req.Header["Content-Type"] = jsonContentType
		}
	}
	if err != nil {
		// url.Parse errors quote the whole URL: say nothing of it.
		return errors.New(api + ": cannot build the request")
	}
	// The transport itself, not an http.Client: a redirect, which would
	// carry the code or the secret elsewhere, is never followed (its 3xx is
	// an unexpected answer), and no per-call redirect and cookie machinery
	// runs.
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		return transportError(ctx, api, err, sensitive)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody+1))
	if err != nil {
		return transportError(ctx, api, err, sensitive)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %w: HTTP status %d", api, errBadUpstream, resp.StatusCode)
	}
	if len(b) > maxUpstreamBody {
		return fmt.Errorf("%s: %w: body over %d bytes", api, errBadUpstream, maxUpstreamBody)
	}
	err = parseReply(api, b, into)
	if we, ok := errors.AsType[*WxError](err); ok {
		we.Msg = scrub(we.Msg, sensitive)
	}
	return err
}

// parseReply reads WeChat's answer. WeChat sends errors with HTTP 200,
// errcode as a number or a numeric string (absent or 0 on success), and
// whatever Content-Type it likes.
func parseReply(api string, body []byte, into wxReply) error {
	if !pickJSON(body, into.fields()) {
		reflect.ValueOf(into).Elem().SetZero() // whatever pickJSON set before it gave up
		if err := json.Unmarshal(body, into); err != nil {
			return fmt.Errorf("%s: %w: %v", api, errBadUpstream, err)
		}
	}
	if s := into.status(); s.ErrCode != 0 {
		msg := s.ErrMsg
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return &WxError{API: api, Code: int(s.ErrCode), Msg: msg}
	}
	return nil
}

// parseCode2Session reads code2Session's answer: the user, or an error.
func parseCode2Session(body []byte) (Session, error) {
	var r code2SessionReply
	if err := parseReply(apiCode2Session, body, &r); err != nil {
		return Session{}, err
	}
	if r.OpenID == "" {
		return Session{}, fmt.Errorf("code2session: %w: success without openid", errBadUpstream)
	}
	return Session{OpenID: r.OpenID, UnionID: r.UnionID}, nil
}

// errcodeOf is WeChat's errcode carried by err, or 0.
func errcodeOf(err error) int {
	if err == nil {
		return 0
	}
	if we, ok := errors.AsType[*WxError](err); ok {
		return we.Code
	}
	return 0
}

// transportError turns a failed request into an error that keeps its kind
// (deadline, dial failure) for errors.Is/As but drops the *url.Error's URL,
// which holds the secret, the code or the access_token.
func transportError(ctx context.Context, api string, err error, sensitive []string) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", api, ctxErr)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &scrubbedError{msg: api + ": " + scrub(err.Error(), sensitive), err: err}
}

// scrub removes sensitive values, plain or URL-escaped, from text bound for
// a log.
func scrub(s string, sensitive []string) string {
	for _, v := range sensitive {
		if v == "" {
			continue
		}
		s = strings.ReplaceAll(s, v, "[redacted]")
		if esc := url.QueryEscape(v); esc != v {
			s = strings.ReplaceAll(s, esc, "[redacted]")
		}
	}
	return s
}

// scrubbedError carries a cleaned message while still unwrapping to the
// original error, so callers can test its kind.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// identityEncoding is the request's transfer encoding: no chunking. Shared, as
// net/http only reads it.
var identityEncoding = []string{"identity"}

// noReplay is an empty request body that http.Transport cannot rewind.
type noReplay struct{}

func (noReplay) Read([]byte) (int, error) { return 0, io.EOF }
func (noReplay) Close() error             { return nil }

// WriteTo lets io.Copy skip its 32 KiB buffer for a body that is empty.
func (noReplay) WriteTo(io.Writer) (int64, error) { return 0, nil }

// errcode accepts a JSON number or a numeric string.
type errcode int

func (e *errcode) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*e = 0
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var ok bool
		if s, ok = plainString(b); !ok {
			return errors.New("errcode is neither a number nor a numeric string")
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return errors.New("errcode is neither a number nor a numeric string")
	}
	*e = errcode(n)
	return nil
}

// flexValue is a JSON string or number, kept as its text: WeChat sends
// countryCode as a string, and numbers have been seen.
type flexValue string

func (f *flexValue) UnmarshalJSON(b []byte) error {
	if s, ok := plainString(b); ok {
		*f = flexValue(s)
		return nil
	}
	if len(b) > 0 && b[0] != '"' {
		var n json.Number
		if err := json.Unmarshal(b, &n); err == nil {
			*f = flexValue(n.String())
			return nil
		}
	}
	return errors.New("neither a digit string nor a number")
}

// plainString reads a JSON string without escapes, such as "86" or "-1":
// what WeChat sends for numbers as strings. It saves a nested
// json.Unmarshal on every answer.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	inner := b[1 : len(b)-1]
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}
	return string(inner), true
}
