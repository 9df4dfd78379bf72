package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/openaitest"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

// TestStage runs every scenario against each way a stage is reached: the
// function URL path (SigV4 → front → proxy Lambda handler on DynamoDB,
// memcached cache), the same with the DynamoDB cache (cache scenario),
// and the `wrapi serve` container with a virtual key. Scenarios bill
// distinct projects; the dashboard scenario then checks that the usage
// report adds up to what they all spent.
func TestStage(t *testing.T) {
	e := env(t)
	t.Logf("environment: %s", e.Kind())
	type scenario struct {
		name string
		run  func(t *testing.T, tg *target, l *ledger)
	}
	all := []scenario{
		{"go-sdk", scenarioGoSDK},
		{"node-sdk", scenarioNodeSDK},
		{"langchain", scenarioLangChain},
		{"budget", scenarioBudget},
		{"cache", scenarioCache},
		{"identity", scenarioIdentity},
		{"faults", scenarioFaults},
		{"dashboard", scenarioDashboard},
		{"memcached-outage", scenarioMemcachedOutage}, // last: it stops the cache
	}
	for _, tc := range []struct {
		name      string
		make      func(t *testing.T) *target
		scenarios []string // nil: all
	}{
		{"function-url", func(t *testing.T) *target { return newFunctionURLTarget(t, e, "memcached") }, nil},
		{"function-url-dynamodb-cache", func(t *testing.T) *target { return newFunctionURLTarget(t, e, "dynamodb") }, []string{"cache", "dashboard"}},
		{"container", func(t *testing.T) *target { return newContainerTarget(t, e) }, nil},
	} {
		if only := os.Getenv("WRAPI_IT_TARGETS"); only != "" && !contains(strings.Split(only, ","), tc.name) {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			tg := tc.make(t)
			t.Logf("%s ready in %s", tg.name, time.Since(start).Round(time.Millisecond))
			l := &ledger{rows: map[string]*store.UsageRow{}}
			for _, s := range all {
				if tc.scenarios != nil && !contains(tc.scenarios, s.name) {
					continue
				}
				if only := os.Getenv("WRAPI_IT_SCENARIOS"); only != "" && !contains(strings.Split(only, ","), s.name) {
					continue
				}
				t.Run(s.name, func(t *testing.T) {
					s0 := time.Now()
					s.run(t, tg, l)
					t.Logf("%s took %s", s.name, time.Since(s0).Round(time.Millisecond))
				})
			}
			if t.Failed() && tg.logs() != "" {
				t.Logf("proxy log:\n%s", tg.logs())
			}
		})
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Costs of the recorded replies (pkg/openaitest cassettes), priced by
// the embedded table: input, cached input and output tokens each at
// their rate.
var (
	costChat            = money.Nanos(196_050)   // gpt-4o-mini: 139 in + 1792 cached + 68 out
	costChatStream      = money.Nanos(103_800)   // gpt-4o-mini: 132 in + 1024 cached + 12 out
	costResponsesStream = money.Nanos(1_555_400) // o4-mini: 154 in × 1.10 + 1408 cached × 0.275 + 227 out × 4.40 per 1M
	costEmbeddings      = money.Nanos(220)       // text-embedding-3-small: 11 in × 0.02 per 1M
)

// limitsCacheWait: the proxy caches the list of limits for a second,
// and flush generations as long; admin changes are seen after that.
const limitsCacheWait = 1500 * time.Millisecond

// cacheWriteWait: `wrapi serve` stores a response in the cache after
// the client has it (the function URL handler, before it returns).
const cacheWriteWait = 300 * time.Millisecond

// ledger is what the scenarios expect the stage to have billed, by project.
type ledger struct {
	mu   sync.Mutex
	rows map[string]*store.UsageRow
}

func (l *ledger) add(project string, requests, errs, hits, estimated int64, cost, saved money.Nanos) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rows[project]
	if r == nil {
		r = &store.UsageRow{Project: project}
		l.rows[project] = r
	}
	r.Requests += requests
	r.Errors += errs
	r.CacheHits += hits
	r.Estimated += estimated
	r.Cost += cost
	r.Saved += saved
}

