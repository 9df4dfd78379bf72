package openaitest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	chatBody         = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}`
	chatStream       = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"stream":true}`
	chatStreamUsage  = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true}}`
	chatStreamNoUsag = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":false}}`
)

type result struct {
	resp    *http.Response
	body    []byte
	readErr error
	elapsed time.Duration
}

// call sends one request; hdr holds header name/value pairs.
func call(t *testing.T, ctx context.Context, method, url, body string, hdr ...string) (result, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(resp.Body)
	return result{resp: resp, body: b, readErr: rerr, elapsed: time.Since(start)}, nil
}

func mustCall(t *testing.T, method, url, body string, hdr ...string) result {
	t.Helper()
	r, err := call(t, context.Background(), method, url, body, hdr...)
	if err != nil {
		t.Fatal(err)
	}
	if r.readErr != nil {
		t.Fatalf("reading body: %v", r.readErr)
	}
	return r
}

func load(t *testing.T, name string) Cassette {
	t.Helper()
	c, err := Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func joined(evs [][]byte) []byte { return bytes.Join(evs, nil) }

var requestIDRe = regexp.MustCompile(`^req_[0-9a-f]{32}$`)

func TestRouting(t *testing.T) {
	s := NewServer()
	defer s.Close()
	chatStreamNoUsage := joined(load(t, "chat-stream").EventsWithoutUsage())
	tests := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		cassette                 string
		want                     []byte // nil: the cassette's Body
		contains                 string
	}{
		{name: "chat", method: "POST", path: "/chat/completions", body: chatBody, status: 200, cassette: "chat"},
		{name: "chat stream with usage", method: "POST", path: "/chat/completions", body: chatStreamUsage, status: 200, cassette: "chat-stream"},
		{name: "chat stream without stream_options", method: "POST", path: "/chat/completions", body: chatStream, status: 200, cassette: "chat-stream", want: chatStreamNoUsage},
		{name: "chat stream include_usage false", method: "POST", path: "/chat/completions", body: chatStreamNoUsag, status: 200, cassette: "chat-stream", want: chatStreamNoUsage},
		{name: "chat stream false", method: "POST", path: "/chat/completions", body: `{"model":"m","stream":false}`, status: 200, cassette: "chat"},
		{name: "responses", method: "POST", path: "/responses", body: `{"model":"gpt-5-mini","input":"Hi"}`, status: 200, cassette: "responses"},
		{name: "responses stream", method: "POST", path: "/responses", body: `{"model":"o4-mini","input":"Hi","stream":true}`, status: 200, cassette: "responses-stream"},
		{name: "completions", method: "POST", path: "/completions", body: `{"model":"gpt-3.5-turbo-instruct","prompt":"x"}`, status: 200, cassette: "completions"},
		{name: "completions stream with usage", method: "POST", path: "/completions", body: `{"prompt":"x","stream":true,"stream_options":{"include_usage":true}}`, status: 200, cassette: "completions-stream"},
		{name: "completions stream", method: "POST", path: "/completions", body: `{"prompt":"x","stream":true}`, status: 200, cassette: "completions-stream", want: joined(load(t, "completions-stream").EventsWithoutUsage())},
		{name: "embeddings", method: "POST", path: "/embeddings", body: `{"model":"text-embedding-3-small","input":"x"}`, status: 200, cassette: "embeddings"},
		{name: "embeddings float", method: "POST", path: "/embeddings", body: `{"input":"x","encoding_format":"float"}`, status: 200, cassette: "embeddings"},
		{name: "embeddings base64", method: "POST", path: "/embeddings", body: `{"input":"x","encoding_format":"base64"}`, status: 200, cassette: "embeddings-base64"},
		{name: "moderations", method: "POST", path: "/moderations", body: `{"input":"x"}`, status: 200, cassette: "moderations"},
		{name: "models", method: "GET", path: "/models", status: 200, cassette: "models"},
		{name: "model", method: "GET", path: "/models/gpt-4o-mini", status: 200, cassette: "model"},
		{name: "other model", method: "GET", path: "/models/o4-mini", status: 200, cassette: "model", contains: `"id": "o4-mini"`},
		{name: "unknown model", method: "GET", path: "/models/gpt-9", status: 404, cassette: "error-404-model", contains: "The model `gpt-9` does not exist"},
		{name: "invalid json", method: "POST", path: "/chat/completions", body: `{"model":`, status: 400, cassette: "error-400-invalid-json"},
		{name: "unknown path", method: "POST", path: "/fine_tuning/jobs", body: `{}`, status: 404, contains: `"message": "Invalid URL (POST /v1/fine_tuning/jobs)"`},
		{name: "wrong method", method: "GET", path: "/chat/completions", status: 404, contains: "Invalid URL (GET /v1/chat/completions)"},
		{name: "header cassette", method: "POST", path: "/chat/completions", body: chatBody, hdr: []string{HeaderCassette, "chat-reasoning"}, status: 200, cassette: "chat-reasoning"},
		{name: "header stream cassette on a JSON request", method: "POST", path: "/chat/completions", body: chatBody, hdr: []string{HeaderCassette, "chat-stream-tools"}, status: 200, cassette: "chat-stream-tools", want: joined(load(t, "chat-stream-tools").EventsWithoutUsage())},
		{name: "header cassette bypasses JSON check", method: "POST", path: "/chat/completions", body: `nope`, hdr: []string{HeaderCassette, "chat"}, status: 200, cassette: "chat"},
		{name: "unknown header cassette", method: "POST", path: "/chat/completions", body: chatBody, hdr: []string{HeaderCassette, "nope"}, status: 400, contains: "openaitest_unknown_cassette"},
	}
	seenIDs := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustCall(t, tt.method, s.URL+tt.path, tt.body, tt.hdr...)
			if r.resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", r.resp.StatusCode, tt.status, r.body)
			}
			if got := r.resp.Header.Get(HeaderCassette); got != tt.cassette {
				t.Errorf("served cassette %q, want %q", got, tt.cassette)
			}
			id := r.resp.Header.Get("X-Request-Id")
			if !requestIDRe.MatchString(id) || seenIDs[id] {
				t.Errorf("X-Request-Id %q: not fresh or not OpenAI-shaped", id)
			}
			seenIDs[id] = true
			ct := r.resp.Header.Get("Content-Type")
			if tt.cassette != "" {
				c := load(t, tt.cassette)
				want := tt.want
				if want == nil && tt.contains == "" {
					want = c.Body
				}
				if want != nil && !bytes.Equal(r.body, want) {
					t.Errorf("body differs from the cassette (%d bytes, want %d):\n%.300s", len(r.body), len(want), r.body)
				}
				if ct != c.Header.Get("Content-Type") {
					t.Errorf("Content-Type %q, cassette %q", ct, c.Header.Get("Content-Type"))
				}
				if got, want := r.resp.Header.Get("Openai-Version"), c.Header.Get("Openai-Version"); got != want {
					t.Errorf("Openai-Version %q, want %q", got, want)
				}
			} else if !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.contains != "" && !bytes.Contains(r.body, []byte(tt.contains)) {
				t.Errorf("body lacks %q:\n%s", tt.contains, r.body)
			}
		})
	}
}

