package dashboard

import (
	"context"
	"math/big"
	"sort"
	"strconv"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/admin"
	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

// The views are pure functions from what a Source returns to the JSON the
// page draws. Money stays money.Nanos (a decimal USD string in JSON) and is
// only ever added as integers; percentages are computed here, exactly, and
// sent as strings.

// Range echoes the query's resolved range.
type Range struct {
	Since string `json:"since"`
	Until string `json:"until"` // exclusive
	Days  int    `json:"days"`
}

func rangeOf(q Query) Range {
	return Range{Since: q.Since.Format(dayLayout), Until: q.Until.Format(dayLayout), Days: q.Days()}
}

// Totals are the sums of a set of daily rows.
type Totals struct {
	Requests     int64       `json:"requests"`
	Errors       int64       `json:"errors"`
	CacheHits    int64       `json:"cache_hits"`
	HitRate      string      `json:"hit_rate_pct"` // "13.3", "" without requests
	Estimated    int64       `json:"estimated"`
	InputTokens  int64       `json:"input_tokens"`
	OutputTokens int64       `json:"output_tokens"`
	Cost         money.Nanos `json:"cost_usd"`
	Saved        money.Nanos `json:"saved_usd"`
}

func totalsOf(r store.UsageRow) Totals {
	return Totals{
		Requests: r.Requests, Errors: r.Errors, CacheHits: r.CacheHits, HitRate: pct(big.NewInt(r.CacheHits), big.NewInt(r.Requests)),
		Estimated: r.Estimated, InputTokens: r.Usage.InputTokens, OutputTokens: r.Usage.OutputTokens, Cost: r.Cost, Saved: r.Saved,
	}
}

// pct is 100·num/den with one decimal, rounded down (a limit at 99.96%
// must not read 100.0%); "" when den is zero.
func pct(num, den *big.Int) string {
	if den.Sign() == 0 {
		return ""
	}
	permille := new(big.Int).Mul(num, big.NewInt(1000))
	permille.Quo(permille, den)
	s := permille.String()
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	for len(s) < 2 {
		s = "0" + s
	}
	s = s[:len(s)-1] + "." + s[len(s)-1:]
	if neg {
		s = "-" + s
	}
	return s
}

// Options are the values the page offers in its filters: every project,
// user and model with usage in the range.
type Options struct {
	Projects []string `json:"projects"`
	Users    []string `json:"users"`
	Models   []string `json:"models"`
}

// Summary is the headline of the page.
type Summary struct {
	Stage   string            `json:"stage"`
	Range   Range             `json:"range"`
	Filter  map[string]string `json:"filter"`
	Totals  Totals            `json:"totals"`
	Options Options           `json:"options"`
}

// summaryView takes rows of the whole range (dimensions unfiltered, so the
// filters can offer every value) and applies q's dimensions itself.
func summaryView(stage string, q Query, rows []store.UsageRow) Summary {
	var tot store.UsageRow
	sets := [3]map[string]bool{{}, {}, {}}
	for _, r := range rows {
		sets[0][r.Project], sets[1][r.User], sets[2][r.Model] = true, true, true
		if q.matches(r) {
			tot.Add(r)
		}
	}
	sorted := func(m map[string]bool) []string {
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	return Summary{
		Stage: stage, Range: rangeOf(q),
		Filter:  map[string]string{"project": q.Project, "user": q.User, "model": q.Model},
		Totals:  totalsOf(tot),
		Options: Options{Projects: sorted(sets[0]), Users: sorted(sets[1]), Models: sorted(sets[2])},
	}
}

// maxSeries is how many stacks the spend chart draws; the rest are summed
// into one "other" stack so the chart stays legible.
const maxSeries = 8

// Series is one stack of the spend chart: a key's spend on each day.
type Series struct {
	Key   string        `json:"key"`
	Other bool          `json:"other,omitempty"` // the sum of the smaller keys
	Cost  []money.Nanos `json:"cost_usd"`        // one per Spend.Days
	Total money.Nanos   `json:"total_usd"`
}

// Spend is spend per day, stacked by project, user or model.
type Spend struct {
	By        string        `json:"by"`
	Range     Range         `json:"range"`
	Days      []string      `json:"days"`
	Series    []Series      `json:"series"` // largest first
	DayTotals []money.Nanos `json:"day_totals_usd"`
	Total     money.Nanos   `json:"total_usd"`
	Max       money.Nanos   `json:"max_day_usd"`
}

func keyOf(r store.UsageRow, by string) string {
	switch by {
	case "user":
		return r.User
	case "model":
		return r.Model
	}
	return r.Project
}

func spendView(q Query, by string, rows []store.UsageRow) Spend {
	days := q.DayList()
	idx := make(map[string]int, len(days))
	for i, d := range days {
		idx[d] = i
	}
	sp := Spend{By: by, Range: rangeOf(q), Days: days, DayTotals: make([]money.Nanos, len(days)), Series: []Series{}}
	byKey := map[string]*Series{}
	for _, r := range rows {
		i, ok := idx[r.Day]
		if !ok {
			continue
		}
		k := keyOf(r, by)
		s := byKey[k]
		if s == nil {
			s = &Series{Key: k, Cost: make([]money.Nanos, len(days))}
			byKey[k] = s
		}
		s.Cost[i] += r.Cost
		s.Total += r.Cost
		sp.DayTotals[i] += r.Cost
		sp.Total += r.Cost
	}
	all := make([]Series, 0, len(byKey))
	for _, s := range byKey {
		all = append(all, *s)
	}
	sort.Slice(all, func(a, b int) bool {
		if all[a].Total != all[b].Total {
			return all[a].Total > all[b].Total
		}
		return all[a].Key < all[b].Key
	})
	if len(all) > maxSeries {
		other := Series{Key: "other", Other: true, Cost: make([]money.Nanos, len(days))}
		for _, s := range all[maxSeries-1:] {
			for i, c := range s.Cost {
				other.Cost[i] += c
			}
			other.Total += s.Total
		}
		all = append(all[:maxSeries-1:maxSeries-1], other)
	}
	sp.Series = all
	for _, t := range sp.DayTotals {
		sp.Max = max(sp.Max, t)
	}
	return sp
}

// Node is one line of the project → user → model breakdown.
type Node struct {
	Project string `json:"project"`
	User    string `json:"user,omitempty"`
	Model   string `json:"model,omitempty"`
	Totals
	Children []Node `json:"children,omitempty"`
}

// Breakdown is the spend tree of the range, most expensive first.
type Breakdown struct {
	Range    Range  `json:"range"`
	Projects []Node `json:"projects"`
	Total    Totals `json:"total"`
}

func breakdownView(q Query, rows []store.UsageRow) Breakdown {
	type agg struct {
		row  store.UsageRow
		kids map[string]*agg
	}
	root := &agg{kids: map[string]*agg{}}
	for _, r := range rows {
		n := root
		n.row.Add(r)
		for _, k := range []string{r.Project, r.User, r.Model} {
			c := n.kids[k]
			if c == nil {
				c = &agg{kids: map[string]*agg{}}
				n.kids[k] = c
			}
			c.row.Add(r)
			n = c
		}
	}
	var build func(a *agg, path []string) []Node
	build = func(a *agg, path []string) []Node {
		if len(a.kids) == 0 {
			return nil
		}
		out := make([]Node, 0, len(a.kids))
		for k, c := range a.kids {
			p := append(append([]string(nil), path...), k)
			n := Node{Totals: totalsOf(c.row), Children: build(c, p)}
			n.Project = p[0]
			if len(p) > 1 {
				n.User = p[1]
			}
			if len(p) > 2 {
				n.Model = p[2]
			}
			out = append(out, n)
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].Cost != out[j].Cost {
				return out[i].Cost > out[j].Cost
			}
			return out[i].Project+"\x00"+out[i].User+"\x00"+out[i].Model < out[j].Project+"\x00"+out[j].User+"\x00"+out[j].Model
		})
		return out
	}
	projects := build(root, nil)
	if projects == nil {
		projects = []Node{}
	}
	return Breakdown{Range: rangeOf(q), Projects: projects, Total: totalsOf(root.row)}
}

