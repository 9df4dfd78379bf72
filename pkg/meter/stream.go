package meter

import (
	"bytes"
	"encoding/json"
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

// Keys are searched with their quotes: inside a JSON string every quote is
// escaped, so `"usage"` followed by a colon can only be a key.
var (
	keyUsage    = []byte(`"usage"`)
	keyResponse = []byte(`"response"`)
	keyModel    = []byte(`"model"`)
	keyChoices  = []byte(`"choices"`)
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
		// Decode only the usage chunk, and one chunk for the model:
		// every other chunk is a delta.
		if !hasKey(data, keyUsage, '{') && (s.res.Model != "" || !hasKey(data, keyModel, '"')) {
			return
		}
		var env envelope
		if decodeObject(data, &env) != nil {
			return
		}
		_ = env.apply(s.kind, &s.res)
	case kindResponses:
		// Only lifecycle events (response.created, …, response.completed)
		// carry the response object; deltas are most of the stream.
		if strings.HasSuffix(ev.Name, ".delta") || !hasKey(data, keyResponse, '{') {
			return
		}
		var wrapped struct {
			Response *envelope `json:"response"`
		}
		if decodeObject(data, &wrapped) != nil || wrapped.Response == nil {
			return
		}
		_ = wrapped.Response.apply(s.kind, &s.res)
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
	var chunk struct {
		Choices json.RawMessage `json:"choices"`
		Usage   json.RawMessage `json:"usage"`
	}
	if decodeObject(data, &chunk) != nil {
		return false
	}
	choices := bytes.TrimSpace(chunk.Choices)
	return len(choices) >= 2 && choices[0] == '[' &&
		len(bytes.TrimSpace(choices[1:len(choices)-1])) == 0 &&
		len(chunk.Usage) > 0 && chunk.Usage[0] == '{'
}

// hasKey reports whether data may hold the quoted key with a value that
// starts with first ('{' for an object, '"' for a string). It never misses
// such a key written literally; a false positive only costs a decode.
func hasKey(data, key []byte, first byte) bool {
	for {
		i := bytes.Index(data, key)
		if i < 0 {
			return false
		}
		data = trimLeftSpace(data[i+len(key):])
		if len(data) > 0 && data[0] == ':' {
			if v := trimLeftSpace(data[1:]); len(v) > 0 && v[0] == first {
				return true
			}
		}
	}
}

func trimLeftSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
