package identity_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/identity"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

func TestFromIAM(t *testing.T) {
	for _, tc := range []struct {
		arn, user, display string
		bad                bool
	}{
		{arn: "arn:aws:iam::111122223333:user/alice", user: "alice", display: "alice"},
		{arn: "arn:aws:iam::111122223333:user/eng/team/bob", user: "bob", display: "bob"},
		{arn: "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Dev_0a1b/alice@example.com",
			user: "arn:aws:iam::111122223333:role/AWSReservedSSO_Dev_0a1b", display: "alice@example.com"},
		{arn: "arn:aws-cn:sts::111122223333:assumed-role/ci/run-42", user: "arn:aws-cn:iam::111122223333:role/ci", display: "run-42"},
		{arn: "arn:aws:iam::111122223333:root", user: "root", display: "root (111122223333)"},
		{arn: "", bad: true},
		{arn: "alice", bad: true},
		{arn: "arn:aws:sts::111122223333:assumed-role/onlyrole", bad: true},
		{arn: "arn:aws:sts::111122223333:federated-user/x", bad: true},
		{arn: "arn:aws:iam::111122223333:user/", bad: true},
	} {
		p, err := identity.FromIAM(tc.arn)
		if tc.bad {
			var ue *identity.ErrUnauthenticated
			if !errors.As(err, &ue) {
				t.Errorf("FromIAM(%q) = %+v, %v; want ErrUnauthenticated", tc.arn, p, err)
			}
			continue
		}
		if err != nil || p.User != tc.user || p.Display != tc.display {
			t.Errorf("FromIAM(%q) = %+v, %v; want user %q display %q", tc.arn, p, err, tc.user, tc.display)
		}
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	secret, k := identity.NewKey("alice", "ml", time.Now())
	if !strings.HasPrefix(secret, identity.KeyPrefix) || len(secret) != len(identity.KeyPrefix)+43 {
		t.Fatalf("secret %q has the wrong shape", secret)
	}
	if k.Hash == secret || strings.Contains(k.Hash, secret[len(identity.KeyPrefix):]) {
		t.Fatal("the stored key must not contain the secret")
	}
	if err := st.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	auth := identity.Keys{Store: st}
	for _, tc := range []struct {
		header string
		ok     bool
	}{
		{"Bearer " + secret, true},
		{"bearer " + secret, true},
		{"", false},
		{"Bearer sk-proj-abc", false},
		{"Bearer " + secret + "x", false},
		{"Basic " + secret, false},
	} {
		r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		p, err := auth.Authenticate(r)
		if tc.ok {
			if err != nil || p.User != "alice" || p.Project != "ml" || p.KeyID != k.ID {
				t.Errorf("%q: got %+v, %v", tc.header, p, err)
			}
			continue
		}
		var ue *identity.ErrUnauthenticated
		if !errors.As(err, &ue) {
			t.Errorf("%q: want ErrUnauthenticated, got %+v, %v", tc.header, p, err)
		} else if strings.Contains(ue.Reason, secret) {
			t.Errorf("error message leaks the key")
		}
	}
	if err := st.RevokeKey(ctx, k.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
	r.Header.Set("Authorization", "Bearer "+secret)
	if _, err := auth.Authenticate(r); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked key accepted or unclear error: %v", err)
	}
}
