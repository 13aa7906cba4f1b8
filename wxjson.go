package main

import (
	"encoding/json"
	"strconv"
)

// WeChat's answers are read on every login and phone request, and
// encoding/json's reflection costs more there than anything else we do:
// a phone answer takes 2.2 µs and 13 allocations to decode, a few per
// cent of the whole request's CPU (BenchmarkParseReply). pickJSON reads the answers as WeChat sends
// them in one pass, without reflection, and hands anything unusual to
// encoding/json, so that the result is always what json.Unmarshal would
// give (FuzzPickJSON checks exactly that).

// A jsonField is a value pickJSON reads: path is its keys from the top,
// joined by dots ("phone_info.watermark.appid"); dst is a *string, an
// *int64 or a json.Unmarshaler, as in the reply's struct.
type jsonField struct {
	path string
	dst  any
}

// pickJSON sets fields from body, a JSON object, and reports whether it
// could. It handles members with ASCII keys without escapes or dots, in any
// order and with any whitespace, and values of the fields' types (strings
// of printable ASCII without escapes). For anything else — a value of
// another type, a key that matches a field only when case is ignored (as
// encoding/json matches it) — it returns false, and the caller decodes
// body with encoding/json instead, which gives the same result or the
// error. Members outside the fields' paths are skipped unread.
func pickJSON(body []byte, fields []jsonField) bool {
	if !json.Valid(body) {
		return false
	}
	s := jsonScan{b: body}
	s.space()
	if s.b[s.i] != '{' {
		return false // null, an array, …: encoding/json decides
	}
	var path [64]byte
	return s.object(path[:0], fields)
}

// jsonScan walks JSON that json.Valid accepted, so it never has to
// check the syntax itself.
type jsonScan struct {
	b []byte
	i int
}

// object reads the object at s.i, whose members have the keys path (empty
// at the top) in front of theirs.
func (s *jsonScan) object(path []byte, fields []jsonField) bool {
	s.i++ // {
	s.space()
	if s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		s.space()
		key := s.value()
		if !plainKey(key) {
			return false
		}
		p := path
		if len(p) > 0 {
			p = append(p, '.')
		}
		p = append(p, key[1:len(key)-1]...)
		s.space()
		s.i++ // :
		s.space()

		var field *jsonField
		onPath := false // an object on the way to a field
		for k := range fields {
			f := &fields[k]
			switch {
			case string(p) == f.path:
				field = f
			case len(f.path) > len(p) && f.path[len(p)] == '.' && f.path[:len(p)] == string(p):
				onPath = true
			case foldedPrefix(string(p), f.path):
				return false // encoding/json would take it for the field
			}
		}
		switch {
		case field != nil:
			if !field.set(s.value()) {
				return false
			}
		case onPath && s.b[s.i] == '{':
			if !s.object(p, fields) {
				return false
			}
		case onPath && s.b[s.i] != 'n': // neither an object nor null
			return false
		default:
			s.value() // not ours
		}

		s.space()
		if s.b[s.i] == '}' {
			s.i++
			return true
		}
		s.i++ // ,
	}
}

// value skips the value at s.i and returns it, raw.
func (s *jsonScan) value() []byte {
	start := s.i
	switch s.b[s.i] {
	case '"':
		s.skipString()
	case '{', '[':
		for depth := 0; ; {
			switch s.b[s.i] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.i++
			if depth == 0 {
				break
			}
		}
	default: // a number, true, false or null
		for s.i < len(s.b) && isScalarByte(s.b[s.i]) {
			s.i++
		}
	}
	return s.b[start:s.i]
}

// skipString moves s.i past the string that starts at it.
func (s *jsonScan) skipString() {
	s.i++
	for s.b[s.i] != '"' {
		if s.b[s.i] == '\\' {
			s.i++
		}
		s.i++
	}
	s.i++
}

// isScalarByte reports whether c can be part of a number, true, false or
// null.
func isScalarByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || c == '-' || c == '+' || c == '.' || c == 'E'
}

func (s *jsonScan) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\r' || s.b[s.i] == '\n') {
		s.i++
	}
}

// plainKey reports whether key, a raw JSON string, is printable ASCII
// without escapes or dots.
func plainKey(key []byte) bool {
	if len(key) < 2 || key[0] != '"' {
		return false
	}
	for _, c := range key[1 : len(key)-1] {
		if c < 0x20 || c > 0x7e || c == '\\' || c == '.' {
			return false
		}
	}
	return true
}

// foldedPrefix reports whether p equals path, or a prefix of path that
// ends at a dot, when ASCII case is ignored.
func foldedPrefix(p, path string) bool {
	if len(p) > len(path) || len(p) < len(path) && path[len(p)] != '.' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if lower(p[i]) != lower(path[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// set stores raw in f.dst as encoding/json would, or reports false where
// encoding/json would fail or do more than this (escapes, non-ASCII).
func (f *jsonField) set(raw []byte) bool {
	if u, ok := f.dst.(json.Unmarshaler); ok {
		return u.UnmarshalJSON(raw) == nil // encoding/json calls it with null too
	}
	if raw[0] == 'n' {
		return true // null leaves the field as it is
	}
	switch d := f.dst.(type) {
	case *string:
		if raw[0] != '"' {
			return false
		}
		for _, c := range raw[1 : len(raw)-1] {
			if c < 0x20 || c > 0x7e || c == '\\' {
				return false
			}
		}
		*d = string(raw[1 : len(raw)-1])
		return true
	case *int64:
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return false
		}
		*d = n
		return true
	}
	return false
}
