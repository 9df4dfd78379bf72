package budget

import (
	"testing"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/money"
)

func TestWindows(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	for _, tc := range []struct {
		p          Period
		at         time.Time
		loc        *time.Location
		key        string
		start, end time.Time
	}{
		{Month, time.Date(2026, 2, 14, 9, 0, 0, 0, time.UTC), nil, "2026-02",
			time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}, // 28 days
		{Month, time.Date(2028, 2, 29, 23, 59, 59, 0, time.UTC), nil, "2028-02",
			time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC)}, // leap: 29
		{Month, time.Date(2026, 4, 30, 12, 0, 0, 0, time.UTC), nil, "2026-04",
			time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}, // 30
		{Month, time.Date(2026, 12, 31, 23, 59, 59, 999, time.UTC), nil, "2026-12",
			time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}, // 31, year end
		{Day, time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), nil, "2026-11-27",
			time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)},
		// 03:00 UTC on Dec 1 is still November 30 in New York.
		{Month, time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), ny, "2026-11",
			time.Date(2026, 11, 1, 0, 0, 0, 0, ny), time.Date(2026, 12, 1, 0, 0, 0, 0, ny)},
		{Day, time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), ny, "2026-11-30",
			time.Date(2026, 11, 30, 0, 0, 0, 0, ny), time.Date(2026, 12, 1, 0, 0, 0, 0, ny)},
		{Total, time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), nil, "total", time.Time{}, time.Time{}},
	} {
		w := tc.p.WindowAt(tc.at, tc.loc)
		if w.Key != tc.key || !w.Start.Equal(tc.start) || !w.End.Equal(tc.end) {
			t.Errorf("%s at %s: got %+v, want %s [%s, %s)", tc.p, tc.at, w, tc.key, tc.start, tc.end)
		}
		if tc.p != Total && (tc.at.Before(w.Start) || !tc.at.Before(w.End)) {
			t.Errorf("%s at %s: window %+v does not contain the instant", tc.p, tc.at, w)
		}
	}
}

func TestScopeMatching(t *testing.T) {
	s := Subject{Stage: "dev", Project: "ml", User: "alice", Model: "gpt-4o"}
	for _, tc := range []struct {
		sc   Scope
		want bool
	}{
		{Scope{"dev", "*", "*", "*"}, true},
		{Scope{"*", "*", "*", "*"}, true},
		{Scope{"dev", "ml", "*", "*"}, true},
		{Scope{"dev", "ml", "alice", "gpt-4o"}, true},
		{Scope{"dev", "ml", "bob", "*"}, false},
		{Scope{"prod", "ml", "*", "*"}, false},
		{Scope{"dev", "ml", "*", "gpt-4o-mini"}, false},
		{Scope{"dev", "ML", "*", "*"}, false}, // case matters
		{Scope{Stage: "dev", Project: "ml"}.Normalize(), true},
	} {
		if got := tc.sc.Matches(s); got != tc.want {
			t.Errorf("%s matches %+v = %v, want %v", tc.sc, s, got, tc.want)
		}
	}
}

func TestLimitIDStableAndDistinct(t *testing.T) {
	a := LimitID(Scope{"dev", "a|b", "*", "*"}, Month)
	b := LimitID(Scope{"dev", "a", "b", "*"}, Month)
	if a == b {
		t.Fatal("a project containing | must not collide with another scope")
	}
	if LimitID(Scope{"dev", "ml", "*", "*"}, Month) == LimitID(Scope{"dev", "ml", "*", "*"}, Day) {
		t.Fatal("periods must be distinct limits")
	}
}

func check(amount, committed string) Check {
	return Check{Limit: Limit{ID: amount + "/" + committed, Amount: money.MustParse(amount)}, Committed: money.MustParse(committed)}
}

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name      string
		amount    string
		checks    []Check
		ok        bool
		refused   int // index, -1 for none
		remaining money.Nanos
	}{
		{"no limits", "5", nil, true, -1, Unlimited},
		{"fits exactly", "0.4", []Check{check("1", "0.6")}, true, -1, 0},
		{"one nano over", "0.400000001", []Check{check("1", "0.6")}, false, 0, money.MustParse("0.4")},
		{"tightest second", "0.3", []Check{check("10", "1"), check("1", "0.8"), check("5", "0")}, false, 1, money.MustParse("0.2")},
		{"all fit, remaining is tightest after", "0.1", []Check{check("10", "1"), check("1", "0.8")}, true, -1, money.MustParse("0.1")},
		{"already over (limit lowered)", "0", []Check{check("1", "2")}, true, -1, 0},
		{"already over refuses any spend", "0.000000001", []Check{check("1", "2")}, false, 0, 0},
		// The float64 trap peers fall into: 20 × 0.000435 against 0.0087
		// is exactly full, and a 21st is refused.
		{"twenty of 0.000435 fill 0.0087", "0.000435", []Check{check("0.0087", "0.008265")}, true, -1, 0},
		{"the 21st is refused", "0.000435", []Check{check("0.0087", "0.0087")}, false, 0, 0},
	} {
		d := Decide(money.MustParse(tc.amount), tc.checks)
		if d.OK != tc.ok || d.Remaining != tc.remaining {
			t.Errorf("%s: got %+v, want ok=%v remaining=%s", tc.name, d, tc.ok, tc.remaining)
		}
		if tc.refused >= 0 && (d.Refused == nil || d.Refused.Limit.ID != tc.checks[tc.refused].Limit.ID) {
			t.Errorf("%s: refused by %+v, want check %d", tc.name, d.Refused, tc.refused)
		}
		if tc.refused < 0 && d.Refused != nil {
			t.Errorf("%s: unexpected refusal by %+v", tc.name, d.Refused)
		}
	}
}

func TestMatchingIsOrderedAndCovered(t *testing.T) {
	mk := func(p, u string) Limit {
		l, err := NewLimit(Scope{Stage: "dev", Project: p, User: u}, Month, money.USD)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	ls := []Limit{mk("web", "*"), mk("ml", "alice"), mk("*", "*"), mk("ml", "*")}
	s := Subject{Stage: "dev", Project: "ml", User: "alice", Model: "o3"}
	m := Matching(ls, s)
	if len(m) != 3 {
		t.Fatalf("want 3 matches, got %+v", m)
	}
	for i := 1; i < len(m); i++ {
		if m[i-1].ID >= m[i].ID {
			t.Errorf("matches not in ID order: %q then %q", m[i-1].ID, m[i].ID)
		}
	}
	if !Covered(ls, s) || Covered(ls[:1], s) {
		t.Error("Covered disagrees with Matching")
	}
	if _, err := NewLimit(Scope{}, "week", 1); err == nil {
		t.Error("unknown period accepted")
	}
	if _, err := NewLimit(Scope{}, Month, -1); err == nil {
		t.Error("negative amount accepted")
	}
}
