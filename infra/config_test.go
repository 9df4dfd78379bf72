package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// fakeSource is stack configuration as the CLI hands it over: values, and
// which keys are stored encrypted.
type fakeSource struct {
	values map[string]string
	secret []string
}

func (f fakeSource) GetConfig(key string) (string, bool) { v, ok := f.values[key]; return v, ok }
func (f fakeSource) IsConfigSecret(key string) bool      { return slices.Contains(f.secret, key) }

func minimalSource(extra map[string]string) fakeSource {
	v := map[string]string{"aws:region": testRegion, "wrapi:openaiApiKey": fakeKey}
	for k, x := range extra {
		v[k] = x
	}
	return fakeSource{values: v, secret: defaultSecretKeys}
}

func TestParseConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		stage      string
		protection bool
	}{{"dev", false}, {"prod", true}, {"eu-prod", true}, {"production", true}, {"prodigy", false}} {
		c, err := parseConfig(tc.stage, minimalSource(nil))
		if err != nil {
			t.Fatalf("%s: %v", tc.stage, err)
		}
		want := Config{
			Stage: tc.stage, Region: testRegion, OpenAISecret: Redacted(`{"api_key":"` + fakeKey + `"}`),
			Upstream: "https://api.openai.com/v1", Cache: "dynamodb", CacheTTL: 24 * time.Hour, CacheScope: "project",
			RequireLimit: true, TimeZone: "UTC", Auth: "iam", LogRetention: 30, LogLevel: "info",
			Memory: 512, Timeout: 900, CacheNodeType: "cache.t4g.micro", AZs: 2, ArtifactDir: "dist",
			DeletionProtection: tc.protection,
		}
		if !reflect.DeepEqual(c, want) {
			t.Errorf("%s defaults:\n got %#v\nwant %#v", tc.stage, c, want)
		}
	}
}

