package dynamo

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wrapi-dev/wrapi/pkg/meter"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

const (
	recPrefix   = "REC#"
	usagePrefix = "USAGE#"
	pkDays      = "DAYS"
	dayLayout   = "2006-01-02"
	// dayWidth is how many days a usage query reads at once.
	dayWidth = 8
)

// tokens lists the token counts of u by attribute name (the same names in
// records and aggregates).
func tokens(u *meter.Usage) []struct {
	name string
	p    *int64
} {
	return []struct {
		name string
		p    *int64
	}{
		{"input_tokens", &u.InputTokens},
		{"cached_input_tokens", &u.CachedInputTokens},
		{"audio_input_tokens", &u.AudioInputTokens},
		{"cached_audio_input_tokens", &u.CachedAudioInputTokens},
		{"image_input_tokens", &u.ImageInputTokens},
		{"output_tokens", &u.OutputTokens},
		{"reasoning_tokens", &u.ReasoningTokens},
		{"audio_output_tokens", &u.AudioOutputTokens},
		{"image_output_tokens", &u.ImageOutputTokens},
	}
}

func day(t time.Time) string { return t.UTC().Format(dayLayout) }

func recordItem(r store.Record) item {
	it := itemKey(recPrefix+day(r.Time), r.ID)
	// Empty strings are left out: smaller items, and absent reads as "".
	for _, a := range []struct{ name, v string }{
		{"id", r.ID}, {"stage", r.Stage}, {"project", r.Project}, {"user", r.User}, {"key_id", r.KeyID},
		{"endpoint", r.Endpoint}, {"model_requested", r.ModelRequested}, {"model_served", r.ModelServed},
		{"service_tier", r.ServiceTier}, {"error_code", r.ErrorCode}, {"price_version", r.PriceVersion},
	} {
		if a.v != "" {
			it[a.name] = str(a.v)
		}
	}
	for _, a := range []struct {
		name string
		v    int64
	}{
		{"time", r.Time.UnixNano()}, {"status", int64(r.Status)}, {"cost", int64(r.Cost)},
		{"reserved", int64(r.Reserved)}, {"saved", int64(r.Saved)}, {"latency_ns", int64(r.Latency)},
	} {
		it[a.name] = num(a.v)
	}
	for _, t := range tokens(&r.Usage) {
		it[t.name] = num(*t.p)
	}
	it["cache_hit"] = boolean(r.CacheHit)
	it["stream"] = boolean(r.Stream)
	it["estimated"] = boolean(r.Estimated)
	return it
}

func decodeRecord(it item) (store.Record, error) {
	d := decoder{it: it}
	r := store.Record{
		ID: d.s("id"), Time: d.time("time"), Stage: d.s("stage"), Project: d.s("project"), User: d.s("user"),
		KeyID: d.s("key_id"), Endpoint: d.s("endpoint"), ModelRequested: d.s("model_requested"),
		ModelServed: d.s("model_served"), ServiceTier: d.s("service_tier"), Status: int(d.i("status")),
		ErrorCode: d.s("error_code"), Cost: money.Nanos(d.i("cost")), Reserved: money.Nanos(d.i("reserved")),
		Saved: money.Nanos(d.i("saved")), CacheHit: d.b("cache_hit"), PriceVersion: d.s("price_version"),
		Latency: time.Duration(d.i("latency_ns")), Stream: d.b("stream"), Estimated: d.b("estimated"),
	}
	for _, t := range tokens(&r.Usage) {
		*t.p = d.i(t.name)
	}
	return r, d.err
}

// rowOf is the aggregate contribution of one record.
func rowOf(r store.Record) store.UsageRow {
	b := func(v bool) int64 {
		if v {
			return 1
		}
		return 0
	}
	return store.UsageRow{Day: day(r.Time), Project: r.Project, User: r.User, Model: r.ModelRequested,
		Requests: 1, Errors: b(r.IsError()), CacheHits: b(r.CacheHit), Estimated: b(r.Estimated),
		Usage: r.Usage, Cost: r.Cost, Saved: r.Saved}
}

func usageKey(day, project, user, model string) item {
	return itemKey(usagePrefix+day, escape(project)+"#"+escape(user)+"#"+escape(model))
}

// rowNumbers lists the summed fields of an aggregate row by attribute name.
func rowNumbers(u *store.UsageRow) []struct {
	name string
	p    *int64
} {
	out := []struct {
		name string
		p    *int64
	}{
		{"requests", &u.Requests}, {"errors", &u.Errors}, {"cache_hits", &u.CacheHits},
		{"estimated", &u.Estimated}, {"cost", (*int64)(&u.Cost)}, {"saved", (*int64)(&u.Saved)},
	}
	return append(out, tokens(&u.Usage)...)
}

