package stage

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"

	"github.com/wrapi-dev/wrapi/functions/internal/secret"
	"github.com/wrapi-dev/wrapi/pkg/openaitest"
	"github.com/wrapi-dev/wrapi/pkg/store"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

type lambdaEnv struct {
	up  *openaitest.Server
	st  *sqlite.Store
	fn  func(context.Context, *events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error)
	cfg Config
}

func newLambdaEnv(t *testing.T, extra map[string]string) *lambdaEnv {
	t.Helper()
	up := openaitest.NewServer(openaitest.WithAPIKey("sk-upstream-from-secrets-manager"))
	t.Cleanup(up.Close)
	vars := map[string]string{
		"WRAPI_STAGE": "dev", "WRAPI_TABLE": "wrapi-dev", "WRAPI_CACHE": "off", "WRAPI_UPSTREAM": up.URL,
		"WRAPI_REQUIRE_LIMIT": "false",
	}
	for k, v := range extra {
		vars[k] = v
	}
	cfg, err := FromEnv(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := cfg.ProxyHandler(Deps{Store: st, Credentials: secret.OpenAI{APIKey: "sk-upstream-from-secrets-manager"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return &lambdaEnv{up: up, st: st, fn: lambdaurl.Wrap(h), cfg: cfg}
}

func loadEvent(t *testing.T, name string, body []byte, base64Body bool) *events.LambdaFunctionURLRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if base64Body {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	} else {
		ev.Body, ev.IsBase64Encoded = string(body), false
	}
	return &ev
}

// invoke runs the handler as the Lambda runtime does: it returns when the
// headers are ready and the body streams afterwards; the invocation ends
// when the body is drained.
func (e *lambdaEnv) invoke(t *testing.T, ev *events.LambdaFunctionURLRequest) (int, map[string]string, []byte) {
	t.Helper()
	resp, err := e.fn(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Headers, body
}

func (e *lambdaEnv) records(t *testing.T) []store.Record {
	rs, err := e.st.Records(context.Background(), store.UsageFilter{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestProxyFunctionIAMUser(t *testing.T) {
	e := newLambdaEnv(t, nil)
	c, _ := openaitest.Load("chat")
	status, hdr, body := e.invoke(t, loadEvent(t, "iam-user.json", c.Request, false))
	if status != 200 || !bytes.Equal(body, c.Body) {
		t.Fatalf("status %d, body differs from the upstream's", status)
	}
	if hdr["x-wrapi-request-id"] == "" && hdr["X-Wrapi-Request-Id"] == "" {
		t.Errorf("headers %v", hdr)
	}
	// Settlement finished inside the invocation: the record is there as
	// soon as the body is drained, with the IAM principal — not the
	// forged openai-proxy-user header.
	rs := e.records(t)
	if len(rs) != 1 || rs[0].User != "alice" || rs[0].Project != "ml" || rs[0].Stage != "dev" || rs[0].Cost != 196_050 {
		t.Fatalf("records = %+v", rs)
	}
	if got := e.up.Requests()[0].Header.Get("Authorization"); got != "Bearer sk-upstream-from-secrets-manager" {
		t.Errorf("upstream Authorization = %q", got)
	}
}

func TestProxyFunctionAssumedRoleStreamBase64(t *testing.T) {
	e := newLambdaEnv(t, nil)
	c, _ := openaitest.Load("chat-stream")
	status, hdr, body := e.invoke(t, loadEvent(t, "assumed-role.json", c.Request, true))
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	// The recorded request asks for usage, so the client gets every event.
	if !bytes.Contains(c.Request, []byte(`"include_usage": true`)) {
		t.Fatal("fixture changed: the chat-stream request should ask for usage")
	}
	if want := bytes.Join(c.Events, nil); !bytes.Equal(body, want) {
		t.Fatalf("streamed body differs from the upstream's:\n got %q\nwant %q", body, want)
	}
	if ct := hdr["Content-Type"]; ct == "" {
		t.Errorf("no content type: %v", hdr)
	}
	rs := e.records(t)
	if len(rs) != 1 || rs[0].User != "arn:aws:iam::111122223333:role/AWSReservedSSO_Developer_0123456789abcdef" || rs[0].Cost != 103_800 || !rs[0].Stream {
		t.Fatalf("records = %+v", rs)
	}
}

func TestProxyFunctionRefusals(t *testing.T) {
	e := newLambdaEnv(t, nil)
	c, _ := openaitest.Load("chat")
	status, _, body := e.invoke(t, loadEvent(t, "no-auth.json", c.Request, false))
	if status != 401 || !bytes.Contains(body, []byte(`"code":"invalid_api_key"`)) {
		t.Errorf("no IAM context: %d %s", status, body)
	}
	ev := loadEvent(t, "iam-user.json", c.Request, false)
	ev.Headers["openai-proxy-staging"] = "prod"
	status, _, body = e.invoke(t, ev)
	if status != 400 || !bytes.Contains(body, []byte("stage_mismatch")) {
		t.Errorf("wrong stage header: %d %s", status, body)
	}
	if n := len(e.up.Requests()); n != 0 {
		t.Errorf("refused requests reached the upstream %d times", n)
	}
}

func TestFromEnvValidates(t *testing.T) {
	_, err := FromEnv(env(map[string]string{"WRAPI_AUTH": "open", "WRAPI_CACHE": "redis", "WRAPI_TIMEZONE": "Mars/Olympus",
		"WRAPI_UPSTREAM": "ftp://x", "WRAPI_REQUIRE_LIMIT": "maybe", "WRAPI_CACHE_TTL": "-1h"}))
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, want := range []string{"WRAPI_STAGE", "WRAPI_TABLE", "WRAPI_AUTH", "WRAPI_CACHE", "WRAPI_TIMEZONE", "WRAPI_UPSTREAM", "WRAPI_REQUIRE_LIMIT"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	c, err := FromEnv(env(map[string]string{"WRAPI_STAGE": "dev", "WRAPI_TABLE": "t"}))
	if err != nil || c.Auth != "iam" || !c.RequireLimit || c.Cache != "off" || c.Upstream.Host != "api.openai.com" {
		t.Errorf("defaults: %+v %v", c, err)
	}
	if _, err := FromEnv(env(map[string]string{"WRAPI_STAGE": "dev", "WRAPI_TABLE": "t", "WRAPI_CACHE": "dynamodb"})); err == nil {
		t.Error("WRAPI_CACHE=dynamodb without WRAPI_CACHE_TABLE accepted")
	}
	c, err = FromEnv(env(map[string]string{"WRAPI_STAGE": "dev", "WRAPI_TABLE": "t", "WRAPI_CACHE": "dynamodb", "WRAPI_CACHE_TABLE": "c"}))
	if err != nil || c.Cache != "dynamodb" || c.CacheTable != "c" {
		t.Errorf("defaults: %+v %v", c, err)
	}
}
