// Package request parses an OpenAI API request body once, strictly, so that
// what the proxy prices is byte for byte what it sends upstream.
//
// # Strictness
//
// Parse accepts exactly one JSON object (RFC 8259, UTF-8, optional
// surrounding whitespace) and refuses any object, at any depth, that has a
// key twice or two keys that differ only in case ("model" and "Model", or
// "\u006dodel" and "model": keys compare after unescaping). Go's
// encoding/json matches struct fields case-insensitively and keeps the last
// duplicate, while the upstream may keep the first or match exactly; a body
// that two parsers could read differently is refused rather than guessed
// at. For the same reason the body is never unmarshalled into structs: a
// hand-written scanner validates it in one pass, without recursion (nesting
// is capped at MaxDepth), and records the byte range of every object member
// and container, so fields are read by exact key and edits (SetIncludeUsage,
// SetTopLevel) touch only the bytes they must. An explicit null is read as
// an absent field, as OpenAI does for optional parameters.
//
// # The input bound
//
// Parsed.InputBytes bounds the prompt's text tokens: every token of a BPE
// vocabulary (cl100k, o200k) covers at least one byte of UTF-8 text, and
// JSON only adds bytes to text (quotes, escapes, keys, punctuation), so a
// body of N bytes cannot encode more than N text tokens. Token-id arrays
// (completions, embeddings) take at least two bytes per token ("1,"). The
// few tokens a chat template adds per message (role markers) are fewer than
// the bytes of the JSON that declares the message
// ({"role":"user","content":""} is 28 bytes), and tool schemas render to text
// shorter than their JSON (observed, not a guarantee OpenAI documents). What the body does not bound is counted in
// Parsed.UnboundedInputs instead, and the base64 payloads of those items
// (data URLs, input_audio data, file_data) are left out of InputBytes since
// they never become text tokens: images, audio, files, stored items
// (file_id, previous_response_id, conversation, prompt templates, item
// references, encrypted reasoning) and hosted tools whose results enter the
// context (responses web/file search and the like, chat web_search_options).
//
// # The output bound
//
// Choices × MaxOutputTokens bounds the generated tokens when HasMaxOutput is
// set. Both factors saturate (at MaxTokensCap and MaxChoicesCap, far above
// anything a model can produce), so their product never overflows an int64.
package request

import (
	"bytes"
)

// Endpoints Parse knows, as the path after /v1/.
const (
	EndpointChat        = "chat/completions"
	EndpointCompletions = "completions"
	EndpointEmbeddings  = "embeddings"
	EndpointResponses   = "responses"
	EndpointModerations = "moderations"
)

// DefaultModerationModel is the model OpenAI uses for a moderations request
// that names none (moderations are free; the proxy may pin it with
// SetTopLevel if it wants the body to say so).
const DefaultModerationModel = "omni-moderation-latest"

// Caps at which token and choice counts saturate. They are bounds, not
// limits: no model generates 2^40 tokens, and OpenAI caps n (128), best_of
// (20) and prompt arrays (2048) far below 2^20, so a saturated value still
// bounds what the upstream can produce. Their product is at most 2^60.
const (
	MaxTokensCap  = 1 << 40
	MaxChoicesCap = 1 << 20
)

// Parsed is what the proxy needs from a request body.
type Parsed struct {
	// Model is the requested model, exactly as sent (after JSON unescaping).
	Model string
	// Stream is the client's "stream" flag.
	Stream bool
	// IncludeUsage is the client's own stream_options.include_usage
	// (chat/completions and completions only).
	IncludeUsage bool
	// MaxOutputTokens bounds the output tokens of one choice:
	// chat/completions max_completion_tokens or max_tokens (the larger if
	// both are set, since which one the upstream honours is not ours to
	// guess); completions max_tokens, 16 when absent (OpenAI's default);
	// responses max_output_tokens. Zero when HasMaxOutput is false.
	MaxOutputTokens int64
	// HasMaxOutput reports whether MaxOutputTokens is a bound. It is false
	// for embeddings and moderations (no output tokens) and when the client
	// set no bound, including an explicit "max_tokens": null on completions
	// (null may not mean OpenAI's default of 16, so it is not trusted).
	HasMaxOutput bool
	// Choices is how many outputs are generated: chat n; completions
	// max(n, best_of) times the number of prompts (a prompt array runs each
	// prompt); 1 otherwise.
	Choices int64
	// ServiceTier is the requested "service_tier", "" if absent.
	ServiceTier string
	// InputBytes bounds the prompt's text tokens (see the package doc): the
	// body's length minus the base64 payloads of UnboundedInputs items.
	InputBytes int64
	// UnboundedInputs counts the items whose token count the body does not
	// bound (see the package doc).
	UnboundedInputs int
}

