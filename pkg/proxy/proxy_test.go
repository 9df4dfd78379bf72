package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/wrapi-dev/wrapi/pkg/identity"
	"github.com/wrapi-dev/wrapi/pkg/meter"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/proxy"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

// Hand-computed costs of the cassettes, from prices.json (USD per 1M
// tokens) and each cassette's usage. cost = ceil(Σ tokens × price / 1e6)
// in nano-USD.
var (
	// gpt-4o-mini: input 0.15, cached 0.075, output 0.60.
	// chat: 1931 in (1792 cached), 68 out:
	// 139×0.15 + 1792×0.075 + 68×0.60 = 20.85 + 134.4 + 40.8 = 196.05 µ$.
	costChat = money.Nanos(196_050)
	// gpt-5-mini: input 0.25, cached 0.025, output 2.00.
	// chat-reasoning: 1290 in (1152 cached), 406 out of which 320 reasoning
	// (part of output, billed once): 138×0.25 + 1152×0.025 + 406×2 =
	// 34.5 + 28.8 + 812 = 875.3 µ$.
	costChatReasoning = money.Nanos(875_300)
	// chat-stream (gpt-4o-mini): 1156 in (1024 cached), 12 out:
	// 132×0.15 + 1024×0.075 + 12×0.60 = 19.8 + 76.8 + 7.2 = 103.8 µ$.
	costChatStream = money.Nanos(103_800)
	// o4-mini: input 1.10, cached 0.275, output 4.40.
	// responses-stream: 1562 in (1408 cached), 227 out (192 reasoning):
	// 154×1.10 + 1408×0.275 + 227×4.40 = 169.4 + 387.2 + 998.8 = 1555.4 µ$.
	costResponsesStream = money.Nanos(1_555_400)
	// text-embedding-3-small: 0.02; embeddings: 11 tokens = 0.22 µ$.
	costEmbeddings = money.Nanos(220)
)

func TestChatThroughOpenAIGo(t *testing.T) {
	for _, tc := range []struct {
		cassette, model string
		cost            money.Nanos
		usage           meter.Usage
	}{
		{"chat", "gpt-4o-mini", costChat, meter.Usage{InputTokens: 1931, CachedInputTokens: 1792, OutputTokens: 68}},
		{"chat-reasoning", "gpt-5-mini", costChatReasoning, meter.Usage{InputTokens: 1290, CachedInputTokens: 1152, OutputTokens: 406, ReasoningTokens: 320}},
	} {
		t.Run(tc.cassette, func(t *testing.T) {
			e := newEnv(t, nil)
			want := cassette(t, tc.cassette)
			resp, err := e.client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
				Model:    tc.model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is your refund window for annual plans?")},
			}, option.WithHeader("X-Openaitest-Cassette", tc.cassette), option.WithHeader(proxy.HeaderProject, "support"))
			if err != nil {
				t.Fatal(err)
			}
			var wantResp openai.ChatCompletion
			if err := json.Unmarshal(want.Body, &wantResp); err != nil {
				t.Fatal(err)
			}
			if resp.Choices[0].Message.Content != wantResp.Choices[0].Message.Content || resp.Usage.PromptTokens != tc.usage.InputTokens {
				t.Errorf("SDK got %q (usage %+v), want the cassette's reply", resp.Choices[0].Message.Content, resp.Usage)
			}
			r := e.onlyRecord()
			if r.Cost != tc.cost {
				t.Errorf("cost = %s USD, want %s (hand-computed)", r.Cost, tc.cost)
			}
			if r.Usage != tc.usage {
				t.Errorf("usage = %+v, want %+v", r.Usage, tc.usage)
			}
			if r.Project != "support" || r.User != "alice" || r.Stage != "test" || r.Status != 200 ||
				r.ModelRequested != tc.model || r.ModelServed != want.Model || r.Estimated || r.Stream ||
				r.PriceVersion == "" || r.Endpoint != "chat/completions" || r.Reserved < r.Cost {
				t.Errorf("record = %+v", r)
			}
		})
	}
}

func TestChatBodyByteForByte(t *testing.T) {
	e := newEnv(t, nil)
	c := cassette(t, "chat")
	status, hdr, body := e.post("/v1/chat/completions", c.Request, nil)
	if status != 200 || !bytes.Equal(body, c.Body) {
		t.Fatalf("status %d; body differs from the upstream's:\n got %q\nwant %q", status, body, c.Body)
	}
	if hdr.Get(proxy.HeaderRequestID) == "" || hdr.Get("X-Ratelimit-Remaining-Requests") == "" {
		t.Errorf("headers: want wrapi's request id and the upstream's rate-limit headers, got %v", hdr)
	}
	// The request reached OpenAI byte for byte.
	reqs := e.up.Requests()
	if len(reqs) != 1 || !bytes.Equal(reqs[0].Body, c.Request) {
		t.Fatalf("upstream got %d requests; body changed in transit", len(reqs))
	}
}

