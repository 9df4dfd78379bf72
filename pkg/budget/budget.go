// Package budget decides whether a request may spend money. It is pure: no
// I/O, no clock. Stores keep limits and counters and apply the decision
// atomically; this package says which counters a request touches, what a
// calendar period is, and whether an amount fits.
//
// # The model
//
// A Limit caps spend for a Scope (stage, project, user, model; each a value
// or "*") over a Period (a calendar day or month, or all time). Each
// (limit, window) pair has a Counter of committed nano-USD: money reserved
// by requests in flight plus money settled by finished ones. A request
// reserves its worst-case cost on every counter whose limit matches it, all
// or none, before it is forwarded; when it finishes, the reservation is
// replaced by the actual cost (never more than the reservation, since the
// worst case bounds it), or released. Because every counter only grows by
// amounts that fit under its cap at the time of the atomic reservation,
// committed spend never exceeds a limit: the overshoot bound is zero as long
// as the worst-case estimate really bounds the actual cost.
package budget

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/money"
)

// Any matches every value of a scope field.
const Any = "*"

// Period is the length of a limit's window.
type Period string

// Periods.
const (
	Day   Period = "day"
	Month Period = "month"
	Total Period = "total"
)

// ParsePeriod validates a period name.
func ParsePeriod(s string) (Period, error) {
	switch p := Period(strings.ToLower(strings.TrimSpace(s))); p {
	case Day, Month, Total:
		return p, nil
	}
	return "", fmt.Errorf("budget: unknown period %q (want day, month or total)", s)
}

// Window is the calendar window of a period containing some instant.
type Window struct {
	// Key names the window: "2026-11-27" (day), "2026-11" (month), "total".
	Key string
	// Start is inclusive, End exclusive; both zero for Total.
	Start, End time.Time
}

// WindowAt returns the window of p that contains t, using calendar days and
// months in loc (UTC when nil). Months have their real length (28–31 days).
func (p Period) WindowAt(t time.Time, loc *time.Location) Window {
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	switch p {
	case Day:
		s := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
		return Window{Key: s.Format("2006-01-02"), Start: s, End: s.AddDate(0, 0, 1)}
	case Month:
		s := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
		return Window{Key: s.Format("2006-01"), Start: s, End: s.AddDate(0, 1, 0)}
	default:
		return Window{Key: "total"}
	}
}

// Scope selects the requests a limit applies to. Each field is a value or
// Any. Stage is always concrete in practice (one store per stage) but kept
// so that limits read the same everywhere.
type Scope struct {
	Stage   string `json:"stage"`
	Project string `json:"project"`
	User    string `json:"user"`
	Model   string `json:"model"`
}

// Subject is what a request is: the concrete values a scope is matched on.
type Subject struct {
	Stage, Project, User, Model string
}

func match(pattern, v string) bool { return pattern == Any || pattern == v }

// Matches reports whether the scope covers s.
func (sc Scope) Matches(s Subject) bool {
	return match(sc.Stage, s.Stage) && match(sc.Project, s.Project) &&
		match(sc.User, s.User) && match(sc.Model, s.Model)
}

// String renders the scope for messages: "project=ml user=* model=gpt-4o".
func (sc Scope) String() string {
	return fmt.Sprintf("stage=%s project=%s user=%s model=%s", sc.Stage, sc.Project, sc.User, sc.Model)
}

// Normalize fills empty fields with Any.
func (sc Scope) Normalize() Scope {
	f := func(s string) string {
		if s = strings.TrimSpace(s); s == "" {
			return Any
		}
		return s
	}
	return Scope{Stage: f(sc.Stage), Project: f(sc.Project), User: f(sc.User), Model: f(sc.Model)}
}

// Limit caps spend in a scope over a period.
type Limit struct {
	// ID is derived from scope and period (see LimitID): setting a limit
	// again for the same scope and period replaces its amount and keeps
	// its counters.
	ID     string      `json:"id"`
	Scope  Scope       `json:"scope"`
	Period Period      `json:"period"`
	Amount money.Nanos `json:"usd"`
}

// LimitID is the stable identity of a (scope, period).
func LimitID(sc Scope, p Period) string {
	esc := func(s string) string { return strings.ReplaceAll(s, "|", "%7C") }
	return strings.Join([]string{esc(sc.Stage), esc(sc.Project), esc(sc.User), esc(sc.Model), string(p)}, "|")
}

