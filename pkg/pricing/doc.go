// Package pricing holds OpenAI's public prices and turns metered usage into
// money.
//
// # The table
//
// Prices live in an embedded, versioned JSON file (prices.json): per model,
// USD per 1M tokens by token class, as decimal strings, plus explicit price
// sets for the service tiers OpenAI publishes ("flex", "priority", "batch"),
// the context window and the maximum output. Dated snapshots map to their
// family through an explicit alias list — never by chopping suffixes — and a
// snapshot with its own price (gpt-4o-2024-05-13) is its own entry. Default
// parses the embedded file once; Load reads a full table; Override applies an
// admin's file (`wrapi serve --prices FILE`) and returns a new table whose
// Version records both ("2026-11-27.1+local"), so every usage record can name
// the prices it was billed with. README.md documents the file format.
//
// Lookup is exact and case-sensitive, like OpenAI: an unknown name is
// reported, never priced at zero. Free models (moderations) are zero on
// purpose and say so.
//
// # Cost semantics
//
// meter.Usage reports totals that include their sub-classes, the way OpenAI
// does. Cost splits them so that every token is billed exactly once:
//
//	text input   = InputTokens − CachedInputTokens − (AudioInputTokens − CachedAudioInputTokens) − ImageInputTokens  at Input
//	cached text  = CachedInputTokens − CachedAudioInputTokens                                        at CachedInput
//	audio input  = AudioInputTokens − CachedAudioInputTokens                                         at AudioInput
//	cached audio = CachedAudioInputTokens                                                            at CachedAudioInput
//	image input  = ImageInputTokens                                                                  at ImageInput
//	text output  = OutputTokens − AudioOutputTokens − ImageOutputTokens                              at Output
//	audio output = AudioOutputTokens                                                                 at AudioOutput
//	image output = ImageOutputTokens                                                                 at ImageOutput
//
// Reasoning tokens are part of OutputTokens and billed once, as output. Every
// count and difference is clamped at zero, so malformed usage can never yield
// a negative cost. A class price of zero means OpenAI publishes no separate
// price for that class, and the class is billed at its base price instead:
// CachedInput, AudioInput and ImageInput fall back to Input, CachedAudioInput
// to AudioInput, AudioOutput and ImageOutput to Output. Tokens in an unpriced
// class are therefore never free; at worst they are billed without a discount.
//
// All terms of one request go into one money.Accumulator (exact 128-bit sum of
// tokens × nano-USD-per-1M) and are rounded up once, to the nano-dollar.
//
// The tier is the one the upstream says served the request (service_tier in
// the response): "", "auto", "default" and tiers the model has no price set
// for are billed at the standard prices.
//
// # Worst case
//
// Bound prices a request before it runs: every input token at the dearest
// input-class price of the tier and every output token at the dearest
// output-class price (audio output can cost eight times text output).
// AffordableOutput inverts it: the largest output budget a reservation can
// cover, which the proxy sets as the upstream's max tokens when the client
// gave none.
package pricing
