// Package admin holds the operations an administrator runs against a
// stage: limits, usage reports, virtual keys, reservations. The CLI calls
// it on a local store today; the admin Lambda wraps the same functions
// for deployed stages, so both give the same answers.
package admin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/identity"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

// Service runs admin operations on one stage's store.
type Service struct {
	Store    store.Store
	Stage    string
	Location *time.Location // calendar periods (default UTC)
	Now      func() time.Time
	// Cache, when set, is flushed by the cache.flush command.
	Cache CacheFlusher
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// ErrInvalid wraps errors in the caller's input.
var ErrInvalid = errors.New("invalid input")

// SetLimit creates or replaces the limit for (scope, period).
func (s *Service) SetLimit(ctx context.Context, sc budget.Scope, period, usd string) (budget.Limit, error) {
	p, err := budget.ParsePeriod(period)
	if err != nil {
		return budget.Limit{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	amt, err := money.Parse(usd)
	if err != nil {
		return budget.Limit{}, fmt.Errorf("%w: --usd: %v", ErrInvalid, err)
	}
	if sc.Stage == "" {
		sc.Stage = s.Stage
	}
	l, err := budget.NewLimit(sc, p, amt)
	if err != nil {
		return budget.Limit{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return l, s.Store.PutLimit(ctx, l)
}

// DeleteLimit removes the limit for (scope, period).
func (s *Service) DeleteLimit(ctx context.Context, sc budget.Scope, period string) error {
	p, err := budget.ParsePeriod(period)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if sc.Stage == "" {
		sc.Stage = s.Stage
	}
	return s.Store.DeleteLimit(ctx, budget.LimitID(sc.Normalize(), p))
}

// LimitStatus is a limit with its spend in the current window.
type LimitStatus struct {
	budget.Limit
	Window    string      `json:"window"`
	Committed money.Nanos `json:"committed_usd"` // settled + reserved
	Remaining money.Nanos `json:"remaining_usd"`
}

// Limits lists every limit with its current spend.
func (s *Service) Limits(ctx context.Context) ([]LimitStatus, error) {
	ls, err := s.Store.ListLimits(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	checks := make([]budget.Check, len(ls))
	for i, l := range ls {
		checks[i] = budget.Check{Limit: l, Window: l.Period.WindowAt(now, s.Location)}
	}
	if checks, err = s.Store.Committed(ctx, checks); err != nil {
		return nil, err
	}
	out := make([]LimitStatus, len(checks))
	for i, c := range checks {
		out[i] = LimitStatus{Limit: c.Limit, Window: c.Window.Key, Committed: c.Committed, Remaining: c.Remaining()}
	}
	return out, nil
}

// Dimensions a usage report can group by.
var Dimensions = []string{"day", "project", "user", "model"}

// UsageQuery selects and groups usage.
type UsageQuery struct {
	store.UsageFilter
	By []string // subset of Dimensions, in output order
}

// UsageLine is one group of a report.
type UsageLine struct {
	Key map[string]string `json:"group"`
	store.UsageRow
}

// Report is a grouped usage report with its grand total.
type Report struct {
	By    []string       `json:"by"`
	Lines []UsageLine    `json:"rows"`
	Total store.UsageRow `json:"total"`
}

// ParseBy validates a comma-separated --by list.
func ParseBy(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for _, d := range strings.Split(s, ",") {
		d = strings.TrimSpace(strings.ToLower(d))
		ok := false
		for _, k := range Dimensions {
			ok = ok || k == d
		}
		if !ok {
			return nil, fmt.Errorf("%w: cannot group by %q (choose from %s)", ErrInvalid, d, strings.Join(Dimensions, ","))
		}
		out = append(out, d)
	}
	return out, nil
}

// Usage groups daily usage rows by q.By.
func (s *Service) Usage(ctx context.Context, q UsageQuery) (Report, error) {
	rows, err := s.Store.DailyUsage(ctx, q.UsageFilter)
	if err != nil {
		return Report{}, err
	}
	return Group(rows, q.By), nil
}

// Group folds daily rows into one line per distinct value of by, sorted
// by those values. Pure, so the dashboard and the CLI share it.
func Group(rows []store.UsageRow, by []string) Report {
	rep := Report{By: by}
	idx := map[string]int{}
	for _, r := range rows {
		key := map[string]string{}
		var parts []string
		for _, d := range by {
			v := map[string]string{"day": r.Day, "project": r.Project, "user": r.User, "model": r.Model}[d]
			key[d] = v
			parts = append(parts, v)
		}
		k := strings.Join(parts, "\x00")
		i, ok := idx[k]
		if !ok {
			i = len(rep.Lines)
			idx[k] = i
			line := UsageLine{Key: key}
			line.Day, line.Project, line.User, line.Model = key["day"], key["project"], key["user"], key["model"]
			rep.Lines = append(rep.Lines, line)
		}
		rep.Lines[i].UsageRow.Add(r)
		rep.Total.Add(r)
	}
	sort.SliceStable(rep.Lines, func(a, b int) bool {
		for _, d := range by {
			if x, y := rep.Lines[a].Key[d], rep.Lines[b].Key[d]; x != y {
				return x < y
			}
		}
		return false
	})
	return rep
}

// CreateKey issues a virtual key; the secret is returned once and never
// stored.
func (s *Service) CreateKey(ctx context.Context, user, project string) (string, store.Key, error) {
	if strings.TrimSpace(user) == "" {
		return "", store.Key{}, fmt.Errorf("%w: a key needs a --user", ErrInvalid)
	}
	secret, k := identity.NewKey(user, project, s.now())
	if err := s.Store.CreateKey(ctx, k); err != nil {
		return "", store.Key{}, err
	}
	return secret, k, nil
}

// ListKeys lists virtual keys (never their secrets).
func (s *Service) ListKeys(ctx context.Context) ([]store.Key, error) { return s.Store.ListKeys(ctx) }

// RevokeKey revokes a key by ID.
func (s *Service) RevokeKey(ctx context.Context, id string) error {
	return s.Store.RevokeKey(ctx, id, s.now())
}

// Reservations lists reservations currently held.
func (s *Service) Reservations(ctx context.Context) ([]store.Reservation, error) {
	return s.Store.Reservations(ctx)
}

// Reap releases expired reservations.
func (s *Service) Reap(ctx context.Context) (int, error) {
	return s.Store.ReleaseExpired(ctx, s.now())
}
