// Package dashboard serves `wrapi dashboard`: one web page that shows where
// a stage's money goes, and the JSON (and CSV) endpoints it is drawn from.
//
// Design:
//   - Data comes through Source, a handful of admin operations, so the
//     same page can later serve a deployed stage through its admin Lambda.
//     Usage is read from the daily aggregates and individual requests only
//     with a limit; nothing scans every record.
//   - The page is html/template plus small vanilla JS and CSS embedded in
//     the binary: no CDN, works offline. Charts are SVG drawn by the script.
//   - Money is integer nano-USD (money.Nanos, a decimal string in JSON and
//     CSV). Sums and percentages are computed here with integers; the page
//     only formats the strings.
//   - Read-only unless Config.Admin: then POST endpoints set and delete
//     limits and flush the cache, each behind a same-origin check
//     (http.CrossOriginProtection) and a per-process CSRF token. Without
//     Admin they answer 403. Config.Hosts pins the Host header so a page on
//     another site cannot reach a loopback dashboard by DNS rebinding.
//
// Endpoints (GET unless said; each GET /api/X has a /api/X.csv twin):
//
//	/                     the page
//	/api/summary          totals of the selection and the filter options
//	/api/spend?by=project spend per day stacked by project, user or model
//	/api/breakdown        project → user → model totals
//	/api/limits           limits with spend, held, remaining, level
//	/api/cache            cache hit rate and USD saved, by project
//	/api/errors           errors and budget refusals per day
//	/api/top?n=25         the most expensive requests
//	POST /api/limits/set     {"project","user","model","period","usd"}
//	POST /api/limits/delete  {"project","user","model","period"}
//	POST /api/cache/flush    {"scope": "" | "stage" | "project:P" | "user:U"}
//
// Every GET takes since, until (2006-01-02, until exclusive; default the
// last 30 days), project, user and model.
package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/admin"
	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

//go:embed assets
var assetFS embed.FS

//go:embed page.html
var pageHTML string

// Config configures a Handler.
type Config struct {
	Source Source
	Stage  string
	// Admin enables the POST endpoints. Off, they answer 403.
	Admin bool
	// Hosts lists the Host header values accepted ("127.0.0.1:8790",
	// "localhost:8790"); empty accepts any. Set it whenever the dashboard
	// listens on loopback.
	Hosts []string
	// Now defaults to time.Now (the default range ends today, UTC).
	Now    func() time.Time
	Logger *slog.Logger
}

// Handler is the dashboard's http.Handler.
type Handler struct {
	cfg   Config
	mux   *http.ServeMux
	csrf  string
	page  *template.Template
	cop   *http.CrossOriginProtection
	hosts map[string]bool
}

var _ http.Handler = (*Handler)(nil)

// HeaderCSRF carries the page's CSRF token on POST requests.
const HeaderCSRF = "X-Wrapi-CSRF"

// New builds the handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Source == nil {
		return nil, errors.New("dashboard: Config.Source is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	page, err := template.New("page").Parse(pageHTML)
	if err != nil {
		return nil, fmt.Errorf("dashboard: page template: %w", err)
	}
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return nil, fmt.Errorf("dashboard: csrf token: %w", err)
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), csrf: hex.EncodeToString(tok), page: page,
		cop: http.NewCrossOriginProtection(), hosts: map[string]bool{}}
	for _, host := range cfg.Hosts {
		h.hosts[strings.ToLower(host)] = true
	}
	assets, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, fmt.Errorf("dashboard: assets: %w", err)
	}
	h.mux.HandleFunc("GET /{$}", h.servePage)
	h.mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	for name, v := range map[string]view{
		"summary": h.summary, "spend": h.spend, "breakdown": h.breakdown, "limits": h.limits,
		"cache": h.cache, "errors": h.errorDays, "top": h.top,
	} {
		h.mux.HandleFunc("GET /api/"+name, h.serveView(v, false))
		h.mux.HandleFunc("GET /api/"+name+".csv", h.serveView(v, true))
	}
	h.mux.HandleFunc("POST /api/limits/set", h.adminOnly(h.setLimit))
	h.mux.HandleFunc("POST /api/limits/delete", h.adminOnly(h.deleteLimit))
	h.mux.HandleFunc("POST /api/cache/flush", h.adminOnly(h.flushCache))
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	if len(h.hosts) > 0 && !h.hosts[strings.ToLower(r.Host)] {
		writeError(w, http.StatusMisdirectedRequest, "forbidden", fmt.Sprintf("this dashboard answers only to %s", strings.Join(h.cfg.Hosts, ", ")))
		return
	}
	h.mux.ServeHTTP(w, r)
}

