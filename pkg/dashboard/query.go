package dashboard

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/admin"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

const (
	dayLayout = "2006-01-02"
	// DefaultDays is the range shown when the page names none.
	DefaultDays = 30
	// MaxDays bounds a range so a chart (one bar per day) stays drawable.
	MaxDays = 732
)

// Query is what every view is filtered by: a range of UTC calendar days
// [Since, Until) and optional project, user and model (the stage is the
// store's). It is read from the URL: since, until (2006-01-02, until
// exclusive, as in `wrapi usage`), project, user, model.
type Query struct {
	Since, Until         time.Time
	Project, User, Model string
}

func parseQuery(v url.Values, now time.Time) (Query, error) {
	var q Query
	var errs []error
	day := func(name string) time.Time {
		s := strings.TrimSpace(v.Get(name))
		if s == "" {
			return time.Time{}
		}
		t, err := time.Parse(dayLayout, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s=%q is not a date (2006-01-02)", admin.ErrInvalid, name, s))
		}
		return t
	}
	q.Since, q.Until = day("since"), day("until")
	if q.Until.IsZero() {
		n := now.UTC()
		q.Until = time.Date(n.Year(), n.Month(), n.Day()+1, 0, 0, 0, 0, time.UTC)
	}
	if q.Since.IsZero() {
		q.Since = q.Until.AddDate(0, 0, -DefaultDays)
	}
	if len(errs) == 0 {
		switch days := q.Days(); {
		case days <= 0:
			errs = append(errs, fmt.Errorf("%w: since (%s) must be before until (%s)", admin.ErrInvalid, q.Since.Format(dayLayout), q.Until.Format(dayLayout)))
		case days > MaxDays:
			errs = append(errs, fmt.Errorf("%w: a range spans at most %d days (got %d)", admin.ErrInvalid, MaxDays, days))
		}
	}
	q.Project, q.User, q.Model = strings.TrimSpace(v.Get("project")), strings.TrimSpace(v.Get("user")), strings.TrimSpace(v.Get("model"))
	return q, errors.Join(errs...)
}

// Days is the number of days in the range.
func (q Query) Days() int { return int(q.Until.Sub(q.Since).Hours() / 24) }

// DayList lists every day of the range, gaps included.
func (q Query) DayList() []string {
	out := make([]string, 0, q.Days())
	for d := q.Since; d.Before(q.Until); d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format(dayLayout))
	}
	return out
}

// Filter is the store filter of the query.
func (q Query) Filter() store.UsageFilter {
	return store.UsageFilter{Since: q.Since, Until: q.Until, Project: q.Project, User: q.User, Model: q.Model}
}

// matches reports whether a daily row is inside the query's dimensions
// (the range is applied by the store).
func (q Query) matches(r store.UsageRow) bool {
	return (q.Project == "" || q.Project == r.Project) && (q.User == "" || q.User == r.User) && (q.Model == "" || q.Model == r.Model)
}

func intParam(v url.Values, name string, def, lo, hi int) (int, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: %s=%q must be a whole number from %d to %d", admin.ErrInvalid, name, s, lo, hi)
	}
	return n, nil
}
