package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/wrapi-dev/wrapi/pkg/dashboard"
	"github.com/wrapi-dev/wrapi/pkg/dashboard/dashboardtest"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

func TestDashboardListenPolicy(t *testing.T) {
	tests := []struct {
		listen        string
		admin, remote bool
		ok            bool
	}{
		{"127.0.0.1:8790", false, false, true},
		{"127.0.0.1:8790", true, false, true},
		{"localhost:8790", true, false, true},
		{"[::1]:8790", true, false, true},
		{"0.0.0.0:8790", false, false, false},
		{":8790", false, false, false},
		{"192.0.2.1:8790", false, true, true},
		{"0.0.0.0:8790", true, true, false},
		{"127.0.0.1", false, false, false},
	}
	for _, tt := range tests {
		err := checkDashboardListen(dashboardConfig{listen: tt.listen, admin: tt.admin, allowRemote: tt.remote})
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, errUsage) {
			t.Errorf("listen %s admin=%v allow-remote=%v: %v", tt.listen, tt.admin, tt.remote, err)
		}
	}
	// Through the command line, refused before anything is opened.
	var out, errb bytes.Buffer
	err := runDashboard(context.Background(), []string{"--store", filepath.Join(t.TempDir(), "x.db"), "--listen", "0.0.0.0:0", "--admin"}, &out, &errb)
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("wrapi dashboard --listen 0.0.0.0:0 --admin: %v", err)
	}
}

// seededStore writes the dashboardtest history into a store file.
func seededStore(t *testing.T) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "wrapi.db")
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := dashboardtest.Seed(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	return db
}

// startDashboard runs serveDashboard on a free loopback port until the
// test ends, and returns its address.
func startDashboard(t *testing.T, c dashboardConfig) (string, *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- serveDashboard(ctx, c, &out, slog.New(slog.DiscardHandler), ready) }()
	select {
	case addr := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("dashboard: %v", err)
			}
		})
		return addr, &out
	case err := <-done:
		cancel()
		t.Fatalf("dashboard did not start: %v", err)
		return "", nil
	}
}

