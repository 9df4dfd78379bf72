package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/cache"
	"github.com/wrapi-dev/wrapi/pkg/cache/lru"
	"github.com/wrapi-dev/wrapi/pkg/cache/memcached"
	"github.com/wrapi-dev/wrapi/pkg/identity"
	"github.com/wrapi-dev/wrapi/pkg/pricing"
	"github.com/wrapi-dev/wrapi/pkg/proxy"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

// serveConfig is everything `wrapi serve` needs, validated once.
type serveConfig struct {
	listen, upstream, storePath, stage, prices, auth, allow, timezone string
	cacheBackend, memcachedAddr, cacheScope                           string
	cacheDefault                                                      bool
	cacheTTL                                                          time.Duration
	cacheMaxBytes                                                     int64
	requireLimit                                                      bool
	maxBody                                                           int64
	upstreamTimeout, shutdownTimeout                                  time.Duration
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	var c serveConfig
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8787", "address to listen on")
	fs.StringVar(&c.upstream, "upstream", "https://api.openai.com/v1", "OpenAI API base URL")
	sp := storeFlag(fs)
	fs.StringVar(&c.stage, "stage", "local", "stage name this proxy serves")
	fs.StringVar(&c.prices, "prices", "", "price override file (JSON, see pkg/pricing/README.md)")
	fs.StringVar(&c.auth, "auth", "none", "authentication: none (loopback only, user \"local\") or keys (sk-wrapi- virtual keys)")
	fs.StringVar(&c.allow, "allow-unmetered", "", "comma-separated endpoint groups to forward unmetered ("+strings.Join(proxy.UnmeteredGroups, ",")+")")
	fs.StringVar(&c.timezone, "timezone", "UTC", "time zone of daily and monthly budget periods")
	fs.BoolVar(&c.requireLimit, "require-limit", false, "refuse requests that no budget limit covers")
	fs.StringVar(&c.cacheBackend, "cache", "lru", "response cache: lru (in-process), memcached or off")
	fs.StringVar(&c.memcachedAddr, "memcached", "127.0.0.1:11211", "memcached address(es), comma-separated (--cache memcached)")
	fs.BoolVar(&c.cacheDefault, "cache-default", true, "cache requests that do not send openai-proxy-caching")
	fs.DurationVar(&c.cacheTTL, "cache-ttl", 24*time.Hour, "how long cached responses live")
	fs.StringVar(&c.cacheScope, "cache-scope", "project", "who shares cached responses: project, user or stage")
	fs.Int64Var(&c.cacheMaxBytes, "cache-max-bytes", 256<<20, "memory budget of the in-process cache")
	fs.Int64Var(&c.maxBody, "max-body", proxy.DefaultMaxBody, "maximum request body in bytes")
	fs.DurationVar(&c.upstreamTimeout, "upstream-timeout", 10*time.Minute, "maximum duration of one upstream call, streams included")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 2*time.Minute, "how long SIGINT/SIGTERM waits for in-flight requests")
	if err := parse(fs, args); err != nil {
		return err
	}
	c.storePath = *sp
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return serve(ctx, c, stdout, logger, nil)
}

