// Package identity turns a request into a Principal: who pays for it.
// Identity never comes from a header the client chooses freely: locally it
// is a virtual key (sk-wrapi-…, stored hashed) or the fixed local user on
// a loopback-only server; on Lambda it is the IAM caller from the
// function URL's request context.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/store"
)

// Principal is the authenticated caller.
type Principal struct {
	// User is the budget identity: a virtual key's user, an IAM user name
	// or an assumed role's ARN.
	User string
	// Display is a human name (e.g. the SSO session name); defaults to User.
	Display string
	// KeyID is the virtual key used, if any.
	KeyID string
	// Project, when set, binds the caller to one project.
	Project string
}

// ErrUnauthenticated means the request carries no acceptable identity. Its
// message is safe to show the client.
type ErrUnauthenticated struct{ Reason string }

func (e *ErrUnauthenticated) Error() string { return e.Reason }

// Authenticator identifies the caller of a request.
type Authenticator interface {
	// Authenticate returns the principal, an *ErrUnauthenticated when the
	// request has no valid identity, or another error when the backing
	// store failed.
	Authenticate(r *http.Request) (Principal, error)
}

// None authenticates every request as one fixed user. Only for a server
// listening on loopback (wrapi serve --auth none refuses anything else).
type None struct{ User string }

// Authenticate implements Authenticator.
func (n None) Authenticate(*http.Request) (Principal, error) {
	u := n.User
	if u == "" {
		u = "local"
	}
	return Principal{User: u, Display: u}, nil
}

// KeyPrefix starts every virtual key.
const KeyPrefix = "sk-wrapi-"

// HashKey is the stored form of a virtual key: hex SHA-256. Keys carry 256
// random bits, so a fast hash is enough (no password stretching needed).
func HashKey(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥1.24)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// NewKey makes a virtual key for user (and optionally bound to project).
// It returns the secret, to show once, and the record to store.
func NewKey(user, project string, now time.Time) (secret string, k store.Key) {
	// 43 base62 characters ≈ 256 bits (the modulo bias costs < 1 bit).
	secret = KeyPrefix + randomString(43)
	return secret, store.Key{
		ID:      "key_" + randomString(12),
		Hash:    HashKey(secret),
		Prefix:  secret[:len(KeyPrefix)+4],
		User:    user,
		Project: project,
		Created: now.UTC(),
	}
}

// Keys authenticates with virtual keys sent as "Authorization: Bearer
// sk-wrapi-…" (what every OpenAI SDK sends from OPENAI_API_KEY).
type Keys struct{ Store store.Keys }

// BearerToken returns the token of an Authorization: Bearer header.
func BearerToken(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// Authenticate implements Authenticator.
func (k Keys) Authenticate(r *http.Request) (Principal, error) {
	tok := BearerToken(r)
	if tok == "" {
		return Principal{}, &ErrUnauthenticated{"missing virtual key: send Authorization: Bearer sk-wrapi-… (set OPENAI_API_KEY to your wrapi key)"}
	}
	if !strings.HasPrefix(tok, KeyPrefix) {
		return Principal{}, &ErrUnauthenticated{"invalid virtual key: wrapi keys start with sk-wrapi- (an OpenAI key is never accepted here)"}
	}
	key, err := k.Store.KeyByHash(r.Context(), HashKey(tok))
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, &ErrUnauthenticated{"invalid virtual key"}
	}
	if err != nil {
		return Principal{}, err
	}
	if key.Revoked != nil {
		return Principal{}, &ErrUnauthenticated{"virtual key " + key.Prefix + "… has been revoked"}
	}
	return Principal{User: key.User, Display: key.User, KeyID: key.ID, Project: key.Project}, nil
}

type ctxKey struct{}

// WithPrincipal attaches p to ctx (used by adapters that authenticate
// outside the handler, e.g. the Lambda function URL front).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal attached by WithPrincipal.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}
