package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// wxAnswers are answers of the three APIs as WeChat sends them, and
// variants the readers must take in stride: order, whitespace, extra
// members, escapes, other types, names in another case, non-ASCII.
var wxAnswers = []string{
	`{"session_key":"c2Vzc2lvbmtleQ==","openid":"oUser","unionid":"oUnion"}`,
	`{"openid":"oUser","session_key":"c2Vzc2lvbmtleQ=="}`,
	`{"errcode":40029,"errmsg":"invalid code, rid: 6523a1b2-1c2d3e4f"}`,
	`{"errcode":"-1","errmsg":"system error"}`,
	`{"errcode":" 45011 ","errmsg":"api minute-quota reach limit"}`,
	`{"errcode":null,"openid":"o"}`,
	`{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"+8613800138000","purePhoneNumber":"13800138000","countryCode":"86","watermark":{"timestamp":1637744274,"appid":"wx0123456789abcdef"}}}`,
	"{\n \"errcode\": 0,\n \"errmsg\": \"ok\",\n \"phone_info\": {\n  \"watermark\": {\"appid\": \"wx0123456789abcdef\", \"timestamp\": 1},\n  \"countryCode\": 86,\n  \"purePhoneNumber\": \"13800138000\"\n }\n}",
	`{"phone_info":null,"errcode":0}`,
	`{"phone_info":"13800138000"}`,
	`{"phone_info":{"watermark":[1]}}`,
	`{"phone_info":{"countryCode":8.6e1}}`,
	`{"phone_info":{"countryCode":{"x":1}}}`,
	`{"Phone_Info":{"purePhoneNumber":"1"}}`,
	`{"phone_info":{"PurePhoneNumber":"1"}}`,
	`{"phone_info":{"PurePhoneNumber":"1"},"phone_info":null}`,
	`{"access_token":"ACCESS_TOKEN","expires_in":7200}`,
	`{"access_token":"ACCESS_TOKEN","expires_in":"7200"}`,
	`{"access_token":"ACCESS_TOKEN","expires_in":7200.5}`,
	`{"access_token":"ACCESS_TOKEN","expires_in":1e3}`,
	`{"access_token":"ACCESS_TOKEN","expires_in":-0}`,
	`{"access_token":"ACCESS_TOKEN","expires_in":99999999999999999999}`,
	`{"access_token":"ACC\u0045SS","expires_in":7200}`,
	`{"openid":"o\"quoted\"","errmsg":"\u4f60\u597d"}`,
	`{"openid":"用户","errmsg":"ok"}`,
	`{"OPENID":"upper","openid":"lower"}`,
	`{"open\u0069d":"escaped key"}`,
	`{"openid":"a","openid":"b","openid":null}`,
	`{"openid":true}`,
	`{"openid":["o"]}`,
	`{"errmsg":{"nested":{"deep":["x",{"y":"}"}]}},"openid":"o"}`,
	`{"a.b":1,"openid":"o"}`,
	`{"openid":"o","extra":[1,2,{"openid":"inner"}],"n":-1.5e+10,"t":true,"f":false}`,
	`{}`,
	` { } `,
	`null`,
	`[]`,
	`"openid"`,
	`{"openid":"o"`,
	``,
}

// replies makes a fresh value of each reply type.
var replies = []func() reply{
	func() reply { return new(code2SessionReply) },
	func() reply { return new(stableTokenReply) },
	func() reply { return new(phoneReply) },
}

// statusOf is the status part of a reply.
func statusOf(r reply) status {
	switch r := r.(type) {
	case *code2SessionReply:
		return r.status
	case *stableTokenReply:
		return r.status
	case *phoneReply:
		return r.status
	}
	panic(fmt.Sprintf("unknown reply %T", r))
}

