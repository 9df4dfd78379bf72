// Package apierror holds the errors wrapi shows its clients, always in
// OpenAI's shape {"error":{"message","type","param","code"}} so every SDK
// parses them. Anything not built here is internal and never shown: the
// proxy maps it to a generic message.
//
// Messages never carry a secret, a prompt or a stack trace.
package apierror

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error is a client-facing error.
type Error struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
	// Retry, when false, sets x-should-retry: false: the official SDKs then
	// do not retry (a budget refusal will not pass by retrying).
	NoRetry bool `json:"-"`
}

func (e *Error) Error() string { return e.Message }

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// New builds an Error.
func New(status int, typ, code, param, msg string) *Error {
	return &Error{Status: status, Message: msg, Type: typ, Param: strp(param), Code: strp(code)}
}

// Write sends e to the client as JSON with its status.
func Write(w http.ResponseWriter, e *Error) {
	body, _ := json.Marshal(struct {
		Error *Error `json:"error"`
	}{e})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	if e.NoRetry {
		h.Set("x-should-retry", "false")
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(body, '\n'))
}

// Constructors for every error a client can see. Types follow OpenAI's
// (invalid_request_error, authentication_error, permission_error, …).

func Malformed(param, msg string) *Error {
	return New(http.StatusBadRequest, "invalid_request_error", "invalid_json", param, msg)
}

func InvalidRequest(code, param, msg string) *Error {
	return New(http.StatusBadRequest, "invalid_request_error", code, param, msg)
}

func MissingModel() *Error {
	return New(http.StatusBadRequest, "invalid_request_error", "missing_model", "model",
		"you must provide a model parameter")
}

func ModelNotPriced(model string) *Error {
	return New(http.StatusBadRequest, "invalid_request_error", "model_not_priced", "model",
		fmt.Sprintf("model %q has no price in this wrapi stage, so its spend cannot be metered; "+
			"an admin can add it with a price override file (wrapi serve --prices FILE; see pkg/pricing/README.md)", model))
}

func StageMismatch(got, want string) *Error {
	return New(http.StatusBadRequest, "invalid_request_error", "stage_mismatch", "openai-proxy-staging",
		fmt.Sprintf("this proxy serves stage %q, but the request's openai-proxy-staging header says %q", want, got))
}

func TooLarge(limit int64) *Error {
	return New(http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large", "",
		fmt.Sprintf("request body exceeds the limit of %d bytes", limit))
}

func Unauthenticated(msg string) *Error {
	return New(http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "", msg)
}

func Forbidden(code, msg string) *Error {
	return New(http.StatusForbidden, "permission_error", code, "", msg)
}

func NotFound(path string) *Error {
	return New(http.StatusNotFound, "invalid_request_error", "unknown_url", "",
		fmt.Sprintf("unknown endpoint %s", path))
}

func MethodNotAllowed(method, path string) *Error {
	return New(http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", "",
		fmt.Sprintf("method %s is not allowed on %s", method, path))
}

// BudgetExceeded is the refusal of a request that a limit does not afford.
// 429 with insufficient_quota is what OpenAI itself sends when an account
// is out of credit; x-should-retry: false stops SDK retries.
func BudgetExceeded(msg string) *Error {
	e := New(http.StatusTooManyRequests, "insufficient_quota", "budget_exceeded", "", msg)
	e.NoRetry = true
	return e
}

func LimitRequired(msg string) *Error {
	return New(http.StatusForbidden, "permission_error", "limit_required", "", msg)
}

func UpstreamUnreachable() *Error {
	return New(http.StatusBadGateway, "api_error", "upstream_unreachable", "",
		"the OpenAI API could not be reached; try again later")
}

func UpstreamTimeout() *Error {
	return New(http.StatusGatewayTimeout, "api_error", "upstream_timeout", "",
		"the OpenAI API did not answer in time; try again later")
}

func StoreUnavailable() *Error {
	return New(http.StatusServiceUnavailable, "api_error", "store_unavailable", "",
		"wrapi's usage store is unavailable, so the request cannot be metered and was not sent; try again later")
}

func Internal() *Error {
	return New(http.StatusInternalServerError, "api_error", "internal_error", "",
		"internal error in wrapi; the request was not billed")
}
