package cache

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCanonical(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"sorted keys", `{"b":1,"a":2}`, `{"a":2,"b":1}`},
		{"nested and in arrays", `{"z":[{"y":1,"x":{"d":null,"c":true}}],"a":{}}`, `{"a":{},"z":[{"x":{"c":true,"d":null},"y":1}]}`},
		{"out of order at every level", `{"b":{"d":1,"c":{"f":1,"e":2}},"a":[{"y":1,"x":2},{"k":{"z":0,"a":1}}],"c":{"a":{"b":1,"a":0}}}`, `{"a":[{"x":2,"y":1},{"k":{"a":1,"z":0}}],"b":{"c":{"e":2,"f":1},"d":1},"c":{"a":{"a":0,"b":1}}}`},
		{"already sorted", `{"a":1,"b":[1,2],"c":"x"}`, `{"a":1,"b":[1,2],"c":"x"}`},
		{"whitespace", " \t\r\n{ \"b\" :\n[ 1 , 2 ] ,\"a\":\t\"x y\" } \n", `{"a":"x y","b":[1,2]}`},
		{"case-variant keys are different keys", `{"model":"a","Model":"b"}`, `{"Model":"b","model":"a"}`},
		{"numbers as written", `[1.0,1e3,1E+03,-0,0.10,12345678901234567890123456789,1e-400,-1.5e300]`, `[1.0,1e3,1E+03,-0,0.10,12345678901234567890123456789,1e-400,-1.5e300]`},
		{"escapes unescaped", `["\u0061","\/","\u00e9","\ud83d\ude00","\u2028","<>&"]`, "[\"a\",\"/\",\"\u00e9\",\"\U0001F600\",\"\u2028\",\"<>&\"]"},
		{"literal UTF-8 kept", `"h\u00e9llo \u4e16\u754c"`, "\"h\u00e9llo \u4e16\u754c\""},
		{"escapes that stay", `["\"","\\","\n","\u000a","\t","\b","\f","\r","\u0001","\u001F","\u007f"]`, "[\"\\\"\",\"\\\\\",\"\\n\",\"\\n\",\"\\t\",\"\\b\",\"\\f\",\"\\r\",\"\\u0001\",\"\\u001f\",\"\x7f\"]"},
		{"escaped keys sort by value", `{"\u0062":1,"a":2,"\u00e9":3}`, "{\"a\":2,\"b\":1,\"\u00e9\":3}"},
		{"keys with quotes", `{"b\"":1,"b":2}`, `{"b":2,"b\"":1}`},
		{"top-level scalars", `  "x" `, `"x"`},
		{"number", `-12.5e+7`, `-12.5e+7`},
		{"literals", `[true,false,null]`, `[true,false,null]`},
		{"empty containers", `{"a":[],"b":{},"c":[{}]}`, `{"a":[],"b":{},"c":[{}]}`},
		{"empty body", ``, ``},
		{"whitespace body", " \n\t", ``},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonical([]byte(tc.in))
			if err != nil {
				t.Fatalf("Canonical(%q): %v", tc.in, err)
			}
			if string(got) != tc.want {
				t.Fatalf("Canonical(%q)\n got %s\nwant %s", tc.in, got, tc.want)
			}
			again, err := Canonical(got)
			if err != nil || string(again) != string(got) {
				t.Fatalf("not idempotent: %q -> %q, %v", got, again, err)
			}
		})
	}
}

func TestCanonicalRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"unterminated object", `{"a":1`},
		{"trailing comma", `{"a":1,}`},
		{"trailing comma in array", `[1,]`},
		{"missing colon", `{"a" 1}`},
		{"non-string key", `{1:2}`},
		{"leading zero", `01`},
		{"bare dot", `1.`},
		{"leading dot", `.5`},
		{"plus", `+1`},
		{"lone minus", `-`},
		{"empty exponent", `1e`},
		{"hex", `0x10`},
		{"NaN", `NaN`},
		{"Infinity", `-Infinity`},
		{"bad literal", `tru`},
		{"capital literal", `True`},
		{"single quotes", `{'a':1}`},
		{"unterminated string", `"abc`},
		{"bad escape", `"\x41"`},
		{"short unicode escape", `"\u12"`},
		{"non-hex unicode escape", `"\u12g4"`},
		{"raw control character", "\"a\nb\""},
		{"raw tab", "\"a\tb\""},
		{"invalid UTF-8", "\"a\xffb\""},
		{"truncated UTF-8", "\"\xe4\xb8\""},
		{"overlong UTF-8", "\"\xc0\xaf\""},
		{"invalid UTF-8 in key", "{\"\xff\":1}"},
		{"lone high surrogate", `"\ud800"`},
		{"lone low surrogate", `"\udc00"`},
		{"high surrogate then letter", `"\ud800\u0041"`},
		{"reversed surrogates", `"\udc00\ud800"`},
		{"duplicate keys", `{"a":1,"a":2}`},
		{"duplicate keys unsorted", `{"b":1,"a":1,"b":2}`},
		{"duplicate keys by escape", `{"a":1,"\u0061":2}`},
		{"duplicate keys nested", `{"x":[{"k":1,"k":1}]}`},
		{"two values", `{} {}`},
		{"trailing garbage", `{}x`},
		{"byte order mark", "\xef\xbb\xbf{}"},
		{"too deep", strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonical([]byte(tc.in))
			if !errors.Is(err, ErrNotCanonical) {
				t.Fatalf("Canonical(%.40q) = %q, %v; want ErrNotCanonical", tc.in, got, err)
			}
		})
	}
	// The deepest nesting allowed is accepted.
	deep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if _, err := Canonical([]byte(deep)); err != nil {
		t.Fatalf("nesting of %d: %v", maxDepth, err)
	}
}

// TestCanonicalDistinguishes: every pair here differs in a way that can
// change the upstream's answer, so their forms (and keys) must differ.
func TestCanonicalDistinguishes(t *testing.T) {
	pairs := [][2]string{
		{`{"temperature":1}`, `{"temperature":1.0}`},
		{`{"n":1e3}`, `{"n":1000}`},
		{`{"n":0}`, `{"n":-0}`},
		{`{"s":"a"}`, `{"s":"A"}`},
		{`{"s":"a "}`, `{"s":"a"}`},
		{`{"a":[1,2]}`, `{"a":[2,1]}`},
		{`{"a":null}`, `{}`},
		{`{"a":""}`, `{"a":null}`},
		{`{"a":"1"}`, `{"a":1}`},
		{`{"a":true}`, `{"a":"true"}`},
		{`{"model":"x"}`, `{"Model":"x"}`},
		{`{"a":{"b":1}}`, `{"a":[{"b":1}]}`},
		{`{"a":"\u00e9"}`, `{"a":"e\u0301"}`}, // not Unicode-normalized
	}
	for _, p := range pairs {
		a, err1 := Canonical([]byte(p[0]))
		b, err2 := Canonical([]byte(p[1]))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s / %s: %v, %v", p[0], p[1], err1, err2)
		}
		if string(a) == string(b) {
			t.Errorf("%s and %s have the same form %s", p[0], p[1], a)
		}
	}
}

// TestCanonicalLinear: a body built to make naive in-place sorting
// quadratic (every level out of order, deeply nested, 5 MB) stays fast.
func TestCanonicalLinear(t *testing.T) {
	pad := strings.Repeat("x", 500)
	var b strings.Builder
	for range maxDepth {
		b.WriteString(`{"b":"` + pad + `","a":`)
	}
	b.WriteString("1")
	b.WriteString(strings.Repeat("}", maxDepth))
	start := time.Now()
	out, err := Canonical([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	// Quadratic work here is ~25 GB of copying: tens of seconds.
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("%d bytes took %v", b.Len(), d)
	}
	if !strings.HasPrefix(string(out), `{"a":{"a":{"a":`) || len(out) != b.Len() {
		t.Fatalf("unexpected form: %.40s… (%d bytes)", out, len(out))
	}
}

func TestCanonicalDoesNotAliasInput(t *testing.T) {
	in := []byte(`{"a":"x"}`)
	out, err := Canonical(in)
	if err != nil {
		t.Fatal(err)
	}
	in[6] = 'y'
	if string(out) != `{"a":"x"}` {
		t.Fatalf("output changed with the input: %s", out)
	}
}
