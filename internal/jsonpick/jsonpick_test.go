package jsonpick

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// flex is a value with its own UnmarshalJSON, as WeChat's errcode is.
type flex string

func (f *flex) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flex(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flex(n)
	return nil
}

type status struct {
	Code flex   `json:"errcode"`
	Msg  string `json:"errmsg"`
}

// reply has every shape the readers of this program use: an embedded
// struct, nested objects, strings, int64, bool, an Unmarshaler and a type
// left to encoding/json.
type reply struct {
	status
	OpenID string `json:"openid"`
	N      int64  `json:"expires_in"`
	Flag   bool   `json:"flag"`
	Info   struct {
		Pure string `json:"purePhoneNumber"`
		Mark struct {
			AppID string `json:"appid"`
		} `json:"watermark"`
	} `json:"phone_info"`
	List []string `json:"list"`
	Ptr  *int64   `json:"nbf"`
	skip string   // unexported: never read
}

var _ = reply{skip: "unexported fields are never read"}

type request struct {
	Code  string `json:"code"`
	AppID string `json:"appid"`
}

var bodies = []string{
	`{"session_key":"c2Vzc2lvbmtleQ==","openid":"oUser","unionid":"oUnion"}`,
	`{"errcode":40029,"errmsg":"invalid code, rid: 6523a1b2-1c2d3e4f"}`,
	`{"errcode":"-1","errmsg":"system error"}`,
	`{"errcode":null,"openid":"o"}`,
	`{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"+8613800138000","purePhoneNumber":"13800138000","countryCode":"86","watermark":{"timestamp":1637744274,"appid":"wx0123456789abcdef"}}}`,
	"{\n \"phone_info\": {\n  \"watermark\": {\"appid\": \"wx\", \"timestamp\": 1},\n  \"purePhoneNumber\": \"138\"\n }\n}",
	`{"phone_info":null,"errcode":0}`,
	`{"phone_info":"13800138000"}`,
	`{"phone_info":{"watermark":[1]}}`,
	`{"Phone_Info":{"purePhoneNumber":"1"}}`,
	`{"phone_info":{"PurePhoneNumber":"1"}}`,
	`{"phone_info.purePhoneNumber":"dotted"}`,
	`{"expires_in":7200}`, `{"expires_in":"7200"}`, `{"expires_in":7200.5}`, `{"expires_in":1e3}`,
	`{"expires_in":-0}`, `{"expires_in":99999999999999999999}`,
	`{"flag":true}`, `{"flag":"true"}`, `{"flag":null}`, `{"flag":1}`,
	`{"list":["a"],"nbf":5}`, `{"list":null,"nbf":null}`, `{"list":"a"}`,
	`{"openid":"ACC\u0045SS"}`, `{"openid":"o\"quoted\""}`, `{"openid":"用户"}`,
	`{"OPENID":"upper","openid":"lower"}`, `{"openid":"lower","OpenID":"upper"}`,
	`{"open\u0069d":"escaped key"}`, `{"openid":"a","openid":"b","openid":null}`,
	`{"openid":true}`, `{"openid":["o"]}`,
	`{"errmsg":{"nested":{"deep":["x",{"y":"}"}]}},"openid":"o"}`,
	`{"openid":"o","extra":[1,2,{"openid":"inner"}],"n":-1.5e+10,"t":true,"f":false}`,
	`{"code":"abc"}`, `{"Code":"abc"}`, `{"code":"bad!","Code":"good"}`, `{"CODE":"x","appid":"wx1"}`,
	`{"code":"a","code":"b"}`, `{"code":1}`, `{"code":"a","appid":null}`,
	`{}`, ` { } `, `null`, `[]`, `"openid"`, `{"openid":"o"`, ``, `{"a":1} {"b":2}`, `{"a":1}x`,
}

// FuzzRead: wherever the fast reader reads a body, member-by-member
// decoding reads the same; and both read what encoding/json reads wherever
// no member name differs from a field's only by case (encoding/json would
// take it for the field).
func FuzzRead(f *testing.F) {
	for _, b := range bodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		check(t, For[reply](), body)
		check(t, For[request](), body)
		check(t, Strict[reply](), body)
	})
}

