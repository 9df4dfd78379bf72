package furl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdaurl"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wrapi-dev/wrapi/pkg/client"
)

const (
	aliceKey    = "AKIAALICEEXAMPLE0001"
	aliceSecret = "alice/secret/EXAMPLEKEY"
	aliceARN    = "arn:aws:iam::111122223333:user/alice"
	roleKey     = "ASIAROLEEXAMPLE00002"
	roleSecret  = "role/secret/EXAMPLEKEY"
	roleToken   = "IQoJb3JpZ2luX2VjEXAMPLETOKEN"
	roleARN     = "arn:aws:sts::111122223333:assumed-role/Developer/alice@example.com"
)

// eventEcho answers with what the function saw: its principal (via the
// IAM authenticator the proxy uses) and its event.
var eventEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	ev, _ := lambdaurl.RequestFromContext(r.Context())
	p, err := IAM{}.Authenticate(r)
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"user": p.User, "err": err != nil, "event": ev, "body": hex.EncodeToString(body), "path": r.URL.Path})
})

func newFront(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	f, err := NewFront(FrontConfig{Handler: h, Region: "us-east-1", Credentials: map[string]Credential{
		aliceKey: {Secret: aliceSecret, ARN: aliceARN},
		roleKey:  {Secret: roleSecret, SessionToken: roleToken, ARN: roleARN},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

func creds(akid, secret, token string) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: token}, nil
	})
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestFrontVerifiesSignatures(t *testing.T) {
	srv := newFront(t, eventEcho)
	tamperBody := rtFunc(func(r *http.Request) (*http.Response, error) {
		b, _ := io.ReadAll(r.Body)
		b = bytes.Replace(b, []byte("mini"), []byte("MAXI"), 1)
		r.Body = io.NopCloser(bytes.NewReader(b))
		return http.DefaultTransport.RoundTrip(r)
	})
	tamperHeader := rtFunc(func(r *http.Request) (*http.Response, error) {
		r.Header.Set("openai-proxy-project", "someone-elses-budget")
		return http.DefaultTransport.RoundTrip(r)
	})
	dropHash := rtFunc(func(r *http.Request) (*http.Response, error) {
		b, _ := io.ReadAll(r.Body)
		b = bytes.Replace(b, []byte("mini"), []byte("MAXI"), 1)
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.Header.Del("X-Amz-Content-Sha256") // the signature still covers the original hash
		return http.DefaultTransport.RoundTrip(r)
	})
	now := time.Now()
	for _, tc := range []struct {
		name     string
		cfg      client.Config
		wantUser string // "" = refused with 403
	}{
		{"good signature, IAM user", client.Config{Credentials: creds(aliceKey, aliceSecret, "")}, "alice"},
		{"good signature, assumed role with session token", client.Config{Credentials: creds(roleKey, roleSecret, roleToken)},
			"arn:aws:iam::111122223333:role/Developer"},
		{"date 4 minutes old is fine", client.Config{Credentials: creds(aliceKey, aliceSecret, ""), Now: func() time.Time { return now.Add(-4 * time.Minute) }}, "alice"},
		{"tampered body", client.Config{Credentials: creds(aliceKey, aliceSecret, ""), Base: tamperBody}, ""},
		{"tampered body, hash header dropped", client.Config{Credentials: creds(aliceKey, aliceSecret, ""), Base: dropHash}, ""},
		{"tampered signed header", client.Config{Credentials: creds(aliceKey, aliceSecret, ""), Project: "ml", Base: tamperHeader}, ""},
		{"wrong secret", client.Config{Credentials: creds(aliceKey, "not-alice's-secret", "")}, ""},
		{"unknown key", client.Config{Credentials: creds("AKIAUNKNOWN000000000", aliceSecret, "")}, ""},
		{"wrong session token", client.Config{Credentials: creds(roleKey, roleSecret, "forged")}, ""},
		{"old date (6 minutes)", client.Config{Credentials: creds(aliceKey, aliceSecret, ""), Now: func() time.Time { return now.Add(-6 * time.Minute) }}, ""},
		{"future date (6 minutes)", client.Config{Credentials: creds(aliceKey, aliceSecret, ""), Now: func() time.Time { return now.Add(6 * time.Minute) }}, ""},
		{"wrong region", client.Config{Credentials: creds(aliceKey, aliceSecret, ""), Region: "eu-west-1"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.URL = srv.URL
			if cfg.Region == "" {
				cfg.Region = "us-east-1"
			}
			hc := &http.Client{Transport: client.New(cfg)}
			req, _ := http.NewRequest("POST", "https://api.openai.com/v1/chat/completions?x=1", strings.NewReader(`{"model":"gpt-4o-mini"}`))
			req.Header.Set("Authorization", "Bearer sk-ignored")
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if tc.wantUser == "" {
				if resp.StatusCode != 403 || string(b) != `{"Message":"Forbidden"}` || resp.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("want 403 {\"Message\":\"Forbidden\"}, got %d %s", resp.StatusCode, b)
				}
				return
			}
			var got struct {
				User string
				Body string
				Path string
			}
			if resp.StatusCode != 200 || json.Unmarshal(b, &got) != nil {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			if got.User != tc.wantUser || got.Body != hex.EncodeToString([]byte(`{"model":"gpt-4o-mini"}`)) || got.Path != "/v1/chat/completions" {
				t.Errorf("function saw %+v", got)
			}
		})
	}
	// Unsigned and malformed requests.
	for _, auth := range []string{"", "Bearer sk-x", "AWS4-HMAC-SHA256 Credential=" + aliceKey + "/x, SignedHeaders=host, Signature=00"} {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader("{}"))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("Authorization %q: %d", auth, resp.StatusCode)
		}
	}
}

