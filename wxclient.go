package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// WeChat's code2Session, as seen from here.
const (
	code2SessionPath = "/sns/jscode2session"
	maxUpstreamBody  = 64 << 10
	maxAttempts      = 3 // one call and at most 2 retries, per login
	errcodeBusy      = -1
)

// Session is what a login yields. WeChat's session_key is deliberately not
// decoded at all: what is never held cannot leak.
type Session struct {
	OpenID  string
	UnionID string
}

// WxError is an answer from WeChat carrying a non-zero errcode.
type WxError struct {
	Code int
	Msg  string // WeChat's errmsg: for the log, never for the client
}

func (e *WxError) Error() string {
	return "code2session: wechat errcode " + strconv.Itoa(e.Code) + ": " + e.Msg
}

// errBadUpstream marks answers that are not what code2Session promises:
// a non-200 status, an oversized or malformed body, success without openid.
var errBadUpstream = errors.New("unexpected answer from wechat")

// wxClient calls code2Session through one shared, tuned *http.Client.
type wxClient struct {
	endpoint  string // base URL + code2SessionPath
	query     string // the escaped appid, secret and grant_type: everything but js_code
	secret    string // kept only to scrub it from anything that leaves
	http      *http.Client
	timeout   time.Duration                      // one login's whole upstream work, retries included
	retryBase time.Duration                      // first backoff; doubled, then jittered
	observe   func(d time.Duration, errcode int) // each call to WeChat, when set
}

// newWXClient builds the client. maxInflight sizes the idle pool so that a
// full load of concurrent logins reuses connections instead of re-dialling.
func newWXClient(baseURL, appID, secret string, timeout time.Duration, maxInflight int) *wxClient {
	return &wxClient{
		endpoint: baseURL + code2SessionPath,
		query: url.Values{
			"appid":      {appID},
			"secret":     {secret},
			"grant_type": {"authorization_code"},
		}.Encode(),
		secret:    secret,
		http:      &http.Client{Transport: newTransport(maxInflight), CheckRedirect: noRedirects},
		timeout:   timeout,
		retryBase: 100 * time.Millisecond,
	}
}

// newTransport clones http.DefaultTransport, so HTTPS_PROXY and NO_PROXY
// keep working, and sizes its idle pool for maxIdle concurrent logins. The
// default pool keeps 2 idle connections per host and 100 in all, so under
// load most logins would pay a fresh TCP and TLS handshake.
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

// noRedirects stops the client from following a redirect, which would
// carry the code and the secret to another address. The 3xx itself then
// counts as an unexpected answer.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// code2Session exchanges a login code for the user's openid. It retries
// only where WeChat cannot have consumed the code (errcode -1, failure to
// connect), at most twice, all within c.timeout.
//
// Errors are a *WxError, errBadUpstream, or a transport error; a deadline
// shows as context.DeadlineExceeded. None contains the secret or the code.
func (c *wxClient) code2Session(ctx context.Context, code string) (Session, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		s, err := c.call(ctx, code)
		if err == nil || attempt == maxAttempts || !retryable(ctx, err) {
			return s, err
		}
		delay := c.backoff(attempt)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
			return s, err // no time left to retry: report what WeChat last said
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return s, err
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

// retryable reports whether err proves WeChat never saw the code: it was
// busy (errcode -1, "try again"), or we never connected at all.
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

// call makes one request to WeChat.
func (c *wxClient) call(ctx context.Context, code string) (s Session, err error) {
	if c.observe != nil {
		start := time.Now()
		defer func() { c.observe(time.Since(start), errcodeOf(err)) }()
	}
	u := c.endpoint + "?" + c.query + "&js_code=" + url.QueryEscape(code)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		// url.Parse errors quote the whole URL: say nothing of it.
		return Session{}, errors.New("code2session: cannot build the request URL")
	}
	// A GET with no body is "replayable": on a reused connection that breaks
	// before the answer, http.Transport silently sends it again, once per
	// pooled connection, each time spending the same single-use code. A
	// body (empty, and not rewindable) makes the request non-replayable.
	// The "identity" transfer encoding stops the transport from probing
	// that body (a goroutine and a 200 ms timer) and, when the probe is
	// slow under load, from sending the GET chunked: on the wire it stays a
	// plain GET without a body.
	req.Body = noReplay{}
	req.TransferEncoding = identity

	resp, err := c.http.Do(req)
	if err != nil {
		return Session{}, c.transportError(ctx, err, code)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody+1))
	if err != nil {
		return Session{}, c.transportError(ctx, err, code)
	}
	if resp.StatusCode != http.StatusOK {
		return Session{}, fmt.Errorf("code2session: %w: HTTP status %d", errBadUpstream, resp.StatusCode)
	}
	if len(body) > maxUpstreamBody {
		return Session{}, fmt.Errorf("code2session: %w: body over %d bytes", errBadUpstream, maxUpstreamBody)
	}
	s, err = parseCode2Session(body)
	if err != nil {
		if we, ok := errors.AsType[*WxError](err); ok {
			we.Msg = c.scrub(we.Msg, code)
		}
	}
	return s, err
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
// which holds the secret and the code.
func (c *wxClient) transportError(ctx context.Context, err error, code string) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("code2session: %w", ctxErr)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &scrubbedError{msg: "code2session: " + c.scrub(err.Error(), code), err: err}
}

// scrub removes the secret and the code from text bound for a log.
func (c *wxClient) scrub(s, code string) string {
	if c.secret != "" {
		s = strings.ReplaceAll(s, c.secret, "[secret]")
	}
	if code != "" {
		s = strings.ReplaceAll(s, code, "[code]")
		if esc := url.QueryEscape(code); esc != code {
			s = strings.ReplaceAll(s, esc, "[code]")
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

// identity is the request's transfer encoding: no chunking. Shared, as
// net/http only reads it.
var identity = []string{"identity"}

// noReplay is an empty request body that http.Transport cannot rewind.
type noReplay struct{}

func (noReplay) Read([]byte) (int, error) { return 0, io.EOF }
func (noReplay) Close() error             { return nil }

// WriteTo lets io.Copy skip its 32 KiB buffer for a body that is empty.
func (noReplay) WriteTo(io.Writer) (int64, error) { return 0, nil }

// code2SessionReply is the part of WeChat's answer we read. session_key is
// left out on purpose.
type code2SessionReply struct {
	OpenID  string  `json:"openid"`
	UnionID string  `json:"unionid"`
	ErrCode errcode `json:"errcode"`
	ErrMsg  string  `json:"errmsg"`
}

// parseCode2Session reads WeChat's answer. WeChat sends errors with HTTP
// 200, errcode as a number or a numeric string (absent or 0 on success),
// and whatever Content-Type it likes; only openid is required.
func parseCode2Session(body []byte) (Session, error) {
	var r code2SessionReply
	if err := json.Unmarshal(body, &r); err != nil {
		return Session{}, fmt.Errorf("code2session: %w: %v", errBadUpstream, err)
	}
	if r.ErrCode != 0 {
		msg := r.ErrMsg
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return Session{}, &WxError{Code: int(r.ErrCode), Msg: msg}
	}
	if r.OpenID == "" {
		return Session{}, fmt.Errorf("code2session: %w: success without openid", errBadUpstream)
	}
	return Session{OpenID: r.OpenID, UnionID: r.UnionID}, nil
}

// errcode accepts a JSON number or a numeric string.
type errcode int

func (e *errcode) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*e = 0
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return errors.New("errcode is neither a number nor a numeric string")
	}
	*e = errcode(n)
	return nil
}
