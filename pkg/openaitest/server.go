// Package openaitest is a fake OpenAI API for tests: it replays recorded
// OpenAI replies ("cassettes") byte for byte, so the proxy's parsing,
// metering and streaming meet the real wire shapes — SSE framing, the
// include_usage chunk, obfuscation, responses API events, error bodies —
// without a network or a key.
//
// Cassettes live in testdata/cassettes/<name>/ (meta.json, body.json or
// body.sse, request.json) and are embedded; README.md lists them and where
// each shape comes from. Load and Names read them.
//
// A Server routes each request to a cassette:
//
//	POST /v1/chat/completions  chat, or chat-stream when "stream": true
//	POST /v1/responses         responses, or responses-stream
//	POST /v1/completions       completions, or completions-stream
//	POST /v1/embeddings        embeddings, or embeddings-base64 when "encoding_format": "base64"
//	POST /v1/moderations       moderations
//	GET  /v1/models            models
//	GET  /v1/models/{id}       that entry of models (404 model_not_found if absent)
//
// anything else gets OpenAI's 404 "Invalid URL (METHOD /path)", and a POST
// body that is not JSON gets the recorded 400. Server.Use overrides the
// cassette of a path; the request header X-Openaitest-Cassette overrides
// both, so parallel tests choose without sharing state. The chosen
// cassette is served whatever the request says: nothing is echoed back.
//
// Streams recorded with stream_options.include_usage=true (chat and legacy
// completions) are sent as recorded only when the request sets
// include_usage to true. Otherwise the usage-only last chunk is not sent
// and `,"usage":null` is removed from every other chunk — exactly
// Cassette.EventsWithoutUsage — as the API does. Every event is flushed as
// it is written.
//
// Faults, set per path with Server.Fault or per request with the header
// X-Openaitest-Fault (which replaces the path's fault), are a
// comma-separated list:
//
//	status:<code>    serve the error cassette of that status (400, 401, 404, 429, 500),
//	                 or a generic OpenAI-shaped error for other codes
//	delay:<dur>      wait before sending headers
//	cut:<n>          send n SSE events (n bytes of a JSON body), then drop the
//	                 connection; the final event ([DONE] or response.completed)
//	                 is never sent
//	hang             send nothing until the client goes away
//	slow:<dur>       wait between SSE events (no effect on JSON replies)
//
// The server answers concurrently without a global lock: cassettes are
// immutable once loaded, and only the route table and the request log
// take a mutex, briefly.
package openaitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Request headers a test sets to steer one request.
const (
	HeaderCassette = "X-Openaitest-Cassette"
	HeaderFault    = "X-Openaitest-Fault"
)

// Cassette names the router uses by default.
const (
	cassChat         = "chat"
	cassChatStream   = "chat-stream"
	cassResp         = "responses"
	cassRespStream   = "responses-stream"
	cassCompl        = "completions"
	cassComplStream  = "completions-stream"
	cassEmbed        = "embeddings"
	cassEmbed64      = "embeddings-base64"
	cassModeration   = "moderations"
	cassModels       = "models"
	cassModel        = "model"
	cass401          = "error-401"
	cass401Missing   = "error-401-missing-key"
	cass404Model     = "error-404-model"
	cassInvalidJSON  = "error-400-invalid-json"
	recorded404Model = "gpt-4.1-nano-wrong" // the model named in error-404-model
)

const (
	maxRequestBody = 64 << 20
	modelsPath     = "/v1/models"
	modelsPrefix   = modelsPath + "/"
)

// errorCassettes maps a status fault to the cassette it serves.
var errorCassettes = map[int]string{
	400: "error-400",
	401: cass401,
	404: cass404Model,
	429: "error-429",
	500: "error-500",
}

// Request is one request the server received.
type Request struct {
	Method string
	// Path is the URL path ("/v1/chat/completions"); RawQuery its query.
	Path, RawQuery string
	Header         http.Header
	Body           []byte
	// Cassette is the cassette served (or, for a hang, chosen); empty when
	// the reply was generated (unknown path, unknown cassette, bad fault).
	Cassette string
}

