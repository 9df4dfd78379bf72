package proxy

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/cache"
	"github.com/wrapi-dev/wrapi/pkg/meter"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

// Cache states reported in the x-wrapi-cache header.
const (
	CacheHit    = "hit"
	CacheMiss   = "miss"
	CacheBypass = "bypass"
)

// cacheLookupTimeout bounds a cache read: a slow cache is a miss.
const cacheLookupTimeout = 2 * time.Second

// maxCachedBytes caps what one streamed response may accumulate for the
// cache; larger streams are forwarded but not stored.
const maxCachedBytes = 16 << 20

// wantsCache decides whether this request uses the cache: the
// openai-wrapi header openai-proxy-caching (1/0) decides, else
// Cache-Control: no-cache bypasses, else the stage default.
func (h *Handler) wantsCache(r *http.Request) bool {
	if h.cfg.Cache == nil {
		return false
	}
	switch strings.TrimSpace(r.Header.Get(HeaderCaching)) {
	case "1", "true", "on":
		return true
	case "0", "false", "off":
		return false
	}
	for _, v := range r.Header.Values("Cache-Control") {
		if strings.Contains(strings.ToLower(v), "no-cache") || strings.Contains(strings.ToLower(v), "no-store") {
			return false
		}
	}
	return h.cfg.CacheDefault
}

// scopeOf names who may share a cached response with this call.
func (c *call) scopeOf() string {
	switch c.h.cfg.CacheScope {
	case "user":
		return "user:" + c.rec.User
	case "stage":
		return "stage"
	default:
		return "project:" + c.rec.Project
	}
}

// startLookup starts the cache read for this call and returns a function
// that waits for it (nil on a miss, a bypass or an error).
func (c *call) startLookup(w http.ResponseWriter, r *http.Request, body []byte) func() *cache.Entry {
	h := c.h
	none := func() *cache.Entry { return nil }
	if !h.wantsCache(r) {
		w.Header().Set(HeaderCache, CacheBypass)
		return none
	}
	canon, err := cache.Canonical(body)
	if err != nil {
		w.Header().Set(HeaderCache, CacheBypass)
		return none
	}
	c.cacheScope = c.scopeOf()
	c.cacheKey = cache.Key(h.cfg.Stage, c.cacheScope, http.MethodPost, c.route.Endpoint, canon)
	w.Header().Set(HeaderCache, CacheMiss)
	ch := make(chan *cache.Entry, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), cacheLookupTimeout)
		defer cancel()
		e, err := h.cfg.Cache.Get(ctx, c.cacheKey, c.cacheScope)
		if err != nil && !errors.Is(err, cache.ErrMiss) {
			h.log.Warn("cache lookup failed; treating as a miss", "err", err, "request_id", c.rec.ID)
		}
		if err != nil || e.Status != http.StatusOK || e.Stream != c.parsed.Stream {
			e = nil
		}
		ch <- e
	}()
	return func() *cache.Entry { return <-ch }
}

// serveHit replays a cached response and records it at cost 0 with the
// original cost as saved.
func (c *call) serveHit(w http.ResponseWriter, e *cache.Entry) {
	h := c.h
	hdr := w.Header()
	hdr.Set(HeaderCache, CacheHit)
	hdr.Del(HeaderRemaining)
	if e.ContentType != "" {
		hdr.Set("Content-Type", e.ContentType)
	}
	if e.Stream {
		hdr.Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		for _, raw := range e.Events {
			if !c.parsed.IncludeUsage && isUsageOnly(raw) {
				continue
			}
			if _, err := w.Write(raw); err != nil {
				break
			}
			_ = rc.Flush()
		}
	} else {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(e.Body)
	}
	rec := c.rec
	rec.Status = http.StatusOK
	rec.CacheHit = true
	rec.Saved = e.Cost
	rec.Cost = 0
	rec.Reserved = 0
	rec.ModelServed = e.Model
	rec.ServiceTier = e.ServiceTier
	rec.Latency = h.cfg.Now().Sub(c.start)
	h.wg.Add(1)
	run := func() {
		defer h.wg.Done()
		// A reservation made alongside the lookup is returned in the same
		// store step that records the hit.
		c.finishStore(store.Outcome{Release: true}, rec)
	}
	if h.cfg.SyncFinish {
		run()
	} else {
		go run()
	}
}

func isUsageOnly(raw []byte) bool {
	ev, err := meter.NewScanner(bytes.NewReader(raw)).Next()
	return err == nil && meter.IsUsageOnlyChunk(ev)
}

// cacheable reports whether a finished call may be stored.
func (c *call) cacheable(o outcome) bool {
	return c.cacheKey != "" && !c.clamped && o.status == http.StatusOK && o.complete &&
		o.result.Found && o.errCode == ""
}

// store writes a complete response to the cache (after the client has it).
func (c *call) store(o outcome, cost money.Nanos) {
	if !c.cacheable(o) || (o.body == nil && o.raw == nil) {
		return
	}
	e := &cache.Entry{
		Key: c.cacheKey, Scope: c.cacheScope, Status: http.StatusOK, ContentType: o.contentType,
		Body: o.body, Events: o.raw, Stream: o.raw != nil, Usage: o.result.Usage,
		Model: o.result.Model, ServiceTier: o.result.ServiceTier, Cost: cost, Created: c.h.cfg.Now(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.h.cfg.Cache.Put(ctx, e, c.h.cfg.CacheTTL); err != nil {
		c.h.log.Warn("cache write failed", "err", err, "request_id", c.rec.ID)
	}
}
