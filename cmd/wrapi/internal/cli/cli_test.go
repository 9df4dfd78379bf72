package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/openaitest"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestServeMeterAndReport runs `wrapi serve` against the fake OpenAI,
// sends a chat request, shuts the server down with in-flight work, and
// reads the bill back with `wrapi usage --json` and the limits commands.
func TestServeMeterAndReport(t *testing.T) {
	up := openaitest.NewServer(openaitest.WithAPIKey("sk-test-upstream"))
	defer up.Close()
	t.Setenv("OPENAI_API_KEY", "sk-test-upstream")
	db := filepath.Join(t.TempDir(), "wrapi.db")

	if code, out, errs := run(t, "limits", "set", "--store", db, "--project", "ml", "--usd", "1", "--period", "month"); code != 0 || !strings.Contains(out, "limit set") {
		t.Fatalf("limits set: %d %q %q", code, out, errs)
	}

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	var stdout bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveConfig{
			listen: "127.0.0.1:0", upstream: up.URL, storePath: db, stage: "local", auth: "none",
			timezone: "UTC", maxBody: 1 << 20, upstreamTimeout: 30 * time.Second, shutdownTimeout: 10 * time.Second,
		}, &stdout, slog.New(slog.DiscardHandler), ready)
	}()
	addr := <-ready
	if !strings.Contains(stdout.String(), "OPENAI_BASE_URL=http://"+addr+"/v1") {
		t.Errorf("start line should say how to point an SDK at it: %q", stdout.String())
	}

	chat, _ := openaitest.Load("chat")
	stream, _ := openaitest.Load("chat-stream")
	streamReq := stream.Request
	post := func(body []byte, cassette string) *http.Response {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("openai-proxy-project", "ml")
		req.Header.Set(openaitest.HeaderCassette, cassette)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post(chat.Request, "chat")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("chat: %d", resp.StatusCode)
	}

	// A slow stream is in flight when shutdown starts: it must finish and
	// be recorded.
	up.Fault("/v1/chat/completions", "slow:20ms")
	sresp := post(streamReq, "chat-stream")
	var wg sync.WaitGroup
	wg.Add(1)
	var streamed []byte
	go func() {
		defer wg.Done()
		streamed, _ = io.ReadAll(sresp.Body)
		sresp.Body.Close()
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	wg.Wait()
	if !bytes.Contains(streamed, []byte("[DONE]")) {
		t.Fatalf("in-flight stream cut by shutdown: %q", streamed)
	}

	code, out, errs := run(t, "usage", "--store", db, "--by", "project,model", "--json")
	if code != 0 {
		t.Fatalf("usage: %d %s", code, errs)
	}
	var rep struct {
		Rows []struct {
			Group    map[string]string `json:"group"`
			Requests int64             `json:"requests"`
			Cost     string            `json:"cost_usd"`
		} `json:"rows"`
		Total struct {
			Requests int64  `json:"requests"`
			Cost     string `json:"cost_usd"`
		} `json:"total"`
		Limits []struct {
			Committed string `json:"committed_usd"`
		} `json:"limits"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("usage --json: %v\n%s", err, out)
	}
	// chat 196.05 µ$ + chat-stream 103.8 µ$ (see pkg/proxy tests).
	if rep.Total.Requests != 2 || rep.Total.Cost != "0.00029985" {
		t.Errorf("total = %+v, want 2 requests costing 0.00029985", rep.Total)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].Group["project"] != "ml" || rep.Rows[0].Group["model"] != "gpt-4o-mini" {
		t.Errorf("rows = %+v", rep.Rows)
	}
	if len(rep.Limits) != 1 || rep.Limits[0].Committed != "0.00029985" {
		t.Errorf("limits = %+v: the limit must show the spend", rep.Limits)
	}
	code, out, _ = run(t, "usage", "--store", db, "--by", "user")
	if code != 0 || !strings.Contains(out, "local") || !strings.Contains(out, "0.00029985") {
		t.Errorf("table output: %q", out)
	}
}

func TestServeRefusesAuthNoneOffLoopback(t *testing.T) {
	err := serve(context.Background(), serveConfig{listen: "0.0.0.0:0", upstream: "https://api.openai.com/v1",
		storePath: filepath.Join(t.TempDir(), "x.db"), stage: "local", auth: "none", timezone: "UTC"},
		io.Discard, slog.New(slog.DiscardHandler), nil)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("want a loopback refusal, got %v", err)
	}
}

func TestKeysAndLimitsCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "wrapi.db")
	code, out, _ := run(t, "keys", "create", "--store", db, "--user", "alice", "--project", "ml")
	if code != 0 || !strings.Contains(out, "sk-wrapi-") {
		t.Fatalf("keys create: %d %q", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	secret := lines[len(lines)-1]
	if !strings.HasPrefix(secret, "sk-wrapi-") {
		t.Fatalf("last line should be the secret: %q", out)
	}
	code, out, _ = run(t, "keys", "list", "--store", db, "--json")
	if code != 0 || strings.Contains(out, secret) || !strings.Contains(out, `"user": "alice"`) {
		t.Fatalf("keys list must not show the secret: %q", out)
	}
	var keys []struct{ ID string }
	json.Unmarshal([]byte(out), &keys)
	if code, _, _ := run(t, "keys", "revoke", "--store", db, keys[0].ID); code != 0 {
		t.Fatal("revoke failed")
	}
	if code, _, errs := run(t, "limits", "set", "--store", db, "--project", "ml", "--usd", "0.0000000001"); code != 2 || !strings.Contains(errs, "decimals") {
		t.Errorf("sub-nano amount: %d %q", code, errs)
	}
	if code, _, _ := run(t, "limits", "set", "--store", db, "--project", "ml", "--usd", "5", "--period", "week"); code != 2 {
		t.Error("unknown period accepted")
	}
	run(t, "limits", "set", "--store", db, "--project", "ml", "--user", "alice", "--usd", "5", "--period", "day")
	code, out, _ = run(t, "limits", "list", "--store", db, "--json")
	if code != 0 || !strings.Contains(out, `"usd": "5.00"`) || !strings.Contains(out, `"period": "day"`) {
		t.Fatalf("limits list: %q", out)
	}
	if code, _, _ := run(t, "limits", "delete", "--store", db, "--project", "ml", "--user", "alice", "--period", "day"); code != 0 {
		t.Fatal("delete failed")
	}
	if code, _, errs := run(t, "limits", "delete", "--store", db, "--project", "ml", "--user", "alice", "--period", "day"); code != 1 || !strings.Contains(errs, "no day limit") {
		t.Errorf("second delete: %d %q", code, errs)
	}
	if code, _, _ := run(t, "nonsense"); code != 2 {
		t.Error("unknown command must exit 2")
	}
	t.Setenv("WRAPI_BY", "model")
	if code, out, _ := run(t, "usage", "--store", db); code != 0 || !strings.Contains(out, "model") {
		t.Errorf("WRAPI_BY env default not honoured: %q", out)
	}
}

// TestServeCacheAndFlushFromCLI: a repeated request is a hit, `wrapi cache
// stats` shows it with its savings, and `wrapi cache flush --project`
// (another "process": its own store handle) empties the running server's
// in-process cache.
func TestServeCacheAndFlushFromCLI(t *testing.T) {
	up := openaitest.NewServer()
	defer up.Close()
	db := filepath.Join(t.TempDir(), "wrapi.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveConfig{
			listen: "127.0.0.1:0", upstream: up.URL, storePath: db, stage: "local", auth: "none", timezone: "UTC",
			maxBody: 1 << 20, upstreamTimeout: 30 * time.Second, shutdownTimeout: 10 * time.Second,
			cacheBackend: "lru", cacheDefault: true, cacheTTL: time.Hour, cacheScope: "project", cacheMaxBytes: 1 << 20,
		}, io.Discard, slog.New(slog.DiscardHandler), ready)
	}()
	addr := <-ready
	chat, _ := openaitest.Load("chat")
	ask := func() string {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/chat/completions", bytes.NewReader(chat.Request))
		req.Header.Set("openai-proxy-project", "ml")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(100 * time.Millisecond) // the cache write follows the reply
		return resp.Header.Get("x-wrapi-cache")
	}
	if a, b := ask(), ask(); a != "miss" || b != "hit" {
		t.Fatalf("cache: %q then %q", a, b)
	}
	code, out, _ := run(t, "cache", "stats", "--store", db, "--json")
	var stats map[string]struct {
		Hits  int64  `json:"hits"`
		Saved string `json:"saved_usd"`
		Rate  string `json:"hit_rate"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &stats) != nil || stats["ml"].Hits != 1 || stats["ml"].Saved != "0.00019605" || stats["ml"].Rate != "50.0%" {
		t.Fatalf("cache stats: %d %s", code, out)
	}
	if code, out, _ := run(t, "cache", "flush", "--store", db, "--project", "ml"); code != 0 || !strings.Contains(out, "project:ml") {
		t.Fatalf("flush: %d %q", code, out)
	}
	time.Sleep(1100 * time.Millisecond) // generations are re-read every second
	if got := ask(); got != "miss" {
		t.Fatalf("after flush: %q, want miss", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestEnvNames(t *testing.T) {
	for _, tc := range []struct{ cmd, flag, want string }{
		{"wrapi serve", "listen", "WRAPI_LISTEN"},
		{"wrapi serve", "allow-unmetered", "WRAPI_ALLOW_UNMETERED"},
		{"wrapi dashboard", "listen", "WRAPI_DASHBOARD_LISTEN"},
		{"wrapi dashboard", "admin", "WRAPI_DASHBOARD_ADMIN"},
		{"wrapi dashboard", "store", "WRAPI_STORE"},
	} {
		if got := envName(tc.cmd, tc.flag); got != tc.want {
			t.Errorf("envName(%q, %q) = %q, want %q", tc.cmd, tc.flag, got, tc.want)
		}
	}
}