// memberNames lists the name of every member of every object in body, at
// any depth, duplicates included; false if body is not JSON.
func memberNames(body []byte) ([]string, bool) {
	d := json.NewDecoder(bytes.NewReader(body))
	type frame struct{ object, wantKey bool }
	var stack []frame
	var names []string
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return names, true
		}
		if err != nil {
			return nil, false
		}
		if n := len(stack); n > 0 && stack[n-1].wantKey {
			if s, ok := tok.(string); ok {
				names = append(names, s)
				stack[n-1].wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, wantKey: true})
		case json.Delim('['):
			stack = append(stack, frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// caseVariant reports whether body names a member that differs from a
// member a reply reads only by case: encoding/json would read it, the
// readers do not, on purpose.
func caseVariant(body []byte) bool {
	names, _ := memberNames(body)
	for _, n := range names {
		for _, paths := range [][]string{code2SessionReader.Paths(), stableTokenReader.Paths(), phoneReader.Paths()} {
			for _, p := range paths {
				for _, seg := range strings.Split(p, ".") {
					if n != seg && strings.EqualFold(n, seg) {
						return true
					}
				}
			}
		}
	}
	return false
}

// FuzzReadReply: each reply type reads what encoding/json reads from an
// object whose member names are spelled as WeChat spells them (or not at
// all), with WeChat's errcode and countryCode in any of their forms, and a
// non-zero errcode is a *Error with WeChat's errmsg.
func FuzzReadReply(f *testing.F) {
	for _, a := range wxAnswers {
		f.Add([]byte(a))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		object := bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{"))
		variant := caseVariant(body)
		for _, fresh := range replies {
			got, std := fresh(), fresh()
			err := got.read(body)
			stdErr := json.Unmarshal(body, std)
			if err == nil && !json.Valid(body) {
				t.Fatalf("%T read %q, which is not JSON", got, body)
			}
			if we, ok := errors.AsType[*Error](err); ok {
				st := statusOf(got)
				if we.Code == 0 || we.Code != int(st.ErrCode) || we.Msg != st.ErrMsg {
					t.Fatalf("%T.read(%q) = %+v with status %+v", got, body, we, st)
				}
			} else if err == nil && statusOf(got).ErrCode != 0 {
				t.Fatalf("%T.read(%q) = nil with errcode %d", got, body, statusOf(got).ErrCode)
			}
			if !object || variant {
				continue // not comparable: encoding/json takes null, and names in another case
			}
			if (err == nil || errors.As(err, new(*Error))) != (stdErr == nil) {
				t.Fatalf("%T.read(%q) = %v, encoding/json %v", got, body, err, stdErr)
			}
			if stdErr == nil && !reflect.DeepEqual(got, std) {
				t.Fatalf("%T.read(%q) = %+v, encoding/json %+v", got, body, got, std)
			}
		}
	})
}

// fakeAnswer is the fake's answer body to a request of method to path,
// with the query q and the body body.
func fakeAnswer(t *testing.T, f *Fake, method, target, body string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	f.ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), method, target, strings.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("%s %s: fake answered %d", method, target, rec.Code)
	}
	return rec.Body.String()
}

// slowDown makes the member-by-member reader read body: a first member
// with an escaped name, which nothing reads, stops the fast path.
func slowDown(body string) string {
	i := strings.Index(body, "{")
	return body[:i+1] + `"\u005f":0,` + body[i+1:]
}

