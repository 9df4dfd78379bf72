package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // validate wrapi:timeZone the same way on every machine
)

// Config is a stage's validated settings: the wrapi:* stack configuration
// (Pulumi.<stage>.yaml), read once by parseConfig with every problem
// reported together. Pulumi.dev.yaml at the repository root documents each
// key.
type Config struct {
	Stage  string // the stack name
	Region string // aws:region

	// OpenAISecret is the JSON the proxy reads from Secrets Manager
	// ({"api_key","organization","project"}). It only ever leaves this
	// program wrapped in pulumi.ToSecret.
	OpenAISecret Redacted

	Upstream       string        // wrapi:upstream
	Cache          string        // wrapi:cache: dynamodb, memcached or off
	CacheDefault   bool          // wrapi:cacheDefault
	CacheTTL       time.Duration // wrapi:cacheTtl
	CacheScope     string        // wrapi:cacheScope: project, user or stage
	RequireLimit   bool          // wrapi:requireLimit
	TimeZone       string        // wrapi:timeZone (IANA)
	Auth           string        // wrapi:auth: iam or keys
	CORSOrigins    []string      // wrapi:corsOrigins; empty: no CORS block
	AllowUnmetered []string      // wrapi:allowUnmetered: endpoint groups forwarded unmetered
	LogRetention   int           // wrapi:logRetentionDays
	LogLevel       string        // wrapi:logLevel

	Memory              int  // wrapi:memory, MB, proxy and admin
	Timeout             int  // wrapi:timeout, seconds, proxy
	ReservedConcurrency *int // wrapi:reservedConcurrency, proxy; nil: unreserved

	CacheNodeType string // wrapi:cacheNodeType (memcached only)
	AZs           int    // wrapi:azs: private subnets (memcached only)

	ArtifactDir        string // wrapi:artifactDir: where make build puts the zips
	DeletionProtection bool   // wrapi:deletionProtection; default: prod-like stages
}

// Redacted is a string that prints as [redacted], so a Config in an error
// or a log never shows the OpenAI key.
type Redacted string

func (Redacted) String() string   { return "[redacted]" }
func (Redacted) GoString() string { return "[redacted]" }

// Configuration values the proxy and the infrastructure agree on.
const (
	CacheDynamoDB  = "dynamodb"
	CacheMemcached = "memcached"
	CacheOff       = "off"
	AuthIAM        = "iam"
	AuthKeys       = "keys"

	defaultUpstream = "https://api.openai.com/v1"
)

// CloudWatch Logs accepts only these retention periods (days).
var logRetentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

var groupName = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// configSource is what parseConfig reads: Pulumi's config (key →
// plaintext value, and whether the value is stored encrypted).
type configSource interface {
	GetConfig(key string) (string, bool)
	IsConfigSecret(key string) bool
}

