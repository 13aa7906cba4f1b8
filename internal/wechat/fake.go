package wechat

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// MockSecret is the AppSecret the service and its fake WeChat share in mock
// mode. It guards nothing; it lets the fake check that the client sends it.
const MockSecret = "wxlogin-mock-secret"

// The mock codes make the fake answer WeChat's errors, so that a front-end
// developer sees each one without a real account. Each gives its answer
// every time, for any user.
const (
	MockInvalid   = "mock-invalid"   // 40029, login and phone
	MockUsed      = "mock-used"      // 40163, login
	MockRisky     = "mock-risky"     // 40226, login
	MockRateLimit = "mock-ratelimit" // 45011, login and phone
	MockBusy      = "mock-busy"      // -1, login and phone
)

// mockErrors are the answers of the mock codes, by API.
var mockErrors = map[string]map[string]int{
	APICode2Session: {MockInvalid: CodeInvalidCode, MockUsed: CodeCodeUsed, MockRisky: CodeHighRisk, MockRateLimit: CodeRateLimited, MockBusy: CodeBusy},
	APIPhoneNumber:  {MockInvalid: CodeInvalidCode, MockRateLimit: CodeRateLimited, MockBusy: CodeBusy},
}

// errmsgs are WeChat's texts for the errcodes the fake answers.
var errmsgs = map[int]string{
	CodeBusy:               "system error",
	CodeInvalidCredential:  "invalid credential, access_token is invalid or not latest",
	CodeInvalidGrantType:   "invalid grant_type",
	CodeInvalidAppID:       "invalid appid",
	CodeInvalidCode:        "invalid code",
	CodeInvalidSecret:      "invalid appsecret",
	CodeCodeUsed:           "code been used",
	CodeHighRisk:           "high risk user, access denied",
	CodeAppIDMissing:       "appid missing",
	CodeSecretMissing:      "appsecret missing",
	CodeAccessTokenExpired: "access_token expired",
	CodeRateLimited:        "api minute-quota reach limit, mustslower retry next minute",
	CodeDataFormat:         "data format error",
}

// FakeOptions configure a Fake.
type FakeOptions struct {
	Apps []App // the apps it knows; with none, any well-formed AppID with MockSecret
	// Record keeps every request, for Calls. Mock mode leaves it off: a
	// long-running process would keep them all.
	Record   bool
	TokenTTL time.Duration    // expires_in of a new access_token; 7200 s if zero
	Now      func() time.Time // time.Now if nil
}

// Fake is a WeChat of its own, served over HTTP: mock mode runs it on
// loopback, and tests point the real client at it. It behaves like WeChat
// where that matters to a client: JSON served as text/plain, errors with
// HTTP 200, a session_key the client must never pass on, access_tokens
// that expire and that a forced refresh replaces, phone codes that work
// once. A test may answer any path itself (Intercept) and read what the
// fake received (Calls).
type Fake struct {
	secrets  map[string]string // AppID → AppSecret; nil: any AppID
	record   bool
	tokenTTL time.Duration
	now      func() time.Time

	mu         sync.Mutex
	calls      []Call
	intercepts map[string]http.HandlerFunc
	tokens     map[string]mockToken // AppID → its current access_token
	usedCodes  map[string]bool      // phone codes already exchanged
}

// Call is one request the fake received.
type Call struct {
	Method string
	Path   string
	Query  url.Values
	Body   []byte
}

// JSON decodes the call's body, for a test to compare.
func (c Call) JSON() map[string]any {
	var m map[string]any
	json.Unmarshal(c.Body, &m)
	return m
}

type mockToken struct {
	value   string
	expires time.Time
}

// NewFake returns a fake WeChat.
func NewFake(o FakeOptions) *Fake {
	f := &Fake{record: o.Record, tokenTTL: o.TokenTTL, now: o.Now,
		intercepts: map[string]http.HandlerFunc{}, tokens: map[string]mockToken{}, usedCodes: map[string]bool{}}
	if f.tokenTTL == 0 {
		f.tokenTTL = 7200 * time.Second
	}
	if f.now == nil {
		f.now = time.Now
	}
	if len(o.Apps) > 0 {
		f.secrets = map[string]string{}
		for _, a := range o.Apps {
			f.secrets[a.ID] = a.Secret
		}
	}
	return f
}

// Intercept answers requests for path with h instead of the fake's own
// answer (nil restores it). The request is still recorded, and its body
// can be read again.
func (f *Fake) Intercept(path string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h == nil {
		delete(f.intercepts, path)
		return
	}
	f.intercepts[path] = h
}

// Calls returns the requests received so far (with Record on).
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// CallsTo returns the requests for path received so far.
func (f *Fake) CallsTo(path string) []Call {
	var cs []Call
	for _, c := range f.Calls() {
		if c.Path == path {
			cs = append(cs, c)
		}
	}
	return cs
}

// ExpireTokens makes every access_token the fake handed out expired.
func (f *Fake) ExpireTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, t := range f.tokens {
		t.expires = f.now()
		f.tokens[id] = t
	}
}

func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Body != nil { // a client's request, when a test serves it in memory
		body, _ = io.ReadAll(io.LimitReader(r.Body, 64<<10))
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.mu.Lock()
	if f.record {
		f.calls = append(f.calls, Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body})
	}
	h := f.intercepts[r.URL.Path]
	f.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == Code2SessionPath:
		f.code2Session(w, r.URL.Query())
	case r.Method == http.MethodPost && r.URL.Path == StableTokenPath:
		f.stableToken(w, body)
	case r.Method == http.MethodPost && r.URL.Path == PhoneNumberPath:
		f.phoneNumber(w, r.URL.Query().Get("access_token"), body)
	default:
		http.NotFound(w, r)
	}
}

