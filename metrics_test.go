package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"wxlogin/internal/wechat"
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
func parseExposition(t testing.TB, text string) exposition {
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

// family lists the samples of one metric family, in order.
func (e exposition) family(name string) []string {
	var keys []string
	for _, k := range e.order {
		if k == name || strings.HasPrefix(k, name+"{") {
			keys = append(keys, k)
		}
	}
	return keys
}

// getMetrics GETs /metrics and parses it.
func getMetrics(t testing.TB, base string) (exposition, string) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type = %q, want text/plain; version=0.0.4", ct)
	}
	return parseExposition(t, string(body)), string(body)
}

// Metric families counted by result.
const (
	loginsFamily = "wxlogin_logins_total"
	phonesFamily = "wxlogin_phone_requests_total"
	stableFamily = "wxlogin_stable_token_total"
)

// seriesKey is a sample's key as /metrics writes it: with the appid label
// for logins and phone requests, without for stable_token.
func seriesKey(family, app, result string) string {
	if family == stableFamily {
		return family + `{result="` + result + `"}`
	}
	return family + `{appid="` + app + `",result="` + result + `"}`
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	s.login(t, "abc")
	s.login(t, "def")
	s.login(t, wechat.MockUsed)
	s.login(t, wechat.MockBusy) // three calls, each errcode -1
	s.login(t, "bad code")
	s.post(t, "text/plain", "x")

	e, body := getMetrics(t, s.URL)
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
	for _, k := range e.family("wxlogin_upstream_duration_seconds_bucket") {
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
		cmd.Stdin = strings.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not installed: checked with our own parser only")
	}

	wantError(t, do(t, mustRequest("POST", s.URL+"/metrics")), 405, "method_not_allowed")
	if h := do(t, mustRequest("HEAD", s.URL+"/metrics")); h.status != 200 {
		t.Errorf("HEAD /metrics = %d, want 200", h.status)
	}
}

func TestMetricsBuckets(t *testing.T) {
	t.Parallel()
	m := newMetrics("v", nil)
	for _, d := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 30 * time.Millisecond, time.Minute} {
		m.upstream(wechat.APICode2Session, d, 0)
	}
	e := parseExposition(t, string(m.appendText(nil, 0)))
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
	if got := e.samples["wxlogin_upstream_duration_seconds_count"]; got != 4 {
		t.Errorf("histogram count = %v, want 4", got)
	}
	if got, want := e.samples["wxlogin_upstream_duration_seconds_sum"], (time.Minute + 36*time.Millisecond).Seconds(); got != want {
		t.Errorf("histogram sum = %v, want %v", got, want)
	}
}

func TestLabelEscaping(t *testing.T) {
	t.Parallel()
	if got, want := label("v", "a\"b\\c\nd"), `v="a\"b\\c\nd"`; got != want {
		t.Errorf("label = %s, want %s", got, want)
	}
	e := parseExposition(t, string(newMetrics("1.0 \"quoted\"\nnext\\", nil).appendText(nil, 0)))
	if _, ok := e.samples[`wxlogin_build_info{version="1.0 \"quoted\"\nnext\\"}`]; !ok {
		t.Errorf("build_info with an awkward version is missing or unescaped: %v", e.order)
	}
}

// possibleResults are the results each endpoint can answer, worked out from
// the SPEC's order of checks rather than from metrics.go: before the app is
// known ("" below), and once it is.
var possibleResults = map[string]map[bool][]string{
	// /openid: method → Content-Type → size → body and code → app, then
	// RATE_LIMIT → MAX_INFLIGHT → WeChat for a chosen app.
	loginsFamily: {
		false: {"method_not_allowed", "unsupported_media_type", "request_too_large", "invalid_request", "unknown_app"},
		true: {"ok", "rate_limited", "unavailable", "invalid_code", "user_blocked", "misconfigured",
			"upstream_error", "upstream_timeout"},
	},
	// /phonenumber: method → token, then everything else for the token's app.
	phonesFamily: {
		false: {"method_not_allowed", "invalid_token"},
		true: {"ok", "unsupported_media_type", "request_too_large", "invalid_request", "rate_limited", "unavailable",
			"invalid_code", "misconfigured", "upstream_error", "upstream_timeout"},
	},
	// stable_token fetches, which name no app.
	stableFamily: {false: {"ok", "unavailable", "misconfigured", "upstream_error", "upstream_timeout"}},
}

