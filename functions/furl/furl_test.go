package furl

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wrapi-dev/wrapi/pkg/identity"
)

// The events in testdata follow the documented function URL payload
// (format 2.0) for an IAM-authorized URL.
func TestPrincipalFromEvents(t *testing.T) {
	for _, tc := range []struct {
		file, user, display string
		unauth              bool
	}{
		{"iam-user.json", "alice", "alice", false},
		{"assumed-role.json", "arn:aws:iam::111122223333:role/AWSReservedSSO_Developer_0123456789abcdef", "alice@example.com", false},
		{"no-auth.json", "", "", true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var ev events.LambdaFunctionURLRequest
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Headers["openai-proxy-user"] == "" {
				t.Fatal("fixture should carry a forged openai-proxy-user header")
			}
			p, err := Principal(ev.RequestContext)
			if tc.unauth {
				var ue *identity.ErrUnauthenticated
				if !errors.As(err, &ue) {
					t.Fatalf("want unauthenticated, got %+v, %v", p, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.User != tc.user || p.Display != tc.display {
				t.Errorf("principal = %+v, want user %q display %q (the openai-proxy-user header must be ignored)", p, tc.user, tc.display)
			}
		})
	}
}
