package dynamo

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/dynalitetest"
	"github.com/wrapi-dev/wrapi/pkg/meter"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/store"
	"github.com/wrapi-dev/wrapi/pkg/store/storetest"
)

func TestMain(m *testing.M) { dynalitetest.Main(m, filepath.Join("..", "..", "..")) }

func newClient(endpoint string, retries int) *dynamodb.Client {
	return dynalitetest.Client(endpoint, retries)
}

var tables atomic.Int64

// newStore returns a store on a new, uniquely named table, deleted when
// the test ends.
func newStore(t testing.TB) *Store {
	t.Helper()
	db := newClient(dynalitetest.Endpoint(t), 0)
	name := fmt.Sprintf("wrapi-test-%d-%d", time.Now().UnixNano(), tables.Add(1))
	s, err := New(Config{Client: db, Table: name})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &name}); err != nil {
			t.Errorf("delete table %s: %v", name, err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	start := time.Now()
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t) }, storetest.Options{})
	t.Logf("conformance suite (500 concurrent reservations) took %s", time.Since(start).Round(time.Millisecond))
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no client", Config{Table: "t"}, "no client"},
		{"no table", Config{Client: dynamodb.New(dynamodb.Options{Region: "us-east-1"})}, "no table"},
		{"neither", Config{}, "no client\ndynamo: no table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

var (
	t0   = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	subj = budget.Subject{Stage: "test", Project: "ml", User: "alice", Model: "gpt-4o-mini"}
	ctx  = context.Background()
)

func setLimit(t *testing.T, s *Store, sc budget.Scope, p budget.Period, usd string) {
	t.Helper()
	l, err := budget.NewLimit(sc, p, money.MustParse(usd))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutLimit(ctx, l); err != nil {
		t.Fatal(err)
	}
}

func checks(t *testing.T, s *Store) []budget.Check {
	t.Helper()
	ls, err := s.ListLimits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return budget.Checks(ls, subj, t0, time.UTC)
}

func committed(t *testing.T, s *Store, cs []budget.Check) []money.Nanos {
	t.Helper()
	got, err := s.Committed(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]money.Nanos, len(got))
	for i, c := range got {
		out[i] = c.Committed
	}
	return out
}

func res(id string, cs []budget.Check, usd string) store.Reservation {
	return store.Reservation{ID: id, Checks: cs, Amount: money.MustParse(usd), Created: t0, Expires: t0.Add(time.Minute)}
}

// attr renders a scalar attribute ("" when absent).
func attr(it item, name string) string {
	switch v := it[name].(type) {
	case nil:
		return ""
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	case *types.AttributeValueMemberBOOL:
		return strconv.FormatBool(v.Value)
	}
	return fmt.Sprintf("%T", it[name])
}