// TestMetricsNoImpossibleSeries: before anything happened, /metrics shows
// every result that can occur at zero, and no series that never can.
func TestMetricsNoImpossibleSeries(t *testing.T) {
	t.Parallel()
	for _, apps := range [][]wechat.App{testApps, {{ID: shopAppA, Secret: "a"}, {ID: staffAppA, Secret: "b"}}} {
		s := phoneService(t, withConfig(func(c *Config) { c.Apps = apps }))
		e, _ := getMetrics(t, s.URL)
		want := map[string]bool{}
		for family, byApp := range possibleResults {
			for _, r := range byApp[false] {
				want[seriesKey(family, "", r)] = true
			}
			for _, a := range apps {
				for _, r := range byApp[true] {
					want[seriesKey(family, a.ID, r)] = true
				}
			}
		}
		for _, family := range []string{loginsFamily, phonesFamily, stableFamily} {
			for _, k := range e.family(family) {
				switch {
				case !want[k]:
					t.Errorf("/metrics exposes %s, which can never occur", k)
				case e.samples[k] != 0:
					t.Errorf("%s = %v before any request, want 0", k, e.samples[k])
				}
				delete(want, k)
			}
		}
		for k := range want {
			t.Errorf("/metrics lacks %s, which can occur", k)
		}
		// The examples the SPEC's lists rule out, by name.
		for _, k := range []string{
			seriesKey(stableFamily, "", "unknown_app"),
			seriesKey(stableFamily, "", "invalid_token"),
			seriesKey(stableFamily, "", "rate_limited"),
			seriesKey(loginsFamily, apps[0].ID, "invalid_token"),
			seriesKey(loginsFamily, "", "invalid_token"),
			seriesKey(loginsFamily, "", "ok"),
			seriesKey(phonesFamily, apps[0].ID, "user_blocked"),
			seriesKey(phonesFamily, apps[0].ID, "unknown_app"),
			seriesKey(phonesFamily, "", "ok"),
		} {
			if _, ok := e.samples[k]; ok {
				t.Errorf("/metrics exposes %s, which can never occur", k)
			}
		}
	}
}

// tryDo is do for another goroutine than the test's: it returns its
// failure instead of failing the test.
func tryDo(req *http.Request) (answer, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	return a, json.Unmarshal(raw, &a.body)
}

