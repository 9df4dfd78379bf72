package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/apierror"
	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/identity"
	"github.com/wrapi-dev/wrapi/pkg/meter"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/pricing"
	"github.com/wrapi-dev/wrapi/pkg/request"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

func slogErrorLog(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.Handler(), slog.LevelDebug)
}

// call is one metered request in flight.
type call struct {
	h      *Handler
	route  Route
	plain  bool
	body   []byte // what is sent upstream
	parsed *request.Parsed
	model  pricing.Model
	rec    store.Record
	start  time.Time

	cacheKey   string // "" when this call is not cached
	cacheScope string
	clamped    bool // wrapi set the output bound: never cache the reply

	reserved  bool        // a reservation is held in the store
	bound     money.Nanos // worst-case cost
	remaining money.Nanos // tightest remaining after reservation, or budget.Unlimited

	once sync.Once
}

// minOutputTokens is the smallest output bound worth sending upstream when
// the budget forces a clamp; below it the request is refused instead.
const minOutputTokens = 16

// InputOverheadTokens covers per-request framing tokens that have no bytes
// in the body (reply priming); per-message overhead is covered by the JSON
// keys' own bytes.
const InputOverheadTokens = 16

func (h *Handler) serveMetered(w http.ResponseWriter, r *http.Request, rt Route, id string, p identity.Principal, project string) {
	now := h.cfg.Now()
	c := &call{h: h, route: rt, start: now}
	c.rec = store.Record{
		ID: id, Time: now.UTC(), Stage: h.cfg.Stage, Project: project, User: p.User, KeyID: p.KeyID,
		Endpoint: rt.Endpoint, PriceVersion: h.cfg.Prices.Version(),
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			apierror.Write(w, apierror.TooLarge(mbe.Limit))
			return
		}
		apierror.Write(w, apierror.Malformed("", "could not read the request body"))
		return
	}
	parsed, err := request.Parse(rt.Endpoint, body)
	if err != nil {
		apierror.Write(w, parseError(err))
		return
	}
	c.parsed = parsed
	c.rec.ModelRequested = parsed.Model
	c.rec.Stream = parsed.Stream
	model, ok := h.cfg.Prices.Lookup(parsed.Model)
	if !ok {
		apierror.Write(w, apierror.ModelNotPriced(parsed.Model))
		return
	}
	c.model = model

	// The cache lookup runs alongside the reservation: the first byte
	// waits on one store round trip, not two.
	lookup := c.startLookup(w, r, body)
	e := c.reserve(r.Context(), &body)
	if hit := lookup(); hit != nil {
		// A hit costs nothing, so it is served even when the budget is
		// exhausted; a reservation made meanwhile is returned.
		if e == nil || *e.Code == "budget_exceeded" {
			c.serveHit(w, hit)
			return
		}
	}
	if e != nil {
		c.rec.Status, c.rec.ErrorCode = e.Status, *e.Code
		if e.Status != http.StatusServiceUnavailable {
			h.writeRecord(c.rec)
		}
		apierror.Write(w, e)
		return
	}
	if parsed.Stream && !parsed.IncludeUsage && (rt.Endpoint == "chat/completions" || rt.Endpoint == "completions") {
		if body, err = request.SetIncludeUsage(body); err != nil {
			c.release()
			apierror.Write(w, apierror.Internal())
			return
		}
	}
	c.body = body
	if c.remaining != budget.Unlimited {
		w.Header().Set(HeaderRemaining, c.remaining.String())
	}
	// The upstream call is detached from the client: if the client goes
	// away we keep reading to learn the real usage, bounded by the
	// upstream timeout.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.UpstreamTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, callKey{}, c)
	// Counted from here, not from finish: a client can hold the whole
	// response before the proxy has closed the upstream body, and Wait
	// must still see this call.
	h.wg.Add(1)
	defer func() {
		// ReverseProxy panics with http.ErrAbortHandler when the copy to
		// the client fails; the body's Close has run by then, but make
		// sure a call is always finished exactly once.
		if v := recover(); v != nil {
			c.finish(outcome{status: 499, errCode: "client_disconnected"})
			panic(v)
		}
	}()
	h.rp.ServeHTTP(w, r.WithContext(ctx))
	// ReverseProxy has either called the error handler or closed the body
	// by now; both finish the call. This is only a safety net.
	c.finish(outcome{status: http.StatusBadGateway, errCode: "no_response"})
	if h.cfg.SyncFinish {
		h.Wait()
	}
}

