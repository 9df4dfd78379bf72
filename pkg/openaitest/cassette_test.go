package openaitest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wrapi-dev/wrapi/pkg/meter"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the cassettes")

// The cassettes the proxy's tests rely on; a rename must fail here.
var wantNames = []string{
	"chat", "chat-reasoning", "chat-stream", "chat-stream-n2", "chat-stream-tools",
	"completions", "completions-stream", "embeddings", "embeddings-base64",
	"error-400", "error-400-invalid-json", "error-401", "error-401-missing-key",
	"error-404-model", "error-429", "error-500", "model", "models", "moderations",
	"responses", "responses-stream",
}

func TestNames(t *testing.T) {
	if got := Names(); !slices.Equal(got, wantNames) {
		t.Fatalf("Names() = %q\nwant %q", got, wantNames)
	}
}

func TestLoadUnknown(t *testing.T) {
	if _, err := Load("no-such-cassette"); err == nil {
		t.Fatal("Load of an unknown cassette succeeded")
	}
}

func TestLoadReturnsACopy(t *testing.T) {
	a, err := Load("chat-stream")
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(a.Body)
	a.Body[0] = 'X'
	a.Events[0][0] = 'X'
	a.Header.Set("Content-Type", "text/plain")
	b, err := Load("chat-stream")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Body, want) || b.Events[0][0] != 'd' || b.Header.Get("Content-Type") == "text/plain" {
		t.Fatal("modifying a loaded cassette changed the library")
	}
}

// TestCassettes checks every cassette is well formed and that the Usage it
// declares is what its body says, read independently of meter.
func TestCassettes(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			c, err := Load(name)
			if err != nil {
				t.Fatal(err)
			}
			ct := c.Header.Get("Content-Type")
			if c.Stream {
				if !strings.HasPrefix(ct, "text/event-stream") {
					t.Errorf("stream Content-Type %q", ct)
				}
				if !bytes.Equal(bytes.Join(c.Events, nil), c.Body) {
					t.Error("Events do not add up to Body")
				}
				checkSSE(t, c)
			} else {
				if !strings.HasPrefix(ct, "application/json") {
					t.Errorf("JSON Content-Type %q", ct)
				}
				if !json.Valid(c.Body) {
					t.Error("body is not valid JSON")
				}
				if c.Events != nil {
					t.Error("JSON cassette has Events")
				}
			}
			if !strings.HasPrefix(c.Header.Get("X-Request-Id"), "req_") {
				t.Errorf("X-Request-Id %q", c.Header.Get("X-Request-Id"))
			}
			if c.Status >= 400 {
				checkError(t, c)
			}

			got, model := bodyUsage(t, c)
			if got != c.Usage {
				t.Errorf("meta usage %+v, body says %+v", c.Usage, got)
			}
			if model != c.Model {
				t.Errorf("meta model %q, body says %q", c.Model, model)
			}
			checkRequest(t, c)
		})
	}
}

// checkSSE validates the framing of a stream: one data line per event
// (preceded by its event: line on the responses API), valid JSON payloads,
// [DONE] last on chat and completions, sequence numbers on responses.
func checkSSE(t *testing.T, c Cassette) {
	t.Helper()
	responses := c.Path == "/v1/responses"
	for i, ev := range c.Events {
		lines := strings.Split(strings.TrimSuffix(string(ev), "\n\n"), "\n")
		var event, data string
		switch {
		case responses && len(lines) == 2 && strings.HasPrefix(lines[0], "event: ") && strings.HasPrefix(lines[1], "data: "):
			event, data = strings.TrimPrefix(lines[0], "event: "), strings.TrimPrefix(lines[1], "data: ")
		case !responses && len(lines) == 1 && strings.HasPrefix(lines[0], "data: "):
			data = strings.TrimPrefix(lines[0], "data: ")
		default:
			t.Fatalf("event %d is not framed as OpenAI frames it: %q", i, ev)
		}
		last := i == len(c.Events)-1
		if data == "[DONE]" {
			if responses || !last {
				t.Errorf("event %d: unexpected [DONE]", i)
			}
			continue
		}
		if !responses && last {
			t.Error("stream does not end with data: [DONE]")
		}
		var obj struct {
			Type           string `json:"type"`
			SequenceNumber *int   `json:"sequence_number"`
			Usage          json.RawMessage
		}
		dec := json.NewDecoder(strings.NewReader(data))
		if err := dec.Decode(&obj); err != nil || dec.More() {
			t.Fatalf("event %d: data is not one JSON value: %v", i, err)
		}
		if responses {
			if obj.Type != event || obj.SequenceNumber == nil || *obj.SequenceNumber != i {
				t.Errorf("event %d: event %q type %q sequence_number %v", i, event, obj.Type, obj.SequenceNumber)
			}
			if last && event != "response.completed" {
				t.Errorf("responses stream ends with %q", event)
			}
		}
		// With include_usage every chunk carries "usage", null until the last.
		if c.IncludeUsage && len(obj.Usage) == 0 {
			t.Errorf("event %d lacks usage in an include_usage stream", i)
		}
		if !c.IncludeUsage && len(obj.Usage) != 0 && !responses {
			t.Errorf("event %d has usage but the stream was not recorded with include_usage", i)
		}
	}
}

