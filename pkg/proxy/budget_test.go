package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/identity"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/proxy"
	"github.com/wrapi-dev/wrapi/pkg/store"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

func setLimitScope(t *testing.T, st store.Store, sc budget.Scope, p budget.Period, usd string) budget.Limit {
	t.Helper()
	l, err := budget.NewLimit(sc, p, money.MustParse(usd))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutLimit(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	return l
}

func setLimit(t *testing.T, e *env, project, usd string) {
	setLimitScope(t, e.st, budget.Scope{Stage: "test", Project: project}, budget.Month, usd)
}

func committed(t *testing.T, e *env, project string) money.Nanos {
	t.Helper()
	ls, _ := e.st.ListLimits(context.Background())
	var sum money.Nanos
	for _, l := range ls {
		if l.Scope.Project != project {
			continue
		}
		cs, err := e.st.Committed(context.Background(), []budget.Check{{Limit: l, Window: l.Period.WindowAt(time.Now(), nil)}})
		if err != nil {
			t.Fatal(err)
		}
		sum += cs[0].Committed
	}
	return sum
}

// exactUpstream answers every chat request with usage equal to wrapi's
// worst case for it — prompt tokens = body bytes + the documented
// overhead, completion tokens = max_completion_tokens — so every request
// costs exactly what it reserves and the number that fit is exact.
type exactUpstream struct {
	srv      *httptest.Server
	calls    atomic.Int64
	lastBody atomic.Value
	// prompt, when set, is the prompt token count to report instead of
	// the received body's length (a bound wrapi adds is not prompt).
	prompt atomic.Int64
}

func newExactUpstream(t *testing.T) *exactUpstream {
	u := &exactUpstream{}
	tmpl := cassette(t, "chat").Body
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		u.lastBody.Store(body)
		var req struct {
			Model    string `json:"model"`
			MaxTok   int64  `json:"max_completion_tokens"`
			Messages []any  `json:"messages"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			w.WriteHeader(400)
			return
		}
		var resp map[string]any
		_ = json.Unmarshal(tmpl, &resp)
		resp["model"] = req.Model
		prompt := int64(len(body)) + proxy.InputOverheadTokens
		if p := u.prompt.Load(); p > 0 {
			prompt = p
		}
		resp["usage"] = map[string]any{
			"prompt_tokens":     prompt,
			"completion_tokens": req.MaxTok,
			"total_tokens":      prompt + req.MaxTok,
		}
		out, _ := json.Marshal(resp)
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

type budgetEnv struct {
	st   *sqlite.Store
	h    *proxy.Handler
	srv  *httptest.Server
	up   *exactUpstream
	now  atomic.Pointer[time.Time]
	hits atomic.Int64
}

func newBudgetEnv(t *testing.T, cfg func(*proxy.Config)) *budgetEnv {
	b := &budgetEnv{up: newExactUpstream(t)}
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/wrapi.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b.st = st
	t0 := time.Date(2026, 11, 30, 23, 59, 0, 0, time.UTC)
	b.now.Store(&t0)
	u, _ := url.Parse(b.up.srv.URL + "/v1")
	c := proxy.Config{Stage: "test", Upstream: u, APIKey: "k", Store: st,
		Auth: userFromHeader{}, Now: func() time.Time { return *b.now.Load() }}
	if cfg != nil {
		cfg(&c)
	}
	if b.h, err = proxy.New(c); err != nil {
		t.Fatal(err)
	}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		b.h.ServeHTTP(w, r)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// userFromHeader is a test authenticator: the user comes from X-Test-User.
type userFromHeader struct{}

func (userFromHeader) Authenticate(r *http.Request) (identity.Principal, error) {
	u := r.Header.Get("X-Test-User")
	if u == "" {
		u = "alice"
	}
	return identity.Principal{User: u}, nil
}

// chatBody is a fixed request: 100 output tokens at most.
var chatBody = []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}],"max_completion_tokens":100}`)

// costOfChatBody is its exact cost on gpt-4o-mini (input $0.15 and output
// $0.60 per 1M tokens, i.e. 150,000,000 and 600,000,000 nano-USD per 1M):
// (len+16) input tokens + 100 output tokens, rounded up to a nano-dollar.
func costOfChatBody() money.Nanos {
	in := int64(len(chatBody)) + proxy.InputOverheadTokens
	num := in*150_000_000 + 100*600_000_000
	return money.Nanos((num + 999_999) / 1_000_000)
}

func (b *budgetEnv) fire(t *testing.T, n int, hdr func(i int) map[string]string) (ok, refused int) {
	t.Helper()
	var wg sync.WaitGroup
	var okN, refN atomic.Int64
	start := make(chan struct{})
	errs := make(chan error, n)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0}}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("POST", b.srv.URL+"/v1/chat/completions", bytes.NewReader(chatBody))
			req.Header.Set("Content-Type", "application/json")
			if hdr != nil {
				for k, v := range hdr(i) {
					req.Header.Set(k, v)
				}
			}
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				okN.Add(1)
			case 429:
				var ae apiError
				_ = json.Unmarshal(body, &ae)
				if ae.Error.Type != "insufficient_quota" || ae.Error.Code == nil || *ae.Error.Code != "budget_exceeded" ||
					resp.Header.Get("x-should-retry") != "false" {
					errs <- fmt.Errorf("bad refusal: %s %v", body, resp.Header)
					return
				}
				refN.Add(1)
			default:
				errs <- fmt.Errorf("status %d: %s", resp.StatusCode, body)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	b.h.Wait()
	return int(okN.Load()), int(refN.Load())
}

