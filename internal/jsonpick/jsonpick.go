// Package jsonpick reads the members of a JSON object that a struct's json
// tags name, matched exactly as the tags spell them.
//
// encoding/json matches member names case-insensitively: {"Code":"x"}
// fills a field tagged "code". Where a body is inspected by others (a
// gateway, a WAF) or must mean one thing to every reader (a token), that is
// a second reading of the same bytes. A Reader matches names exactly; other
// spellings are unknown members, skipped like any other.
//
// It is also fast: the common body (ASCII, no escapes, values of the
// fields' types) is read without reflection over the values, after
// json.Valid has checked its syntax. Anything else is decoded member by
// member with encoding/json, which gives the same result (FuzzRead checks
// that the two agree, and that both agree with encoding/json wherever no
// name differs from a field's only by case).
package jsonpick

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Errors of Read, besides encoding/json's own for a malformed body or a
// value of the wrong type.
var (
	ErrNotObject = errors.New("not a JSON object")
	// ErrAmbiguous is a Strict reader's answer to a member given twice, or
	// to a name that differs from a field's only by case.
	ErrAmbiguous = errors.New("a member is given twice, or in another case")
)

// A Reader reads JSON objects into a T, whose exported fields name the
// members by their json tags (an untagged field by its Go name). A field of
// struct type that is not a json.Unmarshaler is a nested object; an
// embedded struct's fields are the outer object's.
type Reader[T any] struct {
	fields []field
	strict bool
}

// field is one leaf of T: its path of member names, joined by dots, and
// where it is in T.
type field struct {
	path  string
	index []int
	kind  kind
}

type kind int

const (
	other       kind = iota // decoded by encoding/json
	stringKind              // string
	intKind                 // int64
	boolKind                // bool
	unmarshaler             // its own UnmarshalJSON
)

// For returns the Reader of T. It panics when T is not a struct: it is
// called once per type, at start, with the program's own types.
func For[T any]() *Reader[T] {
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Struct {
		panic("jsonpick: " + t.String() + " is not a struct")
	}
	r := &Reader[T]{}
	r.fields = appendFields(nil, t, "", nil)
	return r
}

// Strict returns the Reader of T that refuses a body in which a member is
// given twice, or a name differs from a field's only by case: readers that
// pick the first, the last or the other spelling would disagree on what it
// says (RFC 7515 §4, RFC 8725 §3.4).
func Strict[T any]() *Reader[T] {
	r := For[T]()
	r.strict = true
	return r
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func appendFields(fs []field, t reflect.Type, prefix string, index []int) []field {
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() && !(sf.Anonymous && sf.Type.Kind() == reflect.Struct) {
			continue // encoding/json reads an embedded struct's fields, exported or not
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		idx := append(append([]int(nil), index...), i)
		isObject := sf.Type.Kind() == reflect.Struct && !reflect.PointerTo(sf.Type).Implements(unmarshalerType)
		if sf.Anonymous && name == "" && isObject {
			fs = appendFields(fs, sf.Type, prefix, idx)
			continue
		}
		if name == "" {
			name = sf.Name
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		if isObject {
			fs = appendFields(fs, sf.Type, path, idx)
			continue
		}
		k := other
		switch {
		case reflect.PointerTo(sf.Type).Implements(unmarshalerType):
			k = unmarshaler
		case sf.Type.Kind() == reflect.String:
			k = stringKind
		case sf.Type.Kind() == reflect.Int64:
			k = intKind
		case sf.Type.Kind() == reflect.Bool:
			k = boolKind
		}
		fs = append(fs, field{path: path, index: idx, kind: k})
	}
	return fs
}

// Paths lists the member paths the Reader reads, in field order.
func (r *Reader[T]) Paths() []string {
	p := make([]string, len(r.fields))
	for i, f := range r.fields {
		p[i] = f.path
	}
	return p
}

// Read sets *v from body, a JSON object: v is zeroed first, then each field
// takes its member's value, the last one where a member repeats (a Strict
// reader refuses that). Members no field names are skipped. A null leaves
// a field as it is, as in encoding/json.
func (r *Reader[T]) Read(body []byte, v *T) error {
	var zero T
	*v = zero
	root := reflect.ValueOf(v).Elem()
	if r.fast(body, root) {
		return nil
	}
	*v = zero // whatever the fast reader set before it gave up
	if !json.Valid(body) {
		var x any
		return json.Unmarshal(body, &x) // encoding/json's syntax error
	}
	return r.object(body, "", root)
}

// object decodes the object raw, whose members are at prefix, member by
// member with encoding/json.
func (r *Reader[T]) object(raw []byte, prefix string, root reflect.Value) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, _ := dec.Token(); t != json.Delim('{') {
		if prefix == "" {
			return ErrNotObject
		}
		return fmt.Errorf("member %s is not an object", prefix)
	}
	var seen []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key := t.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return err
		}
		path := key
		if prefix != "" {
			path = prefix + "." + key
		}
		if r.strict {
			for _, s := range seen {
				if strings.EqualFold(s, key) {
					return ErrAmbiguous
				}
			}
			seen = append(seen, key)
		}
		if strings.Contains(key, ".") {
			continue // no field's name has a dot: the path would lie
		}
		f, onPath, folded := r.lookup(path)
		switch {
		case f != nil:
			if err := json.Unmarshal(val, root.FieldByIndex(f.index).Addr().Interface()); err != nil {
				return fmt.Errorf("member %s: %w", path, err)
			}
		case onPath && string(val) == "null":
		case onPath:
			if err := r.object(val, path, root); err != nil {
				return err
			}
		case folded && r.strict:
			return ErrAmbiguous
		}
	}
	return nil
}

