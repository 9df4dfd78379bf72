package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

var allEndpoints = []string{EndpointChat, EndpointCompletions, EndpointEmbeddings, EndpointResponses, EndpointModerations}

// seedBodies are edge cases for the fuzzers, beside the testdata bodies.
var seedBodies = []string{
	`{}`,
	` {"model":"m"} `,
	`{"model":"m","Model":"n"}`,
	`{"model":"m","\u006dodel":"n"}`,
	`{"model":"m","k":1,"\u212a":2}`,
	`{"model":"m","a":{"b":{"c":[{"d":1,"D":2}]}}}`,
	`{"model":"m","stream":true,"stream_options":{"include_usage":false}}`,
	`{"model":"m","stream_options":null}`,
	`{"model":"m","stream_options":{}}`,
	`{"model":"m","stream_options":{"include_usage":null,"x":[1,2]}}`,
	`{"model":"m","stream_options":"x"}`,
	`{"model":"m","Stream_Options":{}}`,
	"{\n\t\"model\" : \"m\" ,\r\n \"n\" : 2\n}\n",
	`{"model":"m","n":0,"max_tokens":-1,"best_of":1.5}`,
	`{"model":"m","max_tokens":1e3}`,
	`{"model":"m","prompt":[[1,2],[3]],"best_of":3,"n":2}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}`,
	`{"model":"m","input":[{"type":"input_file","file_data":"data:x"},{"type":"item_reference","id":"i"}],"previous_response_id":"r"}`,
	`{"model":"\ud800\udc00","x":"\ud800"}`,
	`{"model":"m","x":[[[[[[[[[[]]]]]]]]]]}`,
	`{"model":"m","x":-0.5e-10,"y":[true,false,null]}`,
	"{\"model\":\"m\xff\"}",
	`{"model":"m",}`,
	`{"model":"m"}{}`,
	`[]`,
	``,
}

func addSeeds(f *testing.F, add func(i int, body []byte)) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		f.Fatal(err)
	}
	i := 0
	for _, file := range files {
		add(i, readBody(f, filepath.Base(file)))
		i++
	}
	for _, b := range seedBodies {
		add(i, []byte(b))
		i++
	}
}

// oracle reports, using only encoding/json and strings.EqualFold, whether
// body is what Parse must accept as far as syntax goes: one valid UTF-8
// JSON object, at most MaxDepth deep, with no two keys of one object equal
// under case folding.
func oracle(body []byte) bool {
	if !json.Valid(body) || !utf8.Valid(body) {
		return false
	}
	type level struct {
		object, wantKey bool
		keys            []string
	}
	var stack []*level
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	for first := true; ; first = false {
		tok, err := d.Token()
		if err == io.EOF {
			return true
		}
		if err != nil || first && tok != json.Delim('{') {
			return false
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				stack = append(stack, &level{object: v == '{', wantKey: v == '{'})
				if len(stack) > MaxDepth {
					return false
				}
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			if top := stack[len(stack)-1]; top.object && top.wantKey {
				for _, k := range top.keys {
					if strings.EqualFold(k, v) {
						return false
					}
				}
				top.keys = append(top.keys, v)
				top.wantKey = false
				continue
			}
			valueDone()
		default:
			valueDone()
		}
	}
}

func TestOracle(t *testing.T) {
	for body, want := range map[string]bool{
		`{"a":1,"b":{"a":2}}`:       true,
		`{"a":1,"A":2}`:             false,
		`{"a":[{"b":1},{"b":2}]}`:   true,
		`{"a":[{"b":1,"B":2}]}`:     false,
		`{"a":{"b":1},"B":{"b":1}}`: true,
		`[1]`:                       false,
		"{\"a\":\"\xff\"}":          false,
	} {
		if got := oracle([]byte(body)); got != want {
			t.Errorf("oracle(%q) = %v, want %v", body, got, want)
		}
	}
}

