package money

import (
	"errors"
	"math"
	"testing"
)

func TestParseAndString(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Nanos
		str  string
	}{
		{"10", 10 * USD, "10.00"},
		{"0.5", USD / 2, "0.50"},
		{"$1.25", 1_250_000_000, "1.25"},
		{"0.000000001", 1, "0.000000001"},
		{"-1.25", -1_250_000_000, "-1.25"},
		{" 3 ", 3 * USD, "3.00"},
		{".5", USD / 2, "0.50"},
		{"7.", 7 * USD, "7.00"},
		{"0.00019605", 196_050, "0.00019605"},
		{"9223372036.854775807", math.MaxInt64, "9223372036.854775807"},
	} {
		got, err := Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			continue
		}
		if s := got.String(); s != tc.str {
			t.Errorf("%d.String() = %q, want %q", got, s, tc.str)
		}
	}
	for _, bad := range []string{"", ".", "-", "1.2.3", "1e3", "0x10", "ten", "1,5", "0.0000000001", "9223372037", "--1"} {
		_, err := Parse(bad)
		if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrRange) {
			t.Errorf("Parse(%q) = %v, want a syntax or range error", bad, err)
		}
	}
	if s := Nanos(math.MinInt64).String(); s != "-9223372036.854775808" {
		t.Errorf("MinInt64 = %q", s)
	}
}

func TestTextRoundTrip(t *testing.T) {
	n := Nanos(123_456_789_012)
	b, _ := n.MarshalText()
	var back Nanos
	if err := back.UnmarshalText(b); err != nil || back != n {
		t.Fatalf("%s → %d, %v", b, back, err)
	}
	p := PerMillion(2_500_000) // $0.0025 per 1M tokens
	b, _ = p.MarshalText()
	var pb PerMillion
	if err := pb.UnmarshalText(b); err != nil || pb != p || string(b) != "0.0025" {
		t.Fatalf("%s → %d, %v", b, pb, err)
	}
}

func TestAccumulatorIsExactAndRoundsUpOnce(t *testing.T) {
	// $0.0025 per 1M tokens is 2.5 nano-USD per token. Three one-token
	// terms cost 7.5 nano-USD, billed as 8: rounded up once, not per term
	// (which would give 9).
	var a Accumulator
	for range 3 {
		a.Add(1, 2_500_000)
	}
	if got, _ := a.Nanos(); got != 8 {
		t.Errorf("3 × 2.5 nano = %d, want 8", got)
	}
	// 139×0.15 + 1792×0.075 + 68×0.60 µ$ = 196.05 µ$ exactly.
	a = Accumulator{}
	a.Add(139, 150_000_000)
	a.Add(1792, 75_000_000)
	a.Add(68, 600_000_000)
	if got, err := a.Nanos(); err != nil || got != 196_050 {
		t.Errorf("chat cost = %d, %v; want 196050", got, err)
	}
	// Negative quantities and prices never reduce a bill.
	a.Add(-5, 150_000_000)
	a.Add(5, -1)
	if got, _ := a.Nanos(); got != 196_050 {
		t.Errorf("after negatives: %d", got)
	}
	// Terms far beyond int64 are summed in 128 bits and refused, not wrapped.
	a = Accumulator{}
	a.Add(math.MaxInt64, math.MaxInt64)
	if _, err := a.Nanos(); !errors.Is(err, ErrRange) {
		t.Errorf("overflow: %v", err)
	}
	if got, err := Cost(1_000_000, 1_250_000_000); err != nil || got != 1_250_000_000 {
		t.Errorf("Cost(1M tokens at $1.25) = %d, %v", got, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "1.5", "-0.000000001", "$3", "9223372036.854775807", "1e3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		back, err := Parse(n.String())
		if err != nil || back != n {
			t.Fatalf("Parse(%q) = %d; String %q re-parses to %d, %v", s, n, n.String(), back, err)
		}
	})
}