func getItem(t *testing.T, s *Store, key item) item {
	t.Helper()
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// TestItemLayout pins the documented keys and attributes that the
// infrastructure and the dashboard rely on.
func TestItemLayout(t *testing.T) {
	s := newStore(t)
	setLimit(t, s, budget.Scope{Stage: "test", Project: "ml"}, budget.Month, "1")
	cs := checks(t, s)
	if d, err := s.Reserve(ctx, res("req-1", cs, "0.3")); err != nil || !d.OK {
		t.Fatalf("reserve: %+v %v", d, err)
	}
	if d, err := s.Reserve(ctx, res("req-2", cs, "0.2")); err != nil || !d.OK {
		t.Fatalf("reserve: %+v %v", d, err)
	}
	if err := s.Settle(ctx, "req-1", money.MustParse("0.1")); err != nil {
		t.Fatal(err)
	}
	r := store.Record{ID: "req-1", Time: t0, Project: "ml", User: "alice", ModelRequested: "gpt-4o", Status: 200,
		Cost: money.MustParse("0.1"), Usage: meter.Usage{InputTokens: 7, OutputTokens: 3}}
	if err := s.Record(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(ctx, store.Key{ID: "key_1", Hash: "h1", User: "alice", Created: t0}); err != nil {
		t.Fatal(err)
	}
	limitID := cs[0].Limit.ID
	wallTTL := time.Now().Add(finishedRetention).Unix()
	for _, tc := range []struct {
		pk, sk, attr, want string
	}{
		{"LIMIT", limitID, "amount", "1000000000"},
		{"LIMIT", limitID, "period", "month"},
		{"CTR#" + limitID, "2026-11", "committed", "300000000"}, // 0.1 settled + 0.2 held
		{"RES#req-1", "RES", "state", "settled"},
		{"RES#req-1", "RES", "amount", "300000000"},
		{"RES#req-2", "RES", "state", "reserved"},
		{"RES#req-2", "RES", "expires_at", ""}, // held: no TTL
		{openShard("req-2"), markerSK(t0.Add(time.Minute), "req-2"), "id", "req-2"},
		{openShard("req-1"), markerSK(t0.Add(time.Minute), "req-1"), "id", ""}, // finished: no marker
		{"REC#2026-11-27", "req-1", "cost", "100000000"},
		{"USAGE#2026-11-27", "ml#alice#gpt-4o", "requests", "1"},
		{"USAGE#2026-11-27", "ml#alice#gpt-4o", "input_tokens", "7"},
		{"USAGE#2026-11-27", "ml#alice#gpt-4o", "cost", "100000000"},
		{"DAYS", "2026-11-27", "sk", "2026-11-27"},
		{"KEY#h1", "KEY", "id", "key_1"},
		{"KEYS", "key_1", "hash", "h1"},
	} {
		t.Run(tc.pk+"/"+tc.sk+"/"+tc.attr, func(t *testing.T) {
			it := getItem(t, s, itemKey(tc.pk, tc.sk))
			got := attr(it, tc.attr)
			if got != tc.want {
				t.Errorf("%s = %q, want %q (item %v)", tc.attr, got, tc.want, it)
			}
		})
	}
	// The finished reservation is garbage-collected by TTL a day later.
	d := decoder{it: getItem(t, s, resKey("req-1"))}
	if got := d.i(TTLAttribute); got < wallTTL-60 || got > wallTTL+60 {
		t.Errorf("settled reservation expires_at = %d, want about %d", got, wallTTL)
	}
}

// TestCrashWindows simulates a process that dies part-way through a
// reservation or its finish, and checks each window errs the documented
// way: counters over-count, never under-count, and the reaper releases
// exactly what it can prove is held.
func TestCrashWindows(t *testing.T) {
	amt := money.MustParse("0.4")
	for _, tc := range []struct {
		name string
		// crash leaves the store as a process dying at that point would.
		crash         func(t *testing.T, s *Store, key budget.CounterKey)
		reaped        int
		afterReap     money.Nanos // committed after ReleaseExpired
		settleErr     bool        // a late Settle(0.1) fails
		afterSettle   money.Nanos
		markersAfter  int
		stateAfterAll string
	}{{
		// Died after raising the counter, before the open marker: nothing
		// tells the reaper the counter is held, so it stays raised.
		name: "reserve dies before the marker",
		crash: func(t *testing.T, s *Store, k budget.CounterKey) {
			if _, err := s.putPending(ctx, res("r", nil, "0.4"), "n1"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.addIfFits(ctx, k, amt, money.USD-amt); err != nil {
				t.Fatal(err)
			}
		},
		reaped: 0, afterReap: amt, settleErr: true, afterSettle: amt, stateAfterAll: statePending,
	}, {
		// Died after the marker, before state reserved: the marker proves
		// every counter was raised, so the reaper releases them, and a
		// late settle counts the money spent.
		name: "reserve dies before state reserved",
		crash: func(t *testing.T, s *Store, k budget.CounterKey) {
			if _, err := s.putPending(ctx, res("r", nil, "0.4"), "n1"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.addIfFits(ctx, k, amt, money.USD-amt); err != nil {
				t.Fatal(err)
			}
			m := markerKey("r", t0.Add(time.Minute))
			m["id"], m["amount"], m["counters"] = str("r"), num(int64(amt)), encodeKeys([]budget.CounterKey{k})
			if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: m}); err != nil {
				t.Fatal(err)
			}
		},
		reaped: 1, afterReap: 0, afterSettle: money.MustParse("0.1"), stateAfterAll: store.Settled,
	}, {
		// Settled, then died before lowering the counter and deleting the
		// marker: the counter keeps the whole reservation (over-count) and
		// the reaper only removes the stale marker.
		name: "settle dies after the state change",
		crash: func(t *testing.T, s *Store, k budget.CounterKey) {
			if d, err := s.Reserve(ctx, res("r", checks(t, s), "0.4")); err != nil || !d.OK {
				t.Fatalf("reserve: %+v %v", d, err)
			}
			if ok, err := s.move(ctx, "r", store.Reserved, store.Settled, nil); !ok || err != nil {
				t.Fatalf("move: %v %v", ok, err)
			}
		},
		reaped: 0, afterReap: amt, afterSettle: amt, stateAfterAll: store.Settled,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			setLimit(t, s, budget.Scope{Stage: "test", Project: "ml"}, budget.Total, "1")
			cs := checks(t, s)
			tc.crash(t, s, cs[0].Key())
			n, err := s.ReleaseExpired(ctx, t0.Add(2*time.Minute))
			if err != nil || n != tc.reaped {
				t.Errorf("ReleaseExpired = %d, %v; want %d", n, err, tc.reaped)
			}
			if got := committed(t, s, cs)[0]; got != tc.afterReap {
				t.Errorf("after the reaper: committed %s, want %s", got, tc.afterReap)
			}
			err = s.Settle(ctx, "r", money.MustParse("0.1"))
			if (err != nil) != tc.settleErr {
				t.Errorf("late settle: err = %v, want error %v", err, tc.settleErr)
			}
			if got := committed(t, s, cs)[0]; got != tc.afterSettle {
				t.Errorf("after a late settle: committed %s, want %s", got, tc.afterSettle)
			}
			if got := attr(getItem(t, s, resKey("r")), "state"); got != tc.stateAfterAll {
				t.Errorf("state = %q, want %q", got, tc.stateAfterAll)
			}
			ms, err := s.markers(ctx, nil)
			if err != nil || len(ms) != 0 {
				t.Errorf("open markers left: %+v %v", ms, err)
			}
			if held, err := s.Reservations(ctx); err != nil || len(held) != 0 {
				t.Errorf("held = %+v, %v; want none", held, err)
			}
		})
	}
}

func TestRetriedReserve(t *testing.T) {
	s := newStore(t)
	setLimit(t, s, budget.Scope{Stage: "test", Project: "ml"}, budget.Month, "1")
	cs := checks(t, s)
	// Refused: nothing is kept, so Settle does not know it and a retry
	// decides afresh (as on SQLite).
	d, err := s.Reserve(ctx, res("big", cs, "1.5"))
	if err != nil || d.OK || d.Refused == nil || d.Remaining != money.USD {
		t.Fatalf("1.5 of 1: %+v %v; want a refusal with 1 remaining", d, err)
	}
	if err := s.Settle(ctx, "big", 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("settle of a refused reservation: %v, want ErrNotFound", err)
	}
	setLimit(t, s, budget.Scope{Stage: "test", Project: "ml"}, budget.Month, "2")
	if d, err := s.Reserve(ctx, res("big", cs, "1.5")); err != nil || !d.OK || d.Remaining != money.MustParse("0.5") {
		t.Fatalf("retry after the limit was raised: %+v %v", d, err)
	}
	// Refused at the counter (not the pre-check): the counter is restored.
	if d, err := s.Reserve(ctx, res("more", cs, "0.6")); err != nil || d.OK || d.Remaining != money.MustParse("0.5") {
		t.Fatalf("0.6 more: %+v %v; want a refusal with 0.5 remaining", d, err)
	}
	if got := committed(t, s, cs)[0]; got != money.MustParse("1.5") {
		t.Errorf("committed %s after a refusal, want 1.5", got)
	}
	// A Reserve still pending (another attempt in flight, or one that
	// died) is an error, neither a grant nor a refusal.
	if _, err := s.putPending(ctx, res("inflight", cs, "0.1"), "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, res("inflight", cs, "0.1")); !errors.Is(err, errPending) {
		t.Errorf("reserve while pending: %v, want errPending", err)
	}
	if err := s.Release(ctx, "inflight"); !errors.Is(err, errPending) {
		t.Errorf("release while pending: %v, want errPending", err)
	}
	// The SDK retrying our own conditional put finds our nonce: proceed.
	if prior, err := s.putPending(ctx, res("inflight", cs, "0.1"), "other"); prior != nil || err != nil {
		t.Errorf("own retried put: prior %+v, %v; want none", prior, err)
	}
}

func TestInvalidInput(t *testing.T) {
	s := newStore(t)
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"negative amount", func() error {
			_, err := s.Reserve(ctx, store.Reservation{ID: "a", Amount: -1, Expires: t0})
			return err
		}, "negative amount"},
		{"no expiry", func() error { _, err := s.Reserve(ctx, store.Reservation{ID: "a", Amount: 1}); return err }, "no expiry"},
		{"no id", func() error { _, err := s.Reserve(ctx, store.Reservation{Amount: 1, Expires: t0}); return err }, "no reservation ID"},
		{"negative actual", func() error { return s.Settle(ctx, "a", -1) }, "negative actual"},
		{"delete unknown limit", func() error { return s.DeleteLimit(ctx, "nope") }, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestUnavailable: a store that cannot be reached is an error (the proxy
// fails closed), never a refusal, ErrNotFound or ErrConflict.
func TestUnavailable(t *testing.T) {
	s, err := New(Config{Client: newClient(dynalitetest.Unreachable(t), 1), Table: "t"})
	if err != nil {
		t.Fatal(err)
	}
	lim, _ := budget.NewLimit(budget.Scope{Project: "ml"}, budget.Day, money.USD)
	cs := budget.Checks([]budget.Limit{lim}, subj, t0, time.UTC)
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Reserve", func() error {
			d, err := s.Reserve(ctx, res("a", cs, "0.1"))
			if d.OK || d.Refused != nil {
				return fmt.Errorf("decision %+v alongside %w", d, err)
			}
			return err
		}},
		{"Settle", func() error { return s.Settle(ctx, "a", 1) }},
		{"Release", func() error { return s.Release(ctx, "a") }},
		{"Committed", func() error { _, err := s.Committed(ctx, cs); return err }},
		{"ReleaseExpired", func() error { _, err := s.ReleaseExpired(ctx, t0); return err }},
		{"Reservations", func() error { _, err := s.Reservations(ctx); return err }},
		{"PutLimit", func() error { return s.PutLimit(ctx, lim) }},
		{"DeleteLimit", func() error { return s.DeleteLimit(ctx, lim.ID) }},
		{"ListLimits", func() error { _, err := s.ListLimits(ctx); return err }},
		{"Record", func() error { return s.Record(ctx, store.Record{ID: "a", Time: t0}) }},
		{"DailyUsage", func() error { _, err := s.DailyUsage(ctx, store.UsageFilter{}); return err }},
		{"Records", func() error { _, err := s.Records(ctx, store.UsageFilter{}, 1); return err }},
		{"CreateKey", func() error { return s.CreateKey(ctx, store.Key{ID: "k", Hash: "h"}) }},
		{"KeyByHash", func() error { _, err := s.KeyByHash(ctx, "h"); return err }},
		{"ListKeys", func() error { _, err := s.ListKeys(ctx); return err }},
		{"RevokeKey", func() error { return s.RevokeKey(ctx, "k", t0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
				t.Fatalf("err = %v, want an infrastructure error", err)
			}
			if !strings.HasPrefix(err.Error(), "dynamo: ") {
				t.Errorf("err = %q, want it prefixed with the package", err)
			}
		})
	}
}

