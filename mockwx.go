package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// mockSecret is the AppSecret the service and its fake WeChat share in mock
// mode. It guards nothing; it lets the fake check the real client sends it.
const mockSecret = "wxlogin-mock-secret"

// mockCodes are the codes that make the fake answer WeChat's errors, so a
// front-end developer can see each one without a real account. The phone
// API knows mock-invalid, mock-ratelimit and mock-busy.
var mockCodes = map[string]struct {
	errcode int
	errmsg  string
}{
	"mock-invalid":   {40029, "invalid code"},
	"mock-used":      {40163, "code been used"},
	"mock-risky":     {40226, "high risk user, access denied"},
	"mock-ratelimit": {45011, "api minute-quota reach limit, mustslower retry next minute"},
	"mock-busy":      {-1, "system error"},
}

// mockWX is a fake of the three WeChat APIs wxlogin calls. It behaves like
// the real ones where that matters to a client: JSON served as text/plain,
// errors with HTTP 200, a session_key the client must never pass on,
// access_tokens that expire and that a forced refresh replaces, and phone
// codes that work once.
type mockWX struct {
	secrets  map[string]string // AppID → AppSecret
	tokenTTL time.Duration     // expires_in of a new access_token
	now      func() time.Time

	mu        sync.Mutex
	tokens    map[string]mockToken // AppID → its current access_token
	usedCodes map[string]bool      // phone codes already exchanged
}

type mockToken struct {
	value   string
	expires time.Time
}

func newMockWeChat(apps []App) *mockWX {
	m := &mockWX{secrets: map[string]string{}, tokenTTL: 7200 * time.Second, now: time.Now,
		tokens: map[string]mockToken{}, usedCodes: map[string]bool{}}
	for _, a := range apps {
		m.secrets[a.ID] = a.Secret
	}
	return m
}

func (m *mockWX) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == code2SessionPath:
		m.code2Session(w, r)
	case r.Method == http.MethodPost && r.URL.Path == stableTokenPath:
		m.stableToken(w, r)
	case r.Method == http.MethodPost && r.URL.Path == phoneNumberPath:
		m.phoneNumber(w, r)
	default:
		http.NotFound(w, r)
	}
}

func mockReply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "text/plain")
	json.NewEncoder(w).Encode(v)
}

func mockFail(w http.ResponseWriter, code int, msg string) {
	mockReply(w, map[string]any{"errcode": code, "errmsg": msg + ", rid: 6560f1a2-mock"})
}

// checkApp answers WeChat's error for a wrong appid or secret, if any.
func (m *mockWX) checkApp(w http.ResponseWriter, appID, secret string) bool {
	want, ok := m.secrets[appID]
	switch {
	case appID == "":
		mockFail(w, 41002, "appid missing")
	case secret == "":
		mockFail(w, 41004, "appsecret missing")
	case !ok:
		mockFail(w, 40013, "invalid appid")
	case secret != want:
		mockFail(w, 40125, "invalid appsecret")
	default:
		return true
	}
	return false
}

func (m *mockWX) code2Session(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	appID, code := q.Get("appid"), q.Get("js_code")
	switch {
	case !m.checkApp(w, appID, q.Get("secret")):
	case q.Get("grant_type") != "authorization_code":
		mockFail(w, 40002, "invalid grant_type")
	case code == "":
		mockFail(w, 40029, "invalid code")
	default:
		if e, ok := mockCodes[code]; ok {
			mockFail(w, e.errcode, e.errmsg)
			return
		}
		mockReply(w, map[string]any{
			"openid":      mockID("openid", appID, code),
			"unionid":     mockID("unionid", appID, code),
			"session_key": mockID("session_key", appID, code)[1:25],
		})
	}
}

// stableToken hands out the app's current token while it is valid, and a
// new one when it expired or force_refresh is true (which invalidates the
// old one for everybody, as WeChat does).
func (m *mockWX) stableToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		mockFail(w, 47001, "data format error")
		return
	}
	if !m.checkApp(w, req.AppID, req.Secret) {
		return
	}
	if req.GrantType != "client_credential" {
		mockFail(w, 40002, "invalid grant_type")
		return
	}
	m.mu.Lock()
	now := m.now()
	t, ok := m.tokens[req.AppID]
	if !ok || req.ForceRefresh || !now.Before(t.expires) {
		t = mockToken{value: "mock-access-token-" + rand.Text(), expires: now.Add(m.tokenTTL)}
		m.tokens[req.AppID] = t
	}
	m.mu.Unlock()
	mockReply(w, map[string]any{"access_token": t.value, "expires_in": int64(t.expires.Sub(now).Seconds())})
}

// phoneNumber answers getuserphonenumber: a phone number derived from the
// code, +86 and 1 and ten digits, for a valid access_token and a code not
// used before.
func (m *mockWX) phoneNumber(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("access_token")
	var req struct {
		Code   string `json:"code"`
		OpenID string `json:"openid"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		mockFail(w, 47001, "data format error")
		return
	}
	m.mu.Lock()
	appID, expired := "", false
	for id, t := range m.tokens {
		if t.value == token && token != "" {
			appID, expired = id, !m.now().Before(t.expires)
		}
	}
	used := m.usedCodes[req.Code]
	if appID != "" && !expired && !used {
		if len(m.usedCodes) >= 100_000 { // a bound for a long-running -mock
			clear(m.usedCodes)
		}
		m.usedCodes[req.Code] = true
	}
	m.mu.Unlock()
	switch {
	case appID == "":
		mockFail(w, 40001, "invalid credential, access_token is invalid or not latest")
	case expired:
		mockFail(w, 42001, "access_token expired")
	case req.Code == "" || used:
		mockFail(w, 40029, "invalid code")
	case mockCodes[req.Code].errcode == 40029 || mockCodes[req.Code].errcode == 45011 || mockCodes[req.Code].errcode == -1:
		e := mockCodes[req.Code]
		mockFail(w, e.errcode, e.errmsg)
	default:
		pure := mockPhone(req.Code)
		mockReply(w, map[string]any{"errcode": 0, "errmsg": "ok", "phone_info": map[string]any{
			"phoneNumber": "+86" + pure, "purePhoneNumber": pure, "countryCode": "86",
			"watermark": map[string]any{"timestamp": m.now().Unix(), "appid": appID},
		}})
	}
}

// mockID derives a WeChat-looking id, "o" and 27 URL-safe characters, from
// the code: the same code always gives the same id.
func mockID(kind, appID, code string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + appID + "\x00" + code))
	return "o" + base64.RawURLEncoding.EncodeToString(sum[:])[:27]
}

// mockPhone derives a mainland mobile number, 1 and ten digits, from a
// phone code.
func mockPhone(code string) string {
	sum := sha256.Sum256([]byte("phone\x00" + code))
	return fmt.Sprintf("1%010d", binary.BigEndian.Uint64(sum[:8])%10_000_000_000)
}