// Parse validates body as one JSON object for endpoint (one of the Endpoint
// constants) and extracts the fields of Parsed. Every error is an *Error.
func Parse(endpoint string, body []byte) (*Parsed, error) {
	switch endpoint {
	case EndpointChat, EndpointCompletions, EndpointEmbeddings, EndpointResponses, EndpointModerations:
	default:
		return nil, &Error{Kind: KindUnsupportedEndpoint, Message: "no parser for endpoint " + echoKey([]byte(endpoint))}
	}
	s := getScanner()
	defer putScanner(s)
	if err := s.scan(body, MaxDepth, true); err != nil {
		return nil, err
	}
	x := extractor{s: s, p: &Parsed{Choices: 1}}
	if err := x.extract(endpoint); err != nil {
		return nil, err
	}
	x.p.InputBytes = int64(len(body)) - x.payloads
	return x.p, nil
}

// fields holds the node index of each top-level member Parse reads, -1 if
// absent.
type fields struct {
	model, stream, streamOptions, maxTokens, maxCompletionTokens,
	maxOutputTokens, n, bestOf, serviceTier, messages, input, prompt,
	previousResponseID, conversation, tools, webSearchOptions int
}

type extractor struct {
	s        *scanner
	p        *Parsed
	payloads int64 // bytes of base64 payloads, left out of InputBytes
}

