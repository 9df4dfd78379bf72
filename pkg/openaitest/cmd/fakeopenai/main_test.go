package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-api-key", "sk-test",
			"-use", "/v1/chat/completions=chat-reasoning", "-fault", "/v1/embeddings=status:429"}, w, io.Discard)
		w.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "fakeopenai: serving ")
	if !ok || !strings.HasSuffix(base, "/v1") {
		t.Fatalf("first line %q", line)
	}
	go io.Copy(io.Discard, out)

	post := func(path, key string) *http.Response {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(`{"model":"m"}`))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if r := post("/chat/completions", ""); r.StatusCode != 401 {
		t.Errorf("without key: %d", r.StatusCode)
	}
	if r := post("/chat/completions", "sk-test"); r.StatusCode != 200 || r.Header.Get("X-Openaitest-Cassette") != "chat-reasoning" {
		t.Errorf("-use: %d %q", r.StatusCode, r.Header.Get("X-Openaitest-Cassette"))
	}
	if r := post("/embeddings", "sk-test"); r.StatusCode != 429 {
		t.Errorf("-fault: %d", r.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-use", "chat=chat"},
		{"-use", "/v1/chat/completions=nope", "-addr", "127.0.0.1:0"},
		{"-fault", "/v1/chat/completions=explode", "-addr", "127.0.0.1:0"},
		{"extra"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
