package main

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The values of each result label that can occur: ok, or an error code the
// endpoint answers — for a request whose app is known, and for one answered
// before that (appid ""). Only these are exposed before they happen; a
// result missing from its list is still counted (and
// TestMetricsCountEveryResult fails), never dropped.
var (
	loginResults = results{
		noApp: []string{"invalid_request", "unknown_app", "method_not_allowed", "request_too_large", "unsupported_media_type"},
		app: []string{"ok", "rate_limited", "unavailable", "invalid_code", "user_blocked",
			"misconfigured", "upstream_error", "upstream_timeout"},
	}
	phoneResults = results{
		noApp: []string{"method_not_allowed", "invalid_token"},
		app: []string{"ok", "invalid_request", "request_too_large", "unsupported_media_type", "rate_limited",
			"unavailable", "invalid_code", "misconfigured", "upstream_error", "upstream_timeout"},
	}
	stableTokenResults = results{noApp: []string{"ok", "unavailable", "misconfigured", "upstream_error", "upstream_timeout"}}
)

// results are the values of a result label that can occur.
type results struct {
	noApp []string // before an app is chosen (appid "")
	app   []string // for a configured app
}

// latencyBuckets are the upper bounds, in seconds, of the upstream latency
// histogram: WeChat answers in tens of milliseconds when healthy, and
// WX_TIMEOUT defaults to 5 s.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// metrics counts what /metrics exposes, in the Prometheus text format,
// with the standard library only.
type metrics struct {
	start   time.Time
	version string
	logins  *counters // by appid and result
	phones  *counters // by appid and result
	stable  *counters // stable_token fetches by result

	// Upstream latency: one count per bucket (the last is +Inf, above every
	// bound), made cumulative when written.
	buckets []atomic.Uint64
	sumNano atomic.Int64

	mu       sync.Mutex
	errcodes map[apiCode]uint64 // WeChat errcodes seen, by API and code
}

type apiCode struct {
	api  string
	code int
}

// counters count results by AppID. The label pairs that can occur are made
// at start, so that the hot path only looks one up; another result is
// counted under a lock.
type counters struct {
	apps  []string    // the appid label values: "" (none chosen) and the configured AppIDs
	fixed [][2]string // the pairs made at start, in the order they are written
	n     map[[2]string]*atomic.Uint64
	mu    sync.Mutex
	extra map[[2]string]uint64
}

func newCounters(apps []string, rs results) *counters {
	c := &counters{apps: append([]string{""}, apps...), n: map[[2]string]*atomic.Uint64{}, extra: map[[2]string]uint64{}}
	for _, a := range c.apps {
		list := rs.app
		if a == "" {
			list = rs.noApp
		}
		for _, r := range list {
			c.fixed = append(c.fixed, [2]string{a, r})
			c.n[[2]string{a, r}] = new(atomic.Uint64)
		}
	}
	return c
}

// add counts one result of app; an AppID that is not configured counts as
// "" (no label value chosen by a client).
func (c *counters) add(app, result string) {
	if n, ok := c.n[[2]string{app, result}]; ok {
		n.Add(1)
		return
	}
	if !slices.Contains(c.apps, app) {
		app = ""
	}
	if n, ok := c.n[[2]string{app, result}]; ok {
		n.Add(1)
		return
	}
	c.mu.Lock()
	c.extra[[2]string{app, result}]++
	c.mu.Unlock()
}

// unlisted are the results counted that their list lacks.
func (c *counters) unlisted() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var r []string
	for k := range c.extra {
		r = append(r, k[1])
	}
	return r
}

func newMetrics(version string, apps []string) *metrics {
	return &metrics{
		start:    time.Now(),
		version:  version,
		logins:   newCounters(apps, loginResults),
		phones:   newCounters(apps, phoneResults),
		stable:   newCounters(nil, stableTokenResults),
		buckets:  make([]atomic.Uint64, len(latencyBuckets)+1),
		errcodes: map[apiCode]uint64{},
	}
}

// login counts one answer of /openid.
func (m *metrics) login(app, result string) { m.logins.add(app, result) }

// phone counts one answer of /phonenumber.
func (m *metrics) phone(app, result string) { m.phones.add(app, result) }

// stableToken counts one stable_token fetch.
func (m *metrics) stableToken(result string) { m.stable.add("", result) }

// upstream records one call to WeChat: which API, how long it took, and
// the errcode WeChat answered with, if any.
func (m *metrics) upstream(api string, d time.Duration, errcode int) {
	i, _ := slices.BinarySearch(latencyBuckets, d.Seconds())
	m.buckets[i].Add(1)
	m.sumNano.Add(int64(d))
	if errcode != 0 {
		m.mu.Lock()
		m.errcodes[apiCode{api, errcode}]++
		m.mu.Unlock()
	}
}