func TestDailyUsage(t *testing.T) {
	s := newStore(t)
	day1 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	day2, day3 := day1.AddDate(0, 0, 1), day1.AddDate(0, 0, 2)
	for i, r := range []struct {
		at                   time.Time
		project, user, model string
		cost                 string
		status               int
	}{
		{day1.Add(10 * time.Hour), "ml", "alice", "gpt-4o", "0.1", 200},
		{day1.Add(20 * time.Hour), "ml", "alice", "gpt-4o", "0.2", 500},
		{day2.Add(10 * time.Hour), "ml", "alice", "gpt-4o", "0.4", 200},
		// Names that would collide in an unescaped sort key.
		{day1.Add(time.Hour), "a#b", "c", "m", "1", 200},
		{day1.Add(time.Hour), "a", "b#c", "m", "2", 200},
	} {
		err := s.Record(ctx, store.Record{ID: fmt.Sprint("r", i), Time: r.at, Project: r.project, User: r.user,
			ModelRequested: r.model, Status: r.status, Cost: money.MustParse(r.cost), Usage: meter.Usage{InputTokens: 10}})
		if err != nil {
			t.Fatal(err)
		}
	}
	type row struct {
		day, project, user string
		requests, errors   int64
		cost               money.Nanos
	}
	usd := money.MustParse
	for _, tc := range []struct {
		name string
		f    store.UsageFilter
		want []row
	}{
		{"whole days", store.UsageFilter{Project: "ml", Since: day1, Until: day3},
			[]row{{"2026-11-27", "ml", "alice", 2, 1, usd("0.3")}, {"2026-11-28", "ml", "alice", 1, 0, usd("0.4")}}},
		{"cut at the start", store.UsageFilter{Project: "ml", Since: day1.Add(15 * time.Hour)},
			[]row{{"2026-11-27", "ml", "alice", 1, 1, usd("0.2")}, {"2026-11-28", "ml", "alice", 1, 0, usd("0.4")}}},
		{"cut at the end", store.UsageFilter{Project: "ml", Until: day1.Add(15 * time.Hour)},
			[]row{{"2026-11-27", "ml", "alice", 1, 0, usd("0.1")}}},
		{"until midnight", store.UsageFilter{Project: "ml", Until: day2},
			[]row{{"2026-11-27", "ml", "alice", 2, 1, usd("0.3")}}},
		{"empty range", store.UsageFilter{Since: day2, Until: day2}, nil},
		{"escaped names, whole day", store.UsageFilter{Project: "a", Since: day1, Until: day2},
			[]row{{"2026-11-27", "a", "b#c", 1, 0, usd("2")}}},
		{"escaped names, cut day", store.UsageFilter{Project: "a#b", Since: day1.Add(time.Minute)},
			[]row{{"2026-11-27", "a#b", "c", 1, 0, usd("1")}}},
		{"by user", store.UsageFilter{User: "b#c"}, []row{{"2026-11-27", "a", "b#c", 1, 0, usd("2")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := s.DailyUsage(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []row
			for _, r := range rows {
				got = append(got, row{r.Day, r.Project, r.User, r.Requests, r.Errors, r.Cost})
				if r.Usage.InputTokens != 10*r.Requests {
					t.Errorf("row %+v: input tokens %d, want %d", r, r.Usage.InputTokens, 10*r.Requests)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("rows = %v\nwant   %v", got, tc.want)
			}
		})
	}
	// Whole days are answered by the aggregate items (no Scan, no records
	// read): a change to the aggregate shows there, and not in a cut day.
	var e expr
	if _, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.table, Key: usageKey("2026-11-27", "ml", "alice", "gpt-4o"),
		UpdateExpression: aws.String("ADD " + e.n("requests") + " " + e.v(num(100))), ExpressionAttributeNames: e.names, ExpressionAttributeValues: e.values}); err != nil {
		t.Fatal(err)
	}
	whole, err := s.DailyUsage(ctx, store.UsageFilter{Project: "ml", Since: day1, Until: day2})
	if err != nil || len(whole) != 1 || whole[0].Requests != 102 {
		t.Errorf("whole day after editing the aggregate: %+v %v; want 102 requests", whole, err)
	}
	cut, err := s.DailyUsage(ctx, store.UsageFilter{Project: "ml", Since: day1.Add(time.Second), Until: day2})
	if err != nil || len(cut) != 1 || cut[0].Requests != 2 {
		t.Errorf("cut day: %+v %v; want 2 requests from the records", cut, err)
	}
	top, err := s.Records(ctx, store.UsageFilter{Since: day1, Until: day3}, 3)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range top {
		ids = append(ids, r.ID)
	}
	if fmt.Sprint(ids) != "[r4 r3 r2]" {
		t.Errorf("top records = %v, want [r4 r3 r2]", ids)
	}
}

func TestDeleteLimitResetsCounters(t *testing.T) {
	s := newStore(t)
	sc := budget.Scope{Stage: "test", Project: "ml"}
	setLimit(t, s, sc, budget.Day, "1")
	cs := checks(t, s)
	if d, err := s.Reserve(ctx, res("a", cs, "0.7")); err != nil || !d.OK {
		t.Fatalf("reserve: %+v %v", d, err)
	}
	if err := s.DeleteLimit(ctx, cs[0].Limit.ID); err != nil {
		t.Fatal(err)
	}
	// A deleted limit no longer constrains a reservation made with it.
	if d, err := s.Reserve(ctx, res("b", cs, "5")); err != nil || !d.OK || d.Remaining != budget.Unlimited {
		t.Fatalf("reserve against a deleted limit: %+v %v", d, err)
	}
	setLimit(t, s, sc, budget.Day, "1")
	if got := committed(t, s, cs)[0]; got != 0 {
		t.Errorf("limit set again: committed %s, want 0", got)
	}
}

// BenchmarkReserveSettle measures one Reserve and its Settle against two
// limits, one after another (latency, not throughput), and reports p50
// and p99 of the pair and p50 of Reserve alone (the part on a request's
// critical path).
func BenchmarkReserveSettle(b *testing.B) {
	s := newStore(b)
	for _, sc := range []budget.Scope{{Stage: "test", Project: "ml"}, {Stage: "test", User: "alice"}} {
		l, _ := budget.NewLimit(sc, budget.Month, 1000*money.USD)
		if err := s.PutLimit(ctx, l); err != nil {
			b.Fatal(err)
		}
	}
	ls, err := s.ListLimits(ctx)
	if err != nil {
		b.Fatal(err)
	}
	cs := budget.Checks(ls, subj, t0, time.UTC)
	var lat, rlat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		id := fmt.Sprint("b", i)
		d, err := s.Reserve(ctx, store.Reservation{ID: id, Checks: cs, Amount: 1000, Created: t0, Expires: t0.Add(time.Minute)})
		if err != nil || !d.OK {
			b.Fatalf("reserve: %+v %v", d, err)
		}
		rlat = append(rlat, time.Since(start))
		if err := s.Settle(ctx, id, 900); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(rlat)
	b.ReportMetric(float64(rlat[len(rlat)/2].Microseconds()), "reserve-p50-µs")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