func decodeRow(it item) (store.UsageRow, error) {
	d := decoder{it: it}
	r := store.UsageRow{Day: d.s("day"), Project: d.s("project"), User: d.s("user"), Model: d.s("model")}
	for _, f := range rowNumbers(&r) {
		*f.p = d.i(f.name)
	}
	return r, d.err
}

// Record implements store.Usage. The first write of an ID wins: the
// record is put if absent, and only then added to its day's aggregate.
func (s *Store) Record(ctx context.Context, r store.Record) error {
	var e expr
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                &s.table,
		Item:                     recordItem(r),
		ConditionExpression:      aws.String("attribute_not_exists(" + e.n(PartitionKey) + ")"),
		ExpressionAttributeNames: e.names,
	})
	if isConditionFailed(err) {
		return nil // a retry: counted already
	}
	if err != nil {
		return fmt.Errorf("dynamo: record %s: %w", r.ID, err)
	}
	row := rowOf(r)
	e = expr{}
	var add []string
	for _, f := range rowNumbers(&row) {
		add = append(add, e.n(f.name)+" "+e.v(num(*f.p)))
	}
	update := "ADD " + strings.Join(add, ", ") + " SET " + e.n("day") + " = " + e.v(str(row.Day)) +
		", " + e.n("project") + " = " + e.v(str(row.Project)) + ", " + e.n("user") + " = " + e.v(str(row.User)) +
		", " + e.n("model") + " = " + e.v(str(row.Model))
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       usageKey(row.Day, row.Project, row.User, row.Model),
		UpdateExpression:          aws.String(update),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		return fmt.Errorf("dynamo: record %s: aggregate: %w", r.ID, err)
	}
	// The day index is written once per aggregate row, and again by the
	// next record of the row if a crash came in between.
	if (&decoder{it: out.Attributes}).has("indexed") {
		return nil
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: itemKey(pkDays, row.Day)}); err != nil {
		return fmt.Errorf("dynamo: record %s: day index: %w", r.ID, err)
	}
	e = expr{}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       usageKey(row.Day, row.Project, row.User, row.Model),
		UpdateExpression:          aws.String("SET " + e.n("indexed") + " = " + e.v(boolean(true))),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	})
	if err != nil {
		return fmt.Errorf("dynamo: record %s: day index: %w", r.ID, err)
	}
	return nil
}

// days returns the days in f's range that have usage, from the day index.
func (s *Store) days(ctx context.Context, f store.UsageFilter) ([]string, error) {
	if !f.Until.IsZero() && !f.Since.IsZero() && !f.Until.After(f.Since) {
		return nil, nil
	}
	var e expr
	cond := e.n(PartitionKey) + " = " + e.v(str(pkDays))
	switch {
	case !f.Since.IsZero() && !f.Until.IsZero():
		cond += " AND " + e.n(SortKey) + " BETWEEN " + e.v(str(day(f.Since))) + " AND " + e.v(str(day(f.Until.Add(-1))))
	case !f.Since.IsZero():
		cond += " AND " + e.n(SortKey) + " >= " + e.v(str(day(f.Since)))
	case !f.Until.IsZero():
		cond += " AND " + e.n(SortKey) + " <= " + e.v(str(day(f.Until.Add(-1))))
	}
	var out []string
	err := s.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String(cond),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	}, func(it item) error {
		out = append(out, (&decoder{it: it}).s(SortKey))
		return nil
	})
	return out, err
}

// whole reports whether f covers all of day d, so its aggregate answers.
func whole(d string, f store.UsageFilter) bool {
	start, _ := time.Parse(dayLayout, d)
	end := start.AddDate(0, 0, 1)
	return (f.Since.IsZero() || !start.Before(f.Since)) && (f.Until.IsZero() || !end.After(f.Until))
}

