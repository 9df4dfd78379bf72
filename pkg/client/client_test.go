package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// seen is what the fake stage received.
type seen struct {
	method, host, path, query string
	header                    http.Header
	body                      []byte
	contentLength             int64
	handSig, sdkSig, sentSig  string
	signedHeaders             string
}

// recorder is a fake function URL that records each request and
// recomputes its signature twice: by hand (the documented algorithm) and
// with the SDK signer over the received request.
type recorder struct {
	mu     sync.Mutex
	got    []seen
	secret map[string]string // access key id → secret
	handle http.HandlerFunc
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s := seen{method: r.Method, host: r.Host, path: r.URL.Path, query: r.URL.RawQuery, header: r.Header.Clone(), body: body, contentLength: r.ContentLength}
	cred, sh, sig, ok := authParts(r.Header.Get("Authorization"))
	if ok {
		s.sentSig, s.signedHeaders = sig, sh
		secret := rec.secret[strings.SplitN(cred, "/", 2)[0]]
		s.handSig, _ = handSignature(r, secret, r.Header.Get("X-Amz-Content-Sha256"))
		// SDK recompute: a request carrying only the signed headers.
		sr, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
		sr.ContentLength = r.ContentLength
		for _, h := range strings.Split(sh, ";") {
			if h != "host" && h != "content-length" && h != "x-amz-date" {
				sr.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
			}
		}
		at, _ := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		sp := strings.Split(cred, "/")
		_ = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: sp[0], SecretAccessKey: secret,
			SessionToken: r.Header.Get("X-Amz-Security-Token")}, sr, r.Header.Get("X-Amz-Content-Sha256"), sp[3], sp[2], at)
		_, _, s.sdkSig, _ = authParts(sr.Header.Get("Authorization"))
	}
	rec.mu.Lock()
	rec.got = append(rec.got, s)
	rec.mu.Unlock()
	if rec.handle != nil {
		rec.handle(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`)
}

func (rec *recorder) last(t *testing.T) seen {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) == 0 {
		t.Fatal("the stage received nothing")
	}
	return rec.got[len(rec.got)-1]
}

func static(akid, secret, token string) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: token, Source: "test"}, nil
	})
}

func newStage(t *testing.T) (*recorder, *httptest.Server) {
	rec := &recorder{secret: map[string]string{testAKID: testSecret, "ASIATEMP": "temp-secret"}}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return rec, srv
}

func TestTransportSignsVerifiably(t *testing.T) {
	chat := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"héllo"}]}`)
	for _, tc := range []struct {
		name        string
		method, url string // as the SDK builds it (api.openai.com)
		body        []byte
		header      map[string]string
		cfg         Config
		wantPath    string
		wantHeaders map[string]string // "" = absent
	}{
		{name: "chat", method: "POST", url: "https://api.openai.com/v1/chat/completions", body: chat,
			header: map[string]string{"Authorization": "Bearer sk-real-openai-key", "Content-Type": "application/json", "User-Agent": "OpenAI/Go 3.0"},
			cfg:    Config{Project: "ml", Caching: "0", Staging: "dev"}, wantPath: "/v1/chat/completions",
			wantHeaders: map[string]string{"Openai-Proxy-Project": "ml", "Openai-Proxy-Caching": "0", "Openai-Proxy-Staging": "dev", "X-Amz-Security-Token": ""}},
		{name: "per-request override", method: "POST", url: "http://127.0.0.1:8788/v1/embeddings", body: []byte(`{"model":"text-embedding-3-small","input":"x"}`),
			header: map[string]string{"openai-proxy-project": "research", "openai-proxy-caching": "1"},
			cfg:    Config{Project: "ml", Caching: "0"}, wantPath: "/v1/embeddings",
			wantHeaders: map[string]string{"Openai-Proxy-Project": "research", "Openai-Proxy-Caching": "1", "Openai-Proxy-Staging": ""}},
		{name: "get with query, temporary credentials", method: "GET", url: "https://api.openai.com/v1/models?limit=2&after=a%20b&x=%2F",
			cfg: Config{Credentials: static("ASIATEMP", "temp-secret", "session-token-xyz")}, wantPath: "/v1/models",
			wantHeaders: map[string]string{"X-Amz-Security-Token": "session-token-xyz", "Openai-Proxy-Project": ""}},
		{name: "stale amz headers replaced", method: "POST", url: "https://api.openai.com/v1/responses", body: []byte(`{"model":"gpt-4o-mini","input":"hi"}`),
			header: map[string]string{"X-Amz-Date": "19990101T000000Z", "X-Amz-Security-Token": "old", "X-Amz-Content-Sha256": "bogus"},
			cfg:    Config{}, wantPath: "/v1/responses", wantHeaders: map[string]string{"X-Amz-Security-Token": ""}},
		{name: "prefix in URL", method: "POST", url: "https://api.openai.com/v1/chat/completions", body: chat,
			cfg: Config{URL: "/wrapi/v1/"}, wantPath: "/wrapi/v1/chat/completions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, srv := newStage(t)
			cfg := tc.cfg
			cfg.URL = srv.URL + cfg.URL
			cfg.Region = "us-east-1"
			if cfg.Credentials == nil {
				cfg.Credentials = static(testAKID, testSecret, "")
			}
			hc := &http.Client{Transport: New(cfg)}
			var body io.Reader
			if tc.body != nil {
				body = bytes.NewReader(tc.body)
			}
			req, _ := http.NewRequest(tc.method, tc.url, body)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			orig := req.Header.Clone()
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if !equalHeader(req.Header, orig) {
				t.Error("RoundTrip modified the caller's request headers")
			}
			s := rec.last(t)
			if s.path != tc.wantPath || s.host != strings.TrimPrefix(srv.URL, "http://") {
				t.Errorf("sent to %s%s, want the stage's host and path %s", s.host, s.path, tc.wantPath)
			}
			if !bytes.Equal(s.body, tc.body) || s.contentLength != int64(len(tc.body)) {
				t.Errorf("body %q (length %d), want %q", s.body, s.contentLength, tc.body)
			}
			if strings.HasPrefix(s.header.Get("Authorization"), "Bearer") || strings.Contains(fmt.Sprint(s.header), "sk-real-openai-key") {
				t.Error("the SDK's bearer key reached the stage")
			}
			sum := sha256.Sum256(tc.body)
			if got := s.header.Get("X-Amz-Content-Sha256"); got != hex.EncodeToString(sum[:]) {
				t.Errorf("X-Amz-Content-Sha256 = %q, not the body's hash", got)
			}
			if !strings.Contains(s.signedHeaders, "x-amz-content-sha256") || !strings.Contains(s.signedHeaders, "host") || !strings.Contains(s.signedHeaders, "x-amz-date") {
				t.Errorf("signed headers %q", s.signedHeaders)
			}
			if strings.Contains(s.signedHeaders, "user-agent") || strings.Contains(s.signedHeaders, "accept-encoding") {
				t.Errorf("headers that transports rewrite are signed: %q", s.signedHeaders)
			}
			if s.sentSig == "" || s.handSig != s.sentSig || s.sdkSig != s.sentSig {
				t.Errorf("signature %q; recomputed by hand %q, by the SDK %q", s.sentSig, s.handSig, s.sdkSig)
			}
			if !strings.Contains(s.header.Get("Authorization"), "/us-east-1/lambda/aws4_request") {
				t.Errorf("scope: %q", s.header.Get("Authorization"))
			}
			for k, want := range tc.wantHeaders {
				if got := s.header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func equalHeader(a, b http.Header) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// A tampered body no longer matches the signed hash: the recompute fails.
func TestSignatureCoversBody(t *testing.T) {
	rec, srv := newStage(t)
	var tampered bool
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if tampered {
			b, _ := io.ReadAll(r.Body)
			b = bytes.Replace(b, []byte("gpt-4o-mini"), []byte("gpt-4o-MAXI"), 1)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	hc := &http.Client{Transport: New(Config{URL: srv.URL, Region: "eu-west-1", Credentials: static(testAKID, testSecret, ""), Base: base})}
	for _, tampered = range []bool{false, true} {
		resp, err := hc.Post("http://x/v1/chat/completions", "application/json", strings.NewReader(`{"model":"gpt-4o-mini"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		s := rec.last(t)
		sum := sha256.Sum256(s.body)
		hashOK := s.header.Get("X-Amz-Content-Sha256") == hex.EncodeToString(sum[:])
		if hashOK == tampered {
			t.Errorf("tampered=%v: body hash matches=%v", tampered, hashOK)
		}
		if s.handSig != s.sentSig {
			t.Errorf("tampered=%v: the headers' signature must still verify", tampered)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The stage's SSE stream reaches the caller chunk by chunk, byte for byte.
func TestStreamPassesThrough(t *testing.T) {
	rec, srv := newStage(t)
	events := []string{"data: {\"n\":1}\n\n", "data: {\"n\":2}\n\n", "data: [DONE]\n\n"}
	next := make(chan struct{})
	rec.handle = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Wrapi-Request-Id", "req_1")
		for i, e := range events {
			if i > 0 {
				<-next // the client must have read the previous event
			}
			io.WriteString(w, e)
			w.(http.Flusher).Flush()
		}
	}
	hc := &http.Client{Transport: New(Config{URL: srv.URL, Region: "us-east-1", Credentials: static(testAKID, testSecret, "")}), Timeout: 10 * time.Second}
	resp, err := hc.Post("https://api.openai.com/v1/chat/completions", "application/json", strings.NewReader(`{"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Wrapi-Request-Id") != "req_1" {
		t.Errorf("headers not passed through: %v", resp.Header)
	}
	br := bufio.NewReader(resp.Body)
	var got strings.Builder
	for i := range events {
		line, err := br.ReadString('\n')
		blank, _ := br.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		got.WriteString(line + blank)
		if i < len(events)-1 {
			next <- struct{}{}
		}
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 || got.String() != strings.Join(events, "") {
		t.Errorf("stream = %q + %q", got.String(), rest)
	}
}

// Credentials that expire are fetched again: the second request is signed
// with the new ones.
func TestExpiredCredentialsRefreshed(t *testing.T) {
	rec, srv := newStage(t)
	var calls atomic.Int32
	prov := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		n := calls.Add(1)
		akid := fmt.Sprintf("ASIAGEN%d", n)
		rec.mu.Lock()
		rec.secret[akid] = "secret-" + akid
		rec.mu.Unlock()
		return aws.Credentials{AccessKeyID: akid, SecretAccessKey: "secret-" + akid, SessionToken: "tok" + akid,
			CanExpire: true, Expires: time.Now().Add(300 * time.Millisecond)}, nil
	})
	hc := &http.Client{Transport: New(Config{URL: srv.URL, Region: "us-east-1", Credentials: prov})}
	send := func() seen {
		resp, err := hc.Post("https://api.openai.com/v1/embeddings", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return rec.last(t)
	}
	a, b := send(), send() // cached: one retrieval
	time.Sleep(400 * time.Millisecond)
	c := send()
	akid := func(s seen) string {
		return strings.SplitN(strings.TrimPrefix(s.header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="), "/", 2)[0]
	}
	if akid(a) != "ASIAGEN1" || akid(b) != "ASIAGEN1" || akid(c) != "ASIAGEN2" || calls.Load() != 2 {
		t.Fatalf("keys %s, %s, %s after %d retrievals; want the cached key twice, then a fresh one", akid(a), akid(b), akid(c), calls.Load())
	}
	if c.header.Get("X-Amz-Security-Token") != "tokASIAGEN2" || c.handSig != c.sentSig {
		t.Errorf("the refreshed request is not signed with the new credentials")
	}
}

func TestCredentialErrorsAndLimits(t *testing.T) {
	_, srv := newStage(t)
	failing := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no SSO session: run aws sso login")
	})
	hc := &http.Client{Transport: New(Config{URL: srv.URL, Region: "us-east-1", Credentials: failing})}
	_, err := hc.Post("https://api.openai.com/v1/embeddings", "application/json", strings.NewReader(`{}`))
	if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), "aws sso login") {
		t.Errorf("credential error: %v", err)
	}
	hc = &http.Client{Transport: New(Config{URL: srv.URL, Region: "us-east-1", Credentials: static(testAKID, testSecret, "")})}
	big := bytes.Repeat([]byte("x"), MaxBody+1)
	_, err = hc.Post("https://api.openai.com/v1/embeddings", "application/json", bytes.NewReader(big))
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("7 MB body: %v", err)
	}
	// Unknown length (a pipe): caught while reading.
	pr, pw := io.Pipe()
	go func() { pw.Write(big); pw.Close() }()
	_, err = hc.Post("https://api.openai.com/v1/embeddings", "application/json", pr)
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("streamed 6 MB+1 body: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	creds := static(testAKID, testSecret, "")
	for _, tc := range []struct {
		cfg        Config
		wantErr    []string
		wantRegion string
	}{
		{Config{URL: "https://abc123.lambda-url.eu-central-1.on.aws", Credentials: creds}, nil, "eu-central-1"},
		{Config{URL: "https://abc123.lambda-url.eu-central-1.on.aws/", Region: "us-east-1", Credentials: creds}, nil, "us-east-1"},
		{Config{URL: "https://proxy.example.com", Credentials: creds}, []string{"region"}, ""},
		{Config{}, []string{"URL is required", "region", "credentials"}, ""},
		{Config{URL: "ftp://x", Region: "r", Credentials: creds, Caching: "yes"}, []string{"not an http(s) URL", "caching"}, ""},
		{Config{URL: "https://x.lambda-url.us-east-1.on.aws?a=b", Credentials: creds}, []string{"query"}, ""},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != (tc.wantErr == nil) {
			t.Errorf("%+v: err = %v", tc.cfg, err)
			continue
		}
		for _, w := range tc.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %v does not mention %q", tc.cfg, err, w)
			}
		}
		tr := New(tc.cfg)
		if err == nil && tr.cfg.Region != tc.wantRegion {
			t.Errorf("%s: region %q, want %q", tc.cfg.URL, tr.cfg.Region, tc.wantRegion)
		}
		if err != nil {
			body := &closeRecorder{Reader: strings.NewReader("{}")}
			req, _ := http.NewRequest("POST", "https://api.openai.com/v1/embeddings", body)
			if _, rerr := tr.RoundTrip(req); rerr == nil || !body.closed {
				t.Errorf("invalid config: RoundTrip err %v, body closed %v", rerr, body.closed)
			}
		}
	}
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }
