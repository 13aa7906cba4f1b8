package main

import (
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// exposition is /metrics parsed: sample values by their name and labels as
// written, and the TYPE of each family.
type exposition struct {
	samples map[string]float64
	types   map[string]string
	order   []string // sample keys in order of appearance
}

var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? (\S+)$`)

// parseExposition checks the text format line by line: every sample is
// well formed and belongs to a family announced by HELP and TYPE before it.
func parseExposition(t *testing.T, text string) exposition {
	t.Helper()
	e := exposition{samples: map[string]float64{}, types: map[string]string{}}
	helped := map[string]bool{}
	if !strings.HasSuffix(text, "\n") {
		t.Errorf("exposition does not end with a newline")
	}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if f, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, help, _ := strings.Cut(f, " ")
			if help == "" || helped[name] {
				t.Errorf("bad or repeated HELP line %q", line)
			}
			helped[name] = true
			continue
		}
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(f, " ")
			switch typ {
			case "counter", "gauge", "histogram":
			default:
				t.Errorf("bad TYPE line %q", line)
			}
			e.types[name] = typ
			continue
		}
		m := sampleRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("malformed sample line %q", line)
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Errorf("sample %q: value: %v", line, err)
		}
		family := m[1]
		if e.types[family] == "" {
			family = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m[1], "_bucket"), "_sum"), "_count")
		}
		if e.types[family] == "" || !helped[family] {
			t.Errorf("sample %q comes before its family's HELP and TYPE", line)
		}
		if strings.HasSuffix(family, "_total") && e.types[family] != "counter" {
			t.Errorf("%s ends in _total but is a %s", family, e.types[family])
		}
		key := m[1] + m[2]
		if _, dup := e.samples[key]; dup {
			t.Errorf("sample %s appears twice", key)
		}
		e.samples[key] = v
		e.order = append(e.order, key)
	}
	return e
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	s := newTestService(t, nil)
	s.login(t, "abc")
	s.login(t, "def")
	s.login(t, "mock-used")
	s.login(t, "mock-busy") // three calls, each errcode -1
	s.login(t, "bad code")
	s.post(t, "text/plain", "x")

	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type = %q, want text/plain; version=0.0.4", ct)
	}
	e := parseExposition(t, string(body))

	want := map[string]float64{
		`wxlogin_logins_total{appid="` + testAppID + `",result="ok"}`:             2,
		`wxlogin_logins_total{appid="` + testAppID + `",result="invalid_code"}`:   1,
		`wxlogin_logins_total{appid="` + testAppID + `",result="unavailable"}`:    1,
		`wxlogin_logins_total{appid="",result="invalid_request"}`:                 1,
		`wxlogin_logins_total{appid="",result="unsupported_media_type"}`:          1,
		`wxlogin_logins_total{appid="` + testAppID + `",result="upstream_error"}`: 0,
		`wxlogin_wechat_errcodes_total{api="code2session",errcode="40163"}`:       1,
		`wxlogin_wechat_errcodes_total{api="code2session",errcode="-1"}`:          3,
		`wxlogin_phone_requests_total{appid="` + testAppID + `",result="ok"}`:     0,
		`wxlogin_stable_token_total{result="ok"}`:                                 0,
		`wxlogin_upstream_duration_seconds_count`:                                 6,
		`wxlogin_upstream_duration_seconds_bucket{le="+Inf"}`:                     6,
		`wxlogin_logins_in_flight`:                                                0,
		`wxlogin_build_info{version="test"}`:                                      1,
	}
	for k, v := range want {
		if got, ok := e.samples[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if e.types["wxlogin_upstream_duration_seconds"] != "histogram" {
		t.Errorf("wxlogin_upstream_duration_seconds is not a histogram")
	}
	if sum := e.samples["wxlogin_upstream_duration_seconds_sum"]; sum <= 0 {
		t.Errorf("histogram sum = %v, want > 0", sum)
	}
	// Buckets: bounds ascending, counts cumulative (never decreasing).
	prevBound, prevCount := -1.0, -1.0
	for _, k := range e.order {
		if !strings.HasPrefix(k, "wxlogin_upstream_duration_seconds_bucket") {
			continue
		}
		le := strings.TrimSuffix(strings.TrimPrefix(k, `wxlogin_upstream_duration_seconds_bucket{le="`), `"}`)
		bound, err := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
		if err != nil || bound <= prevBound || e.samples[k] < prevCount {
			t.Errorf("bucket %s = %v after le=%v count %v: not ascending and cumulative", k, e.samples[k], prevBound, prevCount)
		}
		prevBound, prevCount = bound, e.samples[k]
	}
	if start := e.samples["process_start_time_seconds"]; time.Since(time.Unix(int64(start), 0)) > time.Minute || start > float64(time.Now().Unix()+1) {
		t.Errorf("process_start_time_seconds = %v, want about now", start)
	}

	// promtool, where installed (Debian's prometheus package), has the last word.
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(string(body))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not installed: checked with our own parser only")
	}

	r := do(t, mustRequest("POST", s.URL+"/metrics"))
	wantError(t, r, 405, "method_not_allowed")
}

func TestMetricsBuckets(t *testing.T) {
	t.Parallel()
	m := newMetrics("v", nil)
	for _, d := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 30 * time.Millisecond, time.Minute} {
		m.upstream(apiCode2Session, d, 0)
	}
	e := parseExposition(t, string(m.appendText(nil)))
	for le, want := range map[string]float64{"0.001": -1, "0.005": 2, "0.025": 2, "0.05": 3, "10": 3, "+Inf": 4} {
		got, ok := e.samples[`wxlogin_upstream_duration_seconds_bucket{le="`+le+`"}`]
		if want == -1 {
			if ok {
				t.Errorf("unexpected bucket le=%s", le)
			}
			continue
		}
		if got != want {
			t.Errorf("bucket le=%s = %v, want %v", le, got, want)
		}
	}
}

func TestLabelEscaping(t *testing.T) {
	t.Parallel()
	if got, want := label("v", "a\"b\\c\nd"), `v="a\"b\\c\nd"`; got != want {
		t.Errorf("label = %s, want %s", got, want)
	}
	e := parseExposition(t, string(newMetrics("1.0 \"quoted\"\nnext\\", nil).appendText(nil)))
	if _, ok := e.samples[`wxlogin_build_info{version="1.0 \"quoted\"\nnext\\"}`]; !ok {
		t.Errorf("build_info with an awkward version is missing or unescaped: %v", e.order)
	}
}