func (b *budgetEnv) spent(t *testing.T, l budget.Limit, at time.Time) money.Nanos {
	cs, err := b.st.Committed(context.Background(), []budget.Check{{Limit: l, Window: l.Period.WindowAt(at, nil)}})
	if err != nil {
		t.Fatal(err)
	}
	return cs[0].Committed
}

func (b *budgetEnv) recordedSpend(t *testing.T) (money.Nanos, int) {
	rs, err := b.st.Records(context.Background(), store.UsageFilter{}, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var sum money.Nanos
	for _, r := range rs {
		sum += r.Cost
	}
	return sum, len(rs)
}

func TestBudgetHoldsUnder500ConcurrentRequests(t *testing.T) {
	const n, k = 500, 37
	cost := costOfChatBody()
	b := newBudgetEnv(t, nil)
	limit := setLimitScope(t, b.st, budget.Scope{Stage: "test", Project: "N/A"}, budget.Month, (money.Nanos(k)*cost + cost - 1).String())
	ok, refused := b.fire(t, n, nil)
	if ok != k || refused != n-k {
		t.Fatalf("%d requests against a limit affording %d: %d succeeded, %d refused", n, k, ok, refused)
	}
	spent := b.spent(t, limit, *b.now.Load())
	rec, count := b.recordedSpend(t)
	if spent != money.Nanos(k)*cost || rec != spent || spent > limit.Amount {
		t.Errorf("committed %s, recorded %s, limit %s, want %d × %s", spent, rec, limit.Amount, k, cost)
	}
	if count != n {
		t.Errorf("%d records, want one per request (%d)", count, n)
	}
	if held, _ := b.st.Reservations(context.Background()); len(held) != 0 {
		t.Errorf("%d reservations left", len(held))
	}
	if got := b.up.calls.Load(); got != k {
		t.Errorf("upstream saw %d calls, want %d: a refused request must never reach OpenAI", got, k)
	}
}

func TestBudgetMixedScopesTightestWins(t *testing.T) {
	cost := costOfChatBody()
	b := newBudgetEnv(t, nil)
	// Project affords 100, user alice 30, model 60: alice is tightest for
	// her requests; bob is bounded by the model limit after alice's 30.
	proj := setLimitScope(t, b.st, budget.Scope{Stage: "test", Project: "N/A"}, budget.Month, (100 * cost).String())
	alice := setLimitScope(t, b.st, budget.Scope{Stage: "test", User: "alice"}, budget.Day, (30 * cost).String())
	model := setLimitScope(t, b.st, budget.Scope{Stage: "test", Model: "gpt-4o-mini"}, budget.Total, (60 * cost).String())
	ok, _ := b.fire(t, 200, func(i int) map[string]string {
		if i%2 == 0 {
			return map[string]string{"X-Test-User": "alice"}
		}
		return map[string]string{"X-Test-User": "bob"}
	})
	now := *b.now.Load()
	if ok != 60 {
		t.Errorf("%d succeeded, want 60 (the model limit)", ok)
	}
	if got := b.spent(t, alice, now); got > alice.Amount {
		t.Errorf("alice spent %s over %s", got, alice.Amount)
	}
	if got := b.spent(t, model, now); got != 60*cost {
		t.Errorf("model spent %s, want %s", got, 60*cost)
	}
	if got := b.spent(t, proj, now); got != 60*cost {
		t.Errorf("project spent %s, want %s", got, 60*cost)
	}
	rs, _ := b.st.Records(context.Background(), store.UsageFilter{User: "alice"}, 1000)
	aliceOK := 0
	for _, r := range rs {
		if r.Status == 200 {
			aliceOK++
		}
	}
	if aliceOK > 30 {
		t.Errorf("alice got %d through a limit of 30", aliceOK)
	}
}

func TestBudgetAcrossMonthBoundary(t *testing.T) {
	const k = 10
	cost := costOfChatBody()
	b := newBudgetEnv(t, nil)
	limit := setLimitScope(t, b.st, budget.Scope{Stage: "test", Project: "N/A"}, budget.Month, (k * cost).String())
	nov := time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC)
	dec := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	b.now.Store(&nov)
	if ok, _ := b.fire(t, 100, nil); ok != k {
		t.Fatalf("November: %d succeeded, want %d", ok, k)
	}
	b.now.Store(&dec)
	if ok, _ := b.fire(t, 100, nil); ok != k {
		t.Fatalf("December: %d succeeded, want %d (a new calendar month)", ok, k)
	}
	if a, c := b.spent(t, limit, nov), b.spent(t, limit, dec); a != k*cost || c != k*cost {
		t.Errorf("spent Nov %s Dec %s, want %s each", a, c, k*cost)
	}
}

