package request

import (
	"fmt"
	"unicode/utf8"
)

// SetIncludeUsage returns body with stream_options.include_usage set to
// true, so a stream reports its usage. The edit is minimal and every other
// byte is kept:
//
//   - no stream_options: `"stream_options":{"include_usage":true}` is added
//     after the last top-level member (with a comma) or into an empty object;
//   - stream_options null: the null becomes {"include_usage":true};
//   - stream_options an object without include_usage: `"include_usage":true`
//     is added to it the same way;
//   - include_usage false or null: the value becomes true;
//   - include_usage true: body itself is returned, unchanged.
//
// body must pass the same checks as Parse (errors are *Error); a
// stream_options or include_usage of another type is KindInvalidField, and
// a case variant of either key ("Stream_Options") is KindDuplicateKey since
// adding the key would create a pair Parse refuses.
func SetIncludeUsage(body []byte) ([]byte, error) {
	s := getScanner()
	defer putScanner(s)
	if err := s.scan(body, MaxDepth, true); err != nil {
		return nil, err
	}
	so := s.member(0, "stream_options")
	if so < 0 {
		if err := s.caseVariant(0, "stream_options"); err != nil {
			return nil, err
		}
		return s.insert(0, []byte(`"stream_options":{"include_usage":true}`)), nil
	}
	switch s.nodes[so].kind {
	case kindNull:
		return s.replace(so, []byte(`{"include_usage":true}`)), nil
	case kindObject:
	default:
		return nil, invalidField("stream_options", "an object")
	}
	iu := s.member(so, "include_usage")
	if iu < 0 {
		if err := s.caseVariant(so, "include_usage"); err != nil {
			return nil, err
		}
		return s.insert(so, []byte(`"include_usage":true`)), nil
	}
	switch n := s.nodes[iu]; {
	case n.kind == kindBool && body[n.start] == 't':
		return body, nil
	case n.kind == kindBool || n.kind == kindNull:
		return s.replace(iu, []byte("true")), nil
	}
	return nil, invalidField("stream_options.include_usage", "a boolean")
}

// SetTopLevel returns body with the top-level member key set to value (raw
// JSON, inserted as given): the old value's bytes are replaced if key is
// present, otherwise `"key":value` is added after the last member (or into
// an empty object). Every other byte is kept.
//
// body must pass the same checks as Parse (errors are *Error, and a case
// variant of key is KindDuplicateKey). A key that is not UTF-8 or a value
// that is not one valid JSON value is the caller's bug and yields a plain
// error.
func SetTopLevel(body []byte, key string, value []byte) ([]byte, error) {
	if !utf8.ValidString(key) {
		return nil, fmt.Errorf("request: SetTopLevel: key is not valid UTF-8")
	}
	s := getScanner()
	defer putScanner(s)
	// The value lands one level down, so it may nest one level less.
	if err := s.scan(value, MaxDepth-1, false); err != nil {
		// Not wrapped: this is the caller's bug, not a client error to show.
		return nil, fmt.Errorf("request: SetTopLevel %q: the value is not valid JSON: %v", key, err.Message)
	}
	if err := s.scan(body, MaxDepth, true); err != nil {
		return nil, err
	}
	if c := s.member(0, key); c >= 0 {
		return s.replace(c, value), nil
	}
	if err := s.caseVariant(0, key); err != nil {
		return nil, err
	}
	m := appendQuoted(make([]byte, 0, len(key)+len(value)+3), key)
	m = append(m, ':')
	return s.insert(0, append(m, value...)), nil
}

// caseVariant returns a KindDuplicateKey error if object obj has a key that
// differs from key only in case (call it when key itself is absent).
func (s *scanner) caseVariant(obj int, key string) *Error {
	want := appendFold(nil, []byte(key))
	var got []byte
	for c := obj + 1; c < int(s.nodes[obj].next); c = int(s.nodes[c].next) {
		k := s.keyOf(c)
		if got = appendFold(got[:0], k); string(got) == string(want) {
			e := echoKey(k)
			return &Error{Kind: KindDuplicateKey, Param: e, Message: fmt.Sprintf(
				"the request body has the key %q, which differs from %q only in case; use %q", e, key, key)}
		}
	}
	return nil
}

// insert returns a copy of the body with member (`"key":value`) added to
// object obj: right after its last member's value, or just before the
// closing brace of an empty object.
func (s *scanner) insert(obj int, member []byte) []byte {
	o := s.nodes[obj]
	at := int(o.end) - 1
	comma := false
	if o.count > 0 {
		last := obj + 1
		for c := last; c < int(o.next); c = int(s.nodes[c].next) {
			last = c
		}
		at, comma = int(s.nodes[last].end), true
	}
	out := make([]byte, 0, len(s.b)+len(member)+1)
	out = append(out, s.b[:at]...)
	if comma {
		out = append(out, ',')
	}
	out = append(out, member...)
	return append(out, s.b[at:]...)
}

// replace returns a copy of the body with node c's value replaced.
func (s *scanner) replace(c int, value []byte) []byte {
	n := s.nodes[c]
	out := make([]byte, 0, len(s.b)-int(n.end-n.start)+len(value))
	out = append(out, s.b[:n.start]...)
	out = append(out, value...)
	return append(out, s.b[n.end:]...)
}

// appendQuoted appends s (valid UTF-8) as a JSON string.
func appendQuoted(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
