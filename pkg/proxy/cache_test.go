package proxy_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/wrapi-dev/wrapi/pkg/cache"
	"github.com/wrapi-dev/wrapi/pkg/cache/lru"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/proxy"
)

func withCache(c *proxy.Config) {
	c.Cache = cache.New(lru.New(lru.Config{}), cache.Options{Namespace: "test"})
	c.CacheDefault = true
}

func TestCacheHitThroughOpenAIGo(t *testing.T) {
	e := newEnv(t, withCache)
	ask := func(temp float64, project string, model ...string) (*http.Response, openai.ChatCompletion) {
		m := "gpt-4o-mini"
		if len(model) > 0 {
			m = model[0]
		}
		var raw *http.Response
		resp, err := e.client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model:       m,
			Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is your refund window?")},
			Temperature: openai.Float(temp),
		}, option.WithResponseInto(&raw), option.WithHeader(proxy.HeaderProject, project))
		if err != nil {
			t.Fatal(err)
		}
		e.h.Wait() // the cache write happens after the reply, off the client's path
		return raw, *resp
	}
	r1, c1 := ask(0, "ml")
	r2, c2 := ask(0, "ml")
	if r1.Header.Get(proxy.HeaderCache) != "miss" || r2.Header.Get(proxy.HeaderCache) != "hit" {
		t.Fatalf("x-wrapi-cache: %q then %q, want miss then hit", r1.Header.Get(proxy.HeaderCache), r2.Header.Get(proxy.HeaderCache))
	}
	if c1.RawJSON() != c2.RawJSON() {
		t.Fatal("a hit must replay the response byte for byte")
	}
	if got := len(e.up.Requests()); got != 1 {
		t.Fatalf("upstream called %d times, want 1", got)
	}
	for _, tc := range []struct {
		temp           float64
		project, model string
	}{{0.7, "ml", "gpt-4o-mini"}, {0, "web", "gpt-4o-mini"}, {0, "ml", "gpt-4o"}} {
		if r, _ := ask(tc.temp, tc.project, tc.model); r.Header.Get(proxy.HeaderCache) != "miss" {
			t.Errorf("temperature %v project %s model %s: %q, want a miss", tc.temp, tc.project, tc.model, r.Header.Get(proxy.HeaderCache))
		}
	}
	rs := e.records()
	var hits int
	var saved, cost money.Nanos
	for _, r := range rs {
		if r.CacheHit {
			hits++
			saved += r.Saved
			if r.Cost != 0 {
				t.Errorf("a hit was billed: %+v", r)
			}
		}
		cost += r.Cost
	}
	// The fake upstream answers every call with the chat cassette
	// (gpt-4o-mini-2024-07-18), which prices every miss the same.
	if hits != 1 || saved != costChat || cost != 4*costChat {
		t.Errorf("hits %d saved %s cost %s; want 1 hit saving %s and 4 billed misses", hits, saved, cost, costChat)
	}
}

func TestCacheReplaysStreamsEventForEvent(t *testing.T) {
	e := newEnv(t, withCache)
	c := cassette(t, "chat-stream")
	req := withFields(t, c.Request, map[string]any{"stream": true, "stream_options": nil})
	_, h1, b1 := e.post("/v1/chat/completions", req, nil)
	e.h.Wait()
	_, h2, b2 := e.post("/v1/chat/completions", req, nil)
	if h1.Get(proxy.HeaderCache) != "miss" || h2.Get(proxy.HeaderCache) != "hit" {
		t.Fatalf("%q then %q", h1.Get(proxy.HeaderCache), h2.Get(proxy.HeaderCache))
	}
	if !bytes.Equal(b1, b2) || !bytes.Equal(b2, withoutUsageChunk(t, c.Events)) {
		t.Fatal("the replayed stream differs from the original (minus the usage chunk the client did not ask for)")
	}
	// The same request asking for usage is another key; its replay keeps
	// the usage chunk.
	withUsage := withFields(t, c.Request, map[string]any{"stream": true, "stream_options": map[string]any{"include_usage": true}})
	e.post("/v1/chat/completions", withUsage, nil)
	e.h.Wait()
	_, h4, b4 := e.post("/v1/chat/completions", withUsage, nil)
	if h4.Get(proxy.HeaderCache) != "hit" || !bytes.Equal(b4, concat(c.Events)) {
		t.Fatalf("replay with usage: %q, body equal=%v", h4.Get(proxy.HeaderCache), bytes.Equal(b4, concat(c.Events)))
	}
}

