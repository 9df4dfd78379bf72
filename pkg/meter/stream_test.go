package meter

import "testing"

func data(s string) Event { return Event{Data: []byte(s), Raw: []byte("data: " + s + "\n\n")} }

func named(name, s string) Event {
	return Event{Name: name, Data: []byte(s), Raw: []byte("event: " + name + "\ndata: " + s + "\n\n")}
}

func observeAll(endpoint string, evs ...Event) Result {
	s := NewStream(endpoint)
	for _, e := range evs {
		s.Observe(e)
	}
	return s.Result()
}

func TestStream(t *testing.T) {
	const (
		first = `{"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini-2024-07-18","service_tier":"default","choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":null}`
		delta = `{"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini-2024-07-18","service_tier":"default","choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}`
		usage = `{"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini-2024-07-18","service_tier":"default","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`
	)
	mini := "gpt-4o-mini-2024-07-18"
	tests := []struct {
		name     string
		endpoint string
		events   []Event
		want     Result
	}{
		{"chat with usage chunk", "chat/completions", []Event{data(first), data(delta), data(usage), data("[DONE]")},
			Result{Found: true, Model: mini, ServiceTier: "default", Usage: Usage{InputTokens: 9, OutputTokens: 2}}},
		{"chat without usage", "chat/completions", []Event{data(first), data(delta), data("[DONE]")},
			Result{Model: mini, ServiceTier: "default"}},
		{"last usage wins", "chat/completions", []Event{
			data(`{"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}`),
			data(`{"model":"m","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3}}`),
		}, Result{Found: true, Model: "m", Usage: Usage{InputTokens: 9, OutputTokens: 3}}},
		{"invalid later usage keeps the valid one", "chat/completions", []Event{
			data(`{"model":"m","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3}}`),
			data(`{"model":"m","choices":[],"usage":{"prompt_tokens":-9,"completion_tokens":3}}`),
		}, Result{Found: true, Model: "m", Usage: Usage{InputTokens: 9, OutputTokens: 3}}},
		{"only invalid usage", "chat/completions", []Event{data(`{"choices":[],"usage":{"prompt_tokens":-1,"completion_tokens":3}}`)}, Result{}},
		{"usage chunk tier replaces the first chunk's", "chat/completions", []Event{
			data(`{"model":"m","service_tier":"auto","choices":[]}`),
			data(`{"model":"m2","service_tier":"flex","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}`),
		}, Result{Found: true, Model: "m2", ServiceTier: "flex", Usage: Usage{InputTokens: 1, OutputTokens: 1}}},
		{"usage key inside a string is not usage", "chat/completions", []Event{
			data(`{"model":"m","choices":[{"delta":{"content":"\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":5}"}}],"usage":null}`),
		}, Result{Model: "m"}},
		{"pretty-printed usage chunk", "chat/completions", []Event{
			data("{\n  \"choices\": [],\n  \"usage\" :\n {\"prompt_tokens\": 4, \"completion_tokens\": 2}\n}"),
		}, Result{Found: true, Usage: Usage{InputTokens: 4, OutputTokens: 2}}},
		{"multi-line data", "chat/completions", []Event{
			{Data: []byte("{\"choices\":[],\n\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}")},
		}, Result{Found: true, Usage: Usage{InputTokens: 4, OutputTokens: 2}}},
		{"noise is ignored", "chat/completions", []Event{
			{Raw: []byte(": ping\n\n")}, data(""), data("[DONE]"), data("{not json"), data(`{"usage":{`), data("null"), data(`"usage"`),
		}, Result{}},
		{"unknown endpoint finds nothing", "audio/speech", []Event{data(usage)}, Result{}},
		{"responses", "responses", []Event{
			named("response.created", `{"type":"response.created","response":{"model":"gpt-5","service_tier":"auto","usage":null}}`),
			named("response.output_text.delta", `{"type":"response.output_text.delta","delta":"x"}`),
			named("response.completed", `{"type":"response.completed","response":{"model":"gpt-5-2025-08-07","service_tier":"default","usage":{"input_tokens":5,"output_tokens":7,"output_tokens_details":{"reasoning_tokens":3}}}}`),
		}, Result{Found: true, Model: "gpt-5-2025-08-07", ServiceTier: "default", Usage: Usage{InputTokens: 5, OutputTokens: 7, ReasoningTokens: 3}}},
		{"responses without event names", "responses", []Event{
			data(`{"type":"response.incomplete","response":{"model":"gpt-5","usage":{"input_tokens":5,"output_tokens":7}}}`),
		}, Result{Found: true, Model: "gpt-5", Usage: Usage{InputTokens: 5, OutputTokens: 7}}},
		{"responses failed without usage", "responses", []Event{
			named("response.failed", `{"type":"response.failed","response":{"model":"gpt-5","usage":null,"error":{"code":"server_error"}}}`),
		}, Result{Model: "gpt-5"}},
		{"responses top-level usage is not the response's", "responses", []Event{
			data(`{"type":"x","usage":{"input_tokens":5,"output_tokens":7}}`),
		}, Result{}},
		{"responses delta is not decoded even with a response key", "responses", []Event{
			named("response.output_text.delta", `{"type":"response.output_text.delta","response":{"usage":{"input_tokens":5,"output_tokens":7}}}`),
		}, Result{}},
		{"embeddings", "embeddings", []Event{data(`{"model":"e","usage":{"prompt_tokens":8,"total_tokens":8}}`)},
			Result{Found: true, Model: "e", Usage: Usage{InputTokens: 8}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := observeAll(tt.endpoint, tt.events...); got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestIsUsageOnlyChunk(t *testing.T) {
	tests := []struct {
		data string
		want bool
	}{
		{`{"id":"c","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}}`, true},
		{`{"usage":{"prompt_tokens":9,"completion_tokens":2},"choices":[ ]}`, true},
		{"{\"choices\" : [\n],\n\"usage\" : {}}", true},
		{`{"choices":[],"usage":null}`, false},
		{`{"choices":[{"index":0,"delta":{}}],"usage":{"prompt_tokens":9,"completion_tokens":2}}`, false},
		{`{"usage":{"prompt_tokens":9,"completion_tokens":2}}`, false},
		{`{"choices":[],"delta":"\"usage\":{"}`, false},
		{`{"choices":[],"usage":{"prompt_tokens":9}`, false}, // truncated
		{`[DONE]`, false},
		{``, false},
	}
	for _, tt := range tests {
		if got := IsUsageOnlyChunk(data(tt.data)); got != tt.want {
			t.Errorf("IsUsageOnlyChunk(%s) = %v", tt.data, got)
		}
	}
}

func TestHasKey(t *testing.T) {
	tests := []struct {
		data string
		want bool
	}{
		{`{"usage":{}}`, true},
		{`{"usage" : {}}`, true},
		{"{\"usage\"\n:\t{}}", true},
		{`{"usage":null}`, false},
		{`{"usage":null,"x":{"usage":{}}}`, true}, // nested: a harmless false positive
		{`{"a":"usage","b":{}}`, false},
		{`{"a":"\"usage\":{"}`, false},
		{`{"usage"`, false},
		{`{"usage":`, false},
		{`{"usages":{}}`, false},
		{`{"x_usage":{}}`, false},
	}
	for _, tt := range tests {
		if got := hasKey([]byte(tt.data), keyUsage, '{'); got != tt.want {
			t.Errorf("hasKey(%s) = %v", tt.data, got)
		}
	}
}

// Observe decodes nothing for a plain delta once the model is known.
func TestObserveSkipsDeltas(t *testing.T) {
	s := NewStream("chat/completions")
	s.Observe(data(`{"model":"m","choices":[],"usage":null}`))
	delta := data(`{"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}`)
	if a := testing.AllocsPerRun(100, func() { s.Observe(delta) }); a != 0 {
		t.Fatalf("Observe of a delta allocates %v times", a)
	}
	rs := NewStream("responses")
	rdelta := named("response.output_text.delta", `{"type":"response.output_text.delta","item_id":"msg_1","delta":"hi","sequence_number":4}`)
	if a := testing.AllocsPerRun(100, func() { rs.Observe(rdelta) }); a != 0 {
		t.Fatalf("Observe of a responses delta allocates %v times", a)
	}
	if got := s.Result(); got.Model != "m" || got.Found {
		t.Fatalf("result after deltas: %+v", got)
	}
}