// Server is a fake OpenAI API. It is safe for concurrent use.
type Server struct {
	// URL is the base URL clients use, ending in /v1
	// ("http://127.0.0.1:43121/v1"); empty for a server made by New.
	URL string

	ts     *httptest.Server
	lib    *lib
	apiKey string

	cfgMu  sync.RWMutex
	uses   map[string]string
	faults map[string]fault

	reqMu    sync.Mutex
	requests []Request

	done      chan struct{} // closed by Close: ends hangs and waits
	closeOnce sync.Once
}

// Option configures a Server.
type Option func(*Server)

// WithAPIKey makes the server require "Authorization: Bearer <key>" and
// answer anything else with the recorded 401 (error-401-missing-key when
// the header is absent, error-401 otherwise). Without it any key passes.
func WithAPIKey(key string) Option {
	return func(s *Server) { s.apiKey = key }
}

// New returns a Server that is not listening: serve its Handler yourself.
// It panics if the embedded cassettes are corrupt, which tests catch.
func New(opts ...Option) *Server {
	l, err := library()
	if err != nil {
		panic(err)
	}
	s := &Server{
		lib:    l,
		uses:   map[string]string{},
		faults: map[string]fault{},
		done:   make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// NewServer starts a Server on a loopback port; call Close when done.
func NewServer(opts ...Option) *Server {
	s := New(opts...)
	s.ts = httptest.NewServer(s.Handler())
	s.URL = s.ts.URL + "/v1"
	return s
}

// Close stops the server. Hung and delayed requests are released (their
// connections dropped) instead of blocking Close.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
	if s.ts != nil {
		s.ts.Close()
	}
}

// Handler returns the server's http.Handler, for mounting elsewhere.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// Use makes requests to path ("/v1/chat/completions") get the named
// cassette; an empty name restores the default. It panics on an unknown
// cassette, a test bug better found at once.
func (s *Server) Use(path, cassette string) {
	if cassette != "" && s.lib.cassettes[cassette] == nil {
		panic(fmt.Sprintf("openaitest: Use(%q): no cassette %q (have %s)", path, cassette, strings.Join(Names(), ", ")))
	}
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	if cassette == "" {
		delete(s.uses, path)
	} else {
		s.uses[path] = cassette
	}
}

// Fault injects the fault spec (see the package doc) into every request
// to path; an empty spec removes it. It panics on a malformed spec.
func (s *Server) Fault(path, spec string) {
	f, err := parseFault(spec)
	if err != nil {
		panic(err)
	}
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	if spec == "" {
		delete(s.faults, path)
	} else {
		s.faults[path] = f
	}
}

// Requests returns a copy of every request received, in arrival order.
func (s *Server) Requests() []Request {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Header = r.Header.Clone()
		r.Body = bytes.Clone(r.Body)
		out[i] = r
	}
	return out
}

// Reset forgets the recorded requests and every Use and Fault, returning
// the server to its state after NewServer (the API key stays).
func (s *Server) Reset() {
	s.cfgMu.Lock()
	s.uses = map[string]string{}
	s.faults = map[string]fault{}
	s.cfgMu.Unlock()
	s.reqMu.Lock()
	s.requests = nil
	s.reqMu.Unlock()
}

