package cache

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrNotCanonical is returned by [Canonical] for a body that has no
// canonical form: not JSON, or JSON whose meaning is ambiguous (duplicate
// keys, invalid UTF-8, lone UTF-16 surrogates). Such a request is simply
// not cached.
var ErrNotCanonical = errors.New("cache: body has no canonical JSON form")

// maxDepth bounds nesting, as encoding/json does.
const maxDepth = 10000

// Canonical returns the canonical form of a JSON request body: the same
// value re-encoded with the members of every object sorted by key (bytewise
// on the UTF-8 key), no insignificant whitespace, numbers exactly as
// written (1.0 stays 1.0, 1e3 stays 1e3: never through float64), and
// strings re-encoded in one way: only '"', '\\' and control characters are
// escaped (\b \f \n \r \t, else \u00XX), everything else is literal UTF-8.
// So two bodies that differ only in key order, whitespace or string
// escaping have the same form, and any other difference shows.
//
// A body that is empty or only whitespace has the empty form (nil). A body
// that is not valid JSON, or holds duplicate object keys (after unescaping),
// invalid UTF-8 or a lone surrogate escape, fails with [ErrNotCanonical]:
// encoding/json would silently pick or replace those, so two different
// bodies could look equal.
func Canonical(body []byte) ([]byte, error) {
	p := canonicalizer{in: body, out: make([]byte, 0, len(body))}
	p.skipSpace()
	if p.pos == len(p.in) {
		return nil, nil
	}
	if err := p.value(); err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.in) {
		return nil, p.fail("data after the top-level value")
	}
	return p.out, nil
}

type canonicalizer struct {
	in    []byte
	pos   int
	out   []byte
	depth int
	// members is a stack of the members of the objects being built; an
	// object owns members[base:] while it is parsed.
	members []member
	// tmp holds an object's members while they are written back sorted.
	tmp []byte
	// str holds an unescaped string while it is re-encoded.
	str []byte
}

// member is one object member already written to out[start:end]; key is
// its unescaped key (pointing into the input when it had no escapes).
type member struct {
	key        []byte
	start, end int
}

func (p *canonicalizer) fail(what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrNotCanonical, what, p.pos)
}

func (p *canonicalizer) skipSpace() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *canonicalizer) value() error {
	if p.pos >= len(p.in) {
		return p.fail("unexpected end of input")
	}
	switch c := p.in[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		_, err := p.string(false)
		return err
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	default:
		return p.fail(fmt.Sprintf("unexpected character %q", c))
	}
}

func (p *canonicalizer) literal(lit string) error {
	if !bytes.HasPrefix(p.in[p.pos:], []byte(lit)) {
		return p.fail("invalid literal")
	}
	p.out = append(p.out, lit...)
	p.pos += len(lit)
	return nil
}

// number copies a number after checking RFC 8259's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *canonicalizer) number() error {
	in, i := p.in, p.pos
	digits := func() int {
		n := 0
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if in[i] == '-' {
		i++
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case digits() == 0:
		return p.fail("invalid number")
	}
	if i < len(in) && in[i] == '.' {
		i++
		if digits() == 0 {
			return p.fail("invalid number")
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if digits() == 0 {
			return p.fail("invalid number")
		}
	}
	p.out = append(p.out, in[p.pos:i]...)
	p.pos = i
	return nil
}

func (p *canonicalizer) array() error {
	if p.depth++; p.depth > maxDepth {
		return p.fail("nesting too deep")
	}
	p.pos++ // [
	p.out = append(p.out, '[')
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == ']' {
		p.pos++
		p.out = append(p.out, ']')
		p.depth--
		return nil
	}
	for {
		p.skipSpace()
		if err := p.value(); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.in) {
			return p.fail("unterminated array")
		}
		switch p.in[p.pos] {
		case ',':
			p.pos++
			p.out = append(p.out, ',')
		case ']':
			p.pos++
			p.out = append(p.out, ']')
			p.depth--
			return nil
		default:
			return p.fail("expected ',' or ']'")
		}
	}
}

func (p *canonicalizer) object() error {
	if p.depth++; p.depth > maxDepth {
		return p.fail("nesting too deep")
	}
	p.pos++ // {
	p.out = append(p.out, '{')
	start := len(p.out)
	base := len(p.members)
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		p.out = append(p.out, '}')
		p.depth--
		return nil
	}
	sorted := true
	for {
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != '"' {
			return p.fail("expected a string key")
		}
		m := member{start: len(p.out)}
		key, err := p.string(true)
		if err != nil {
			return err
		}
		m.key = key
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != ':' {
			return p.fail("expected ':'")
		}
		p.pos++
		p.out = append(p.out, ':')
		p.skipSpace()
		if err := p.value(); err != nil {
			return err
		}
		m.end = len(p.out)
		if len(p.members) > base {
			switch c := bytes.Compare(p.members[len(p.members)-1].key, m.key); {
			case c == 0:
				return p.fail(fmt.Sprintf("duplicate key %q", m.key))
			case c > 0:
				sorted = false
			}
		}
		p.members = append(p.members, m)
		p.skipSpace()
		if p.pos >= len(p.in) {
			return p.fail("unterminated object")
		}
		if p.in[p.pos] == ',' {
			p.pos++
			p.out = append(p.out, ',')
			continue
		}
		if p.in[p.pos] != '}' {
			return p.fail("expected ',' or '}'")
		}
		p.pos++
		break
	}
	if !sorted {
		if err := p.sortMembers(start, p.members[base:]); err != nil {
			return err
		}
	}
	p.members = p.members[:base]
	p.out = append(p.out, '}')
	p.depth--
	return nil
}