func (x *extractor) extract(endpoint string) *Error {
	s, p := x.s, x.p
	f := fields{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}
	for c := 1; c < len(s.nodes); c = int(s.nodes[c].next) {
		switch string(s.keyOf(c)) {
		case "model":
			f.model = c
		case "stream":
			f.stream = c
		case "stream_options":
			f.streamOptions = c
		case "max_tokens":
			f.maxTokens = c
		case "max_completion_tokens":
			f.maxCompletionTokens = c
		case "max_output_tokens":
			f.maxOutputTokens = c
		case "n":
			f.n = c
		case "best_of":
			f.bestOf = c
		case "service_tier":
			f.serviceTier = c
		case "messages":
			f.messages = c
		case "input":
			f.input = c
		case "prompt":
			f.prompt = c
		case "previous_response_id":
			f.previousResponseID = c
		case "conversation":
			f.conversation = c
		case "tools":
			f.tools = c
		case "web_search_options":
			f.webSearchOptions = c
		}
	}

	if s.absent(f.model) && endpoint == EndpointModerations {
		p.Model = DefaultModerationModel
	} else if f.model < 0 || s.nodes[f.model].kind != kindString || s.nodes[f.model].end-s.nodes[f.model].start == 2 {
		return missingModel()
	} else {
		p.Model = string(s.str(f.model))
	}
	if !s.absent(f.serviceTier) {
		if s.nodes[f.serviceTier].kind != kindString {
			return invalidField("service_tier", "a string")
		}
		p.ServiceTier = string(s.str(f.serviceTier))
	}

	var err *Error
	switch endpoint {
	case EndpointChat:
		if err = x.streamFields(f, true); err != nil {
			return err
		}
		mct, hasMCT, err := x.integer(f.maxCompletionTokens, "max_completion_tokens", 1, MaxTokensCap)
		if err != nil {
			return err
		}
		mt, hasMT, err := x.integer(f.maxTokens, "max_tokens", 1, MaxTokensCap)
		if err != nil {
			return err
		}
		p.MaxOutputTokens, p.HasMaxOutput = max(mct, mt), hasMCT || hasMT
		n, hasN, err := x.integer(f.n, "n", 1, MaxChoicesCap)
		if err != nil {
			return err
		}
		if hasN {
			p.Choices = n
		}
		if err = x.walk(f.messages, "messages", false); err != nil {
			return err
		}
		if !s.absent(f.webSearchOptions) {
			p.UnboundedInputs++
		}

	case EndpointCompletions:
		if err = x.streamFields(f, true); err != nil {
			return err
		}
		switch {
		case f.maxTokens < 0:
			p.MaxOutputTokens, p.HasMaxOutput = 16, true
		case s.nodes[f.maxTokens].kind == kindNull:
		default:
			// 0 is valid here: with echo it scores a prompt without generating.
			if p.MaxOutputTokens, p.HasMaxOutput, err = x.integer(f.maxTokens, "max_tokens", 0, MaxTokensCap); err != nil {
				return err
			}
		}
		n, hasN, err := x.integer(f.n, "n", 1, MaxChoicesCap)
		if err != nil {
			return err
		}
		if !hasN {
			n = 1
		}
		bestOf, _, err := x.integer(f.bestOf, "best_of", 0, MaxChoicesCap)
		if err != nil {
			return err
		}
		prompts := int64(1)
		if c := f.prompt; c >= 0 && s.nodes[c].kind == kindArray && s.nodes[c].flags&flagNonNumber != 0 {
			// An array of strings or of token arrays is several prompts; an
			// array of numbers is one tokenized prompt.
			prompts = int64(s.nodes[c].count)
		}
		p.Choices = min(max(n, bestOf)*min(prompts, MaxChoicesCap), MaxChoicesCap)

	case EndpointResponses:
		if err = x.streamFields(f, false); err != nil {
			return err
		}
		if p.MaxOutputTokens, p.HasMaxOutput, err = x.integer(f.maxOutputTokens, "max_output_tokens", 1, MaxTokensCap); err != nil {
			return err
		}
		if err = x.walk(f.input, "input", true); err != nil {
			return err
		}
		if !s.absent(f.previousResponseID) {
			if s.nodes[f.previousResponseID].kind != kindString {
				return invalidField("previous_response_id", "a string")
			}
			p.UnboundedInputs++
		}
		if !s.absent(f.conversation) {
			if k := s.nodes[f.conversation].kind; k != kindString && k != kindObject {
				return invalidField("conversation", "a string or an object")
			}
			p.UnboundedInputs++
		}
		if !s.absent(f.prompt) {
			if s.nodes[f.prompt].kind != kindObject {
				return invalidField("prompt", "an object")
			}
			p.UnboundedInputs++
			// Its variables may hold images and files.
			x.parts(f.prompt)
		}
		if t := f.tools; t >= 0 && s.nodes[t].kind == kindArray {
			for c := t + 1; c < int(s.nodes[t].next); c = int(s.nodes[c].next) {
				switch string(s.memberString(c, "type")) {
				case "function", "custom":
				default: // hosted tools put their results in the context
					p.UnboundedInputs++
				}
			}
		}

	case EndpointModerations:
		if err = x.walk(f.input, "input", true); err != nil {
			return err
		}

	case EndpointEmbeddings:
		// input is text or token ids: all bounded by the body's length.
	}
	return nil
}

// streamFields reads stream and, if usage is set, stream_options.include_usage.
func (x *extractor) streamFields(f fields, usage bool) *Error {
	s := x.s
	var err *Error
	if x.p.Stream, err = x.boolean(f.stream, "stream"); err != nil || !usage || s.absent(f.streamOptions) {
		return err
	}
	if s.nodes[f.streamOptions].kind != kindObject {
		return invalidField("stream_options", "an object")
	}
	x.p.IncludeUsage, err = x.boolean(s.member(f.streamOptions, "include_usage"), "stream_options.include_usage")
	return err
}

// absent reports whether member c is missing or null.
func (s *scanner) absent(c int) bool { return c < 0 || s.nodes[c].kind == kindNull }

func (x *extractor) boolean(c int, param string) (bool, *Error) {
	s := x.s
	if s.absent(c) {
		return false, nil
	}
	if s.nodes[c].kind != kindBool {
		return false, invalidField(param, "a boolean")
	}
	return s.b[s.nodes[c].start] == 't', nil
}

// integer reads member c as a plain integer literal >= least, saturating at
// limit. Fractions and exponents ("1.0", "1e3") are refused: another parser
// could read them differently. Absent or null yields 0, present=false.
func (x *extractor) integer(c int, param string, least, limit int64) (v int64, present bool, err *Error) {
	s := x.s
	if s.absent(c) {
		return 0, false, nil
	}
	n := &s.nodes[c]
	raw := s.b[n.start:n.end]
	if n.kind != kindNumber || bytes.ContainsAny(raw, "-.eE") {
		return 0, false, invalidField(param, integerWant(least))
	}
	for _, d := range raw {
		v = min(v*10+int64(d-'0'), limit)
	}
	if v < least {
		return 0, false, invalidField(param, integerWant(least))
	}
	return v, true, nil
}