func concat(evs [][]byte) []byte { return bytes.Join(evs, nil) }

func withoutUsageChunk(t *testing.T, evs [][]byte) []byte {
	var out [][]byte
	dropped := 0
	for _, ev := range evs {
		if meter.IsUsageOnlyChunk(scanOne(t, ev)) {
			dropped++
			continue
		}
		out = append(out, ev)
	}
	if dropped != 1 {
		t.Fatalf("cassette should hold exactly one usage chunk, has %d", dropped)
	}
	return concat(out)
}

func scanOne(t *testing.T, raw []byte) meter.Event {
	ev, err := meter.NewScanner(bytes.NewReader(raw)).Next()
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestChatStreamByteForByte(t *testing.T) {
	c := cassette(t, "chat-stream")
	t.Run("client did not ask for usage", func(t *testing.T) {
		e := newEnv(t, nil)
		req := withFields(t, c.Request, map[string]any{"stream": true, "stream_options": nil})
		status, hdr, body := e.post("/v1/chat/completions", req, nil)
		if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("status %d, content-type %q", status, hdr.Get("Content-Type"))
		}
		if want := withoutUsageChunk(t, c.Events); !bytes.Equal(body, want) {
			t.Fatalf("stream differs from the upstream's minus the injected usage chunk:\n got %q\nwant %q", body, want)
		}
		// wrapi asked OpenAI for usage on the client's behalf.
		var sent struct {
			StreamOptions struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		if err := json.Unmarshal(e.up.Requests()[0].Body, &sent); err != nil || !sent.StreamOptions.IncludeUsage {
			t.Fatalf("upstream request lacks stream_options.include_usage=true: %s", e.up.Requests()[0].Body)
		}
		r := e.onlyRecord()
		if r.Cost != costChatStream || !r.Stream || r.Estimated || r.Usage.CachedInputTokens != 1024 {
			t.Errorf("record = %+v, want cost %s", r, costChatStream)
		}
	})
	t.Run("client asked for usage", func(t *testing.T) {
		e := newEnv(t, nil)
		req := withFields(t, c.Request, map[string]any{"stream": true, "stream_options": map[string]any{"include_usage": true}})
		_, _, body := e.post("/v1/chat/completions", req, nil)
		if !bytes.Equal(body, concat(c.Events)) {
			t.Fatalf("stream differs from the upstream's:\n got %q\nwant %q", body, concat(c.Events))
		}
		if !bytes.Equal(e.up.Requests()[0].Body, req) {
			t.Error("a request that already asks for usage must be forwarded unchanged")
		}
		if r := e.onlyRecord(); r.Cost != costChatStream {
			t.Errorf("cost = %s, want %s", r.Cost, costChatStream)
		}
	})
}

func TestChatStreamThroughOpenAIGo(t *testing.T) {
	for _, name := range []string{"chat-stream", "chat-stream-tools", "chat-stream-n2"} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			c := cassette(t, name)
			var model string
			_ = json.Unmarshal(c.Request, &struct{ Model *string }{&model})
			st := e.client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
				Model:    model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
			}, option.WithHeader("X-Openaitest-Cassette", name))
			var acc openai.ChatCompletionAccumulator
			chunks := 0
			for st.Next() {
				ch := st.Current()
				if len(ch.Choices) == 0 {
					t.Fatalf("client got the usage-only chunk it did not ask for: %s", ch.RawJSON())
				}
				acc.AddChunk(ch)
				chunks++
			}
			if err := st.Err(); err != nil {
				t.Fatal(err)
			}
			if chunks == 0 || len(acc.Choices) == 0 {
				t.Fatal("no chunks")
			}
			r := e.onlyRecord()
			if r.Usage != c.Usage || r.Estimated || r.Cost <= 0 {
				t.Errorf("record usage %+v cost %s, want %+v", r.Usage, r.Cost, c.Usage)
			}
		})
	}
}

func TestResponsesStreamThroughOpenAIGo(t *testing.T) {
	e := newEnv(t, nil)
	c := cassette(t, "responses-stream")
	st := e.client.Responses.NewStreaming(context.Background(), responses.ResponseNewParams{
		Model: "o4-mini",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("How many r's in strawberry?")},
	})
	var types []string
	for st.Next() {
		types = append(types, st.Current().Type)
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if len(types) != len(c.Events) || types[len(types)-1] != "response.completed" {
		t.Fatalf("got %d events ending %q, want %d ending response.completed", len(types), types[len(types)-1], len(c.Events))
	}
	r := e.onlyRecord()
	if r.Cost != costResponsesStream || r.Usage.ReasoningTokens != 192 || r.Endpoint != "responses" {
		t.Errorf("record = %+v, want cost %s", r, costResponsesStream)
	}
}

