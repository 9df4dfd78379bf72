package openaitest

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"sync"

	"github.com/wrapi-dev/wrapi/pkg/meter"
)

//go:embed testdata/cassettes
var cassetteFS embed.FS

const cassetteDir = "testdata/cassettes"

// Cassette is one recorded OpenAI reply, replayed byte for byte.
type Cassette struct {
	// Name is the cassette's directory name ("chat-stream").
	Name string
	// Method and Path are the request that was recorded ("POST",
	// "/v1/chat/completions").
	Method, Path string
	// Status is the HTTP status of the reply.
	Status int
	// Header holds the recorded reply headers. The server replaces
	// X-Request-Id with a fresh id on every reply.
	Header http.Header
	// Body is the raw reply body: JSON, or the whole SSE stream.
	Body []byte
	// Events is Body split into SSE events, each with its trailing blank
	// line ("data: {...}\n\n"); nil unless Stream.
	Events [][]byte
	// Stream reports a server-sent-event reply.
	Stream bool
	// IncludeUsage reports a chat or legacy completions stream recorded with
	// stream_options.include_usage=true: every chunk carries "usage":null
	// and a last chunk with "choices":[] carries the usage.
	IncludeUsage bool
	// Usage is what the reply reports as consumed, as meter should read it.
	Usage meter.Usage
	// Model is the model the reply names ("gpt-4o-mini-2024-07-18").
	Model string
	// Request is the request body that produced the reply (nil for GETs
	// and for replies any request gets). Its byte length bounds the
	// recorded prompt tokens, so it is safe input for budget estimates.
	Request []byte
	// Source says where the wire shape was taken from.
	Source string
}

// EventsWithoutUsage returns the stream as the API sends it when the
// request did not set stream_options.include_usage: the usage-only last
// chunk is dropped and the "usage":null field is removed from every other
// chunk, every other byte unchanged. For a cassette recorded without
// include_usage it returns Events.
func (c Cassette) EventsWithoutUsage() [][]byte {
	if !c.IncludeUsage {
		return cloneEvents(c.Events)
	}
	out, err := stripUsage(c.Events)
	if err != nil {
		// Load validated this stream; a caller-edited Cassette gets it as is.
		return cloneEvents(c.Events)
	}
	return out
}

// Names lists the embedded cassettes, sorted.
func Names() []string {
	lib, err := library()
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(lib.cassettes))
	for n := range lib.cassettes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Load returns a copy of the named cassette; the caller may modify it.
func Load(name string) (Cassette, error) {
	lib, err := library()
	if err != nil {
		return Cassette{}, err
	}
	c, ok := lib.cassettes[name]
	if !ok {
		return Cassette{}, fmt.Errorf("openaitest: no cassette %q", name)
	}
	return c.clone(), nil
}

// entry is a loaded cassette plus what serving it needs, computed once.
type entry struct {
	Cassette
	// noUsage is Events as sent to a client that did not ask for usage.
	noUsage [][]byte
}

func (e *entry) clone() Cassette {
	c := e.Cassette
	c.Header = e.Header.Clone()
	c.Body = bytes.Clone(e.Body)
	c.Events = cloneEvents(e.Events)
	c.Request = bytes.Clone(e.Request)
	return c
}

func cloneEvents(evs [][]byte) [][]byte {
	if evs == nil {
		return nil
	}
	out := make([][]byte, len(evs))
	for i, ev := range evs {
		out[i] = bytes.Clone(ev)
	}
	return out
}

type lib struct {
	cassettes map[string]*entry
	// models maps a model id of the "models" cassette to its object,
	// formatted like the "model" cassette, for GET /v1/models/{id}.
	models map[string][]byte
}

// library parses the embedded cassettes once; they are read-only after.
var library = sync.OnceValues(loadLibrary)

func loadLibrary() (*lib, error) {
	dirs, err := fs.ReadDir(cassetteFS, cassetteDir)
	if err != nil {
		return nil, fmt.Errorf("openaitest: read cassettes: %w", err)
	}
	l := &lib{cassettes: make(map[string]*entry, len(dirs))}
	var errs []error
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		e, err := loadEntry(d.Name())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		l.cassettes[e.Name] = e
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	need := []string{cassChat, cassChatStream, cassResp, cassRespStream, cassCompl, cassComplStream,
		cassEmbed, cassEmbed64, cassModeration, cassModels, cassModel, cass401Missing, cassInvalidJSON}
	for _, n := range errorCassettes {
		need = append(need, n)
	}
	for _, name := range need {
		if l.cassettes[name] == nil {
			return nil, fmt.Errorf("openaitest: cassette %q missing", name)
		}
	}
	if l.models, err = modelObjects(l.cassettes[cassModels].Body); err != nil {
		return nil, err
	}
	return l, nil
}

// meta is the on-disk meta.json of a cassette.
type meta struct {
	Path         string            `json:"path"`
	Method       string            `json:"method"`
	Status       int               `json:"status"`
	Stream       bool              `json:"stream"`
	IncludeUsage bool              `json:"include_usage"`
	Model        string            `json:"model"`
	Usage        meter.Usage       `json:"usage"`
	Headers      map[string]string `json:"headers"`
	Source       string            `json:"source"`
}

