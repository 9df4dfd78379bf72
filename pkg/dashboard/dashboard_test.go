package dashboard_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/admin"
	"github.com/wrapi-dev/wrapi/pkg/dashboard"
	"github.com/wrapi-dev/wrapi/pkg/dashboard/dashboardtest"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/store"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

// flusher records cache flushes.
type flusher struct {
	mu     sync.Mutex
	scopes []string
}

func (f *flusher) Flush(_ context.Context, scope string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scopes = append(f.scopes, scope)
	return nil
}

type env struct {
	h     *dashboard.Handler
	st    *sqlite.Store
	cache *flusher
}

func newEnv(t *testing.T, cfg dashboard.Config) env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := dashboardtest.Seed(ctx, st); err != nil {
		t.Fatal(err)
	}
	fl := &flusher{}
	now := func() time.Time { return dashboardtest.Now }
	svc := &admin.Service{Store: st, Stage: dashboardtest.Stage, Now: now, Cache: fl}
	cfg.Source, cfg.Stage, cfg.Now = dashboard.Local{Service: svc}, dashboardtest.Stage, now
	h, err := dashboard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return env{h: h, st: st, cache: fl}
}

func (e env) do(t *testing.T, method, target, body string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// get fetches a JSON view into v, failing unless it answers 200.
func (e env) get(t *testing.T, target string, v any) {
	t.Helper()
	rec := e.do(t, "GET", target, "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: content type %q", target, ct)
	}
	reflect.ValueOf(v).Elem().SetZero() // json.Unmarshal would keep omitted fields of reused elements
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", target, err, rec.Body)
	}
}

func usd(s string) money.Nanos { return money.MustParse(s) }

func TestSummary(t *testing.T) {
	e := newEnv(t, dashboard.Config{})
	all := dashboard.Options{
		Projects: []string{"ml", "web"}, Users: []string{"alice", "bob", "carol", "dave"},
		Models: []string{"gpt-4o", "gpt-4o-mini", "text-embedding-3-small"},
	}
	tests := []struct {
		query  string
		rng    dashboard.Range
		totals dashboard.Totals
	}{
		{"", dashboard.Range{Since: "2026-10-17", Until: "2026-11-16", Days: 30}, dashboard.Totals{
			Requests: 15, Errors: 4, CacheHits: 2, HitRate: "13.3", InputTokens: 3_230_223, OutputTokens: 565_045,
			Cost: usd("8.150125456"), Saved: usd("2.46")}},
		{"?since=2026-09-01", dashboard.Range{Since: "2026-09-01", Until: "2026-11-16", Days: 76}, dashboard.Totals{
			Requests: 16, Errors: 4, CacheHits: 2, HitRate: "12.5", InputTokens: 5_230_223, OutputTokens: 965_045,
			Cost: usd("17.150125456"), Saved: usd("2.46")}},
		{"?project=web", dashboard.Range{Since: "2026-10-17", Until: "2026-11-16", Days: 30}, dashboard.Totals{
			Requests: 5, Errors: 1, CacheHits: 1, HitRate: "20.0", InputTokens: 720_100, OutputTokens: 170_000,
			Cost: usd("0.620002"), Saved: usd("0.06")}},
		{"?user=alice&model=gpt-4o", dashboard.Range{Since: "2026-10-17", Until: "2026-11-16", Days: 30}, dashboard.Totals{
			Requests: 5, Errors: 1, CacheHits: 1, HitRate: "20.0", InputTokens: 1_570_000, OutputTokens: 270_000,
			Cost: usd("4.40"), Saved: usd("2.40")}},
		{"?since=2026-11-12&until=2026-11-13", dashboard.Range{Since: "2026-11-12", Until: "2026-11-13", Days: 1}, dashboard.Totals{
			Requests: 4, Errors: 2, CacheHits: 0, HitRate: "0.0", InputTokens: 840_100, OutputTokens: 100_000,
			Cost: usd("3.100002")}},
		{"?since=2026-11-13&until=2026-11-14", dashboard.Range{Since: "2026-11-13", Until: "2026-11-14", Days: 1}, dashboard.Totals{}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var s dashboard.Summary
			e.get(t, "/api/summary"+tt.query, &s)
			if s.Stage != "local" || s.Range != tt.rng || s.Totals != tt.totals {
				t.Errorf("got stage %q range %+v totals %+v\nwant range %+v totals %+v", s.Stage, s.Range, s.Totals, tt.rng, tt.totals)
			}
			if tt.rng.Days == 30 && !reflect.DeepEqual(s.Options, all) {
				t.Errorf("options %+v, want every value of the range whatever the filter: %+v", s.Options, all)
			}
		})
	}
	// Money is a decimal string in the JSON, never a float.
	rec := e.do(t, "GET", "/api/summary", "", nil)
	for _, want := range []string{`"cost_usd": "8.150125456"`, `"saved_usd": "2.46"`, `"hit_rate_pct": "13.3"`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("summary JSON lacks %s:\n%s", want, rec.Body)
		}
	}
}

