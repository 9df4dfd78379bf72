package pricing

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/wrapi-dev/wrapi/pkg/meter"
	"github.com/wrapi-dev/wrapi/pkg/money"
)

func mustLookup(t testing.TB, tab *Table, name string) Model {
	t.Helper()
	m, ok := tab.Lookup(name)
	if !ok {
		t.Fatalf("Lookup(%q): not found", name)
	}
	return m
}

func loadFile(t testing.TB, path string) *Table {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := Load(f)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return tab
}

// Prices below are written per token in nano-USD: $1.25 per 1M tokens is
// 1250 n/token, $0.0025 per 1M is 2.5 n/token.
func TestCostEmbeddedTable(t *testing.T) {
	tests := []struct {
		name  string
		model string
		tier  string
		usage meter.Usage
		want  money.Nanos
	}{
		{
			// text in 10000-4000 = 6000 × 1250 = 7_500_000
			// cached      4000 ×  125 =   500_000
			// output      2000 × 10000 = 20_000_000 (the 1500 reasoning tokens are inside it, billed once)
			name: "gpt-5 cached and reasoning", model: "gpt-5",
			usage: meter.Usage{InputTokens: 10000, CachedInputTokens: 4000, OutputTokens: 2000, ReasoningTokens: 1500},
			want:  28_000_000,
		},
		{
			// via the snapshot alias: same entry, same cost
			name: "gpt-5 snapshot alias", model: "gpt-5-2025-08-07",
			usage: meter.Usage{InputTokens: 10000, CachedInputTokens: 4000, OutputTokens: 2000, ReasoningTokens: 1500},
			want:  28_000_000,
		},
		{
			// flex: 6000 × 625 + 4000 × 62.5 + 2000 × 5000 = 3_750_000 + 250_000 + 10_000_000
			name: "gpt-5 flex", model: "gpt-5", tier: "flex",
			usage: meter.Usage{InputTokens: 10000, CachedInputTokens: 4000, OutputTokens: 2000, ReasoningTokens: 1500},
			want:  14_000_000,
		},
		{
			// priority: 6000 × 2500 + 4000 × 250 + 2000 × 20000 = 15_000_000 + 1_000_000 + 40_000_000
			name: "gpt-5 priority", model: "gpt-5", tier: "priority",
			usage: meter.Usage{InputTokens: 10000, CachedInputTokens: 4000, OutputTokens: 2000, ReasoningTokens: 1500},
			want:  56_000_000,
		},
		{
			name: "gpt-5 auto is standard", model: "gpt-5", tier: "auto",
			usage: meter.Usage{InputTokens: 10000, CachedInputTokens: 4000, OutputTokens: 2000},
			want:  28_000_000,
		},
		{
			name: "gpt-5 default is standard", model: "gpt-5", tier: "default",
			usage: meter.Usage{InputTokens: 10000, CachedInputTokens: 4000, OutputTokens: 2000},
			want:  28_000_000,
		},
		{
			name: "unknown tier is standard", model: "gpt-5", tier: "scale",
			usage: meter.Usage{InputTokens: 10000, CachedInputTokens: 4000, OutputTokens: 2000},
			want:  28_000_000,
		},
		{
			// gpt-5-nano has no priority price set: standard
			// 1000 × 50 + 100 × 400 = 50_000 + 40_000
			name: "tier the model lacks is standard", model: "gpt-5-nano", tier: "priority",
			usage: meter.Usage{InputTokens: 1000, OutputTokens: 100},
			want:  90_000,
		},
		{
			// flex cached input is $0.0025/1M = 2.5 n/token: 3 × 2.5 = 7.5 → one ceil → 8
			// (a ceil per token would give 9, a floor 7)
			name: "gpt-5-nano flex fractional, one ceil", model: "gpt-5-nano", tier: "flex",
			usage: meter.Usage{InputTokens: 3, CachedInputTokens: 3},
			want:  8,
		},
		{
			// 1234 × 2000 + 5678 × 8000 = 2_468_000 + 45_424_000 (reasoning inside output)
			name: "o3 reasoning", model: "o3-2025-04-16",
			usage: meter.Usage{InputTokens: 1234, OutputTokens: 5678, ReasoningTokens: 5000},
			want:  47_892_000,
		},
		{
			// flex: 1000 × 550 + 1000 × 137.5 + 100 × 2200 = 550_000 + 137_500 + 220_000
			name: "o4-mini flex cached", model: "o4-mini", tier: "flex",
			usage: meter.Usage{InputTokens: 2000, CachedInputTokens: 1000, OutputTokens: 100},
			want:  907_500,
		},
		{
			// text in 1000-600 = 400 × 2500 =  1_000_000
			// audio in        600 × 40000 = 24_000_000
			// text out 500-400 = 100 × 10000 = 1_000_000
			// audio out       400 × 80000 = 32_000_000
			name: "gpt-4o-audio-preview audio in and out", model: "gpt-4o-audio-preview",
			usage: meter.Usage{InputTokens: 1000, AudioInputTokens: 600, OutputTokens: 500, AudioOutputTokens: 400},
			want:  58_000_000,
		},
		{
			// No cached prices: cached text bills at input, cached audio at audio input.
			// uncached audio 500-100 = 400; text in 1000-300-400 = 300 × 150 = 45_000
			// cached text 300-100 = 200 × 150 = 30_000
			// audio 400 × 10000 = 4_000_000; cached audio 100 × 10000 = 1_000_000
			// text out 200-150 = 50 × 600 = 30_000; audio out 150 × 20000 = 3_000_000
			name: "gpt-4o-mini-audio-preview cached audio falls back", model: "gpt-4o-mini-audio-preview-2024-12-17",
			usage: meter.Usage{InputTokens: 1000, CachedInputTokens: 300, AudioInputTokens: 500, CachedAudioInputTokens: 100, OutputTokens: 200, AudioOutputTokens: 150},
			want:  8_105_000,
		},
		{
			// own entry, no cached price: 1000 × 5000 + 100 × 15000
			name: "gpt-4o-2024-05-13 priced apart", model: "gpt-4o-2024-05-13",
			usage: meter.Usage{InputTokens: 1000, CachedInputTokens: 500, OutputTokens: 100},
			want:  6_500_000,
		},
		{
			// 500 × 2500 + 500 × 1250 + 100 × 10000 = 1_250_000 + 625_000 + 1_000_000
			name: "gpt-4o same usage", model: "gpt-4o-2024-08-06",
			usage: meter.Usage{InputTokens: 1000, CachedInputTokens: 500, OutputTokens: 100},
			want:  2_875_000,
		},
		{
			// priority: 50_000 × 700 + 50_000 × 175 + 1000 × 2800 = 35_000_000 + 8_750_000 + 2_800_000
			name: "gpt-4.1-mini priority", model: "gpt-4.1-mini", tier: "priority",
			usage: meter.Usage{InputTokens: 100_000, CachedInputTokens: 50_000, OutputTokens: 1000},
			want:  46_550_000,
		},
		{
			// 12345 × 20
			name: "embedding", model: "text-embedding-3-small",
			usage: meter.Usage{InputTokens: 12345},
			want:  246_900,
		},
		{
			// 12345 × 10 in a batch
			name: "embedding batch", model: "text-embedding-3-small", tier: "batch",
			usage: meter.Usage{InputTokens: 12345},
			want:  123_450,
		},
		{
			name: "moderation is free on purpose", model: "omni-moderation-latest",
			usage: meter.Usage{InputTokens: 999, OutputTokens: 1},
			want:  0,
		},
		{
			// cached > input: text input clamps to 0, cached 300 × 1250; negative output is 0
			name: "malformed usage is clamped", model: "gpt-4o",
			usage: meter.Usage{InputTokens: 100, CachedInputTokens: 300, OutputTokens: -5},
			want:  375_000,
		},
		{
			name: "all negative", model: "gpt-4o",
			usage: meter.Usage{InputTokens: -100, CachedInputTokens: -300, AudioInputTokens: -1, CachedAudioInputTokens: -7, ImageInputTokens: -9, OutputTokens: -5, AudioOutputTokens: -2, ImageOutputTokens: -3},
			want:  0,
		},
		{
			// cached audio > audio: uncached audio clamps to 0; text in 100-50-0 = 50 × 2500,
			// cached text 50-80 → 0, cached audio 80 × 40000 (no cached price: audio input)
			name: "cached audio above audio is clamped", model: "gpt-4o-audio-preview",
			usage: meter.Usage{InputTokens: 100, CachedInputTokens: 50, AudioInputTokens: 10, CachedAudioInputTokens: 80},
			want:  125_000 + 3_200_000,
		},
		{
			name: "zero usage", model: "gpt-5",
			want: 0,
		},
	}
	tab := Default()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustLookup(t, tab, tt.model)
			got, err := m.Cost(tt.usage, tt.tier)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Cost = %d (%s), want %d (%s)", got, got, tt.want, tt.want)
			}
		})
	}
}