func loadEntry(name string) (*entry, error) {
	dir := path.Join(cassetteDir, name)
	raw, err := fs.ReadFile(cassetteFS, path.Join(dir, "meta.json"))
	if err != nil {
		return nil, fmt.Errorf("openaitest: cassette %s: %w", name, err)
	}
	var m meta
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields() // a misspelt key would silently zero a field
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("openaitest: cassette %s: meta.json: %w", name, err)
	}
	if m.Status < 100 || m.Status > 599 || m.Path == "" || m.Source == "" {
		return nil, fmt.Errorf("openaitest: cassette %s: meta.json needs status, path and source", name)
	}
	if m.Method == "" {
		m.Method = http.MethodPost
	}
	bodyFile := "body.json"
	if m.Stream {
		bodyFile = "body.sse"
	}
	body, err := fs.ReadFile(cassetteFS, path.Join(dir, bodyFile))
	if err != nil {
		return nil, fmt.Errorf("openaitest: cassette %s: %w", name, err)
	}
	req, err := fs.ReadFile(cassetteFS, path.Join(dir, "request.json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("openaitest: cassette %s: %w", name, err)
	}
	h := make(http.Header, len(m.Headers))
	for k, v := range m.Headers {
		h.Set(k, v)
	}
	e := &entry{Cassette: Cassette{
		Name: name, Method: m.Method, Path: m.Path, Status: m.Status, Header: h,
		Body: body, Stream: m.Stream, IncludeUsage: m.IncludeUsage,
		Usage: m.Usage, Model: m.Model, Request: req, Source: m.Source,
	}}
	if !m.Stream {
		if m.IncludeUsage {
			return nil, fmt.Errorf("openaitest: cassette %s: include_usage on a JSON reply", name)
		}
		return e, nil
	}
	if e.Events, err = splitEvents(body); err != nil {
		return nil, fmt.Errorf("openaitest: cassette %s: %w", name, err)
	}
	e.noUsage = e.Events
	if m.IncludeUsage {
		if e.noUsage, err = stripUsage(e.Events); err != nil {
			return nil, fmt.Errorf("openaitest: cassette %s: %w", name, err)
		}
	}
	return e, nil
}

// splitEvents cuts an SSE body after every blank line. The body must use
// bare "\n" line ends and end with a blank line, as OpenAI's streams do.
func splitEvents(body []byte) ([][]byte, error) {
	if bytes.IndexByte(body, '\r') >= 0 {
		return nil, errors.New("SSE body has a carriage return")
	}
	if !bytes.HasSuffix(body, []byte("\n\n")) {
		return nil, errors.New("SSE body does not end with a blank line")
	}
	var evs [][]byte
	for len(body) > 0 {
		i := bytes.Index(body, []byte("\n\n"))
		evs = append(evs, body[:i+2:i+2])
		body = body[i+2:]
	}
	return evs, nil
}

var usageNull = []byte(`,"usage":null`)

// stripUsage turns a stream recorded with include_usage into the stream a
// client without it receives. The JSON is compact, so `,"usage":null` can
// only be that field: inside a string its quotes would be escaped.
func stripUsage(evs [][]byte) ([][]byte, error) {
	out := make([][]byte, 0, len(evs))
	dropped := false
	for _, ev := range evs {
		data, ok := eventData(ev)
		if ok && !bytes.Equal(data, []byte("[DONE]")) {
			var chunk struct {
				Choices json.RawMessage `json:"choices"`
				Usage   json.RawMessage `json:"usage"`
			}
			if err := json.Unmarshal(data, &chunk); err != nil {
				return nil, fmt.Errorf("SSE data is not JSON: %w", err)
			}
			if string(chunk.Choices) == "[]" && len(chunk.Usage) > 0 && string(chunk.Usage) != "null" {
				dropped = true
				continue
			}
		}
		out = append(out, bytes.ReplaceAll(ev, usageNull, nil))
	}
	if !dropped {
		return nil, errors.New("include_usage stream has no usage chunk")
	}
	return out, nil
}

// eventData returns the payload of an event's data: line.
func eventData(ev []byte) ([]byte, bool) {
	for line := range bytes.SplitSeq(ev, []byte("\n")) {
		if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			return d, true
		}
	}
	return nil, false
}

// modelObjects indexes the models list by id, each object formatted as
// the API formats GET /v1/models/{id}.
func modelObjects(list []byte) (map[string][]byte, error) {
	var l struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(list, &l); err != nil {
		return nil, fmt.Errorf("openaitest: models cassette: %w", err)
	}
	out := make(map[string][]byte, len(l.Data))
	for _, raw := range l.Data {
		var m struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &m); err != nil || m.ID == "" {
			return nil, fmt.Errorf("openaitest: models cassette: entry without id")
		}
		var compact, pretty bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return nil, err
		}
		if err := json.Indent(&pretty, compact.Bytes(), "", "  "); err != nil {
			return nil, err
		}
		out[m.ID] = append(pretty.Bytes(), '\n')
	}
	return out, nil
}
