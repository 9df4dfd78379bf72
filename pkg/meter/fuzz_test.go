package meter

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// refEvents is a deliberately naive SSE splitter, written straight from the
// specification over the whole input, that the Scanner must agree with.
func refEvents(in string) []ev {
	var out []ev
	var raw strings.Builder
	var name string
	var dataLines []string
	first := true
	dispatch := func() {
		d := "<nil>"
		if dataLines != nil {
			d = strings.Join(dataLines, "\n")
		}
		out = append(out, ev{name, d, raw.String()})
		raw.Reset()
		name, dataLines = "", nil
	}
	for len(in) > 0 {
		i := strings.IndexAny(in, "\r\n")
		line, term := in, ""
		if i >= 0 {
			line, term = in[:i], in[i:i+1]
			if strings.HasPrefix(in[i:], "\r\n") {
				term = "\r\n"
			}
		}
		raw.WriteString(line + term)
		in = in[len(line)+len(term):]
		if first {
			line = strings.TrimPrefix(line, "\xEF\xBB\xBF")
			first = false
		}
		if line == "" && term != "" {
			dispatch()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "event":
			name = value
		case "data":
			dataLines = append(dataLines, value)
		}
	}
	if raw.Len() > 0 {
		dispatch()
	}
	return out
}

func FuzzScanner(f *testing.F) {
	for _, s := range []string{
		"", "\n", "\r", "\r\n", "data: x\n\n", "data: x\r\n\r\n", "data: x\r\r", "event: e\ndata: a\ndata: b\n\n",
		": ping\n\n", "data: x", "\xEF\xBB\xBF\n", "data:\n\n\n", "data: a\r\n\r", "event:x\r\rdata:y\n\r\n",
	} {
		f.Add([]byte(s), uint8(1), uint16(0))
	}
	files, _ := filepath.Glob("testdata/*.sse")
	for i, name := range files {
		// Short seeds keep the fuzzer's minimization fast; a few events
		// cover the same code as a whole stream.
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b[:min(len(b), 1024)], uint8(i*7+1), uint16(i*100))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, step uint8, max uint16) {
		want := refEvents(string(in))

		// Unlimited, in reads of a size chosen by the fuzzer: the same
		// events as the reference, and Raw adds up to the input.
		r := &chunkReader{}
		for rest, n := in, int(step%32)+1; len(rest) > 0; n = n%31 + 1 {
			k := min(n, len(rest))
			r.chunks = append(r.chunks, rest[:k])
			rest = rest[k:]
		}
		got, err := scanAll(t, r, len(in)+1)
		if err != nil {
			t.Fatal(err)
		}
		if concatRaw(got) != string(in) {
			t.Fatalf("Raw concatenation %q != input %q", concatRaw(got), in)
		}
		if !equalEvs(got, want) {
			t.Fatalf("events\n got %q\nwant %q", got, want)
		}

		// With a size limit: the events up to the first oversized one,
		// then ErrEventTooLarge, and no byte lost.
		limit := int(max%512) + 1
		br := bytes.NewReader(in)
		s := NewScanner(br)
		s.SetMaxEventSize(limit)
		var raws []byte
		for i := 0; ; i++ {
			e, err := s.Next()
			if err == io.EOF {
				if i != len(want) {
					t.Fatalf("EOF after %d events, want %d", i, len(want))
				}
				break
			}
			if err != nil {
				if !errors.Is(err, ErrEventTooLarge) {
					t.Fatal(err)
				}
				if i >= len(want) || len(want[i].Raw) <= limit {
					t.Fatalf("ErrEventTooLarge at event %d with limit %d", i, limit)
				}
				rest, _ := io.ReadAll(br)
				if string(raws)+string(s.Buffered())+string(rest) != string(in) {
					t.Fatal("bytes lost after ErrEventTooLarge")
				}
				break
			}
			if i >= len(want) || toEv(e) != want[i] || len(e.Raw) > limit {
				t.Fatalf("event %d = %q with limit %d", i, toEv(e), limit)
			}
			raws = append(raws, e.Raw...)
		}
	})
}

var endpoints = []string{"chat/completions", "completions", "embeddings", "responses", "moderations", "images/generations", "x"}

// checkResult checks what Found promises.
func checkResult(t *testing.T, r Result) {
	t.Helper()
	if !r.Found {
		if !r.Usage.IsZero() {
			t.Fatalf("usage without Found: %+v", r)
		}
		return
	}
	u := r.Usage
	for _, n := range []int64{u.InputTokens, u.CachedInputTokens, u.AudioInputTokens, u.CachedAudioInputTokens,
		u.ImageInputTokens, u.OutputTokens, u.ReasoningTokens, u.AudioOutputTokens, u.ImageOutputTokens} {
		if n < 0 {
			t.Fatalf("negative count: %+v", u)
		}
	}
	if !consistent(u) {
		t.Fatalf("inconsistent usage: %+v", u)
	}
}