func TestStreamHeaders(t *testing.T) {
	s := NewServer()
	defer s.Close()
	r := mustCall(t, "POST", s.URL+"/chat/completions", chatStreamUsage)
	if ct := r.resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if r.resp.ContentLength != -1 || len(r.resp.TransferEncoding) == 0 {
		t.Errorf("stream has Content-Length %d, Transfer-Encoding %v", r.resp.ContentLength, r.resp.TransferEncoding)
	}
	for _, h := range []string{"Openai-Processing-Ms", "X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Limit-Requests", "Openai-Version"} {
		if r.resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	j := mustCall(t, "POST", s.URL+"/chat/completions", chatBody)
	if j.resp.ContentLength != int64(len(load(t, "chat").Body)) {
		t.Errorf("JSON reply Content-Length %d", j.resp.ContentLength)
	}
}

func TestUse(t *testing.T) {
	s := NewServer()
	defer s.Close()
	s.Use("/v1/chat/completions", "chat-reasoning")
	if got := mustCall(t, "POST", s.URL+"/chat/completions", chatBody).resp.Header.Get(HeaderCassette); got != "chat-reasoning" {
		t.Errorf("after Use: %q", got)
	}
	// Use wins over the stream flag; the header wins over Use.
	if got := mustCall(t, "POST", s.URL+"/chat/completions", chatStream).resp.Header.Get(HeaderCassette); got != "chat-reasoning" {
		t.Errorf("stream request after Use: %q", got)
	}
	if got := mustCall(t, "POST", s.URL+"/chat/completions", chatBody, HeaderCassette, "chat").resp.Header.Get(HeaderCassette); got != "chat" {
		t.Errorf("header over Use: %q", got)
	}
	if got := mustCall(t, "POST", s.URL+"/embeddings", `{}`).resp.Header.Get(HeaderCassette); got != "embeddings" {
		t.Errorf("other path: %q", got)
	}
	s.Use("/v1/chat/completions", "")
	if got := mustCall(t, "POST", s.URL+"/chat/completions", chatBody).resp.Header.Get(HeaderCassette); got != "chat" {
		t.Errorf("after clearing Use: %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("Use of an unknown cassette did not panic")
		}
	}()
	s.Use("/v1/chat/completions", "nope")
}

func TestAPIKey(t *testing.T) {
	s := NewServer(WithAPIKey("sk-test-key"))
	defer s.Close()
	tests := []struct {
		auth     string
		status   int
		cassette string
	}{
		{"", 401, "error-401-missing-key"},
		{"Bearer sk-wrong", 401, "error-401"},
		{"sk-test-key", 401, "error-401"},
		{"Bearer sk-test-key", 200, "chat"},
	}
	for _, tt := range tests {
		var hdr []string
		if tt.auth != "" {
			hdr = []string{"Authorization", tt.auth}
		}
		r := mustCall(t, "POST", s.URL+"/chat/completions", chatBody, hdr...)
		if r.resp.StatusCode != tt.status || !bytes.Equal(r.body, load(t, tt.cassette).Body) {
			t.Errorf("Authorization %q: status %d body %s, want %d %s", tt.auth, r.resp.StatusCode, r.body, tt.status, tt.cassette)
		}
	}
	// A missing key is checked before a cassette header is honoured.
	r := mustCall(t, "GET", s.URL+"/models", "", HeaderCassette, "chat")
	if r.resp.StatusCode != 401 {
		t.Errorf("cassette header skipped the key check: %d", r.resp.StatusCode)
	}
	if got := len(s.Requests()); got != len(tests)+1 {
		t.Errorf("%d requests recorded, want %d", got, len(tests)+1)
	}
}

func TestFaultStatus(t *testing.T) {
	s := NewServer()
	defer s.Close()
	for _, code := range []int{400, 401, 404, 429, 500} {
		r := mustCall(t, "POST", s.URL+"/chat/completions", chatStreamUsage, HeaderFault, fmt.Sprintf("status:%d", code))
		c := load(t, errorCassettes[code])
		if r.resp.StatusCode != code || !bytes.Equal(r.body, c.Body) {
			t.Errorf("status:%d: got %d %s", code, r.resp.StatusCode, r.body)
		}
	}
	r := mustCall(t, "POST", s.URL+"/chat/completions", chatBody, HeaderFault, "status:429")
	for _, h := range []string{"X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Tokens", "X-Ratelimit-Limit-Tokens"} {
		if r.resp.Header.Get(h) != load(t, "error-429").Header.Get(h) || r.resp.Header.Get(h) == "" {
			t.Errorf("429 header %s = %q", h, r.resp.Header.Get(h))
		}
	}
	r = mustCall(t, "POST", s.URL+"/chat/completions", chatBody, HeaderFault, "status:503")
	if r.resp.StatusCode != 503 || !bytes.Contains(r.body, []byte(`"type": "server_error"`)) {
		t.Errorf("status:503: %d %s", r.resp.StatusCode, r.body)
	}

	// Per path; a header fault replaces it, even an empty one.
	s.Fault("/v1/chat/completions", "status:500")
	if got := mustCall(t, "POST", s.URL+"/chat/completions", chatBody).resp.StatusCode; got != 500 {
		t.Errorf("path fault: %d", got)
	}
	if got := mustCall(t, "POST", s.URL+"/embeddings", `{}`).resp.StatusCode; got != 200 {
		t.Errorf("other path: %d", got)
	}
	if got := mustCall(t, "POST", s.URL+"/chat/completions", chatBody, HeaderFault, "").resp.StatusCode; got != 200 {
		t.Errorf("empty header fault: %d", got)
	}
	s.Fault("/v1/chat/completions", "")
	if got := mustCall(t, "POST", s.URL+"/chat/completions", chatBody).resp.StatusCode; got != 200 {
		t.Errorf("after clearing: %d", got)
	}
}

func TestFaultMalformed(t *testing.T) {
	s := NewServer()
	defer s.Close()
	r := mustCall(t, "POST", s.URL+"/chat/completions", chatBody, HeaderFault, "cut:-2")
	if r.resp.StatusCode != 400 || !bytes.Contains(r.body, []byte("openaitest_bad_fault")) {
		t.Errorf("bad fault header: %d %s", r.resp.StatusCode, r.body)
	}
	defer func() {
		if recover() == nil {
			t.Error("Fault with a bad spec did not panic")
		}
	}()
	s.Fault("/v1/chat/completions", "sometimes")
}

func TestFaultDelay(t *testing.T) {
	s := NewServer()
	defer s.Close()
	r := mustCall(t, "POST", s.URL+"/chat/completions", chatBody, HeaderFault, "delay:150ms")
	if r.elapsed < 150*time.Millisecond || !bytes.Equal(r.body, load(t, "chat").Body) {
		t.Errorf("delay:150ms answered in %v", r.elapsed)
	}
}

func TestFaultCut(t *testing.T) {
	s := NewServer()
	defer s.Close()
	stream := load(t, "chat-stream")
	tests := []struct {
		name, body, spec string
		want             []byte
	}{
		{"three events", chatStreamUsage, "cut:3", joined(stream.Events[:3])},
		{"nothing", chatStreamUsage, "cut:0", nil},
		{"all but [DONE]", chatStreamUsage, "cut:1000", joined(stream.Events[:len(stream.Events)-1])},
		{"without usage", chatStream, "cut:1000", joined(stream.EventsWithoutUsage()[:len(stream.Events)-2])},
		{"json bytes", chatBody, "cut:10", load(t, "chat").Body[:10]},
	}
	for _, tt := range tests {
		r, err := call(t, context.Background(), "POST", s.URL+"/chat/completions", tt.body, HeaderFault, tt.spec)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !errors.Is(r.readErr, io.ErrUnexpectedEOF) {
			t.Errorf("%s: read error %v, want unexpected EOF", tt.name, r.readErr)
		}
		if !bytes.Equal(r.body, tt.want) {
			t.Errorf("%s: got %d bytes, want %d: %.200q", tt.name, len(r.body), len(tt.want), r.body)
		}
	}
	// The responses stream is cut before response.completed.
	rs := load(t, "responses-stream")
	r, err := call(t, context.Background(), "POST", s.URL+"/responses", `{"stream":true}`, HeaderFault, "cut:1000")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.body, joined(rs.Events[:len(rs.Events)-1])) || r.readErr == nil {
		t.Errorf("responses cut: %v, %d bytes", r.readErr, len(r.body))
	}
}

