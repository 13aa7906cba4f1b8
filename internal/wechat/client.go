// Package wechat is wxlogin's client of WeChat's server APIs —
// code2Session, stable_token, getuserphonenumber and the web login's
// sns/oauth2/access_token — and the fake WeChat that mock mode and the tests
// talk to through that same client.
//
// Only this package holds an AppSecret or an access_token. Its errors are
// a *Error for an errcode, ErrBadAnswer for an answer that is not what the
// API promises, or a transport error (a deadline shows as
// context.DeadlineExceeded); none contains a secret, a code or a token.
package wechat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultBaseURL is WeChat's API base.
const DefaultBaseURL = "https://api.weixin.qq.com"

const (
	maxAnswerBytes = 64 << 10
	maxAttempts    = 3 // one call and at most 2 retries
	maxErrmsg      = 200
)

// App is one WeChat app — a mini-program, a website app, an official
// account — with its AppSecret.
type App struct {
	ID     string
	Secret string
}

// Options configure a Client. Zero values take the defaults.
type Options struct {
	BaseURL string // WeChat API base without a trailing slash; DefaultBaseURL if empty
	Apps    []App
	// AnyAppSecret, when set, serves an AppID that Apps does not list with
	// this secret: mock mode without WX_APPID takes whatever AppID a
	// mini-program names.
	AnyAppSecret string
	Timeout      time.Duration // one request's whole upstream work, retries included; 5 s if zero
	MaxIdle      int           // idle connections kept to WeChat: size it for the requests in flight
	// Observe is told of every call to WeChat: the API, how long it took,
	// and the errcode it answered with (0 for none).
	Observe func(api string, d time.Duration, errcode int)
	// TokenFetched is told of every access_token fetch, with its error.
	TokenFetched func(err error)

	// Test hooks.
	Transport  http.RoundTripper // instead of the tuned transport
	RetryDelay time.Duration     // first backoff; 100 ms if zero
	Now        func() time.Time  // the access_token cache's clock
}

// Client calls WeChat through one shared, tuned transport and one round
// trip, do.
type Client struct {
	base       string
	secrets    map[string]string // AppID → AppSecret
	c2sQuery   map[string]string // AppID → escaped appid, secret and grant_type of code2Session
	anySecret  string
	transport  http.RoundTripper
	timeout    time.Duration
	retryDelay time.Duration
	observe    func(api string, d time.Duration, errcode int)
	tokens     *accessTokens
}

// NewClient returns the client for o.Apps.
func NewClient(o Options) *Client {
	c := &Client{
		base:       strings.TrimRight(o.BaseURL, "/"),
		secrets:    map[string]string{},
		c2sQuery:   map[string]string{},
		anySecret:  o.AnyAppSecret,
		transport:  o.Transport,
		timeout:    o.Timeout,
		retryDelay: o.RetryDelay,
		observe:    o.Observe,
	}
	if c.base == "" {
		c.base = DefaultBaseURL
	}
	if c.transport == nil {
		c.transport = newTransport(max(o.MaxIdle, 2))
	}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	if c.retryDelay <= 0 {
		c.retryDelay = 100 * time.Millisecond
	}
	for _, a := range o.Apps {
		c.secrets[a.ID] = a.Secret
		c.c2sQuery[a.ID] = c2sQuery(a)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	c.tokens = newAccessTokens(c.stableToken, c.timeout, now, o.TokenFetched)
	return c
}

// secret is the AppSecret of appID.
func (c *Client) secret(appID string) string {
	if s, ok := c.secrets[appID]; ok {
		return s
	}
	return c.anySecret
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

// retry runs call once, and again at most twice where WeChat cannot have
// consumed anything (errcode -1, failure to connect), within ctx.
func (c *Client) retry(ctx context.Context, call func() error) error {
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
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retryDelay << (attempt - 1)
	return d/2 + rand.N(d/2+1)
}

// retryable reports whether err proves WeChat never acted on the request:
// it was busy (errcode -1, "try again"), or we never connected at all.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if we, ok := errors.AsType[*Error](err); ok {
		return we.Code == CodeBusy
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// jsonContentType is the Content-Type of a POST to WeChat; shared, as
// net/http only reads it.
var jsonContentType = []string{"application/json; charset=utf-8"}

// do makes one call to WeChat: a GET when body is nil, else a POST of the
// JSON body. It reads at most 64 KiB of the answer into into and returns a
// *Error for a non-zero errcode. sensitive are the values (secret, code,
// access_token) scrubbed from every error; the URL, which holds some of
// them, never appears in one.
func (c *Client) do(ctx context.Context, api, u string, body []byte, into reply, sensitive ...string) (err error) {
	if c.observe != nil {
		start := time.Now()
		defer func() { c.observe(api, time.Since(start), Errcode(err)) }()
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
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return transportError(ctx, api, err, sensitive)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %w: HTTP status %d", api, ErrBadAnswer, resp.StatusCode)
	}
	if len(b) > maxAnswerBytes {
		return fmt.Errorf("%s: %w: body over %d bytes", api, ErrBadAnswer, maxAnswerBytes)
	}
	err = into.read(b)
	if we, ok := errors.AsType[*Error](err); ok {
		we.API = api
		we.Msg = truncate(scrub(we.Msg, sensitive), maxErrmsg)
	} else if err != nil {
		err = fmt.Errorf("%s: %w: %v", api, ErrBadAnswer, err)
	}
	return err
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

// truncate cuts s to at most n bytes, at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// scrubbedError carries a cleaned message while still unwrapping to the
// original error, so callers can test its kind.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// identityEncoding is the request's transfer encoding: no chunking. Shared,
// as net/http only reads it.
var identityEncoding = []string{"identity"}

// noReplay is an empty request body that http.Transport cannot rewind.
type noReplay struct{}

func (noReplay) Read([]byte) (int, error) { return 0, io.EOF }
func (noReplay) Close() error             { return nil }

// WriteTo lets io.Copy skip its 32 KiB buffer for a body that is empty.
func (noReplay) WriteTo(io.Writer) (int64, error) { return 0, nil }