func integerWant(least int64) string {
	if least == 0 {
		return "a non-negative integer"
	}
	return "a positive integer"
}

// walk checks that member c (param) is an array, or also a string if
// text is set, and counts the unbounded items in it.
func (x *extractor) walk(c int, param string, text bool) *Error {
	s := x.s
	if s.absent(c) {
		return nil
	}
	switch s.nodes[c].kind {
	case kindArray:
		x.parts(c)
		return nil
	case kindString:
		if text {
			return nil
		}
	}
	if text {
		return invalidField(param, "a string or an array")
	}
	return invalidField(param, "an array")
}

// parts counts the unbounded items among the objects of subtree c (message
// content parts, responses input items) and adds their base64 payloads to
// x.payloads. A part is recognised by its "type", as the upstream does, and
// its subtree is not searched further, so nothing is counted twice.
func (x *extractor) parts(c int) {
	s := x.s
	for i, end := c, int(s.nodes[c].next); i < end; {
		if s.nodes[i].kind == kindObject && x.part(i) {
			i = int(s.nodes[i].next)
			continue
		}
		i++
	}
}

// part inspects object o and reports whether it was a whole unbounded part.
func (x *extractor) part(o int) bool {
	s, p := x.s, x.p
	switch string(s.memberString(o, "type")) {
	case "image_url": // chat, moderations: {"image_url":{"url":…}}
		p.UnboundedInputs++
		u := s.member(o, "image_url")
		if u >= 0 && s.nodes[u].kind == kindObject {
			u = s.member(u, "url")
		}
		x.dataURL(u)
		return true
	case "input_image": // responses: {"image_url":"…"} or {"file_id":…}
		p.UnboundedInputs++
		x.dataURL(s.member(o, "image_url"))
		return true
	case "input_audio": // {"input_audio":{"data":base64,"format":…}}
		p.UnboundedInputs++
		if a := s.member(o, "input_audio"); a >= 0 {
			x.payload(s.member(a, "data"))
		}
		return true
	case "file": // chat: {"file":{"file_data"|"file_id"…}}
		p.UnboundedInputs++
		if f := s.member(o, "file"); f >= 0 {
			x.payload(s.member(f, "file_data"))
		}
		return true
	case "input_file": // responses: {"file_data"|"file_id"|"file_url"}
		p.UnboundedInputs++
		x.payload(s.member(o, "file_data"))
		return true
	case "item_reference": // responses: an earlier item by id
		p.UnboundedInputs++
		return true
	case "reasoning":
		// Encrypted reasoning is decrypted into input tokens upstream; its
		// ciphertext length is no proof of a bound.
		if c := s.member(o, "encrypted_content"); c >= 0 && s.nodes[c].kind == kindString {
			p.UnboundedInputs++
		}
		return false
	}
	if c := s.member(o, "file_id"); c >= 0 && s.nodes[c].kind == kindString {
		p.UnboundedInputs++
	}
	// A chat assistant message can reuse an earlier audio reply by id.
	if a := s.member(o, "audio"); a >= 0 && s.nodes[a].kind == kindObject {
		if id := s.member(a, "id"); id >= 0 && s.nodes[id].kind == kindString {
			p.UnboundedInputs++
		}
	}
	return false
}

// dataURL leaves member c out of InputBytes if it is a data: URL (inline
// base64); a remote URL is short and stays in.
func (x *extractor) dataURL(c int) {
	s := x.s
	if c < 0 || s.nodes[c].kind != kindString {
		return
	}
	n := &s.nodes[c]
	raw := s.b[n.start+1 : n.end-1]
	if hasPrefix(raw, "data:") || n.flags&flagEscaped != 0 && hasPrefix(s.str(c), "data:") {
		x.payload(c)
	}
}

// payload leaves string member c out of InputBytes, quotes included.
func (x *extractor) payload(c int) {
	if c >= 0 && x.s.nodes[c].kind == kindString {
		x.payloads += int64(x.s.nodes[c].end - x.s.nodes[c].start)
	}
}