func TestParseConfigSecretJSON(t *testing.T) {
	c, err := parseConfig("dev", minimalSource(map[string]string{
		"wrapi:openaiOrganization": fakeOrg, "wrapi:openaiProject": "proj_FAKE",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(c.OpenAISecret), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"api_key": fakeKey, "organization": fakeOrg, "project": "proj_FAKE"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("secret JSON %v, want %v", got, want)
	}
	// Printing the config (an error message, a debug log) never shows it.
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(format, c); strings.Contains(s, fakeKey) || strings.Contains(s, fakeOrg) {
			t.Errorf("Sprintf(%q, config) shows a secret: %s", format, s)
		}
	}
}

func TestParseConfigValues(t *testing.T) {
	c, err := parseConfig("dev", minimalSource(map[string]string{
		"wrapi:cache": "memcached", "wrapi:corsOrigins": `["https://app.example.com", "*"]`,
		"wrapi:reservedConcurrency": "10", "wrapi:azs": "3", "wrapi:logRetentionDays": "365",
		"wrapi:upstream": "https://proxy.internal.example/v1/", "wrapi:cacheScope": "user",
		"wrapi:artifactDir": "/tmp/zips", "wrapi:deletionProtection": "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cache != CacheMemcached || c.AZs != 3 || c.LogRetention != 365 || c.CacheScope != "user" ||
		c.ReservedConcurrency == nil || *c.ReservedConcurrency != 10 || c.ArtifactDir != "/tmp/zips" || !c.DeletionProtection {
		t.Errorf("parsed %+v", c)
	}
	if !slices.Equal(c.CORSOrigins, []string{"https://app.example.com", "*"}) {
		t.Errorf("corsOrigins %v", c.CORSOrigins)
	}
	if c.Upstream != "https://proxy.internal.example/v1" {
		t.Errorf("upstream %q: trailing slash kept", c.Upstream)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		key, value string
	}{
		{"wrapi:cache", "redis"},
		{"wrapi:auth", "none"},
		{"wrapi:cacheScope", "global"},
		{"wrapi:logLevel", "trace"},
		{"wrapi:cacheDefault", "maybe"},
		{"wrapi:requireLimit", "yes please"},
		{"wrapi:cacheTtl", "1d"},
		{"wrapi:cacheTtl", "500ms"},
		{"wrapi:timeZone", "Mars/Olympus"},
		{"wrapi:timeZone", "Local"},
		{"wrapi:upstream", "http://api.openai.com/v1"},
		{"wrapi:upstream", "https://user:pw@api.openai.com/v1"},
		{"wrapi:upstream", "api.openai.com"},
		{"wrapi:corsOrigins", "https://app.example.com/path"},
		{"wrapi:corsOrigins", `["https://ok.example.com", 3]`},
		{"wrapi:corsOrigins", "ftp://files.example.com"},
		{"wrapi:allowUnmetered", "Batches!"},
		{"wrapi:logRetentionDays", "31"},
		{"wrapi:logRetentionDays", "0"},
		{"wrapi:memory", "64"},
		{"wrapi:memory", "lots"},
		{"wrapi:timeout", "901"},
		{"wrapi:reservedConcurrency", "0"},
		{"wrapi:cacheNodeType", "t4g.micro"},
		{"wrapi:azs", "0"},
		{"wrapi:azs", "7"},
		{"wrapi:deletionProtection", "sometimes"},
	} {
		_, err := parseConfig("dev", minimalSource(map[string]string{tc.key: tc.value}))
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s=%q: err = %v, want one naming %s", tc.key, tc.value, err, tc.key)
		}
	}
}

func TestParseConfigJoinsErrors(t *testing.T) {
	src := fakeSource{values: map[string]string{
		"wrapi:openaiOrganization": fakeOrg, // plaintext
		"wrapi:cache":              "redis",
		"wrapi:timeout":            "0",
	}}
	_, err := parseConfig("Dev", src)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`stage name "Dev"`,
		"aws:region",
		"pulumi config set --secret wrapi:openaiApiKey",
		"wrapi:openaiOrganization: stored in plaintext",
		"wrapi:cache",
		"wrapi:timeout",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not report %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), fakeOrg) {
		t.Error("the error message shows the plaintext secret")
	}
}

// recordingSource remembers which keys the program reads.
type recordingSource struct {
	fakeSource
	read map[string]bool
}

func (r recordingSource) GetConfig(key string) (string, bool) {
	r.read[key] = true
	return r.fakeSource.GetConfig(key)
}

// The example stack files at the repository root are valid, set only keys
// the program reads, and Pulumi.dev.yaml documents every key it reads.
func TestExampleStackConfigs(t *testing.T) {
	documented := map[string]bool{}
	for _, stage := range []string{"dev", "prod"} {
		raw, err := os.ReadFile(filepath.Join("..", "Pulumi."+stage+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var file struct {
			Config map[string]any `yaml:"config"`
		}
		if err := yaml.Unmarshal(raw, &file); err != nil {
			t.Fatalf("Pulumi.%s.yaml: %v", stage, err)
		}
		values := map[string]string{"wrapi:openaiApiKey": fakeKey}
		for k, v := range file.Config {
			switch x := v.(type) {
			case string:
				values[k] = x
			case []any:
				b, _ := json.Marshal(x) // Pulumi hands a YAML list over as JSON
				values[k] = string(b)
			default:
				values[k] = fmt.Sprint(x)
			}
		}
		src := recordingSource{fakeSource{values: values, secret: defaultSecretKeys}, map[string]bool{}}
		if _, err := parseConfig(stage, src); err != nil {
			t.Errorf("Pulumi.%s.yaml: %v", stage, err)
		}
		for k := range file.Config {
			if !src.read[k] {
				t.Errorf("Pulumi.%s.yaml sets %s, which the program never reads", stage, k)
			}
		}
		if stage == "dev" {
			for _, m := range regexp.MustCompile(`(?:aws|wrapi):[A-Za-z]+`).FindAllString(string(raw), -1) {
				documented[m] = true
			}
			for k := range src.read {
				if !documented[k] {
					t.Errorf("Pulumi.dev.yaml does not document %s", k)
				}
			}
		}
	}
}