// TestRepliesReadFast: every reply type reads WeChat's real answers, and
// the fake's, on the fast path (else it would be dead code), and gets the
// same values as member-by-member decoding and as encoding/json. The path
// taken shows in allocations: the fast path allocates the strings it sets,
// the member-by-member decoding dozens more. Not parallel: allocations are
// counted for the whole process.
func TestRepliesReadFast(t *testing.T) {
	f := NewFake(FakeOptions{Apps: testApps})
	c2s := fakeAnswer(t, f, http.MethodGet, Code2SessionPath+"?appid="+testAppID+"&secret="+testSecret+"&js_code=abc&grant_type=authorization_code", "")
	tok := fakeAnswer(t, f, http.MethodPost, StableTokenPath, `{"grant_type":"client_credential","appid":"`+testAppID+`","secret":"`+testSecret+`","force_refresh":false}`)
	var st stableTokenReply
	if err := st.read([]byte(tok)); err != nil {
		t.Fatalf("the fake's stable_token answer %q: %v", tok, err)
	}
	phone := fakeAnswer(t, f, http.MethodPost, PhoneNumberPath+"?access_token="+st.AccessToken, `{"code":"p1","openid":"o"}`)
	used := fakeAnswer(t, f, http.MethodPost, PhoneNumberPath+"?access_token="+st.AccessToken, `{"code":"p1","openid":"o"}`)

	c2sWant := func(openID, unionID string, code int, msg string) reply {
		r := &code2SessionReply{OpenID: openID, UnionID: unionID}
		r.ErrCode, r.ErrMsg = errcode(code), msg
		return r
	}
	tokenWant := func(token string, expires int64, code int, msg string) reply {
		r := &stableTokenReply{AccessToken: token, ExpiresIn: expires}
		r.ErrCode, r.ErrMsg = errcode(code), msg
		return r
	}
	phoneWant := func(pure, cc, appID string, code int, msg string) reply {
		r := &phoneReply{}
		r.ErrCode, r.ErrMsg = errcode(code), msg
		r.PhoneInfo.PurePhoneNumber, r.PhoneInfo.CountryCode, r.PhoneInfo.Watermark.AppID = pure, flexValue(cc), appID
		return r
	}
	const wxApp = "wx0123456789abcdef"
	tests := []struct {
		name string
		body string
		want reply
	}{
		{"code2Session", wxAnswers[0], c2sWant("oUser", "oUnion", 0, "")},
		{"code2Session without unionid", wxAnswers[1], c2sWant("oUser", "", 0, "")},
		{"code2Session error", wxAnswers[2], c2sWant("", "", 40029, "invalid code, rid: 6523a1b2-1c2d3e4f")},
		{"code2Session busy", `{"errcode":-1,"errmsg":"system error, rid: 6523a1b2-1c2d3e4f"}`, c2sWant("", "", -1, "system error, rid: 6523a1b2-1c2d3e4f")},
		{"code2Session busy as a string", wxAnswers[3], c2sWant("", "", -1, "system error")},
		{"the fake's code2Session", c2s, c2sWant(MockOpenID(testAppID, "abc"), MockUnionID("abc"), 0, "")},
		{"stable_token", wxAnswers[16], tokenWant("ACCESS_TOKEN", 7200, 0, "")},
		{"stable_token error", `{"errcode":40125,"errmsg":"invalid appsecret, rid: 1"}`, tokenWant("", 0, 40125, "invalid appsecret, rid: 1")},
		{"the fake's stable_token", tok, tokenWant(st.AccessToken, 7200, 0, "")},
		{"getuserphonenumber", wxAnswers[6], phoneWant("13800138000", "86", wxApp, 0, "ok")},
		{"getuserphonenumber pretty-printed, countryCode a number", wxAnswers[7], phoneWant("13800138000", "86", wxApp, 0, "ok")},
		{"getuserphonenumber error", `{"errcode":40029,"errmsg":"invalid code, rid: 1"}`, phoneWant("", "", "", 40029, "invalid code, rid: 1")},
		{"the fake's getuserphonenumber", phone, phoneWant(MockPhone("p1"), "86", testAppID, 0, "ok")},
		{"the fake's getuserphonenumber error", used, phoneWant("", "", "", 40029, "invalid code, rid: 6560f1a2-mock")},
	}
	read := func(r reply, body string) error { return r.read([]byte(body)) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fresh := func() reply { return reflect.New(reflect.TypeOf(tt.want).Elem()).Interface().(reply) }
			got, slow, std := fresh(), fresh(), fresh()
			err, slowErr := read(got, tt.body), read(slow, slowDown(tt.body))
			if code := int(statusOf(tt.want).ErrCode); code != 0 {
				if Errcode(err) != code || Errcode(slowErr) != code {
					t.Errorf("read(%q) = %v, member by member %v, want errcode %d", tt.body, err, slowErr, code)
				}
			} else if err != nil || slowErr != nil {
				t.Errorf("read(%q) = %v, member by member %v, want no error", tt.body, err, slowErr)
			}
			if err := json.Unmarshal([]byte(tt.body), std); err != nil {
				t.Fatalf("encoding/json cannot read %q: %v", tt.body, err)
			}
			for _, r := range []struct {
				how string
				got reply
			}{{"fast", got}, {"member by member", slow}, {"encoding/json", std}} {
				if !reflect.DeepEqual(r.got, tt.want) {
					t.Errorf("%s read(%q) = %+v, want %+v", r.how, tt.body, r.got, tt.want)
				}
			}
			r := fresh()
			fast := testing.AllocsPerRun(50, func() { r.read([]byte(tt.body)) })
			byMember := testing.AllocsPerRun(50, func() { r.read([]byte(slowDown(tt.body))) })
			if fast > fastAllocs || 4*fast >= byMember {
				t.Errorf("read(%q): %v allocations, member by member %v: want at most %d, a quarter of member by member: the fast path was not taken",
					tt.body, fast, byMember, fastAllocs)
			}
		})
	}
	// Unusual answers leave the fast path; the test above would see it.
	for _, tt := range []struct {
		body  string
		fresh func() reply
	}{
		{`{"openid":"用户","errmsg":"ok"}`, replies[0]},
		{`{"openid":"o\"quoted\""}`, replies[0]},
		{`{"open\u0069d":"escaped key"}`, replies[0]},
		{`{"access_token":"ACC\u0045SS","expires_in":7200}`, replies[1]},
		{`{"access_token":"A","expires_in":"7200"}`, replies[1]},
		{`{"phone_info":{"purePhoneNumber":"1380013800\u0030"}}`, replies[2]},
		{`{"phone_info":"13800138000"}`, replies[2]},
	} {
		r := tt.fresh()
		if n := testing.AllocsPerRun(50, func() { r.read([]byte(tt.body)) }); n <= fastAllocs {
			t.Errorf("%T.read(%q): %v allocations, want more than %d: member by member", r, tt.body, n, fastAllocs)
		}
	}
}

