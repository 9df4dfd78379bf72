package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeStage stands for a function URL: it refuses unsigned requests as
// AWS does, echoes what it received, streams on request, and answers
// /v1/aws-refusal with the function URL's own 403.
func fakeStage(t *testing.T, region string, next <-chan struct{}) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if why := verifySigV4(r, body, region); why != "" || r.URL.Path == "/v1/aws-refusal" {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Amzn-Errortype", "AccessDeniedException")
			w.WriteHeader(403)
			io.WriteString(w, `{"Message":"Forbidden"}`)
			return
		}
		if bytes.Contains(body, []byte(`"stream":true`)) {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 3 {
				if i > 0 {
					select {
					case <-next:
					case <-time.After(5 * time.Second):
						return // the sidecar buffered the previous event
					}
				}
				io.WriteString(w, "data: {\"i\":"+string(rune('0'+i))+"}\n\n")
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"path": r.URL.RequestURI(), "body": string(body), "authorization": r.Header.Get("Authorization"),
			"project": r.Header.Get("openai-proxy-project"), "staging": r.Header.Get("openai-proxy-staging"),
			"caching": r.Header.Get("openai-proxy-caching"),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// startConnect runs the sidecar in-process and returns its base URL and a
// stop function that reports connect's result.
func startConnect(t *testing.T, c connectConfig) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- connect(ctx, c, &out, slog.New(slog.DiscardHandler), ready) }()
	select {
	case addr := <-ready:
		if want := "export OPENAI_BASE_URL=http://" + addr + "/v1 OPENAI_API_KEY=unused"; !strings.HasPrefix(out.String(), want) || strings.Count(out.String(), "\n") != 1 {
			t.Errorf("start line %q, want one line starting %q", out.String(), want)
		}
		if strings.Contains(out.String(), testSecret) || strings.Contains(out.String(), testAKID) {
			t.Error("the start line shows the AWS key")
		}
		stopped := false
		stop := func() error {
			if stopped {
				return nil
			}
			stopped = true
			cancel()
			return <-done
		}
		t.Cleanup(func() { stop() })
		return "http://" + addr + "/v1", stop
	case err := <-done:
		cancel()
		t.Fatalf("connect: %v", err)
	}
	return "", nil
}

