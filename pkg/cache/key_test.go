package cache

import (
	"regexp"
	"testing"
)

func TestKey(t *testing.T) {
	body := []byte(`{"model":"gpt-4o-mini"}`)
	base := Key("dev", "project:ml", "POST", "/v1/chat/completions", body)
	// Pinned: a change here changes every key in every deployed cache, so
	// it must come with a FormatVersion bump.
	const golden = "d3486d3067571680af78395214d9097afdc3f431169adf8e3e16b2148c12c221"
	if base != golden {
		t.Fatalf("Key = %s, want %s", base, golden)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(base) || !validKey(base) {
		t.Fatalf("Key = %q, want lowercase hex SHA-256", base)
	}
	if again := Key("dev", "project:ml", "POST", "/v1/chat/completions", body); again != base {
		t.Fatal("Key is not deterministic")
	}
	others := map[string]string{
		"stage":           Key("prod", "project:ml", "POST", "/v1/chat/completions", body),
		"scope":           Key("dev", "project:ml2", "POST", "/v1/chat/completions", body),
		"scope kind":      Key("dev", "user:ml", "POST", "/v1/chat/completions", body),
		"method":          Key("dev", "project:ml", "GET", "/v1/chat/completions", body),
		"path":            Key("dev", "project:ml", "POST", "/v1/completions", body),
		"body":            Key("dev", "project:ml", "POST", "/v1/chat/completions", []byte(`{"model":"gpt-4o"}`)),
		"no body":         Key("dev", "project:ml", "POST", "/v1/chat/completions", nil),
		"shifted fields":  Key("devproject:ml", "", "POST", "/v1/chat/completions", body),
		"shifted to body": Key("dev", "project:ml", "POST", "", []byte("/v1/chat/completions"+string(body))),
	}
	seen := map[string]string{base: "base"}
	for name, k := range others {
		if prev, dup := seen[k]; dup {
			t.Errorf("%s and %s have the same key", name, prev)
		}
		seen[k] = name
	}
}

func TestValidKey(t *testing.T) {
	k := Key("a", "b", "c", "d", nil)
	tests := map[string]bool{
		k:                 true,
		"":                false,
		k[:63]:            false,
		k + "0":           false,
		k[:63] + "A":      false,
		k[:63] + "g":      false,
		k[:63] + "/":      false,
		"project:ml/" + k: false,
	}
	for in, want := range tests {
		if got := validKey(in); got != want {
			t.Errorf("validKey(%q) = %v, want %v", in, got, want)
		}
	}
}