// parseConfig reads and validates the stage's configuration; the error
// joins every problem found, each naming its key.
func parseConfig(stage string, src configSource) (Config, error) {
	c := Config{
		Stage:        stage,
		Upstream:     defaultUpstream,
		Cache:        CacheDynamoDB,
		CacheTTL:     24 * time.Hour,
		CacheScope:   "project",
		RequireLimit: true, // deployed stages refuse unlimited spend by default
		TimeZone:     "UTC",
		Auth:         AuthIAM,
		LogRetention: 30,
		LogLevel:     "info",
		Memory:       512,
		Timeout:      900, // the proxy streams: Lambda's maximum
		// cache.t4g.micro: the smallest Graviton node, ≈ $0.016/h.
		CacheNodeType:      "cache.t4g.micro",
		AZs:                2,
		ArtifactDir:        "dist",
		DeletionProtection: IsProdLike(stage),
	}
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("config %s: %s", key, fmt.Sprintf(format, a...)))
	}
	get := func(key string) (string, bool) {
		v, ok := src.GetConfig(key)
		return strings.TrimSpace(v), ok && strings.TrimSpace(v) != ""
	}
	str := func(key string, dst *string) string {
		if v, ok := get(key); ok {
			*dst = v
		}
		return *dst
	}
	boolean := func(key string, dst *bool) {
		if v, ok := get(key); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad(key, "%q is not true or false", v)
				return
			}
			*dst = b
		}
	}
	integer := func(key string, lo, hi int, dst *int) {
		if v, ok := get(key); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < lo || n > hi {
				bad(key, "%q is not a whole number from %d to %d", v, lo, hi)
				return
			}
			*dst = n
		}
	}
	oneOf := func(key string, dst *string, allowed ...string) {
		if v := str(key, dst); !slices.Contains(allowed, v) {
			bad(key, "%q is not one of %s", v, strings.Join(allowed, ", "))
		}
	}

	if !stageName.MatchString(stage) {
		errs = append(errs, fmt.Errorf("stage name %q must be 1–24 lowercase letters, digits or dashes, starting with a letter (it is part of AWS resource names)", stage))
	}
	if v, ok := get("aws:region"); ok {
		c.Region = v
	} else {
		bad("aws:region", "not set: pulumi config set aws:region us-east-1")
	}

	// Secrets: required to be stored encrypted, so the key never lands in
	// Pulumi.<stage>.yaml in plaintext (and from there in git).
	secret := map[string]string{}
	for _, s := range []struct {
		key, field string
		required   bool
	}{
		{"wrapi:openaiApiKey", "api_key", true},
		{"wrapi:openaiOrganization", "organization", false},
		{"wrapi:openaiProject", "project", false},
	} {
		v, ok := get(s.key)
		switch {
		case !ok && s.required:
			bad(s.key, "not set: pulumi config set --secret %s", s.key)
		case ok && !src.IsConfigSecret(s.key):
			bad(s.key, "stored in plaintext: set it again with pulumi config set --secret %s", s.key)
		case ok:
			secret[s.field] = v
		}
	}
	if b, err := json.Marshal(secret); err == nil {
		c.OpenAISecret = Redacted(b)
	}

	if u, err := url.Parse(str("wrapi:upstream", &c.Upstream)); err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.User != nil {
		bad("wrapi:upstream", "%q is not an https URL without query or credentials", c.Upstream)
	} else {
		c.Upstream = strings.TrimSuffix(c.Upstream, "/")
	}
	oneOf("wrapi:cache", &c.Cache, CacheDynamoDB, CacheMemcached, CacheOff)
	boolean("wrapi:cacheDefault", &c.CacheDefault)
	if v, ok := get("wrapi:cacheTtl"); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			bad("wrapi:cacheTtl", "%q is not a Go duration of at least 1s (e.g. 24h)", v)
		} else {
			c.CacheTTL = d
		}
	}
	oneOf("wrapi:cacheScope", &c.CacheScope, "project", "user", "stage")
	boolean("wrapi:requireLimit", &c.RequireLimit)
	if _, err := time.LoadLocation(str("wrapi:timeZone", &c.TimeZone)); err != nil || c.TimeZone == "Local" {
		bad("wrapi:timeZone", "%q is not an IANA time zone (e.g. UTC, Europe/Madrid)", c.TimeZone)
	}
	oneOf("wrapi:auth", &c.Auth, AuthIAM, AuthKeys)
	if v, ok := get("wrapi:corsOrigins"); ok {
		origins, err := parseList(v)
		if err != nil {
			bad("wrapi:corsOrigins", "%v", err)
		}
		for _, o := range origins {
			if !validOrigin(o) {
				bad("wrapi:corsOrigins", "%q is not * or an origin like https://app.example.com", o)
			}
		}
		c.CORSOrigins = origins
	}
	if v, ok := get("wrapi:allowUnmetered"); ok {
		groups, err := parseList(v)
		if err != nil {
			bad("wrapi:allowUnmetered", "%v", err)
		}
		for _, g := range groups {
			if !groupName.MatchString(g) {
				bad("wrapi:allowUnmetered", "%q is not an endpoint group name (the proxy lists them: batches, fine_tuning, …)", g)
			}
		}
		c.AllowUnmetered = groups
	}
	integer("wrapi:logRetentionDays", 1, 3653, &c.LogRetention)
	if !slices.Contains(logRetentionDays, c.LogRetention) {
		bad("wrapi:logRetentionDays", "%d is not a CloudWatch retention period (%s)", c.LogRetention, joinInts(logRetentionDays))
	}
	oneOf("wrapi:logLevel", &c.LogLevel, "debug", "info", "warn", "error")
	integer("wrapi:memory", 128, 10240, &c.Memory)
	integer("wrapi:timeout", 1, 900, &c.Timeout)
	if _, ok := get("wrapi:reservedConcurrency"); ok {
		n := 0
		integer("wrapi:reservedConcurrency", 1, 100000, &n)
		if n > 0 {
			c.ReservedConcurrency = &n
		}
	}
	if !strings.HasPrefix(str("wrapi:cacheNodeType", &c.CacheNodeType), "cache.") {
		bad("wrapi:cacheNodeType", "%q is not an ElastiCache node type (e.g. cache.t4g.micro)", c.CacheNodeType)
	}
	integer("wrapi:azs", 1, 6, &c.AZs)
	str("wrapi:artifactDir", &c.ArtifactDir)
	boolean("wrapi:deletionProtection", &c.DeletionProtection)

	return c, errors.Join(errs...)
}

// parseList reads a list from config: the JSON array Pulumi stores for a
// YAML list, or a comma-separated string (pulumi config set k "a,b").
func parseList(v string) ([]string, error) {
	if strings.HasPrefix(v, "[") {
		var l []string
		if err := json.Unmarshal([]byte(v), &l); err != nil {
			return nil, fmt.Errorf("not a list of strings: %w", err)
		}
		return l, nil
	}
	var l []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			l = append(l, s)
		}
	}
	return l, nil
}

// validOrigin accepts what a Lambda function URL's CORS AllowOrigins
// accepts: "*" or scheme://host[:port].
func validOrigin(o string) bool {
	if o == "*" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
