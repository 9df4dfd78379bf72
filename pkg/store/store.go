// Package store defines what wrapi persists and the interfaces every
// backend implements: usage records, limits with their budget counters and
// reservations, and virtual keys. Implementations live in sub-packages
// named after what they wrap (sqlite, and dynamo for AWS); the conformance
// suite in storetest runs against each of them.
//
// Contract: a policy outcome (over budget) is a value; an error means the
// store failed, and the proxy then fails closed (503) unless told otherwise.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/meter"
	"github.com/wrapi-dev/wrapi/pkg/money"
)

// ErrNotFound is returned when the named item does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned when an item that must be new already exists.
var ErrConflict = errors.New("store: already exists")

// Record is one request as billed. Written once per request, keyed by ID;
// writing the same ID again changes nothing (the first write wins, so
// retries are idempotent and aggregates never count a request twice).
type Record struct {
	ID             string        `json:"id"`
	Time           time.Time     `json:"time"`
	Stage          string        `json:"stage"`
	Project        string        `json:"project"`
	User           string        `json:"user"`
	KeyID          string        `json:"key_id,omitempty"`
	Endpoint       string        `json:"endpoint"`
	ModelRequested string        `json:"model_requested"`
	ModelServed    string        `json:"model_served,omitempty"`
	ServiceTier    string        `json:"service_tier,omitempty"`
	Status         int           `json:"status"`
	ErrorCode      string        `json:"error_code,omitempty"`
	Usage          meter.Usage   `json:"usage"`
	Cost           money.Nanos   `json:"cost_usd"`
	Reserved       money.Nanos   `json:"reserved_usd"`
	Saved          money.Nanos   `json:"saved_usd"`
	CacheHit       bool          `json:"cache_hit,omitempty"`
	PriceVersion   string        `json:"price_version,omitempty"`
	Latency        time.Duration `json:"latency_ns"`
	Stream         bool          `json:"stream,omitempty"`
	Estimated      bool          `json:"estimated,omitempty"`
}

// IsError reports whether the record is a failed request (any non-2xx).
func (r Record) IsError() bool { return r.Status < 200 || r.Status > 299 }

// UsageFilter narrows a usage query. Empty strings match everything; Since
// is inclusive and Until exclusive (zero means unbounded).
type UsageFilter struct {
	Since, Until time.Time
	Project      string
	User         string
	Model        string
}

// UsageRow is the aggregate of one (day, project, user, model). Days are
// UTC calendar days "2006-01-02". Model is the model requested.
type UsageRow struct {
	Day       string      `json:"day"`
	Project   string      `json:"project"`
	User      string      `json:"user"`
	Model     string      `json:"model"`
	Requests  int64       `json:"requests"`
	Errors    int64       `json:"errors"`
	CacheHits int64       `json:"cache_hits"`
	Estimated int64       `json:"estimated"`
	Usage     meter.Usage `json:"usage"`
	Cost      money.Nanos `json:"cost_usd"`
	Saved     money.Nanos `json:"saved_usd"`
}

// Add folds r into the row's totals.
func (u *UsageRow) Add(r UsageRow) {
	u.Requests += r.Requests
	u.Errors += r.Errors
	u.CacheHits += r.CacheHits
	u.Estimated += r.Estimated
	u.Usage = u.Usage.Add(r.Usage)
	u.Cost += r.Cost
	u.Saved += r.Saved
}

// Usage stores request records and answers aggregate queries by day.
type Usage interface {
	// Record stores r and adds it to the daily aggregates, exactly once
	// per r.ID.
	Record(ctx context.Context, r Record) error
	// DailyUsage returns one row per (day, project, user, model) in f.
	DailyUsage(ctx context.Context, f UsageFilter) ([]UsageRow, error)
	// Records returns individual records in f, most expensive first, at
	// most limit of them (for "top requests").
	Records(ctx context.Context, f UsageFilter, limit int) ([]Record, error)
}