func parseError(err error) *apierror.Error {
	var pe *request.Error
	if !errors.As(err, &pe) {
		return apierror.Malformed("", "the request body is not valid JSON")
	}
	switch pe.Kind {
	case request.KindMissingModel:
		return apierror.MissingModel()
	case request.KindDuplicateKey:
		return apierror.InvalidRequest("duplicate_key", pe.Param, pe.Message)
	case request.KindInvalidField:
		return apierror.InvalidRequest("invalid_value", pe.Param, pe.Message)
	default:
		return apierror.Malformed(pe.Param, pe.Message)
	}
}

// outputField is the body field that bounds output on each endpoint.
func outputField(endpoint string) string {
	switch endpoint {
	case "chat/completions":
		return "max_completion_tokens"
	case "completions":
		return "max_tokens"
	case "responses":
		return "max_output_tokens"
	}
	return ""
}

// reserve computes the worst-case cost and reserves it against every
// matching limit. It may clamp the output bound in *body.
func (c *call) reserve(ctx context.Context, body *[]byte) *apierror.Error {
	h, p, m := c.h, c.parsed, c.model
	// Read on every request: a limit set a moment ago (CLI, dashboard,
	// another Lambda) binds this request.
	limits, err := h.cfg.Store.ListLimits(ctx)
	if err != nil {
		h.log.Error("list limits failed", "err", err, "request_id", c.rec.ID)
		return apierror.StoreUnavailable()
	}
	subj := budget.Subject{Stage: h.cfg.Stage, Project: c.rec.Project, User: c.rec.User, Model: p.Model}
	checks := budget.Checks(limits, subj, c.start, h.cfg.Location)
	if len(checks) == 0 && h.cfg.RequireLimit {
		return apierror.LimitRequired(fmt.Sprintf("no budget limit covers project %q on stage %q, and this stage requires one; "+
			"an admin can set one with: wrapi limits set --project %s --usd 10 --period month", c.rec.Project, h.cfg.Stage, c.rec.Project))
	}
	tier := p.ServiceTier
	input := p.InputBytes + InputOverheadTokens
	if m.ContextWindow > 0 && (p.UnboundedInputs > 0 || input > m.ContextWindow) {
		input = m.ContextWindow
	}
	choices := max(p.Choices, 1)
	var output int64
	field := outputField(c.route.Endpoint)
	switch {
	case field == "":
		output = 0 // embeddings, moderations
	case p.HasMaxOutput:
		output = p.MaxOutputTokens * choices
	default:
		perChoice := m.MaxOutputTokens
		if len(checks) > 0 {
			if checks, err = h.cfg.Store.Committed(ctx, checks); err != nil {
				h.log.Error("read counters failed", "err", err, "request_id", c.rec.ID)
				return apierror.StoreUnavailable()
			}
			afford := m.AffordableOutput(budget.Tightest(checks), input, tier) / choices
			if afford < perChoice {
				if afford < minOutputTokens {
					least := mustBound(m, input, minOutputTokens*choices, tier)
					if d := budget.Decide(least, checks); d.Refused != nil {
						return apierror.BudgetExceeded(budget.RefusalMessage(*d.Refused, least))
					}
					return apierror.BudgetExceeded("budget exceeded: the remaining budget does not afford a useful response")
				}
				perChoice = afford
				c.clamped = true
				nb, err := request.SetTopLevel(*body, field, []byte(strconv.FormatInt(perChoice, 10)))
				if err != nil {
					return apierror.Internal()
				}
				*body = nb
			}
		}
		output = perChoice * choices
	}
	bound, err := m.Bound(input, output, tier)
	if err != nil {
		return apierror.InvalidRequest("request_too_large", "", "the request's worst-case cost cannot be represented")
	}
	c.bound = bound
	c.remaining = budget.Unlimited
	if len(checks) == 0 {
		c.rec.Reserved = bound
		return nil
	}
	d, err := h.cfg.Store.Reserve(ctx, store.Reservation{
		ID: c.rec.ID, Checks: checks, Amount: bound, Created: c.start, Expires: c.start.Add(h.cfg.ReservationTTL),
	})
	if err != nil {
		h.log.Error("reserve failed", "err", err, "request_id", c.rec.ID)
		return apierror.StoreUnavailable()
	}
	if !d.OK {
		return apierror.BudgetExceeded(budget.RefusalMessage(*d.Refused, bound))
	}
	c.reserved = true
	c.rec.Reserved = bound
	c.remaining = d.Remaining
	return nil
}