// fastAllocs bounds the allocations of a read on the fast path: the strings
// it sets (at most four in a reply) and the *Error.
const fastAllocs = 8

// TestReadReplies: WeChat's ways of writing errcode and countryCode, member
// names matched exactly, and a read the fast path gives up on halfway.
func TestReadReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body    string
		openID  string
		unionID string
		errcode int
		bad     bool
	}{
		{body: `{"openid":"o1","errcode":0}`, openID: "o1"},
		{body: `{"openid":"o1","errcode":"0"}`, openID: "o1"},
		{body: `{"openid":"o1","errcode":null}`, openID: "o1"},
		{body: `{"errcode":" 45011 "}`, errcode: 45011},
		{body: `{"errcode":"-1"}`, errcode: -1},
		{body: `{"errcode":"abc"}`, bad: true},
		{body: `{"errcode":1.5}`, bad: true},
		{body: `{"errcode":true}`, bad: true},
		// The fast path sets openid, then gives up at the escaped unionid.
		{body: `{"openid":"o1","unionid":"u\u0031"}`, openID: "o1", unionID: "u1"},
		// Names match exactly: another spelling is not read.
		{body: `{"openid":"o1","OpenID":"o2"}`, openID: "o1"},
		{body: `{"OpenID":"o2","openid":"o1"}`, openID: "o1"},
		{body: `{"OpenID":"o2"}`},
		{body: `{"ERRCODE":40029,"openid":"o1"}`, openID: "o1"},
		{body: `{"open\u0069d":"o3"}`, openID: "o3"},
	}
	for _, tt := range tests {
		var r code2SessionReply
		err := r.read([]byte(tt.body))
		switch {
		case tt.errcode != 0:
			if Errcode(err) != tt.errcode {
				t.Errorf("read(%q) = %v, want errcode %d", tt.body, err, tt.errcode)
			}
		case tt.bad:
			if err == nil || Errcode(err) != 0 {
				t.Errorf("read(%q) = %v, want an error that is no errcode", tt.body, err)
			}
		case err != nil || r.OpenID != tt.openID || r.UnionID != tt.unionID:
			t.Errorf("read(%q) = %+v, %v, want openid %q, unionid %q", tt.body, r, err, tt.openID, tt.unionID)
		}
	}
	for _, tt := range []struct {
		body string
		cc   string
		bad  bool
	}{
		{`{"phone_info":{"countryCode":"86"}}`, "86", false},
		{`{"phone_info":{"countryCode":86}}`, "86", false},
		{`{"phone_info":{"countryCode":8.6e1}}`, "8.6e1", false},
		{`{"phone_info":{"countryCode":true}}`, "", true},
		{`{"phone_info":{"countryCode":{"x":1}}}`, "", true},
		{`{"phone_info":{"CountryCode":"86"}}`, "", false},
	} {
		var r phoneReply
		err := r.read([]byte(tt.body))
		if (err != nil) != tt.bad || string(r.PhoneInfo.CountryCode) != tt.cc {
			t.Errorf("read(%q) = countryCode %q, %v; want %q, error %v", tt.body, r.PhoneInfo.CountryCode, err, tt.cc, tt.bad)
		}
	}
}

