package request

import (
	"fmt"
	"math"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of objects and arrays a body may have; the
// top-level object is depth 1. Real requests nest about 6 deep (messages →
// content part → image_url → url); tool schemas add a few levels.
const MaxDepth = 256

// kind is the JSON type of a node.
type kind uint8

const (
	kindObject kind = iota + 1
	kindArray
	kindString
	kindNumber
	kindBool
	kindNull
)

const (
	flagEscaped    uint8 = 1 << iota // string value holds a backslash escape
	flagKeyEscaped                   // member key holds a backslash escape
	flagNonNumber                    // array: some element is not a number
)

// node is one value of a scanned document. Nodes sit in document order (a
// pre-order walk), so a container's descendants are the nodes between it and
// its next index. Every object member and every container is a node; scalar
// array elements are only counted, so a 100k-token prompt array costs no
// memory.
type node struct {
	start, end       int32 // the value: body[start:end]
	keyStart, keyEnd int32 // object member: the key's bytes inside its quotes; -1 otherwise
	next             int32 // index of the first node after this subtree
	count            int32 // object: members; array: elements, scalars included
	kind             kind
	flags            uint8
}

// frame is an open container while scanning.
type frame struct {
	node int32
	keys int32 // object: where its keys begin in scanner.keys
	fold int32 // object: len(scanner.fold) when it opened
	// set replaces the linear search once an object has many keys, so a
	// body with one huge object stays linear.
	set map[string]struct{}
}

// keyRef is a folded key of an open object, as a range of scanner.fold.
type keyRef struct{ off, end int32 }

// linearKeys is how many keys an object may have before duplicate detection
// switches from a linear search to a map.
const linearKeys = 16

// scanner validates a document strictly in one pass and records its nodes.
// It never recurses: open containers live on an explicit stack.
type scanner struct {
	b     []byte
	nodes []node
	stack []frame
	keys  []keyRef
	fold  []byte
	tmp   []byte // scratch for a decoded key or string
}

var scanners = sync.Pool{New: func() any { return new(scanner) }}

func getScanner() *scanner { return scanners.Get().(*scanner) }

// putScanner recycles s unless a pathological body made it large.
func putScanner(s *scanner) {
	if cap(s.nodes) > 1<<16 || cap(s.fold) > 1<<16 || cap(s.tmp) > 1<<16 {
		return
	}
	s.b = nil
	clear(s.stack[:cap(s.stack)])
	scanners.Put(s)
}

// scan checks that b is exactly one JSON value (RFC 8259, UTF-8) with no
// duplicate or case-variant keys in any object and at most maxDepth levels
// of nesting, and records its nodes. If object is set, the value must be an
// object.
func (s *scanner) scan(b []byte, maxDepth int, object bool) *Error {
	if len(b) > math.MaxInt32 {
		return &Error{Kind: KindMalformed, Message: "the request body is too large to parse"}
	}
	s.b = b
	s.nodes = s.nodes[:0]
	s.stack = s.stack[:0]
	s.keys = s.keys[:0]
	s.fold = s.fold[:0]

	i := skipWS(b, 0)
	if object && (i >= len(b) || b[i] != '{') {
		return &Error{Kind: KindMalformed, Message: "the request body must be a JSON object"}
	}
	keyStart, keyEnd, keyFlags := int32(-1), int32(-1), uint8(0)
	for {
		// A value starts at i; keyStart… describe its key if it is a member.
		if i >= len(b) {
			return malformed(i, "unexpected end of input")
		}
		c := b[i]
		var k kind
		end := i + 1
		flags := keyFlags
		switch {
		case c == '{' || c == '[':
			if len(s.stack) >= maxDepth {
				return malformed(i, fmt.Sprintf("nesting deeper than %d levels", maxDepth))
			}
			k = kindArray
			if c == '{' {
				k = kindObject
			}
			s.counted(k)
			s.stack = append(s.stack, frame{node: int32(len(s.nodes)), keys: int32(len(s.keys)), fold: int32(len(s.fold))})
			s.nodes = append(s.nodes, node{start: int32(i), keyStart: keyStart, keyEnd: keyEnd, kind: k, flags: flags})
			i = skipWS(b, i+1)
			if i < len(b) && (b[i] == '}' && k == kindObject || b[i] == ']' && k == kindArray) {
				s.close(i)
				i++
				break
			}
			if k == kindObject {
				var err *Error
				if i, keyStart, keyEnd, keyFlags, err = s.key(i); err != nil {
					return err
				}
			} else {
				keyStart, keyEnd, keyFlags = -1, -1, 0
			}
			continue
		case c == '"':
			var esc bool
			var err *Error
			if end, esc, err = scanString(b, i); err != nil {
				return err
			}
			k = kindString
			if esc {
				flags |= flagEscaped
			}
		case c == '-' || '0' <= c && c <= '9':
			k = kindNumber
			if end = scanNumber(b, i); end < 0 {
				return malformed(i, "invalid number")
			}
		case c == 't':
			k, end = kindBool, i+4
			if !hasPrefix(b[i:], "true") {
				return malformed(i, "invalid literal")
			}
		case c == 'f':
			k, end = kindBool, i+5
			if !hasPrefix(b[i:], "false") {
				return malformed(i, "invalid literal")
			}
		case c == 'n':
			k, end = kindNull, i+4
			if !hasPrefix(b[i:], "null") {
				return malformed(i, "invalid literal")
			}
		default:
			return malformed(i, "invalid character")
		}
		if k != kindObject && k != kindArray {
			if s.counted(k) {
				s.nodes = append(s.nodes, node{
					start: int32(i), end: int32(end), keyStart: keyStart, keyEnd: keyEnd,
					next: int32(len(s.nodes) + 1), kind: k, flags: flags,
				})
			}
			i = end
		}

		// After a value: close containers until one expects another value.
		for {
			i = skipWS(b, i)
			if len(s.stack) == 0 {
				if i != len(b) {
					return malformed(i, "data after the top-level value")
				}
				return nil
			}
			if i >= len(b) {
				return malformed(i, "unexpected end of input")
			}
			top := s.nodes[s.stack[len(s.stack)-1].node].kind
			c := b[i]
			if c == ',' {
				i = skipWS(b, i+1)
				if top == kindObject {
					var err *Error
					if i, keyStart, keyEnd, keyFlags, err = s.key(i); err != nil {
						return err
					}
				} else {
					keyStart, keyEnd, keyFlags = -1, -1, 0
				}
				break
			}
			if c == '}' && top == kindObject || c == ']' && top == kindArray {
				s.close(i)
				i++
				continue
			}
			return malformed(i, "expected ',' or the end of the object or array")
		}
	}
}

// counted records a new value of kind k in its parent and reports whether
// it needs a node: scalars inside arrays do not.
func (s *scanner) counted(k kind) bool {
	if len(s.stack) == 0 {
		return true
	}
	p := &s.nodes[s.stack[len(s.stack)-1].node]
	p.count++
	if p.kind == kindObject {
		return true
	}
	if k != kindNumber {
		p.flags |= flagNonNumber
	}
	return k == kindObject || k == kindArray
}

// close ends the innermost container at the bracket at i.
func (s *scanner) close(i int) {
	f := s.stack[len(s.stack)-1]
	n := &s.nodes[f.node]
	n.end = int32(i + 1)
	n.next = int32(len(s.nodes))
	s.keys = s.keys[:f.keys]
	s.fold = s.fold[:f.fold]
	s.stack[len(s.stack)-1] = frame{}
	s.stack = s.stack[:len(s.stack)-1]
}

// key reads an object key at i, checks it against the other keys of the
// innermost object, and skips the colon after it.
func (s *scanner) key(i int) (next int, start, end int32, flags uint8, err *Error) {
	b := s.b
	if i >= len(b) || b[i] != '"' {
		return 0, 0, 0, 0, malformed(i, "expected a string key")
	}
	e, esc, err := scanString(b, i)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	raw := b[i+1 : e-1]
	dec := raw
	if esc {
		flags = flagKeyEscaped
		s.tmp = appendUnescaped(s.tmp[:0], raw)
		dec = s.tmp
	}
	if s.seen(dec) {
		return 0, 0, 0, 0, duplicateKey(dec)
	}
	next = skipWS(b, e)
	if next >= len(b) || b[next] != ':' {
		return 0, 0, 0, 0, malformed(next, "expected ':' after a key")
	}
	return skipWS(b, next+1), int32(i + 1), int32(e - 1), flags, nil
}

// seen folds key and reports whether the innermost object already has a key
// with the same fold; otherwise it remembers this one.
func (s *scanner) seen(key []byte) bool {
	f := &s.stack[len(s.stack)-1]
	off := len(s.fold)
	s.fold = appendFold(s.fold, key)
	folded := s.fold[off:]
	if f.set != nil {
		_, dup := f.set[string(folded)]
		if !dup {
			f.set[string(folded)] = struct{}{}
		}
		s.fold = s.fold[:off]
		return dup
	}
	for _, k := range s.keys[f.keys:] {
		if string(s.fold[k.off:k.end]) == string(folded) {
			return true
		}
	}
	s.keys = append(s.keys, keyRef{int32(off), int32(len(s.fold))})
	if len(s.keys)-int(f.keys) > linearKeys {
		f.set = make(map[string]struct{}, 2*linearKeys)
		for _, k := range s.keys[f.keys:] {
			f.set[string(s.fold[k.off:k.end])] = struct{}{}
		}
		s.keys = s.keys[:f.keys]
		s.fold = s.fold[:f.fold]
	}
	return false
}

// appendFold appends a case-folded key: two keys fold alike exactly when
// strings.EqualFold says they are equal (each rune maps to the smallest rune
// of its simple-folding orbit, so "K", "k" and the Kelvin sign U+212A all
// fold to "K"). That is at least as broad as the case-insensitive matching
// of encoding/json, which is the ambiguity this guards against.
func appendFold(dst, key []byte) []byte {
	for i := 0; i < len(key); {
		c := key[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		i += n
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		dst = utf8.AppendRune(dst, m)
	}
	return dst
}

// scanString returns the index just past the string starting at the quote
// at i, and whether it holds escapes. Raw bytes must be valid UTF-8; escaped
// lone surrogates are allowed (RFC 8259 grammar allows them, and they can
// come from a client's broken text) and decode to U+FFFD as in encoding/json.
func scanString(b []byte, i int) (end int, esc bool, err *Error) {
	high := false
	for j := i + 1; j < len(b); {
		// Most string bytes are plain ASCII: skip them in a tight loop.
		for j < len(b) && plain[b[j]] {
			j++
		}
		if j >= len(b) {
			break
		}
		switch c := b[j]; {
		case c == '"':
			if high && !utf8.Valid(b[i+1:j]) {
				return 0, false, malformed(i, "invalid UTF-8 in a string")
			}
			return j + 1, esc, nil
		case c == '\\':
			esc = true
			if j+1 >= len(b) {
				return 0, false, malformed(len(b), "unexpected end of input")
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(b) || !isHex(b[j+2]) || !isHex(b[j+3]) || !isHex(b[j+4]) || !isHex(b[j+5]) {
					return 0, false, malformed(j, "invalid \\u escape")
				}
				j += 6
			default:
				return 0, false, malformed(j, "invalid escape")
			}
		case c < 0x20:
			return 0, false, malformed(j, "control character in a string")
		default:
			if c >= utf8.RuneSelf {
				high = true
			}
			j++
		}
	}
	return 0, false, malformed(len(b), "unterminated string")
}

// plain marks the bytes a string holds as they are: printable ASCII other
// than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanNumber returns the index just past the number at i, or -1.
func scanNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// appendUnescaped appends the decoded contents of a validated JSON string
// (raw is what lies between the quotes), exactly as encoding/json decodes
// it, including U+FFFD for an unpaired surrogate.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'u':
			r := hex4(raw[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if d := utf16.DecodeRune(r, hex4(raw[i+2:])); d != utf8.RuneError {
						dst = utf8.AppendRune(dst, d)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		default: // '"', '\\', '/'
			c = raw[i+1]
		}
		dst = append(dst, c)
		i += 2
	}
	return dst
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// Navigation over a scanned document. Keys compare by their decoded bytes
// and exact case: case variants were refused by scan, so at most one member
// can match.

// member returns the index of obj's member named key, or -1.
func (s *scanner) member(obj int, key string) int {
	n := &s.nodes[obj]
	if n.kind != kindObject {
		return -1
	}
	for c := obj + 1; c < int(n.next); c = int(s.nodes[c].next) {
		if string(s.keyOf(c)) == key {
			return c
		}
	}
	return -1
}

// keyOf returns member c's decoded key; the result may alias scratch space
// and is valid until the next call.
func (s *scanner) keyOf(c int) []byte {
	n := &s.nodes[c]
	raw := s.b[n.keyStart:n.keyEnd]
	if n.flags&flagKeyEscaped == 0 {
		return raw
	}
	s.tmp = appendUnescaped(s.tmp[:0], raw)
	return s.tmp
}

// str returns string node c's decoded value; it may alias the body or
// scratch space and is valid until the next call.
func (s *scanner) str(c int) []byte {
	n := &s.nodes[c]
	raw := s.b[n.start+1 : n.end-1]
	if n.flags&flagEscaped == 0 {
		return raw
	}
	s.tmp = appendUnescaped(s.tmp[:0], raw)
	return s.tmp
}

// memberString returns the decoded string value of obj's member key, or nil
// if it is absent or not a string.
func (s *scanner) memberString(obj int, key string) []byte {
	if c := s.member(obj, key); c >= 0 && s.nodes[c].kind == kindString {
		return s.str(c)
	}
	return nil
}