// reply is what one request will be answered with.
type reply struct {
	name   string // cassette name; empty when generated
	status int
	header http.Header // shared with the cassette: copy, never modify
	body   []byte      // JSON replies
	events [][]byte    // SSE replies
	stream bool
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err != nil {
		return // the client went away mid-body
	}
	f, rep := s.faultFor(r)
	if rep == nil {
		rep = s.route(r, body, f)
	}
	s.record(r, body, rep.name)

	if f.delay > 0 && !s.wait(r.Context(), f.delay) {
		return
	}
	if f.hang {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		panic(http.ErrAbortHandler) // drop the connection without a reply
	}

	h := w.Header()
	for k, v := range rep.header {
		h[k] = slices.Clone(v) // the cassette's header is shared by all requests
	}
	h.Set("X-Request-Id", newRequestID())
	if rep.name != "" {
		h.Set(HeaderCassette, rep.name)
	}
	rc := http.NewResponseController(w)
	if !rep.stream {
		h.Set("Content-Length", strconv.Itoa(len(rep.body)))
		w.WriteHeader(rep.status)
		if f.cut >= 0 && f.cut < len(rep.body) {
			_, _ = w.Write(rep.body[:f.cut])
			_ = rc.Flush()
			panic(http.ErrAbortHandler)
		}
		_, _ = w.Write(rep.body)
		return
	}
	h.Del("Content-Length")
	w.WriteHeader(rep.status)
	_ = rc.Flush() // headers out now, as the API sends them before the first token
	evs := rep.events
	cut := f.cut >= 0
	if cut && f.cut < len(evs) {
		evs = evs[:f.cut]
	} else if cut && len(evs) > 0 {
		evs = evs[:len(evs)-1] // the final event would complete the stream
	}
	for i, ev := range evs {
		if i > 0 && f.slow > 0 && !s.wait(r.Context(), f.slow) {
			panic(http.ErrAbortHandler)
		}
		if _, err := w.Write(ev); err != nil {
			return
		}
		// Tolerate writers without a Flusher, as the Lambda adapter's.
		_ = rc.Flush()
	}
	if cut {
		panic(http.ErrAbortHandler)
	}
}

// wait sleeps d, reporting false if the client left or the server closed.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

// faultFor returns the request's fault, or a reply when its fault header
// is malformed.
func (s *Server) faultFor(r *http.Request) (fault, *reply) {
	if spec, ok := r.Header[http.CanonicalHeaderKey(HeaderFault)]; ok {
		f, err := parseFault(strings.Join(spec, ","))
		if err != nil {
			return noFault, generated(http.StatusBadRequest, err.Error(), "invalid_request_error", "openaitest_bad_fault")
		}
		return f, nil
	}
	s.cfgMu.RLock()
	f, ok := s.faults[r.URL.Path]
	s.cfgMu.RUnlock()
	if !ok {
		return noFault, nil
	}
	return f, nil
}

// route picks the reply: authentication, then a status fault, then the
// cassette header, then the path's cassette.
func (s *Server) route(r *http.Request, body []byte, f fault) *reply {
	if s.apiKey != "" {
		switch auth := r.Header.Get("Authorization"); {
		case auth == "":
			return s.cassette(cass401Missing, nil)
		case auth != "Bearer "+s.apiKey:
			return s.cassette(cass401, nil)
		}
	}
	if f.status != 0 {
		if name, ok := errorCassettes[f.status]; ok {
			return s.cassette(name, nil)
		}
		typ := "invalid_request_error"
		if f.status >= 500 {
			typ = "server_error"
		}
		return generated(f.status, fmt.Sprintf("openaitest: injected HTTP %d", f.status), typ, "")
	}
	fields, jsonErr := parseFields(r.Method, body)
	if name := r.Header.Get(HeaderCassette); name != "" {
		if s.lib.cassettes[name] == nil {
			return generated(http.StatusBadRequest, fmt.Sprintf("openaitest: no cassette %q", name), "invalid_request_error", "openaitest_unknown_cassette")
		}
		return s.cassette(name, &fields)
	}
	s.cfgMu.RLock()
	name := s.uses[r.URL.Path]
	s.cfgMu.RUnlock()
	if name != "" {
		return s.cassette(name, &fields)
	}

	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && p == modelsPath:
		return s.cassette(cassModels, nil)
	case r.Method == http.MethodGet && strings.HasPrefix(p, modelsPrefix):
		return s.model(strings.TrimPrefix(p, modelsPrefix))
	case r.Method != http.MethodPost:
		return invalidURL(r)
	}
	var def, stream string
	switch p {
	case "/v1/chat/completions":
		def, stream = cassChat, cassChatStream
	case "/v1/responses":
		def, stream = cassResp, cassRespStream
	case "/v1/completions":
		def, stream = cassCompl, cassComplStream
	case "/v1/embeddings":
		def = cassEmbed
		if fields.EncodingFormat == "base64" {
			def = cassEmbed64
		}
	case "/v1/moderations":
		def = cassModeration
	default:
		return invalidURL(r)
	}
	if jsonErr {
		return s.cassette(cassInvalidJSON, nil)
	}
	if stream != "" && fields.Stream != nil && *fields.Stream {
		def = stream
	}
	return s.cassette(def, &fields)
}