// TestMetricsCountEveryResult drives every outcome /openid, /phonenumber
// and stable_token can have — every row of the SPEC's error tables, through
// the fake WeChat, intercepted answers and bad requests — and checks that
// each was counted under its own listed result: none is unlisted, each
// series shows exactly what happened, and every series exposed occurred.
func TestMetricsCountEveryResult(t *testing.T) {
	t.Parallel()
	const other = staffAppA
	apps := []wechat.App{{ID: testAppID, Secret: testSecret}, {ID: other, Secret: "staff-secret"}}
	s := phoneService(t, withMaxInflight(3), withConfig(func(c *Config) {
		c.Apps = apps
		c.Timeout = 500 * time.Millisecond
		c.RateLimit = rate{1, time.Hour}
		c.PhoneLimit = rate{1, time.Hour}
		if err := prefixes(&c.TrustedProxies)("127.0.0.1"); err != nil {
			panic(err)
		}
	}))

	// WeChat: a fault named by the code (e<errcode>_… or a word), else the
	// fake's own answer; stable_token's answer is set per app.
	fallback := wechat.NewFake(wechat.FakeOptions{Apps: apps})
	entered, release := make(chan struct{}, 3), make(chan struct{})
	scripted := func(code string) http.HandlerFunc {
		name, _, _ := strings.Cut(code, "_")
		if n, err := strconv.Atoi(strings.TrimPrefix(name, "e")); err == nil && strings.HasPrefix(name, "e") {
			return func(w http.ResponseWriter, r *http.Request) { wechat.AnswerError(w, n) }
		}
		switch name {
		case "garbage":
			return stringAnswerA("<html>bad gateway</html>")
		case "http500":
			return func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", 500) }
		case "empty": // success without openid, or without phone_info
			return stringAnswerA(`{"errcode":0,"errmsg":"ok"}`)
		case "otherapp":
			return stringAnswerA(phoneAnswer("13800138000", "wxffffffffffffffff"))
		case "hangup":
			return hangUpA
		case "hang":
			return func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
		case "slow":
			return func(w http.ResponseWriter, r *http.Request) {
				entered <- struct{}{}
				select {
				case <-release:
				case <-r.Context().Done():
				}
				fallback.ServeHTTP(w, r)
			}
		}
		return nil
	}
	readBody := func(r *http.Request) []byte {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		return b
	}
	s.wechat.Intercept(wechat.Code2SessionPath, func(w http.ResponseWriter, r *http.Request) {
		if h := scripted(r.URL.Query().Get("js_code")); h != nil {
			h(w, r)
			return
		}
		fallback.ServeHTTP(w, r)
	})
	s.wechat.Intercept(wechat.PhoneNumberPath, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Code string `json:"code"`
		}
		json.Unmarshal(readBody(r), &req)
		if h := scripted(req.Code); h != nil {
			h(w, r)
			return
		}
		fallback.ServeHTTP(w, r)
	})
	var mu sync.Mutex
	stableScript := map[string]http.HandlerFunc{}
	okFetches := 0
	s.wechat.Intercept(wechat.StableTokenPath, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			AppID string `json:"appid"`
		}
		json.Unmarshal(readBody(r), &req)
		mu.Lock()
		h := stableScript[req.AppID]
		if h == nil {
			okFetches++ // the fake hands out a token
		}
		mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		fallback.ServeHTTP(w, r)
	})
	setStable := func(app string, h http.HandlerFunc) {
		mu.Lock()
		defer mu.Unlock()
		stableScript[app] = h
	}

	// Every request comes through the trusted proxy from a client address
	// of its own, so RATE_LIMIT (1 an hour) limits only where a test means
	// it to.
	addrs := 0
	fresh := func() string {
		addrs++
		return fmt.Sprintf("203.0.%d.%d", addrs/200, addrs%200+1)
	}
	request := func(method, path, tok, contentType, body, from string) *http.Request {
		req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		req.Header.Set("X-Forwarded-For", from)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		return req
	}
	loginReq := func(code, app, from string) *http.Request {
		body := `{"code":"` + code + `"}`
		if app != "" {
			body = `{"code":"` + code + `","appid":"` + app + `"}`
		}
		return request("POST", "/openid", "", "application/json", body, from)
	}
	phoneReq := func(tok, code, from string) *http.Request {
		return request("POST", "/phonenumber", tok, "application/json", `{"code":"`+code+`"}`, from)
	}

	// want tallies what each answer must have counted.
	want := map[string]float64{}
	check := func(a answer, family, app string, status int, errCode string) {
		t.Helper()
		result := "ok"
		if status == 200 {
			if a.status != 200 {
				t.Fatalf("answer = %d %s, want 200", a.status, a.raw)
			}
		} else {
			wantError(t, a, status, errCode)
			result = errCode
		}
		want[seriesKey(family, app, result)]++
	}
	users := 0
	tokenFor := func(app, from string) string {
		users++
		a := do(t, loginReq(fmt.Sprintf("user%d", users), app, from))
		check(a, loginsFamily, app, 200, "")
		return a.str("token")
	}
	big := `{"code":"` + strings.Repeat("a", 5000) + `"}`

	// /openid refused before an app is chosen.
	check(do(t, request("GET", "/openid", "", "", "", fresh())), loginsFamily, "", 405, "method_not_allowed")
	check(do(t, request("POST", "/openid", "", "text/plain", `{"code":"abc"}`, fresh())), loginsFamily, "", 415, "unsupported_media_type")
	check(do(t, request("POST", "/openid", "", "application/json", big, fresh())), loginsFamily, "", 413, "request_too_large")
	check(do(t, loginReq("bad code", testAppID, fresh())), loginsFamily, "", 400, "invalid_request")
	check(do(t, loginReq("abc", "", fresh())), loginsFamily, "", 400, "invalid_request") // two apps, none named
	check(do(t, loginReq("abc", "wxffffffffffffffff", fresh())), loginsFamily, "", 400, "unknown_app")

	// RATE_LIMIT on /openid.
	from := fresh()
	check(do(t, loginReq("abc", testAppID, from)), loginsFamily, testAppID, 200, "")
	check(do(t, loginReq("abc", testAppID, from)), loginsFamily, testAppID, 429, "rate_limited")

	// Everything WeChat can answer to code2Session.
	type outcome struct {
		code   string
		status int
		err    string
	}
	loginOutcomes := []outcome{
		{"abc", 200, ""}, {"e40029", 401, "invalid_code"}, {"e40163", 401, "invalid_code"}, {wechat.MockUsed, 401, "invalid_code"},
		{"e40226", 403, "user_blocked"}, {"e45011", 429, "rate_limited"}, {"e-1", 503, "unavailable"},
		{"e89503", 502, "upstream_error"}, {"e99999", 502, "upstream_error"}, {"garbage", 502, "upstream_error"},
		{"http500", 502, "upstream_error"}, {"empty", 502, "upstream_error"}, {"hangup", 502, "upstream_error"},
	}
	for _, c := range []int{40002, 40013, 40125, 40164, 41002, 41004, 48001} {
		loginOutcomes = append(loginOutcomes, outcome{fmt.Sprintf("e%d", c), 500, "misconfigured"})
	}
	for _, o := range loginOutcomes {
		check(do(t, loginReq(o.code, testAppID, fresh())), loginsFamily, testAppID, o.status, o.err)
	}
	check(do(t, loginReq("abc", other, fresh())), loginsFamily, other, 200, "")

	// /phonenumber refused before WeChat.
	tok := tokenFor(testAppID, fresh())
	check(do(t, request("GET", "/phonenumber", tok, "", "", fresh())), phonesFamily, "", 405, "method_not_allowed")
	check(do(t, phoneReq("", "p", fresh())), phonesFamily, "", 401, "invalid_token")
	check(do(t, phoneReq(tok+"x", "p", fresh())), phonesFamily, "", 401, "invalid_token")
	check(do(t, request("POST", "/phonenumber", tok, "text/plain", `{"code":"p"}`, fresh())), phonesFamily, testAppID, 415, "unsupported_media_type")
	check(do(t, request("POST", "/phonenumber", tok, "application/json", big, fresh())), phonesFamily, testAppID, 413, "request_too_large")
	check(do(t, phoneReq(tok, "bad code", fresh())), phonesFamily, testAppID, 400, "invalid_request")

	// MAX_INFLIGHT (3): three slow logins hold every slot.
	tokBusy := tokenFor(testAppID, fresh())
	held := make(chan answer, 3)
	for i := range 3 {
		req := loginReq(fmt.Sprintf("slow_%d", i), testAppID, fresh())
		go func() {
			a, err := tryDo(req)
			if err != nil {
				a.raw = err.Error()
			}
			held <- a
		}()
	}
	for range 3 {
		select {
		case <-entered:
		case <-time.After(5 * time.Second):
			t.Fatal("the slow logins never reached WeChat")
		}
	}
	check(do(t, loginReq("abc", testAppID, fresh())), loginsFamily, testAppID, 503, "unavailable")
	check(do(t, phoneReq(tokBusy, "p", fresh())), phonesFamily, testAppID, 503, "unavailable")
	close(release)
	for range 3 {
		check(<-held, loginsFamily, testAppID, 200, "")
	}

	// stable_token fails in every way it can, before any token is cached:
	// each phone request fetches anew.
	stableOutcomes := []outcome{
		{"e-1", 503, "unavailable"}, {"e45009", 503, "unavailable"}, {"e45011", 503, "unavailable"},
		{"e48001", 502, "upstream_error"}, {"e40029", 502, "upstream_error"}, {"garbage", 502, "upstream_error"},
		{"hangup", 502, "upstream_error"}, {"empty", 502, "upstream_error"},
	}
	for _, c := range []int{40002, 40013, 40125, 40164, 41002, 41004, 89503} {
		stableOutcomes = append(stableOutcomes, outcome{fmt.Sprintf("e%d", c), 500, "misconfigured"})
	}
	for _, o := range stableOutcomes {
		setStable(testAppID, scripted(o.code))
		check(do(t, phoneReq(tokenFor(testAppID, fresh()), "p", fresh())), phonesFamily, testAppID, o.status, o.err)
		want[seriesKey(stableFamily, "", o.err)]++
	}
	setStable(testAppID, nil)

	// A number; PHONE_LIMIT (1 an hour) for that user; RATE_LIMIT for an
	// address that logged in just now.
	user := tokenFor(testAppID, fresh())
	check(do(t, phoneReq(user, "pok1", fresh())), phonesFamily, testAppID, 200, "")
	check(do(t, phoneReq(user, "pok2", fresh())), phonesFamily, testAppID, 429, "rate_limited")
	from = fresh()
	check(do(t, phoneReq(tokenFor(testAppID, from), "pok3", from)), phonesFamily, testAppID, 429, "rate_limited")

	// Everything WeChat can answer to getuserphonenumber.
	phoneOutcomes := []outcome{
		{"pok4", 200, ""}, {"e40029", 401, "invalid_code"}, {wechat.MockInvalid, 401, "invalid_code"},
		{"e45011", 429, "rate_limited"}, {"e-1", 503, "unavailable"},
		{"e40001", 502, "upstream_error"}, {"e42001", 502, "upstream_error"}, {"e40163", 502, "upstream_error"},
		{"e40226", 502, "upstream_error"}, {"e99999", 502, "upstream_error"}, {"empty", 502, "upstream_error"},
		{"otherapp", 502, "upstream_error"}, {"garbage", 502, "upstream_error"}, {"http500", 502, "upstream_error"},
		{"hangup", 502, "upstream_error"},
	}
	for _, c := range []int{40002, 40013, 40125, 40164, 41002, 41004, 48001, 89503} {
		phoneOutcomes = append(phoneOutcomes, outcome{fmt.Sprintf("e%d", c), 500, "misconfigured"})
	}
	for _, o := range phoneOutcomes {
		check(do(t, phoneReq(tokenFor(testAppID, fresh()), o.code, fresh())), phonesFamily, testAppID, o.status, o.err)
	}

	// WX_TIMEOUT, all at once: a login, a phone request, and a phone request
	// of the other app whose stable_token never answers.
	reqs := []*http.Request{
		loginReq("hang", testAppID, fresh()),
		phoneReq(tokenFor(testAppID, fresh()), "hang", fresh()),
		phoneReq(tokenFor(other, fresh()), "pother", fresh()),
	}
	setStable(other, scripted("hang"))
	done := make([]chan answer, len(reqs))
	for i, req := range reqs {
		done[i] = make(chan answer, 1)
		go func() {
			a, err := tryDo(req)
			if err != nil {
				a.raw = err.Error()
			}
			done[i] <- a
		}()
	}
	check(<-done[0], loginsFamily, testAppID, 504, "upstream_timeout")
	check(<-done[1], phonesFamily, testAppID, 504, "upstream_timeout")
	check(<-done[2], phonesFamily, other, 504, "upstream_timeout")
	want[seriesKey(stableFamily, "", "upstream_timeout")]++

	// The stable_token fetch that timed out is counted when it ends, on its
	// own goroutine: wait for it, within bounds.
	timedOut := s.metrics.stable.n[[2]string{"", "upstream_timeout"}]
	for deadline := time.Now().Add(5 * time.Second); timedOut.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	want[seriesKey(stableFamily, "", "ok")] = float64(okFetches)
	mu.Unlock()

	// Nothing was counted outside the lists.
	for name, c := range map[string]*counters{"logins": s.metrics.logins, "phones": s.metrics.phones, "stable": s.metrics.stable} {
		if u := c.unlisted(); len(u) != 0 {
			t.Errorf("%s counted results missing from its list: %v", name, u)
		}
	}
	// Each series shows exactly what happened, and every one exposed for
	// testAppID or no app happened.
	e, _ := getMetrics(t, s.URL)
	for _, family := range []string{loginsFamily, phonesFamily, stableFamily} {
		for _, k := range e.family(family) {
			switch got := e.samples[k]; {
			case want[k] == 0 && !strings.Contains(k, `appid="`+other+`"`): // the other app serves only a few outcomes
				t.Errorf("%s is exposed but never occurred, though every outcome was driven", k)
			case got != want[k]:
				t.Errorf("%s = %v, want %v", k, got, want[k])
			}
		}
	}
	for k, v := range want {
		if _, ok := e.samples[k]; !ok {
			t.Errorf("%s (%v) is missing from /metrics", k, v)
		}
	}
	// WeChat's errcodes, by API: each call counted.
	for k, v := range map[string]float64{
		`wxlogin_wechat_errcodes_total{api="code2session",errcode="-1"}`:       3,
		`wxlogin_wechat_errcodes_total{api="code2session",errcode="40163"}`:    2,
		`wxlogin_wechat_errcodes_total{api="stable_token",errcode="45009"}`:    1,
		`wxlogin_wechat_errcodes_total{api="getuserphonenumber",errcode="-1"}`: 3,
		// Refused, refetched, refused again.
		`wxlogin_wechat_errcodes_total{api="getuserphonenumber",errcode="40001"}`: 2,
	} {
		if got := e.samples[k]; got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
}
