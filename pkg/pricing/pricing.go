package pricing

import (
	"fmt"
	"math/bits"

	"github.com/wrapi-dev/wrapi/pkg/meter"
	"github.com/wrapi-dev/wrapi/pkg/money"
)

// Tier names with a published price set of their own. Other values of
// service_tier ("", "auto", "default", anything new) are billed at the
// standard prices.
const (
	TierFlex     = "flex"
	TierPriority = "priority"
	TierBatch    = "batch"
)

// Prices is one price set, in nano-USD per 1M tokens, by token class. A zero
// class price means "no separate price": the class is billed at its base class
// price (see the package documentation), never at zero.
type Prices struct {
	Input, CachedInput, Output                money.PerMillion
	AudioInput, CachedAudioInput, AudioOutput money.PerMillion
	ImageInput, ImageOutput                   money.PerMillion
}

// effective fills unpriced classes with their base class price.
func (p Prices) effective() Prices {
	if p.CachedInput == 0 {
		p.CachedInput = p.Input
	}
	if p.AudioInput == 0 {
		p.AudioInput = p.Input
	}
	if p.CachedAudioInput == 0 {
		p.CachedAudioInput = p.AudioInput
	}
	if p.ImageInput == 0 {
		p.ImageInput = p.Input
	}
	if p.AudioOutput == 0 {
		p.AudioOutput = p.Output
	}
	if p.ImageOutput == 0 {
		p.ImageOutput = p.Output
	}
	return p
}

// maxInput is the dearest input-class price of an effective price set.
func (p Prices) maxInput() money.PerMillion {
	return max(p.Input, p.CachedInput, p.AudioInput, p.CachedAudioInput, p.ImageInput)
}

// maxOutput is the dearest output-class price of an effective price set.
func (p Prices) maxOutput() money.PerMillion {
	return max(p.Output, p.AudioOutput, p.ImageOutput)
}

// Model is one priced model of the table.
type Model struct {
	// Name is the table entry: the family name when looked up by an alias.
	Name string
	// Standard is the default-tier price set.
	Standard Prices
	// Tiers holds the explicit price sets OpenAI publishes for other service
	// tiers ("flex", "priority", "batch"); a missing tier means standard.
	Tiers map[string]Prices
	// ContextWindow and MaxOutputTokens are OpenAI's published limits;
	// MaxOutputTokens is 0 for models that produce no output tokens
	// (embeddings, moderations).
	ContextWindow, MaxOutputTokens int64
	// Free is set for models OpenAI does not charge for (moderations): their
	// cost is zero on purpose, not for want of a price.
	Free bool
}

// PricesFor returns the price set of a service tier: "", "auto", "default"
// and tiers without a published price set give Standard.
func (m Model) PricesFor(tier string) Prices {
	switch tier {
	case "", "auto", "default":
		return m.Standard
	}
	if p, ok := m.Tiers[tier]; ok {
		return p
	}
	return m.Standard
}

// Cost prices what one request consumed, per the cost semantics of the
// package documentation, rounded up once to the nano-dollar. The error is
// money.ErrRange (wrapped) for usage too large to price.
func (m Model) Cost(u meter.Usage, tier string) (money.Nanos, error) {
	if m.Free {
		return 0, nil
	}
	p := m.PricesFor(tier).effective()

	input := nonNeg(u.InputTokens)
	cached := nonNeg(u.CachedInputTokens)
	audio := nonNeg(u.AudioInputTokens)
	cachedAudio := nonNeg(u.CachedAudioInputTokens)
	image := nonNeg(u.ImageInputTokens)
	output := nonNeg(u.OutputTokens)
	audioOut := nonNeg(u.AudioOutputTokens)
	imageOut := nonNeg(u.ImageOutputTokens)

	uncachedAudio := sub(audio, cachedAudio)

	var acc money.Accumulator
	acc.Add(sub(sub(sub(input, cached), uncachedAudio), image), p.Input)
	acc.Add(sub(cached, cachedAudio), p.CachedInput)
	acc.Add(uncachedAudio, p.AudioInput)
	acc.Add(cachedAudio, p.CachedAudioInput)
	acc.Add(image, p.ImageInput)
	acc.Add(sub(sub(output, audioOut), imageOut), p.Output)
	acc.Add(audioOut, p.AudioOutput)
	acc.Add(imageOut, p.ImageOutput)

	n, err := acc.Nanos()
	if err != nil {
		return 0, fmt.Errorf("pricing: cost of %s: %w", m.Name, err)
	}
	return n, nil
}

// Bound is the worst-case cost of a request of inputTokens prompt tokens and
// outputTokens output tokens: input at the dearest input-class price of the
// tier, output at the dearest output-class price. Negative counts count as 0.
func (m Model) Bound(inputTokens, outputTokens int64, tier string) (money.Nanos, error) {
	if m.Free {
		return 0, nil
	}
	p := m.PricesFor(tier).effective()
	var acc money.Accumulator
	acc.Add(inputTokens, p.maxInput())
	acc.Add(outputTokens, p.maxOutput())
	n, err := acc.Nanos()
	if err != nil {
		return 0, fmt.Errorf("pricing: bound of %s: %w", m.Name, err)
	}
	return n, nil
}

// AffordableOutput is the largest output token count n, at most
// MaxOutputTokens and at least 0, with Bound(inputTokens, n, tier) <= budget.
// It is 0 when the input alone exceeds the budget.
func (m Model) AffordableOutput(budget money.Nanos, inputTokens int64, tier string) int64 {
	limit := max(m.MaxOutputTokens, 0)
	if m.Free {
		return limit
	}
	if budget < 0 {
		return 0
	}
	p := m.PricesFor(tier).effective()
	pin, pout := uint64(p.maxInput()), uint64(p.maxOutput())

	// Bound is ceil(S / 1e6) for the integer S = in·pin + n·pout, and
	// ceil(S/1e6) <= B exactly when S <= B·1e6: solve for n in 128 bits.
	capHi, capLo := bits.Mul64(uint64(budget), 1_000_000)
	inHi, inLo := bits.Mul64(uint64(nonNeg(inputTokens)), pin)
	if inHi > capHi || inHi == capHi && inLo > capLo {
		return 0
	}
	remLo, borrow := bits.Sub64(capLo, inLo, 0)
	remHi, _ := bits.Sub64(capHi, inHi, borrow)
	if pout == 0 || remHi >= pout {
		// Output is free, or the quotient exceeds 64 bits: the cap binds.
		return limit
	}
	n, _ := bits.Div64(remHi, remLo, pout)
	if n > uint64(limit) {
		return limit
	}
	return int64(n)
}

func nonNeg(n int64) int64 { return max(n, 0) }

// sub is a − b clamped at zero, for a, b >= 0 (so it cannot overflow).
func sub(a, b int64) int64 { return max(a-b, 0) }