// TestReplyPaths: each reader reads exactly the members its reply type's
// tags name, and each is a member of WeChat's documented answers, spelled
// as WeChat spells it. A field added to a reply type shows up here.
func TestReplyPaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		paths   []string
		want    []string
		answers []string // WeChat's, as documented: success and error
	}{
		{"code2Session", code2SessionReader.Paths(), []string{"errcode", "errmsg", "openid", "unionid"},
			[]string{wxAnswers[0], wxAnswers[2]}},
		{"stable_token", stableTokenReader.Paths(), []string{"errcode", "errmsg", "access_token", "expires_in"},
			[]string{wxAnswers[16], wxAnswers[2]}},
		{"getuserphonenumber", phoneReader.Paths(),
			[]string{"errcode", "errmsg", "phone_info.purePhoneNumber", "phone_info.countryCode", "phone_info.watermark.appid"},
			[]string{wxAnswers[6]}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.paths, tt.want) {
			t.Errorf("%s reader's paths = %q, want %q", tt.name, tt.paths, tt.want)
		}
		for _, p := range tt.paths {
			found := false
			for _, a := range tt.answers {
				var v any
				if err := json.Unmarshal([]byte(a), &v); err != nil {
					t.Fatal(err)
				}
				for _, seg := range strings.Split(p, ".") {
					m, _ := v.(map[string]any)
					v = m[seg]
				}
				found = found || v != nil
			}
			if !found {
				t.Errorf("%s reads %q, which WeChat's answers do not have", tt.name, p)
			}
		}
	}
}

// parseCode2Session is what Code2Session makes of an answer: the reply's
// reader, then the check that a success names an openid. TestParseCode2Session
// checks that it agrees with the client.
func parseCode2Session(body []byte) (Session, error) {
	var r code2SessionReply
	err := r.read(body)
	if _, ok := errors.AsType[*Error](err); ok {
		return Session{}, err
	}
	if err != nil {
		return Session{}, fmt.Errorf("%w: %v", ErrBadAnswer, err)
	}
	if r.OpenID == "" {
		return Session{}, fmt.Errorf("%w: success without openid", ErrBadAnswer)
	}
	return Session{OpenID: r.OpenID, UnionID: r.UnionID}, nil
}