func TestBudgetClampsUnboundedOutput(t *testing.T) {
	b := newBudgetEnv(t, nil)
	// No max tokens in the request. gpt-4o-mini could write 16384 output
	// tokens (≈ $0.0098); the limit affords far fewer.
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Write a long story."}]}`)
	in := int64(len(body)) + proxy.InputOverheadTokens
	b.up.prompt.Store(in)                 // the worst case wrapi reserved for
	limitAmt := money.MustParse("0.0006") // 600,000 nano-USD
	setLimitScope(t, b.st, budget.Scope{Stage: "test", Project: "N/A"}, budget.Month, limitAmt.String())
	// Prices in nano-USD per 1M tokens: input 150,000,000, output
	// 600,000,000. Affordable output n: (in×150e6 + n×600e6)/1e6 ≤ 600,000
	// nano-USD, so n = floor((600,000×1e6 − in×150e6) / 600e6) ≈ 975.
	wantMax := (600_000*1_000_000 - in*150_000_000) / 600_000_000
	resp, err := http.Post(b.srv.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	b.h.Wait()
	var sent struct {
		Max int64 `json:"max_completion_tokens"`
	}
	json.Unmarshal(b.up.lastBody.Load().([]byte), &sent)
	if sent.Max != wantMax {
		t.Fatalf("upstream got max_completion_tokens=%d, want the clamp %d", sent.Max, wantMax)
	}
	spent, _ := b.recordedSpend(t)
	if spent > limitAmt {
		t.Fatalf("spent %s over the limit %s", spent, limitAmt)
	}
	// What is left cannot afford a useful answer: refused, and the SDK
	// does not retry (x-should-retry: false), even with retries enabled.
	before := b.hits.Load()
	client := openai.NewClient(option.WithBaseURL(b.srv.URL+"/v1"), option.WithAPIKey("x"), option.WithMaxRetries(3))
	_, err = client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Write a long story.")},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "budget_exceeded" || apiErr.Type != "insufficient_quota" {
		t.Fatalf("want a 429 budget_exceeded, got %v", err)
	}
	if got := b.hits.Load() - before; got != 1 {
		t.Errorf("the SDK sent %d requests for one refused call; x-should-retry: false must stop retries", got)
	}
}

func TestRequireLimit(t *testing.T) {
	b := newBudgetEnv(t, func(c *proxy.Config) { c.RequireLimit = true })
	resp, err := http.Post(b.srv.URL+"/v1/chat/completions", "application/json", bytes.NewReader(chatBody))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ae := decodeError(t, body)
	if resp.StatusCode != 403 || ae.Error.Code == nil || *ae.Error.Code != "limit_required" || !bytes.Contains(body, []byte("wrapi limits set")) {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	if b.up.calls.Load() != 0 {
		t.Error("an uncovered request reached OpenAI")
	}
}

// A limit set while the proxy is serving binds the very next request (the
// list of limits is not cached by default).
func TestNewLimitBindsTheNextRequest(t *testing.T) {
	b := newBudgetEnv(t, nil)
	post := func() int {
		resp, err := http.Post(b.srv.URL+"/v1/chat/completions", "application/json", bytes.NewReader(chatBody))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(); got != 200 {
		t.Fatalf("no limit yet: %d", got)
	}
	b.h.Wait()
	setLimitScope(t, b.st, budget.Scope{Stage: "test", Project: "N/A"}, budget.Month, "0.000001")
	if got := post(); got != 429 {
		t.Fatalf("right after a limit was set: %d, want 429", got)
	}
}