// handleMetrics serves GET /metrics; inflight is the MAX_INFLIGHT gauge.
func handleMetrics(m *metrics, inflight *inflight) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := m.appendText(nil, inflight.now())
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
	})
}

// appendText writes every metric in the Prometheus text exposition format.
func (m *metrics) appendText(b []byte, inflight int64) []byte {
	family := func(name, typ, help string) {
		b = append(b, "# HELP "+name+" "+help+"\n# TYPE "+name+" "+typ+"\n"...)
	}
	sample := func(name, labels string, v float64) {
		b = append(b, name...)
		if labels != "" {
			b = append(b, '{')
			b = append(b, labels...)
			b = append(b, '}')
		}
		b = append(b, ' ')
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
		b = append(b, '\n')
	}

	byApp := func(name, help string, c *counters) {
		family(name, "counter", help)
		labels := func(a, r string) string {
			l := label("result", r)
			if len(c.apps) > 1 {
				l = label("appid", a) + "," + l
			}
			return l
		}
		for _, k := range c.fixed {
			sample(name, labels(k[0], k[1]), float64(c.n[k].Load()))
		}
		c.mu.Lock()
		extra := make([][2]string, 0, len(c.extra))
		for k := range c.extra {
			extra = append(extra, k)
		}
		slices.SortFunc(extra, func(x, y [2]string) int { return strings.Compare(x[0]+"\x00"+x[1], y[0]+"\x00"+y[1]) })
		for _, k := range extra {
			sample(name, labels(k[0], k[1]), float64(c.extra[k]))
		}
		c.mu.Unlock()
	}
	byApp("wxlogin_logins_total", "Answers of POST /openid, by AppID (\"\" when none was chosen) and result: ok or the error code.", m.logins)
	byApp("wxlogin_phone_requests_total", "Answers of POST /phonenumber, by AppID and result: ok or the error code.", m.phones)
	byApp("wxlogin_stable_token_total", "Fetches of an access_token with stable_token, by result: ok or the error code.", m.stable)

	family("wxlogin_wechat_errcodes_total", "counter", "Non-zero errcodes WeChat answered, by API.")
	m.mu.Lock()
	codes := make([]apiCode, 0, len(m.errcodes))
	for c := range m.errcodes {
		codes = append(codes, c)
	}
	slices.SortFunc(codes, func(a, b apiCode) int {
		if a.api != b.api {
			return strings.Compare(a.api, b.api)
		}
		return a.code - b.code
	})
	counts := make([]uint64, len(codes))
	for i, c := range codes {
		counts[i] = m.errcodes[c]
	}
	m.mu.Unlock()
	for i, c := range codes {
		sample("wxlogin_wechat_errcodes_total", label("api", c.api)+","+label("errcode", strconv.Itoa(c.code)), float64(counts[i]))
	}

	const hist = "wxlogin_upstream_duration_seconds"
	family(hist, "histogram", "Duration of one call to WeChat (code2Session, stable_token, getuserphonenumber), retries counted separately.")
	var cum uint64
	for i, bound := range latencyBuckets {
		cum += m.buckets[i].Load()
		sample(hist+"_bucket", label("le", strconv.FormatFloat(bound, 'g', -1, 64)), float64(cum))
	}
	cum += m.buckets[len(latencyBuckets)].Load()
	sample(hist+"_bucket", label("le", "+Inf"), float64(cum))
	sample(hist+"_sum", "", time.Duration(m.sumNano.Load()).Seconds())
	sample(hist+"_count", "", float64(cum))

	family("wxlogin_logins_in_flight", "gauge", "Logins and phone requests waiting for WeChat now.")
	sample("wxlogin_logins_in_flight", "", float64(inflight))

	family("wxlogin_build_info", "gauge", "Always 1; the version label says which build runs.")
	sample("wxlogin_build_info", label("version", m.version), 1)

	family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.")
	sample("process_start_time_seconds", "", float64(m.start.UnixNano())/1e9)
	return b
}

// label renders name="value" with the value escaped as the text format
// requires: backslash, double quote and newline.
func label(name, value string) string {
	var sb strings.Builder
	sb.WriteString(name + `="`)
	for _, c := range []byte(value) {
		switch c {
		case '\\':
			sb.WriteString(`\\`)
		case '"':
			sb.WriteString(`\"`)
		case '\n':
			sb.WriteString(`\n`)
		default:
			sb.WriteByte(c)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}