func post(t *testing.T, url, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer unused")
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestConnectSignsAndForwards(t *testing.T) {
	awsTestEnv(t)
	t.Setenv("OPENAI_DEFAULT_PROJECT", "ml")
	next := make(chan struct{})
	stage := fakeStage(t, "us-east-1", next)
	base, stop := startConnect(t, connectConfig{stage: "dev", project: os.Getenv("OPENAI_DEFAULT_PROJECT"), caching: "0",
		url: stage.URL, region: "us-east-1", port: 0, shutdownTimeout: 5 * time.Second})

	resp, b := post(t, base+"/chat/completions?x=1", `{"model":"gpt-4o-mini"}`, nil)
	var got map[string]string
	if resp.StatusCode != 200 || json.Unmarshal(b, &got) != nil {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if got["path"] != "/v1/chat/completions?x=1" || got["body"] != `{"model":"gpt-4o-mini"}` || got["project"] != "ml" ||
		got["staging"] != "dev" || got["caching"] != "0" || !strings.HasPrefix(got["authorization"], "AWS4-HMAC-SHA256 Credential="+testAKID+"/") {
		t.Errorf("the stage received %v", got)
	}
	// A per-request project header wins.
	_, b = post(t, base+"/embeddings", `{}`, map[string]string{"openai-proxy-project": "research"})
	json.Unmarshal(b, &got)
	if got["project"] != "research" {
		t.Errorf("per-request project: %v", got)
	}

	// Streams are flushed event by event: the stage writes the next event
	// only after the client has read the previous one.
	req, _ := http.NewRequest("POST", base+"/chat/completions", strings.NewReader(`{"model":"gpt-4o-mini","stream":true}`))
	sresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(sresp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		br.ReadString('\n')
		if err != nil || line != "data: {\"i\":"+string(rune('0'+i))+"}\n" {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		if i < 2 {
			next <- struct{}{}
		}
	}
	sresp.Body.Close()

	// The function URL's own refusal becomes an OpenAI-shaped error.
	resp, b = post(t, base+"/aws-refusal", `{}`, nil)
	var e struct {
		Error struct{ Type, Code, Message string }
	}
	if resp.StatusCode != 403 || json.Unmarshal(b, &e) != nil || e.Error.Code != "aws_access_denied" ||
		!strings.Contains(e.Error.Message, "lambda:InvokeFunctionUrl") || resp.Header.Get("x-should-retry") != "false" {
		t.Errorf("AWS 403: %d %s", resp.StatusCode, b)
	}
	// Only /v1 is forwarded.
	resp, b = post(t, strings.TrimSuffix(base, "/v1")+"/admin", `{}`, nil)
	if resp.StatusCode != 404 || !bytes.Contains(b, []byte(`"unknown_url"`)) {
		t.Errorf("non-/v1 path: %d %s", resp.StatusCode, b)
	}
	if err := stop(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// A wrong region is refused by the stage (the signature's scope does not
// match), and an unreachable stage is a 502 in OpenAI's shape.
func TestConnectFailures(t *testing.T) {
	awsTestEnv(t)
	stage := fakeStage(t, "eu-west-1", nil)
	base, _ := startConnect(t, connectConfig{stage: "dev", url: stage.URL, region: "us-east-1", shutdownTimeout: time.Second})
	resp, b := post(t, base+"/chat/completions", `{}`, nil)
	if resp.StatusCode != 403 || !bytes.Contains(b, []byte("aws_access_denied")) {
		t.Errorf("wrong region: %d %s", resp.StatusCode, b)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	base, _ = startConnect(t, connectConfig{stage: "dev", url: dead.URL, region: "us-east-1", shutdownTimeout: time.Second})
	resp, b = post(t, base+"/chat/completions", `{}`, nil)
	if resp.StatusCode != 502 || !bytes.Contains(b, []byte(`"stage_unreachable"`)) {
		t.Errorf("dead stage: %d %s", resp.StatusCode, b)
	}
	resp, b = post(t, base+"/embeddings", strings.Repeat("x", 6<<20+1), nil)
	if resp.StatusCode != 413 {
		t.Errorf("7 MB body: %d %s", resp.StatusCode, b)
	}
}

// --save remembers the stage; afterwards --stage alone finds it. Flags
// and openai-wrapi's env vars are validated before anything starts.
func TestConnectStagesFile(t *testing.T) {
	awsTestEnv(t)
	stage := fakeStage(t, "us-east-1", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // start, print, stop at once
	var out, errb bytes.Buffer
	code := Main(ctx, []string{"connect", "--stage", "dev", "--url", stage.URL, "--region", "us-east-1", "--admin-function", "wrapi-dev-admin", "--save", "--port", "0"}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "OPENAI_BASE_URL=http://127.0.0.1:") {
		t.Fatalf("connect --save: %d %q %q", code, out.String(), errb.String())
	}
	stages, path, err := loadStages()
	if err != nil || stages["dev"] != (stageEntry{URL: stage.URL, Region: "us-east-1", AdminFunction: "wrapi-dev-admin"}) {
		t.Fatalf("%s: %+v %v", path, stages, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("stages file mode %v", fi.Mode())
	}
	// From the file, with the stage from openai-wrapi's env var.
	t.Setenv("OPENAI_DEFAULT_STAGING", "dev")
	base, _ := startConnect(t, connectConfig{stage: os.Getenv("OPENAI_DEFAULT_STAGING"), shutdownTimeout: time.Second})
	resp, b := post(t, base+"/chat/completions", `{}`, nil)
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"staging":"dev"`)) {
		t.Errorf("connect from stages.json: %d %s", resp.StatusCode, b)
	}

	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"connect", "--stage", "prod"}, nil, `no URL for stage "prod"`},
		{[]string{"connect"}, map[string]string{"OPENAI_DEFAULT_STAGING": ""}, "--stage NAME"},
		{[]string{"connect", "--url", stage.URL, "--save"}, map[string]string{"OPENAI_DEFAULT_STAGING": ""}, "--save needs --stage"},
		{[]string{"connect", "--stage", "dev"}, map[string]string{"OPENAI_DEFAULT_CACHING": "maybe"}, "OPENAI_DEFAULT_CACHING"},
		{[]string{"connect", "--stage", "dev", "--url", "ftp://x"}, nil, "not an http(s) URL"},
		{[]string{"connect", "--stage", "dev", "--url", "https://proxy.example.com"}, nil, "region"},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		var out, errb bytes.Buffer
		if code := Main(context.Background(), tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d %q; want 2 mentioning %q", tc.args, code, errb.String(), tc.want)
		}
		t.Setenv("OPENAI_DEFAULT_STAGING", "dev")
		t.Setenv("OPENAI_DEFAULT_CACHING", "")
	}
}

func TestConnectWithoutCredentials(t *testing.T) {
	awsTestEnv(t)
	os.Unsetenv("AWS_ACCESS_KEY_ID")
	os.Unsetenv("AWS_SECRET_ACCESS_KEY")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"connect", "--stage", "dev", "--url", "https://abc.lambda-url.us-east-1.on.aws", "--port", "0"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "no usable AWS credentials") || out.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}