func TestBadQueries(t *testing.T) {
	e := newEnv(t, dashboard.Config{})
	for _, target := range []string{
		"/api/summary?since=11/12/2026",
		"/api/spend?since=2026-11-12&until=2026-11-12",
		"/api/breakdown?since=2020-01-01&until=2026-01-01",
		"/api/spend?by=day",
		"/api/top?n=0",
		"/api/top?n=201",
		"/api/top.csv?n=x",
	} {
		rec := e.do(t, "GET", target, "", nil)
		var body struct{ Error admin.ResponseError }
		if rec.Code != http.StatusBadRequest || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error.Type != "invalid_input" {
			t.Errorf("GET %s: %d %s, want 400 invalid_input", target, rec.Code, rec.Body)
		}
	}
}

func nanos(ss ...string) []money.Nanos {
	out := make([]money.Nanos, len(ss))
	for i, s := range ss {
		out[i] = usd(s)
	}
	return out
}

func TestSpend(t *testing.T) {
	e := newEnv(t, dashboard.Config{})
	var sp dashboard.Spend
	e.get(t, "/api/spend?since=2026-11-10", &sp)
	wantDays := []string{"2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13", "2026-11-14", "2026-11-15"}
	want := dashboard.Spend{
		By: "project", Range: dashboard.Range{Since: "2026-11-10", Until: "2026-11-16", Days: 6}, Days: wantDays,
		Series: []dashboard.Series{
			{Key: "ml", Cost: nanos("1.28", "2.40", "3.10", "0", "0.000123456", "0.75"), Total: usd("7.530123456")},
			{Key: "web", Cost: nanos("0.50", "0", "0.000002", "0", "0.12", "0"), Total: usd("0.620002")},
		},
		DayTotals: nanos("1.78", "2.40", "3.100002", "0", "0.120123456", "0.75"),
		Total:     usd("8.150125456"), Max: usd("3.100002"),
	}
	if !reflect.DeepEqual(sp, want) {
		t.Errorf("spend by project:\n got %+v\nwant %+v", sp, want)
	}

	e.get(t, "/api/spend?since=2026-11-10&by=model&project=ml", &sp)
	wantSeries := []dashboard.Series{
		{Key: "gpt-4o", Cost: nanos("1.25", "2.40", "3.10", "0", "0", "0.75"), Total: usd("7.50")},
		{Key: "gpt-4o-mini", Cost: nanos("0.03", "0", "0", "0", "0.000123456", "0"), Total: usd("0.030123456")},
	}
	if sp.By != "model" || !reflect.DeepEqual(sp.Series, wantSeries) || sp.Total != usd("7.530123456") {
		t.Errorf("spend of ml by model: %+v", sp)
	}

	// The default range has a bar for each of its 30 days, gaps included.
	e.get(t, "/api/spend?by=user", &sp)
	if len(sp.Days) != 30 || sp.Days[0] != "2026-10-17" || sp.Days[29] != "2026-11-15" || len(sp.DayTotals) != 30 {
		t.Errorf("default range days: %d %v", len(sp.Days), sp.Days)
	}
	var keys []string
	for _, s := range sp.Series {
		keys = append(keys, s.Key+"="+s.Total.String())
	}
	if got := strings.Join(keys, " "); got != "alice=4.400123456 bob=3.13 carol=0.500002 dave=0.12" {
		t.Errorf("series by user, largest first: %s", got)
	}
}