type pageData struct {
	Stage string
	Admin bool
	CSRF  string
}

func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	d := pageData{Stage: h.cfg.Stage, Admin: h.cfg.Admin}
	if h.cfg.Admin {
		d.CSRF = h.csrf
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := h.page.Execute(w, d); err != nil {
		h.cfg.Logger.Error("dashboard: page", "err", err)
	}
}

// view computes one endpoint's JSON value and its CSV table.
type view func(ctx context.Context, q Query, v url.Values) (any, table, error)

func (h *Handler) serveView(v view, asCSV bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		vals := r.URL.Query()
		q, err := parseQuery(vals, h.cfg.Now())
		if err != nil {
			h.fail(w, err)
			return
		}
		val, tab, err := v(r.Context(), q, vals)
		if err != nil {
			h.fail(w, err)
			return
		}
		if asCSV {
			name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/"), ".csv")
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment",
				map[string]string{"filename": fmt.Sprintf("wrapi-%s-%s-%s_%s.csv", h.cfg.Stage, name, q.Since.Format(dayLayout), q.Until.Format(dayLayout))}))
			if err := tab.write(w); err != nil {
				h.cfg.Logger.Warn("dashboard: writing csv", "err", err)
			}
			return
		}
		writeJSON(w, http.StatusOK, val)
	}
}

var allDims = []string{"day", "project", "user", "model"}

// rows reads the daily aggregates in f, one row per (day, project, user,
// model).
func (h *Handler) rows(ctx context.Context, f store.UsageFilter) ([]store.UsageRow, error) {
	rep, err := h.cfg.Source.Usage(ctx, admin.UsageQuery{UsageFilter: f, By: allDims})
	if err != nil {
		return nil, fmt.Errorf("dashboard: usage: %w", err)
	}
	out := make([]store.UsageRow, len(rep.Lines))
	for i, l := range rep.Lines {
		out[i] = l.UsageRow
	}
	return out, nil
}

func (h *Handler) summary(ctx context.Context, q Query, _ url.Values) (any, table, error) {
	// Dimensions are filtered here, not in the store, so the filters can
	// offer every value of the range.
	rows, err := h.rows(ctx, store.UsageFilter{Since: q.Since, Until: q.Until})
	if err != nil {
		return nil, table{}, err
	}
	s := summaryView(h.cfg.Stage, q, rows)
	return s, summaryTable(s), nil
}

func (h *Handler) spend(ctx context.Context, q Query, v url.Values) (any, table, error) {
	by := v.Get("by")
	switch by {
	case "":
		by = "project"
	case "project", "user", "model":
	default:
		return nil, table{}, fmt.Errorf("%w: by=%q (choose project, user or model)", admin.ErrInvalid, by)
	}
	rows, err := h.rows(ctx, q.Filter())
	if err != nil {
		return nil, table{}, err
	}
	s := spendView(q, by, rows)
	return s, spendTable(s), nil
}

func (h *Handler) breakdown(ctx context.Context, q Query, _ url.Values) (any, table, error) {
	rows, err := h.rows(ctx, q.Filter())
	if err != nil {
		return nil, table{}, err
	}
	b := breakdownView(q, rows)
	return b, breakdownTable(b), nil
}

func (h *Handler) limits(ctx context.Context, q Query, _ url.Values) (any, table, error) {
	ls, err := h.cfg.Source.Limits(ctx)
	if err != nil {
		return nil, table{}, fmt.Errorf("dashboard: limits: %w", err)
	}
	rs, err := h.cfg.Source.Reservations(ctx)
	if err != nil {
		return nil, table{}, fmt.Errorf("dashboard: reservations: %w", err)
	}
	l := limitsView(q, ls, rs)
	return l, limitsTable(l), nil
}

func (h *Handler) cache(ctx context.Context, q Query, _ url.Values) (any, table, error) {
	rows, err := h.rows(ctx, q.Filter())
	if err != nil {
		return nil, table{}, err
	}
	c := cacheView(q, rows)
	return c, cacheTable(c), nil
}

func (h *Handler) errorDays(ctx context.Context, q Query, _ url.Values) (any, table, error) {
	rows, err := h.rows(ctx, q.Filter())
	if err != nil {
		return nil, table{}, err
	}
	e, err := errorsView(ctx, h.cfg.Source, q, rows)
	if err != nil {
		return nil, table{}, fmt.Errorf("dashboard: error records: %w", err)
	}
	return e, errorsTable(e), nil
}

// MaxTop bounds /api/top?n=.
const MaxTop = 200

