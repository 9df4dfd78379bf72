package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/wrapi-dev/wrapi/pkg/admin"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

func runCache(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: wrapi cache flush|stats", errUsage)
	}
	sub := args[0]
	fs := newFlags("cache "+sub, stderr)
	tg := targetFlags(fs, false)
	var project, user, since, until string
	var all, asJSON bool
	switch sub {
	case "flush":
		fs.StringVar(&project, "project", "", "flush only this project's entries (scope project)")
		fs.StringVar(&user, "user", "", "flush only this user's entries (scope user)")
		fs.BoolVar(&all, "stage-wide", false, "flush the stage-wide scope (scope stage)")
	case "stats":
		fs.StringVar(&since, "since", "", "from this date or RFC 3339 time")
		fs.StringVar(&until, "until", "", "to this date or RFC 3339 time")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	default:
		return fmt.Errorf("%w: unknown cache command %q (flush, stats)", errUsage, sub)
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	switch sub {
	case "flush":
		scope := ""
		switch {
		case project != "" && user != "":
			return fmt.Errorf("%w: flush --project or --user, not both", errUsage)
		case project != "":
			scope = "project:" + project
		case user != "":
			scope = "user:" + user
		case all:
			scope = "stage"
		}
		return tg.run(ctx, func(s adminAPI) error {
			if err := s.FlushCache(ctx, scope); err != nil {
				return err
			}
			if scope == "" {
				scope = "everything"
			}
			fmt.Fprintf(stdout, "cache flushed: %s (a running server sees it within a second)\n", scope)
			return nil
		})
	default:
		q := admin.UsageQuery{By: []string{"project"}}
		var err error
		if q.Since, err = parseTime(since); err != nil {
			return err
		}
		if q.Until, err = parseTime(until); err != nil {
			return err
		}
		return tg.run(ctx, func(s adminAPI) error {
			rep, err := s.Usage(ctx, q)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(stdout, cacheStats(rep))
			}
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "project\trequests\thits\thit_rate\tsaved_usd\tspent_usd\t")
			for _, l := range append(rep.Lines, admin.UsageLine{Key: map[string]string{"project": "TOTAL"}, UsageRow: rep.Total}) {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t\n", l.Key["project"], l.Requests, l.CacheHits, hitRate(l.UsageRow), l.Saved, l.Cost)
			}
			return tw.Flush()
		})
	}
}

func hitRate(r store.UsageRow) string {
	if r.Requests == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", float64(r.CacheHits)*100/float64(r.Requests))
}

type cacheStatsJSON struct {
	Requests int64       `json:"requests"`
	Hits     int64       `json:"hits"`
	HitRate  string      `json:"hit_rate"`
	Saved    money.Nanos `json:"saved_usd"`
	Spent    money.Nanos `json:"spent_usd"`
}

func cacheStats(rep admin.Report) map[string]cacheStatsJSON {
	out := map[string]cacheStatsJSON{}
	for _, l := range append(rep.Lines, admin.UsageLine{Key: map[string]string{"project": "TOTAL"}, UsageRow: rep.Total}) {
		out[l.Key["project"]] = cacheStatsJSON{l.Requests, l.CacheHits, hitRate(l.UsageRow), l.Saved, l.Cost}
	}
	return out
}