func mustBound(m pricing.Model, in, out int64, tier string) money.Nanos {
	b, err := m.Bound(in, out, tier)
	if err != nil {
		return money.Nanos(1<<63 - 1)
	}
	return b
}

// release returns the reservation (upstream failed before any spend).
func (c *call) release() {
	if !c.reserved {
		return
	}
	if err := c.h.cfg.Store.Release(context.Background(), c.rec.ID); err != nil {
		c.h.log.Error("release failed; the reaper will release it at expiry", "err", err, "request_id", c.rec.ID)
	}
}

// outcome is how a call ended.
type outcome struct {
	status   int
	result   meter.Result
	errCode  string
	complete bool  // the whole response was read
	events   int64 // SSE events received
	bytes    int64 // body bytes received
	// What the cache stores of a complete reply: the JSON body, or the
	// raw events of a stream (nil when not collected).
	contentType string
	body        []byte
	raw         [][]byte
}

// Estimation rules for responses that never reported usage: English text
// averages about four bytes per token, and OpenAI streams about one token
// per delta event.
const (
	bytesPerTokenEstimate = 4
)

// estimate guesses the usage of a call whose upstream never reported it:
// the prompt at four bytes a token, the output at one token per streamed
// event (or four bytes a token of a JSON body). Records carry
// Estimated=true.
func (c *call) estimate(o outcome) meter.Usage {
	in := (c.parsed.InputBytes + bytesPerTokenEstimate - 1) / bytesPerTokenEstimate
	out := o.events
	if !c.parsed.Stream {
		out = (o.bytes + bytesPerTokenEstimate - 1) / bytesPerTokenEstimate
	}
	if outputField(c.route.Endpoint) == "" {
		out = 0
	}
	return meter.Usage{InputTokens: in, OutputTokens: out}
}

// wrapResponse installs the metering body on a successful upstream
// response, or finishes the call for an upstream error.
func (c *call) wrapResponse(resp *http.Response) error {
	c.rec.Latency = c.h.cfg.Now().Sub(c.start)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The upstream's own error body (OpenAI-shaped) passes through;
		// nothing was spent.
		resp.Body = &finishOnClose{ReadCloser: resp.Body, fn: func() {
			c.finish(outcome{status: resp.StatusCode, errCode: fmt.Sprintf("upstream_%d", resp.StatusCode)})
		}}
		return nil
	}
	ct := resp.Header.Get("Content-Type")
	if isSSE(ct) {
		sb := newSSEBody(c, resp.Body, c.parsed.Stream && !c.parsed.IncludeUsage)
		sb.collect = c.cacheKey != ""
		sb.contentType = ct
		resp.Body = sb
		resp.Header.Del("Content-Length")
	} else {
		jb := newJSONBody(c, resp.Body)
		jb.contentType = ct
		resp.Body = jb
	}
	return nil
}

func isSSE(ct string) bool { return strings.HasPrefix(ct, "text/event-stream") }

// transportFailed finishes a call whose upstream request never got a
// response.
func (c *call) transportFailed(e *apierror.Error) {
	c.rec.Latency = c.h.cfg.Now().Sub(c.start)
	c.finish(outcome{status: e.Status, errCode: *e.Code})
}

// finish settles or releases the reservation and writes the record, once.
// Unless SyncFinish is set it runs in the background.
func (c *call) finish(o outcome) {
	c.once.Do(func() {
		run := func() {
			defer c.h.wg.Done()
			c.settle(o)
		}
		if c.h.cfg.SyncFinish {
			run()
		} else {
			go run()
		}
	})
}