// Every token class, each at a distinct price (testdata/all_classes.json).
func TestCostAllClasses(t *testing.T) {
	tab := loadFile(t, "testdata/all_classes.json")
	u := meter.Usage{
		InputTokens: 10000, CachedInputTokens: 3000, AudioInputTokens: 4000, CachedAudioInputTokens: 1000, ImageInputTokens: 500,
		OutputTokens: 2000, ReasoningTokens: 500, AudioOutputTokens: 800, ImageOutputTokens: 300,
	}
	tests := []struct {
		tier string
		want money.Nanos
	}{
		// text in 10000-3000-(4000-1000)-500 = 3500 × 1000   =  3_500_000
		// cached text 3000-1000 = 2000 × 100                  =    200_000
		// audio in 4000-1000 = 3000 × 32000                   = 96_000_000
		// cached audio 1000 × 400                             =    400_000
		// image in 500 × 5000                                 =  2_500_000
		// text out 2000-800-300 = 900 × 4000                  =  3_600_000
		// audio out 800 × 64000                               = 51_200_000
		// image out 300 × 40000                               = 12_000_000
		{"", 169_400_000},
		// The flex set gives only input 500, cached 50, output 2000 n/token;
		// its other classes fall back inside the set:
		// 3500 × 500 + 2000 × 50 + 3000 × 500 + 1000 × 500 + 500 × 500
		//   + 900 × 2000 + 800 × 2000 + 300 × 2000
		// = 1_750_000 + 100_000 + 1_500_000 + 500_000 + 250_000 + 1_800_000 + 1_600_000 + 600_000
		{"flex", 8_100_000},
	}
	m := mustLookup(t, tab, "all-classes-2026-01-01")
	for _, tt := range tests {
		got, err := m.Cost(u, tt.tier)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("tier %q: Cost = %d, want %d", tt.tier, got, tt.want)
		}
	}

	// A text-only model bills image and audio tokens at its text prices.
	// 10000 × 2000 + 2000 × 8000
	got, err := mustLookup(t, tab, "text-only").Cost(u, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := money.Nanos(36_000_000); got != want {
		t.Errorf("text-only: Cost = %d, want %d", got, want)
	}
}