func TestDashboardServesTheStore(t *testing.T) {
	db := seededStore(t)
	now := func() time.Time { return dashboardtest.Now }
	addr, out := startDashboard(t, dashboardConfig{listen: "127.0.0.1:0", storePath: db, stage: "local", timezone: "UTC", admin: true, now: now})
	if !strings.Contains(out.String(), "http://"+addr+"/") || !strings.Contains(out.String(), "admin") {
		t.Errorf("start line: %q", out.String())
	}
	base := "http://" + addr

	resp, err := http.Get(base + "/api/summary")
	if err != nil {
		t.Fatal(err)
	}
	var s dashboard.Summary
	err = json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if err != nil || s.Totals.Cost.String() != "8.150125456" || s.Totals.Requests != 15 {
		t.Fatalf("summary: %v %+v", err, s)
	}

	// A request naming another host (DNS rebinding) is refused.
	req, _ := http.NewRequest("GET", base+"/api/summary", nil)
	req.Host = "rebind.example:" + strings.Split(addr, ":")[1]
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("foreign Host: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}

	// The cache flush of the page starts a new flush generation for the
	// scope in the store, as `wrapi cache flush --project ml` does.
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	gens, err := st.CacheGenerations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	global0, ml0, _ := gens.Get(context.Background(), "project:ml")
	_, web0, _ := gens.Get(context.Background(), "project:web")
	page, _ := http.Get(base + "/")
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	_, rest, _ := strings.Cut(string(body), `name="wrapi-csrf" content="`)
	tok, _, _ := strings.Cut(rest, `"`)
	req, _ = http.NewRequest("POST", base+"/api/cache/flush", strings.NewReader(`{"scope":"project:ml"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(dashboard.HeaderCSRF, tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("flush: %v %v", err, resp)
	}
	resp.Body.Close()
	global1, ml1, err := gens.Get(context.Background(), "project:ml")
	_, web1, _ := gens.Get(context.Background(), "project:web")
	if err != nil || global1 != global0 || ml1 == ml0 || web1 != web0 {
		t.Errorf("generations (global, ml, web) went from (%d, %d, %d) to (%d, %d, %d), want only ml's to change: %v",
			global0, ml0, web0, global1, ml1, web1, err)
	}
}

// chromium finds the browser for the real-browser test: $WRAPI_CHROMIUM,
// /usr/bin/chromium or chromium on PATH. Without one the test is skipped,
// except under CI=true where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("WRAPI_CHROMIUM"), "/usr/bin/chromium"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install -y chromium); the dashboard's browser test must run in CI")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium, or set WRAPI_CHROMIUM): skipping the dashboard's browser test")
	return ""
}

// screenshotDir is where the browser test saves its screenshots: the
// repository's ignored .cache/screenshots, or $WRAPI_SCREENSHOTS.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("WRAPI_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", ".cache", "screenshots")
	}
	dir, err := filepath.Abs(dir)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// pageState is what the browser shows, read from the DOM.
type pageState struct {
	Cost, CostExact, Requests, Errors, Refusals, HitRate, Hits, Saved, Range string
	Limits                                                                   []struct {
		ID, Level, Used, Spent, Held, Remaining, Color string
	}
	Projects    []string
	SpendBars   int
	Legend      []string
	ErrorsNote  string
	TopFirst    []string
	Banner      string
	Overflow    int
	URL         string
	CSVSpend    string
	VisibleRows int
}

const readPage = `(() => {
  const t = (s) => (document.querySelector(s) || {}).textContent || '';
  const cells = (tr) => [...tr.querySelectorAll('td')].map((c) => c.textContent.trim());
  return {
    Cost: t('#kpi-cost'), CostExact: document.querySelector('#kpi-cost').dataset.usd || '', Requests: t('#kpi-requests'),
    Errors: t('#kpi-errors'), Refusals: t('#kpi-refusals'), HitRate: t('#kpi-hitrate'), Hits: t('#kpi-hits'),
    Saved: t('#kpi-saved'), Range: t('#kpi-range'),
    Limits: [...document.querySelectorAll('#limits-table tbody tr[data-limit]')].map((tr) => ({
      ID: tr.dataset.limit, Level: tr.dataset.level, Used: tr.querySelector('.lbl').textContent,
      Spent: cells(tr)[5], Held: cells(tr)[6], Remaining: cells(tr)[7],
      Color: getComputedStyle(tr.querySelector('.seg.spent')).backgroundColor })),
    Projects: [...document.querySelectorAll('#breakdown-table tbody tr:not([hidden])')].map((tr) => cells(tr).slice(0, 6).join('|')),
    SpendBars: document.querySelectorAll('#spend-chart rect').length,
    Legend: [...document.querySelectorAll('#spend-legend li')].map((li) => li.textContent),
    ErrorsNote: t('#errors-codes'),
    TopFirst: cells(document.querySelector('#top-table tbody tr')),
    Banner: document.querySelector('#banner').hidden ? '' : t('#banner'),
    Overflow: document.documentElement.scrollWidth - window.innerWidth,
    URL: location.search,
    CSVSpend: document.querySelector('a.csv[data-view=spend]').getAttribute('href'),
    VisibleRows: document.querySelectorAll('#breakdown-table tbody tr:not([hidden])').length,
  };
})()`

// TestDashboardInBrowser loads the page in headless Chromium over the
// seeded store, checks the figures it shows, applies a filter, deletes a
// limit through the confirmation dialog, and saves screenshots.
func TestDashboardInBrowser(t *testing.T) {
	chrome := chromium(t)
	db := seededStore(t)
	now := func() time.Time { return dashboardtest.Now }
	addr, _ := startDashboard(t, dashboardConfig{listen: "127.0.0.1:0", storePath: db, stage: "local", timezone: "UTC", admin: true, now: now})
	shots := screenshotDir(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc() // stops the browser process
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		if os.Getenv("CI") == "true" {
			t.Fatalf("starting %s: %v", chrome, err)
		}
		t.Skipf("cannot start %s: %v", chrome, err)
	}

	var mu sync.Mutex
	var jsErrors []string
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			mu.Lock()
			jsErrors = append(jsErrors, ev.ExceptionDetails.Text+" "+fmt.Sprint(ev.ExceptionDetails.Exception))
			mu.Unlock()
		}
	}()

	loaded := func(n int) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.body.dataset.loaded === "%d"`, n),
			chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("page load %d: %v", n, err)
		}
	}
	read := func() pageState {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](readPage))
		if err != nil {
			t.Fatalf("reading the page: %v", err)
		}
		return s
	}
	shoot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		p := filepath.Join(shots, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatal(err)
	}
	loaded(1)
	// Open project ml, then its user alice, to show the drill-down.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#breakdown-table tr.lvl0 button.tog`))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#breakdown-table tr.lvl1 button.tog`))); err != nil {
		t.Fatal(err)
	}
	s := read()
	shoot("dashboard.png")

	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: page shows %q, want %q", what, got, want)
		}
	}
	check("banner", s.Banner, "")
	check("spend", s.Cost, "$8.15")
	check("exact spend", s.CostExact, "8.150125456")
	check("requests", s.Requests, "15")
	check("errors", s.Errors, "4")
	check("refusals", s.Refusals, "3 budget refusals")
	check("hit rate", s.HitRate, "13.3%")
	check("hits", s.Hits, "2 of 15 requests")
	check("saved", s.Saved, "$2.46")
	check("range", s.Range, "2026-10-17 → 2026-11-15 (30 days, UTC)")
	check("errors note", s.ErrorsNote, "4 errors out of 15 requests: budget_exceeded 3 · upstream_error 1")
	check("top request", strings.Join(s.TopFirst, "|"), "2026-11-12 08:00|ml|bob|gpt-4o|chat/completions|200|840,000|100,000|1,140 ms|$3.10|$0.00")
	check("spend legend", strings.Join(s.Legend, ";"), "ml $7.53;web $0.62")
	check("breakdown", strings.Join(s.Projects, "\n"), strings.Join([]string{
		"▾mlfilter|10|3|2,510,123|395,045|$7.53",
		"▾alicefilter|6|1|1,570,123|270,045|$4.40",
		"gpt-4ofilter|5|1|1,570,000|270,000|$4.40",
		"gpt-4o-minifilter|1|0|123|45|$0.000123",
		"▸bobfilter|4|2|940,000|125,000|$3.13",
		"▸webfilter|5|1|720,100|170,000|$0.62",
	}, "\n"))
	// 8 bar segments: ml on 5 days, web on 3 (11-11 and 11-13 have none).
	if s.SpendBars != 8 {
		t.Errorf("spend chart has %d bar segments, want 8", s.SpendBars)
	}
	type lim struct{ ID, Level, Used, Spent, Held, Remaining, Color string }
	var lims []lim
	for _, l := range s.Limits {
		lims = append(lims, lim(l))
	}
	wantLims := []lim{
		{"local|*|*|gpt-4o|total", "ok", "17.2%", "$17.00", "$0.25", "$82.75", "rgb(46, 133, 64)"},
		{"local|ml|*|*|month", "warn", "86.4%", "$7.53", "$0.25", "$1.22", "rgb(224, 161, 0)"},
		{"local|ml|alice|*|day", "full", "100.0%", "$0.75", "$0.25", "$0.00", "rgb(208, 52, 44)"},
		{"local|web|*|*|month", "ok", "1.3%", "$0.62", "$0.05", "$49.33", "rgb(46, 133, 64)"},
	}
	if fmt.Sprint(lims) != fmt.Sprint(wantLims) {
		t.Errorf("limits:\n got %v\nwant %v", lims, wantLims)
	}
	if s.Overflow > 0 {
		t.Errorf("the page is %dpx wider than the window", s.Overflow)
	}

	// Filter on project web.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#filters select[name=project]`), "web"),
		chromedp.SetValue(chromedp.CSS(`#filters select[name=by]`), "model"),
		chromedp.Click(chromedp.CSS(`#filters button[type=submit]`)),
	); err != nil {
		t.Fatal(err)
	}
	loaded(2)
	s = read()
	shoot("dashboard-web.png")
	check("filtered URL", s.URL, "?since=2026-10-17&until=2026-11-16&project=web&by=model")
	check("filtered spend", s.Cost, "$0.62")
	check("filtered exact spend", s.CostExact, "0.620002")
	check("filtered requests", s.Requests, "5")
	check("filtered errors", s.Errors, "1")
	check("filtered refusals", s.Refusals, "0 budget refusals")
	check("filtered hit rate", s.HitRate, "20.0%")
	check("filtered saved", s.Saved, "$0.06")
	check("filtered legend", strings.Join(s.Legend, ";"), "gpt-4o $0.50;gpt-4o-mini $0.12;text-embedding-3-small $0.000002")
	check("filtered CSV link", s.CSVSpend, "api/spend.csv?since=2026-10-17&until=2026-11-16&project=web&by=model")
	if len(s.Limits) != 2 || s.Limits[0].ID != "local|*|*|gpt-4o|total" || s.Limits[1].ID != "local|web|*|*|month" {
		t.Errorf("limits applying to web: %+v", s.Limits)
	}

	// Reset, then delete ml/alice's daily limit through the dialog.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("reset"))); err != nil {
		t.Fatal(err)
	}
	loaded(3)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#limits-table tr[data-limit="local|ml|alice|*|day"] button`))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.querySelector('#confirm').open`)); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("confirm-text")))
	if err != nil || text != "Delete the day limit of 1.00 USD for project ml, user alice, any model?" {
		t.Errorf("confirmation: %q %v", text, err)
	}
	shoot("dashboard-confirm.png")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("confirm-ok"))); err != nil {
		t.Fatal(err)
	}
	loaded(4)
	s = read()
	if len(s.Limits) != 3 || s.Banner != "" {
		t.Errorf("after delete: %+v banner %q", s.Limits, s.Banner)
	}
	// Set a limit with the form, then cancel a second one.
	setLimit := func(usd string) {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.SetValue(chromedp.CSS(`#limit-form input[name=project]`), "web"),
			chromedp.SetValue(chromedp.CSS(`#limit-form input[name=user]`), "dave"),
			chromedp.SetValue(chromedp.CSS(`#limit-form select[name=period]`), "day"),
			chromedp.SetValue(chromedp.CSS(`#limit-form input[name=usd]`), usd),
			chromedp.Click(chromedp.CSS(`#limit-form button[type=submit]`)),
		); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.querySelector('#confirm').open`)); err != nil {
			t.Fatal(err)
		}
	}
	setLimit("0.10")
	text, _ = chromedp.Run(ctx, chromedp.Text(chromedp.ID("confirm-text")))
	check("set confirmation", text, "Set a day limit of 0.10 USD for project web, user dave, any model?")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("confirm-ok"))); err != nil {
		t.Fatal(err)
	}
	loaded(5)
	setLimit("99")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("confirm-cancel"))); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ids []string
	ls, _ := st.ListLimits(context.Background())
	for _, l := range ls {
		ids = append(ids, l.ID+"="+l.Amount.String())
	}
	check("limits in the store", strings.Join(ids, " "),
		"local|*|*|gpt-4o|total=100.00 local|ml|*|*|month=9.00 local|web|*|*|month=50.00 local|web|dave|*|day=0.10")

	// A narrow window: the page reflows to one column without overflowing.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(760, 1000)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the charts redraw 150 ms after a resize
	if s = read(); s.Overflow > 0 {
		t.Errorf("at 760px the page is %dpx wider than the window", s.Overflow)
	}
	shoot("dashboard-narrow.png")

	// The same store through a read-only dashboard: same figures, no
	// buttons that change anything.
	roAddr, _ := startDashboard(t, dashboardConfig{listen: "127.0.0.1:0", storePath: db, stage: "local", timezone: "UTC", now: now})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate("http://"+roAddr+"/")); err != nil {
		t.Fatal(err)
	}
	loaded(1)
	s = read()
	check("read-only spend", s.CostExact, "8.150125456")
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#limit-form, #flush-form, #limits-table button').length`))
	if err != nil || n != 0 || len(s.Limits) != 4 {
		t.Errorf("read-only page: %d admin controls, %d limits, %v", n, len(s.Limits), err)
	}
	shoot("dashboard-readonly.png")

	mu.Lock()
	defer mu.Unlock()
	if len(jsErrors) > 0 {
		t.Errorf("JavaScript errors: %v", jsErrors)
	}
}
