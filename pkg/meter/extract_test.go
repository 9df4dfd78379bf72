package meter

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// recorded maps each file in testdata to the endpoint that produced it.
var recorded = []struct{ file, endpoint string }{
	{"chat.json", "chat/completions"},
	{"chat_reasoning.json", "chat/completions"},
	{"chat_audio.json", "chat/completions"},
	{"completions.json", "completions"},
	{"embeddings.json", "embeddings"},
	{"responses.json", "responses"},
	{"moderations.json", "moderations"},
	{"images.json", "images/generations"},
	{"chat_stream.sse", "chat/completions"},
	{"chat_stream_crlf.sse", "chat/completions"},
	{"chat_stream_n2.sse", "chat/completions"},
	{"chat_stream_tools.sse", "chat/completions"},
	{"chat_stream_nousage.sse", "chat/completions"},
	{"chat_stream_error.sse", "chat/completions"},
	{"completions_stream.sse", "completions"},
	{"responses_stream.sse", "responses"},
	{"responses_stream_incomplete.sse", "responses"},
	{"responses_stream_failed.sse", "responses"},
	{"images_stream.sse", "images/generations"},
}

// outcome is what a golden file records for one recorded response.
type outcome struct {
	Endpoint    string `json:"endpoint"`
	Found       bool   `json:"found"`
	Model       string `json:"model,omitempty"`
	ServiceTier string `json:"service_tier,omitempty"`
	Usage       *Usage `json:"usage,omitempty"`
	Error       string `json:"error,omitempty"`
	// Streams only.
	Events          int `json:"events,omitempty"`
	UsageOnlyChunks int `json:"usage_only_chunks,omitempty"`
}

func newOutcome(endpoint string, r Result, err error) outcome {
	o := outcome{Endpoint: endpoint, Found: r.Found, Model: r.Model, ServiceTier: r.ServiceTier}
	if r.Found {
		o.Usage = &r.Usage
	}
	if err != nil {
		o.Error = err.Error()
	}
	return o
}

func TestRecordedResponses(t *testing.T) {
	for _, rec := range recorded {
		t.Run(rec.file, func(t *testing.T) {
			in := readTestdata(t, rec.file)
			var got outcome
			if strings.HasSuffix(rec.file, ".sse") {
				got = meterStream(t, rec.endpoint, in)
			} else {
				r, err := FromJSON(rec.endpoint, in)
				got = newOutcome(rec.endpoint, r, err)
			}
			checkGolden(t, filepath.Join("testdata", "golden", rec.file+".golden"), got)
		})
	}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func meterStream(t *testing.T, endpoint string, in []byte) outcome {
	t.Helper()
	s := NewScanner(strings.NewReader(string(in)))
	st := NewStream(endpoint)
	var events, usageOnly int
	for {
		e, err := s.Next()
		if err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
		events++
		if IsUsageOnlyChunk(e) {
			usageOnly++
		}
		st.Observe(e)
	}
	o := newOutcome(endpoint, st.Result(), nil)
	o.Events, o.UsageOnlyChunks = events, usageOnly
	return o
}

func checkGolden(t *testing.T, path string, got outcome) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != string(b) {
		t.Fatalf("%s differs:\n got %s\nwant %s", path, b, want)
	}
}

