package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestSetIncludeUsage(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"absent",
			`{"model":"m","stream":true}`,
			`{"model":"m","stream":true,"stream_options":{"include_usage":true}}`},
		{"absent, pretty-printed",
			"{\n  \"model\": \"m\",\n  \"stream\": true\n}\n",
			"{\n  \"model\": \"m\",\n  \"stream\": true,\"stream_options\":{\"include_usage\":true}\n}\n"},
		{"absent, last value is an object",
			`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
			`{"model":"m","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}`},
		{"empty object", `{}`, `{"stream_options":{"include_usage":true}}`},
		{"empty object with whitespace", "{ \n }", "{ \n \"stream_options\":{\"include_usage\":true}}"},
		{"stream_options null",
			`{"model":"m","stream_options":null,"stream":true}`,
			`{"model":"m","stream_options":{"include_usage":true},"stream":true}`},
		{"stream_options empty",
			`{"model":"m","stream_options":{ }}`,
			`{"model":"m","stream_options":{ "include_usage":true}}`},
		{"stream_options with another key",
			`{"model":"m","stream_options":{"include_obfuscation":false},"stream":true}`,
			`{"model":"m","stream_options":{"include_obfuscation":false,"include_usage":true},"stream":true}`},
		{"include_usage false, spaced",
			"{\"stream_options\" : { \"include_usage\" : false , \"x\":1 },\n\"model\":\"m\"}",
			"{\"stream_options\" : { \"include_usage\" : true , \"x\":1 },\n\"model\":\"m\"}"},
		{"include_usage null",
			`{"model":"m","stream_options":{"include_usage":null}}`,
			`{"model":"m","stream_options":{"include_usage":true}}`},
		{"include_usage already true",
			`{"model":"m","stream_options":{"include_usage":true}}`,
			`{"model":"m","stream_options":{"include_usage":true}}`},
		{"nested stream_options are not the top-level one",
			`{"metadata":{"stream_options":{"x":1}},"stream_options":{"a":{"include_usage":false}}}`,
			`{"metadata":{"stream_options":{"x":1}},"stream_options":{"a":{"include_usage":false},"include_usage":true}}`},
		{"only nested stream_options",
			`{"model":"m","metadata":{"stream_options":{"include_usage":false}}}`,
			`{"model":"m","metadata":{"stream_options":{"include_usage":false}},"stream_options":{"include_usage":true}}`},
		{"escaped key is the same key",
			`{"model":"m","stream\u005foptions":{"include_usage":false}}`,
			`{"model":"m","stream\u005foptions":{"include_usage":true}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SetIncludeUsage([]byte(tc.in))
			if err != nil {
				t.Fatalf("SetIncludeUsage: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("SetIncludeUsage(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			checkIncludeUsage(t, []byte(tc.in), got)
			if _, err := Parse(EndpointChat, append([]byte(nil), got...)); err != nil && !errors.Is(err, &Error{Kind: KindMissingModel}) {
				t.Errorf("Parse refuses the result: %v", err)
			}
		})
	}
}

// checkIncludeUsage asserts that out is valid JSON, that its
// stream_options.include_usage is true, and that every other top-level
// member of in kept its value.
func checkIncludeUsage(t testing.TB, in, out []byte) {
	t.Helper()
	if !json.Valid(out) {
		t.Fatalf("result is not valid JSON: %q", out)
	}
	var before, after map[string]any
	decodeNumbers(t, in, &before)
	decodeNumbers(t, out, &after)
	so, ok := after["stream_options"].(map[string]any)
	if !ok || so["include_usage"] != true {
		t.Fatalf("result's stream_options = %v", after["stream_options"])
	}
	if old, ok := before["stream_options"].(map[string]any); ok {
		for k, v := range old {
			if k != "include_usage" && !reflect.DeepEqual(so[k], v) {
				t.Errorf("stream_options.%s changed: %v -> %v", k, v, so[k])
			}
		}
		if len(so) != len(old) && len(so) != len(old)+1 {
			t.Errorf("stream_options keys %v -> %v", old, so)
		}
	}
	delete(before, "stream_options")
	delete(after, "stream_options")
	if !reflect.DeepEqual(before, after) {
		t.Errorf("other members changed:\n%v\n%v", before, after)
	}
}

func decodeNumbers(t testing.TB, b []byte, v any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
}

func TestSetIncludeUsageErrors(t *testing.T) {
	tests := []struct {
		name, in string
		kind     Kind
		param    string
	}{
		{"not JSON", `{"model":`, KindMalformed, ""},
		{"array", `[]`, KindMalformed, ""},
		{"duplicate", `{"stream_options":{},"stream_options":{}}`, KindDuplicateKey, "stream_options"},
		{"stream_options string", `{"stream_options":"x"}`, KindInvalidField, "stream_options"},
		{"include_usage number", `{"stream_options":{"include_usage":1}}`, KindInvalidField, "stream_options.include_usage"},
		{"case variant of stream_options", `{"Stream_Options":{"include_usage":false}}`, KindDuplicateKey, "Stream_Options"},
		{"case variant of include_usage", `{"stream_options":{"Include_Usage":false}}`, KindDuplicateKey, "Include_Usage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := SetIncludeUsage([]byte(tc.in))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("SetIncludeUsage = %q, %v; want an *Error", out, err)
			}
			if e.Kind != tc.kind || e.Param != tc.param {
				t.Errorf("error = %v %q (%s), want %v %q", e.Kind, e.Param, e.Message, tc.kind, tc.param)
			}
		})
	}
}

func TestSetIncludeUsageKeepsTheInput(t *testing.T) {
	in := []byte(`{"model":"m","stream_options":{"include_usage":false}}`)
	orig := string(in)
	if _, err := SetIncludeUsage(in); err != nil {
		t.Fatal(err)
	}
	if string(in) != orig {
		t.Errorf("input modified: %q", in)
	}
}

func TestSetTopLevel(t *testing.T) {
	tests := []struct{ name, in, key, value, want string }{
		{"absent", `{"model":"m"}`, "max_completion_tokens", "1234",
			`{"model":"m","max_completion_tokens":1234}`},
		{"present", `{"max_completion_tokens": 99 ,"model":"m"}`, "max_completion_tokens", "1234",
			`{"max_completion_tokens": 1234 ,"model":"m"}`},
		{"present, object replaced", `{"model":"m","metadata":{"a":[1,2]},"n":1}`, "metadata", `{"b":2}`,
			`{"model":"m","metadata":{"b":2},"n":1}`},
		{"present null", `{"model":"m","max_tokens":null}`, "max_tokens", "16",
			`{"model":"m","max_tokens":16}`},
		{"empty object", `{}`, "model", `"m"`, `{"model":"m"}`},
		{"empty object with newline", "{\n}", "model", `"m"`, "{\n\"model\":\"m\"}"},
		{"pretty-printed", "{\n  \"model\": \"m\"\n}\n", "max_tokens", "8",
			"{\n  \"model\": \"m\",\"max_tokens\":8\n}\n"},
		{"nested key untouched", `{"metadata":{"model":"x"},"model":"m"}`, "model", `"gpt-4o"`,
			`{"metadata":{"model":"x"},"model":"gpt-4o"}`},
		{"only nested key", `{"metadata":{"max_tokens":1}}`, "max_tokens", "2",
			`{"metadata":{"max_tokens":1},"max_tokens":2}`},
		{"key needing escapes", `{"a":1}`, "q\"\\\n", "true", `{"a":1,"q\"\\\u000a":true}`},
		{"value kept as given", `{"a":1}`, "b", " [ 1 , 2 ] ", `{"a":1,"b": [ 1 , 2 ] }`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SetTopLevel([]byte(tc.in), tc.key, []byte(tc.value))
			if err != nil {
				t.Fatalf("SetTopLevel: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("SetTopLevel(%q, %q, %q)\n got %q\nwant %q", tc.in, tc.key, tc.value, got, tc.want)
			}
			checkTopLevel(t, []byte(tc.in), got, tc.key, []byte(tc.value))
		})
	}
}

// checkTopLevel asserts that out is valid JSON whose member key holds value
// and whose other top-level members are those of in.
func checkTopLevel(t testing.TB, in, out []byte, key string, value []byte) {
	t.Helper()
	if !json.Valid(out) {
		t.Fatalf("result is not valid JSON: %q", out)
	}
	var before, after map[string]any
	var want any
	decodeNumbers(t, in, &before)
	decodeNumbers(t, out, &after)
	decodeNumbers(t, value, &want)
	if !reflect.DeepEqual(after[key], want) {
		t.Errorf("result's %q = %v, want %v", key, after[key], want)
	}
	delete(before, key)
	delete(after, key)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("other members changed:\n%v\n%v", before, after)
	}
}

func TestSetTopLevelErrors(t *testing.T) {
	tests := []struct {
		name, in, key, value string
		kind                 Kind // 0: a plain error (caller bug)
		param                string
	}{
		{"invalid body", `{"model":"m"`, "n", "1", KindMalformed, ""},
		{"duplicate in body", `{"a":1,"A":2}`, "n", "1", KindDuplicateKey, "A"},
		{"case variant of the key", `{"Max_Completion_Tokens":1}`, "max_completion_tokens", "1", KindDuplicateKey, "Max_Completion_Tokens"},
		{"empty value", `{}`, "n", "", 0, ""},
		{"two values", `{}`, "n", "1 2", 0, ""},
		{"value with duplicate keys", `{}`, "m", `{"a":1,"a":2}`, 0, ""},
		{"key not UTF-8", `{}`, "\xff", "1", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := SetTopLevel([]byte(tc.in), tc.key, []byte(tc.value))
			if err == nil {
				t.Fatalf("SetTopLevel = %q, want an error", out)
			}
			var e *Error
			isE := errors.As(err, &e)
			switch {
			case tc.kind == 0 && isE:
				t.Errorf("error %v is an *Error; want a plain error", err)
			case tc.kind != 0 && !isE:
				t.Errorf("error %v is not an *Error", err)
			case tc.kind != 0 && (e.Kind != tc.kind || e.Param != tc.param):
				t.Errorf("error = %v %q, want %v %q", e.Kind, e.Param, tc.kind, tc.param)
			}
		})
	}
}

func TestSetTopLevelDepth(t *testing.T) {
	ok := []byte(`[` + string(bytes.Repeat([]byte("["), MaxDepth-2)) + string(bytes.Repeat([]byte("]"), MaxDepth-1)))
	out, err := SetTopLevel([]byte(`{"model":"m"}`), "x", ok)
	if err != nil {
		t.Fatalf("value of depth %d: %v", MaxDepth-1, err)
	}
	if _, err := Parse(EndpointChat, out); err != nil {
		t.Fatalf("Parse refuses the result: %v", err)
	}
	tooDeep := append(append([]byte("["), ok...), ']')
	if _, err := SetTopLevel([]byte(`{"model":"m"}`), "x", tooDeep); err == nil {
		t.Fatalf("value of depth %d accepted", MaxDepth)
	}
}
