// Package stage turns a Lambda function's environment into wrapi's
// handlers: configuration (validated once, errors joined), AWS clients,
// stores, the response cache and the stage's OpenAI credentials. The
// mains in functions/ stay a few lines long; tests build the same handlers
// on local stores.
package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/wrapi-dev/wrapi/functions/furl"
	"github.com/wrapi-dev/wrapi/functions/internal/secret"
	"github.com/wrapi-dev/wrapi/pkg/admin"
	"github.com/wrapi-dev/wrapi/pkg/cache"
	"github.com/wrapi-dev/wrapi/pkg/identity"
	"github.com/wrapi-dev/wrapi/pkg/proxy"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

// Config is a function's configuration (see functions/README.md).
type Config struct {
	Stage, Table, SecretARN string
	Upstream                *url.URL
	Auth                    string // iam or keys
	RequireLimit            bool
	Location                *time.Location
	Cache                   string // dynamodb, memcached or off
	CacheTable              string
	MemcachedAddr           []string
	CacheDefault            bool
	CacheTTL                time.Duration
	CacheScope              string
	AllowUnmetered          []string
	UpstreamTimeout         time.Duration
	LogLevel                slog.Level
}

func parseBool(name, v string, def bool, errs *[]error) bool {
	if v == "" {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "true", "on", "yes":
		return true
	case "0", "false", "off", "no":
		return false
	}
	*errs = append(*errs, fmt.Errorf("%s=%q is not a boolean", name, v))
	return def
}

// FromEnv reads and validates the configuration.
func FromEnv(getenv func(string) string) (Config, error) {
	var errs []error
	c := Config{
		Stage: getenv("WRAPI_STAGE"), Table: getenv("WRAPI_TABLE"), SecretARN: getenv("WRAPI_SECRET_ARN"),
		Auth: getenv("WRAPI_AUTH"), Cache: getenv("WRAPI_CACHE"), CacheTable: getenv("WRAPI_CACHE_TABLE"),
		CacheScope: getenv("WRAPI_CACHE_SCOPE"),
	}
	if c.Stage == "" {
		errs = append(errs, errors.New("WRAPI_STAGE is required"))
	}
	if c.Table == "" {
		errs = append(errs, errors.New("WRAPI_TABLE is required"))
	}
	up := getenv("WRAPI_UPSTREAM")
	if up == "" {
		up = "https://api.openai.com/v1"
	}
	u, err := url.Parse(up)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("WRAPI_UPSTREAM=%q is not an http(s) URL", up))
	}
	c.Upstream = u
	switch c.Auth {
	case "":
		c.Auth = "iam"
	case "iam", "keys":
	default:
		errs = append(errs, fmt.Errorf("WRAPI_AUTH=%q must be iam or keys", c.Auth))
	}
	c.RequireLimit = parseBool("WRAPI_REQUIRE_LIMIT", getenv("WRAPI_REQUIRE_LIMIT"), true, &errs)
	tz := getenv("WRAPI_TIMEZONE")
	if tz == "" {
		tz = "UTC"
	}
	if c.Location, err = time.LoadLocation(tz); err != nil {
		errs = append(errs, fmt.Errorf("WRAPI_TIMEZONE=%q: %v", tz, err))
	}
	switch c.Cache {
	case "":
		// The reaper has no cache; the proxy and admin functions get
		// WRAPI_CACHE from the infrastructure.
		c.Cache = "off"
	case "dynamodb":
		if c.CacheTable == "" {
			errs = append(errs, errors.New("WRAPI_CACHE_TABLE is required with WRAPI_CACHE=dynamodb"))
		}
	case "memcached":
		for _, a := range strings.Split(getenv("WRAPI_MEMCACHED_ADDR"), ",") {
			if a = strings.TrimSpace(a); a != "" {
				c.MemcachedAddr = append(c.MemcachedAddr, a)
			}
		}
		if len(c.MemcachedAddr) == 0 {
			errs = append(errs, errors.New("WRAPI_MEMCACHED_ADDR is required with WRAPI_CACHE=memcached"))
		}
	case "off":
	default:
		errs = append(errs, fmt.Errorf("WRAPI_CACHE=%q must be dynamodb, memcached or off", c.Cache))
	}
	c.CacheDefault = parseBool("WRAPI_CACHE_DEFAULT", getenv("WRAPI_CACHE_DEFAULT"), false, &errs)
	c.CacheTTL = 24 * time.Hour
	if v := getenv("WRAPI_CACHE_TTL"); v != "" {
		if c.CacheTTL, err = time.ParseDuration(v); err != nil || c.CacheTTL <= 0 {
			errs = append(errs, fmt.Errorf("WRAPI_CACHE_TTL=%q is not a positive duration", v))
		}
	}
	// The proxy function's timeout is 15 minutes at most; an upstream call
	// plus the 2-minute drain after a client disconnect must fit in it.
	c.UpstreamTimeout = 12 * time.Minute
	if v := getenv("WRAPI_UPSTREAM_TIMEOUT"); v != "" {
		if c.UpstreamTimeout, err = time.ParseDuration(v); err != nil || c.UpstreamTimeout <= 0 {
			errs = append(errs, fmt.Errorf("WRAPI_UPSTREAM_TIMEOUT=%q is not a positive duration", v))
		}
	}
	for _, g := range strings.Split(getenv("WRAPI_ALLOW_UNMETERED"), ",") {
		if g = strings.TrimSpace(g); g != "" {
			c.AllowUnmetered = append(c.AllowUnmetered, g)
		}
	}
	if v := getenv("WRAPI_LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("WRAPI_LOG_LEVEL=%q: %v", v, err))
		}
	}
	return c, errors.Join(errs...)
}