// lookup finds the field at path, or whether path leads to fields (an
// object on the way), or whether it matches one of those only when case is
// ignored.
func (r *Reader[T]) lookup(path string) (f *field, onPath, folded bool) {
	for i := range r.fields {
		fp := r.fields[i].path
		switch {
		case fp == path:
			return &r.fields[i], false, false
		case len(fp) > len(path) && fp[len(path)] == '.' && fp[:len(path)] == path:
			onPath = true
		case foldedPrefix(path, fp):
			folded = true
		}
	}
	return nil, onPath, folded
}

// foldedPrefix reports whether p equals path, or a prefix of path that ends
// at a dot, when case is ignored.
func foldedPrefix(p, path string) bool {
	if len(p) > len(path) || len(p) < len(path) && path[len(p)] != '.' {
		return strings.EqualFold(p, path) // Unicode folding may change lengths
	}
	return strings.EqualFold(p, path[:len(p)])
}

// fast reads body in the common case and reports whether it could: ASCII
// member names without escapes or dots, string values of printable ASCII
// without escapes, int64 and bool values as such. It returns false for
// anything else, and Read decodes body with encoding/json instead.
func (r *Reader[T]) fast(body []byte, root reflect.Value) bool {
	if !json.Valid(body) {
		return false
	}
	s := scan{b: body}
	s.space()
	if s.b[s.i] != '{' {
		return false
	}
	var path [64]byte
	return r.scanObject(&s, path[:0], root)
}

// scan walks JSON that json.Valid accepted, so it never checks syntax.
type scan struct {
	b []byte
	i int
}

func (r *Reader[T]) scanObject(s *scan, path []byte, root reflect.Value) bool {
	s.i++ // {
	s.space()
	if s.b[s.i] == '}' {
		s.i++
		return true
	}
	var seen [16]string
	nseen := 0
	for {
		s.space()
		key := s.value()
		if !plainKey(key) {
			return false
		}
		name := key[1 : len(key)-1]
		if r.strict {
			if nseen == len(seen) {
				return false
			}
			for _, k := range seen[:nseen] {
				if len(k) == len(name) && strings.EqualFold(k, string(name)) {
					return false
				}
			}
			seen[nseen] = string(name)
			nseen++
		}
		p := path
		if len(p) > 0 {
			p = append(p, '.')
		}
		p = append(p, name...)
		s.space()
		s.i++ // :
		s.space()

		var f *field
		onPath := false
		for k := range r.fields {
			fp := r.fields[k].path
			switch {
			case fp == string(p):
				f = &r.fields[k]
			case len(fp) > len(p) && fp[len(p)] == '.' && fp[:len(p)] == string(p):
				onPath = true
			case r.strict && foldedPrefix(string(p), fp):
				return false // refused by object, with its reason
			}
		}
		switch {
		case f != nil:
			if !set(f, s.value(), root) {
				return false
			}
		case onPath && s.b[s.i] == '{':
			if !r.scanObject(s, p, root) {
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

// set stores raw in f's field as encoding/json would, or reports false
// where encoding/json would fail or do more than this.
func set(f *field, raw []byte, root reflect.Value) bool {
	v := root.FieldByIndex(f.index)
	switch f.kind {
	case unmarshaler:
		return v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(raw) == nil
	case other:
		return raw[0] == 'n' // null leaves it; anything else is encoding/json's
	}
	if raw[0] == 'n' {
		return true
	}
	switch f.kind {
	case stringKind:
		if raw[0] != '"' {
			return false
		}
		for _, c := range raw[1 : len(raw)-1] {
			if c < 0x20 || c > 0x7e || c == '\\' {
				return false
			}
		}
		v.SetString(string(raw[1 : len(raw)-1]))
	case intKind:
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return false
		}
		v.SetInt(n)
	case boolKind:
		if raw[0] != 't' && raw[0] != 'f' {
			return false
		}
		v.SetBool(raw[0] == 't')
	}
	return true
}

// value skips the value at s.i and returns it, raw.
func (s *scan) value() []byte {
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

func (s *scan) skipString() {
	s.i++
	for s.b[s.i] != '"' {
		if s.b[s.i] == '\\' {
			s.i++
		}
		s.i++
	}
	s.i++
}

func (s *scan) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\r' || s.b[s.i] == '\n') {
		s.i++
	}
}

// isScalarByte reports whether c can be part of a number, true, false or
// null.
func isScalarByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || c == '-' || c == '+' || c == '.' || c == 'E'
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
