// Package money holds wrapi's unit of account: nano-US-dollars in an int64.
//
// Every price, cost, limit and counter is an integer number of nano-USD
// (1e-9 USD), so sums are exact and comparisons never round. Decimal strings
// ("0.001234") appear only at the edges: config files, CLI flags, JSON output.
// An int64 holds ±9.2 billion USD, far beyond any single budget.
package money

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// Nanos is an amount in nano-USD (1 USD = 1_000_000_000 Nanos).
type Nanos int64

// USD is one dollar.
const USD Nanos = 1_000_000_000

// Decimals is the number of decimal places a Nanos amount carries.
const Decimals = 9

// ErrSyntax is returned for a string that is not a decimal USD amount.
var ErrSyntax = errors.New("money: not a decimal USD amount")

// ErrRange is returned for an amount that does not fit in Nanos.
var ErrRange = errors.New("money: amount out of range")

// Parse reads a decimal USD amount such as "10", "0.5", "-1.25" or
// "0.000000001". More than nine decimals is an error: nothing is rounded
// silently. A leading "$" is accepted for convenience.
func Parse(s string) (Nanos, error) {
	orig := s
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "$")
	neg := false
	if strings.HasPrefix(s, "-") {
		neg = true
		s = s[1:]
	} else if strings.HasPrefix(s, "+") {
		s = s[1:]
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" && frac == "" || (hasDot && frac == "" && whole == "") {
		return 0, fmt.Errorf("%w: %q", ErrSyntax, orig)
	}
	if !digits(whole) || !digits(frac) {
		return 0, fmt.Errorf("%w: %q", ErrSyntax, orig)
	}
	if len(frac) > Decimals {
		return 0, fmt.Errorf("%w: %q has more than %d decimals", ErrSyntax, orig, Decimals)
	}
	var w uint64
	if whole != "" {
		var err error
		w, err = strconv.ParseUint(whole, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %q", ErrRange, orig)
		}
	}
	f := uint64(0)
	if frac != "" {
		f, _ = strconv.ParseUint(frac+strings.Repeat("0", Decimals-len(frac)), 10, 64)
	}
	hi, lo := bits.Mul64(w, uint64(USD))
	sum, carry := bits.Add64(lo, f, 0)
	if hi != 0 || carry != 0 || sum > math.MaxInt64 {
		return 0, fmt.Errorf("%w: %q", ErrRange, orig)
	}
	n := Nanos(sum)
	if neg {
		n = -n
	}
	return n, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// MustParse is Parse for constants in tests and tables; it panics on error.
func MustParse(s string) Nanos {
	n, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return n
}

// String formats n as a decimal USD string with all nine decimals trimmed of
// trailing zeros but never fewer than two: "10.00", "0.001234", "-0.50".
func (n Nanos) String() string {
	neg := n < 0
	u := uint64(n)
	if neg {
		u = uint64(-n) // for MinInt64, -n == n and uint64 gives the magnitude
	}
	whole := u / uint64(USD)
	frac := u % uint64(USD)
	fs := fmt.Sprintf("%09d", frac)
	fs = strings.TrimRight(fs, "0")
	for len(fs) < 2 {
		fs += "0"
	}
	out := strconv.FormatUint(whole, 10) + "." + fs
	if neg {
		out = "-" + out
	}
	return out
}

// MarshalText encodes n as its decimal string, so JSON carries "0.001234".
func (n Nanos) MarshalText() ([]byte, error) { return []byte(n.String()), nil }

// UnmarshalText parses a decimal string.
func (n *Nanos) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*n = v
	return nil
}

// PerMillion is a price in nano-USD per one million units (tokens, usually).
// "$0.075 per 1M tokens" is PerMillion(75_000_000). Keeping prices per
// million keeps sub-nano per-token prices (cached flex input at $0.0025/1M)
// exact.
type PerMillion int64

// ParsePerMillion reads a USD-per-million decimal string like "1.25".
func ParsePerMillion(s string) (PerMillion, error) {
	n, err := Parse(s)
	return PerMillion(n), err
}

// String formats the price as a USD-per-million decimal string.
func (p PerMillion) String() string { return Nanos(p).String() }

// MarshalText encodes the price as its decimal string.
func (p PerMillion) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses a decimal string.
func (p *PerMillion) UnmarshalText(b []byte) error {
	v, err := ParsePerMillion(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Accumulator sums quantity × PerMillion price terms exactly in 128 bits and
// converts to Nanos once, rounding up: a bill is never rounded in the
// payer's favour by more than one nano-dollar, and never below the true cost.
type Accumulator struct {
	hi, lo   uint64
	overflow bool
}

// Add adds qty units at price p. Negative quantities or prices are ignored
// (usage and prices are never negative).
func (a *Accumulator) Add(qty int64, p PerMillion) {
	if qty <= 0 || p <= 0 {
		return
	}
	h, l := bits.Mul64(uint64(qty), uint64(p))
	var c uint64
	a.lo, c = bits.Add64(a.lo, l, 0)
	a.hi, c = bits.Add64(a.hi, h, c)
	if c != 0 {
		a.overflow = true
	}
}

// Nanos returns ceil(sum / 1e6) in Nanos, or ErrRange if it does not fit.
func (a *Accumulator) Nanos() (Nanos, error) {
	if a.overflow || a.hi >= 1_000_000 {
		return 0, ErrRange
	}
	q, r := bits.Div64(a.hi, a.lo, 1_000_000)
	if r != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return 0, ErrRange
	}
	return Nanos(q), nil
}

// Cost returns ceil(qty × p / 1e6) in Nanos: one token class priced alone.
func Cost(qty int64, p PerMillion) (Nanos, error) {
	var a Accumulator
	a.Add(qty, p)
	return a.Nanos()
}
