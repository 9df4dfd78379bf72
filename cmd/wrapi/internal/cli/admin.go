package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/admin"
	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runUsage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("usage", stderr)
	tg := targetFlags(fs, true)
	by := fs.String("by", "project", "group by any of day,project,user,model (comma-separated)")
	since := fs.String("since", "", "from this date or RFC 3339 time (inclusive)")
	until := fs.String("until", "", "to this date or RFC 3339 time (exclusive)")
	project := fs.String("project", "", "only this project")
	user := fs.String("user", "", "only this user")
	model := fs.String("model", "", "only this model")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	dims, err := admin.ParseBy(*by)
	if err != nil {
		return err
	}
	q := admin.UsageQuery{By: dims, UsageFilter: store.UsageFilter{Project: *project, User: *user, Model: *model}}
	if q.Since, err = parseTime(*since); err != nil {
		return err
	}
	if q.Until, err = parseTime(*until); err != nil {
		return err
	}
	return tg.run(ctx, func(s adminAPI) error {
		rep, err := s.Usage(ctx, q)
		if err != nil {
			return err
		}
		limits, err := s.Limits(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, struct {
				admin.Report
				Limits []admin.LimitStatus `json:"limits"`
			}{rep, limits})
		}
		printReport(stdout, rep)
		if len(limits) > 0 {
			fmt.Fprintln(stdout)
			printLimits(stdout, limits)
		}
		return nil
	})
}