// TestFaultSlowFlushes checks events are spaced and each is flushed: the
// first arrives long before the stream ends.
func TestFaultSlowFlushes(t *testing.T) {
	s := NewServer()
	defer s.Close()
	const gap = 40 * time.Millisecond
	req, _ := http.NewRequest("POST", s.URL+"/chat/completions", strings.NewReader(chatStreamUsage))
	req.Header.Set(HeaderFault, "slow:"+gap.String())
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	firstAt := time.Since(start)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	total := time.Since(start)
	c := load(t, "chat-stream")
	if first+string(rest) != string(c.Body) {
		t.Error("slow stream body differs from the cassette")
	}
	minTotal := time.Duration(len(c.Events)-1) * gap
	if total < minTotal {
		t.Errorf("stream took %v, want at least %v", total, minTotal)
	}
	if firstAt > total-minTotal/2 {
		t.Errorf("first event at %v of %v: not flushed on its own", firstAt, total)
	}
}

func TestFaultHang(t *testing.T) {
	s := NewServer()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := call(t, ctx, "POST", s.URL+"/chat/completions", chatBody, HeaderFault, "hang"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: %v, want the client's deadline", err)
	}
	// Close releases a request still hanging instead of waiting for it.
	errc := make(chan error, 1)
	go func() {
		_, err := call(t, context.Background(), "POST", s.URL+"/chat/completions", chatBody, HeaderFault, "hang")
		errc <- err
	}()
	for len(s.Requests()) < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("Close blocked on a hanging request")
	}
	if err := <-errc; err == nil {
		t.Error("hanging request got a reply")
	}
	if got := s.Requests(); got[0].Cassette != "chat" {
		t.Errorf("hang recorded cassette %q", got[0].Cassette)
	}
}