// recordsOfDay returns the records of day d that f selects.
func (s *Store) recordsOfDay(ctx context.Context, d string, f store.UsageFilter, fn func(store.Record)) error {
	var e expr
	var filters []string
	if !f.Since.IsZero() {
		filters = append(filters, e.n("time")+" >= "+e.v(num(f.Since.UnixNano())))
	}
	if !f.Until.IsZero() {
		filters = append(filters, e.n("time")+" < "+e.v(num(f.Until.UnixNano())))
	}
	for _, c := range []struct{ name, v string }{{"project", f.Project}, {"user", f.User}, {"model_requested", f.Model}} {
		if c.v != "" {
			filters = append(filters, e.n(c.name)+" = "+e.v(str(c.v)))
		}
	}
	q := &dynamodb.QueryInput{KeyConditionExpression: aws.String(e.n(PartitionKey) + " = " + e.v(str(recPrefix+d)))}
	if len(filters) > 0 {
		q.FilterExpression = aws.String(strings.Join(filters, " AND "))
	}
	q.ExpressionAttributeNames, q.ExpressionAttributeValues = e.names, e.values
	return s.query(ctx, q, func(it item) error {
		r, err := decodeRecord(it)
		if err != nil {
			return fmt.Errorf("record %s: %w", r.ID, err)
		}
		fn(r)
		return nil
	})
}

// rowsOfDay returns the aggregate rows of day d that f selects (f covers
// the whole day).
func (s *Store) rowsOfDay(ctx context.Context, d string, f store.UsageFilter, fn func(store.UsageRow)) error {
	var e expr
	cond := e.n(PartitionKey) + " = " + e.v(str(usagePrefix+d))
	if f.Project != "" {
		cond += " AND begins_with(" + e.n(SortKey) + ", " + e.v(str(escape(f.Project)+"#")) + ")"
	}
	var filters []string
	for _, c := range []struct{ name, v string }{{"user", f.User}, {"model", f.Model}} {
		if c.v != "" {
			filters = append(filters, e.n(c.name)+" = "+e.v(str(c.v)))
		}
	}
	q := &dynamodb.QueryInput{KeyConditionExpression: aws.String(cond)}
	if len(filters) > 0 {
		q.FilterExpression = aws.String(strings.Join(filters, " AND "))
	}
	q.ExpressionAttributeNames, q.ExpressionAttributeValues = e.names, e.values
	return s.query(ctx, q, func(it item) error {
		r, err := decodeRow(it)
		if err != nil {
			return fmt.Errorf("usage row %s: %w", (&decoder{it: it}).s(SortKey), err)
		}
		fn(r)
		return nil
	})
}

// DailyUsage implements store.Usage. Days f covers whole are read from
// their aggregates (one Query each, no Scan); a day cut by Since or Until
// is summed from its records, as the aggregates cannot be cut.
func (s *Store) DailyUsage(ctx context.Context, f store.UsageFilter) ([]store.UsageRow, error) {
	days, err := s.days(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("dynamo: daily usage: %w", err)
	}
	var mu sync.Mutex
	var out []store.UsageRow
	err = each(ctx, len(days), dayWidth, func(ctx context.Context, i int) error {
		d := days[i]
		if whole(d, f) {
			return s.rowsOfDay(ctx, d, f, func(r store.UsageRow) {
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
			})
		}
		rows := map[[3]string]*store.UsageRow{}
		err := s.recordsOfDay(ctx, d, f, func(r store.Record) {
			k := [3]string{r.Project, r.User, r.ModelRequested}
			if rows[k] == nil {
				rows[k] = &store.UsageRow{Day: d, Project: r.Project, User: r.User, Model: r.ModelRequested}
			}
			rows[k].Add(rowOf(r))
		})
		mu.Lock()
		for _, r := range rows {
			out = append(out, *r)
		}
		mu.Unlock()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dynamo: daily usage: %w", err)
	}
	slices.SortFunc(out, func(a, b store.UsageRow) int {
		return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.Project, b.Project),
			cmp.Compare(a.User, b.User), cmp.Compare(a.Model, b.Model))
	})
	return out, nil
}

// Records implements store.Usage. It reads every record of the days in f
// (a Query per day) and keeps the most expensive: bound the range.
func (s *Store) Records(ctx context.Context, f store.UsageFilter, limit int) ([]store.Record, error) {
	if limit <= 0 {
		limit = 100
	}
	days, err := s.days(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("dynamo: records: %w", err)
	}
	order := func(a, b store.Record) int {
		return cmp.Or(cmp.Compare(b.Cost, a.Cost), b.Time.Compare(a.Time), cmp.Compare(a.ID, b.ID))
	}
	var mu sync.Mutex
	var out []store.Record
	err = each(ctx, len(days), dayWidth, func(ctx context.Context, i int) error {
		var top []store.Record
		err := s.recordsOfDay(ctx, days[i], f, func(r store.Record) { top = append(top, r) })
		slices.SortFunc(top, order)
		mu.Lock()
		out = append(out, top[:min(len(top), limit)]...)
		mu.Unlock()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dynamo: records: %w", err)
	}
	slices.SortFunc(out, order)
	return out[:min(len(out), limit)], nil
}
