package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readBody(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// payloads of the testdata bodies, left out of InputBytes.
const (
	pngDataURL  = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
	wavBase64   = "UklGRiQAAABXQVZFZm10IBAAAAABAAEARKwAAIhYAQACABAAZGF0YQAAAAA="
	pdfDataURL  = "data:application/pdf;base64,JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K"
	jpegDataURL = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8U"
	pdf2DataURL = "data:application/pdf;base64,JVBERi0xLjcKCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9n"
)

func TestParseEndpoints(t *testing.T) {
	tests := []struct {
		name, endpoint, file string
		want                 Parsed // InputBytes is computed from payloads
		// payloads are the string values (as written in the body, without
		// quotes) that must be left out of InputBytes.
		payloads []string
	}{
		{
			name: "chat with tools, n and flex", endpoint: EndpointChat, file: "chat_tools.json",
			want: Parsed{Model: "gpt-4o-2024-08-06", Stream: true, IncludeUsage: true, MaxOutputTokens: 500,
				HasMaxOutput: true, Choices: 2, ServiceTier: "flex"},
		},
		{
			name: "chat with images, audio, files and an audio reference", endpoint: EndpointChat, file: "chat_images.json",
			// http image, data image, input_audio, file_data, file_id, assistant audio id
			want:     Parsed{Model: "gpt-4o-mini", MaxOutputTokens: 300, HasMaxOutput: true, Choices: 1, UnboundedInputs: 6},
			payloads: []string{pngDataURL, wavBase64, pdfDataURL},
		},
		{
			name: "chat 6 KB, no bound on n", endpoint: EndpointChat, file: "chat_6kb.json",
			want: Parsed{Model: "gpt-4o-mini", Stream: true, MaxOutputTokens: 400, HasMaxOutput: true, Choices: 1},
		},
		{
			name: "responses with input items and previous_response_id", endpoint: EndpointResponses, file: "responses_items.json",
			// previous_response_id, 2 input_image, input_file, encrypted
			// reasoning, item_reference, web_search_preview, file_search
			want: Parsed{Model: "o4-mini", Stream: true, MaxOutputTokens: 1024, HasMaxOutput: true, Choices: 1,
				ServiceTier: "priority", UnboundedInputs: 8},
			payloads: []string{jpegDataURL, pdf2DataURL},
		},
		{
			name: "responses with a prompt template and a conversation", endpoint: EndpointResponses, file: "responses_prompt.json",
			// prompt, input_file in its variables, conversation
			want: Parsed{Model: "gpt-4.1", Choices: 1, UnboundedInputs: 3},
		},
		{
			name: "completions with best_of", endpoint: EndpointCompletions, file: "completions_best_of.json",
			want: Parsed{Model: "gpt-3.5-turbo-instruct", MaxOutputTokens: 64, HasMaxOutput: true, Choices: 5},
		},
		{
			name: "completions with three prompts and the default max_tokens", endpoint: EndpointCompletions, file: "completions_prompts.json",
			want: Parsed{Model: "gpt-3.5-turbo-instruct", Stream: true, MaxOutputTokens: 16, HasMaxOutput: true, Choices: 6},
		},
		{
			name: "completions with a token prompt and max_tokens null", endpoint: EndpointCompletions, file: "completions_tokens.json",
			want: Parsed{Model: "davinci-002", Choices: 1},
		},
		{
			name: "embeddings string", endpoint: EndpointEmbeddings, file: "embeddings_string.json",
			want: Parsed{Model: "text-embedding-3-small", Choices: 1},
		},
		{
			name: "embeddings array", endpoint: EndpointEmbeddings, file: "embeddings_array.json",
			want: Parsed{Model: "text-embedding-3-large", Choices: 1},
		},
		{
			name: "embeddings token arrays", endpoint: EndpointEmbeddings, file: "embeddings_tokens.json",
			want: Parsed{Model: "text-embedding-ada-002", Choices: 1},
		},
		{
			name: "moderations with an image and no model", endpoint: EndpointModerations, file: "moderations_image.json",
			want:     Parsed{Model: DefaultModerationModel, Choices: 1, UnboundedInputs: 1},
			payloads: []string{pngDataURL},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := readBody(t, tc.file)
			want := tc.want
			want.InputBytes = int64(len(body))
			for _, p := range tc.payloads {
				if !bytes.Contains(body, []byte(`"`+p+`"`)) {
					t.Fatalf("payload %.30q… not in %s", p, tc.file)
				}
				want.InputBytes -= int64(len(p) + 2)
			}
			got, err := Parse(tc.endpoint, body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if *got != want {
				t.Errorf("Parse =\n%+v\nwant\n%+v", *got, want)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	tests := []struct {
		name, endpoint, body string
		want                 Parsed // InputBytes is computed
		minus                string // a string token left out of InputBytes
	}{
		{"nulls are absent", EndpointChat,
			`{"model":"m","stream":null,"stream_options":null,"max_tokens":null,"max_completion_tokens":null,"n":null,"service_tier":null}`,
			Parsed{Model: "m", Choices: 1}, ""},
		{"include_usage null", EndpointChat, `{"model":"m","stream":true,"stream_options":{"include_usage":null}}`,
			Parsed{Model: "m", Stream: true, Choices: 1}, ""},
		{"max_tokens alone", EndpointChat, `{"model":"m","max_tokens":77}`,
			Parsed{Model: "m", MaxOutputTokens: 77, HasMaxOutput: true, Choices: 1}, ""},
		{"both chat bounds: the larger", EndpointChat, `{"model":"m","max_tokens":900,"max_completion_tokens":100}`,
			Parsed{Model: "m", MaxOutputTokens: 900, HasMaxOutput: true, Choices: 1}, ""},
		{"escaped model and keys", EndpointChat, `{"\u006dodel":"gpt\u002d4o","\u006e":3}`,
			Parsed{Model: "gpt-4o", Choices: 3}, ""},
		{"huge bounds saturate", EndpointChat, `{"model":"m","n":123456789012345678901234567890,"max_completion_tokens":9007199254740991}`,
			Parsed{Model: "m", MaxOutputTokens: MaxTokensCap, HasMaxOutput: true, Choices: MaxChoicesCap}, ""},
		{"web_search_options", EndpointChat, `{"model":"gpt-4o-search-preview","web_search_options":{}}`,
			Parsed{Model: "gpt-4o-search-preview", Choices: 1, UnboundedInputs: 1}, ""},
		{"chat image with escaped slashes in base64", EndpointChat,
			`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image\/png;base64,ab\/c"}}]}]}`,
			Parsed{Model: "m", Choices: 1, UnboundedInputs: 1}, `"data:image\/png;base64,ab\/c"`},
		{"part keys in a tool schema are not parts", EndpointChat,
			`{"model":"m","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"file_id":{"type":"string"}}}}}]}`,
			Parsed{Model: "m", Choices: 1}, ""},
		{"same key in sibling objects", EndpointChat,
			`{"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`,
			Parsed{Model: "m", Choices: 1}, ""},
		{"completions max_tokens 0 is a bound", EndpointCompletions, `{"model":"m","prompt":"x","max_tokens":0,"echo":true}`,
			Parsed{Model: "m", HasMaxOutput: true, Choices: 1}, ""},
		{"completions n above best_of", EndpointCompletions, `{"model":"m","n":4,"best_of":0,"max_tokens":10}`,
			Parsed{Model: "m", MaxOutputTokens: 10, HasMaxOutput: true, Choices: 4}, ""},
		{"completions token-array prompts", EndpointCompletions, `{"model":"m","prompt":[[1,2],[3],[4]],"max_tokens":5}`,
			Parsed{Model: "m", MaxOutputTokens: 5, HasMaxOutput: true, Choices: 3}, ""},
		{"completions empty prompt array", EndpointCompletions, `{"model":"m","prompt":[]}`,
			Parsed{Model: "m", MaxOutputTokens: 16, HasMaxOutput: true, Choices: 1}, ""},
		{"responses string input", EndpointResponses, `{"model":"m","input":"hi","max_output_tokens":64,"stream":false}`,
			Parsed{Model: "m", MaxOutputTokens: 64, HasMaxOutput: true, Choices: 1}, ""},
		{"responses conversation object", EndpointResponses, `{"model":"m","conversation":{"id":"conv_1"}}`,
			Parsed{Model: "m", Choices: 1, UnboundedInputs: 1}, ""},
		{"responses include_usage is not read", EndpointResponses, `{"model":"m","stream":true,"stream_options":{"include_obfuscation":false}}`,
			Parsed{Model: "m", Stream: true, Choices: 1}, ""},
		{"embeddings ignore stream", EndpointEmbeddings, `{"model":"m","input":"x","stream":"whatever"}`,
			Parsed{Model: "m", Choices: 1}, ""},
		{"moderations model null", EndpointModerations, `{"model":null,"input":"x"}`,
			Parsed{Model: DefaultModerationModel, Choices: 1}, ""},
		{"moderations named model", EndpointModerations, `{"model":"text-moderation-latest","input":["a","b"]}`,
			Parsed{Model: "text-moderation-latest", Choices: 1}, ""},
		{"lone surrogate in a value", EndpointChat, `{"model":"m","messages":[{"role":"user","content":"\ud800"}]}`,
			Parsed{Model: "m", Choices: 1}, ""},
		{"whitespace everywhere", EndpointChat, " \r\n\t{ \"model\" :\t\"m\" , \"n\" : 2 }\n",
			Parsed{Model: "m", Choices: 2}, ""},
		{"deepest allowed nesting", EndpointChat, `{"model":"m","x":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `}`,
			Parsed{Model: "m", Choices: 1}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			want.InputBytes = int64(len(tc.body) - len(tc.minus))
			if !strings.Contains(tc.body, tc.minus) {
				t.Fatalf("%s not in the body", tc.minus)
			}
			got, err := Parse(tc.endpoint, []byte(tc.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if *got != want {
				t.Errorf("Parse =\n%+v\nwant\n%+v", *got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	deep := `{"model":"m","x":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`
	var wide strings.Builder
	wide.WriteString(`{"model":"m"`)
	for i := range 40 {
		wide.WriteString(`,"k` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `":1`)
	}
	wideDup := wide.String() + `,"KZA":2}` // case variant of an earlier key, found through the map
	long := strings.Repeat("x", 200)

	tests := []struct {
		name, endpoint, body string
		kind                 Kind
		param                string
	}{
		{"empty", EndpointChat, ``, KindMalformed, ""},
		{"only whitespace", EndpointChat, " \n", KindMalformed, ""},
		{"array", EndpointChat, `[{"model":"m"}]`, KindMalformed, ""},
		{"null", EndpointChat, `null`, KindMalformed, ""},
		{"string", EndpointChat, `"model"`, KindMalformed, ""},
		{"trailing data", EndpointChat, `{"model":"m"} {}`, KindMalformed, ""},
		{"trailing comma", EndpointChat, `{"model":"m",}`, KindMalformed, ""},
		{"trailing comma in array", EndpointChat, `{"model":"m","a":[1,]}`, KindMalformed, ""},
		{"unterminated", EndpointChat, `{"model":"m"`, KindMalformed, ""},
		{"unterminated string", EndpointChat, `{"model":"m`, KindMalformed, ""},
		{"single quotes", EndpointChat, `{'model':'m'}`, KindMalformed, ""},
		{"unquoted key", EndpointChat, `{model:"m"}`, KindMalformed, ""},
		{"missing colon", EndpointChat, `{"model" "m"}`, KindMalformed, ""},
		{"control character", EndpointChat, "{\"model\":\"m\x01\"}", KindMalformed, ""},
		{"raw newline in string", EndpointChat, "{\"model\":\"m\n\"}", KindMalformed, ""},
		{"invalid UTF-8 value", EndpointChat, "{\"model\":\"m\xff\"}", KindMalformed, ""},
		{"invalid UTF-8 key", EndpointChat, "{\"model\":\"m\",\"\xc3\x28\":1}", KindMalformed, ""},
		{"UTF-8 surrogate bytes", EndpointChat, "{\"model\":\"\xed\xa0\x80\"}", KindMalformed, ""},
		{"byte order mark", EndpointChat, "\xef\xbb\xbf{\"model\":\"m\"}", KindMalformed, ""},
		{"bad escape", EndpointChat, `{"model":"\x"}`, KindMalformed, ""},
		{"short unicode escape", EndpointChat, `{"model":"\u12"}`, KindMalformed, ""},
		{"leading zero", EndpointChat, `{"model":"m","n":01}`, KindMalformed, ""},
		{"bare minus", EndpointChat, `{"model":"m","a":-}`, KindMalformed, ""},
		{"fraction without digits", EndpointChat, `{"model":"m","a":1.}`, KindMalformed, ""},
		{"exponent without digits", EndpointChat, `{"model":"m","a":1e+}`, KindMalformed, ""},
		{"plus sign", EndpointChat, `{"model":"m","a":+1}`, KindMalformed, ""},
		{"NaN", EndpointChat, `{"model":"m","temperature":NaN}`, KindMalformed, ""},
		{"truncated literal", EndpointChat, `{"model":"m","stream":tru}`, KindMalformed, ""},
		{"too deep", EndpointChat, deep, KindMalformed, ""},

		{"duplicate model", EndpointChat, `{"model":"cheap","model":"expensive"}`, KindDuplicateKey, "model"},
		{"case variant", EndpointChat, `{"model":"cheap","Model":"expensive"}`, KindDuplicateKey, "Model"},
		{"escaped duplicate", EndpointChat, `{"model":"cheap","\u006dodel":"expensive"}`, KindDuplicateKey, "model"},
		{"nested duplicate", EndpointChat, `{"model":"m","messages":[{"role":"user","content":"a","Content":"b"}]}`, KindDuplicateKey, "Content"},
		{"nested in stream_options", EndpointChat, `{"model":"m","stream_options":{"include_usage":false,"INCLUDE_USAGE":true}}`, KindDuplicateKey, "INCLUDE_USAGE"},
		{"Kelvin sign folds to k", EndpointChat, `{"model":"m","k":1,"\u212a":2}`, KindDuplicateKey, "\u212a"},
		{"long s folds to s", EndpointChat, `{"model":"m","stream":true,"ſtream":false}`, KindDuplicateKey, "ſtream"},
		{"Unicode case", EndpointChat, `{"model":"m","é":1,"É":2}`, KindDuplicateKey, "É"},
		{"wide object", EndpointChat, wideDup, KindDuplicateKey, "KZA"},
		{"long key is truncated", EndpointChat, `{"model":"m","` + long + `":1,"` + long + `":2}`, KindDuplicateKey, strings.Repeat("x", maxEchoedKeyBytes) + "…"},

		{"no model", EndpointChat, `{"messages":[]}`, KindMissingModel, "model"},
		{"model null", EndpointChat, `{"model":null}`, KindMissingModel, "model"},
		{"model empty", EndpointChat, `{"model":""}`, KindMissingModel, "model"},
		{"model number", EndpointChat, `{"model":4}`, KindMissingModel, "model"},
		{"model array", EndpointEmbeddings, `{"model":["a"]}`, KindMissingModel, "model"},
		{"model case", EndpointChat, `{"Model":"m"}`, KindMissingModel, "model"},
		{"responses without model", EndpointResponses, `{"prompt":{"id":"pmpt_1"}}`, KindMissingModel, "model"},
		{"moderations empty model", EndpointModerations, `{"model":"","input":"x"}`, KindMissingModel, "model"},

		{"stream string", EndpointChat, `{"model":"m","stream":"yes"}`, KindInvalidField, "stream"},
		{"stream number", EndpointResponses, `{"model":"m","stream":1}`, KindInvalidField, "stream"},
		{"stream_options string", EndpointChat, `{"model":"m","stream_options":"x"}`, KindInvalidField, "stream_options"},
		{"include_usage string", EndpointCompletions, `{"model":"m","stream_options":{"include_usage":"yes"}}`, KindInvalidField, "stream_options.include_usage"},
		{"max_tokens negative", EndpointChat, `{"model":"m","max_tokens":-1}`, KindInvalidField, "max_tokens"},
		{"max_tokens fraction", EndpointChat, `{"model":"m","max_tokens":1.5}`, KindInvalidField, "max_tokens"},
		{"max_tokens integral fraction", EndpointCompletions, `{"model":"m","max_tokens":16.0}`, KindInvalidField, "max_tokens"},
		{"max_tokens exponent", EndpointCompletions, `{"model":"m","max_tokens":1e3}`, KindInvalidField, "max_tokens"},
		{"max_tokens string", EndpointCompletions, `{"model":"m","max_tokens":"100"}`, KindInvalidField, "max_tokens"},
		{"max_tokens zero in chat", EndpointChat, `{"model":"m","max_tokens":0}`, KindInvalidField, "max_tokens"},
		{"max_completion_tokens zero", EndpointChat, `{"model":"m","max_completion_tokens":0}`, KindInvalidField, "max_completion_tokens"},
		{"max_output_tokens zero", EndpointResponses, `{"model":"m","max_output_tokens":0}`, KindInvalidField, "max_output_tokens"},
		{"max_output_tokens minus zero", EndpointResponses, `{"model":"m","max_output_tokens":-0}`, KindInvalidField, "max_output_tokens"},
		{"n zero", EndpointChat, `{"model":"m","n":0}`, KindInvalidField, "n"},
		{"n negative", EndpointCompletions, `{"model":"m","n":-2}`, KindInvalidField, "n"},
		{"best_of negative", EndpointCompletions, `{"model":"m","best_of":-1}`, KindInvalidField, "best_of"},
		{"service_tier number", EndpointChat, `{"model":"m","service_tier":1}`, KindInvalidField, "service_tier"},
		{"messages string", EndpointChat, `{"model":"m","messages":"hi"}`, KindInvalidField, "messages"},
		{"input number", EndpointResponses, `{"model":"m","input":5}`, KindInvalidField, "input"},
		{"moderations input object", EndpointModerations, `{"input":{"text":"x"}}`, KindInvalidField, "input"},
		{"previous_response_id number", EndpointResponses, `{"model":"m","previous_response_id":5}`, KindInvalidField, "previous_response_id"},
		{"conversation number", EndpointResponses, `{"model":"m","conversation":5}`, KindInvalidField, "conversation"},
		{"prompt string in responses", EndpointResponses, `{"model":"m","prompt":"pmpt_1"}`, KindInvalidField, "prompt"},

		{"unknown endpoint", "images/generations", `{"model":"dall-e-3"}`, KindUnsupportedEndpoint, ""},
		{"endpoint with /v1", "/v1/chat/completions", `{"model":"m"}`, KindUnsupportedEndpoint, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.endpoint, []byte(tc.body))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", *p)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if e.Kind != tc.kind || e.Param != tc.param {
				t.Errorf("error = %v %q (%s), want %v %q", e.Kind, e.Param, e.Message, tc.kind, tc.param)
			}
			if !errors.Is(err, &Error{Kind: tc.kind}) {
				t.Errorf("errors.Is(err, &Error{Kind: %v}) = false", tc.kind)
			}
			if e.Message == "" {
				t.Error("empty message")
			}
		})
	}
}

// TestErrorsDoNotEchoBodies: a client's text appears in no error, only key
// names do.
func TestErrorsDoNotEchoBodies(t *testing.T) {
	const secret = "SECRET-PROMPT-TEXT"
	bodies := []string{
		`{"model":"` + secret + `","messages":[{"role":"user","content":"` + secret + `"}],"stream":"` + secret + `"}`,
		`{"model":"m","messages":[{"role":"user","content":"` + secret + `","role":"x"}]}`,
		`{"model":"m","messages":"` + secret + `"}`,
		`{"model":"m","max_tokens":"` + secret + `"}`,
		`{"model":"m","n":"` + secret + `"}`,
		`{"model":"m","messages":[{"role":"user","content":"` + secret + "\x01" + `"}]}`,
		`{"model":"m","messages":[{"role":"user","content":"` + secret + `"}]} ` + secret,
		`{"model":{"name":"` + secret + `"}}`,
	}
	for _, b := range bodies {
		_, err := Parse(EndpointChat, []byte(b))
		if err == nil {
			t.Fatalf("Parse(%q) succeeded", b)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.(*Error).Param, secret) {
			t.Errorf("Parse(%q): error %q echoes the body", b, err)
		}
	}
}

// TestParseAgreesWithEncodingJSON: on bodies Parse accepts, a map-based
// decode (exact keys; no case variants exist by then) reads the same model
// and stream flag.
func TestParseAgreesWithEncodingJSON(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatal("no testdata", err)
	}
	for _, f := range files {
		body := readBody(t, filepath.Base(f))
		ep := endpointOf(filepath.Base(f))
		p, err := Parse(ep, body)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		checkAgainstMap(t, ep, body, p)
	}
}

func endpointOf(file string) string {
	switch {
	case strings.HasPrefix(file, "chat"):
		return EndpointChat
	case strings.HasPrefix(file, "completions"):
		return EndpointCompletions
	case strings.HasPrefix(file, "embeddings"):
		return EndpointEmbeddings
	case strings.HasPrefix(file, "responses"):
		return EndpointResponses
	}
	return EndpointModerations
}

func checkAgainstMap(t testing.TB, ep string, body []byte, p *Parsed) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("encoding/json refuses a body Parse accepted: %v", err)
	}
	model, _ := m["model"].(string)
	if model == "" && ep == EndpointModerations {
		model = DefaultModerationModel
	}
	if p.Model != model {
		t.Errorf("Model = %q, encoding/json reads %q", p.Model, model)
	}
	stream, _ := m["stream"].(bool)
	if ep != EndpointEmbeddings && ep != EndpointModerations && p.Stream != stream {
		t.Errorf("Stream = %v, encoding/json reads %v", p.Stream, stream)
	}
	if p.InputBytes < 0 || p.InputBytes > int64(len(body)) {
		t.Errorf("InputBytes = %d outside [0, %d]", p.InputBytes, len(body))
	}
	if p.Choices < 1 || p.Choices > MaxChoicesCap || p.MaxOutputTokens < 0 || p.MaxOutputTokens > MaxTokensCap {
		t.Errorf("bounds out of range: %+v", *p)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindMalformed: "malformed", KindDuplicateKey: "duplicate_key",
		KindMissingModel: "missing_model", KindInvalidField: "invalid_field", KindUnsupportedEndpoint: "unsupported_endpoint", 0: "Kind(0)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

func BenchmarkParseChat6KB(b *testing.B) {
	body := readBody(b, "chat_6kb.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(EndpointChat, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSetIncludeUsageChat6KB(b *testing.B) {
	body := readBody(b, "chat_6kb.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SetIncludeUsage(body); err != nil {
			b.Fatal(err)
		}
	}
}
