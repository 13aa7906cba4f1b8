package main

import (
	"encoding/json"
	"reflect"
	"testing"
)

// wxAnswers are answers of the three APIs as WeChat sends them, and
// variants pickJSON must read (order, whitespace, extra members) or leave
// to encoding/json (escapes, other types, keys in another case, non-ASCII).
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

// FuzzPickJSON: wherever pickJSON reads an answer, encoding/json reads the
// same values from it, for each of the three replies.
func FuzzPickJSON(f *testing.F) {
	for _, a := range wxAnswers {
		f.Add([]byte(a))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, fresh := range []func() wxReply{
			func() wxReply { return new(code2SessionReply) },
			func() wxReply { return new(stableTokenReply) },
			func() wxReply { return new(phoneReply) },
		} {
			fast, slow := fresh(), fresh()
			if !pickJSON(body, fast.fields()) {
				continue // encoding/json decides: nothing to compare
			}
			if err := json.Unmarshal(body, slow); err != nil {
				t.Fatalf("pickJSON read %q into %T, json.Unmarshal fails: %v", body, fast, err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("pickJSON(%q) = %+v, json.Unmarshal = %+v", body, fast, slow)
			}
		}
	})
}

// TestPickJSONReadsWeChatAnswers: the answers as WeChat sends them take the
// fast path (else it would be dead code), the unusual ones do not.
func TestPickJSONReadsWeChatAnswers(t *testing.T) {
	for _, tt := range []struct {
		body  string
		reply wxReply
		fast  bool
	}{
		{wxAnswers[0], new(code2SessionReply), true},
		{wxAnswers[2], new(code2SessionReply), true},
		{wxAnswers[3], new(code2SessionReply), true},
		{wxAnswers[6], new(phoneReply), true},
		{wxAnswers[7], new(phoneReply), true},
		{wxAnswers[15], new(stableTokenReply), true},
		{`{"phone_info":"13800138000"}`, new(phoneReply), false},
		{`{"Phone_Info":{"purePhoneNumber":"1"}}`, new(phoneReply), false},
		{`{"OPENID":"upper","openid":"lower"}`, new(code2SessionReply), false},
		{`{"open\u0069d":"escaped key"}`, new(code2SessionReply), false},
		{`{"openid":"用户"}`, new(code2SessionReply), false},
		{`{"access_token":"A","expires_in":"7200"}`, new(stableTokenReply), false},
		{`null`, new(code2SessionReply), false},
		{`{"openid":"o"`, new(code2SessionReply), false},
	} {
		if got := pickJSON([]byte(tt.body), tt.reply.fields()); got != tt.fast {
			t.Errorf("pickJSON(%s) into %T = %v, want %v", tt.body, tt.reply, got, tt.fast)
		}
	}

	var r phoneReply
	if !pickJSON([]byte(wxAnswers[7]), r.fields()) {
		t.Fatal("the pretty-printed phone answer was not read")
	}
	want := phoneInfo{PurePhoneNumber: "13800138000", CountryCode: "86"}
	want.Watermark.AppID = testAppID
	if r.PhoneInfo != want {
		t.Errorf("phone answer read as %+v, want %+v", r.PhoneInfo, want)
	}
}

// TestParseReplyFallsBack: an answer pickJSON gives up on halfway through
// gives encoding/json's result.
func TestParseReplyFallsBack(t *testing.T) {
	var r code2SessionReply
	// pickJSON sets openid, then gives up at the escaped unionid.
	if err := parseReply(apiCode2Session, []byte(`{"openid":"o1","unionid":"u\u0031"}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.OpenID != "o1" || r.UnionID != "u1" {
		t.Errorf("parseReply = %+v, want openid o1 and unionid u1", r)
	}
	r = code2SessionReply{}
	if err := parseReply(apiCode2Session, []byte(`{"openid":"o1","OpenID":"o2"}`), &r); err != nil || r.OpenID != "o2" {
		t.Errorf("parseReply = %+v, %v; want openid o2 as encoding/json reads it", r, err)
	}
}
