package admin_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/admin"
	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/meter"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/store"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

type flusher struct{ scopes []string }

func (f *flusher) Flush(_ context.Context, scope string) error {
	f.scopes = append(f.scopes, scope)
	return nil
}

func newService(t *testing.T) (*admin.Service, *sqlite.Store, *flusher) {
	st, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &flusher{}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	return &admin.Service{Store: st, Stage: "dev", Now: func() time.Time { return now }, Cache: f}, st, f
}

// do sends a JSON command the way the admin Lambda receives it and
// decodes the JSON answer.
func do(t *testing.T, s *admin.Service, payload string) map[string]any {
	t.Helper()
	var req admin.Request
	if err := json.Unmarshal([]byte(payload), &req); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s.Do(context.Background(), req))
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCommandsRoundTrip(t *testing.T) {
	s, st, f := newService(t)
	ctx := context.Background()
	if r := do(t, s, `{"command":"limits.set","args":{"project":"ml","usd":"10","period":"month"}}`); r["ok"] != true {
		t.Fatalf("limits.set: %v", r)
	}
	// Spend 2.5 USD on ml through a reservation, as the proxy would.
	ls, _ := st.ListLimits(ctx)
	checks := budget.Checks(ls, budget.Subject{Stage: "dev", Project: "ml", User: "alice", Model: "gpt-4o"}, s.Now(), nil)
	if d, err := st.Reserve(ctx, store.Reservation{ID: "r1", Checks: checks, Amount: money.MustParse("2.5"), Created: s.Now(), Expires: s.Now().Add(time.Minute)}); err != nil || !d.OK {
		t.Fatal(d, err)
	}
	r := do(t, s, `{"command":"limits.list"}`)
	lim := r["result"].([]any)[0].(map[string]any)
	if lim["usd"] != "10.00" || lim["committed_usd"] != "2.50" || lim["remaining_usd"] != "7.50" || lim["window"] != "2026-11" {
		t.Errorf("limits.list = %v", lim)
	}
	r = do(t, s, `{"command":"reservations.list"}`)
	if res := r["result"].([]any); len(res) != 1 || res[0].(map[string]any)["id"] != "r1" {
		t.Errorf("reservations.list = %v", r)
	}
	r = do(t, s, `{"command":"reap"}`)
	if r["result"].(map[string]any)["released"] != float64(0) {
		t.Errorf("reap before expiry = %v", r)
	}
	st.Record(ctx, store.Record{ID: "a", Time: s.Now(), Stage: "dev", Project: "ml", User: "alice", ModelRequested: "gpt-4o",
		Status: 200, Cost: money.MustParse("0.000196050"), Usage: meter.Usage{InputTokens: 1931, CachedInputTokens: 1792, OutputTokens: 68}})
	r = do(t, s, `{"command":"usage","args":{"by":["project","model"],"since":"2026-11-01"}}`)
	total := r["result"].(map[string]any)["total"].(map[string]any)
	if total["cost_usd"] != "0.00019605" || total["requests"] != float64(1) {
		t.Errorf("usage total = %v", total)
	}
	r = do(t, s, `{"command":"keys.create","args":{"user":"bob","project":"ml"}}`)
	key := r["result"].(map[string]any)
	if !strings.HasPrefix(key["secret"].(string), "sk-wrapi-") {
		t.Fatalf("keys.create = %v", r)
	}
	r = do(t, s, `{"command":"keys.list"}`)
	if b, _ := json.Marshal(r); strings.Contains(string(b), key["secret"].(string)) {
		t.Error("keys.list shows a secret")
	}
	if r := do(t, s, `{"command":"keys.revoke","args":{"id":"`+key["id"].(string)+`"}}`); r["ok"] != true {
		t.Errorf("keys.revoke = %v", r)
	}
	if r := do(t, s, `{"command":"cache.flush","args":{"scope":"project:ml"}}`); r["ok"] != true || len(f.scopes) != 1 || f.scopes[0] != "project:ml" {
		t.Errorf("cache.flush = %v, flushed %v", r, f.scopes)
	}
	if r := do(t, s, `{"command":"limits.delete","args":{"project":"ml"}}`); r["ok"] != true {
		t.Errorf("limits.delete = %v", r)
	}
}

func TestCommandErrorsAreTyped(t *testing.T) {
	s, _, _ := newService(t)
	for _, tc := range []struct{ payload, typ string }{
		{`{}`, "invalid_input"},
		{`{"command":"drop.tables"}`, "invalid_input"},
		{`{"command":"limits.set","args":{"project":"ml","usd":"ten"}}`, "invalid_input"},
		{`{"command":"limits.set","args":{"project":"ml","usd":"1","period":"week"}}`, "invalid_input"},
		{`{"command":"limits.set","args":{"project":"ml","usd":"1","bogus":true}}`, "invalid_input"},
		{`{"command":"limits.delete","args":{"project":"nope"}}`, "not_found"},
		{`{"command":"keys.revoke","args":{"id":"key_nope"}}`, "not_found"},
		{`{"command":"keys.revoke"}`, "invalid_input"},
		{`{"command":"keys.create","args":{}}`, "invalid_input"},
		{`{"command":"usage","args":{"by":["colour"]}}`, "invalid_input"},
		{`{"command":"usage","args":{"since":"yesterday"}}`, "invalid_input"},
	} {
		r := do(t, s, tc.payload)
		e, _ := r["error"].(map[string]any)
		if r["ok"] != false || e == nil || e["type"] != tc.typ || e["message"] == "" {
			t.Errorf("%s: got %v, want error type %s", tc.payload, r, tc.typ)
		}
	}
	s.Cache = nil
	if r := do(t, s, `{"command":"cache.flush"}`); r["ok"] != false {
		t.Errorf("cache.flush without a cache: %v", r)
	}
}

func TestGroup(t *testing.T) {
	rows := []store.UsageRow{
		{Day: "2026-11-01", Project: "ml", User: "a", Model: "gpt-4o", Requests: 2, Cost: 5},
		{Day: "2026-11-02", Project: "ml", User: "b", Model: "gpt-4o", Requests: 1, Cost: 7},
		{Day: "2026-11-02", Project: "web", User: "a", Model: "o3", Requests: 4, Cost: 11, Errors: 1},
	}
	rep := admin.Group(rows, []string{"project"})
	if len(rep.Lines) != 2 || rep.Lines[0].Key["project"] != "ml" || rep.Lines[0].Cost != 12 || rep.Lines[1].Requests != 4 {
		t.Errorf("by project = %+v", rep.Lines)
	}
	if rep.Total.Cost != 23 || rep.Total.Requests != 7 || rep.Total.Errors != 1 {
		t.Errorf("total = %+v", rep.Total)
	}
	rep = admin.Group(rows, []string{"user", "day"})
	if len(rep.Lines) != 3 || rep.Lines[0].Key["user"] != "a" || rep.Lines[0].Key["day"] != "2026-11-01" {
		t.Errorf("by user,day = %+v", rep.Lines)
	}
	rep = admin.Group(rows, nil)
	if len(rep.Lines) != 1 || rep.Lines[0].Cost != 23 {
		t.Errorf("no grouping = %+v", rep.Lines)
	}
}
