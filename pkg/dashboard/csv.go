package dashboard

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/money"
)

// table is a view as CSV: the `.csv` variant of each JSON endpoint. Money
// columns carry the same exact decimal strings as the JSON.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t table) write(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(t.header); err != nil {
		return err
	}
	for _, r := range t.rows {
		if err := cw.Write(r); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// text guards a free-text cell (project and user names come from clients)
// against spreadsheet formula injection: a leading = + - @ or control
// character is escaped with a quote, as OWASP recommends.
func text(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func itoa(n int64) string      { return strconv.FormatInt(n, 10) }
func usd(n money.Nanos) string { return n.String() }

var totalsHeader = []string{"requests", "errors", "cache_hits", "hit_rate_pct", "input_tokens", "output_tokens", "cost_usd", "saved_usd"}

func totalsCells(t Totals) []string {
	return []string{itoa(t.Requests), itoa(t.Errors), itoa(t.CacheHits), t.HitRate, itoa(t.InputTokens), itoa(t.OutputTokens), usd(t.Cost), usd(t.Saved)}
}

func summaryTable(s Summary) table {
	t := table{header: append([]string{"stage", "since", "until", "project", "user", "model"}, totalsHeader...)}
	t.add(append([]string{text(s.Stage), s.Range.Since, s.Range.Until, text(s.Filter["project"]), text(s.Filter["user"]), text(s.Filter["model"])}, totalsCells(s.Totals)...)...)
	return t
}

func spendTable(s Spend) table {
	t := table{header: []string{"day", s.By, "cost_usd"}}
	for i, d := range s.Days {
		for _, se := range s.Series {
			if se.Cost[i] != 0 {
				k := text(se.Key)
				if se.Other {
					k = "(other)"
				}
				t.add(d, k, usd(se.Cost[i]))
			}
		}
	}
	return t
}

func breakdownTable(b Breakdown) table {
	t := table{header: append([]string{"project", "user", "model"}, totalsHeader...)}
	var walk func(ns []Node)
	walk = func(ns []Node) {
		for _, n := range ns {
			if len(n.Children) == 0 {
				t.add(append([]string{text(n.Project), text(n.User), text(n.Model)}, totalsCells(n.Totals)...)...)
			}
			walk(n.Children)
		}
	}
	walk(b.Projects)
	return t
}

func limitsTable(l Limits) table {
	t := table{header: []string{"id", "project", "user", "model", "period", "window", "limit_usd", "spent_usd", "held_usd", "committed_usd", "remaining_usd", "used_pct", "level"}}
	for _, v := range l.Limits {
		t.add(text(v.ID), text(v.Project), text(v.User), text(v.Model), string(v.Period), v.Window, usd(v.Amount), usd(v.Spent),
			usd(v.Held), usd(v.Committed), usd(v.Remaining), v.UsedPct, v.Level)
	}
	return t
}

func cacheTable(c Cache) table {
	t := table{header: []string{"project", "requests", "cache_hits", "hit_rate_pct", "saved_usd", "cost_usd"}}
	for _, l := range c.Projects {
		t.add(text(l.Project), itoa(l.Requests), itoa(l.CacheHits), l.HitRate, usd(l.Saved), usd(l.Cost))
	}
	return t
}

func errorsTable(e Errors) table {
	t := table{header: []string{"day", "requests", "errors", "budget_refusals", "other_errors"}}
	for _, d := range e.Days {
		ref, other := "", ""
		if d.Refusals != nil {
			ref, other = itoa(*d.Refusals), itoa(d.Errors-*d.Refusals)
		}
		t.add(d.Day, itoa(d.Requests), itoa(d.Errors), ref, other)
	}
	return t
}

func topTable(tp Top) table {
	t := table{header: []string{"id", "time", "project", "user", "model", "model_served", "endpoint", "status", "error_code",
		"input_tokens", "output_tokens", "cost_usd", "saved_usd", "cache_hit", "stream", "estimated", "latency_ms"}}
	for _, r := range tp.Records {
		t.add(text(r.ID), r.Time.Format(time.RFC3339Nano), text(r.Project), text(r.User), text(r.Model), text(r.ModelServed), r.Endpoint,
			strconv.Itoa(r.Status), text(r.ErrorCode), itoa(r.InputTokens), itoa(r.OutputTokens), usd(r.Cost), usd(r.Saved),
			strconv.FormatBool(r.CacheHit), strconv.FormatBool(r.Stream), strconv.FormatBool(r.Estimated), itoa(r.LatencyMS))
	}
	return t
}