// serve runs the proxy until ctx ends. ready, if non-nil, receives the
// bound address (tests listen on :0).
func serve(ctx context.Context, c serveConfig, stdout io.Writer, logger *slog.Logger, ready chan<- string) error {
	var errs []error
	up, err := url.Parse(c.upstream)
	if err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Host == "" {
		errs = append(errs, fmt.Errorf("%w: --upstream %q is not an http(s) URL", errUsage, c.upstream))
	}
	loc, err := time.LoadLocation(c.timezone)
	if err != nil {
		errs = append(errs, fmt.Errorf("%w: --timezone: %v", errUsage, err))
	}
	if c.auth != "none" && c.auth != "keys" {
		errs = append(errs, fmt.Errorf("%w: --auth must be none or keys", errUsage))
	}
	if c.auth == "none" && !isLoopback(c.listen) {
		errs = append(errs, fmt.Errorf("%w: --auth none is only allowed on a loopback address (got %s); use --auth keys", errUsage, c.listen))
	}
	prices := pricing.Default()
	if c.prices != "" {
		f, err := os.Open(c.prices)
		if err != nil {
			errs = append(errs, fmt.Errorf("--prices: %w", err))
		} else {
			prices, err = prices.Override(f)
			f.Close()
			if err != nil {
				errs = append(errs, fmt.Errorf("--prices %s: %w", c.prices, err))
			}
		}
	}
	var allow []string
	for _, g := range strings.Split(c.allow, ",") {
		if g = strings.TrimSpace(g); g != "" {
			allow = append(allow, g)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	key := os.Getenv("OPENAI_API_KEY")
	if key == "" {
		logger.Warn("OPENAI_API_KEY is not set: upstream calls will be refused by OpenAI (401)")
	}
	st, err := openStore(ctx, c.storePath)
	if err != nil {
		return err
	}
	defer st.Close()
	respCache, err := openCache(ctx, c, st)
	if err != nil {
		return err
	}
	var auth identity.Authenticator = identity.None{User: "local"}
	if c.auth == "keys" {
		auth = identity.Keys{Store: st}
	}
	h, err := proxy.New(proxy.Config{
		Stage: c.stage, Upstream: up, APIKey: key,
		Organization: os.Getenv("OPENAI_ORG_ID"), Project: os.Getenv("OPENAI_PROJECT_ID"),
		Prices: prices, Store: st, Auth: auth, AllowUnmetered: allow, MaxBody: c.maxBody,
		RequireLimit: c.requireLimit, Location: loc, UpstreamTimeout: c.upstreamTimeout, Logger: logger,
		Cache: respCache, CacheDefault: c.cacheDefault, CacheTTL: c.cacheTTL, CacheScope: c.cacheScope,
	})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	srv := newServer(h, logger)
	base := "http://" + ln.Addr().String() + "/v1"
	fmt.Fprintf(stdout, "wrapi: stage %q serving at %s (store %s, cache %s, prices %s) — point an OpenAI SDK at it: export OPENAI_BASE_URL=%s\n",
		c.stage, base, c.storePath, c.cacheBackend, prices.Version(), base)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	reapCtx, stopReap := context.WithCancel(context.Background())
	defer stopReap()
	go reapLoop(reapCtx, st, logger)

	err = serveUntil(ctx, srv, ln, c.shutdownTimeout, logger)
	h.Wait() // settle and record everything that was answered
	return err
}

type reaper interface {
	ReleaseExpired(ctx context.Context, now time.Time) (int, error)
}

func reapLoop(ctx context.Context, st reaper, logger *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := st.ReleaseExpired(ctx, time.Now()); err != nil {
				logger.Error("releasing expired reservations failed", "err", err)
			} else if n > 0 {
				logger.Warn("released expired budget reservations", "count", n)
			}
		}
	}
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// openCache builds the response cache. Its flush generations live in the
// store file, so `wrapi cache flush` from another process reaches it.
func openCache(ctx context.Context, c serveConfig, st *sqlite.Store) (*cache.Cache, error) {
	var b cache.Backend
	switch c.cacheBackend {
	case "off", "":
		return nil, nil
	case "lru":
		b = lru.New(lru.Config{MaxBytes: c.cacheMaxBytes})
	case "memcached":
		mc, err := memcached.New(memcached.Config{Servers: strings.Split(c.memcachedAddr, ",")})
		if err != nil {
			return nil, fmt.Errorf("%w: --memcached: %v", errUsage, err)
		}
		b = mc
	default:
		return nil, fmt.Errorf("%w: --cache must be lru, memcached or off", errUsage)
	}
	gens, err := st.CacheGenerations(ctx)
	if err != nil {
		return nil, err
	}
	return cache.New(b, cache.Options{Namespace: c.stage, Generations: gens}), nil
}
