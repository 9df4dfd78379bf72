package pricing

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/wrapi-dev/wrapi/pkg/money"
)

func usd(s string) money.PerMillion {
	p, err := money.ParsePerMillion(s)
	if err != nil {
		panic(err)
	}
	return p
}

func TestDefault(t *testing.T) {
	tab := Default()
	if tab != Default() {
		t.Error("Default is not parsed once")
	}
	if !regexp.MustCompile(`^\d{4}-\d{2}-\d{2}\.\d+$`).MatchString(tab.Version()) {
		t.Errorf("version %q is not YYYY-MM-DD.N", tab.Version())
	}

	required := []string{
		"gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5-chat-latest", "gpt-5-pro", "gpt-5.1", "gpt-5.2",
		"gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano",
		"gpt-4o", "gpt-4o-2024-05-13", "gpt-4o-mini", "gpt-4o-audio-preview", "gpt-4o-mini-audio-preview",
		"o1", "o1-mini", "o1-pro", "o3", "o3-mini", "o3-pro", "o4-mini",
		"gpt-3.5-turbo", "gpt-4", "gpt-4-turbo",
		"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002",
		"omni-moderation-latest", "text-moderation-latest",
	}
	for _, name := range required {
		if _, ok := tab.models[name]; !ok {
			t.Errorf("model %q is missing (as an entry, not an alias)", name)
		}
	}

	for _, name := range tab.Names() {
		m := mustLookup(t, tab, name)
		if m.Name != name {
			t.Errorf("%s: Name = %q", name, m.Name)
		}
		if m.Free {
			if m.Standard != (Prices{}) || len(m.Tiers) > 0 {
				t.Errorf("%s: free model with prices", name)
			}
			continue
		}
		embedding := strings.HasPrefix(name, "text-embedding-")
		if m.Standard.Input <= 0 {
			t.Errorf("%s: no input price", name)
		}
		if !embedding && m.Standard.Output <= 0 {
			t.Errorf("%s: no output price", name)
		}
		if m.ContextWindow <= 0 {
			t.Errorf("%s: no context window", name)
		}
		if !embedding && m.MaxOutputTokens <= 0 {
			t.Errorf("%s: no max output tokens", name)
		}
		if m.MaxOutputTokens > m.ContextWindow {
			t.Errorf("%s: max output %d > context %d", name, m.MaxOutputTokens, m.ContextWindow)
		}
		if m.Standard.CachedInput > m.Standard.Input {
			t.Errorf("%s: cached input dearer than input", name)
		}
	}
}

// Tier price sets are typed by hand: catch a slipped digit by comparing each
// class with the standard price (flex and batch are discounts, priority a
// premium).
func TestTierPricesAreConsistent(t *testing.T) {
	tab := Default()
	for _, name := range tab.Names() {
		m := mustLookup(t, tab, name)
		std := m.Standard.effective()
		for tier, p := range m.Tiers {
			e := p.effective()
			classes := []struct {
				class    string
				tier, sd money.PerMillion
			}{
				{"input", e.Input, std.Input}, {"cached_input", e.CachedInput, std.CachedInput},
				{"output", e.Output, std.Output}, {"audio_input", e.AudioInput, std.AudioInput},
				{"audio_output", e.AudioOutput, std.AudioOutput},
			}
			for _, c := range classes {
				switch tier {
				case TierFlex, TierBatch:
					// OpenAI prices both at exactly half the standard rate.
					if c.tier*2 != c.sd {
						t.Errorf("%s %s %s = %s, want half of %s", name, tier, c.class, c.tier, c.sd)
					}
				case TierPriority:
					if c.tier < c.sd || c.tier > 2*c.sd {
						t.Errorf("%s %s %s = %s, want between 1× and 2× %s", name, tier, c.class, c.tier, c.sd)
					}
				default:
					t.Errorf("%s: unexpected tier %q", name, tier)
				}
			}
		}
	}
}

func TestEveryEntryHasProvenance(t *testing.T) {
	f, err := decodeFile(bytes.NewReader(embedded))
	if err != nil {
		t.Fatal(err)
	}
	date := regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	for name, m := range f.Models {
		if m.Source == nil || !strings.Contains(*m.Source, "https://") {
			t.Errorf("%s: no source URL", name)
		}
		if m.Checked == nil || !date.MatchString(*m.Checked) {
			t.Errorf("%s: no checked date", name)
		}
	}
}