// checkProject compares a project's bill with the ledger.
func (l *ledger) checkProject(t *testing.T, tg *target, project string) {
	t.Helper()
	l.mu.Lock()
	want := *l.rows[project]
	l.mu.Unlock()
	eventually(t, "bill of project "+project, func() error {
		return sameTotals(tg.projectRow(t, project), want)
	})
}

func sameTotals(got, want store.UsageRow) error {
	g := fmt.Sprintf("requests %d errors %d hits %d estimated %d cost %s saved %s", got.Requests, got.Errors, got.CacheHits, got.Estimated, got.Cost, got.Saved)
	w := fmt.Sprintf("requests %d errors %d hits %d estimated %d cost %s saved %s", want.Requests, want.Errors, want.CacheHits, want.Estimated, want.Cost, want.Saved)
	if g != w {
		return fmt.Errorf("got  %s\nwant %s", g, w)
	}
	return nil
}

// ---- the recorded replies ----

func cassette(t *testing.T, name string) openaitest.Cassette {
	t.Helper()
	c, err := openaitest.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// requestBody is the cassette's recorded request, edited: keys set to
// nil are removed.
func requestBody(t *testing.T, c openaitest.Cassette, edits map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(c.Request, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range edits {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func chatText(t *testing.T) string {
	var body struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(cassette(t, "chat").Body, &body); err != nil || len(body.Choices) == 0 {
		t.Fatalf("chat cassette: %v", err)
	}
	return body.Choices[0].Message.Content
}

// streamText reassembles a chat stream's content deltas.
func streamText(t *testing.T, events [][]byte) string {
	var sb strings.Builder
	for _, ev := range events {
		data, ok := bytes.CutPrefix(bytes.TrimSpace(ev), []byte("data: "))
		if !ok || string(data) == "[DONE]" {
			continue
		}
		var chunk struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(data, &chunk); err != nil {
			t.Fatalf("chat stream event %q: %v", data, err)
		}
		if len(chunk.Choices) > 0 {
			sb.WriteString(chunk.Choices[0].Delta.Content)
		}
	}
	return sb.String()
}

func joinEvents(evs [][]byte) []byte { return bytes.Join(evs, nil) }

// proxiedWithoutUsage is what a client that did not ask for
// include_usage receives from wrapi: wrapi asked OpenAI for the usage
// chunk (to meter the stream) and drops that chunk, byte for byte the
// rest of OpenAI's include_usage stream. Unlike OpenAI's own reply
// without include_usage (openaitest's EventsWithoutUsage), each chunk
// keeps its "usage":null field; SDKs read both alike.
func proxiedWithoutUsage(c openaitest.Cassette) []byte {
	var out [][]byte
	for _, ev := range c.Events {
		if bytes.Contains(ev, []byte(`"choices":[]`)) && bytes.Contains(ev, []byte(`"usage":{`)) {
			continue
		}
		out = append(out, ev)
	}
	return joinEvents(out)
}

// firstDiff describes where got departs from want ("intact" if nowhere).
func firstDiff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return "intact"
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, i-60)
	return fmt.Sprintf("%d bytes, want %d; first difference at byte %d:\n got: %q\nwant: %q",
		len(got), len(want), i, got[from:min(len(got), i+60)], want[from:min(len(want), i+60)])
}

// ---- scenarios ----

// scenarioGoSDK: chat, chat streams with and without include_usage,
// responses stream and embeddings, raw (bytes compared with what OpenAI
// sent) and through openai-go; then the bill, by user and model.
func scenarioGoSDK(t *testing.T, tg *target, l *ledger) {
	const project = "go-sdk"
	chat, chatStream, respStream, emb := cassette(t, "chat"), cassette(t, "chat-stream"), cassette(t, "responses-stream"), cassette(t, "embeddings")
	for _, tc := range []struct {
		name, path string
		body       []byte
		want       []byte
	}{
		{"chat", "/chat/completions", chat.Request, chat.Body},
		{"chat stream", "/chat/completions", requestBody(t, chatStream, map[string]any{"stream_options": nil}), proxiedWithoutUsage(chatStream)},
		{"chat stream include_usage", "/chat/completions", chatStream.Request, chatStream.Body},
		{"responses stream", "/responses", respStream.Request, respStream.Body},
		{"embeddings", "/embeddings", emb.Request, emb.Body},
	} {
		resp, got := tg.post(t, tc.path, project, tc.body, nil)
		if resp.StatusCode != 200 || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: status %d, body differs from what OpenAI sent: %s", tc.name, resp.StatusCode, firstDiff(got, tc.want))
		}
		if resp.Header.Get("x-wrapi-request-id") == "" {
			t.Errorf("%s: no x-wrapi-request-id", tc.name)
		}
	}

	ctx := context.Background()
	c := tg.sdk(project, 0)
	question := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is your refund window for annual plans?")}
	r, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: question})
	if err != nil || r.Choices[0].Message.Content != chatText(t) || r.Usage.TotalTokens != 1999 {
		t.Errorf("chat: %v %+v", err, r)
	}
	for _, include := range []bool{false, true} {
		p := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: question}
		if include {
			p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		}
		s := c.Chat.Completions.NewStreaming(ctx, p)
		var text strings.Builder
		var usageChunks int
		var total int64
		for s.Next() {
			ch := s.Current()
			if len(ch.Choices) > 0 {
				text.WriteString(ch.Choices[0].Delta.Content)
			}
			if ch.JSON.Usage.Valid() && ch.Usage.TotalTokens > 0 {
				usageChunks++
				total = ch.Usage.TotalTokens
			}
		}
		wantChunks, wantTotal := 0, int64(0)
		if include {
			wantChunks, wantTotal = 1, 1168
		}
		if s.Err() != nil || text.String() != streamText(t, chatStream.Events) || usageChunks != wantChunks || total != wantTotal {
			t.Errorf("chat stream include_usage=%v: err %v, text %q, %d usage chunks (total %d); want %d (total %d)",
				include, s.Err(), text.String(), usageChunks, total, wantChunks, wantTotal)
		}
	}
	rs := c.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "o4-mini",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("What is your refund window?")}})
	var events int
	var last string
	var completed responses.Response
	for rs.Next() {
		ev := rs.Current()
		events++
		last = ev.Type
		if ev.Type == "response.completed" {
			completed = ev.Response
		}
	}
	if rs.Err() != nil || events != len(respStream.Events) || last != "response.completed" || completed.Usage.TotalTokens != 1789 {
		t.Errorf("responses stream: err %v, %d events (want %d), last %q, usage %d", rs.Err(), events, len(respStream.Events), last, completed.Usage.TotalTokens)
	}
	e, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: openai.EmbeddingModelTextEmbedding3Small,
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("The food was delicious.")}, Dimensions: openai.Int(8)})
	if err != nil || len(e.Data) != 1 || len(e.Data[0].Embedding) != 8 {
		t.Errorf("embeddings: %v", err)
	}

	// Each call twice (raw + SDK), chat streams twice each.
	wantByModel := map[string]string{
		"gpt-4o-mini":            fmt.Sprintf("6 requests %s", 2*costChat+4*costChatStream),
		"o4-mini":                fmt.Sprintf("2 requests %s", 2*costResponsesStream),
		"text-embedding-3-small": fmt.Sprintf("2 requests %s", 2*costEmbeddings),
	}
	eventually(t, "go-sdk bill by user and model", func() error {
		rep := tg.usage(t, "user,model", "--project", project)
		got := map[string]string{}
		for _, line := range rep.Lines {
			if line.Key["user"] != tg.user {
				return fmt.Errorf("billed to user %q, want %q", line.Key["user"], tg.user)
			}
			got[line.Key["model"]] = fmt.Sprintf("%d requests %s", line.Requests, line.Cost)
		}
		if fmt.Sprint(got) != fmt.Sprint(wantByModel) {
			return fmt.Errorf("got %v, want %v", got, wantByModel)
		}
		return nil
	})
	l.add(project, 10, 0, 0, 0, 2*costChat+4*costChatStream+2*costResponsesStream+2*costEmbeddings, 0)
}