// NewLimit validates and builds a limit.
func NewLimit(sc Scope, p Period, amount money.Nanos) (Limit, error) {
	sc = sc.Normalize()
	if _, err := ParsePeriod(string(p)); err != nil {
		return Limit{}, err
	}
	if amount < 0 {
		return Limit{}, fmt.Errorf("budget: limit amount %s is negative", amount)
	}
	return Limit{ID: LimitID(sc, p), Scope: sc, Period: p, Amount: amount}, nil
}

// Matching returns the limits whose scope covers s, in ID order (a fixed
// order, so stores that reserve counter by counter never deadlock or
// starve one another).
func Matching(limits []Limit, s Subject) []Limit {
	var out []Limit
	for _, l := range limits {
		if l.Scope.Matches(s) {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b Limit) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// CounterKey names the counter of one limit in one window.
type CounterKey struct {
	LimitID string `json:"limit_id"`
	Window  string `json:"window"`
}

func (k CounterKey) String() string { return k.LimitID + "@" + k.Window }

// Check is one limit to satisfy, with the counter it is checked on.
type Check struct {
	Limit     Limit
	Window    Window
	Committed money.Nanos // reserved + settled so far in Window
}

// Key is the counter key of the check.
func (c Check) Key() CounterKey { return CounterKey{LimitID: c.Limit.ID, Window: c.Window.Key} }

// Remaining is what the limit still affords (never negative).
func (c Check) Remaining() money.Nanos {
	if r := c.Limit.Amount - c.Committed; r > 0 {
		return r
	}
	return 0
}

// Checks pairs the limits matching s with their windows at now; Committed
// is left zero for the store to fill.
func Checks(limits []Limit, s Subject, now time.Time, loc *time.Location) []Check {
	m := Matching(limits, s)
	out := make([]Check, len(m))
	for i, l := range m {
		out[i] = Check{Limit: l, Window: l.Period.WindowAt(now, loc)}
	}
	return out
}

// Decision is the outcome of Decide. A refusal is a value, not an error:
// errors are for infrastructure failures.
type Decision struct {
	OK bool
	// Refused is the first check (in order) that cannot afford the amount.
	Refused *Check
	// Remaining is the tightest remaining amount across all checks after
	// the amount is reserved (OK) or before (refused); -1 when no limit
	// applies.
	Remaining money.Nanos
}

// Unlimited is Decision.Remaining when no limit matched.
const Unlimited money.Nanos = -1

// Decide says whether amount fits under every check.
func Decide(amount money.Nanos, checks []Check) Decision {
	d := Decision{OK: true, Remaining: Unlimited}
	for i := range checks {
		c := checks[i]
		r := c.Remaining()
		if amount > r {
			if d.OK {
				d.OK = false
				d.Refused = &checks[i]
			}
		}
		if d.Remaining == Unlimited || r < d.Remaining {
			d.Remaining = r
		}
	}
	if d.OK && d.Remaining != Unlimited {
		d.Remaining -= amount
	}
	return d
}

// Tightest returns the smallest remaining amount among checks, or
// Unlimited if there are none.
func Tightest(checks []Check) money.Nanos {
	t := Unlimited
	for _, c := range checks {
		if r := c.Remaining(); t == Unlimited || r < t {
			t = r
		}
	}
	return t
}

// Covered reports whether some limit covers s (the stage's requireLimit
// rule: a request no limit covers is refused).
func Covered(limits []Limit, s Subject) bool {
	for _, l := range limits {
		if l.Scope.Matches(s) {
			return true
		}
	}
	return false
}

// RefusalMessage explains a refusal to the client: scope, period, amount
// and what is left.
func RefusalMessage(c Check, amount money.Nanos) string {
	period := string(c.Limit.Period)
	if c.Limit.Period != Total {
		period += " " + c.Window.Key
	}
	return fmt.Sprintf("budget exceeded: limit %s USD per %s for %s has %s USD left; this request may cost up to %s USD "+
		"(set max_tokens lower, or ask an admin to raise the limit with `wrapi limits set`)",
		c.Limit.Amount, period, c.Limit.Scope, c.Remaining(), amount)
}