// Limit levels: the bar is green under 80%, amber from 80% and red once
// the limit is reached.
const (
	LevelOK   = "ok"
	LevelWarn = "warn"
	LevelFull = "full"
)

// LimitView is a limit with its spend in the current window.
type LimitView struct {
	ID        string        `json:"id"`
	Project   string        `json:"project"`
	User      string        `json:"user"`
	Model     string        `json:"model"`
	Period    budget.Period `json:"period"`
	Window    string        `json:"window"`
	Amount    money.Nanos   `json:"limit_usd"`
	Spent     money.Nanos   `json:"spent_usd"` // settled
	Held      money.Nanos   `json:"held_usd"`  // reserved by requests in flight
	Committed money.Nanos   `json:"committed_usd"`
	Remaining money.Nanos   `json:"remaining_usd"`
	UsedPct   string        `json:"used_pct"` // committed / limit, rounded down
	HeldPct   string        `json:"held_pct"`
	Level     string        `json:"level"`
}

// Limits lists the limits that apply to the query's selection: a limit is
// shown when each of its scope fields is "*" or the filtered value.
type Limits struct {
	Limits []LimitView `json:"limits"`
}

func limitsView(q Query, ls []admin.LimitStatus, rs []store.Reservation) Limits {
	held := map[budget.CounterKey]money.Nanos{}
	for _, r := range rs {
		if r.State != "" && r.State != store.Reserved {
			continue
		}
		for _, k := range r.Keys {
			held[k] += r.Amount
		}
	}
	fits := func(scope, v string) bool { return v == "" || scope == budget.Any || scope == v }
	out := Limits{Limits: []LimitView{}}
	for _, l := range ls {
		sc := l.Scope
		if !fits(sc.Project, q.Project) || !fits(sc.User, q.User) || !fits(sc.Model, q.Model) {
			continue
		}
		h := min(held[budget.CounterKey{LimitID: l.ID, Window: l.Window}], l.Committed)
		v := LimitView{
			ID: l.ID, Project: sc.Project, User: sc.User, Model: sc.Model, Period: l.Period, Window: l.Window,
			Amount: l.Amount, Spent: l.Committed - h, Held: h, Committed: l.Committed, Remaining: l.Remaining,
		}
		amt, com := big.NewInt(int64(l.Amount)), big.NewInt(int64(l.Committed))
		switch {
		case l.Amount == 0:
			v.UsedPct, v.HeldPct = "100.0", "0.0"
		default:
			v.UsedPct, v.HeldPct = pct(com, amt), pct(big.NewInt(int64(h)), amt)
		}
		// committed*100 >= amount*80, exactly.
		warn := new(big.Int).Mul(com, big.NewInt(100)).Cmp(new(big.Int).Mul(amt, big.NewInt(80))) >= 0
		switch {
		case l.Committed >= l.Amount:
			v.Level = LevelFull
		case warn:
			v.Level = LevelWarn
		default:
			v.Level = LevelOK
		}
		out.Limits = append(out.Limits, v)
	}
	return out
}