// nodeRun runs integration/node/scenarios.mjs MODE against the target.
func nodeRun(t *testing.T, tg *target, mode, project string) map[string]any {
	t.Helper()
	node := nodeModules(t)
	return runJSON(t, []string{"OPENAI_BASE_URL=" + tg.nodeBase, "OPENAI_API_KEY=" + tg.nodeKey, "WRAPI_IT_PROJECT=" + project,
		"OPENAI_LOG=", "LANGSMITH_TRACING=false", "LANGCHAIN_TRACING_V2=false"},
		filepath.Join(repoRoot(t), "integration", "node"), node, "scenarios.mjs", mode)
}

// scenarioNodeSDK: the same calls through the official openai npm SDK.
func scenarioNodeSDK(t *testing.T, tg *target, l *ledger) {
	const project = "node-sdk"
	got := nodeRun(t, tg, "sdk", project)
	stream := cassette(t, "chat-stream")
	text := streamText(t, stream.Events)
	want := map[string]any{
		"chat":                   chatText(t),
		"chat_total_tokens":      float64(1999),
		"chat_stream":            map[string]any{"text": text, "chunks": float64(len(stream.EventsWithoutUsage()) - 1), "usage_chunks": float64(0), "total_tokens": float64(0)},
		"chat_stream_usage":      map[string]any{"text": text, "chunks": float64(len(stream.Events) - 1), "usage_chunks": float64(1), "total_tokens": float64(1168)},
		"responses_events":       float64(len(cassette(t, "responses-stream").Events)),
		"responses_last":         "response.completed",
		"responses_total_tokens": float64(1789),
		"embedding_dims":         float64(8),
		"attempts":               float64(5),
	}
	for k, w := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(w) {
			t.Errorf("node %s = %v, want %v", k, got[k], w)
		}
	}
	if s, _ := got["responses_text"].(string); len(s) < 10 {
		t.Errorf("node responses_text = %q", got["responses_text"])
	}
	l.add(project, 5, 0, 0, 0, costChat+2*costChatStream+costResponsesStream+costEmbeddings, 0)
	l.checkProject(t, tg, project)
}