// The event is what a function URL sends: payload 2.0, lower-case
// headers, cookies apart, binary bodies in base64, the IAM context of the
// verified key.
func TestFrontEvent(t *testing.T) {
	srv := newFront(t, eventEcho)
	hc := &http.Client{Transport: client.New(client.Config{URL: srv.URL, Region: "us-east-1",
		Credentials: creds(roleKey, roleSecret, roleToken), Project: "ml"})}
	bin := []byte{0x89, 'P', 'N', 'G', 0xff, 0x00}
	req, _ := http.NewRequest("POST", "https://api.openai.com/v1/audio/transcriptions?a=1&a=2", bytes.NewReader(bin))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	req.Header.Set("X-Custom", "v")
	req.AddCookie(&http.Cookie{Name: "c1", Value: "v1"})
	req.AddCookie(&http.Cookie{Name: "c2", Value: "v2"})
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Body  string
		Event struct {
			Version         string            `json:"version"`
			RawPath         string            `json:"rawPath"`
			RawQueryString  string            `json:"rawQueryString"`
			Cookies         []string          `json:"cookies"`
			Headers         map[string]string `json:"headers"`
			Query           map[string]string `json:"queryStringParameters"`
			Body            string            `json:"body"`
			IsBase64Encoded bool              `json:"isBase64Encoded"`
			RC              struct {
				AccountID  string `json:"accountId"`
				RequestID  string `json:"requestId"`
				TimeEpoch  int64  `json:"timeEpoch"`
				Authorizer struct {
					IAM map[string]string `json:"iam"`
				} `json:"authorizer"`
				HTTP map[string]string `json:"http"`
			} `json:"requestContext"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	ev := got.Event
	if ev.Version != "2.0" || ev.RawPath != "/v1/audio/transcriptions" || ev.RawQueryString != "a=1&a=2" || ev.Query["a"] != "1,2" {
		t.Errorf("event basics: %+v", ev)
	}
	if !ev.IsBase64Encoded || ev.Body != base64.StdEncoding.EncodeToString(bin) || got.Body != hex.EncodeToString(bin) {
		t.Errorf("binary body: base64=%v %q; the handler read %q", ev.IsBase64Encoded, ev.Body, got.Body)
	}
	if ev.Headers["x-custom"] != "v" || ev.Headers["openai-proxy-project"] != "ml" || ev.Headers["content-type"] != "multipart/form-data; boundary=x" || ev.Headers["cookie"] != "" {
		t.Errorf("headers: %v", ev.Headers)
	}
	if strings.Join(ev.Cookies, ";") != "c1=v1;c2=v2" {
		t.Errorf("cookies: %v", ev.Cookies)
	}
	iam := ev.RC.Authorizer.IAM
	if iam["userArn"] != roleARN || iam["accessKey"] != roleKey || iam["accountId"] != "111122223333" ||
		!strings.HasPrefix(iam["userId"], "AROA") || !strings.HasSuffix(iam["userId"], ":alice@example.com") || iam["callerId"] != iam["userId"] {
		t.Errorf("iam context: %v", iam)
	}
	if ev.RC.AccountID != "111122223333" || len(ev.RC.RequestID) != 36 || ev.RC.TimeEpoch == 0 {
		t.Errorf("request context: %+v", ev.RC)
	}
	if h := ev.RC.HTTP; h["method"] != "POST" || h["path"] != "/v1/audio/transcriptions" || h["sourceIp"] != "127.0.0.1" {
		t.Errorf("http context: %v", h)
	}
}

// Status, headers and cookies come back as the function set them, and the
// body streams: the client reads each event before the next is written.
func TestFrontStreamsResponse(t *testing.T) {
	next := make(chan struct{})
	srv := newFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		http.SetCookie(w, &http.Cookie{Name: "a", Value: "1"})
		http.SetCookie(w, &http.Cookie{Name: "b", Value: "2"})
		w.WriteHeader(http.StatusCreated)
		for i := range 3 {
			if i > 0 {
				select {
				case <-next:
				case <-time.After(5 * time.Second):
					return // the client never saw the previous event: it was buffered
				}
			}
			io.WriteString(w, "data: "+string(rune('0'+i))+"\n\n")
		}
	}))
	hc := &http.Client{Transport: client.New(client.Config{URL: srv.URL, Region: "us-east-1", Credentials: creds(aliceKey, aliceSecret, "")})}
	resp, err := hc.Post("https://api.openai.com/v1/chat/completions", "application/json", strings.NewReader(`{"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("Content-Type") != "text/event-stream" || len(resp.Cookies()) != 2 {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		br.ReadString('\n')
		if err != nil || line != "data: "+string(rune('0'+i))+"\n" {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		if i < 2 {
			next <- struct{}{}
		}
	}
}

func TestNewFrontValidates(t *testing.T) {
	_, err := NewFront(FrontConfig{Credentials: map[string]Credential{"AKIA": {Secret: "s", ARN: "alice"}}})
	if err == nil || !strings.Contains(err.Error(), "handler") || !strings.Contains(err.Error(), "region") || !strings.Contains(err.Error(), "AKIA") {
		t.Errorf("err = %v", err)
	}
}
