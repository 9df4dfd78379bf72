package meter

import (
	"bytes"
	"fmt"
)

// members calls fn with the raw key (between its quotes, escapes left as
// they are) and the raw value of each member of the JSON object b, in
// order, without decoding anything.
//
// Metering needs three top-level members of bodies that can be megabytes
// of embeddings or output text; encoding/json would validate and then
// decode all of it, about ten times slower. members checks only the
// structure (strings, brackets, separators) and leaves the values it
// skips unvalidated: a malformed number deep in an embedding does not stop
// metering. Errors wrap ErrMalformedBody and give an offset, never bytes.
func members(b []byte, fn func(key, value []byte)) error {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return ErrMalformedBody
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return trailing(b, i+1)
	}
	for {
		if i == len(b) || b[i] != '"' {
			return malformedAt(i)
		}
		keyEnd, ok := skipString(b, i)
		if !ok {
			return malformedAt(i)
		}
		key := b[i+1 : keyEnd-1]
		i = skipSpace(b, keyEnd)
		if i == len(b) || b[i] != ':' {
			return malformedAt(i)
		}
		i = skipSpace(b, i+1)
		end, ok := skipValue(b, i)
		if !ok {
			return malformedAt(i)
		}
		fn(key, b[i:end])
		i = skipSpace(b, end)
		if i == len(b) {
			return malformedAt(i)
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return trailing(b, i+1)
		default:
			return malformedAt(i)
		}
	}
}

func malformedAt(i int) error {
	return fmt.Errorf("%w: syntax error at offset %d", ErrMalformedBody, i)
}

func trailing(b []byte, i int) error {
	if i = skipSpace(b, i); i != len(b) {
		return malformedAt(i)
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipString returns the offset after the string that starts at b[i] == '"'.
func skipString(b []byte, i int) (int, bool) {
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, false
		}
		q := j + k
		// The quote is escaped if an odd number of backslashes precede it.
		n := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, true
		}
		j = q + 1
	}
}

// plain marks the bytes skipValue can pass over inside a container: all
// but quotes and brackets.
var plain = func() (t [256]bool) {
	for i := range t {
		t[i] = true
	}
	for _, c := range []byte(`"{}[]`) {
		t[c] = false
	}
	return t
}()

// scalarEnd marks what ends a number or literal.
var scalarEnd = func() (t [256]bool) {
	for _, c := range []byte(",}] \t\r\n") {
		t[c] = true
	}
	return t
}()

// skipValue returns the offset after the value that starts at b[i],
// checking that brackets match and strings end.
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
	case '}', ']', ',', ':':
		return 0, false
	default:
		j := i
		for j < len(b) && !scalarEnd[b[j]] {
			j++
		}
		return j, true
	}
	var stackBuf [32]byte
	open := append(stackBuf[:0], b[i])
	for j := i + 1; j < len(b); j++ {
		for j < len(b) && plain[b[j]] {
			j++
		}
		if j == len(b) {
			break
		}
		switch c := b[j]; c {
		case '"':
			end, ok := skipString(b, j)
			if !ok {
				return 0, false
			}
			j = end - 1
		case '{', '[':
			open = append(open, c)
		default: // '}' or ']'
			want := byte('{')
			if c == ']' {
				want = '['
			}
			if open[len(open)-1] != want {
				return 0, false
			}
			if open = open[:len(open)-1]; len(open) == 0 {
				return j + 1, true
			}
		}
	}
	return 0, false
}
