// Package secret reads the stage's OpenAI credentials from AWS Secrets
// Manager once per Lambda container (cold start) and keeps them in memory.
// The values never reach an environment variable, a log line or an error.
package secret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// OpenAI is the secret's JSON: {"api_key":"sk-…","organization":"org-…",
// "project":"proj_…"} (organization and project optional).
type OpenAI struct {
	APIKey       string `json:"api_key"`
	Organization string `json:"organization,omitempty"`
	Project      string `json:"project,omitempty"`
}

// String never prints the key.
func (o OpenAI) String() string { return "secret.OpenAI{api_key:<redacted>}" }

// GoString never prints the key.
func (o OpenAI) GoString() string { return o.String() }

// API is the part of the Secrets Manager client this package uses.
type API interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Loader loads the secret once and caches it.
type Loader struct {
	Client API
	ARN    string

	mu  sync.Mutex
	val *OpenAI
}

// ErrInvalid means the secret exists but does not hold usable credentials.
var ErrInvalid = errors.New("secret: the OpenAI secret is not valid JSON with a non-empty api_key")

// Get returns the credentials, fetching them on first use. A failed fetch
// is not cached, so the next request retries.
func (l *Loader) Get(ctx context.Context) (OpenAI, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.val != nil {
		return *l.val, nil
	}
	out, err := l.Client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &l.ARN})
	if err != nil {
		return OpenAI{}, fmt.Errorf("secret: get %s: %w", l.ARN, err)
	}
	if out.SecretString == nil {
		return OpenAI{}, ErrInvalid
	}
	var v OpenAI
	if err := json.Unmarshal([]byte(*out.SecretString), &v); err != nil {
		// Never wrap the JSON error: it can quote the secret's bytes.
		return OpenAI{}, ErrInvalid
	}
	v.APIKey = strings.TrimSpace(v.APIKey)
	if v.APIKey == "" {
		return OpenAI{}, ErrInvalid
	}
	l.val = &v
	return v, nil
}
