package wechat

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"wxlogin/internal/jsonpick"
)

// WeChat answers JSON served as text/plain, errors with HTTP 200, and
// errcode as a number or a numeric string (absent or 0 on success). Each
// answer type below is read by a jsonpick.Reader, whose members come from
// the struct tags: a field added to a type is read without anything else
// to keep in step, and member names match exactly as WeChat spells them.

// reply is an API's answer type.
type reply interface {
	read(body []byte) error
}

// status is the errcode and errmsg every answer may carry.
type status struct {
	ErrCode errcode `json:"errcode"`
	ErrMsg  string  `json:"errmsg"`
}

// readReply reads body into v with r, and returns a *Error (its API left
// for the caller to fill in) when st, v's status, has an errcode.
func readReply[T any](r *jsonpick.Reader[T], body []byte, v *T, st *status) error {
	if err := r.Read(body, v); err != nil {
		return err
	}
	if st.ErrCode != 0 {
		return &Error{Code: int(st.ErrCode), Msg: st.ErrMsg}
	}
	return nil
}

// The readers of the answers, made once.
var (
	code2SessionReader = jsonpick.For[code2SessionReply]()
	stableTokenReader  = jsonpick.For[stableTokenReply]()
	phoneReader        = jsonpick.For[phoneReply]()
)

// code2SessionReply is the part of code2Session's answer wxlogin reads.
// session_key is left out on purpose: what is never held cannot leak.
type code2SessionReply struct {
	status
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid"`
}

func (r *code2SessionReply) read(b []byte) error {
	return readReply(code2SessionReader, b, r, &r.status)
}

// stableTokenReply is stable_token's answer.
type stableTokenReply struct {
	status
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

func (r *stableTokenReply) read(b []byte) error {
	return readReply(stableTokenReader, b, r, &r.status)
}

// phoneReply is getuserphonenumber's answer. phoneNumber is not read: it
// is countryCode and purePhoneNumber.
type phoneReply struct {
	status
	PhoneInfo struct {
		PurePhoneNumber string    `json:"purePhoneNumber"`
		CountryCode     flexValue `json:"countryCode"`
		Watermark       struct {
			AppID string `json:"appid"`
		} `json:"watermark"`
	} `json:"phone_info"`
}

func (r *phoneReply) read(b []byte) error {
	return readReply(phoneReader, b, r, &r.status)
}

// errcode accepts a JSON number or a numeric string.
type errcode int

func (e *errcode) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var ok bool
		if s, ok = plainString(b); !ok {
			return errors.New("errcode is neither a number nor a numeric string")
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return errors.New("errcode is neither a number nor a numeric string")
	}
	*e = errcode(n)
	return nil
}

// flexValue is a JSON string or number, kept as its text: WeChat sends
// countryCode as a string, and numbers have been seen.
type flexValue string

func (f *flexValue) UnmarshalJSON(b []byte) error {
	if s, ok := plainString(b); ok {
		*f = flexValue(s)
		return nil
	}
	if len(b) > 0 && b[0] != '"' {
		var n json.Number
		if err := json.Unmarshal(b, &n); err == nil {
			*f = flexValue(n.String())
			return nil
		}
	}
	return errors.New("neither a digit string nor a number")
}

// plainString reads a JSON string without escapes, such as "86" or "-1":
// what WeChat sends for numbers as strings. It saves a nested
// json.Unmarshal on every answer.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	inner := b[1 : len(b)-1]
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}
	return string(inner), true
}
