// Package proxy is wrapi's OpenAI-compatible http.Handler: the same handler
// serves `wrapi serve` locally and the Lambda function URL in AWS.
//
// For each request: authenticate → classify the route → parse the body once
// → price the model (unknown → 400) → reserve the worst-case cost against
// every matching limit (refusal → 429) → forward with the stage's key,
// streaming every SSE event as it arrives → meter the upstream's own usage
// → settle the reservation to the actual cost and write one record.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/apierror"
	"github.com/wrapi-dev/wrapi/pkg/cache"
	"github.com/wrapi-dev/wrapi/pkg/identity"
	"github.com/wrapi-dev/wrapi/pkg/pricing"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

// Config configures a Handler. Zero values take the documented defaults.
type Config struct {
	// Stage names this deployment ("local", "dev", "prod").
	Stage string
	// Upstream is the OpenAI base URL including /v1.
	Upstream *url.URL
	// APIKey is the upstream key; never logged or returned.
	APIKey string
	// Organization and Project are sent as OpenAI-Organization and
	// OpenAI-Project when set. Clients cannot choose them.
	Organization, Project string
	// Prices is the price table (default pricing.Default()).
	Prices *pricing.Table
	// Store persists records, limits and reservations.
	Store store.Store
	// Auth identifies callers (required).
	Auth identity.Authenticator
	// AllowUnmetered names endpoint groups (see UnmeteredGroups) that are
	// forwarded although they cannot be metered.
	AllowUnmetered []string
	// MaxBody caps request bodies (default 6 MiB, Lambda's payload limit).
	MaxBody int64
	// RequireLimit refuses requests no limit covers.
	RequireLimit bool
	// Location is the time zone of calendar budget periods (default UTC).
	Location *time.Location
	// UpstreamTimeout bounds a whole upstream call, streams included
	// (default 10 minutes).
	UpstreamTimeout time.Duration
	// ReservationTTL is how long a reservation is held before the reaper
	// may release it (default UpstreamTimeout + 5 minutes, so a live
	// request always settles first).
	ReservationTTL time.Duration
	// SyncFinish settles and records before ServeHTTP returns (Lambda: the
	// process may freeze after the handler returns). Otherwise bookkeeping
	// runs after the response, off the client's critical path; Wait
	// blocks until it is done.
	SyncFinish bool
	// Cache answers repeated requests; nil disables caching.
	Cache *cache.Cache
	// CacheDefault caches requests that do not say (openai-proxy-caching
	// header); a request can always opt in or out.
	CacheDefault bool
	// CacheTTL is how long an entry lives (default 24 h).
	CacheTTL time.Duration
	// CacheScope is who shares entries: "project" (default), "user" or
	// "stage".
	CacheScope string
	// Transport is the upstream transport (default: a tuned clone of
	// http.DefaultTransport).
	Transport http.RoundTripper
	// Logger receives operational logs (never keys or prompts).
	Logger *slog.Logger
	// Now is the clock (tests inject one).
	Now func() time.Time
}

// Handler is the proxy.
type Handler struct {
	cfg     Config
	rp      *httputil.ReverseProxy
	log     *slog.Logger
	allowed map[string]bool
	wg      sync.WaitGroup
}

// DefaultMaxBody is Lambda's request payload limit.
const DefaultMaxBody = 6 << 20

// New validates cfg and builds a Handler.
func New(cfg Config) (*Handler, error) {
	var errs []error
	if cfg.Upstream == nil || cfg.Upstream.Scheme == "" || cfg.Upstream.Host == "" {
		errs = append(errs, errors.New("proxy: upstream URL is required (scheme://host/v1)"))
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("proxy: a store is required"))
	}
	if cfg.Auth == nil {
		errs = append(errs, errors.New("proxy: an authenticator is required"))
	}
	if cfg.Stage == "" {
		errs = append(errs, errors.New("proxy: a stage name is required"))
	}
	switch cfg.CacheScope {
	case "":
		cfg.CacheScope = "project"
	case "project", "user", "stage":
	default:
		errs = append(errs, fmt.Errorf("proxy: cache scope %q must be project, user or stage", cfg.CacheScope))
	}
	allowed := map[string]bool{}
	for _, g := range cfg.AllowUnmetered {
		if !isUnmeteredGroup(g) {
			errs = append(errs, fmt.Errorf("proxy: unknown endpoint group %q in allow-unmetered (known: %s)", g, strings.Join(UnmeteredGroups, ", ")))
		}
		allowed[g] = true
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Prices == nil {
		cfg.Prices = pricing.Default()
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = 10 * time.Minute
	}
	if cfg.ReservationTTL <= 0 {
		cfg.ReservationTTL = cfg.UpstreamTimeout + 5*time.Minute
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 256
		t.ResponseHeaderTimeout = 0 // bounded by UpstreamTimeout instead
		cfg.Transport = t
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, allowed: allowed}
	h.rp = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      cfg.Transport,
		FlushInterval:  0, // ReverseProxy flushes event streams and unknown-length bodies at once anyway
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.errorHandler,
		ErrorLog:       slogErrorLog(cfg.Logger),
	}
	return h, nil
}

// Wait blocks until every response's bookkeeping (settle, record) is done.
func (h *Handler) Wait() { h.wg.Wait() }

// Prices returns the price table in use.
func (h *Handler) Prices() *pricing.Table { return h.cfg.Prices }

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

