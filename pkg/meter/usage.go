package meter

// Usage is what one request consumed, by token class, as OpenAI reports it.
//
// The classes overlap the way OpenAI's usage objects do: InputTokens is the
// total prompt size and includes CachedInputTokens, AudioInputTokens and
// ImageInputTokens; OutputTokens is the total completion size and includes
// ReasoningTokens and AudioOutputTokens. Pricing subtracts the sub-classes
// from the totals, so nothing is billed twice.
type Usage struct {
	InputTokens       int64 `json:"input_tokens"`
	CachedInputTokens int64 `json:"cached_input_tokens,omitempty"`
	AudioInputTokens  int64 `json:"audio_input_tokens,omitempty"`
	// CachedAudioInputTokens is the cached part of AudioInputTokens (realtime
	// and audio models report it); it is also counted in CachedInputTokens.
	CachedAudioInputTokens int64 `json:"cached_audio_input_tokens,omitempty"`
	ImageInputTokens       int64 `json:"image_input_tokens,omitempty"`
	OutputTokens           int64 `json:"output_tokens"`
	ReasoningTokens        int64 `json:"reasoning_tokens,omitempty"`
	AudioOutputTokens      int64 `json:"audio_output_tokens,omitempty"`
	ImageOutputTokens      int64 `json:"image_output_tokens,omitempty"`
}

// Add returns the element-wise sum of u and v (for n>1 or multi-part usage).
func (u Usage) Add(v Usage) Usage {
	return Usage{
		InputTokens:            u.InputTokens + v.InputTokens,
		CachedInputTokens:      u.CachedInputTokens + v.CachedInputTokens,
		AudioInputTokens:       u.AudioInputTokens + v.AudioInputTokens,
		CachedAudioInputTokens: u.CachedAudioInputTokens + v.CachedAudioInputTokens,
		ImageInputTokens:       u.ImageInputTokens + v.ImageInputTokens,
		OutputTokens:           u.OutputTokens + v.OutputTokens,
		ReasoningTokens:        u.ReasoningTokens + v.ReasoningTokens,
		AudioOutputTokens:      u.AudioOutputTokens + v.AudioOutputTokens,
		ImageOutputTokens:      u.ImageOutputTokens + v.ImageOutputTokens,
	}
}

// IsZero reports whether no tokens were counted.
func (u Usage) IsZero() bool { return u == Usage{} }

// Result is what metering found in one response.
type Result struct {
	// Usage is meaningful only when Found is true.
	Usage Usage
	// Found is true when the upstream reported usage.
	Found bool
	// Model is the model the upstream says served the request
	// ("gpt-4o-2024-08-06"), empty if it did not say.
	Model string
	// ServiceTier is the tier the upstream says served the request
	// ("default", "flex", "priority"), empty if it did not say.
	ServiceTier string
}
