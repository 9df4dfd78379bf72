package meter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// ErrUnknownEndpoint is returned by [FromJSON] for an endpoint this package
// does not know how to meter.
var ErrUnknownEndpoint = errors.New("meter: endpoint not metered")

// ErrMalformedBody is returned by [FromJSON] for a body that is not a JSON
// object.
var ErrMalformedBody = errors.New("meter: response body is not a JSON object")

// ErrInvalidUsage is returned by [FromJSON] when the body has a usage
// object that cannot be trusted: a missing total, a count that is not a
// non-negative JSON integer in int64 range, or a sub-class (cached,
// reasoning, audio, image) larger than its total.
var ErrInvalidUsage = errors.New("meter: invalid usage object")

// kind is how an endpoint reports usage.
type kind uint8

const (
	kindUnknown kind = iota
	// chat/completions, completions: prompt_tokens, completion_tokens.
	kindChat
	// embeddings: prompt_tokens only.
	kindEmbeddings
	// responses: input_tokens, output_tokens; events wrap the response.
	kindResponses
	// images/generations, images/edits: input_tokens, output_tokens (image).
	kindImages
	// moderations: free, no usage.
	kindFree
)

func endpointKind(endpoint string) kind {
	switch endpoint {
	case "chat/completions", "completions":
		return kindChat
	case "embeddings":
		return kindEmbeddings
	case "responses":
		return kindResponses
	case "images/generations", "images/edits":
		return kindImages
	case "moderations":
		return kindFree
	}
	return kindUnknown
}

// Supports reports whether FromJSON and Stream know endpoint, given without
// leading slash or /v1 ("chat/completions"): chat/completions, completions,
// embeddings, responses, images/generations, images/edits and moderations
// (which reports no usage: it is free).
func Supports(endpoint string) bool { return endpointKind(endpoint) != kindUnknown }

// FromJSON meters a non-streamed response body of endpoint (given without
// leading slash or /v1, e.g. "chat/completions").
//
// A body without usage, or with "usage":null, gives Found=false and no
// error (moderations, dall-e images). Errors wrap [ErrUnknownEndpoint],
// [ErrMalformedBody] or [ErrInvalidUsage]; Model and ServiceTier are set
// even when the usage is invalid. Errors never quote the body.
func FromJSON(endpoint string, body []byte) (Result, error) {
	k := endpointKind(endpoint)
	if k == kindUnknown {
		return Result{}, fmt.Errorf("%w: %q", ErrUnknownEndpoint, endpoint)
	}
	var env envelope
	if err := members(body, env.member); err != nil {
		return Result{}, err
	}
	var res Result
	if err := env.apply(k, &res); err != nil {
		return res, err
	}
	return res, nil
}

// describe names a decoding failure without the input's bytes.
func describe(err error) string {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Sprintf("field %q has the wrong type", typ.Field)
	}
	if errors.Is(err, errNotCount) {
		return errNotCount.Error()
	}
	return "cannot decode"
}

// envelope is what metering reads from a response object (or a chat
// chunk): the raw values of its model, service_tier and usage members,
// pointing into the body.
type envelope struct {
	model, tier, usage []byte
}

// maxNameLen bounds the model and tier strings kept from a response; real
// ones are under 64 bytes.
const maxNameLen = 256

// member keeps the members metering reads. Like encoding/json, a later
// duplicate replaces an earlier one; a model or tier that is not a string
// (or is absurdly long) is ignored so it cannot hide the usage next to it.
func (e *envelope) member(key, value []byte) {
	switch string(key) {
	case "model":
		if isName(value) {
			e.model = value
		}
	case "service_tier":
		if isName(value) {
			e.tier = value
		}
	case "usage":
		e.usage = value
	}
}

func isName(v []byte) bool { return len(v) >= 2 && v[0] == '"' && len(v) <= maxNameLen+2 }

// apply copies the envelope's model, tier and usage into res: later
// values replace earlier ones, absent or empty ones leave them alone.
func (e *envelope) apply(k kind, res *Result) error {
	setName(&res.Model, e.model)
	setName(&res.ServiceTier, e.tier)
	u, found, err := parseUsage(k, e.usage)
	if err != nil || !found {
		return err
	}
	res.Usage, res.Found = u, true
	return nil
}

// setName sets *dst to the JSON string raw unless it is empty, without
// allocating when nothing changes.
func setName(dst *string, raw []byte) {
	if len(raw) < 2 {
		return
	}
	inner := raw[1 : len(raw)-1]
	if plainString(inner) {
		if len(inner) > 0 && string(inner) != *dst {
			*dst = string(inner)
		}
		return
	}
	var v string
	if json.Unmarshal(raw, &v) == nil && v != "" {
		*dst = v
	}
}

// plainString reports whether a JSON string's content needs no decoding:
// printable ASCII without escapes.
func plainString(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x80 || c == '\\' || c == '"' {
			return false
		}
	}
	return true
}

