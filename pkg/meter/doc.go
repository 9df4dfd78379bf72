// Package meter reads what an OpenAI call consumed from the upstream's own
// response: JSON bodies and server-sent-event streams.
//
// Design. Metering sits on the proxy's hot path (every byte of every stream
// passes through it), so it is built as three small pieces:
//
//   - [Scanner] splits a byte stream into server-sent events without
//     interpreting them. Each [Event] carries its exact bytes ([Event.Raw])
//     so the proxy forwards, drops (the injected usage chunk, see
//     [IsUsageOnlyChunk]) or caches events byte for byte. Raw and Data
//     point into the scanner's buffer: nothing is copied for the common
//     single-line event.
//   - [Stream] observes events one by one and keeps the last usage the
//     upstream reported. It parses only events that can carry what it
//     needs, found by a cheap byte search for a "usage" (or, for the
//     Responses API, "response") key with an object value; deltas,
//     "usage":null chunks, pings and [DONE] are skipped without parsing.
//   - [FromJSON] meters a whole non-streamed body.
//
// Both read JSON with a small structural walker that hands over the raw
// top-level members (model, service_tier, usage) and skips the rest
// unvalidated: bodies can be megabytes of embeddings or output text, and
// encoding/json would validate and decode all of it, about ten times
// slower. Only the small usage object goes through encoding/json. Keys are
// matched exactly ("usage", not "Usage"), unlike encoding/json.
//
// Numbers are taken only as JSON integers in int64 range; a negative,
// fractional, oversized or inconsistent count (a sub-class larger than its
// total) makes the whole usage object invalid, so Result.Found is never true
// for numbers pricing could not trust. The token classes and their overlaps
// are documented on [Usage].
package meter