// Answer writes v as WeChat does: JSON served as text/plain, HTTP 200.
func Answer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "text/plain")
	json.NewEncoder(w).Encode(v)
}

// AnswerError writes WeChat's answer for errcode.
func AnswerError(w http.ResponseWriter, errcode int) {
	msg := errmsgs[errcode]
	if msg == "" {
		msg = "error"
	}
	Answer(w, map[string]any{"errcode": errcode, "errmsg": msg + ", rid: 6560f1a2-mock"})
}

// checkApp answers WeChat's error for a wrong appid or secret, if any.
func (f *Fake) checkApp(w http.ResponseWriter, appID, secret string) bool {
	want, ok := f.secrets[appID]
	if f.secrets == nil {
		want, ok = MockSecret, IsMockAppID(appID)
	}
	switch {
	case appID == "":
		AnswerError(w, CodeAppIDMissing)
	case secret == "":
		AnswerError(w, CodeSecretMissing)
	case !ok:
		AnswerError(w, CodeInvalidAppID)
	case secret != want:
		AnswerError(w, CodeInvalidSecret)
	default:
		return true
	}
	return false
}

// IsMockAppID reports whether id is what mock mode takes for an AppID:
// 1–32 characters of A-Z a-z 0-9 - _.
func IsMockAppID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (f *Fake) code2Session(w http.ResponseWriter, q url.Values) {
	appID, code := q.Get("appid"), q.Get("js_code")
	switch {
	case !f.checkApp(w, appID, q.Get("secret")):
	case q.Get("grant_type") != "authorization_code":
		AnswerError(w, CodeInvalidGrantType)
	case code == "":
		AnswerError(w, CodeInvalidCode)
	case mockErrors[APICode2Session][code] != 0:
		AnswerError(w, mockErrors[APICode2Session][code])
	default:
		Answer(w, map[string]any{
			"openid":      MockOpenID(appID, code),
			"unionid":     MockUnionID(code),
			"session_key": mockID("session_key", appID, code)[1:25],
		})
	}
}

// stableToken hands out the app's current token while it has more than 5
// minutes left, and a new one after that, or when force_refresh is true
// (which invalidates the old one for everybody, as WeChat does).
func (f *Fake) stableToken(w http.ResponseWriter, body []byte) {
	var req stableTokenRequest
	if err := json.Unmarshal(body, &req); err != nil {
		AnswerError(w, CodeDataFormat)
		return
	}
	if !f.checkApp(w, req.AppID, req.Secret) {
		return
	}
	if req.GrantType != "client_credential" {
		AnswerError(w, CodeInvalidGrantType)
		return
	}
	f.mu.Lock()
	now := f.now()
	t, ok := f.tokens[req.AppID]
	// As at WeChat, normal mode hands out a new token in the old one's last
	// 5 minutes.
	if !ok || req.ForceRefresh || t.expires.Sub(now) < 5*time.Minute {
		t = mockToken{value: "mock-access-token-" + rand.Text(), expires: now.Add(f.tokenTTL)}
		f.tokens[req.AppID] = t
	}
	f.mu.Unlock()
	Answer(w, map[string]any{"access_token": t.value, "expires_in": int64(t.expires.Sub(now).Seconds())})
}

// phoneNumber answers getuserphonenumber: a phone number derived from the
// code, +86 and 1 and ten digits, for a valid access_token and a code not
// used before. A code WeChat did not accept is not used up.
func (f *Fake) phoneNumber(w http.ResponseWriter, token string, body []byte) {
	var req phoneRequest
	if err := json.Unmarshal(body, &req); err != nil {
		AnswerError(w, CodeDataFormat)
		return
	}
	f.mu.Lock()
	appID, expired := "", false
	for id, t := range f.tokens {
		if t.value == token && token != "" {
			appID, expired = id, !f.now().Before(t.expires)
		}
	}
	errcode := mockErrors[APIPhoneNumber][req.Code]
	switch {
	case appID == "":
		errcode = CodeInvalidCredential
	case expired:
		errcode = CodeAccessTokenExpired
	case req.Code == "" || f.usedCodes[req.Code]:
		errcode = CodeInvalidCode
	case errcode == 0:
		if len(f.usedCodes) >= 100_000 { // a bound for a long-running -mock
			clear(f.usedCodes)
		}
		f.usedCodes[req.Code] = true
	}
	f.mu.Unlock()
	if errcode != 0 {
		AnswerError(w, errcode)
		return
	}
	pure := MockPhone(req.Code)
	Answer(w, map[string]any{"errcode": 0, "errmsg": "ok", "phone_info": map[string]any{
		"phoneNumber": "+86" + pure, "purePhoneNumber": pure, "countryCode": "86",
		"watermark": map[string]any{"timestamp": f.now().Unix(), "appid": appID},
	}})
}

// MockOpenID is the fake's openid for a login code of appID: "o" and 27
// URL-safe characters derived from the code, the same every time.
func MockOpenID(appID, code string) string { return mockID("openid", appID, code) }

// MockUnionID is the fake's unionid for a code: the same for a code in
// every app, so that one person shows as one unionid in mock mode.
func MockUnionID(code string) string { return mockID("unionid", "", code) }

func mockID(kind, appID, code string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + appID + "\x00" + code))
	return "o" + base64.RawURLEncoding.EncodeToString(sum[:])[:27]
}

// MockPhone is the fake's number for a phone code: a mainland mobile
// number, 1 and ten digits.
func MockPhone(code string) string {
	sum := sha256.Sum256([]byte("phone\x00" + code))
	return fmt.Sprintf("1%010d", binary.BigEndian.Uint64(sum[:8])%10_000_000_000)
}