func TestFromJSON(t *testing.T) {
	const chatOK = `{"model":"gpt-4o","service_tier":"default","usage":{"prompt_tokens":10,"completion_tokens":5,` +
		`"prompt_tokens_details":{"cached_tokens":4,"audio_tokens":2},"completion_tokens_details":{"reasoning_tokens":3,"audio_tokens":1}}}`
	tests := []struct {
		name     string
		endpoint string
		body     string
		want     Result
		err      error
	}{
		{"chat all classes", "chat/completions", chatOK, Result{Found: true, Model: "gpt-4o", ServiceTier: "default",
			Usage: Usage{InputTokens: 10, CachedInputTokens: 4, AudioInputTokens: 2, OutputTokens: 5, ReasoningTokens: 3, AudioOutputTokens: 1}}, nil},
		{"completions shares the chat shape", "completions", `{"model":"m","usage":{"prompt_tokens":1,"completion_tokens":2}}`,
			Result{Found: true, Model: "m", Usage: Usage{InputTokens: 1, OutputTokens: 2}}, nil},
		{"details null", "chat/completions", `{"usage":{"prompt_tokens":7,"completion_tokens":1,"prompt_tokens_details":null,"completion_tokens_details":null}}`,
			Result{Found: true, Usage: Usage{InputTokens: 7, OutputTokens: 1}}, nil},
		{"detail count null", "chat/completions", `{"usage":{"prompt_tokens":7,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":null}}}`,
			Result{Found: true, Usage: Usage{InputTokens: 7, OutputTokens: 1}}, nil},
		{"whitespace everywhere", "chat/completions", " \n{ \"usage\" : { \"prompt_tokens\" : 7 , \"completion_tokens\" : 0 } } \n",
			Result{Found: true, Usage: Usage{InputTokens: 7}}, nil},
		{"zero usage is found", "chat/completions", `{"usage":{"prompt_tokens":0,"completion_tokens":0}}`, Result{Found: true}, nil},
		{"largest int64", "embeddings", `{"usage":{"prompt_tokens":9223372036854775807}}`,
			Result{Found: true, Usage: Usage{InputTokens: 9223372036854775807}}, nil},
		{"embeddings need no completion tokens", "embeddings", `{"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}`,
			Result{Found: true, Model: "text-embedding-3-small", Usage: Usage{InputTokens: 8}}, nil},
		{"responses", "responses", `{"model":"gpt-5","service_tier":"priority","usage":{"input_tokens":100,"input_tokens_details":{"cached_tokens":60},` +
			`"output_tokens":50,"output_tokens_details":{"reasoning_tokens":20},"total_tokens":150}}`,
			Result{Found: true, Model: "gpt-5", ServiceTier: "priority", Usage: Usage{InputTokens: 100, CachedInputTokens: 60, OutputTokens: 50, ReasoningTokens: 20}}, nil},
		{"responses image input tokens", "responses", `{"usage":{"input_tokens":100,"input_tokens_details":{"cached_tokens":0,"image_tokens":85},"output_tokens":1}}`,
			Result{Found: true, Usage: Usage{InputTokens: 100, ImageInputTokens: 85, OutputTokens: 1}}, nil},
		{"images without output details", "images/generations", `{"usage":{"input_tokens":50,"input_tokens_details":{"image_tokens":40,"text_tokens":10},"output_tokens":272}}`,
			Result{Found: true, Usage: Usage{InputTokens: 50, ImageInputTokens: 40, OutputTokens: 272, ImageOutputTokens: 272}}, nil},
		{"images with output details", "images/edits", `{"usage":{"input_tokens":50,"input_tokens_details":{"image_tokens":40,"text_tokens":10},` +
			`"output_tokens":300,"output_tokens_details":{"image_tokens":272,"text_tokens":28}}}`,
			Result{Found: true, Usage: Usage{InputTokens: 50, ImageInputTokens: 40, OutputTokens: 300, ImageOutputTokens: 272}}, nil},
		{"dall-e image has no usage", "images/generations", `{"created":1,"data":[{"url":"https://example.com/a.png"}]}`, Result{}, nil},
		{"moderations are free", "moderations", `{"model":"omni-moderation-latest","results":[],"usage":{"prompt_tokens":3,"completion_tokens":0}}`,
			Result{Model: "omni-moderation-latest"}, nil},
		{"no usage", "chat/completions", `{"model":"gpt-4o"}`, Result{Model: "gpt-4o"}, nil},
		{"usage null", "chat/completions", `{"model":"gpt-4o","usage":null}`, Result{Model: "gpt-4o"}, nil},
		{"wrong-typed model is ignored", "chat/completions", `{"model":42,"service_tier":["x"],"usage":{"prompt_tokens":1,"completion_tokens":1}}`,
			Result{Found: true, Usage: Usage{InputTokens: 1, OutputTokens: 1}}, nil},
		{"overlong model is ignored", "chat/completions", `{"model":"` + strings.Repeat("m", maxNameLen+1) + `"}`, Result{}, nil},
		{"escaped model", "chat/completions", `{"model":"gpt-4o\u002dmini"}`, Result{Model: "gpt-4o-mini"}, nil},

		{"negative", "chat/completions", `{"model":"m","usage":{"prompt_tokens":-1,"completion_tokens":5}}`, Result{Model: "m"}, ErrInvalidUsage},
		{"negative detail", "chat/completions", `{"usage":{"prompt_tokens":1,"completion_tokens":5,"completion_tokens_details":{"reasoning_tokens":-2}}}`, Result{}, ErrInvalidUsage},
		{"fraction", "chat/completions", `{"usage":{"prompt_tokens":1.5,"completion_tokens":5}}`, Result{}, ErrInvalidUsage},
		{"exponent", "chat/completions", `{"usage":{"prompt_tokens":1e3,"completion_tokens":5}}`, Result{}, ErrInvalidUsage},
		{"string count", "chat/completions", `{"usage":{"prompt_tokens":"10","completion_tokens":5}}`, Result{}, ErrInvalidUsage},
		{"int64 overflow", "chat/completions", `{"usage":{"prompt_tokens":9223372036854775808,"completion_tokens":5}}`, Result{}, ErrInvalidUsage},
		{"huge", "chat/completions", `{"usage":{"prompt_tokens":` + strings.Repeat("9", 400) + `,"completion_tokens":5}}`, Result{}, ErrInvalidUsage},
		{"missing completion_tokens", "chat/completions", `{"usage":{"prompt_tokens":10}}`, Result{}, ErrInvalidUsage},
		{"empty usage object", "chat/completions", `{"usage":{}}`, Result{}, ErrInvalidUsage},
		{"responses shape on chat endpoint", "chat/completions", `{"usage":{"input_tokens":1,"output_tokens":1}}`, Result{}, ErrInvalidUsage},
		{"chat shape on responses endpoint", "responses", `{"usage":{"prompt_tokens":1,"completion_tokens":1}}`, Result{}, ErrInvalidUsage},
		{"usage not an object", "chat/completions", `{"usage":[1,2]}`, Result{}, ErrInvalidUsage},
		{"details not an object", "chat/completions", `{"usage":{"prompt_tokens":1,"completion_tokens":1,"prompt_tokens_details":7}}`, Result{}, ErrInvalidUsage},
		{"cached exceeds input", "chat/completions", `{"usage":{"prompt_tokens":10,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":11}}}`, Result{}, ErrInvalidUsage},
		{"reasoning exceeds output", "responses", `{"usage":{"input_tokens":10,"output_tokens":1,"output_tokens_details":{"reasoning_tokens":2}}}`, Result{}, ErrInvalidUsage},
		{"image output exceeds output", "images/generations", `{"usage":{"input_tokens":1,"output_tokens":1,"output_tokens_details":{"image_tokens":2}}}`, Result{}, ErrInvalidUsage},

		{"not JSON", "chat/completions", `<html>502 Bad Gateway</html>`, Result{}, ErrMalformedBody},
		{"truncated", "chat/completions", `{"model":"gpt-4o","usage":{"prompt_tokens":1`, Result{}, ErrMalformedBody},
		{"array", "chat/completions", `[{"usage":{"prompt_tokens":1,"completion_tokens":1}}]`, Result{}, ErrMalformedBody},
		{"empty body", "chat/completions", ``, Result{}, ErrMalformedBody},
		{"unknown endpoint", "batches", `{"usage":{"prompt_tokens":1,"completion_tokens":1}}`, Result{}, ErrUnknownEndpoint},
		{"leading slash is not accepted", "/v1/chat/completions", `{}`, Result{}, ErrUnknownEndpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromJSON(tt.endpoint, []byte(tt.body))
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// Errors name what was wrong, never the body's content.
func TestFromJSONErrorsDoNotQuoteTheBody(t *testing.T) {
	for _, body := range []string{
		`{"secret prompt": }`,
		`{"usage":{"prompt_tokens":"secret prompt","completion_tokens":1}}`,
		`{"usage":{"prompt_tokens":1,"completion_tokens":1,"prompt_tokens_details":"secret prompt"}}`,
		`secret prompt`,
	} {
		_, err := FromJSON("chat/completions", []byte(body))
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("FromJSON(%q) error = %v", body, err)
		}
	}
}

func TestSupports(t *testing.T) {
	for _, e := range []string{"chat/completions", "completions", "embeddings", "responses", "moderations", "images/generations", "images/edits"} {
		if !Supports(e) {
			t.Errorf("Supports(%q) = false", e)
		}
	}
	for _, e := range []string{"", "models", "batches", "audio/speech", "/chat/completions", "Chat/Completions"} {
		if Supports(e) {
			t.Errorf("Supports(%q) = true", e)
		}
	}
}
