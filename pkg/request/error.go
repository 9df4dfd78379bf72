package request

import (
	"fmt"
	"unicode/utf8"
)

// Kind classifies why a request body was refused.
type Kind int

// Kinds of *Error. Every one of them is the client's fault (HTTP 400) except
// KindUnsupportedEndpoint, which means the proxy routed an endpoint this
// package does not know to Parse: an internal error.
const (
	// KindMalformed: not JSON, not an object, trailing data, invalid UTF-8,
	// or nested deeper than MaxDepth.
	KindMalformed Kind = iota + 1
	// KindDuplicateKey: the same key twice in one object, or two keys that
	// differ only in case ("model" and "Model"), at any depth.
	KindDuplicateKey
	// KindMissingModel: "model" is absent or not a non-empty string.
	KindMissingModel
	// KindInvalidField: a field this package reads has the wrong JSON type
	// or an out-of-range value ("stream":"yes", "max_tokens":-1, "n":0).
	KindInvalidField
	// KindUnsupportedEndpoint: Parse was called with an endpoint it does not
	// know. A proxy bug, not a client error.
	KindUnsupportedEndpoint
)

var kindNames = [...]string{
	KindMalformed:           "malformed",
	KindDuplicateKey:        "duplicate_key",
	KindMissingModel:        "missing_model",
	KindInvalidField:        "invalid_field",
	KindUnsupportedEndpoint: "unsupported_endpoint",
}

// String returns a short snake_case name, usable as an error code.
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is a refused request body. Param and Message are safe to show the
// client: they name at most the offending key (truncated to 64 bytes) and a
// byte offset, never a value from the body.
type Error struct {
	Kind Kind
	// Param is the offending field ("max_tokens",
	// "stream_options.include_usage") or, for KindDuplicateKey, the repeated
	// key (unescaped). Empty when no field is to blame.
	Param   string
	Message string
}

func (e *Error) Error() string { return "request: " + e.Message }

// Is makes errors.Is(err, &Error{Kind: k}) match any *Error of kind k.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Param == "" && t.Message == ""
}

// maxEchoedKeyBytes bounds how much of a client's key an error repeats: a key
// is the only client text we echo, and it could be long.
const maxEchoedKeyBytes = 64

// echoKey shortens a decoded key for an error message, on a rune boundary.
func echoKey(k []byte) string {
	if len(k) <= maxEchoedKeyBytes {
		return string(k)
	}
	n := maxEchoedKeyBytes
	for n > 0 && !utf8.RuneStart(k[n]) {
		n--
	}
	return string(k[:n]) + "…"
}

func malformed(off int, what string) *Error {
	return &Error{Kind: KindMalformed, Message: fmt.Sprintf("the request body is not valid JSON: %s at byte %d", what, off)}
}

func duplicateKey(key []byte) *Error {
	k := echoKey(key)
	return &Error{Kind: KindDuplicateKey, Param: k, Message: fmt.Sprintf(
		"the request body has the key %q more than once in one object (keys that differ only in case count as the same key); send each key once", k)}
}

func invalidField(param, want string) *Error {
	return &Error{Kind: KindInvalidField, Param: param, Message: fmt.Sprintf("invalid value for '%s': expected %s", param, want)}
}

func missingModel() *Error {
	return &Error{Kind: KindMissingModel, Param: "model", Message: "you must provide a model parameter (a non-empty string)"}
}
