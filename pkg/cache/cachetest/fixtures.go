package cachetest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/cache"
	"github.com/wrapi-dev/wrapi/pkg/meter"
	"github.com/wrapi-dev/wrapi/pkg/money"
)

// created is the Created time of the fixtures (with nanoseconds, to check
// they survive).
var created = time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC)

// KeyOf returns a valid cache key for a test name.
func KeyOf(name string) string {
	return cache.Key("test", "project:test", "POST", "/v1/chat/completions", []byte(`{"name":`+fmt.Sprintf("%q", name)+`}`))
}

// JSONEntry returns a non-streamed chat completion entry whose body is
// about size bytes of realistic JSON.
func JSONEntry(key, scope string, size int) *cache.Entry {
	const head = `{"id":"chatcmpl-D1wx5Yb8Vq3Lm7Np2Kr9Ts4Uv6W","object":"chat.completion","created":1761898800,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"`
	const tail = `","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1200,"completion_tokens":900,"total_tokens":2100,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_560af6e559"}`
	var b strings.Builder
	b.WriteString(head)
	for i := 0; b.Len() < size-len(tail); i++ {
		fmt.Fprintf(&b, "word%d ", i)
	}
	b.WriteString(tail)
	return &cache.Entry{
		Key:         key,
		Scope:       scope,
		Status:      200,
		ContentType: "application/json",
		Body:        []byte(b.String()),
		Usage:       meter.Usage{InputTokens: 1200, CachedInputTokens: 1024, OutputTokens: 900},
		Model:       "gpt-4o-mini-2024-07-18",
		ServiceTier: "default",
		Cost:        money.Nanos(612_300),
		Created:     created,
	}
}

// StreamEntry returns a streamed chat completion entry of n raw SSE events
// (role chunk, content chunks, finish chunk, usage chunk, [DONE]), as
// OpenAI sends them.
func StreamEntry(key, scope string, n int) *cache.Entry {
	const head = `data: {"id":"chatcmpl-D1wx5Yb8Vq3Lm7Np2Kr9Ts4Uv6W","object":"chat.completion.chunk","created":1761898800,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_560af6e559","choices":[`
	events := make([][]byte, 0, n)
	events = append(events, []byte(head+`{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"aB3d"}`+"\n\n"))
	for i := 0; i < n-4; i++ {
		events = append(events, fmt.Appendf(nil, head+`{"index":0,"delta":{"content":" word%d"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"Q7x"}`+"\n\n", i))
	}
	events = append(events,
		[]byte(head+`{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null,"obfuscation":"k0O"}`+"\n\n"),
		[]byte(head+`],"usage":{"prompt_tokens":1200,"completion_tokens":196,"total_tokens":1396,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"obfuscation":"t9"}`+"\r\n\r\n"),
		[]byte("data: [DONE]\n\n"))
	return &cache.Entry{
		Key:         key,
		Scope:       scope,
		Status:      200,
		ContentType: "text/event-stream; charset=utf-8",
		Events:      events,
		Stream:      true,
		Usage:       meter.Usage{InputTokens: 1200, CachedInputTokens: 1024, OutputTokens: 196},
		Model:       "gpt-4o-mini-2024-07-18",
		ServiceTier: "default",
		Cost:        money.Nanos(297_600),
		Created:     created,
	}
}

// RandomEntry returns an entry with a body of size incompressible bytes
// (every byte value, as a binary audio response could hold).
func RandomEntry(key, scope string, size int, seed uint64) *cache.Entry {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	body := make([]byte, size+8)
	for i := 0; i < size; i += 8 {
		binary.LittleEndian.PutUint64(body[i:], r.Uint64())
	}
	body = body[:size:size]
	return &cache.Entry{
		Key: key, Scope: scope, Status: 200, ContentType: "application/octet-stream",
		Body: body, Usage: meter.Usage{InputTokens: int64(size)}, Cost: money.Nanos(size), Created: created,
	}
}