func (h *Handler) top(ctx context.Context, q Query, v url.Values) (any, table, error) {
	n, err := intParam(v, "n", 25, 1, MaxTop)
	if err != nil {
		return nil, table{}, err
	}
	recs, err := h.cfg.Source.TopRecords(ctx, q.Filter(), n)
	if err != nil {
		return nil, table{}, fmt.Errorf("dashboard: top records: %w", err)
	}
	t := topView(q, recs)
	return t, topTable(t), nil
}

// adminOnly guards a POST endpoint: refused (403) unless the dashboard
// runs with --admin, the request is same-origin and carries the page's
// CSRF token; its body must be JSON.
func (h *Handler) adminOnly(next func(ctx context.Context, body *json.Decoder) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.cfg.Admin {
			writeError(w, http.StatusForbidden, "forbidden", "this dashboard is read-only: restart it with --admin to change limits or flush the cache")
			return
		}
		if err := h.cop.Check(r); err != nil {
			writeError(w, http.StatusForbidden, "forbidden", "cross-origin request refused")
			return
		}
		if tok := r.Header.Get(HeaderCSRF); subtle.ConstantTimeCompare([]byte(tok), []byte(h.csrf)) != 1 {
			writeError(w, http.StatusForbidden, "forbidden", "missing or wrong CSRF token: reload the page")
			return
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "invalid_input", "send application/json")
			return
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		res, err := next(r.Context(), dec)
		if err != nil {
			h.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

func decodeBody(dec *json.Decoder, v any) error {
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %v", admin.ErrInvalid, err)
	}
	return nil
}

func limitArgs(a admin.ScopeArgs) (budget.Scope, error) {
	if strings.TrimSpace(a.Period) == "" {
		return budget.Scope{}, fmt.Errorf("%w: period is required (day, month or total)", admin.ErrInvalid)
	}
	return budget.Scope{Project: a.Project, User: a.User, Model: a.Model}, nil
}

func (h *Handler) setLimit(ctx context.Context, dec *json.Decoder) (any, error) {
	var a admin.SetLimitArgs
	if err := decodeBody(dec, &a); err != nil {
		return nil, err
	}
	sc, err := limitArgs(a.ScopeArgs)
	if err != nil {
		return nil, err
	}
	l, err := h.cfg.Source.SetLimit(ctx, sc, a.Period, a.USD)
	if err != nil {
		return nil, err
	}
	h.cfg.Logger.Info("dashboard: limit set", "id", l.ID, "usd", l.Amount.String())
	return map[string]any{"ok": true, "limit": l}, nil
}

func (h *Handler) deleteLimit(ctx context.Context, dec *json.Decoder) (any, error) {
	var a admin.ScopeArgs
	if err := decodeBody(dec, &a); err != nil {
		return nil, err
	}
	sc, err := limitArgs(a)
	if err != nil {
		return nil, err
	}
	if err := h.cfg.Source.DeleteLimit(ctx, sc, a.Period); err != nil {
		return nil, err
	}
	h.cfg.Logger.Info("dashboard: limit deleted", "scope", sc.Normalize().String(), "period", a.Period)
	return map[string]any{"ok": true}, nil
}

// validScope reports whether s names a cache flush scope.
func validScope(s string) bool {
	if s == "" || s == "stage" {
		return true
	}
	for _, p := range []string{"project:", "user:"} {
		if v, ok := strings.CutPrefix(s, p); ok && strings.TrimSpace(v) != "" {
			return true
		}
	}
	return false
}

func (h *Handler) flushCache(ctx context.Context, dec *json.Decoder) (any, error) {
	var a admin.CacheArgs
	if err := decodeBody(dec, &a); err != nil {
		return nil, err
	}
	if !validScope(a.Scope) {
		return nil, fmt.Errorf("%w: scope %q (want \"\" for everything, \"stage\", \"project:NAME\" or \"user:NAME\")", admin.ErrInvalid, a.Scope)
	}
	if err := h.cfg.Source.FlushCache(ctx, a.Scope); err != nil {
		return nil, err
	}
	h.cfg.Logger.Info("dashboard: cache flushed", "scope", a.Scope)
	return map[string]any{"ok": true, "scope": a.Scope}, nil
}

// fail answers err in the admin error shape; store failures are logged
// and shown without detail.
func (h *Handler) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, admin.ErrInvalid):
		writeError(w, http.StatusBadRequest, "invalid_input", err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "not found")
	case errors.Is(err, ErrNoCache):
		writeError(w, http.StatusConflict, "no_cache", "this stage has no response cache")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the store did not answer in time")
	default:
		h.cfg.Logger.Error("dashboard: request failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "the store failed; see the dashboard's log")
	}
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]*admin.ResponseError{"error": {Type: typ, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	_ = enc.Encode(v)
}