// TestParseCode2Session: what an answer of code2Session comes to, read
// alone and through the client.
func TestParseCode2Session(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body    string
		want    Session
		errcode int  // want a *Error with this code
		bad     bool // want ErrBadAnswer
	}{
		{body: `{"openid":"o1","session_key":"sk"}`, want: Session{OpenID: "o1"}},
		{body: `{"openid":"o1","unionid":"u1","session_key":"sk","errcode":0,"errmsg":"ok"}`, want: Session{OpenID: "o1", UnionID: "u1"}},
		{body: `{"openid":"o1","errcode":"0"}`, want: Session{OpenID: "o1"}},
		{body: `{"openid":"o1","errcode":null}`, want: Session{OpenID: "o1"}},
		{body: ` {"openid":"o1"} ` + "\n", want: Session{OpenID: "o1"}},
		{body: `{"errcode":40029,"errmsg":"invalid code"}`, errcode: 40029},
		{body: `{"errcode":"40163","errmsg":"code been used"}`, errcode: 40163},
		{body: `{"errcode":-1,"errmsg":"system error"}`, errcode: -1},
		{body: `{"errcode":"-1"}`, errcode: -1},
		{body: `{"errcode":45011,"openid":"o1"}`, errcode: 45011},
		{body: `{"errcode":"abc"}`, bad: true},
		{body: `{"errcode":""}`, bad: true},
		{body: `{"errcode":1.5}`, bad: true},
		{body: `{"errcode":true}`, bad: true},
		{body: `{"errcode":99999999999999999999999}`, bad: true},
		{body: `{"session_key":"sk"}`, bad: true},
		{body: `{"openid":""}`, bad: true},
		{body: `{"openid":123}`, bad: true},
		{body: `{"Openid":"o1"}`, bad: true},
		{body: `{}`, bad: true},
		{body: `null`, bad: true},
		{body: `[]`, bad: true},
		{body: `"openid"`, bad: true},
		{body: ``, bad: true},
		{body: `<html>502</html>`, bad: true},
		{body: `{"openid":"o1"}{"openid":"o2"}`, bad: true},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			f, base := startFake(t, FakeOptions{})
			f.Intercept(Code2SessionPath, answerString(tt.body))
			c := newTestClient(t, base, Options{})
			viaClient, clientErr := c.Code2Session(context.Background(), testAppID, "abc")
			alone, err := parseCode2Session([]byte(tt.body))
			for _, r := range []struct {
				how string
				s   Session
				err error
			}{{"parseCode2Session", alone, err}, {"Code2Session", viaClient, clientErr}} {
				switch {
				case tt.errcode != 0:
					if Errcode(r.err) != tt.errcode {
						t.Errorf("%s(%q) = %v, want errcode %d", r.how, tt.body, r.err, tt.errcode)
					}
				case tt.bad:
					if !errors.Is(r.err, ErrBadAnswer) {
						t.Errorf("%s(%q) = %v, want ErrBadAnswer", r.how, tt.body, r.err)
					}
				default:
					if r.err != nil || r.s != tt.want {
						t.Errorf("%s(%q) = %+v, %v, want %+v", r.how, tt.body, r.s, r.err, tt.want)
					}
				}
			}
		})
	}
}

// FuzzParseCode2Session feeds code2Session's answer reader arbitrary
// bodies: it never panics, and every outcome is one of the three kinds the
// service maps.
func FuzzParseCode2Session(f *testing.F) {
	for _, seed := range []string{
		`{"openid":"o1","session_key":"sk","unionid":"u1"}`,
		`{"errcode":40029,"errmsg":"invalid code"}`,
		`{"errcode":"-1"}`,
		`{"errcode":1.5}`,
		`{"errcode":null,"openid":"o"}`,
		`[]`, `null`, ``, `{"openid":""}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := parseCode2Session(body)
		switch we, ok := errors.AsType[*Error](err); {
		case err == nil:
			if s.OpenID == "" {
				t.Fatalf("parseCode2Session(%q) succeeded without an openid", body)
			}
			if !json.Valid(body) {
				t.Fatalf("parseCode2Session(%q) succeeded on invalid JSON", body)
			}
		case ok:
			if we.Code == 0 {
				t.Fatalf("parseCode2Session(%q) = *Error with errcode 0", body)
			}
			if s != (Session{}) {
				t.Fatalf("parseCode2Session(%q) = %+v with %v", body, s, err)
			}
		case !errors.Is(err, ErrBadAnswer):
			t.Fatalf("parseCode2Session(%q) = %v: neither a *Error nor ErrBadAnswer", body, err)
		}
	})
}
