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

// results are the values of the result label of logins and phone
// requests: ok, or the error code of the answer.
var results = []string{
	"ok", "invalid_request", "unknown_app", "method_not_allowed", "request_too_large", "unsupported_media_type",
	"invalid_token", "invalid_code", "user_blocked", "rate_limited", "unavailable", "misconfigured",
	"upstream_error", "upstream_timeout",
}

// latencyBuckets are the upper bounds, in seconds, of the upstream latency
// histogram: WeChat answers in tens of milliseconds when healthy, and
// WX_TIMEOUT defaults to 5 s.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// metrics counts what /metrics exposes, in the Prometheus text format,
// with the standard library only.
type metrics struct {
	start    time.Time
	version  string
	apps     []string     // the appid label values: the configured AppIDs and "" (not known)
	inflight atomic.Int64 // requests holding a MAX_INFLIGHT slot
	logins   counters     // by appid and result
	phones   counters     // by appid and result
	stable   counters     // stable_token fetches by result ("" app)

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

// counters is a fixed set of counters by AppID and result, made at start,
// so that the hot path only looks one up.
type counters map[[2]string]*atomic.Uint64

func newCounters(apps []string) counters {
	c := counters{}
	for _, a := range apps {
		for _, r := range results {
			c[[2]string{a, r}] = new(atomic.Uint64)
		}
	}
	return c
}

// add counts one result of app; an AppID that is not configured counts as
// "" (no label value chosen by a client).
func (c counters) add(app, result string) {
	if n, ok := c[[2]string{app, result}]; ok {
		n.Add(1)
	} else if n, ok := c[[2]string{"", result}]; ok {
		n.Add(1)
	}
}

func newMetrics(version string, apps []string) *metrics {
	labels := append([]string{""}, apps...)
	return &metrics{
		start:    time.Now(),
		version:  version,
		apps:     labels,
		logins:   newCounters(labels),
		phones:   newCounters(labels),
		stable:   newCounters([]string{""}),
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

func handleMetrics(m *metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := m.appendText(nil)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
	})
}

// appendText writes every metric in the Prometheus text exposition format.
func (m *metrics) appendText(b []byte) []byte {
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

	byApp := func(name, help string, c counters, apps []string) {
		family(name, "counter", help)
		for _, a := range apps {
			for _, r := range results {
				l := label("result", r)
				if a != "" || len(apps) > 1 {
					l = label("appid", a) + "," + l
				}
				sample(name, l, float64(c[[2]string{a, r}].Load()))
			}
		}
	}
	byApp("wxlogin_logins_total", "Answers of POST /openid, by AppID (\"\" when none was chosen) and result: ok or the error code.", m.logins, m.apps)
	byApp("wxlogin_phone_requests_total", "Answers of POST /phonenumber, by AppID and result: ok or the error code.", m.phones, m.apps)
	byApp("wxlogin_stable_token_total", "Fetches of an access_token with stable_token, by result: ok or the error code.", m.stable, []string{""})

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
	sample("wxlogin_logins_in_flight", "", float64(m.inflight.Load()))

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