func TestAliases(t *testing.T) {
	tab := Default()
	want := map[string]string{
		"gpt-4o-2024-08-06":          "gpt-4o",
		"gpt-4o-2024-11-20":          "gpt-4o",
		"gpt-4o-mini-2024-07-18":     "gpt-4o-mini",
		"o3-2025-04-16":              "o3",
		"o4-mini-2025-04-16":         "o4-mini",
		"gpt-5-2025-08-07":           "gpt-5",
		"gpt-4.1-2025-04-14":         "gpt-4.1",
		"omni-moderation-2024-09-26": "omni-moderation-latest",
	}
	for alias, target := range want {
		m, ok := tab.Lookup(alias)
		if !ok || m.Name != target {
			t.Errorf("Lookup(%q) = %q, %v; want %q", alias, m.Name, ok, target)
		}
	}
	for alias, target := range tab.Aliases() {
		if _, ok := tab.models[target]; !ok {
			t.Errorf("alias %q → unknown %q", alias, target)
		}
		if _, ok := tab.models[alias]; ok {
			t.Errorf("alias %q is also a model", alias)
		}
	}
}

func TestSnapshotWithItsOwnPriceIsNotAliased(t *testing.T) {
	tab := Default()
	if _, ok := tab.Aliases()["gpt-4o-2024-05-13"]; ok {
		t.Fatal("gpt-4o-2024-05-13 is an alias")
	}
	old := mustLookup(t, tab, "gpt-4o-2024-05-13")
	cur := mustLookup(t, tab, "gpt-4o")
	if old.Name != "gpt-4o-2024-05-13" || old.Standard.Input != usd("5") || old.Standard.Output != usd("15") {
		t.Errorf("gpt-4o-2024-05-13 = %+v", old)
	}
	if old.Standard == cur.Standard {
		t.Error("gpt-4o-2024-05-13 has gpt-4o's prices")
	}
}

func TestUnknownModels(t *testing.T) {
	tab := Default()
	for _, name := range []string{
		"", "GPT-4o", "gpt-4o ", " gpt-4o", "gpt-4o-2099-01-01", // case-sensitive, no trimming, no suffix chopping
		"gpt-5-2026-01-01", "o3-mini-high", "gpt-4o-audio-preview-2024-10-01", // dearer old audio snapshot: refused
		"davinci-002", "ft:gpt-4o-mini:acme::x",
	} {
		if m, ok := tab.Lookup(name); ok {
			t.Errorf("Lookup(%q) = %q, want unknown", name, m.Name)
		}
	}
}

func TestLookupReturnsACopy(t *testing.T) {
	tab := Default()
	m := mustLookup(t, tab, "gpt-5")
	m.Tiers["flex"] = Prices{}
	if mustLookup(t, tab, "gpt-5").Tiers["flex"].Input == 0 {
		t.Fatal("changing a looked-up model changed the table")
	}
}

