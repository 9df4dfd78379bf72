package stage

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/store"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

// Each documented admin payload round-trips through the handler signature
// lambda.Start uses (JSON bytes in, JSON bytes out).
func TestAdminFunctionPayloads(t *testing.T) {
	st, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, _ := FromEnv(env(map[string]string{"WRAPI_STAGE": "dev", "WRAPI_TABLE": "t", "WRAPI_CACHE": "off"}))
	h := lambda.NewHandler(AdminHandler(cfg.Admin(Deps{Store: st})))
	invoke := func(payload string) map[string]any {
		out, err := h.Invoke(context.Background(), []byte(payload))
		if err != nil {
			t.Fatalf("%s: %v", payload, err)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("%s: answer is not JSON: %s", payload, out)
		}
		return m
	}
	for _, tc := range []struct {
		payload string
		ok      bool
		want    string // substring of the JSON answer
	}{
		{`{"command":"limits.set","args":{"project":"ml","usd":"25","period":"month"}}`, true, `"usd":"25.00"`},
		{`{"command":"limits.list"}`, true, `"remaining_usd":"25.00"`},
		{`{"command":"keys.create","args":{"user":"ci-bot","project":"ml"}}`, true, `"secret":"sk-wrapi-`},
		{`{"command":"keys.list"}`, true, `"user":"ci-bot"`},
		{`{"command":"usage","args":{"by":["project"]}}`, true, `"total"`},
		{`{"command":"reservations.list"}`, true, `"result":[]`},
		{`{"command":"reap"}`, true, `"released":0`},
		{`{"command":"cache.flush"}`, false, `"type":"invalid_input"`},
		{`{"command":"limits.delete","args":{"project":"ml","period":"month"}}`, true, `"ok":true`},
		{`{"command":"limits.delete","args":{"project":"ml","period":"month"}}`, false, `"type":"not_found"`},
		{`{"command":"rm -rf"}`, false, `unknown command`},
		{`not json`, false, ``},
	} {
		if tc.payload == "not json" {
			if _, err := h.Invoke(context.Background(), []byte(tc.payload)); err == nil {
				t.Error("a non-JSON payload must fail the invocation")
			}
			continue
		}
		m := invoke(tc.payload)
		b, _ := json.Marshal(m)
		if m["ok"] != tc.ok || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s → %s; want ok=%v containing %s", tc.payload, b, tc.ok, tc.want)
		}
		if strings.Contains(string(b), "goroutine") || strings.Contains(string(b), ".go:") {
			t.Errorf("stack trace in %s", b)
		}
	}
}

func TestReaperReleasesExpired(t *testing.T) {
	ctx := context.Background()
	st, _ := sqlite.Open(ctx, ":memory:")
	defer st.Close()
	l, _ := budget.NewLimit(budget.Scope{Stage: "dev", Project: "ml"}, budget.Month, money.USD)
	st.PutLimit(ctx, l)
	past := time.Now().Add(-time.Hour)
	checks := budget.Checks([]budget.Limit{l}, budget.Subject{Stage: "dev", Project: "ml"}, time.Now(), nil)
	st.Reserve(ctx, store.Reservation{ID: "crashed", Checks: checks, Amount: 5, Created: past, Expires: past.Add(time.Minute)})
	h := lambda.NewHandler(ReaperHandler(st, slog.New(slog.DiscardHandler)))
	out, err := h.Invoke(ctx, []byte(`{"version":"0","detail-type":"Scheduled Event","source":"aws.events"}`))
	if err != nil || string(out) != `{"released":1}` {
		t.Fatalf("reaper: %s %v", out, err)
	}
	if cs, _ := st.Committed(ctx, checks); cs[0].Committed != 0 {
		t.Errorf("committed %s after reaping", cs[0].Committed)
	}
}