// Logger is the functions' JSON logger on stdout (CloudWatch).
func (c Config) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: c.LogLevel}))
}

// Deps are what the handlers run on.
type Deps struct {
	Store store.Store
	Cache *cache.Cache // nil when off
	// Credentials are loaded by the proxy only.
	Credentials secret.OpenAI
}

// ProxyHandler is the proxy as served by the function URL: identity from
// IAM (or virtual keys), bookkeeping finished before the invocation ends,
// and no panic ever escaping (lambdaurl runs the handler in a goroutine,
// where a panic would kill the container).
func (c Config) ProxyHandler(d Deps, logger *slog.Logger) (http.Handler, error) {
	var auth identity.Authenticator = furl.IAM{}
	if c.Auth == "keys" {
		auth = identity.Keys{Store: d.Store}
	}
	h, err := proxy.New(proxy.Config{
		Stage: c.Stage, Upstream: c.Upstream, APIKey: d.Credentials.APIKey,
		Organization: d.Credentials.Organization, Project: d.Credentials.Project,
		Store: d.Store, Auth: auth, AllowUnmetered: c.AllowUnmetered, RequireLimit: c.RequireLimit,
		Location: c.Location, UpstreamTimeout: c.UpstreamTimeout, SyncFinish: true, Logger: logger,
		Cache: d.Cache, CacheDefault: c.CacheDefault, CacheTTL: c.CacheTTL, CacheScope: c.CacheScope,
	})
	if err != nil {
		return nil, err
	}
	return recoverer(h, logger), nil
}

func recoverer(h http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				logger.Error("handler panic", "panic", fmt.Sprint(v))
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// Admin is the admin function's service.
func (c Config) Admin(d Deps) *admin.Service {
	s := &admin.Service{Store: d.Store, Stage: c.Stage, Location: c.Location}
	if d.Cache != nil {
		s.Cache = d.Cache
	}
	return s
}

// AdminHandler is the admin function's Lambda handler: one JSON command
// in, one JSON response out. Errors are typed in the response, so the
// invocation itself succeeds and no stack trace reaches the caller.
func AdminHandler(s *admin.Service) func(context.Context, admin.Request) (admin.Response, error) {
	return func(ctx context.Context, req admin.Request) (admin.Response, error) {
		return s.Do(ctx, req), nil
	}
}

// ReaperHandler is the reaper function's Lambda handler (EventBridge
// schedule): it releases expired reservations.
func ReaperHandler(st store.Budgets, logger *slog.Logger) func(context.Context) (map[string]int, error) {
	return func(ctx context.Context) (map[string]int, error) {
		n, err := st.ReleaseExpired(ctx, time.Now())
		if err != nil {
			logger.Error("releasing expired reservations failed", "err", err)
			return nil, errors.New("releasing expired reservations failed; see the logs")
		}
		if n > 0 {
			logger.Warn("released expired budget reservations", "count", n)
		}
		return map[string]int{"released": n}, nil
	}
}