func checkError(t *testing.T, c Cassette) {
	t.Helper()
	var e struct {
		Error map[string]json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(c.Body, &e); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e.Error[k]; !ok {
			t.Errorf("error body lacks %q", k)
		}
	}
	if len(e.Error) != 4 {
		t.Errorf("error body has fields %v", e.Error)
	}
}

// Wire shapes of usage, as OpenAI sends them.
type chatUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
		AudioTokens  int64 `json:"audio_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
		AudioTokens     int64 `json:"audio_tokens"`
	} `json:"completion_tokens_details"`
}

type responsesUsage struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int64 `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int64 `json:"total_tokens"`
}

func (u chatUsage) usage(t *testing.T) meter.Usage {
	t.Helper()
	if u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("total_tokens %d != %d + %d", u.TotalTokens, u.PromptTokens, u.CompletionTokens)
	}
	return meter.Usage{
		InputTokens: u.PromptTokens, CachedInputTokens: u.PromptTokensDetails.CachedTokens,
		AudioInputTokens: u.PromptTokensDetails.AudioTokens,
		OutputTokens:     u.CompletionTokens, ReasoningTokens: u.CompletionTokensDetails.ReasoningTokens,
		AudioOutputTokens: u.CompletionTokensDetails.AudioTokens,
	}
}

func (u responsesUsage) usage(t *testing.T) meter.Usage {
	t.Helper()
	if u.TotalTokens != u.InputTokens+u.OutputTokens {
		t.Errorf("total_tokens %d != %d + %d", u.TotalTokens, u.InputTokens, u.OutputTokens)
	}
	return meter.Usage{
		InputTokens: u.InputTokens, CachedInputTokens: u.InputTokensDetails.CachedTokens,
		OutputTokens: u.OutputTokens, ReasoningTokens: u.OutputTokensDetails.ReasoningTokens,
	}
}

// bodyUsage reads the usage and model a cassette's body reports.
func bodyUsage(t *testing.T, c Cassette) (meter.Usage, string) {
	t.Helper()
	if c.Status >= 400 || c.Method == "GET" {
		var o struct {
			Usage json.RawMessage `json:"usage"`
			ID    string          `json:"id"`
		}
		_ = json.Unmarshal(c.Body, &o)
		if o.Usage != nil {
			t.Errorf("%s reply has usage", c.Name)
		}
		if c.Name == "model" {
			return meter.Usage{}, o.ID
		}
		return meter.Usage{}, ""
	}
	if c.Path == "/v1/responses" {
		var r struct {
			Model string          `json:"model"`
			Usage *responsesUsage `json:"usage"`
		}
		if c.Stream {
			last := c.Events[len(c.Events)-1]
			data, _ := eventData(last)
			var ev struct {
				Response json.RawMessage `json:"response"`
			}
			if err := json.Unmarshal(data, &ev); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(ev.Response, &r); err != nil {
				t.Fatal(err)
			}
		} else if err := json.Unmarshal(c.Body, &r); err != nil {
			t.Fatal(err)
		}
		if r.Usage == nil {
			t.Fatal("responses reply without usage")
		}
		return r.Usage.usage(t), r.Model
	}
	if !c.Stream {
		var r struct {
			Model string     `json:"model"`
			Usage *chatUsage `json:"usage"`
		}
		if err := json.Unmarshal(c.Body, &r); err != nil {
			t.Fatal(err)
		}
		if r.Usage == nil {
			return meter.Usage{}, r.Model // moderations report none
		}
		return r.Usage.usage(t), r.Model
	}
	// A chat or completions stream: one usage chunk, with no choices, just
	// before [DONE]; every chunk names the same model.
	var u meter.Usage
	var model string
	found := 0
	for i, ev := range c.Events {
		data, _ := eventData(ev)
		if string(data) == "[DONE]" {
			continue
		}
		var ch struct {
			Model   string            `json:"model"`
			Choices []json.RawMessage `json:"choices"`
			Usage   *chatUsage        `json:"usage"`
		}
		if err := json.Unmarshal(data, &ch); err != nil {
			t.Fatal(err)
		}
		if model != "" && ch.Model != model {
			t.Errorf("event %d names model %q, earlier %q", i, ch.Model, model)
		}
		model = ch.Model
		if ch.Usage != nil {
			found++
			if len(ch.Choices) != 0 || i != len(c.Events)-2 {
				t.Errorf("usage in event %d with %d choices", i, len(ch.Choices))
			}
			u = ch.Usage.usage(t)
		}
	}
	if found != 1 {
		t.Errorf("%d usage chunks, want 1", found)
	}
	return u, model
}

