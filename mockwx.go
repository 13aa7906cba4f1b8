package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
)

// mockSecret is the AppSecret the service and its fake WeChat share in mock
// mode. It guards nothing; it lets the fake check the real client sends it.
const mockSecret = "wxlogin-mock-secret"

// mockCodes are the codes that make the fake answer WeChat's errors, so a
// front-end developer can see each one without a real account.
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

// mockWeChat is a fake of WeChat's code2Session endpoint. It behaves like
// the real one where that matters to a client: JSON served as text/plain,
// errors with HTTP 200, a session_key the client must never pass on.
func mockWeChat(appID, secret string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+code2SessionPath, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		reply := func(v any) {
			w.Header().Set("Content-Type", "text/plain")
			json.NewEncoder(w).Encode(v)
		}
		fail := func(code int, msg string) {
			reply(map[string]any{"errcode": code, "errmsg": msg + ", rid: 6560f1a2-mock"})
		}
		code := q.Get("js_code")
		switch {
		case q.Get("appid") == "":
			fail(41002, "appid missing")
		case q.Get("secret") == "":
			fail(41004, "appsecret missing")
		case q.Get("appid") != appID:
			fail(40013, "invalid appid")
		case q.Get("secret") != secret:
			fail(40125, "invalid appsecret")
		case q.Get("grant_type") != "authorization_code":
			fail(40002, "invalid grant_type")
		case code == "":
			fail(40029, "invalid code")
		default:
			if e, ok := mockCodes[code]; ok {
				fail(e.errcode, e.errmsg)
				return
			}
			reply(map[string]any{
				"openid":      mockID("openid", appID, code),
				"unionid":     mockID("unionid", appID, code),
				"session_key": mockID("session_key", appID, code)[1:25],
			})
		}
	})
	return mux
}

// mockID derives a WeChat-looking id, "o" and 27 URL-safe characters, from
// the code: the same code always gives the same id.
func mockID(kind, appID, code string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + appID + "\x00" + code))
	return "o" + base64.RawURLEncoding.EncodeToString(sum[:])[:27]
}