func printReport(w io.Writer, rep admin.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := append([]string{}, rep.By...)
	head = append(head, "requests", "errors", "cache_hits", "hit_rate", "input_tok", "cached_tok", "output_tok", "reasoning_tok", "cost_usd", "saved_usd")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	row := func(keys []string, r store.UsageRow) {
		cells := append(keys, strconv.FormatInt(r.Requests, 10), strconv.FormatInt(r.Errors, 10),
			strconv.FormatInt(r.CacheHits, 10), hitRate(r), strconv.FormatInt(r.Usage.InputTokens, 10),
			strconv.FormatInt(r.Usage.CachedInputTokens, 10), strconv.FormatInt(r.Usage.OutputTokens, 10),
			strconv.FormatInt(r.Usage.ReasoningTokens, 10), r.Cost.String(), r.Saved.String())
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	for _, l := range rep.Lines {
		var keys []string
		for _, d := range rep.By {
			keys = append(keys, l.Key[d])
		}
		row(keys, l.UsageRow)
	}
	total := make([]string, len(rep.By))
	if len(total) > 0 {
		total[0] = "TOTAL"
	}
	row(total, rep.Total)
	tw.Flush()
}

func printLimits(w io.Writer, ls []admin.LimitStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECT\tUSER\tMODEL\tPERIOD\tWINDOW\tLIMIT_USD\tSPENT_USD\tREMAINING_USD\tUSED")
	for _, l := range ls {
		pct := "-"
		if l.Amount > 0 {
			pct = fmt.Sprintf("%.1f%%", float64(l.Committed)*100/float64(l.Amount))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Scope.Project, l.Scope.User, l.Scope.Model,
			l.Period, l.Window, l.Amount, l.Committed, l.Remaining, pct)
	}
	tw.Flush()
}

func runLimits(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: wrapi limits set|list|delete", errUsage)
	}
	sub := args[0]
	fs := newFlags("limits "+sub, stderr)
	tg := targetFlags(fs, true)
	var sc budget.Scope
	var usd, period string
	var asJSON bool
	switch sub {
	case "set", "delete":
		fs.StringVar(&sc.Project, "project", "*", "project (or * for every project)")
		fs.StringVar(&sc.User, "user", "*", "user (or * for every user)")
		fs.StringVar(&sc.Model, "model", "*", "model (or * for every model)")
		fs.StringVar(&period, "period", "month", "day, month or total")
		if sub == "set" {
			fs.StringVar(&usd, "usd", "", "limit in USD, a decimal string (e.g. 10 or 0.50)")
		}
	case "list":
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	default:
		return fmt.Errorf("%w: unknown limits command %q (set, list, delete)", errUsage, sub)
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	return tg.run(ctx, func(s adminAPI) error {
		switch sub {
		case "set":
			if usd == "" {
				return fmt.Errorf("%w: --usd is required", errUsage)
			}
			l, err := s.SetLimit(ctx, sc, period, usd)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "limit set: %s USD per %s for %s\n", l.Amount, l.Period, l.Scope)
		case "delete":
			if err := s.DeleteLimit(ctx, sc, period); err != nil {
				if err == store.ErrNotFound {
					return fmt.Errorf("no %s limit for %s", period, sc.Normalize())
				}
				return err
			}
			fmt.Fprintln(stdout, "limit deleted")
		case "list":
			ls, err := s.Limits(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				if ls == nil {
					ls = []admin.LimitStatus{}
				}
				return writeJSON(stdout, ls)
			}
			printLimits(stdout, ls)
		}
		return nil
	})
}

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: wrapi keys create|list|revoke", errUsage)
	}
	sub := args[0]
	fs := newFlags("keys "+sub, stderr)
	tg := targetFlags(fs, false)
	var user, project string
	var asJSON bool
	switch sub {
	case "create":
		fs.StringVar(&user, "user", "", "the user the key bills to (required)")
		fs.StringVar(&project, "project", "", "bind the key to one project (optional)")
	case "list":
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	case "revoke":
	default:
		return fmt.Errorf("%w: unknown keys command %q (create, list, revoke)", errUsage, sub)
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	return tg.run(ctx, func(s adminAPI) error {
		switch sub {
		case "create":
			secret, k, err := s.CreateKey(ctx, user, project)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "created key %s for user %q", k.ID, k.User)
			if k.Project != "" {
				fmt.Fprintf(stdout, " (project %q)", k.Project)
			}
			fmt.Fprintf(stdout, ". Its secret is shown only now:\n%s\n", secret)
		case "list":
			ks, err := s.ListKeys(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				if ks == nil {
					ks = []store.Key{}
				}
				return writeJSON(stdout, ks)
			}
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPREFIX\tUSER\tPROJECT\tCREATED\tREVOKED")
			for _, k := range ks {
				rev := "-"
				if k.Revoked != nil {
					rev = k.Revoked.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, k.User, k.Project, k.Created.Format(time.RFC3339), rev)
			}
			tw.Flush()
		case "revoke":
			if fs.NArg() != 1 {
				return fmt.Errorf("%w: wrapi keys revoke KEY_ID", errUsage)
			}
			if err := s.RevokeKey(ctx, fs.Arg(0)); err != nil {
				if err == store.ErrNotFound {
					return fmt.Errorf("no key %s", fs.Arg(0))
				}
				return err
			}
			fmt.Fprintln(stdout, "revoked", fs.Arg(0))
		}
		return nil
	})
}

func runReap(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("reap", stderr)
	tg := targetFlags(fs, false)
	if err := parse(fs, args); err != nil {
		return err
	}
	return tg.run(ctx, func(s adminAPI) error {
		n, err := s.Reap(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "released %d expired reservation(s)\n", n)
		return nil
	})
}

func runReservations(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("reservations", stderr)
	tg := targetFlags(fs, false)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	return tg.run(ctx, func(s adminAPI) error {
		rs, err := s.Reservations(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			if rs == nil {
				rs = []store.Reservation{}
			}
			return writeJSON(stdout, rs)
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "REQUEST\tUSD\tCREATED\tEXPIRES\tCOUNTERS")
		for _, r := range rs {
			var cs []string
			for _, k := range r.Keys {
				cs = append(cs, k.String())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Amount, r.Created.Format(time.RFC3339), r.Expires.Format(time.RFC3339), strings.Join(cs, ", "))
		}
		return tw.Flush()
	})
}