// Header names wrapi reads or sets.
const (
	HeaderProject   = "openai-proxy-project"
	HeaderCaching   = "openai-proxy-caching"
	HeaderStaging   = "openai-proxy-staging"
	HeaderRequestID = "x-wrapi-request-id"
	HeaderRemaining = "x-wrapi-budget-remaining"
	HeaderCache     = "x-wrapi-cache"
	// DefaultProject is the project of requests that name none, as in
	// openai-wrapi.
	DefaultProject = "N/A"
)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := newID()
	w.Header().Set(HeaderRequestID, id)
	rt := Classify(r.Method, r.URL.Path)
	if rt.Kind == Unknown {
		apierror.Write(w, apierror.NotFound(r.URL.Path))
		return
	}
	p, ok := identity.FromContext(r.Context())
	if !ok {
		var err error
		p, err = h.cfg.Auth.Authenticate(r)
		var ue *identity.ErrUnauthenticated
		switch {
		case errors.As(err, &ue):
			apierror.Write(w, apierror.Unauthenticated(ue.Reason))
			return
		case err != nil:
			h.log.Error("authentication store failed", "err", err, "request_id", id)
			apierror.Write(w, apierror.StoreUnavailable())
			return
		}
	}
	if st := r.Header.Get(HeaderStaging); st != "" && st != h.cfg.Stage {
		apierror.Write(w, apierror.StageMismatch(st, h.cfg.Stage))
		return
	}
	project := strings.TrimSpace(r.Header.Get(HeaderProject))
	if p.Project != "" {
		if project != "" && project != p.Project {
			apierror.Write(w, apierror.Forbidden("project_not_allowed",
				fmt.Sprintf("this key is bound to project %q and cannot be used for project %q", p.Project, project)))
			return
		}
		project = p.Project
	}
	if project == "" {
		project = DefaultProject
	}
	switch rt.Kind {
	case Free:
		h.forwardPlain(w, r, rt)
	case Unmetered:
		if !h.allowed[rt.Group] {
			apierror.Write(w, apierror.Forbidden("endpoint_not_allowed",
				fmt.Sprintf("/v1/%s is not metered by wrapi, so this stage does not forward it; "+
					"an admin can allow the %q endpoints (wrapi serve --allow-unmetered %s)", rt.Endpoint, rt.Group, rt.Group)))
			return
		}
		h.forwardPlain(w, r, rt)
	case Metered:
		h.serveMetered(w, r, rt, id, p, project)
	}
}

// forwardPlain forwards a request without metering it.
func (h *Handler) forwardPlain(w http.ResponseWriter, r *http.Request, rt Route) {
	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBody)
	c := &call{h: h, route: rt, plain: true}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.UpstreamTimeout)
	defer cancel()
	h.rp.ServeHTTP(w, r.WithContext(context.WithValue(ctx, callKey{}, c)))
}

// dropHeader reports whether a client header must not reach OpenAI:
// credentials, anything that could redirect or re-attribute the request,
// proxy plumbing, and encodings we must be able to read.
func dropHeader(k string) bool {
	k = strings.ToLower(k)
	switch k {
	case "authorization", "cookie", "host", "forwarded", "x-real-ip", "via",
		"openai-organization", "openai-project", "accept-encoding", "content-length",
		"x-http-method-override", "x-original-url", "x-rewrite-url", "api-key", "x-api-key":
		return true
	}
	for _, p := range []string{"x-forwarded-", "openai-proxy-", "proxy-", "x-amz-", "x-wrapi-"} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

type callKey struct{}

func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	c := pr.In.Context().Value(callKey{}).(*call)
	out := pr.Out
	u := *h.cfg.Upstream
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + c.route.Endpoint
	u.RawPath = ""
	u.RawQuery = pr.In.URL.RawQuery
	u.Fragment = ""
	out.URL = &u
	out.Host = ""
	for k := range out.Header {
		if dropHeader(k) {
			out.Header.Del(k)
		}
	}
	out.Header.Set("Authorization", "Bearer "+h.cfg.APIKey)
	if h.cfg.Organization != "" {
		out.Header.Set("OpenAI-Organization", h.cfg.Organization)
	}
	if h.cfg.Project != "" {
		out.Header.Set("OpenAI-Project", h.cfg.Project)
	}
	if c.body != nil {
		out.Body = io.NopCloser(strings.NewReader(string(c.body)))
		out.ContentLength = int64(len(c.body))
		out.GetBody = nil
	}
	// User-Agent is kept: OpenAI sees the SDK the user runs.
}

func (h *Handler) modifyResponse(resp *http.Response) error {
	c := resp.Request.Context().Value(callKey{}).(*call)
	if c.plain {
		return nil
	}
	return c.wrapResponse(resp)
}

func (h *Handler) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	c, _ := r.Context().Value(callKey{}).(*call)
	var mbe *http.MaxBytesError
	var e *apierror.Error
	switch {
	case errors.As(err, &mbe):
		e = apierror.TooLarge(mbe.Limit)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		e = apierror.UpstreamTimeout()
	default:
		e = apierror.UpstreamUnreachable()
	}
	if c != nil && !c.plain {
		c.transportFailed(e)
	}
	// Never echo err: it can carry the upstream URL.
	h.log.Warn("upstream request failed", "status", e.Status, "code", *e.Code, "err", redact(err))
	apierror.Write(w, e)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// redact keeps the error's kind but drops URLs, which could carry query
// strings the client chose.
func redact(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
		if err == nil {
			return ue.Op
		}
		return ue.Op + ": " + err.Error()
	}
	return err.Error()
}