// requestFields are the few request fields that steer the reply.
type requestFields struct {
	Stream        *bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage *bool `json:"include_usage"`
	} `json:"stream_options"`
	EncodingFormat string `json:"encoding_format"`
}

func (f *requestFields) includeUsage() bool {
	return f != nil && f.StreamOptions != nil && f.StreamOptions.IncludeUsage != nil && *f.StreamOptions.IncludeUsage
}

// parseFields reads the steering fields of a POST body, reporting whether
// the body is not JSON.
func parseFields(method string, body []byte) (requestFields, bool) {
	var f requestFields
	if method != http.MethodPost {
		return f, false
	}
	if err := json.Unmarshal(body, &f); err != nil {
		return requestFields{}, true
	}
	return f, false
}

// cassette builds the reply for a cassette; fields (nil: none) decide
// whether an include_usage stream keeps its usage chunk.
func (s *Server) cassette(name string, fields *requestFields) *reply {
	e := s.lib.cassettes[name]
	rep := &reply{name: name, status: e.Status, header: e.Header, body: e.Body, stream: e.Stream, events: e.Events}
	if e.Stream && e.IncludeUsage && !fields.includeUsage() {
		rep.events = e.noUsage
	}
	return rep
}

// model answers GET /v1/models/{id} from the models list.
func (s *Server) model(id string) *reply {
	if obj, ok := s.lib.models[id]; ok {
		rep := s.cassette(cassModel, nil)
		rep.body = obj
		return rep
	}
	rep := s.cassette(cass404Model, nil)
	quoted, _ := json.Marshal(id)
	rep.body = bytes.ReplaceAll(rep.body, []byte("`"+recorded404Model+"`"), []byte("`"+string(quoted[1:len(quoted)-1])+"`"))
	return rep
}

// edgeHeader is what api.openai.com's edge sends with errors it generates.
var edgeHeader = http.Header{
	"Content-Type":           {"application/json; charset=utf-8"},
	"Vary":                   {"Origin"},
	"X-Content-Type-Options": {"nosniff"},
}

// invalidURL is the API's answer to a path or method it does not serve.
func invalidURL(r *http.Request) *reply {
	return generated(http.StatusNotFound, fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path), "invalid_request_error", "")
}

// apiError is OpenAI's error object, fields in the API's order.
type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// generated builds an OpenAI-shaped error reply that is not a cassette,
// formatted as the API's edge formats its own errors.
func generated(status int, msg, typ, code string) *reply {
	e := apiError{Message: msg, Type: typ}
	if code != "" {
		e.Code = &code
	}
	b, _ := json.MarshalIndent(struct {
		Error apiError `json:"error"`
	}{e}, "", "    ")
	return &reply{status: status, header: edgeHeader, body: append(b, '\n')}
}

func (s *Server) record(r *http.Request, body []byte, cassette string) {
	req := Request{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body, Cassette: cassette,
	}
	s.reqMu.Lock()
	s.requests = append(s.requests, req)
	s.reqMu.Unlock()
}

// newRequestID makes an id shaped like OpenAI's: "req_" and 32 hex digits.
func newRequestID() string {
	return fmt.Sprintf("req_%016x%016x", rand.Uint64(), rand.Uint64())
}
