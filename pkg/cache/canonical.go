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
	p := canonicalizer{
		in:      body,
		out:     make([]byte, 0, len(body)),
		objs:    make([]object, 0, 16),
		members: make([]member, 0, 16),
	}
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
	if !p.reorder {
		return p.out, nil
	}
	final := make([]byte, 0, len(p.out))
	final, _ = p.emit(final, 0, len(p.out), 0)
	return final, nil
}

// canonicalizer works in two passes, each linear in the input: the parse
// writes every value in canonical form but objects' members in input
// order, noting where each object and member lies; then, only if some
// object was out of order, emit copies that buffer once more with those
// objects' members in key order. (Sorting in place as each object closes
// would copy nested objects once per level: quadratic on a hostile body.)
type canonicalizer struct {
	in    []byte
	pos   int
	out   []byte
	depth int
	// objs are the objects in the order they open.
	objs []object
	// members is a stack of the members of the objects being parsed; an
	// object owns members[base:] while it is parsed.
	members []member
	// sorted holds the members of each out-of-order object, in key order.
	sorted  []span
	reorder bool
	// str holds an unescaped string while it is re-encoded.
	str []byte
}

// object is where one object lies in out: out[start] is '{' and
// out[end-1] is '}'. objs[index+1:next] are the objects inside it. When
// its members are out of order, sorted[mOff:mOff+mN] lists them in key
// order.
type object struct {
	start, end int
	next       int
	unsorted   bool
	mOff, mN   int
}

// member is one object member written to out[start:end] ("key":value);
// objs[objFrom] is the first object that may lie inside it. key is its
// unescaped key, needed only while the object is parsed (it points into
// the input when the key had no escapes).
type member struct {
	key []byte
	span
}

// span is where a member lies (no pointers: cheap to keep and copy).
type span struct {
	start, end int
	objFrom    int
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
	oi := len(p.objs)
	p.objs = append(p.objs, object{start: len(p.out)})
	p.pos++ // {
	p.out = append(p.out, '{')
	base := len(p.members)
	p.skipSpace()
	inOrder := true
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
	} else {
		for {
			p.skipSpace()
			if p.pos >= len(p.in) || p.in[p.pos] != '"' {
				return p.fail("expected a string key")
			}
			m := member{span: span{start: len(p.out)}}
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
			m.objFrom = len(p.objs)
			if err := p.value(); err != nil {
				return err
			}
			m.end = len(p.out)
			if len(p.members) > base {
				switch c := bytes.Compare(p.members[len(p.members)-1].key, m.key); {
				case c == 0:
					return p.fail(fmt.Sprintf("duplicate key %q", m.key))
				case c > 0:
					inOrder = false
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
	}
	p.out = append(p.out, '}')
	o := &p.objs[oi]
	o.end, o.next = len(p.out), len(p.objs)
	if !inOrder {
		ms := p.members[base:]
		slices.SortFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
		for i := 1; i < len(ms); i++ {
			if bytes.Equal(ms[i-1].key, ms[i].key) {
				return p.fail(fmt.Sprintf("duplicate key %q", ms[i].key))
			}
		}
		o.unsorted, o.mOff, o.mN = true, len(p.sorted), len(ms)
		for _, m := range ms {
			p.sorted = append(p.sorted, m.span)
		}
		p.reorder = true
	}
	p.members = p.members[:base]
	p.depth--
	return nil
}

// emit appends out[start:end] to dst with the members of out-of-order
// objects in key order; oi is the first object that opens at or after
// start. It returns the first object after the region.
func (p *canonicalizer) emit(dst []byte, start, end, oi int) ([]byte, int) {
	pos := start
	for oi < len(p.objs) && p.objs[oi].start < end {
		o := p.objs[oi]
		if !o.unsorted {
			oi++ // copied as it is; objects inside it are handled in turn
			continue
		}
		dst = append(dst, p.out[pos:o.start]...)
		dst = append(dst, '{')
		for i, m := range p.sorted[o.mOff : o.mOff+o.mN] {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst, _ = p.emit(dst, m.start, m.end, m.objFrom)
		}
		dst = append(dst, '}')
		pos, oi = o.end, o.next
	}
	return append(dst, p.out[pos:end]...), oi
}

// string reads the string at pos and writes its canonical encoding. With
// wantKey it returns the unescaped value, valid until the input or the
// next call changes (it points into the input or into a fresh copy).
func (p *canonicalizer) string(wantKey bool) ([]byte, error) {
	in := p.in
	i := p.pos + 1
	// Fast path: valid UTF-8 without escapes or control characters is
	// already canonical.
	for i < len(in) {
		c := in[i]
		if c == '"' || c == '\\' || c < 0x20 {
			break
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		if r == utf8.RuneError && n == 1 {
			p.pos = i
			return nil, p.fail("invalid UTF-8 in string")
		}
		i += n
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
		// Copy a run of plain ASCII at once.
		j := i
		for j < len(in) && in[j] >= 0x20 && in[j] < utf8.RuneSelf && in[j] != '"' && in[j] != '\\' {
			j++
		}
		s = append(s, in[i:j]...)
		if i = j; i >= len(in) {
			continue
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
