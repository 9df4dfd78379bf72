package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/wrapi-dev/wrapi/pkg/identity"
	"github.com/wrapi-dev/wrapi/pkg/openaitest"
	"github.com/wrapi-dev/wrapi/pkg/proxy"
	"github.com/wrapi-dev/wrapi/pkg/store"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

// upstreamKey is the fake OpenAI's key; no response may ever contain it.
const upstreamKey = "sk-upstream-SECRET-0123456789"

type env struct {
	t      *testing.T
	up     *openaitest.Server
	st     *sqlite.Store
	h      *proxy.Handler
	srv    *httptest.Server
	client openai.Client
}

func newEnv(t *testing.T, mutate func(*proxy.Config)) *env {
	t.Helper()
	e := &env{t: t}
	e.up = openaitest.NewServer(openaitest.WithAPIKey(upstreamKey))
	t.Cleanup(e.up.Close)
	st, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	t.Cleanup(func() { st.Close() })
	u, _ := url.Parse(e.up.URL)
	cfg := proxy.Config{
		Stage: "test", Upstream: u, APIKey: upstreamKey, Store: st,
		Auth: identity.None{User: "alice"},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	e.client = openai.NewClient(
		option.WithBaseURL(e.srv.URL+"/v1"),
		option.WithAPIKey("client-key-never-forwarded"),
		option.WithMaxRetries(0),
	)
	return e
}

// records waits for bookkeeping and returns every record.
func (e *env) records() []store.Record {
	e.t.Helper()
	e.h.Wait()
	rs, err := e.st.Records(context.Background(), store.UsageFilter{}, 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	return rs
}

func (e *env) onlyRecord() store.Record {
	e.t.Helper()
	rs := e.records()
	if len(rs) != 1 {
		e.t.Fatalf("want exactly 1 record, got %d: %+v", len(rs), rs)
	}
	return rs[0]
}

// post sends a raw request through the proxy and returns status, headers
// and the whole body.
func (e *env) post(path string, body []byte, hdr map[string]string) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer client-key-never-forwarded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if bytes.Contains(b, []byte(upstreamKey)) {
		e.t.Fatal("the upstream key leaked into a response")
	}
	return resp.StatusCode, resp.Header, b
}

func cassette(t *testing.T, name string) openaitest.Cassette {
	t.Helper()
	c, err := openaitest.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// withFields returns body with top-level fields set (re-encoded: only for
// building test requests).
func withFields(t *testing.T, body []byte, kv map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range kv {
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

type apiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// decodeError checks the OpenAI error shape strictly.
func decodeError(t *testing.T, body []byte) apiError {
	t.Helper()
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("error body is not JSON: %q", body)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := raw["error"][k]; !ok {
			t.Fatalf("error body lacks %q: %s", k, body)
		}
	}
	var e apiError
	_ = json.Unmarshal(body, &e)
	if e.Error.Message == "" || e.Error.Type == "" {
		t.Fatalf("error body has empty message/type: %s", body)
	}
	return e
}