// CacheLine is the cache's effect on one project.
type CacheLine struct {
	Project string `json:"project"`
	Totals
}

// Cache is the response cache's hit rate and savings, by project.
type Cache struct {
	Range    Range       `json:"range"`
	Projects []CacheLine `json:"projects"`
	Total    Totals      `json:"total"`
}

func cacheView(q Query, rows []store.UsageRow) Cache {
	rep := admin.Group(rows, []string{"project"})
	c := Cache{Range: rangeOf(q), Projects: make([]CacheLine, 0, len(rep.Lines)), Total: totalsOf(rep.Total)}
	for _, l := range rep.Lines {
		c.Projects = append(c.Projects, CacheLine{Project: l.Project, Totals: totalsOf(l.UsageRow)})
	}
	sort.SliceStable(c.Projects, func(i, j int) bool { return c.Projects[i].Saved > c.Projects[j].Saved })
	return c
}

// RefusalCode is the error code of a budget refusal (HTTP 429).
const RefusalCode = "budget_exceeded"

// maxRecordsPerDay bounds the records read to count one day's refusals:
// the daily aggregates count errors but not their codes, so refusals are
// counted from the day's records, and only on days with errors. A day with
// more requests than this reports its refusals as unknown (null) rather
// than a guess.
const maxRecordsPerDay = 5000

// ErrorDay is one day of errors. Errors come from the daily aggregates
// (exact); Refusals and Codes from the day's records, nil when the day had
// too many requests to read.
type ErrorDay struct {
	Day      string           `json:"day"`
	Requests int64            `json:"requests"`
	Errors   int64            `json:"errors"`
	Refusals *int64           `json:"refusals"`
	Codes    map[string]int64 `json:"codes,omitempty"`
}