func TestResponsesAndEmbeddingsJSON(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := e.client.Responses.New(context.Background(), responses.ResponseNewParams{
		Model: "o4-mini",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := cassette(t, "responses")
	if resp.Usage.InputTokens != want.Usage.InputTokens {
		t.Errorf("responses usage %+v, want %+v", resp.Usage, want.Usage)
	}
	emb, err := e.client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
		Model: openai.EmbeddingModelTextEmbedding3Small,
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("The food was delicious")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(emb.Data) == 0 || len(emb.Data[0].Embedding) == 0 {
		t.Fatal("no embedding")
	}
	// base64 embeddings pass through byte for byte too.
	b64 := cassette(t, "embeddings-base64")
	status, _, body := e.post("/v1/embeddings", b64.Request, nil)
	if status != 200 || !bytes.Equal(body, b64.Body) {
		t.Fatalf("base64 embeddings changed in transit (status %d)", status)
	}
	byEndpoint := map[string]money.Nanos{}
	for _, r := range e.records() {
		byEndpoint[r.Endpoint] += r.Cost
		if r.Estimated || r.Status != 200 {
			t.Errorf("record %+v", r)
		}
	}
	if byEndpoint["embeddings"] != 2*costEmbeddings {
		t.Errorf("embeddings cost %s, want %s", byEndpoint["embeddings"], 2*costEmbeddings)
	}
	if byEndpoint["responses"] <= 0 {
		t.Errorf("responses not billed: %v", byEndpoint)
	}
}

func TestModelsPassUnmetered(t *testing.T) {
	e := newEnv(t, nil)
	page, err := e.client.Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) == 0 {
		t.Fatal("no models listed")
	}
	if rs := e.records(); len(rs) != 0 {
		t.Errorf("listing models must not be recorded: %+v", rs)
	}
}

func TestUpstreamHeaders(t *testing.T) {
	e := newEnv(t, func(c *proxy.Config) { c.Organization = "org-wrapi" })
	c := cassette(t, "chat")
	e.post("/v1/chat/completions", c.Request, map[string]string{
		"OpenAI-Organization": "org-attacker",
		"OpenAI-Project":      "proj-attacker",
		"X-Forwarded-Host":    "evil.example",
		"Forwarded":           "host=evil.example",
		"Host":                "evil.example",
		"Cookie":              "session=1",
		"Accept-Encoding":     "br",
		"OpenAI-Beta":         "assistants=v2",
		"openai-proxy-user":   "mallory",
	})
	reqs := e.up.Requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	h := reqs[0].Header
	if got := h.Get("Authorization"); got != "Bearer "+upstreamKey {
		t.Errorf("Authorization = %q, want the stage's key", got)
	}
	if got := h.Get("OpenAI-Organization"); got != "org-wrapi" {
		t.Errorf("OpenAI-Organization = %q, want the stage's", got)
	}
	for _, k := range []string{"OpenAI-Project", "X-Forwarded-Host", "Forwarded", "Cookie", "openai-proxy-user", "X-Forwarded-For"} {
		if v := h.Get(k); v != "" {
			t.Errorf("header %s = %q reached the upstream", k, v)
		}
	}
	if h.Get("OpenAI-Beta") != "assistants=v2" {
		t.Error("ordinary headers (OpenAI-Beta) must pass")
	}
	if ae := h.Get("Accept-Encoding"); strings.Contains(ae, "br") {
		t.Errorf("Accept-Encoding %q: the proxy must only accept encodings it can meter", ae)
	}
	if r := e.onlyRecord(); r.User != "alice" {
		t.Errorf("openai-proxy-user must not change the user: %q", r.User)
	}
}

// TestStreamEventsAreFlushed proves that each event reaches the client
// while the upstream is still streaming: the upstream sends one event and
// then waits until the client has read it through the proxy.
func TestStreamEventsAreFlushed(t *testing.T) {
	c := cassette(t, "chat-stream")
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.WriteHeader(200)
		w.Write(c.Events[0])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
			return
		}
		for _, ev := range c.Events[1:] {
			w.Write(ev)
		}
	}))
	defer up.Close()
	st, _ := sqlite.Open(context.Background(), ":memory:")
	defer st.Close()
	u, _ := url.Parse(up.URL + "/v1")
	h, err := proxy.New(proxy.Config{Stage: "test", Upstream: u, APIKey: "k", Store: st, Auth: identity.None{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	req := withFields(t, c.Request, map[string]any{"stream": true})
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != string(bytes.SplitAfter(c.Events[0], []byte("\n"))[0]) {
		t.Fatalf("first event did not arrive before the upstream finished: %q, %v", line, err)
	}
	close(release)
	rest := new(bytes.Buffer)
	rest.ReadFrom(br)
	h.Wait()
	if !strings.Contains(rest.String(), "[DONE]") {
		t.Fatal("stream incomplete")
	}
}
