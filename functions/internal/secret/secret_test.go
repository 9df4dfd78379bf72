package secret

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// fakeSecretsManager speaks the Secrets Manager JSON protocol.
func fakeSecretsManager(t *testing.T, secretString string, calls *atomic.Int64) *secretsmanager.Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" || !strings.Contains(string(body), "arn:aws:secretsmanager:us-east-1:111122223333:secret:wrapi-dev") {
			w.WriteHeader(400)
			return
		}
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
			w.WriteHeader(403)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		fmt.Fprintf(w, `{"ARN":"arn","Name":"wrapi-dev","SecretString":%q,"VersionId":"v1"}`, secretString)
	}))
	t.Cleanup(srv.Close)
	return secretsmanager.New(secretsmanager.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	})
}

const arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:wrapi-dev"

func TestLoaderFetchesOnceAndCaches(t *testing.T) {
	var calls atomic.Int64
	l := &Loader{Client: fakeSecretsManager(t, `{"api_key":"sk-live-abc","organization":"org-1"}`, &calls), ARN: arn}
	for range 3 {
		v, err := l.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if v.APIKey != "sk-live-abc" || v.Organization != "org-1" {
			t.Fatalf("got %#v", v)
		}
		if s := fmt.Sprintf("%v %+v %#v %s", v, v, v, v); strings.Contains(s, "sk-live-abc") {
			t.Fatalf("formatting the secret prints the key: %s", s)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("Secrets Manager called %d times, want once per container", calls.Load())
	}
}

func TestLoaderRejectsBadSecretsWithoutQuotingThem(t *testing.T) {
	for _, s := range []string{`sk-live-notjson`, `{"api_key":""}`, `{"organization":"org-1"}`} {
		var calls atomic.Int64
		l := &Loader{Client: fakeSecretsManager(t, s, &calls), ARN: arn}
		_, err := l.Get(context.Background())
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: want ErrInvalid, got %v", s, err)
		}
		if err != nil && strings.Contains(err.Error(), "sk-live") {
			t.Errorf("error quotes the secret: %v", err)
		}
		// Failures are not cached.
		l.Get(context.Background())
		if calls.Load() != 2 {
			t.Errorf("%q: a failed load must be retried, calls=%d", s, calls.Load())
		}
	}
}