// scenarioLangChain: @langchain/openai's ChatOpenAI, invoke and stream.
func scenarioLangChain(t *testing.T, tg *target, l *ledger) {
	const project = "langchain"
	got := nodeRun(t, tg, "langchain", project)
	if got["invoke"] != chatText(t) || got["stream"] != streamText(t, cassette(t, "chat-stream").Events) ||
		got["invoke_total_tokens"] != float64(1999) || got["attempts"] != float64(2) {
		t.Errorf("langchain: %v", got)
	}
	l.add(project, 2, 0, 0, 0, costChat+costChatStream, 0)
	l.checkProject(t, tg, project)
}

// countingTransport counts HTTP attempts.
type countingTransport struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// scenarioBudget: a limit set through the admin function, 200 concurrent
// requests; spend never exceeds it, refusals are 429 budget_exceeded and
// neither SDK retries them.
func scenarioBudget(t *testing.T, tg *target, l *ledger) {
	const project, n = "budget", 200
	limit := money.Nanos(10_000_000) // $0.01: about 51 chats, far fewer worst cases at once
	tg.admin(t, "limits", "set", "--project", project, "--usd", limit.String(), "--period", "day")
	time.Sleep(limitsCacheWait) // a running proxy re-reads the limit list every second
	// The recorded request: its byte length bounds the recorded prompt,
	// so the reservation is a true worst case.
	body := requestBody(t, cassette(t, "chat"), map[string]any{"max_completion_tokens": 100})
	base := tg.http.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	ct := &countingTransport{base: base}
	c := tg.sdk(project, 2, option.WithHTTPClient(&http.Client{Transport: ct})) // the SDK's default retries
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	gate := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{}, option.WithRequestBody("application/json", body))
			var apiErr *openai.Error
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &apiErr) && apiErr.StatusCode == 429 && apiErr.Code == "budget_exceeded" &&
				apiErr.Type == "insufficient_quota" && apiErr.Response.Header.Get("x-should-retry") == "false":
				refused.Add(1)
			default:
				errs <- err
			}
		}()
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("neither a success nor a budget refusal: %v", err)
	}
	t.Logf("%d requests: %d served, %d refused", n, ok.Load(), refused.Load())
	if ok.Load() == 0 || refused.Load() == 0 {
		t.Errorf("want some served and some refused, got %d and %d", ok.Load(), refused.Load())
	}
	if got := ct.n.Load(); got != n {
		t.Errorf("openai-go made %d HTTP attempts for %d requests: it retried", got, n)
	}
	spent := money.Nanos(ok.Load()) * costChat
	if spent > limit {
		t.Errorf("spent %s over the %s limit", spent, limit)
	}
	// The npm SDK, over budget, makes one attempt too.
	nodeGot := nodeRun(t, tg, "budget", project)
	if nodeGot["status"] != float64(429) || nodeGot["code"] != "budget_exceeded" || nodeGot["type"] != "insufficient_quota" ||
		nodeGot["should_retry"] != "false" || nodeGot["attempts"] != float64(1) {
		t.Errorf("npm SDK over budget: %v", nodeGot)
	}
	l.add(project, n+1, refused.Load()+1, 0, 0, spent, 0)
	l.checkProject(t, tg, project)
	rep := tg.usage(t, "project", "--project", project)
	for _, lim := range rep.Limits {
		if lim.Scope.Project == project && (lim.Committed != spent || lim.Committed > lim.Amount) {
			t.Errorf("limit %s: committed %s, want the spend %s (no reservation left)", project, lim.Committed, spent)
		}
	}
}

