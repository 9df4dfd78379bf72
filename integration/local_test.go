package integration

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestLocalServeEndToEnd runs the real `wrapi serve` binary against the
// fake OpenAI binary with virtual keys, drives it with the official
// openai-go SDK, and reads the bill back with the real CLI.
func TestLocalServeEndToEnd(t *testing.T) {
	wrapi, fake := binaries(t)
	upAddr, addr := freeAddr(t), freeAddr(t)
	start(t, nil, regexp.MustCompile(`127\.0\.0\.1`), fake, "-addr", upAddr, "-api-key", "sk-upstream-it")

	db := filepath.Join(t.TempDir(), "wrapi.db")
	env := []string{"WRAPI_STORE=" + db}
	out := runCLI(t, wrapi, env, "keys", "create", "--user", "alice", "--project", "ml")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	key := lines[len(lines)-1]
	runCLI(t, wrapi, env, "limits", "set", "--project", "ml", "--usd", "0.0005", "--period", "month")

	srv := start(t, append(env, "OPENAI_API_KEY=sk-upstream-it"), regexp.MustCompile(`OPENAI_BASE_URL=`), wrapi,
		"serve", "--listen", addr, "--upstream", "http://"+upAddr+"/v1", "--auth", "keys")

	client := openai.NewClient(option.WithBaseURL("http://"+addr+"/v1"), option.WithAPIKey(key), option.WithMaxRetries(2))
	ctx := context.Background()
	resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:     "gpt-4o-mini",
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is your refund window for annual plans?")},
		MaxTokens: openai.Int(200),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.TotalTokens == 0 {
		t.Fatal("no usage in the reply")
	}
	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:     "gpt-4o-mini",
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		MaxTokens: openai.Int(200),
	})
	n := 0
	for stream.Next() {
		n++
	}
	if stream.Err() != nil || n == 0 {
		t.Fatalf("stream: %d chunks, %v", n, stream.Err())
	}
	// The limit (0.0005 USD) is now mostly spent: a request whose worst
	// case does not fit is refused with 429 budget_exceeded, not retried.
	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:     "gpt-4o-mini",
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		MaxTokens: openai.Int(2000),
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "budget_exceeded" {
		t.Fatalf("want 429 budget_exceeded, got %v", err)
	}
	// A wrong key is refused.
	bad := openai.NewClient(option.WithBaseURL("http://"+addr+"/v1"), option.WithAPIKey("sk-wrapi-wrong"), option.WithMaxRetries(0))
	if _, err := bad.Models.List(ctx); !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Fatalf("want 401 for a wrong key, got %v", err)
	}

	if err := srv.stop(); err != nil {
		t.Fatalf("serve did not shut down cleanly: %v\n%s", err, srv.output.String())
	}
	var rep struct {
		Total struct {
			Requests int64  `json:"requests"`
			Errors   int64  `json:"errors"`
			Cost     string `json:"cost_usd"`
		} `json:"total"`
		Rows []struct {
			Group map[string]string `json:"group"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(runCLI(t, wrapi, env, "usage", "--by", "project,user", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	// chat (196.05 µ$) + chat-stream (103.8 µ$); the refusal is recorded
	// as an error costing nothing.
	if rep.Total.Requests != 3 || rep.Total.Errors != 1 || rep.Total.Cost != "0.00029985" {
		t.Errorf("usage total = %+v, want 3 requests (1 refused) costing 0.00029985", rep.Total)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].Group["project"] != "ml" || rep.Rows[0].Group["user"] != "alice" {
		t.Errorf("rows = %+v, want everything on project ml, user alice", rep.Rows)
	}
	if strings.Contains(srv.output.String(), "sk-upstream-it") || strings.Contains(srv.output.String(), key) {
		t.Error("a key reached the server's log")
	}
}