func check[T any](t *testing.T, r *Reader[T], body []byte) {
	t.Helper()
	var fast, slow, std T
	fastOK := r.fast(body, reflect.ValueOf(&fast).Elem())
	slowErr := error(nil)
	if json.Valid(body) {
		slowErr = r.object(body, "", reflect.ValueOf(&slow).Elem())
	} else {
		slowErr = errors.New("invalid")
	}
	if fastOK {
		if slowErr != nil {
			t.Fatalf("%T strict=%v: fast read %q, member by member fails: %v", fast, r.strict, body, slowErr)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%T strict=%v: fast(%q) = %+v, member by member = %+v", fast, r.strict, body, fast, slow)
		}
	}
	var got T
	err := r.Read(body, &got)
	if (err == nil) != (fastOK || slowErr == nil) || err == nil && !reflect.DeepEqual(got, slow) && !reflect.DeepEqual(got, fast) {
		t.Fatalf("Read(%q) = %+v, %v; fast %v, member by member %v", body, got, err, fastOK, slowErr)
	}
	if !isObject(body) || hasFoldedName(t, body, r.Paths()) || r.strict && errors.Is(err, ErrAmbiguous) {
		return // where Read means to differ from encoding/json (TestStrict checks when)
	}
	stdErr := json.Unmarshal(body, &std)
	if (stdErr == nil) != (err == nil) {
		t.Fatalf("%T: Read(%q) error %v, encoding/json error %v", got, body, err, stdErr)
	}
	if err == nil && !reflect.DeepEqual(got, std) {
		t.Fatalf("%T: Read(%q) = %+v, encoding/json = %+v", got, body, got, std)
	}
}

func isObject(body []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(body, &m) == nil && m != nil
}

// hasFoldedName reports whether any member name in body, at any depth,
// matches a segment of paths only when case is ignored.
func hasFoldedName(t *testing.T, body []byte, paths []string) bool {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return false
	}
	var segs []string
	for _, p := range paths {
		segs = append(segs, strings.Split(p, ".")...)
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				for _, s := range segs {
					if k != s && strings.EqualFold(k, s) {
						return true
					}
				}
				if walk(e) {
					return true
				}
			}
		case []any:
			for _, e := range x {
				if walk(e) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}

func TestExactNames(t *testing.T) {
	r := For[request]()
	for _, tc := range []struct {
		body string
		want request
	}{
		{`{"code":"abc"}`, request{Code: "abc"}},
		{`{"Code":"abc"}`, request{}},
		{`{"CODE":"abc","appid":"wx1"}`, request{AppID: "wx1"}},
		{`{"code":"bad!","Code":"good"}`, request{Code: "bad!"}},
		{`{"Code":"good","code":"bad!"}`, request{Code: "bad!"}},
		{`{"code":"a","code":"b"}`, request{Code: "b"}},
		{`{"co\u0064e":"escaped"}`, request{Code: "escaped"}},
		{`{"code":"\u0041"}`, request{Code: "A"}},
	} {
		var got request
		if err := r.Read([]byte(tc.body), &got); err != nil || got != tc.want {
			t.Errorf("Read(%s) = %+v, %v; want %+v", tc.body, got, err, tc.want)
		}
	}
}

func TestStrict(t *testing.T) {
	type claims struct {
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
	}
	r := Strict[claims]()
	for body, wantErr := range map[string]bool{
		`{"sub":"a","exp":1}`:         false,
		`{"sub":"a","SUB":"b"}`:       true,
		`{"SUB":"b"}`:                 true,
		`{"sub":"a","sub":"b"}`:       true,
		`{"x":1,"x":2}`:               true,
		`{"x":1,"X":2}`:               true,
		`{"s\u0075b":"a","sub":"b"}`:  true,
		`{"sub":"a","other":{"y":1}}`: false,
		`{"ſub":"b"}`:                 true, // U+017F folds to s: encoding/json takes it for sub
	} {
		var c claims
		err := r.Read([]byte(body), &c)
		if got := errors.Is(err, ErrAmbiguous); got != wantErr {
			t.Errorf("Read(%s) = %+v, %v; want ambiguous %v", body, c, err, wantErr)
		}
	}
}

func TestErrors(t *testing.T) {
	r := For[reply]()
	for _, body := range []string{`null`, `[]`, `"x"`, `1`} {
		var v reply
		if err := r.Read([]byte(body), &v); !errors.Is(err, ErrNotObject) {
			t.Errorf("Read(%s) = %v, want ErrNotObject", body, err)
		}
	}
	for _, body := range []string{``, `{`, `{"openid":"o"} x`, `{"openid":1}`, `{"phone_info":"x"}`, `{"expires_in":1.5}`} {
		var v reply
		if err := r.Read([]byte(body), &v); err == nil {
			t.Errorf("Read(%s) = %+v, want an error", body, v)
		}
	}
}

// TestPaths: the fields come from the struct tags, so a field added to a
// type is read without anything else to update.
func TestPaths(t *testing.T) {
	got := strings.Join(For[reply]().Paths(), " ")
	want := "errcode errmsg openid expires_in flag phone_info.purePhoneNumber phone_info.watermark.appid list nbf"
	if got != want {
		t.Errorf("Paths() = %s, want %s", got, want)
	}
}

func BenchmarkRead(b *testing.B) {
	body := []byte(`{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"+8613800138000","purePhoneNumber":"13800138000","countryCode":"86","watermark":{"timestamp":1637744274,"appid":"wx0123456789abcdef"}}}`)
	r := For[reply]()
	b.ReportAllocs()
	for b.Loop() {
		var v reply
		if err := r.Read(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}