func (c *call) settle(o outcome) {
	h := c.h
	rec := c.rec
	rec.Status = o.status
	rec.ErrorCode = o.errCode
	rec.ModelServed = o.result.Model
	rec.ServiceTier = o.result.ServiceTier
	success := o.status >= 200 && o.status <= 299
	if !success && o.status != 499 {
		c.finishStore(store.Outcome{Release: true}, rec)
		return
	}
	var cost money.Nanos
	switch {
	case o.result.Found:
		m := c.model
		if o.result.Model != "" {
			if served, ok := h.cfg.Prices.Lookup(o.result.Model); ok {
				m = served
			}
		}
		var err error
		if cost, err = m.Cost(o.result.Usage, o.result.ServiceTier); err != nil {
			cost, rec.Estimated = c.bound, true
		}
		rec.Usage = o.result.Usage
	case c.model.Free:
		cost = 0
	default:
		// The upstream never reported usage (stream cut, drain timed
		// out): estimate it and say so. The estimate never exceeds the
		// reservation, so the budget invariant holds.
		rec.Usage, rec.Estimated = c.estimate(o), true
		est, err := c.model.Cost(rec.Usage, o.result.ServiceTier)
		if err != nil || est > c.bound {
			est = c.bound
		}
		cost = est
	}
	rec.Cost = cost
	if cost > c.bound && c.reserved {
		h.log.Warn("actual cost exceeded the reserved worst case", "request_id", rec.ID,
			"reserved", c.bound.String(), "actual", cost.String(), "model", rec.ModelRequested)
	}
	c.finishStore(store.Outcome{Actual: cost}, rec)
	if !rec.Estimated {
		c.store(o, cost)
	}
}

// finishStore settles or releases the call's reservation (if it holds
// one) and writes its record: in one commit when the store can.
func (c *call) finishStore(o store.Outcome, rec store.Record) {
	h := c.h
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c.reserved {
		o.Reservation = rec.ID
	}
	if f, ok := h.cfg.Store.(store.Finisher); ok {
		if err := f.Finish(ctx, o, rec); err != nil {
			h.log.Error("settling and recording failed; the reservation stays held until the reaper releases it", "err", err,
				"request_id", rec.ID, "project", rec.Project, "user", rec.User, "cost", rec.Cost.String())
		}
		return
	}
	if o.Reservation != "" {
		var err error
		if o.Release {
			err = h.cfg.Store.Release(ctx, rec.ID)
		} else {
			err = h.cfg.Store.Settle(ctx, rec.ID, o.Actual)
		}
		if err != nil {
			h.log.Error("settle failed; the reservation stays held until the reaper releases it", "err", err, "request_id", rec.ID)
		}
	}
	h.writeRecord(rec)
}

func (h *Handler) writeRecord(rec store.Record) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.cfg.Store.Record(ctx, rec); err != nil {
		h.log.Error("writing the usage record failed", "err", err, "request_id", rec.ID,
			"project", rec.Project, "user", rec.User, "cost", rec.Cost.String())
	}
}

type finishOnClose struct {
	io.ReadCloser
	fn   func()
	once sync.Once
}

func (f *finishOnClose) Close() error {
	err := f.ReadCloser.Close()
	f.once.Do(f.fn)
	return err
}

// drainTimeout bounds reading the rest of an upstream response after the
// client went away.
const drainTimeout = 2 * time.Minute

// maxJSONBuffer caps how much of a non-streamed body is kept for metering.
const maxJSONBuffer = 64 << 20

// jsonBody passes a JSON body through and meters it at the end.
type jsonBody struct {
	c           *call
	up          io.ReadCloser
	contentType string
	n           int64
	buf         bytes.Buffer
	over        bool
	eof         bool
	err         error
	once        sync.Once
}

func newJSONBody(c *call, up io.ReadCloser) *jsonBody { return &jsonBody{c: c, up: up} }

func (b *jsonBody) Read(p []byte) (int, error) {
	n, err := b.up.Read(p)
	b.n += int64(n)
	if n > 0 && !b.over {
		if b.buf.Len()+n > maxJSONBuffer {
			b.over = true
			b.buf = bytes.Buffer{}
		} else {
			b.buf.Write(p[:n])
		}
	}
	if err == io.EOF {
		b.eof = true
	} else if err != nil {
		b.err = err
	}
	return n, err
}