func TestRequestsAndReset(t *testing.T) {
	s := NewServer()
	defer s.Close()
	mustCall(t, "POST", s.URL+"/chat/completions?trace=1", chatBody, "X-Test", "one")
	mustCall(t, "GET", s.URL+"/models", "", "X-Test", "two")
	mustCall(t, "POST", s.URL+"/embeddings", `{"encoding_format":"base64"}`, "X-Test", "three")
	got := s.Requests()
	want := []Request{
		{Method: "POST", Path: "/v1/chat/completions", RawQuery: "trace=1", Body: []byte(chatBody), Cassette: "chat"},
		{Method: "GET", Path: "/v1/models", Body: []byte{}, Cassette: "models"},
		{Method: "POST", Path: "/v1/embeddings", Body: []byte(`{"encoding_format":"base64"}`), Cassette: "embeddings-base64"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d requests, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Method != w.Method || g.Path != w.Path || g.RawQuery != w.RawQuery || !bytes.Equal(g.Body, w.Body) || g.Cassette != w.Cassette {
			t.Errorf("request %d = %+v, want %+v", i, g, w)
		}
		if h := g.Header.Get("X-Test"); h != []string{"one", "two", "three"}[i] {
			t.Errorf("request %d X-Test %q", i, h)
		}
	}
	got[0].Header.Set("X-Test", "changed")
	got[0].Body[0] = 'X'
	if again := s.Requests(); again[0].Header.Get("X-Test") != "one" || again[0].Body[0] != '{' {
		t.Error("Requests() returned shared state")
	}

	s.Use("/v1/chat/completions", "chat-reasoning")
	s.Fault("/v1/embeddings", "status:500")
	s.Reset()
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d requests after Reset", n)
	}
	if got := mustCall(t, "POST", s.URL+"/chat/completions", chatBody).resp.Header.Get(HeaderCassette); got != "chat" {
		t.Errorf("Use survived Reset: %q", got)
	}
	if got := mustCall(t, "POST", s.URL+"/embeddings", `{}`).resp.StatusCode; got != 200 {
		t.Errorf("Fault survived Reset: %d", got)
	}
}