func TestBreakdown(t *testing.T) {
	e := newEnv(t, dashboard.Config{})
	var b dashboard.Breakdown
	e.get(t, "/api/breakdown", &b)
	var lines []string
	var walk func(ns []dashboard.Node, depth int)
	walk = func(ns []dashboard.Node, depth int) {
		for _, n := range ns {
			lines = append(lines, strings.Repeat("  ", depth)+strings.Join([]string{n.Project, n.User, n.Model}, "/")+
				" req="+itoa(n.Requests)+" err="+itoa(n.Errors)+" hits="+itoa(n.CacheHits)+" cost="+n.Cost.String()+" saved="+n.Saved.String())
			walk(n.Children, depth+1)
		}
	}
	walk(b.Projects, 0)
	want := []string{
		"ml// req=10 err=3 hits=1 cost=7.530123456 saved=2.40",
		"  ml/alice/ req=6 err=1 hits=1 cost=4.400123456 saved=2.40",
		"    ml/alice/gpt-4o req=5 err=1 hits=1 cost=4.40 saved=2.40",
		"    ml/alice/gpt-4o-mini req=1 err=0 hits=0 cost=0.000123456 saved=0.00",
		"  ml/bob/ req=4 err=2 hits=0 cost=3.13 saved=0.00",
		"    ml/bob/gpt-4o req=3 err=2 hits=0 cost=3.10 saved=0.00",
		"    ml/bob/gpt-4o-mini req=1 err=0 hits=0 cost=0.03 saved=0.00",
		"web// req=5 err=1 hits=1 cost=0.620002 saved=0.06",
		"  web/carol/ req=4 err=1 hits=1 cost=0.500002 saved=0.06",
		"    web/carol/gpt-4o req=1 err=0 hits=0 cost=0.50 saved=0.00",
		"    web/carol/text-embedding-3-small req=1 err=0 hits=0 cost=0.000002 saved=0.00",
		"    web/carol/gpt-4o-mini req=2 err=1 hits=1 cost=0.00 saved=0.06",
		"  web/dave/ req=1 err=0 hits=0 cost=0.12 saved=0.00",
		"    web/dave/gpt-4o-mini req=1 err=0 hits=0 cost=0.12 saved=0.00",
	}
	if got := strings.Join(lines, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("breakdown:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if b.Total.Cost != usd("8.150125456") || b.Total.Requests != 15 {
		t.Errorf("breakdown total %+v", b.Total)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestLimits(t *testing.T) {
	e := newEnv(t, dashboard.Config{})
	var l dashboard.Limits
	e.get(t, "/api/limits", &l)
	type row struct{ scope, window, amount, spent, held, committed, remaining, used, heldPct, level string }
	var got []row
	for _, v := range l.Limits {
		got = append(got, row{v.Project + "/" + v.User + "/" + v.Model + "/" + string(v.Period), v.Window, v.Amount.String(), v.Spent.String(),
			v.Held.String(), v.Committed.String(), v.Remaining.String(), v.UsedPct, v.HeldPct, v.Level})
	}
	want := []row{
		{"*/*/gpt-4o/total", "total", "100.00", "17.00", "0.25", "17.25", "82.75", "17.2", "0.2", "ok"},
		{"ml/*/*/month", "2026-11", "9.00", "7.530123456", "0.25", "7.780123456", "1.219876544", "86.4", "2.7", "warn"},
		{"ml/alice/*/day", "2026-11-15", "1.00", "0.75", "0.25", "1.00", "0.00", "100.0", "25.0", "full"},
		{"web/*/*/month", "2026-11", "50.00", "0.620002", "0.05", "0.670002", "49.329998", "1.3", "0.1", "ok"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("limits:\n got %+v\nwant %+v", got, want)
	}
	// A filter shows the limits that apply to the selection.
	e.get(t, "/api/limits?project=web&user=dave", &l)
	if len(l.Limits) != 2 || l.Limits[0].Model != "gpt-4o" || l.Limits[1].Project != "web" {
		t.Errorf("limits applying to web/dave: %+v", l.Limits)
	}
}

func TestCache(t *testing.T) {
	e := newEnv(t, dashboard.Config{})
	var c dashboard.Cache
	e.get(t, "/api/cache", &c)
	var got []string
	for _, p := range append(c.Projects, dashboard.CacheLine{Project: "TOTAL", Totals: c.Total}) {
		got = append(got, p.Project+" "+itoa(p.Requests)+" "+itoa(p.CacheHits)+" "+p.HitRate+" "+p.Saved.String()+" "+p.Cost.String())
	}
	want := "ml 10 1 10.0 2.40 7.530123456|web 5 1 20.0 0.06 0.620002|TOTAL 15 2 13.3 2.46 8.150125456"
	if strings.Join(got, "|") != want {
		t.Errorf("cache: %s\nwant  %s", strings.Join(got, "|"), want)
	}
}

func TestErrors(t *testing.T) {
	e := newEnv(t, dashboard.Config{})
	var er dashboard.Errors
	e.get(t, "/api/errors?since=2026-11-10", &er)
	var got []string
	for _, d := range er.Days {
		s := d.Day + " req=" + itoa(d.Requests) + " err=" + itoa(d.Errors) + " ref="
		if d.Refusals != nil {
			s += itoa(*d.Refusals)
		}
		got = append(got, s)
	}
	want := []string{
		"2026-11-10 req=3 err=0 ref=0", "2026-11-11 req=3 err=1 ref=0", "2026-11-12 req=4 err=2 ref=2",
		"2026-11-13 req=0 err=0 ref=0", "2026-11-14 req=4 err=1 ref=1", "2026-11-15 req=1 err=0 ref=0",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors per day:\n got %v\nwant %v", got, want)
	}
	if er.Requests != 15 || er.Errors != 4 || er.Refusals != 3 || !er.Complete ||
		!reflect.DeepEqual(er.Codes, map[string]int64{"budget_exceeded": 3, "upstream_error": 1}) {
		t.Errorf("errors totals: %+v", er)
	}
	if !reflect.DeepEqual(er.Days[1].Codes, map[string]int64{"upstream_error": 1}) {
		t.Errorf("codes of 11-11: %v", er.Days[1].Codes)
	}
	e.get(t, "/api/errors?user=bob", &er)
	if er.Errors != 2 || er.Refusals != 2 || er.Requests != 4 {
		t.Errorf("errors of bob: %+v", er)
	}
}

func TestTop(t *testing.T) {
	e := newEnv(t, dashboard.Config{})
	var tp dashboard.Top
	e.get(t, "/api/top?n=12", &tp)
	var ids []string
	for _, r := range tp.Records {
		ids = append(ids, r.ID+"="+r.Cost.String())
	}
	want := "r07=3.10 r04=2.40 r01=1.25 r15=0.75 r03=0.50 r11=0.12 r02=0.03 r14=0.000123456 r10=0.000002 r13=0.00 r12=0.00 r09=0.00"
	if strings.Join(ids, " ") != want {
		t.Errorf("top 12: %s\nwant   %s", strings.Join(ids, " "), want)
	}
	r := tp.Records[0]
	if r.Project != "ml" || r.User != "bob" || r.Model != "gpt-4o" || r.Status != 200 || r.InputTokens != 840_000 ||
		r.LatencyMS != 1140 || !r.Time.Equal(time.Date(2026, 11, 12, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("top record: %+v", r)
	}
	var carol dashboard.Top
	e.get(t, "/api/top?project=web&user=carol", &carol)
	ids = nil
	for _, r := range carol.Records {
		ids = append(ids, r.ID)
	}
	if strings.Join(ids, " ") != "r03 r10 r12 r06" || !carol.Records[2].CacheHit || carol.Records[2].Saved != usd("0.06") ||
		carol.Records[3].Status != 502 || carol.Records[3].ErrorCode != "upstream_error" || carol.Records[3].ModelServed != "" {
		t.Errorf("top of web/carol: %+v", carol.Records)
	}
	var old dashboard.Top
	e.get(t, "/api/top?since=2026-09-01&n=1", &old)
	if len(old.Records) != 1 || old.Records[0].ID != "r00" {
		t.Errorf("top over every day: %+v", old.Records)
	}
}

func TestCSV(t *testing.T) {
	e := newEnv(t, dashboard.Config{})
	tests := []struct {
		target string
		lines  []string // the first lines of the body
	}{
		{"/api/summary.csv?project=web", []string{
			"stage,since,until,project,user,model,requests,errors,cache_hits,hit_rate_pct,input_tokens,output_tokens,cost_usd,saved_usd",
			"local,2026-10-17,2026-11-16,web,,,5,1,1,20.0,720100,170000,0.620002,0.06"}},
		{"/api/spend.csv?since=2026-11-10&until=2026-11-11", []string{"day,project,cost_usd", "2026-11-10,ml,1.28", "2026-11-10,web,0.50"}},
		{"/api/breakdown.csv?project=ml", []string{
			"project,user,model,requests,errors,cache_hits,hit_rate_pct,input_tokens,output_tokens,cost_usd,saved_usd",
			"ml,alice,gpt-4o,5,1,1,20.0,1570000,270000,4.40,2.40",
			"ml,alice,gpt-4o-mini,1,0,0,0.0,123,45,0.000123456,0.00"}},
		{"/api/limits.csv", []string{
			"id,project,user,model,period,window,limit_usd,spent_usd,held_usd,committed_usd,remaining_usd,used_pct,level",
			"local|*|*|gpt-4o|total,*,*,gpt-4o,total,total,100.00,17.00,0.25,17.25,82.75,17.2,ok"}},
		{"/api/cache.csv", []string{"project,requests,cache_hits,hit_rate_pct,saved_usd,cost_usd", "ml,10,1,10.0,2.40,7.530123456"}},
		{"/api/errors.csv?since=2026-11-11&until=2026-11-13", []string{
			"day,requests,errors,budget_refusals,other_errors", "2026-11-11,3,1,0,1", "2026-11-12,4,2,2,0"}},
		{"/api/top.csv?n=1", []string{
			"id,time,project,user,model,model_served,endpoint,status,error_code,input_tokens,output_tokens,cost_usd,saved_usd,cache_hit,stream,estimated,latency_ms",
			"r07,2026-11-12T08:00:00Z,ml,bob,gpt-4o,gpt-4o,chat/completions,200,,840000,100000,3.10,0.00,false,false,false,1140"}},
	}
	for _, tt := range tests {
		rec := e.do(t, "GET", tt.target, "", nil)
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/csv") ||
			!strings.Contains(rec.Header().Get("Content-Disposition"), "attachment") {
			t.Errorf("GET %s: %d %v", tt.target, rec.Code, rec.Header())
			continue
		}
		lines := strings.Split(rec.Body.String(), "\n")
		if len(lines) < len(tt.lines) || !reflect.DeepEqual(lines[:len(tt.lines)], tt.lines) {
			t.Errorf("GET %s:\n%s\nwant first lines:\n%s", tt.target, rec.Body, strings.Join(tt.lines, "\n"))
		}
	}
}

func TestCSVNeutralisesFormulas(t *testing.T) {
	e := newEnv(t, dashboard.Config{})
	r := dashboardtest.Rec{ID: "x1", At: "2026-11-15T10:00:00Z", Project: "=HYPERLINK(\"http://evil\")", User: "@bob", Model: "gpt-4o", Status: 200, Cost: "0.01"}
	rec, _ := r.Record()
	if err := e.st.Record(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	body := e.do(t, "GET", "/api/breakdown.csv?since=2026-11-15", "", nil).Body.String()
	if !strings.Contains(body, `"'=HYPERLINK(""http://evil"")",'@bob,gpt-4o`) {
		t.Errorf("formula cells should start with a quote:\n%s", body)
	}
}

func TestPage(t *testing.T) {
	for _, adminMode := range []bool{false, true} {
		e := newEnv(t, dashboard.Config{Admin: adminMode})
		rec := e.do(t, "GET", "/", "", nil)
		b := rec.Body.String()
		if rec.Code != 200 || !strings.Contains(b, `<title>wrapi dashboard · local</title>`) || !strings.Contains(b, `src="assets/app.js"`) {
			t.Fatalf("page: %d\n%s", rec.Code, b)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("CSP: %q", csp)
		}
		if got := strings.Contains(b, `name="wrapi-csrf"`); got != adminMode {
			t.Errorf("admin=%v: CSRF token in page = %v", adminMode, got)
		}
		if got := strings.Contains(b, `id="limit-form"`); got != adminMode {
			t.Errorf("admin=%v: limit form in page = %v", adminMode, got)
		}
	}
	e := newEnv(t, dashboard.Config{})
	for path, ct := range map[string]string{"/assets/app.js": "text/javascript", "/assets/app.css": "text/css"} {
		rec := e.do(t, "GET", path, "", nil)
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), ct) || rec.Body.Len() < 1000 {
			t.Errorf("GET %s: %d %q %d bytes", path, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
		}
	}
	if rec := e.do(t, "GET", "/nope", "", nil); rec.Code != 404 {
		t.Errorf("unknown path: %d", rec.Code)
	}
}

func TestPageEscapesStage(t *testing.T) {
	st, _ := sqlite.Open(context.Background(), ":memory:")
	defer st.Close()
	h, err := dashboard.New(dashboard.Config{Stage: `<script>alert(1)</script>`, Source: dashboard.Local{Service: &admin.Service{Store: st}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if strings.Contains(rec.Body.String(), "<script>alert") {
		t.Errorf("stage not escaped:\n%s", rec.Body)
	}
}

func TestHostPinning(t *testing.T) {
	e := newEnv(t, dashboard.Config{Hosts: []string{"127.0.0.1:8790", "localhost:8790"}})
	for host, want := range map[string]int{"127.0.0.1:8790": 200, "LOCALHOST:8790": 200, "evil.example:8790": 421, "127.0.0.1:9999": 421} {
		req := httptest.NewRequest("GET", "/api/summary", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %s: %d, want %d", host, rec.Code, want)
		}
	}
}

// csrfToken reads the token from the admin page.
func csrfToken(t *testing.T, e env) string {
	t.Helper()
	b := e.do(t, "GET", "/", "", nil).Body.String()
	_, rest, ok := strings.Cut(b, `<meta name="wrapi-csrf" content="`)
	tok, _, _ := strings.Cut(rest, `"`)
	if !ok || len(tok) != 64 {
		t.Fatalf("no CSRF token in the admin page")
	}
	return tok
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	e := newEnv(t, dashboard.Config{})
	for _, path := range []string{"/api/limits/set", "/api/limits/delete", "/api/cache/flush"} {
		rec := e.do(t, "POST", path, `{"project":"ml","period":"month","usd":"1"}`, map[string]string{"Content-Type": "application/json"})
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "--admin") {
			t.Errorf("POST %s read-only: %d %s", path, rec.Code, rec.Body)
		}
	}
	if ls, _ := e.st.ListLimits(context.Background()); len(ls) != 4 {
		t.Errorf("limits changed: %d", len(ls))
	}
	if len(e.cache.scopes) != 0 {
		t.Errorf("cache flushed: %v", e.cache.scopes)
	}
}

func TestAdminWrites(t *testing.T) {
	e := newEnv(t, dashboard.Config{Admin: true})
	tok := csrfToken(t, e)
	good := map[string]string{"Content-Type": "application/json", dashboard.HeaderCSRF: tok}
	with := func(k, v string) map[string]string {
		h := map[string]string{}
		for a, b := range good {
			h[a] = b
		}
		if v == "" {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}
	ctx := context.Background()
	limitIDs := func() []string {
		ls, _ := e.st.ListLimits(ctx)
		var ids []string
		for _, l := range ls {
			ids = append(ids, l.ID+"="+l.Amount.String())
		}
		return ids
	}
	before := limitIDs()

	refused := []struct {
		name, path, body string
		hdr              map[string]string
		code             int
	}{
		{"no token", "/api/limits/set", `{"project":"ml","period":"day","usd":"5"}`, with(dashboard.HeaderCSRF, ""), 403},
		{"wrong token", "/api/limits/set", `{"project":"ml","period":"day","usd":"5"}`, with(dashboard.HeaderCSRF, strings.Repeat("0", 64)), 403},
		{"cross-site", "/api/limits/set", `{"project":"ml","period":"day","usd":"5"}`, with("Sec-Fetch-Site", "cross-site"), 403},
		{"other origin", "/api/cache/flush", `{}`, with("Origin", "http://evil.example"), 403},
		{"form post", "/api/limits/delete", `project=ml`, with("Content-Type", "application/x-www-form-urlencoded"), 415},
		{"bad amount", "/api/limits/set", `{"project":"ml","period":"day","usd":"-1"}`, good, 400},
		{"too precise", "/api/limits/set", `{"project":"ml","period":"day","usd":"0.0000000001"}`, good, 400},
		{"no period", "/api/limits/set", `{"project":"ml","usd":"1"}`, good, 400},
		{"unknown field", "/api/limits/set", `{"project":"ml","period":"day","usd":"1","stage":"prod"}`, good, 400},
		{"missing limit", "/api/limits/delete", `{"project":"nope","period":"day"}`, good, 404},
		{"bad scope", "/api/cache/flush", `{"scope":"project:"}`, good, 400},
	}
	for _, tt := range refused {
		if rec := e.do(t, "POST", tt.path, tt.body, tt.hdr); rec.Code != tt.code {
			t.Errorf("%s: %d %s, want %d", tt.name, rec.Code, rec.Body, tt.code)
		}
	}
	if got := limitIDs(); !reflect.DeepEqual(got, before) || len(e.cache.scopes) != 0 {
		t.Fatalf("a refused request changed something: %v %v", got, e.cache.scopes)
	}
	if rec := e.do(t, "GET", "/api/limits/set", "", nil); rec.Code != 405 {
		t.Errorf("GET on a POST endpoint: %d", rec.Code)
	}

	// Same-origin requests with the token go through the admin service. (A
	// new limit starts at zero: reservations made before it do not count.)
	sameOrigin := with("Sec-Fetch-Site", "same-origin")
	if rec := e.do(t, "POST", "/api/limits/set", `{"project":"web","user":"dave","period":"day","usd":"0.10"}`, sameOrigin); rec.Code != 200 {
		t.Fatalf("set: %d %s", rec.Code, rec.Body)
	}
	var l dashboard.Limits
	e.get(t, "/api/limits?project=web&user=dave", &l)
	if len(l.Limits) != 3 || l.Limits[2].ID != "local|web|dave|*|day" || l.Limits[2].Amount != usd("0.10") ||
		l.Limits[2].Committed != 0 || l.Limits[2].Level != dashboard.LevelOK || l.Limits[2].UsedPct != "0.0" {
		t.Errorf("after set: %+v", l.Limits)
	}
	if rec := e.do(t, "POST", "/api/limits/delete", `{"project":"ml","user":"alice","period":"day"}`, good); rec.Code != 200 {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	want := []string{"local|*|*|gpt-4o|total=100.00", "local|ml|*|*|month=9.00", "local|web|*|*|month=50.00", "local|web|dave|*|day=0.10"}
	if got := limitIDs(); !reflect.DeepEqual(got, want) {
		t.Errorf("limits after set and delete: %v", got)
	}
	for _, scope := range []string{"project:ml", ""} {
		if rec := e.do(t, "POST", "/api/cache/flush", `{"scope":"`+scope+`"}`, good); rec.Code != 200 {
			t.Errorf("flush %q: %d %s", scope, rec.Code, rec.Body)
		}
	}
	if !reflect.DeepEqual(e.cache.scopes, []string{"project:ml", ""}) {
		t.Errorf("flushed scopes: %q", e.cache.scopes)
	}
}

func TestFlushWithoutCache(t *testing.T) {
	st, _ := sqlite.Open(context.Background(), ":memory:")
	defer st.Close()
	h, _ := dashboard.New(dashboard.Config{Admin: true, Source: dashboard.Local{Service: &admin.Service{Store: st}}})
	e := env{h: h, st: st}
	rec := e.do(t, "POST", "/api/cache/flush", `{}`, map[string]string{"Content-Type": "application/json", dashboard.HeaderCSRF: csrfToken(t, e)})
	if rec.Code != http.StatusConflict {
		t.Errorf("flush without a cache: %d %s", rec.Code, rec.Body)
	}
}

// failing is a Source whose store is down.
type failing struct{ dashboard.Local }

func (failing) Usage(context.Context, admin.UsageQuery) (admin.Report, error) {
	return admin.Report{}, errSecret
}

var errSecret = &admin.ResponseError{Type: "x", Message: "dsn=file:/secret/path"}

func TestStoreFailureIsNotLeaked(t *testing.T) {
	h, _ := dashboard.New(dashboard.Config{Source: failing{}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/summary", nil))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret") {
		t.Errorf("store failure: %d %s", rec.Code, rec.Body)
	}
}

// A day busier than the records the dashboard reads reports its refusals
// as unknown and never reads that day's records.
type noRecords struct{ dashboard.Local }

func (noRecords) Usage(_ context.Context, q admin.UsageQuery) (admin.Report, error) {
	rows := []store.UsageRow{
		{Day: "2026-11-14", Project: "p", User: "u", Model: "m", Requests: 6000, Errors: 40},
		{Day: "2026-11-15", Project: "p", User: "u", Model: "m", Requests: 10},
	}
	return admin.Group(rows, q.By), nil
}

func (noRecords) TopRecords(context.Context, store.UsageFilter, int) ([]store.Record, error) {
	panic("TopRecords called")
}

func TestErrorsOnBusyDays(t *testing.T) {
	h, _ := dashboard.New(dashboard.Config{Source: noRecords{}, Now: func() time.Time { return dashboardtest.Now }})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/errors?since=2026-11-14", nil))
	var er dashboard.Errors
	if err := json.Unmarshal(rec.Body.Bytes(), &er); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if er.Complete || er.Errors != 40 || er.Days[0].Refusals != nil || er.Days[1].Refusals == nil || *er.Days[1].Refusals != 0 {
		t.Errorf("busy day: %+v", er)
	}
	if !strings.Contains(rec.Body.String(), `"refusals": null`) {
		t.Errorf("unknown refusals should be null:\n%s", rec.Body)
	}
}
