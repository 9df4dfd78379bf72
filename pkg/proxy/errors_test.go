package proxy_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/identity"
	"github.com/wrapi-dev/wrapi/pkg/proxy"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const secretPrompt = "MY-CONFIDENTIAL-PROMPT-7731"

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestBadInputGetsOpenAIShapedErrors(t *testing.T) {
	chat := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + secretPrompt + `"}]}`
	dead, _ := url.Parse("http://" + closedPort(t) + "/v1")
	for _, tc := range []struct {
		name, path, body string
		hdr              map[string]string
		cfg              func(*proxy.Config)
		fault            string
		status           int
		typ, code        string
		upstreamCalls    int
		mention          string // the message must say this
	}{
		{name: "malformed JSON", path: "/v1/chat/completions", body: `{"model":"gpt-4o-mini","messages":[`,
			status: 400, typ: "invalid_request_error", code: "invalid_json"},
		{name: "not an object", path: "/v1/chat/completions", body: `["gpt-4o-mini"]`,
			status: 400, typ: "invalid_request_error", code: "invalid_json"},
		{name: "duplicate key", path: "/v1/chat/completions", body: `{"model":"gpt-4o-mini","model":"gpt-4o","messages":[]}`,
			status: 400, typ: "invalid_request_error", code: "duplicate_key", mention: "model"},
		{name: "case-variant key", path: "/v1/chat/completions", body: `{"model":"gpt-4o-mini","Model":"o1-pro","messages":[]}`,
			status: 400, typ: "invalid_request_error", code: "duplicate_key", mention: "odel"},
		{name: "missing model", path: "/v1/chat/completions", body: `{"messages":[{"role":"user","content":"` + secretPrompt + `"}]}`,
			status: 400, typ: "invalid_request_error", code: "missing_model"},
		{name: "unknown model", path: "/v1/chat/completions", body: `{"model":"gpt-9-ultra","messages":[]}`,
			status: 400, typ: "invalid_request_error", code: "model_not_priced", mention: "gpt-9-ultra"},
		{name: "body too large", path: "/v1/chat/completions", body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 4096) + `"}]}`,
			cfg: func(c *proxy.Config) { c.MaxBody = 1024 }, status: 413, typ: "invalid_request_error", code: "request_too_large"},
		{name: "stage mismatch", path: "/v1/chat/completions", body: chat, hdr: map[string]string{"openai-proxy-staging": "prod"},
			status: 400, typ: "invalid_request_error", code: "stage_mismatch", mention: "prod"},
		{name: "missing key", path: "/v1/chat/completions", body: chat,
			cfg: func(c *proxy.Config) { c.Auth = identity.Keys{Store: c.Store} }, status: 401, typ: "invalid_request_error", code: "invalid_api_key"},
		{name: "bad key", path: "/v1/chat/completions", body: chat, hdr: map[string]string{"Authorization": "Bearer sk-wrapi-nope"},
			cfg: func(c *proxy.Config) { c.Auth = identity.Keys{Store: c.Store} }, status: 401, typ: "invalid_request_error", code: "invalid_api_key"},
		{name: "refused endpoint", path: "/v1/batches", body: `{"input_file_id":"file-abc","endpoint":"/v1/chat/completions"}`,
			status: 403, typ: "permission_error", code: "endpoint_not_allowed", mention: "batches"},
		{name: "unknown endpoint", path: "/v1/not-an-endpoint", body: `{}`,
			status: 404, typ: "invalid_request_error", code: "unknown_url"},
		{name: "path escape", path: "/v1/../admin", body: `{}`,
			status: 404, typ: "invalid_request_error", code: "unknown_url"},
		{name: "upstream unreachable", path: "/v1/chat/completions", body: chat,
			cfg: func(c *proxy.Config) { c.Upstream = dead }, status: 502, typ: "api_error", code: "upstream_unreachable"},
		{name: "upstream timeout", path: "/v1/chat/completions", body: chat, fault: "hang",
			cfg: func(c *proxy.Config) { c.UpstreamTimeout = 300 * time.Millisecond }, status: 504, typ: "api_error", code: "upstream_timeout", upstreamCalls: 1},
		{name: "upstream 500 passes through", path: "/v1/chat/completions", body: chat, fault: "status:500",
			status: 500, typ: "server_error", upstreamCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &syncBuffer{}
			e := newEnv(t, func(c *proxy.Config) {
				c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				if tc.cfg != nil {
					tc.cfg(c)
				}
			})
			hdr := tc.hdr
			if tc.fault != "" {
				hdr = map[string]string{"X-Openaitest-Fault": tc.fault}
			}
			status, h, body := e.post(tc.path, []byte(tc.body), hdr)
			if status != tc.status {
				t.Fatalf("status %d, want %d; body %s", status, tc.status, body)
			}
			if !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
				t.Errorf("content-type %q", h.Get("Content-Type"))
			}
			ae := decodeError(t, body)
			if ae.Error.Type != tc.typ || (tc.code != "" && (ae.Error.Code == nil || *ae.Error.Code != tc.code)) {
				t.Errorf("error = %+v (code %v), want type %q code %q", ae.Error, ae.Error.Code, tc.typ, tc.code)
			}
			if tc.mention != "" && !strings.Contains(ae.Error.Message, tc.mention) {
				t.Errorf("message %q should mention %q", ae.Error.Message, tc.mention)
			}
			for _, leak := range []string{secretPrompt, upstreamKey, "goroutine ", ".go:"} {
				if strings.Contains(string(body), leak) {
					t.Errorf("response leaks %q: %s", leak, body)
				}
			}
			e.h.Wait()
			if got := len(e.up.Requests()); got != tc.upstreamCalls {
				t.Errorf("upstream got %d requests, want %d", got, tc.upstreamCalls)
			}
			for _, leak := range []string{secretPrompt, upstreamKey} {
				if strings.Contains(logs.String(), leak) {
					t.Errorf("logs leak %q:\n%s", leak, logs.String())
				}
			}
			// Nothing is billed for a failure.
			for _, r := range e.records() {
				if r.Cost != 0 || r.Status == 200 {
					t.Errorf("failed request billed: %+v", r)
				}
			}
		})
	}
}

func TestUpstreamFailureReleasesReservation(t *testing.T) {
	for _, fault := range []string{"status:500", "status:429", "hang"} {
		t.Run(fault, func(t *testing.T) {
			e := newEnv(t, func(c *proxy.Config) { c.UpstreamTimeout = 300 * time.Millisecond })
			setLimit(t, e, "N/A", "1")
			e.post("/v1/chat/completions", cassette(t, "chat").Request, map[string]string{"X-Openaitest-Fault": fault})
			e.h.Wait()
			held, err := e.st.Reservations(context.Background())
			if err != nil || len(held) != 0 {
				t.Fatalf("reservations left after an upstream failure: %+v %v", held, err)
			}
			if spent := committed(t, e, "N/A"); spent != 0 {
				t.Errorf("committed %s after a failure, want 0", spent)
			}
		})
	}
}