// sortMembers rewrites out[start:] (the members of one object, separated by
// commas) in key order.
func (p *canonicalizer) sortMembers(start int, ms []member) error {
	slices.SortFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
	for i := 1; i < len(ms); i++ {
		if bytes.Equal(ms[i-1].key, ms[i].key) {
			return p.fail(fmt.Sprintf("duplicate key %q", ms[i].key))
		}
	}
	p.tmp = append(p.tmp[:0], p.out[start:]...)
	p.out = p.out[:start]
	for i, m := range ms {
		if i > 0 {
			p.out = append(p.out, ',')
		}
		p.out = append(p.out, p.tmp[m.start-start:m.end-start]...)
	}
	return nil
}

// string reads the string at pos and writes its canonical encoding. With
// wantKey it returns the unescaped value, valid until the input or the
// next call changes (it points into the input or into a fresh copy).
func (p *canonicalizer) string(wantKey bool) ([]byte, error) {
	in := p.in
	i := p.pos + 1
	// Fast path: printable ASCII without escapes is already canonical.
	for i < len(in) && in[i] != '"' && in[i] != '\\' && in[i] >= 0x20 && in[i] < utf8.RuneSelf {
		i++
	}
	if i < len(in) && in[i] == '"' {
		raw := in[p.pos+1 : i]
		p.out = append(p.out, in[p.pos:i+1]...)
		p.pos = i + 1
		return raw, nil
	}
	// Slow path: unescape into p.str, then encode.
	s := append(p.str[:0], in[p.pos+1:i]...)
	for {
		if i >= len(in) {
			p.pos = i
			return nil, p.fail("unterminated string")
		}
		c := in[i]
		switch {
		case c == '"':
			p.pos = i + 1
			p.str = s
			p.out = appendString(p.out, s)
			if wantKey {
				return bytes.Clone(s), nil
			}
			return nil, nil
		case c < 0x20:
			p.pos = i
			return nil, p.fail("control character in string")
		case c < utf8.RuneSelf && c != '\\':
			s = append(s, c)
			i++
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && n == 1 {
				p.pos = i
				return nil, p.fail("invalid UTF-8 in string")
			}
			s = append(s, in[i:i+n]...)
			i += n
		default: // backslash
			if i+1 >= len(in) {
				p.pos = i
				return nil, p.fail("unterminated escape")
			}
			e := in[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				s = append(s, e)
			case 'b':
				s = append(s, '\b')
			case 'f':
				s = append(s, '\f')
			case 'n':
				s = append(s, '\n')
			case 'r':
				s = append(s, '\r')
			case 't':
				s = append(s, '\t')
			case 'u':
				r, ok := hex4(in, i)
				if !ok {
					p.pos = i
					return nil, p.fail("invalid \\u escape")
				}
				i += 4
				if utf16.IsSurrogate(r) {
					// Only a high surrogate followed by a low one is a
					// character; encoding/json would turn anything else
					// into U+FFFD, hiding the difference.
					var r2 rune = -1
					if i+1 < len(in) && in[i] == '\\' && in[i+1] == 'u' {
						r2, ok = hex4(in, i+2)
						if !ok {
							r2 = -1
						}
					}
					dec := utf16.DecodeRune(r, r2)
					if dec == utf8.RuneError {
						p.pos = i
						return nil, p.fail("lone surrogate in string")
					}
					r = dec
					i += 6
				}
				s = utf8.AppendRune(s, r)
			default:
				p.pos = i
				return nil, p.fail("invalid escape")
			}
		}
	}
}

func hex4(in []byte, i int) (rune, bool) {
	if i+4 > len(in) {
		return 0, false
	}
	var r rune
	for _, c := range in[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// appendString writes s (valid UTF-8) as a canonical JSON string.
func appendString(out, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	out = append(out, '"')
	last := 0
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		out = append(out, s[last:i]...)
		last = i + 1
		switch c {
		case '"', '\\':
			out = append(out, '\\', c)
		case '\b':
			out = append(out, '\\', 'b')
		case '\f':
			out = append(out, '\\', 'f')
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		default:
			out = append(out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	out = append(out, s[last:]...)
	return append(out, '"')
}