// Limits stores budget limits.
type Limits interface {
	// PutLimit creates or replaces the limit with l.ID.
	PutLimit(ctx context.Context, l budget.Limit) error
	// DeleteLimit removes a limit; ErrNotFound if there is none.
	DeleteLimit(ctx context.Context, id string) error
	// ListLimits returns every limit, in ID order.
	ListLimits(ctx context.Context) ([]budget.Limit, error)
}

// Reservation is money held against counters while a request is in
// flight.
type Reservation struct {
	ID      string              `json:"id"` // the request ID
	Checks  []budget.Check      `json:"-"`
	Keys    []budget.CounterKey `json:"counters"`
	Amount  money.Nanos         `json:"usd"`
	Created time.Time           `json:"created"`
	Expires time.Time           `json:"expires"`
	State   string              `json:"state"`
}

// Reservation states.
const (
	Reserved = "reserved"
	Settled  = "settled"
	Released = "released"
	Expired  = "expired"
)

// Budgets keeps the counters of limits and the reservations against them.
// Every method is atomic; Settle and Release are idempotent per ID.
type Budgets interface {
	// Reserve adds r.Amount to the counter of every check in r.Checks if
	// and only if each one still affords it under its limit's current
	// amount; otherwise it changes nothing. The decision is returned as a
	// value; a nil error with Decision.OK false is a refusal.
	Reserve(ctx context.Context, r Reservation) (budget.Decision, error)
	// Committed fills in Committed for each check from its counter.
	Committed(ctx context.Context, checks []budget.Check) ([]budget.Check, error)
	// Settle replaces reservation id's amount with actual on its
	// counters. Settling twice counts once. Settling a reservation the
	// reaper already expired adds actual to the counters (the money was
	// spent). An unknown id is ErrNotFound.
	Settle(ctx context.Context, id string, actual money.Nanos) error
	// Release returns reservation id's amount to its counters, once.
	Release(ctx context.Context, id string) error
	// Reservations lists reservations still held.
	Reservations(ctx context.Context) ([]Reservation, error)
	// ReleaseExpired releases every held reservation that expired at or
	// before now, returning how many.
	ReleaseExpired(ctx context.Context, now time.Time) (int, error)
}

// Key is a virtual API key (sk-wrapi-…). Only its hash is stored.
type Key struct {
	ID      string     `json:"id"`
	Hash    string     `json:"-"`
	Prefix  string     `json:"prefix"` // first characters, to recognise it
	User    string     `json:"user"`
	Project string     `json:"project,omitempty"` // bound project, "" for any
	Created time.Time  `json:"created"`
	Revoked *time.Time `json:"revoked,omitempty"`
}

// Keys stores virtual keys.
type Keys interface {
	CreateKey(ctx context.Context, k Key) error
	// KeyByHash finds a key by its hash; ErrNotFound if none (revoked keys
	// are returned with Revoked set).
	KeyByHash(ctx context.Context, hash string) (Key, error)
	ListKeys(ctx context.Context) ([]Key, error)
	// RevokeKey marks a key revoked; ErrNotFound if there is none.
	RevokeKey(ctx context.Context, id string, at time.Time) error
}

// Outcome is how a request's reservation ends.
type Outcome struct {
	// Reservation is the reservation's ID, "" when the request held none.
	Reservation string
	// Release returns the reservation; otherwise it is settled to Actual.
	Release bool
	Actual  money.Nanos
}

// Finisher is implemented by stores that can settle (or release) a
// reservation and write the request's record in one atomic step, one
// commit instead of two. The semantics are those of Settle/Release then
// Record; a reservation that is already final or unknown only skips the
// settlement.
type Finisher interface {
	Finish(ctx context.Context, o Outcome, rec Record) error
}

// Store is everything the proxy and the admin operations need.
type Store interface {
	Usage
	Limits
	Budgets
	Keys
	Close() error
}