func TestCacheBypassAndNeverStoresFailures(t *testing.T) {
	e := newEnv(t, withCache)
	c := cassette(t, "chat")
	for _, hdr := range []map[string]string{{"openai-proxy-caching": "0"}, {"Cache-Control": "no-cache"}} {
		e.post("/v1/chat/completions", c.Request, hdr)
		e.h.Wait()
		_, h, _ := e.post("/v1/chat/completions", c.Request, hdr)
		if h.Get(proxy.HeaderCache) != "bypass" {
			t.Errorf("%v: x-wrapi-cache %q, want bypass", hdr, h.Get(proxy.HeaderCache))
		}
	}
	// A cut stream and an upstream error are never stored.
	s := cassette(t, "chat-stream")
	req := withFields(t, s.Request, map[string]any{"stream": true})
	hr, _ := http.NewRequest("POST", e.srv.URL+"/v1/chat/completions", bytes.NewReader(req))
	hr.Header.Set("X-Openaitest-Fault", "cut:3")
	if resp, err := http.DefaultClient.Do(hr); err == nil {
		resp.Body.Close()
	}
	e.h.Wait()
	if _, h, _ := e.post("/v1/chat/completions", req, nil); h.Get(proxy.HeaderCache) != "miss" {
		t.Errorf("after a cut stream: %q, want miss (cut streams are never cached)", h.Get(proxy.HeaderCache))
	}
	errReq := withFields(t, c.Request, map[string]any{"temperature": 0.3})
	e.post("/v1/chat/completions", errReq, map[string]string{"X-Openaitest-Fault": "status:500"})
	e.h.Wait()
	if _, h, _ := e.post("/v1/chat/completions", errReq, nil); h.Get(proxy.HeaderCache) != "miss" {
		t.Errorf("after an upstream 500: %q, want miss", h.Get(proxy.HeaderCache))
	}
}

func TestCacheHitServedWhenBudgetIsExhausted(t *testing.T) {
	e := newEnv(t, withCache)
	c := cassette(t, "chat")
	req := withFields(t, c.Request, map[string]any{"max_completion_tokens": 100})
	setLimit(t, e, "N/A", "0.01")
	if status, _, _ := e.post("/v1/chat/completions", req, nil); status != 200 {
		t.Fatal(status)
	}
	e.h.Wait()
	// Lower the limit below what was spent: new spend is refused, the
	// cached answer is still served, and costs nothing.
	setLimit(t, e, "N/A", "0.0001")
	status, h, _ := e.post("/v1/chat/completions", req, nil)
	if status != 200 || h.Get(proxy.HeaderCache) != "hit" {
		t.Fatalf("status %d cache %q: a hit must be served with an exhausted budget", status, h.Get(proxy.HeaderCache))
	}
	other := withFields(t, req, map[string]any{"temperature": 1})
	if status, _, _ := e.post("/v1/chat/completions", other, nil); status != 429 {
		t.Fatalf("a miss with an exhausted budget: %d, want 429", status)
	}
	if got := committed(t, e, "N/A"); got != costChat {
		t.Errorf("committed %s, want only the first call's %s", got, costChat)
	}
}

func TestCacheUserScopeIsolation(t *testing.T) {
	e := newEnv(t, func(c *proxy.Config) {
		withCache(c)
		c.Auth = userFromHeader{}
		c.CacheScope = "user"
	})
	c := cassette(t, "chat")
	e.post("/v1/chat/completions", c.Request, map[string]string{"X-Test-User": "alice"})
	e.h.Wait()
	if _, h, _ := e.post("/v1/chat/completions", c.Request, map[string]string{"X-Test-User": "bob"}); h.Get(proxy.HeaderCache) != "miss" {
		t.Errorf("bob got alice's entry: %q", h.Get(proxy.HeaderCache))
	}
	if _, h, _ := e.post("/v1/chat/completions", c.Request, map[string]string{"X-Test-User": "alice"}); h.Get(proxy.HeaderCache) != "hit" {
		t.Errorf("alice's repeat: %q, want hit", h.Get(proxy.HeaderCache))
	}
}