// A million records with a sub-nano per-token price sum exactly to the
// closed form: no drift, one ceil per record.
func TestMillionRecordSumIsExact(t *testing.T) {
	m := mustLookup(t, Default(), "gpt-5-nano")
	const n = 1_000_000
	var sum money.Nanos
	for i := int64(1); i <= n; i++ {
		// record i: i cached tokens at 2.5 n/token (flex) → ceil(2.5·i)
		c, err := m.Cost(meter.Usage{InputTokens: i, CachedInputTokens: i}, "flex")
		if err != nil {
			t.Fatal(err)
		}
		sum += c
	}
	// Σ ceil(5i/2) for i = 1..n (n even) = 2.5·n(n+1)/2 + (n/2 odd terms)·0.5
	//   = 2.5 × 500_000_500_000 + 250_000 = 1_250_001_500_000
	if want := money.Nanos(1_250_001_500_000); sum != want {
		t.Errorf("sum = %d, want %d", sum, want)
	}

	// One request of 999_999 cached tokens: 2_499_997.5 → 2_499_998, exactly.
	c, err := m.Cost(meter.Usage{InputTokens: 999_999, CachedInputTokens: 999_999}, "flex")
	if err != nil {
		t.Fatal(err)
	}
	if want := money.Nanos(2_499_998); c != want {
		t.Errorf("single request = %d, want %d", c, want)
	}
}

