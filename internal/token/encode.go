package token

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// appendClaims encodes c as JSON, as json.Marshal would (without escaping
// <, > and &), by hand: a login signs a token, and reflection would be a
// visible share of its cost.
func appendClaims(b []byte, c *Claims) []byte {
	b = append(b, `{"sub":`...)
	b = appendString(b, c.Subject)
	b = append(b, `,"iss":`...)
	b = appendString(b, c.Issuer)
	b = append(b, `,"aud":`...)
	if len(c.Audience) == 1 {
		b = appendString(b, c.Audience[0])
	} else {
		b = append(b, '[')
		for i, a := range c.Audience {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, a)
		}
		b = append(b, ']')
	}
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, c.IssuedAt, 10)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, c.Expiry, 10)
	if c.NotBefore != nil {
		b = append(b, `,"nbf":`...)
		b = strconv.AppendInt(b, *c.NotBefore, 10)
	}
	b = appendMember(b, "openid", c.OpenID)
	b = appendMember(b, "unionid", c.UnionID)
	b = appendMember(b, "phone_number", c.Phone)
	if c.PhoneVerified {
		b = append(b, `,"phone_number_verified":true`...)
	}
	return append(b, '}')
}

// appendMember appends ,"name":value for a value that is not empty.
func appendMember(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json escapes
// it, but for <, > and &, which stay as they are.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			switch r {
			case utf8.RuneError:
				b = append(b, `\ufffd`...)
			default:
				b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// plainString reads a JSON string without escapes or control characters.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	inner := b[1 : len(b)-1]
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 || c >= utf8.RuneSelf {
			return "", false
		}
	}
	return string(inner), true
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