func TestLoadRejects(t *testing.T) {
	model := func(fields string) string {
		return `{"version": "v1", "models": {"m": {` + fields + `}}}`
	}
	const ok = `"input": "1", "output": "2", "context_window": 1000, "max_output_tokens": 100`
	tests := []struct {
		name, file, errPart string
	}{
		{"price as a JSON number", model(`"input": 1.25, "output": "2", "context_window": 1000, "max_output_tokens": 100`), "number"},
		{"price as a JSON integer", model(`"input": 10, "output": "2", "context_window": 1000, "max_output_tokens": 100`), "number"},
		{"unknown field", model(ok + `, "cached_input_price": "1"`), "unknown field"},
		{"duplicate model", `{"version": "v1", "models": {"m": {` + ok + `}, "m": {` + ok + `}}}`, `duplicate key "m"`},
		{"duplicate field", model(ok + `, "input": "3"`), `duplicate key "input"`},
		{"negative price", model(`"input": "-1", "output": "2", "context_window": 1000, "max_output_tokens": 100`), "negative"},
		{"sub-nano price", model(`"input": "0.0000000001", "output": "2", "context_window": 1000, "max_output_tokens": 100`), "decimals"},
		{"not a decimal", model(`"input": "1,25", "output": "2", "context_window": 1000, "max_output_tokens": 100`), "not a decimal"},
		{"no version", `{"models": {"m": {` + ok + `}}}`, "no version"},
		{"version with space", `{"version": "v 1", "models": {"m": {` + ok + `}}}`, "white space"},
		{"no models", `{"version": "v1", "models": {}}`, "no models"},
		{"null model", `{"version": "v1", "models": {"m": null}}`, "null"},
		{"alias to unknown", `{"version": "v1", "models": {"m": {` + ok + `}}, "aliases": {"m-1": "n"}}`, "unknown model"},
		{"alias is a model", `{"version": "v1", "models": {"m": {` + ok + `}, "n": {` + ok + `}}, "aliases": {"n": "m"}}`, "also a model"},
		{"no input price", model(`"output": "2", "context_window": 1000, "max_output_tokens": 100`), "input price is required"},
		{"no context window", model(`"input": "1", "output": "2", "max_output_tokens": 100`), "context_window"},
		{"output without max output", model(`"input": "1", "output": "2", "context_window": 1000`), "max_output_tokens"},
		{"max output over context", model(`"input": "1", "output": "2", "context_window": 100, "max_output_tokens": 1000`), "exceeds"},
		{"free with a price", model(`"free": true, "input": "1"`), "free model"},
		{"default as a tier", model(ok + `, "tiers": {"default": {"input": "1"}}`), "standard price set"},
		{"tier without input", model(ok + `, "tiers": {"flex": {"output": "1"}}`), "input price"},
		{"trailing data", `{"version": "v1", "models": {"m": {` + ok + `}}} {}`, "after the top-level"},
		{"not JSON", `version: v1`, "decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tt.file))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !strings.Contains(err.Error(), tt.errPart) {
				t.Errorf("error %q does not mention %q", err, tt.errPart)
			}
		})
	}
}