// Errors is errors and budget refusals per day.
type Errors struct {
	Range    Range            `json:"range"`
	Days     []ErrorDay       `json:"days"`
	Requests int64            `json:"requests"`
	Errors   int64            `json:"errors"`
	Refusals int64            `json:"refusals"`
	Codes    map[string]int64 `json:"codes"`
	Complete bool             `json:"complete"` // every day's refusals are known
}

// errorLabel names an error record: its code, else its HTTP status.
func errorLabel(r store.Record) string {
	if r.ErrorCode != "" {
		return r.ErrorCode
	}
	return "http_" + strconv.Itoa(r.Status)
}

func errorsView(ctx context.Context, src Source, q Query, rows []store.UsageRow) (Errors, error) {
	days := q.DayList()
	e := Errors{Range: rangeOf(q), Days: make([]ErrorDay, len(days)), Codes: map[string]int64{}, Complete: true}
	idx := map[string]int{}
	for i, d := range days {
		idx[d] = i
		zero := int64(0)
		e.Days[i] = ErrorDay{Day: d, Refusals: &zero}
	}
	for _, r := range rows {
		if i, ok := idx[r.Day]; ok {
			e.Days[i].Requests += r.Requests
			e.Days[i].Errors += r.Errors
			e.Requests += r.Requests
			e.Errors += r.Errors
		}
	}
	for i := range e.Days {
		d := &e.Days[i]
		if d.Errors == 0 {
			continue
		}
		if d.Requests > maxRecordsPerDay {
			d.Refusals, e.Complete = nil, false
			continue
		}
		f := q.Filter()
		f.Since, _ = time.Parse(dayLayout, d.Day)
		f.Until = f.Since.AddDate(0, 0, 1)
		recs, err := src.TopRecords(ctx, f, int(d.Requests))
		if err != nil {
			return Errors{}, err
		}
		d.Codes = map[string]int64{}
		for _, r := range recs {
			if !r.IsError() {
				continue
			}
			label := errorLabel(r)
			d.Codes[label]++
			e.Codes[label]++
			if r.Status == 429 && r.ErrorCode == RefusalCode {
				*d.Refusals++
				e.Refusals++
			}
		}
	}
	return e, nil
}

// TopRecord is one request of the most expensive ones.
type TopRecord struct {
	ID           string      `json:"id"`
	Time         time.Time   `json:"time"`
	Project      string      `json:"project"`
	User         string      `json:"user"`
	Model        string      `json:"model"`
	ModelServed  string      `json:"model_served,omitempty"`
	Endpoint     string      `json:"endpoint"`
	Status       int         `json:"status"`
	ErrorCode    string      `json:"error_code,omitempty"`
	InputTokens  int64       `json:"input_tokens"`
	OutputTokens int64       `json:"output_tokens"`
	Cost         money.Nanos `json:"cost_usd"`
	Saved        money.Nanos `json:"saved_usd"`
	CacheHit     bool        `json:"cache_hit"`
	Stream       bool        `json:"stream"`
	Estimated    bool        `json:"estimated"`
	LatencyMS    int64       `json:"latency_ms"`
}

// Top is the most expensive requests of the selection.
type Top struct {
	Range   Range       `json:"range"`
	Records []TopRecord `json:"records"`
}

func topView(q Query, recs []store.Record) Top {
	t := Top{Range: rangeOf(q), Records: make([]TopRecord, 0, len(recs))}
	for _, r := range recs {
		t.Records = append(t.Records, TopRecord{
			ID: r.ID, Time: r.Time.UTC(), Project: r.Project, User: r.User, Model: r.ModelRequested, ModelServed: r.ModelServed,
			Endpoint: r.Endpoint, Status: r.Status, ErrorCode: r.ErrorCode, InputTokens: r.Usage.InputTokens,
			OutputTokens: r.Usage.OutputTokens, Cost: r.Cost, Saved: r.Saved, CacheHit: r.CacheHit, Stream: r.Stream,
			Estimated: r.Estimated, LatencyMS: r.Latency.Milliseconds(),
		})
	}
	return t
}
