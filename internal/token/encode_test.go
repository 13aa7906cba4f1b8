package token

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// trickyStrings are strings whose JSON encoding needs care.
var trickyStrings = []string{
	"",
	"plain",
	`"quoted"`,
	`back\slash\`,
	"\\\"",
	"line\nfeed\rreturn\ttab",
	"\x00\x01\x07\b\f\x0b\x1b\x1f\x7f",
	"<script>alert(1)</script>&amp;",
	"line\u2028separator\u2029paragraph",
	"\u2027\u202a", // beside U+2028 and U+2029
	"bad \xff byte",
	"\xc3",             // a cut sequence
	"\xc3\x28",         // an invalid continuation
	"\xed\xa0\x80",     // a UTF-16 surrogate in UTF-8
	"\xf4\x90\x80\x80", // beyond U+10FFFF
	"\xe2\x80",         // U+2028 cut short
	"\xef\xbf\xbd",     // U+FFFD itself
	"é 联合 \U0001F600",  // 2, 3 and 4 bytes
	"oABCDEFGhijklmn_-0123456789",
	"+8613800138000",
}

// checkAppendString compares appendString(s), decoded, with json.Marshal(s),
// decoded, and checks it is valid JSON and valid UTF-8.
func checkAppendString(t *testing.T, s string) {
	t.Helper()
	got := appendString([]byte("prefix:"), s)
	if !bytes.HasPrefix(got, []byte("prefix:")) {
		t.Fatalf("appendString(%q) lost what it appends to: %q", s, got)
	}
	got = got[len("prefix:"):]
	if !json.Valid(got) || !utf8.Valid(got) {
		t.Fatalf("appendString(%q) = %q, not valid UTF-8 JSON", s, got)
	}
	m, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("appendString(%q) = %q: %v", s, got, err)
	}
	if err := json.Unmarshal(m, &b); err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("appendString(%q) = %q, decodes to %q; want %q as json.Marshal's %q", s, got, a, b, m)
	}
}

func TestAppendString(t *testing.T) {
	t.Parallel()
	for _, s := range trickyStrings {
		checkAppendString(t, s)
	}
	// As json.Marshal, but for <, > and &, which need no escape in a token.
	if got := string(appendString(nil, "<a&b>")); got != `"<a&b>"` {
		t.Errorf("appendString(%q) = %s, want %s", "<a&b>", got, `"<a&b>"`)
	}
	// U+2028 and U+2029 are escaped, as json.Marshal escapes them.
	if got := string(appendString(nil, "\u2028\u2029")); got != `"\u2028\u2029"` {
		t.Errorf("appendString(%q) = %s, want %s", "\u2028\u2029", got, `"\u2028\u2029"`)
	}
	// Invalid UTF-8 becomes U+FFFD, escaped, as json.Marshal makes it.
	if got := string(appendString(nil, "a\xffb")); got != `"a\ufffdb"` {
		t.Errorf("appendString(%q) = %s, want %s", "a\xffb", got, `"a\ufffdb"`)
	}
}

// marshalClaims is json.Marshal's reading of c, as appendClaims writes
// it: one audience as a string (RFC 7519 §4.1.3), none as [].
func marshalClaims(t *testing.T, c *Claims) map[string]any {
	t.Helper()
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	switch len(c.Audience) {
	case 0:
		m["aud"] = []any{}
	case 1:
		m["aud"] = c.Audience[0]
	}
	return m
}

func TestAppendClaims(t *testing.T) {
	t.Parallel()
	nbf := testNow.Unix() - 60
	zero := int64(0)
	tests := []struct {
		name string
		c    Claims
	}{
		{"zero", Claims{}},
		{"login", Claims{Subject: "oSub", Issuer: testIssuer, Audience: Audience{testAppID}, IssuedAt: testNow.Unix(), Expiry: testNow.Unix() + 7200}},
		{"every field", Claims{Subject: "oSub", Issuer: "https://login.example.com", Audience: Audience{testAppID, "wxother"},
			IssuedAt: testNow.Unix(), Expiry: testNow.Unix() + 7200, NotBefore: &nbf, OpenID: "oOpen", UnionID: "oUnion",
			Phone: "+8613800138000", PhoneVerified: true}},
		{"nbf zero, negative times", Claims{Subject: "s", NotBefore: &zero, IssuedAt: -1, Expiry: -9223372036854775808}},
		{"phone verified without phone", Claims{Subject: "s", PhoneVerified: true}},
	}
	for i, s := range trickyStrings {
		tests = append(tests, struct {
			name string
			c    Claims
		}{"tricky " + string(rune('A'+i)), Claims{Subject: s, Issuer: s, Audience: Audience{s, strings.ToUpper(s)},
			OpenID: s + "1", UnionID: s + "2", Phone: s + "3"}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := appendClaims(nil, &tt.c)
			if !json.Valid(got) || !utf8.Valid(got) {
				t.Fatalf("appendClaims(%+v) = %q, not valid UTF-8 JSON", tt.c, got)
			}
			var m map[string]any
			if err := json.Unmarshal(got, &m); err != nil {
				t.Fatal(err)
			}
			if want := marshalClaims(t, &tt.c); !reflect.DeepEqual(m, want) {
				t.Errorf("appendClaims(%+v) = %s, decodes to\n%v; want json.Marshal's\n%v", tt.c, got, m, want)
			}
			// And the package's own strict reader reads it back.
			var back Claims
			if err := claimsReader.Read(got, &back); err != nil {
				t.Errorf("claimsReader.Read(appendClaims(%+v)) = %v", tt.c, err)
			}
		})
	}
}

// FuzzAppendString: appendString(s) decodes as json.Marshal(s) decodes,
// and is valid UTF-8 JSON.
func FuzzAppendString(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkAppendString(t, s)
	})
}
