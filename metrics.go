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

// loginResults are the values of wxlogin_logins_total's result label: ok,
// or the error code of the answer.
var loginResults = []string{
	"ok", "invalid_request", "method_not_allowed", "request_too_large", "unsupported_media_type",
	"invalid_code", "user_blocked", "rate_limited", "unavailable", "misconfigured",
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
	inflight atomic.Int64 // logins holding a MAX_INFLIGHT slot
	logins   map[string]*atomic.Uint64

	// Upstream latency: one count per bucket (the last is +Inf, above every
	// bound), made cumulative when written.
	buckets []atomic.Uint64
	sumNano atomic.Int64

	mu       sync.Mutex
	errcodes map[int]uint64 // WeChat errcodes seen, by code
}

func newMetrics(version string) *metrics {
	m := &metrics{
		start:    time.Now(),
		version:  version,
		logins:   make(map[string]*atomic.Uint64, len(loginResults)),
		buckets:  make([]atomic.Uint64, len(latencyBuckets)+1),
		errcodes: map[int]uint64{},
	}
	for _, r := range loginResults {
		m.logins[r] = new(atomic.Uint64)
	}
	return m
}

// login counts one answer of /openid.
func (m *metrics) login(result string) {
	if c, ok := m.logins[result]; ok {
		c.Add(1)
	}
}

// upstream records one call to WeChat: how long it took, and the errcode
// WeChat answered with, if any.
func (m *metrics) upstream(d time.Duration, errcode int) {
	i, _ := slices.BinarySearch(latencyBuckets, d.Seconds())
	m.buckets[i].Add(1)
	m.sumNano.Add(int64(d))
	if errcode != 0 {
		m.mu.Lock()
		m.errcodes[errcode]++
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

	family("wxlogin_logins_total", "counter", "Answers of POST /openid, by result: ok or the error code.")
	for _, r := range loginResults {
		sample("wxlogin_logins_total", label("result", r), float64(m.logins[r].Load()))
	}

	family("wxlogin_wechat_errcodes_total", "counter", "Non-zero errcodes WeChat answered code2Session with.")
	m.mu.Lock()
	codes := make([]int, 0, len(m.errcodes))
	for c := range m.errcodes {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	counts := make([]uint64, len(codes))
	for i, c := range codes {
		counts[i] = m.errcodes[c]
	}
	m.mu.Unlock()
	for i, c := range codes {
		sample("wxlogin_wechat_errcodes_total", label("errcode", strconv.Itoa(c)), float64(counts[i]))
	}

	const hist = "wxlogin_upstream_duration_seconds"
	family(hist, "histogram", "Duration of one call to WeChat's code2Session, retries counted separately.")
	var cum uint64
	for i, bound := range latencyBuckets {
		cum += m.buckets[i].Load()
		sample(hist+"_bucket", label("le", strconv.FormatFloat(bound, 'g', -1, 64)), float64(cum))
	}
	cum += m.buckets[len(latencyBuckets)].Load()
	sample(hist+"_bucket", label("le", "+Inf"), float64(cum))
	sample(hist+"_sum", "", time.Duration(m.sumNano.Load()).Seconds())
	sample(hist+"_count", "", float64(cum))

	family("wxlogin_logins_in_flight", "gauge", "Logins waiting for WeChat now.")
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