func (b *jsonBody) Close() error {
	b.once.Do(func() {
		if !b.eof && b.err == nil {
			// The client went away: read the rest to learn the usage.
			_, _ = io.Copy(io.Discard, io.LimitReader(&timedReader{r: b, deadline: time.Now().Add(drainTimeout)}, maxJSONBuffer))
		}
		b.up.Close()
		o := outcome{status: http.StatusOK, complete: b.eof, bytes: b.n}
		if !b.eof {
			o.errCode = "upstream_cut"
		}
		if !b.over {
			if res, err := meter.FromJSON(b.c.route.Endpoint, b.buf.Bytes()); err == nil {
				o.result = res
			}
			if b.c.cacheKey != "" {
				o.contentType, o.body = b.contentType, b.buf.Bytes()
			}
		}
		b.c.finish(o)
	})
	return nil
}

// timedReader stops reading at a deadline (checked between reads).
type timedReader struct {
	r        io.Reader
	deadline time.Time
}

func (t *timedReader) Read(p []byte) (int, error) {
	if time.Now().After(t.deadline) {
		return 0, io.EOF
	}
	return t.r.Read(p)
}

// sseBody forwards an event stream event by event, metering each one and
// dropping the usage-only chunk the proxy asked for on the client's behalf.
type sseBody struct {
	c         *call
	up        io.ReadCloser
	sc        *meter.Scanner
	m         *meter.Stream
	dropUsage bool
	events    int64
	pending   []byte
	batch     []byte // reused buffer behind pending
	// collect keeps a copy of every event for the cache, up to
	// maxCachedBytes.
	collect     bool
	contentType string
	kept        [][]byte
	keptBytes   int
	eof         bool
	err         error
	once        sync.Once
}

func newSSEBody(c *call, up io.ReadCloser, dropUsage bool) *sseBody {
	return &sseBody{c: c, up: up, sc: meter.NewScanner(up), m: meter.NewStream(c.route.Endpoint), dropUsage: dropUsage}
}

func (b *sseBody) Read(p []byte) (int, error) {
	for len(b.pending) == 0 {
		if b.eof {
			return 0, io.EOF
		}
		if b.err != nil {
			return 0, b.err
		}
		ev, err := b.sc.Next()
		if err != nil {
			if err == io.EOF {
				b.eof = true
			} else {
				b.err = err
			}
			continue
		}
		if !b.take(ev) {
			continue
		}
		// Events that already arrived together go out in one write (one
		// flush): keep taking while the scanner holds a complete event,
		// which Next then returns without reading.
		b.batch = append(b.batch[:0], ev.Raw...)
		for len(b.batch) < len(p) && bytes.Contains(b.sc.Buffered(), []byte("\n\n")) {
			ev, err := b.sc.Next()
			if err != nil {
				break
			}
			if b.take(ev) {
				b.batch = append(b.batch, ev.Raw...)
			}
		}
		b.pending = b.batch
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

// take meters one event and reports whether it goes to the client.
func (b *sseBody) take(ev meter.Event) bool {
	b.events++
	b.m.Observe(ev)
	b.keep(ev)
	return !(b.dropUsage && meter.IsUsageOnlyChunk(ev))
}

func (b *sseBody) Close() error {
	b.once.Do(func() {
		if !b.eof && b.err == nil {
			// The client went away mid-stream: keep reading (Lambda keeps
			// running) until the usage event arrives or time runs out.
			deadline := time.Now().Add(drainTimeout)
			for time.Now().Before(deadline) {
				ev, err := b.sc.Next()
				if err != nil {
					b.eof = err == io.EOF
					break
				}
				b.take(ev)
				if b.m.Result().Found {
					break
				}
			}
		}
		b.up.Close()
		o := outcome{status: http.StatusOK, result: b.m.Result(), complete: b.eof, events: b.events}
		if b.collect {
			o.contentType, o.raw = b.contentType, b.kept
		}
		if !b.eof && !o.result.Found {
			o.errCode = "upstream_cut"
		}
		b.c.finish(o)
	})
	return nil
}

// keep copies ev for the cache (the scanner reuses its buffer).
func (b *sseBody) keep(ev meter.Event) {
	if !b.collect {
		return
	}
	b.keptBytes += len(ev.Raw)
	if b.keptBytes > maxCachedBytes {
		b.collect, b.kept = false, nil
		return
	}
	b.kept = append(b.kept, bytes.Clone(ev.Raw))
}