var errNotCount = errors.New("token count is not a non-negative integer")

// count is a token count: a non-negative JSON integer in int64 range.
type count struct {
	n  int64
	ok bool // present and not null
}

func (c *count) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var n int64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return errNotCount // '-', '.', 'e', '"', true…
		}
		d := int64(ch - '0')
		if n > (math.MaxInt64-d)/10 {
			return errNotCount
		}
		n = n*10 + d
	}
	if len(b) == 0 {
		return errNotCount
	}
	c.n, c.ok = n, true
	return nil
}

// wireUsage holds both of OpenAI's usage shapes: chat/completions and
// embeddings (prompt/completion) and Responses and images (input/output).
// Field names follow openai-go's CompletionUsage, CreateEmbeddingResponse
// usage, ResponseUsage and ImagesResponseUsage.
type wireUsage struct {
	PromptTokens        count `json:"prompt_tokens"`
	CompletionTokens    count `json:"completion_tokens"`
	PromptTokensDetails struct {
		CachedTokens count `json:"cached_tokens"`
		AudioTokens  count `json:"audio_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens count `json:"reasoning_tokens"`
		AudioTokens     count `json:"audio_tokens"`
	} `json:"completion_tokens_details"`

	InputTokens        count `json:"input_tokens"`
	OutputTokens       count `json:"output_tokens"`
	InputTokensDetails struct {
		CachedTokens count `json:"cached_tokens"`
		ImageTokens  count `json:"image_tokens"`
	} `json:"input_tokens_details"`
	OutputTokensDetails struct {
		ReasoningTokens count `json:"reasoning_tokens"`
		ImageTokens     count `json:"image_tokens"`
	} `json:"output_tokens_details"`
}

// parseUsage reads a usage value. Absent or null is not found, not an
// error.
func parseUsage(k kind, raw json.RawMessage) (Usage, bool, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" || k == kindFree {
		return Usage{}, false, nil
	}
	if raw[0] != '{' {
		return Usage{}, false, fmt.Errorf("%w: not an object", ErrInvalidUsage)
	}
	var w wireUsage
	if err := json.Unmarshal(raw, &w); err != nil {
		return Usage{}, false, fmt.Errorf("%w: %s", ErrInvalidUsage, describe(err))
	}
	var u Usage
	switch k {
	case kindChat, kindEmbeddings:
		if !w.PromptTokens.ok || (k == kindChat && !w.CompletionTokens.ok) {
			return Usage{}, false, fmt.Errorf("%w: missing prompt_tokens or completion_tokens", ErrInvalidUsage)
		}
		u = Usage{
			InputTokens:       w.PromptTokens.n,
			CachedInputTokens: w.PromptTokensDetails.CachedTokens.n,
			AudioInputTokens:  w.PromptTokensDetails.AudioTokens.n,
			OutputTokens:      w.CompletionTokens.n,
			ReasoningTokens:   w.CompletionTokensDetails.ReasoningTokens.n,
			AudioOutputTokens: w.CompletionTokensDetails.AudioTokens.n,
		}
	case kindResponses, kindImages:
		if !w.InputTokens.ok || !w.OutputTokens.ok {
			return Usage{}, false, fmt.Errorf("%w: missing input_tokens or output_tokens", ErrInvalidUsage)
		}
		u = Usage{
			InputTokens:       w.InputTokens.n,
			CachedInputTokens: w.InputTokensDetails.CachedTokens.n,
			ImageInputTokens:  w.InputTokensDetails.ImageTokens.n,
			OutputTokens:      w.OutputTokens.n,
			ReasoningTokens:   w.OutputTokensDetails.ReasoningTokens.n,
		}
		if k == kindImages {
			// GPT image models' output is image tokens; newer ones
			// split it and say so in output_tokens_details.
			u.ImageOutputTokens = w.OutputTokens.n
			if w.OutputTokensDetails.ImageTokens.ok {
				u.ImageOutputTokens = w.OutputTokensDetails.ImageTokens.n
			}
		}
	}
	if !consistent(u) {
		return Usage{}, false, fmt.Errorf("%w: a sub-class exceeds its total", ErrInvalidUsage)
	}
	return u, true, nil
}

// consistent checks what Usage promises: sub-classes are part of their
// totals, so pricing can subtract them without going negative.
func consistent(u Usage) bool {
	return u.CachedInputTokens <= u.InputTokens &&
		u.AudioInputTokens <= u.InputTokens &&
		u.CachedAudioInputTokens <= u.CachedInputTokens &&
		u.ImageInputTokens <= u.InputTokens &&
		u.ReasoningTokens <= u.OutputTokens &&
		u.AudioOutputTokens <= u.OutputTokens &&
		u.ImageOutputTokens <= u.OutputTokens
}