// scenarioCache: a hit, a replayed stream, savings recorded, a flush
// through the admin function.
func scenarioCache(t *testing.T, tg *target, l *ledger) {
	const project = "cache"
	on := map[string]string{"openai-proxy-caching": "1"}
	chat, stream := cassette(t, "chat"), cassette(t, "chat-stream")
	streamBody := requestBody(t, stream, map[string]any{"stream_options": nil})
	for _, tc := range []struct {
		name string
		body []byte
		want []byte
	}{
		{"chat", chat.Request, chat.Body},
		{"chat stream", streamBody, proxiedWithoutUsage(stream)},
	} {
		for i, state := range []string{"miss", "hit"} {
			resp, got := tg.post(t, "/chat/completions", project, tc.body, on)
			if resp.StatusCode != 200 || resp.Header.Get("x-wrapi-cache") != state || !bytes.Equal(got, tc.want) {
				t.Errorf("%s #%d: status %d, x-wrapi-cache %q (want %s), body: %s", tc.name, i+1, resp.StatusCode,
					resp.Header.Get("x-wrapi-cache"), state, firstDiff(got, tc.want))
			}
			if state == "miss" {
				time.Sleep(cacheWriteWait)
			}
			if state == "hit" && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") && tc.name == "chat stream" {
				t.Errorf("replayed stream has Content-Type %q", resp.Header.Get("Content-Type"))
			}
		}
	}
	l.add(project, 4, 0, 2, 0, costChat+costChatStream, costChat+costChatStream)
	l.checkProject(t, tg, project)

	out := tg.admin(t, "cache", "flush", "--project", project)
	if !strings.Contains(out, "cache flushed") {
		t.Errorf("cache flush: %s", out)
	}
	time.Sleep(limitsCacheWait) // "a running server sees it within a second"
	resp, got := tg.post(t, "/chat/completions", project, chat.Request, on)
	if resp.StatusCode != 200 || resp.Header.Get("x-wrapi-cache") != "miss" || !bytes.Equal(got, chat.Body) {
		t.Errorf("after the flush: status %d, x-wrapi-cache %q, want a miss", resp.StatusCode, resp.Header.Get("x-wrapi-cache"))
	}
	l.add(project, 1, 0, 0, 0, costChat, 0)
	l.checkProject(t, tg, project)
}

