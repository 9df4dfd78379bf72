package proxy

import (
	"net/http"
	"strings"
)

// Kind says what the proxy does with an endpoint.
type Kind int

const (
	// Unknown endpoints are not forwarded (404): the proxy only passes
	// what it understands.
	Unknown Kind = iota
	// Metered endpoints are priced, budgeted and recorded.
	Metered
	// Free endpoints (listing models) pass without metering.
	Free
	// Unmetered endpoints cost money that wrapi cannot meter yet; they are
	// refused (403) unless the stage allows their group by name.
	Unmetered
)

// Route is the classification of one request.
type Route struct {
	Kind Kind
	// Endpoint is the path under /v1 without leading slash
	// ("chat/completions", "models/gpt-4o").
	Endpoint string
	// Group names an Unmetered endpoint family for --allow-unmetered
	// ("batches", "files", …).
	Group string
}

// UnmeteredGroups are the endpoint families that can spend money without
// returning usage wrapi can price. Names are the first path segment.
var UnmeteredGroups = []string{
	"assistants", "audio", "batches", "chatkit", "containers", "conversations", "evals",
	"files", "fine_tuning", "images", "organization", "realtime", "threads", "uploads",
	"vector_stores", "videos",
}

func isUnmeteredGroup(g string) bool {
	for _, u := range UnmeteredGroups {
		if u == g {
			return true
		}
	}
	return false
}

// Classify maps a method and URL path to a Route. Paths must start with
// /v1/.
func Classify(method, path string) Route {
	ep, ok := strings.CutPrefix(path, "/v1/")
	if !ok || ep == "" || strings.Contains(ep, "//") || strings.Contains(ep, "..") {
		return Route{Kind: Unknown, Endpoint: strings.TrimPrefix(path, "/")}
	}
	ep = strings.TrimSuffix(ep, "/")
	r := Route{Endpoint: ep}
	switch ep {
	case "chat/completions", "completions", "embeddings", "responses", "moderations":
		if method == http.MethodPost {
			r.Kind = Metered
			return r
		}
	case "models":
		if method == http.MethodGet {
			r.Kind = Free
			return r
		}
	}
	first, rest, _ := strings.Cut(ep, "/")
	switch {
	case first == "models" && rest != "" && !strings.Contains(rest, "/") && method == http.MethodGet:
		r.Kind = Free
	case first == "models":
		// Deleting a fine-tuned model is an account change, not a call.
		r.Kind, r.Group = Unmetered, "fine_tuning"
	case first == "chat" || first == "responses":
		// Stored completions and responses (list, get, delete, cancel,
		// background runs): not metered here.
		r.Kind, r.Group = Unmetered, first
	case isUnmeteredGroup(first):
		r.Kind, r.Group = Unmetered, first
	default:
		r.Kind = Unknown
	}
	return r
}