// checkRequest validates request.json: JSON, consistent with the reply,
// and at least as many bytes as the prompt had tokens, so a byte-based
// upper bound in the proxy holds for it.
func checkRequest(t *testing.T, c Cassette) {
	t.Helper()
	if c.Request == nil {
		if c.Method == "POST" && c.Status < 400 {
			t.Error("POST cassette without request.json")
		}
		return
	}
	var req struct {
		Stream        bool `json:"stream"`
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
		EncodingFormat string `json:"encoding_format"`
	}
	if err := json.Unmarshal(c.Request, &req); err != nil {
		t.Fatalf("request.json: %v", err)
	}
	if req.Stream != c.Stream || req.StreamOptions.IncludeUsage != c.IncludeUsage {
		t.Errorf("request stream=%v include_usage=%v, cassette %v %v", req.Stream, req.StreamOptions.IncludeUsage, c.Stream, c.IncludeUsage)
	}
	if (req.EncodingFormat == "base64") != (c.Name == "embeddings-base64") {
		t.Errorf("request encoding_format %q", req.EncodingFormat)
	}
	if int64(len(c.Request)) < c.Usage.InputTokens {
		t.Errorf("request.json has %d bytes for %d input tokens", len(c.Request), c.Usage.InputTokens)
	}
}

// The base64 cassette must carry the float cassette's vector, as
// little-endian float32, as the API encodes it.
func TestEmbeddingsBase64MatchesFloat(t *testing.T) {
	type body[T any] struct {
		Data []struct {
			Embedding T `json:"embedding"`
		} `json:"data"`
	}
	var f body[[]float64]
	var b body[string]
	for name, dst := range map[string]any{"embeddings": &f, "embeddings-base64": &b} {
		c, err := Load(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(c.Body, dst); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := base64.StdEncoding.DecodeString(b.Data[0].Embedding)
	if err != nil {
		t.Fatal(err)
	}
	want := f.Data[0].Embedding
	if len(raw) != 4*len(want) || len(want) == 0 {
		t.Fatalf("%d bytes of base64 for %d floats", len(raw), len(want))
	}
	var norm float64
	for i, w := range want {
		got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		if got != float32(w) {
			t.Errorf("dimension %d: base64 %v, float %v", i, got, w)
		}
		norm += w * w
	}
	// text-embedding-3 vectors are unit length, also when shortened.
	if math.Abs(norm-1) > 1e-5 {
		t.Errorf("vector norm² %v, want 1", norm)
	}
}

// GET /v1/models/{id} is built from the models list; for gpt-4o-mini it
// must be the recorded model cassette byte for byte.
func TestModelObjectMatchesList(t *testing.T) {
	lib, err := library()
	if err != nil {
		t.Fatal(err)
	}
	m, _ := Load("model")
	var obj struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(m.Body, &obj); err != nil {
		t.Fatal(err)
	}
	if got := lib.models[obj.ID]; !bytes.Equal(got, m.Body) {
		t.Fatalf("models entry %q rendered as\n%s\nwant\n%s", obj.ID, got, m.Body)
	}
}

// TestEventsWithoutUsage compares each include_usage stream, as a client
// without include_usage gets it, with a golden file (-update rewrites).
func TestEventsWithoutUsage(t *testing.T) {
	n := 0
	for _, name := range Names() {
		c, _ := Load(name)
		if !c.Stream {
			continue
		}
		got := c.EventsWithoutUsage()
		if !c.IncludeUsage {
			if !slices.EqualFunc(got, c.Events, bytes.Equal) {
				t.Errorf("%s: stream without include_usage was changed", name)
			}
			continue
		}
		n++
		if len(got) != len(c.Events)-1 {
			t.Errorf("%s: %d events, want %d", name, len(got), len(c.Events)-1)
		}
		// The usage chunk is the one before [DONE]; the rest keep their order.
		kept := slices.Delete(slices.Clone(c.Events), len(c.Events)-2, len(c.Events)-1)
		for i, ev := range got {
			if bytes.Contains(ev, []byte(`"usage"`)) {
				t.Errorf("%s: event %d still has usage: %s", name, i, ev)
			}
			// Removing the field must be the only change.
			if want := bytes.ReplaceAll(kept[i], []byte(`,"usage":null`), nil); !bytes.Equal(ev, want) {
				t.Errorf("%s: event %d changed beyond the usage field", name, i)
			}
		}
		if string(got[len(got)-1]) != "data: [DONE]\n\n" {
			t.Errorf("%s: does not end with [DONE]", name)
		}
		golden := filepath.Join("testdata", "golden", name+".no-usage.sse")
		joined := bytes.Join(got, nil)
		if *update {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, joined, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if !bytes.Equal(joined, want) {
			t.Errorf("%s: differs from %s", name, golden)
		}
	}
	if n == 0 {
		t.Fatal("no include_usage cassette")
	}
}

func TestSplitEventsRejectsBadFraming(t *testing.T) {
	for _, body := range []string{"data: {}\n", "data: {}\r\n\r\n", "data: {}\n\ndata: [DONE]"} {
		if _, err := splitEvents([]byte(body)); err == nil {
			t.Errorf("splitEvents(%q) accepted", body)
		}
	}
	evs, err := splitEvents([]byte("event: a\ndata: {}\n\ndata: [DONE]\n\n"))
	if err != nil || len(evs) != 2 || string(evs[0]) != "event: a\ndata: {}\n\n" {
		t.Fatalf("splitEvents = %q, %v", evs, err)
	}
}
