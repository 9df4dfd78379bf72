package dashboard

import (
	"context"
	"errors"

	"github.com/wrapi-dev/wrapi/pkg/admin"
	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

// Source is everything the dashboard reads and (with --admin) changes on
// one stage. Each method maps onto one admin operation, so a deployed
// stage can be served later by a Source that sends admin.Requests to the
// stage's admin Lambda; Local serves a store on this machine today.
//
// None of these methods scans every record: usage comes from the daily
// aggregates, individual requests only through TopRecords with a limit.
type Source interface {
	// Usage groups the daily aggregates in q (admin command "usage").
	Usage(ctx context.Context, q admin.UsageQuery) (admin.Report, error)
	// Limits lists every limit with its spend in the current window
	// ("limits.list").
	Limits(ctx context.Context) ([]admin.LimitStatus, error)
	// Reservations lists the money held by requests in flight
	// ("reservations.list").
	Reservations(ctx context.Context) ([]store.Reservation, error)
	// TopRecords returns at most limit records in f, most expensive first
	// (store.Usage.Records).
	TopRecords(ctx context.Context, f store.UsageFilter, limit int) ([]store.Record, error)

	// SetLimit creates or replaces a limit ("limits.set"); errors wrapping
	// admin.ErrInvalid are the caller's.
	SetLimit(ctx context.Context, sc budget.Scope, period, usd string) (budget.Limit, error)
	// DeleteLimit removes a limit ("limits.delete"); store.ErrNotFound if
	// there is none.
	DeleteLimit(ctx context.Context, sc budget.Scope, period string) error
	// FlushCache starts a new cache generation for scope ("" everything,
	// "stage", "project:NAME", "user:NAME"; "cache.flush"); ErrNoCache
	// when the stage has no response cache.
	FlushCache(ctx context.Context, scope string) error
}

// ErrNoCache is returned by FlushCache when the stage has no response cache.
var ErrNoCache = errors.New("dashboard: this stage has no response cache")

// Local is a Source on an admin.Service over a store on this machine
// (`wrapi dashboard --store PATH`). Set Service.Cache to make the cache
// flushable.
type Local struct {
	*admin.Service
}

var _ Source = Local{}

// TopRecords implements Source.
func (l Local) TopRecords(ctx context.Context, f store.UsageFilter, limit int) ([]store.Record, error) {
	return l.Store.Records(ctx, f, limit)
}

// FlushCache implements Source.
func (l Local) FlushCache(ctx context.Context, scope string) error {
	if l.Cache == nil {
		return ErrNoCache
	}
	return l.Cache.Flush(ctx, scope)
}
