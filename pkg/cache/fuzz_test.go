package cache

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

var canonicalSeeds = []string{
	`{}`, `[]`, `""`, `0`, `-0.0e-0`, `null`,
	`{"b":1,"a":[true,false,null,{"d":"x","c":1.50}]}`,
	`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi \u00e9 \ud83d\ude00"}],"temperature":0.7,"max_tokens":100}`,
	`{"a":1,"\u0061":2}`,
	`{"model":"m","Model":"n"}`,
	`"\ud800"`, "\"\xff\"", `{"a":"\"\\\/\b\f\n\r\t\u0000\u001f"}`,
	" [ 1 ,\n2 ] ", `[1e400,123456789012345678901234567890]`,
	`{"input":[[1,2],[3]],"z":{"y":{"x":{}}}}`,
}

// decodeAny decodes data the way a careful reader would: encoding/json with
// numbers kept as written (json.Number).
func decodeAny(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err == nil {
		return nil, fmt.Errorf("trailing data")
	}
	return v, nil
}

// messyEncode writes v as JSON in one of the many ways that mean the same
// value: keys in a random order, random whitespace, characters randomly
// escaped.
func messyEncode(b *strings.Builder, v any, r *rand.Rand) {
	ws := func() {
		for range r.IntN(3) {
			b.WriteByte(" \t\n\r"[r.IntN(4)])
		}
	}
	ws()
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			ws()
			messyString(b, k, r)
			ws()
			b.WriteByte(':')
			messyEncode(b, v[k], r)
		}
		ws()
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			messyEncode(b, e, r)
		}
		ws()
		b.WriteByte(']')
	case string:
		messyString(b, v, r)
	case json.Number:
		b.WriteString(string(v))
	case bool:
		fmt.Fprint(b, v)
	case nil:
		b.WriteString("null")
	}
	ws()
}

func messyString(b *strings.Builder, s string, r *rand.Rand) {
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c == '/' && r.IntN(2) == 0:
			b.WriteString(`\/`)
		case c < 0x20 || r.IntN(3) == 0:
			if c > 0xffff {
				hi, lo := utf16.EncodeRune(c)
				fmt.Fprintf(b, `\u%04x\u%04X`, hi, lo)
			} else {
				fmt.Fprintf(b, `\u%04x`, c)
			}
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
}

// mutate changes one leaf of v (the i-th found, wrapping around) so that
// the value differs, and reports whether it found one.
func mutate(v any, i *int) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if nv, ok := mutate(x[k], i); ok {
				x[k] = nv
				return x, true
			}
		}
		if *i == 0 { // no leaf below: add a member
			x["\x00added"] = true
			return x, true
		}
		*i--
		return x, false
	case []any:
		for j := range x {
			if nv, ok := mutate(x[j], i); ok {
				x[j] = nv
				return x, true
			}
		}
		if *i == 0 {
			return append(x, nil), true
		}
		*i--
		return x, false
	}
	if *i > 0 {
		*i--
		return v, false
	}
	switch x := v.(type) {
	case string:
		return x + "x", true
	case json.Number:
		if x == "7" {
			return json.Number("8"), true
		}
		return json.Number("7"), true
	case bool:
		return !x, true
	default: // null
		return json.Number("0"), true
	}
}

// FuzzCanonical checks the canonical form's properties on any input:
// a form exists only for valid JSON; it is compact, idempotent and decodes
// to the same value; every other encoding of that value has the same form;
// and a changed value has a different form.
func FuzzCanonical(f *testing.F) {
	for i, s := range canonicalSeeds {
		f.Add([]byte(s), uint64(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		c, err := Canonical(data)
		if err != nil {
			return
		}
		if len(bytes.TrimLeft(data, " \t\r\n")) == 0 {
			if c != nil {
				t.Fatalf("whitespace body has form %q", c)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("form %q for invalid JSON %q", c, data)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, c); err != nil || !bytes.Equal(compact.Bytes(), c) {
			t.Fatalf("form %q is not compact JSON (%v)", c, err)
		}
		if !utf8.Valid(c) {
			t.Fatalf("form %q is not UTF-8", c)
		}
		c2, err := Canonical(c)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("not idempotent: %q -> %q, %v", c, c2, err)
		}
		v, err := decodeAny(data)
		if err != nil {
			t.Fatalf("encoding/json rejects %q: %v", data, err)
		}
		vc, err := decodeAny(c)
		if err != nil || !reflect.DeepEqual(v, vc) {
			t.Fatalf("form %q decodes to %#v, input %q to %#v (%v)", c, vc, data, v, err)
		}

		r := rand.New(rand.NewPCG(seed, 1))
		var messy strings.Builder
		messyEncode(&messy, v, r)
		cm, err := Canonical([]byte(messy.String()))
		if err != nil || !bytes.Equal(cm, c) {
			t.Fatalf("same value, different forms:\n%q -> %q\n%q -> %q (%v)", data, c, messy.String(), cm, err)
		}

		i := int(seed % 64)
		for {
			var changed bool
			if v, changed = mutate(v, &i); changed {
				break
			}
		}
		var m strings.Builder
		messyEncode(&m, v, r)
		cx, err := Canonical([]byte(m.String()))
		if err != nil {
			t.Fatalf("mutated %q: %v", m.String(), err)
		}
		if bytes.Equal(cx, c) {
			t.Fatalf("changed value, same form %q (from %q and %q)", c, data, m.String())
		}
	})
}

// FuzzDecodeEntry: any bytes decode to an entry or errCorrupt, never a
// panic, and a decoded entry survives another round trip unchanged. Each
// input is also tried with a valid checksum appended, so the fuzzer
// explores the decoder behind the checksum.
func FuzzDecodeEntry(f *testing.F) {
	for _, e := range []*Entry{testEntry(false), testEntry(true), {}} {
		enc := encodeEntry(e, testNow)
		f.Add(enc[:len(enc)-trailerLen])
	}
	f.Add([]byte("wRc\x01\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		withSum := binary.LittleEndian.AppendUint32(bytes.Clone(data), crc32.Checksum(data, castagnoli))
		for _, in := range [][]byte{data, withSum} {
			e, err := decodeEntry(bytes.Clone(in))
			if err != nil {
				if err != errCorrupt {
					t.Fatalf("error %v, want errCorrupt", err)
				}
				continue
			}
			again, err := decodeEntry(encodeEntry(e, testNow))
			if err != nil || !reflect.DeepEqual(e, again) {
				t.Fatalf("round trip changed the entry (%v):\n%+v\n%+v", err, e, again)
			}
		}
	})
}