func FuzzFromJSON(f *testing.F) {
	for _, rec := range recorded {
		if strings.HasSuffix(rec.file, ".json") {
			if b, err := os.ReadFile(filepath.Join("testdata", rec.file)); err == nil {
				f.Add(uint8(0), b)
			}
		}
	}
	for _, s := range []string{
		`{"usage":{"prompt_tokens":1,"completion_tokens":2}}`,
		`{"usage":{"input_tokens":1,"output_tokens":2,"input_tokens_details":{"cached_tokens":1}}}`,
		`{"usage":{"prompt_tokens":-1,"completion_tokens":2}}`,
		`{"usage":{"prompt_tokens":99999999999999999999,"completion_tokens":2}}`,
		`{"model":"\ud800","usage":null}`,
		`{"model":"a","model":5,"service_tier":"x","usage":{"prompt_tokens":3,"completion_tokens":1},"usage":null}`,
		`{"x":{"usage":{"prompt_tokens":1}},"s":"\"usage\":{","model":"gpt-4o","usage":{"input_tokens":2,"output_tokens":2,"input_tokens_details":{"image_tokens":1}}}`,
		`{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":1,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":1}}}`,
		`{"usage":{"input_tokens":5,"output_tokens":5,"output_tokens_details":{"image_tokens":4,"reasoning_tokens":null}}}`,
	} {
		f.Add(uint8(3), []byte(s))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		for _, e := range endpoints {
			r, err := FromJSON(e, body)
			checkResult(t, r)
			if err == nil && r.Found && e == "moderations" {
				t.Fatal("moderations metered")
			}
		}
		// On valid JSON, members agrees with encoding/json, except where
		// encoding/json is looser: keys matched case-insensitively or
		// written with escapes.
		e := endpoints[int(which)%len(endpoints)]
		if json.Valid(body) && !bytes.Contains(body, []byte(`\u`)) && !foldedKeys(body) {
			got, err := FromJSON(e, body)
			want, werr := refFromJSON(e, body)
			if bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) && (got != want || (err == nil) != (werr == nil)) {
				t.Fatalf("FromJSON %+v, %v; encoding/json %+v, %v", got, err, want, werr)
			}
		}
		// The stream path must agree with the JSON path on a chunk that
		// carries usage.
		if e != "responses" && hasKey(body, keyUsage, '{') {
			want, err := FromJSON(e, body)
			got := observeAll(e, Event{Data: body})
			if err == nil && want.Found && got != want {
				t.Fatalf("Observe %+v != FromJSON %+v", got, want)
			}
		}
	})
}

// foldedKeys reports whether body spells a metered key in another case,
// which encoding/json would match.
func foldedKeys(body []byte) bool {
	lower := bytes.ToLower(body)
	for _, k := range []string{`"model"`, `"service_tier"`, `"usage"`, `"prompt_tokens`, `"completion_tokens`,
		`"input_tokens`, `"output_tokens`, `"cached_tokens"`, `"audio_tokens"`, `"reasoning_tokens"`, `"image_tokens"`} {
		if bytes.Count(lower, []byte(k)) != bytes.Count(body, []byte(k)) {
			return true
		}
	}
	// encoding/json also folds the Kelvin sign and long s into k and s.
	return bytes.Contains(body, []byte("\u212a")) || bytes.Contains(body, []byte("\u017f")) ||
		bytes.Contains(body, []byte("\u212A")) || bytes.Contains(body, []byte("\u017F")) ||
		bytes.Contains(body, []byte("K")) || bytes.Contains(body, []byte("ſ"))
}

func FuzzStreamObserve(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.sse")
	for i, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(uint8(i), b)
		}
	}
	f.Add(uint8(0), []byte("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":-1}}\n\n"))
	f.Add(uint8(3), []byte("event: response.completed\ndata: {\"response\":{\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n"))
	f.Fuzz(func(t *testing.T, which uint8, in []byte) {
		st := NewStream(endpoints[int(which)%len(endpoints)])
		s := NewScanner(bytes.NewReader(in))
		for {
			e, err := s.Next()
			if err != nil {
				break
			}
			st.Observe(e)
			_ = IsUsageOnlyChunk(e)
			checkResult(t, st.Result())
		}
	})
}