// TestConcurrent serves 500 simultaneous requests of mixed kinds, each
// choosing its cassette by header, and checks every reply and the log.
func TestConcurrent(t *testing.T) {
	s := NewServer()
	defer s.Close()
	const n = 500
	kinds := []struct {
		path, body, cassette string
		hdr                  []string
		want                 []byte
	}{
		{"/chat/completions", chatBody, "chat", nil, load(t, "chat").Body},
		{"/chat/completions", chatStreamUsage, "chat-stream", []string{HeaderFault, "slow:1ms"}, load(t, "chat-stream").Body},
		{"/chat/completions", chatStream, "chat-stream-n2", []string{HeaderCassette, "chat-stream-n2"}, joined(load(t, "chat-stream-n2").EventsWithoutUsage())},
		{"/chat/completions", chatBody, "chat-reasoning", []string{HeaderCassette, "chat-reasoning"}, load(t, "chat-reasoning").Body},
		{"/responses", `{"stream":true}`, "responses-stream", nil, load(t, "responses-stream").Body},
		{"/embeddings", `{}`, "embeddings", nil, load(t, "embeddings").Body},
		{"/chat/completions", chatBody, "error-429", []string{HeaderFault, "status:429"}, load(t, "error-429").Body},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	defer client.CloseIdleConnections()
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		k := kinds[i%len(kinds)]
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest("POST", s.URL+k.path, strings.NewReader(k.body))
			req.Header.Set("X-Seq", fmt.Sprint(i))
			for j := 0; j+1 < len(k.hdr); j += 2 {
				req.Header.Set(k.hdr[j], k.hdr[j+1])
			}
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(b, k.want) || resp.Header.Get(HeaderCassette) != k.cassette {
				errs <- fmt.Errorf("request %d (%s): err %v, cassette %q, %d bytes", i, k.cassette, err, resp.Header.Get(HeaderCassette), len(b))
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	reqs := s.Requests()
	if len(reqs) != n {
		t.Fatalf("%d requests recorded, want %d", len(reqs), n)
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		seq := r.Header.Get("X-Seq")
		if seen[seq] {
			t.Errorf("request %s recorded twice", seq)
		}
		seen[seq] = true
		var i int
		fmt.Sscan(seq, &i)
		if want := kinds[i%len(kinds)].cassette; r.Cassette != want {
			t.Errorf("request %s recorded cassette %q, want %q", seq, r.Cassette, want)
		}
	}
}