// FuzzParse: Parse never panics; it accepts a body exactly when the
// independent oracle says its syntax is acceptable (field errors aside),
// and then reads the same model and stream flag as encoding/json.
func FuzzParse(f *testing.F) {
	addSeeds(f, func(i int, body []byte) { f.Add(uint8(i), body) })
	f.Fuzz(func(t *testing.T, ep uint8, body []byte) {
		endpoint := allEndpoints[int(ep)%len(allEndpoints)]
		p, err := Parse(endpoint, body)
		valid := oracle(body)
		if err == nil {
			if !valid {
				t.Fatalf("Parse accepted %q, which is malformed or has duplicate keys", body)
			}
			checkAgainstMap(t, endpoint, body, p)
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T %v is not an *Error", err, err)
		}
		syntax := e.Kind == KindMalformed || e.Kind == KindDuplicateKey
		if valid == syntax {
			t.Fatalf("Parse(%s, %q) = %v (%v), but the oracle says valid=%v", endpoint, body, e.Kind, e.Message, valid)
		}
	})
}

// FuzzSetIncludeUsage: on a valid object, a successful SetIncludeUsage
// yields valid JSON with include_usage true, every other top-level member
// unchanged, and a minimal byte edit.
func FuzzSetIncludeUsage(f *testing.F) {
	addSeeds(f, func(_ int, body []byte) { f.Add(body) })
	f.Fuzz(func(t *testing.T, body []byte) {
		in := bytes.Clone(body)
		out, err := SetIncludeUsage(body)
		if !bytes.Equal(in, body) {
			t.Fatal("input modified")
		}
		valid := oracle(body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if valid && e.Kind == KindMalformed {
				t.Fatalf("SetIncludeUsage(%q): %v on a valid object", body, err)
			}
			return
		}
		if !valid {
			t.Fatalf("SetIncludeUsage accepted %q", body)
		}
		checkIncludeUsage(t, body, out)
		removed, added := editDiff(body, out)
		if !strings.Contains("false", removed) && !strings.Contains("null", removed) {
			t.Errorf("edit removed %q", removed)
		}
		if !strings.Contains(`,"stream_options":{"include_usage":true}`, added) && !strings.Contains(`{"include_usage":true}`, added) &&
			!strings.Contains(`,"include_usage":true`, added) {
			t.Errorf("edit added %q", added)
		}
		if !oracle(out) {
			t.Errorf("result %q has duplicate keys or is too deep", out)
		}
	})
}

// FuzzSetTopLevel: a successful SetTopLevel yields valid JSON holding the
// value, every other top-level member unchanged.
func FuzzSetTopLevel(f *testing.F) {
	values := []string{"1234", `"gpt-4o"`, "null", `{"a":[1,{"b":2}]}`, " true "}
	addSeeds(f, func(i int, body []byte) { f.Add(uint8(i), body) })
	f.Fuzz(func(t *testing.T, v uint8, body []byte) {
		key := []string{"max_completion_tokens", "model", "stream_options"}[int(v)%3]
		value := []byte(values[int(v)%len(values)])
		out, err := SetTopLevel(body, key, value)
		valid := oracle(body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if valid && e.Kind == KindMalformed {
				t.Fatalf("SetTopLevel(%q): %v on a valid object", body, err)
			}
			return
		}
		if !valid {
			t.Fatalf("SetTopLevel accepted %q", body)
		}
		checkTopLevel(t, body, out, key, value)
		if !oracle(out) {
			t.Errorf("result %q has duplicate keys or is too deep", out)
		}
	})
}

// editDiff returns what an edit removed from a and added to make b, after
// their common prefix and suffix.
func editDiff(a, b []byte) (removed, added string) {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	q := 0
	for q < len(a)-p && q < len(b)-p && a[len(a)-1-q] == b[len(b)-1-q] {
		q++
	}
	return string(a[p : len(a)-q]), string(b[p : len(b)-q])
}