func TestOverrideReadmeExample(t *testing.T) {
	base := Default()
	f, err := os.Open("testdata/override_readme.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := base.Override(f)
	if err != nil {
		t.Fatal(err)
	}
	if want := base.Version() + "+acme-2026-12"; tab.Version() != want {
		t.Errorf("Version = %q, want %q", tab.Version(), want)
	}

	// Fields given replace those fields only, also through an alias.
	m := mustLookup(t, tab, "gpt-4o-2024-08-06")
	if m.Name != "gpt-4o" || m.Standard.Output != usd("9.50") || m.Standard.Input != usd("2.50") || m.Standard.CachedInput != usd("1.25") {
		t.Errorf("gpt-4o after override = %+v", m.Standard)
	}
	if pr := m.PricesFor("priority"); pr.Output != usd("16") || pr.Input != usd("4.25") {
		t.Errorf("gpt-4o priority after override = %+v", pr)
	}
	// A tier given as null is gone: flex bills at standard.
	if o3 := mustLookup(t, tab, "o3"); o3.PricesFor("flex") != o3.Standard {
		t.Errorf("o3 flex still priced apart: %+v", o3.PricesFor("flex"))
	}
	// A new model and a new alias.
	ft := mustLookup(t, tab, "ft:gpt-4.1-mini-2025-04-14:acme::abc123")
	if ft.Standard.Output != usd("3.20") || ft.MaxOutputTokens != 32768 {
		t.Errorf("fine-tuned model = %+v", ft)
	}
	if m := mustLookup(t, tab, "gpt-5-mini-2026-01-15"); m.Name != "gpt-5-mini" {
		t.Errorf("new alias → %q", m.Name)
	}

	// The base table is unchanged.
	if b := mustLookup(t, base, "gpt-4o"); b.Standard.Output != usd("10") || b.PricesFor("priority").Output != usd("17") {
		t.Errorf("base gpt-4o changed: %+v", b)
	}
	if _, ok := base.Lookup("ft:gpt-4.1-mini-2025-04-14:acme::abc123"); ok {
		t.Error("base table gained the fine-tuned model")
	}
	if mustLookup(t, base, "o3").PricesFor("flex").Input != usd("1") {
		t.Error("base o3 lost flex")
	}
}

func TestOverrideReadmeMatchesTestdata(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("testdata/override_readme.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, bytes.TrimSpace(example)) {
		t.Error("README.md's override example differs from testdata/override_readme.json")
	}
}

func TestOverride(t *testing.T) {
	base := Default()
	override := func(t *testing.T, file string) *Table {
		t.Helper()
		tab, err := base.Override(strings.NewReader(file))
		if err != nil {
			t.Fatalf("Override: %v", err)
		}
		return tab
	}

	t.Run("no version: digest of the file", func(t *testing.T) {
		a := override(t, `{"models": {"gpt-4o": {"output": "11"}}}`)
		b := override(t, `{"models": {"gpt-4o": {"output": "12"}}}`)
		again := override(t, `{"models": {"gpt-4o": {"output": "11"}}}`)
		if !regexp.MustCompile(`^` + regexp.QuoteMeta(base.Version()) + `\+sha256-[0-9a-f]{8}$`).MatchString(a.Version()) {
			t.Errorf("Version = %q", a.Version())
		}
		if a.Version() == b.Version() || a.Version() != again.Version() {
			t.Errorf("versions %q, %q, %q: want distinct per content, stable per file", a.Version(), b.Version(), again.Version())
		}
	})

	t.Run("chained", func(t *testing.T) {
		a := override(t, `{"version": "a"}`)
		b, err := a.Override(strings.NewReader(`{"version": "b", "models": {"gpt-4": {"input": "31"}}}`))
		if err != nil {
			t.Fatal(err)
		}
		if want := base.Version() + "+a+b"; b.Version() != want {
			t.Errorf("Version = %q, want %q", b.Version(), want)
		}
		if mustLookup(t, b, "gpt-4-0613").Standard.Input != usd("31") {
			t.Error("second override not applied")
		}
	})

	t.Run("remove a model and its aliases", func(t *testing.T) {
		tab := override(t, `{"version": "x", "models": {"gpt-4": null}}`)
		for _, name := range []string{"gpt-4", "gpt-4-0613", "gpt-4-0314"} {
			if _, ok := tab.Lookup(name); ok {
				t.Errorf("%s still priced", name)
			}
		}
		if _, ok := tab.Lookup("gpt-4-turbo"); !ok {
			t.Error("gpt-4-turbo removed too")
		}
	})

	t.Run("a snapshot priced apart stops being an alias", func(t *testing.T) {
		tab := override(t, `{"version": "x", "models": {"gpt-4o-2024-11-20": {
			"input": "3", "output": "12", "context_window": 128000, "max_output_tokens": 16384}}}`)
		m := mustLookup(t, tab, "gpt-4o-2024-11-20")
		if m.Name != "gpt-4o-2024-11-20" || m.Standard.Input != usd("3") {
			t.Errorf("snapshot = %+v", m)
		}
		if _, ok := tab.Aliases()["gpt-4o-2024-11-20"]; ok {
			t.Error("still an alias")
		}
		if mustLookup(t, tab, "gpt-4o-2024-08-06").Name != "gpt-4o" {
			t.Error("other aliases lost")
		}
	})

	t.Run("remove an alias", func(t *testing.T) {
		tab := override(t, `{"version": "x", "aliases": {"gpt-4o-2024-08-06": null}}`)
		if _, ok := tab.Lookup("gpt-4o-2024-08-06"); ok {
			t.Error("alias still resolves")
		}
	})

	t.Run("add a tier", func(t *testing.T) {
		tab := override(t, `{"version": "x", "models": {"gpt-5-nano": {"tiers": {"priority": {"input": "0.10", "cached_input": "0.01", "output": "0.80"}}}}}`)
		m := mustLookup(t, tab, "gpt-5-nano")
		if m.PricesFor("priority").Output != usd("0.80") || m.PricesFor("flex").Input != usd("0.025") {
			t.Errorf("tiers = %+v", m.Tiers)
		}
	})

	bad := []struct{ name, file, errPart string }{
		{"incomplete new model", `{"models": {"new-model": {"input": "1"}}}`, "context_window"},
		{"alias to unknown", `{"aliases": {"x": "no-such-model"}}`, "unknown model"},
		{"unknown field", `{"models": {"gpt-4o": {"outptu": "1"}}}`, "unknown field"},
		{"remove unknown", `{"models": {"no-such-model": null}}`, "unknown model"},
		{"patch makes a model invalid", `{"models": {"gpt-4o": {"max_output_tokens": 999999}}}`, "exceeds"},
		{"price as number", `{"models": {"gpt-4o": {"output": 12}}}`, "number"},
		{"duplicate model", `{"models": {"gpt-4o": {"output": "12"}, "gpt-4o": {"output": "13"}}}`, "duplicate"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := base.Override(strings.NewReader(tt.file))
			if err == nil {
				t.Fatal("Override succeeded")
			}
			if !strings.Contains(err.Error(), tt.errPart) {
				t.Errorf("error %q does not mention %q", err, tt.errPart)
			}
		})
	}
}
