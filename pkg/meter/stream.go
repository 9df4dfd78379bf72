package meter

import (
	"bytes"
	"strings"
)

// Stream meters a streamed response event by event. The zero value meters
// nothing; use [NewStream]. A Stream is not safe for concurrent use.
type Stream struct {
	kind kind
	res  Result
}

// NewStream returns a Stream for endpoint, given without leading slash or
// /v1 ("chat/completions"). A Stream for an endpoint [Supports] does not
// know never finds usage.
func NewStream(endpoint string) *Stream {
	return &Stream{kind: endpointKind(endpoint)}
}

// Result returns what the events observed so far reported.
//
// chat/completions and completions: usage from the last chunk with a
// non-null usage (the stream_options.include_usage chunk), model and
// service tier from the first chunk that has them and from that usage
// chunk. Responses: model, tier and usage from the last event carrying a
// response object (response.created, …, then response.completed,
// response.incomplete or response.failed, whose tier is the one actually
// served). Images: usage from the *.completed event.
func (s *Stream) Result() Result { return s.res }

// jsonKey is a quoted object key to look for in raw JSON. Searching with
// the quotes is what makes the search exact: inside a JSON string every
// quote is escaped, so `"usage"` followed by a colon can only be a key.
type jsonKey struct {
	quoted string
	// anchor is the offset in quoted of a byte that is rare in OpenAI's
	// JSON: the search jumps between its occurrences with IndexByte,
	// several times faster than bytes.Index on a pattern that starts
	// with a quote (the commonest byte in JSON).
	anchor int
}

var (
	keyUsage    = jsonKey{`"usage"`, 4}    // g
	keyResponse = jsonKey{`"response"`, 4} // p
	keyModel    = jsonKey{`"model"`, 3}    // d
	keyChoices  = jsonKey{`"choices"`, 2}  // h
)

// Observe reads ev. It never fails: events it cannot parse (pings,
// comments, "[DONE]", malformed JSON, invalid usage) leave the result as it
// was. It keeps no reference to ev.
func (s *Stream) Observe(ev Event) {
	data := trimLeftSpace(ev.Data)
	if len(data) == 0 || data[0] != '{' {
		return
	}
	switch s.kind {
	case kindChat, kindEmbeddings, kindImages:
		// Parse only the usage chunk, and one chunk for the model:
		// every other chunk is a delta.
		if !hasKey(data, keyUsage, '{') && (s.res.Model != "" || !hasKey(data, keyModel, '"')) {
			return
		}
		var env envelope
		if members(data, env.member) != nil {
			return
		}
		_ = env.apply(s.kind, &s.res)
	case kindResponses:
		// Only lifecycle events (response.created, …, response.completed)
		// carry the response object; deltas are most of the stream.
		if strings.HasSuffix(ev.Name, ".delta") || !hasKey(data, keyResponse, '{') {
			return
		}
		var response []byte
		err := members(data, func(key, value []byte) {
			if string(key) == "response" {
				response = value
			}
		})
		if err != nil || len(response) == 0 || response[0] != '{' {
			return
		}
		var env envelope
		if members(response, env.member) != nil {
			return
		}
		_ = env.apply(s.kind, &s.res)
	}
}

// IsUsageOnlyChunk reports whether ev is the extra chat/completions (or
// completions) chunk that stream_options.include_usage adds: "choices":[]
// and a non-null usage object. The proxy drops it when it injected
// include_usage and the client had not asked for it.
func IsUsageOnlyChunk(ev Event) bool {
	data := trimLeftSpace(ev.Data)
	if len(data) == 0 || data[0] != '{' || !hasKey(data, keyUsage, '{') || !hasKey(data, keyChoices, '[') {
		return false
	}
	var choices, usage []byte
	err := members(data, func(key, value []byte) {
		switch string(key) {
		case "choices":
			choices = value
		case "usage":
			usage = value
		}
	})
	return err == nil && len(choices) >= 2 && choices[0] == '[' &&
		len(trimLeftSpace(choices[1:len(choices)-1])) == 0 &&
		len(usage) > 0 && usage[0] == '{'
}

// hasKey reports whether data may hold key with a value that starts with
// first ('{' for an object, '"' for a string), at any depth. It never
// misses such a key written literally; a false positive (a nested key) only
// costs a parse.
func hasKey(data []byte, key jsonKey, first byte) bool {
	c := key.quoted[key.anchor]
	for i := key.anchor; i < len(data); i++ {
		j := bytes.IndexByte(data[i:], c)
		if j < 0 {
			return false
		}
		i += j
		start := i - key.anchor
		end := start + len(key.quoted)
		if end > len(data) || string(data[start:end]) != key.quoted {
			continue
		}
		v := trimLeftSpace(data[end:])
		if len(v) > 0 && v[0] == ':' {
			if v = trimLeftSpace(v[1:]); len(v) > 0 && v[0] == first {
				return true
			}
		}
	}
	return false
}

func trimLeftSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