func TestCostOverflowIsAnError(t *testing.T) {
	m := mustLookup(t, Default(), "o1-pro")
	_, err := m.Cost(meter.Usage{InputTokens: math.MaxInt64, OutputTokens: math.MaxInt64}, "")
	if err == nil {
		t.Fatal("Cost of MaxInt64 tokens at $600/1M: want an error")
	}
	if _, err := m.Bound(math.MaxInt64, math.MaxInt64, ""); err == nil {
		t.Fatal("Bound of MaxInt64 tokens: want an error")
	}
}

func TestBound(t *testing.T) {
	tests := []struct {
		model         string
		tier          string
		input, output int64
		want          money.Nanos
	}{
		// audio is the dearest class on both sides: 1000 × 40000 + 100 × 80000
		{"gpt-4o-audio-preview", "", 1000, 100, 48_000_000},
		// text input is dearer than cached: 1000 × 1250 + 1000 × 10000
		{"gpt-5", "", 1000, 1000, 11_250_000},
		// 1000 × 2500 + 1000 × 20000
		{"gpt-5", "priority", 1000, 1000, 22_500_000},
		// 1000 × 625 + 1000 × 5000
		{"gpt-5", "flex", 1000, 1000, 5_625_000},
		// no output price: 1000 × 20
		{"text-embedding-3-small", "", 1000, 50, 20_000},
		{"omni-moderation-latest", "", 1000, 50, 0},
		// negative counts count as zero
		{"gpt-5", "", -10, -10, 0},
		// 3 × 25 + 1 × 200 (flex nano): sub-nano prices round up once
		{"gpt-5-nano", "flex", 3, 1, 275},
	}
	for _, tt := range tests {
		m := mustLookup(t, Default(), tt.model)
		got, err := m.Bound(tt.input, tt.output, tt.tier)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("%s/%q Bound(%d, %d) = %d, want %d", tt.model, tt.tier, tt.input, tt.output, got, tt.want)
		}
	}
}

// Bound is an upper bound of Cost for any usage within its token counts.
func TestBoundCoversCost(t *testing.T) {
	tab := Default()
	r := rand.New(rand.NewPCG(1, 2))
	tiers := []string{"", "flex", "priority", "batch"}
	for _, name := range tab.Names() {
		m := mustLookup(t, tab, name)
		for range 200 {
			// A well-formed usage: the sub-classes partition the totals.
			in := split(r, r.Int64N(300_000), 5)  // text, cached text, audio, cached audio, image
			out := split(r, r.Int64N(130_000), 3) // text, audio, image
			u := meter.Usage{
				InputTokens:            in[0] + in[1] + in[2] + in[3] + in[4],
				CachedInputTokens:      in[1] + in[3],
				AudioInputTokens:       in[2] + in[3],
				CachedAudioInputTokens: in[3],
				ImageInputTokens:       in[4],
				OutputTokens:           out[0] + out[1] + out[2],
				ReasoningTokens:        r.Int64N(out[0] + 1),
				AudioOutputTokens:      out[1],
				ImageOutputTokens:      out[2],
			}
			tier := tiers[r.IntN(len(tiers))]
			c, err := m.Cost(u, tier)
			if err != nil {
				t.Fatal(err)
			}
			b, err := m.Bound(u.InputTokens, u.OutputTokens, tier)
			if err != nil {
				t.Fatal(err)
			}
			if c > b {
				t.Fatalf("%s/%q: Cost(%+v) = %d > Bound = %d", name, tier, u, c, b)
			}
		}
	}
}