// scenarioIdentity: a forged openai-proxy-user header bills the real
// caller; a wrong stage header is a 400; an unsigned (or keyless)
// request is refused and billed to nobody.
func scenarioIdentity(t *testing.T, tg *target, l *ledger) {
	const project = "identity"
	chat := cassette(t, "chat")
	resp, _ := tg.post(t, "/chat/completions", project, chat.Request, map[string]string{"openai-proxy-user": "mallory"})
	if resp.StatusCode != 200 {
		t.Errorf("forged user header: status %d", resp.StatusCode)
	}
	wrongStage := tg.sdk(project, 0, option.WithHeader("openai-proxy-staging", "prod"))
	_, err := wrongStage.Chat.Completions.New(context.Background(),
		openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "stage_mismatch" {
		t.Errorf("wrong stage header: want 400 stage_mismatch, got %v", err)
	}
	resp, body := doRaw(t, tg.anon, tg.base+"/chat/completions", tg.anonKey, project, chat.Request, nil)
	if resp.StatusCode != tg.unauthorized {
		t.Errorf("unauthenticated request: status %d, want %d: %s", resp.StatusCode, tg.unauthorized, body)
	}
	if tg.unauthorized == http.StatusUnauthorized && !isOpenAIError(body) {
		t.Errorf("401 is not OpenAI-shaped: %s", body)
	}
	l.add(project, 1, 0, 0, 0, costChat, 0)
	l.checkProject(t, tg, project)
	rep := tg.usage(t, "user", "--project", project)
	if len(rep.Lines) != 1 || rep.Lines[0].Key["user"] != tg.user {
		t.Errorf("identity project billed to %+v, want only %s", rep.Lines, tg.user)
	}
}

// isOpenAIError: {"error":{"message","type","param","code"}}.
func isOpenAIError(b []byte) bool {
	var e struct {
		Error map[string]json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error == nil {
		return false
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e.Error[k]; !ok {
			return false
		}
	}
	return true
}

// scenarioFaults: upstream 500, 429, a hang and a cut stream. The client
// gets an OpenAI-shaped error or a terminated stream; failures cost
// nothing and release their reservations; the cut stream is billed with
// estimated usage.
func scenarioFaults(t *testing.T, tg *target, l *ledger) {
	const project = "faults"
	chat, stream := cassette(t, "chat"), cassette(t, "chat-stream")
	fault := func(spec string) map[string]string { return map[string]string{openaitest.HeaderFault: spec} }
	for _, tc := range []struct {
		spec   string
		status int
		code   string
	}{
		{"status:500", 500, ""},
		{"status:429", 429, "rate_limit_exceeded"},
		{"hang", 504, ""},
	} {
		start := time.Now()
		resp, body := tg.post(t, "/chat/completions", project, chat.Request, fault(tc.spec))
		if resp.StatusCode != tc.status || !isOpenAIError(body) || (tc.code != "" && !strings.Contains(string(body), `"`+tc.code+`"`)) {
			t.Errorf("%s: status %d (want %d), body %s", tc.spec, resp.StatusCode, tc.status, body)
		}
		if tc.spec == "hang" && time.Since(start) > upstreamTimeout+5*time.Second {
			t.Errorf("hang: answered after %s, the upstream timeout is %s", time.Since(start), upstreamTimeout)
		}
	}
	// The SDK sees the same: an OpenAI error it can read.
	failing := tg.sdk(project, 0, option.WithHeader(openaitest.HeaderFault, "status:500"))
	_, err := failing.Chat.Completions.New(context.Background(),
		openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 || apiErr.Message == "" {
		t.Errorf("SDK on an upstream 500: %v", err)
	}

	// Four failures: recorded as errors, billed nothing.
	eventually(t, "failures billed", func() error {
		if r := tg.projectRow(t, project); r.Requests != 4 || r.Errors != 4 || r.Cost != 0 || r.Estimated != 0 {
			return fmt.Errorf("requests %d errors %d estimated %d cost %s; want 4 errors costing 0", r.Requests, r.Errors, r.Estimated, r.Cost)
		}
		return nil
	})

	// A stream cut after 3 events: the client's stream ends without
	// [DONE] (or with a read error), the call is billed as estimated.
	resp, body, readErr := doRawErr(t, tg.http, tg.base+"/chat/completions", tg.apiKey, project,
		requestBody(t, stream, map[string]any{"stream_options": nil}), fault("cut:3"))
	full := proxiedWithoutUsage(stream)
	if resp.StatusCode != 200 || bytes.Contains(body, []byte("[DONE]")) || len(body) >= len(full) || !bytes.HasPrefix(full, body) {
		t.Errorf("cut stream: status %d, %d of %d bytes (not a prefix of the stream, or complete): %q", resp.StatusCode, len(body), len(full), body)
	}
	t.Logf("cut stream: the client got %d of %d bytes, then %v", len(body), len(full), readErr)
	// The SDK sees the stream end early (an error, or no more chunks).
	cutSDK := tg.sdk(project, 0, option.WithHeader(openaitest.HeaderFault, "cut:3"))
	s := cutSDK.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	chunks := 0
	for s.Next() {
		chunks++
	}
	if chunks >= len(stream.Events)-2 {
		t.Errorf("SDK on a cut stream: %d chunks, the whole stream has %d", chunks, len(stream.Events)-2)
	}
	t.Logf("cut stream through openai-go: %d chunks, then err %v", chunks, s.Err())
	var cut store.UsageRow
	eventually(t, "faults bill", func() error {
		cut = tg.projectRow(t, project)
		if cut.Requests != 6 || cut.Errors != 4 || cut.Estimated != 2 || cut.Cost <= 0 {
			return fmt.Errorf("requests %d errors %d estimated %d cost %s; want 6 requests, 4 errors, 2 estimated, cost > 0",
				cut.Requests, cut.Errors, cut.Estimated, cut.Cost)
		}
		return nil
	})
	t.Logf("two cut streams billed %s (estimated; the whole stream costs %s)", cut.Cost, costChatStream)
	if rs := tg.reservations(t); len(rs) != 0 {
		t.Errorf("reservations still held after the faults: %+v", rs)
	}
	l.add(project, 6, 4, 0, 2, cut.Cost, 0)
}

// scenarioDashboard: the usage report (what `wrapi usage` and the
// dashboard read) adds up to what the scenarios spent, project by
// project, and the stage-wide limit holds exactly that: no reservation
// leaked.
func scenarioDashboard(t *testing.T, tg *target, l *ledger) {
	rep := tg.usage(t, "project")
	got := map[string]store.UsageRow{}
	for _, line := range rep.Lines {
		got[line.Key["project"]] = line.UsageRow
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var total money.Nanos
	var projects []string
	for p, w := range l.rows {
		projects = append(projects, p)
		total += w.Cost
		if err := sameTotals(got[p], *w); err != nil {
			t.Errorf("project %s: %v", p, err)
		}
	}
	sort.Strings(projects)
	if len(got) != len(l.rows) {
		t.Errorf("report has projects %v, the scenarios billed %v", keys(got), projects)
	}
	if rep.Total.Cost != total {
		t.Errorf("report total %s, scenarios spent %s", rep.Total.Cost, total)
	}
	for _, lim := range rep.Limits {
		if lim.Scope.Project == "*" && lim.Committed != total {
			t.Errorf("stage-wide limit committed %s, spent %s", lim.Committed, total)
		}
	}
	t.Logf("report: %d projects, %d requests, %s spent, %s saved", len(got), rep.Total.Requests, rep.Total.Cost, rep.Total.Saved)
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// scenarioMemcachedOutage: memcached stops mid-run; requests that ask
// for the cache go on, uncached, and are billed in full.
func scenarioMemcachedOutage(t *testing.T, tg *target, l *ledger) {
	const project = "outage"
	if tg.mc == nil {
		t.Skip("this target has no memcached")
	}
	chat := cassette(t, "chat")
	on := map[string]string{"openai-proxy-caching": "1"}
	resp, _ := tg.post(t, "/chat/completions", project, chat.Request, on)
	if resp.StatusCode != 200 || resp.Header.Get("x-wrapi-cache") != "miss" {
		t.Fatalf("before the outage: status %d, x-wrapi-cache %q", resp.StatusCode, resp.Header.Get("x-wrapi-cache"))
	}
	if err := tg.mc.Stop(context.Background()); err != nil {
		t.Fatalf("stopping memcached: %v", err)
	}
	for i := range 2 {
		start := time.Now()
		resp, got := tg.post(t, "/chat/completions", project, chat.Request, on)
		if resp.StatusCode != 200 || resp.Header.Get("x-wrapi-cache") == "hit" || !bytes.Equal(got, chat.Body) {
			t.Errorf("during the outage #%d: status %d, x-wrapi-cache %q", i+1, resp.StatusCode, resp.Header.Get("x-wrapi-cache"))
		}
		t.Logf("during the outage #%d: x-wrapi-cache %q in %s", i+1, resp.Header.Get("x-wrapi-cache"), time.Since(start).Round(time.Millisecond))
	}
	l.add(project, 3, 0, 0, 0, 3*costChat, 0)
	l.checkProject(t, tg, project)
}