// split cuts total into n random non-negative parts.
func split(r *rand.Rand, total int64, n int) []int64 {
	parts := make([]int64, n)
	for i := range n - 1 {
		parts[i] = r.Int64N(total + 1)
		total -= parts[i]
	}
	parts[n-1] = total
	r.Shuffle(n, func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	return parts
}

func TestAffordableOutput(t *testing.T) {
	tests := []struct {
		name   string
		model  string
		tier   string
		budget money.Nanos
		input  int64
		want   int64
	}{
		// $0.01 − 1000 × 1250 = 8_750_000 left; / 10000 per output token = 875
		{"exact fit", "gpt-5", "", 10_000_000, 1000, 875},
		// 925 left after 3 × 25; / 200 = 4.625 → 4
		{"fractional", "gpt-5-nano", "flex", 1000, 3, 4},
		{"capped at max output", "gpt-5", "", 1000 * money.USD, 10, 128_000},
		{"input alone over budget", "gpt-5", "", 1000, 1000, 0},
		{"zero budget", "gpt-5", "", 0, 0, 0},
		{"negative budget", "gpt-5", "", -1, 0, 0},
		{"huge budget", "o1-pro", "", math.MaxInt64, 1 << 40, 100_000},
		{"free model", "omni-moderation-latest", "", 0, 1000, 0},
		{"embedding: no output", "text-embedding-3-large", "", money.USD, 100, 0},
		// priority output is 20000/token: (1_000_000 − 0) / 20000 = 50
		{"priority tier", "gpt-5", "priority", 1_000_000, 0, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustLookup(t, Default(), tt.model)
			if got := m.AffordableOutput(tt.budget, tt.input, tt.tier); got != tt.want {
				t.Errorf("AffordableOutput(%d, %d, %q) = %d, want %d", tt.budget, tt.input, tt.tier, got, tt.want)
			}
		})
	}
}

// AffordableOutput's answer fits the budget and one more token does not,
// unless the model's max output caps it.
func TestAffordableOutputIsTight(t *testing.T) {
	tab := Default()
	r := rand.New(rand.NewPCG(3, 4))
	tiers := []string{"", "flex", "priority", "batch", "auto"}
	for _, name := range tab.Names() {
		m := mustLookup(t, tab, name)
		for range 300 {
			tier := tiers[r.IntN(len(tiers))]
			budget := money.Nanos(r.Int64N(int64(5 * money.USD)))
			if r.IntN(4) == 0 {
				budget = money.Nanos(r.Int64N(10_000)) // tiny budgets, where rounding shows
			}
			input := r.Int64N(m.ContextWindow + 1)
			n := m.AffordableOutput(budget, input, tier)
			if n < 0 || n > m.MaxOutputTokens {
				t.Fatalf("%s: AffordableOutput = %d outside [0, %d]", name, n, m.MaxOutputTokens)
			}
			atN, err := m.Bound(input, n, tier)
			if err != nil {
				t.Fatal(err)
			}
			base, err := m.Bound(input, 0, tier)
			if err != nil {
				t.Fatal(err)
			}
			if base > budget {
				if n != 0 {
					t.Fatalf("%s/%q: input alone costs %d > budget %d, yet n = %d", name, tier, base, budget, n)
				}
				continue
			}
			if atN > budget {
				t.Fatalf("%s/%q: Bound(%d, %d) = %d > budget %d", name, tier, input, n, atN, budget)
			}
			if n < m.MaxOutputTokens {
				next, err := m.Bound(input, n+1, tier)
				if err != nil {
					t.Fatal(err)
				}
				if next <= budget {
					t.Fatalf("%s/%q: Bound(%d, %d) = %d still fits budget %d", name, tier, input, n+1, next, budget)
				}
			}
		}
	}
}

func TestPricesFor(t *testing.T) {
	m := mustLookup(t, Default(), "o3")
	for _, tier := range []string{"", "auto", "default", "scale", "FLEX"} {
		if got := m.PricesFor(tier); got != m.Standard {
			t.Errorf("PricesFor(%q) = %+v, want standard", tier, got)
		}
	}
	if got := m.PricesFor("flex"); got.Input != money.PerMillion(1_000_000_000) {
		t.Errorf("o3 flex input = %s, want 1.00", got.Input)
	}
}

func BenchmarkLookupCost(b *testing.B) {
	tab := Default()
	u := meter.Usage{InputTokens: 1500, CachedInputTokens: 1024, OutputTokens: 300, ReasoningTokens: 128}
	for b.Loop() {
		m, _ := tab.Lookup("gpt-5-mini-2025-08-07")
		if _, err := m.Cost(u, "default"); err != nil {
			b.Fatal(err)
		}
	}
}
