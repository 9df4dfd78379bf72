package pricing

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/wrapi-dev/wrapi/pkg/money"
)

//go:embed prices.json
var embedded []byte

// maxFileSize bounds what Load and Override read: a price file is a few
// hundred kilobytes at most.
const maxFileSize = 16 << 20

// Table is an immutable, versioned set of model prices and aliases, safe for
// concurrent use.
type Table struct {
	version string
	models  map[string]Model
	aliases map[string]string
	// src keeps each entry in file form so Override can merge field by field.
	src map[string]*fileModel
}

var defaultTable = sync.OnceValue(func() *Table {
	t, err := Load(bytes.NewReader(embedded))
	if err != nil {
		// Only a broken embedded file gets here; TestDefault guards it.
		panic("pricing: embedded prices.json: " + err.Error())
	}
	return t
})

// Default returns the table parsed from the embedded prices.json, once.
func Default() *Table { return defaultTable() }

// Load reads a full price table (the format of prices.json, see README.md).
// It rejects unknown fields, duplicate keys, prices given as JSON numbers,
// negative prices, models without the prices or limits they need, and
// aliases to unknown models.
func Load(r io.Reader) (*Table, error) {
	f, err := decodeFile(r)
	if err != nil {
		return nil, err
	}
	if f.Version == "" {
		return nil, errors.New("pricing: table has no version")
	}
	if len(f.Models) == 0 {
		return nil, errors.New("pricing: table has no models")
	}
	src := make(map[string]*fileModel, len(f.Models))
	for name, fm := range f.Models {
		if fm == nil {
			return nil, fmt.Errorf("pricing: model %q is null", name)
		}
		src[name] = fm
	}
	aliases := make(map[string]string, len(f.Aliases))
	for alias, target := range f.Aliases {
		if target == nil {
			return nil, fmt.Errorf("pricing: alias %q is null", alias)
		}
		aliases[alias] = *target
	}
	return build(f.Version, src, aliases)
}

// Override returns a new table: t with the models and aliases of the file
// applied (t is unchanged). Fields given for an existing model replace those
// fields; a tier given replaces the fields it gives in that tier; a model or
// tier given as null is removed, with the aliases that pointed to it; a new
// name adds a model, which must be complete. The new version is t's version
// plus "+" and the file's "version", or "+sha256-" and a digest of the file
// when it has none, so records show which prices billed them.
func (t *Table) Override(r io.Reader) (*Table, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("pricing: read override: %w", err)
	}
	f, err := decodeFile(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	tag := f.Version
	if tag == "" {
		sum := sha256.Sum256(raw)
		tag = "sha256-" + hex.EncodeToString(sum[:4])
	}

	src := maps.Clone(t.src)
	aliases := maps.Clone(t.aliases)
	for name, patch := range f.Models {
		if patch == nil {
			if _, ok := src[name]; !ok {
				return nil, fmt.Errorf("pricing: override removes unknown model %q", name)
			}
			delete(src, name)
			continue
		}
		if base, ok := src[name]; ok {
			src[name] = base.merged(patch)
		} else {
			src[name] = patch
		}
		// A name that becomes a model of its own is no longer an alias: a
		// snapshot with a price of its own must not resolve to its family.
		delete(aliases, name)
	}
	for alias, target := range f.Aliases {
		if target == nil {
			delete(aliases, alias)
			continue
		}
		aliases[alias] = *target
	}
	for alias, target := range aliases {
		if _, ok := src[target]; !ok {
			if _, removed := f.Models[target]; removed {
				delete(aliases, alias)
			}
		}
	}
	return build(t.version+"+"+tag, src, aliases)
}

// Version identifies the price set, e.g. "2026-11-27.1" or
// "2026-11-27.1+local".
func (t *Table) Version() string { return t.version }

// Lookup finds a model by its exact name, else by an explicit alias. Names
// are case-sensitive, like OpenAI's. It reports false for an unknown model:
// never price one at zero.
func (t *Table) Lookup(model string) (Model, bool) {
	m, ok := t.models[model]
	if !ok {
		target, isAlias := t.aliases[model]
		if !isAlias {
			return Model{}, false
		}
		m = t.models[target]
	}
	// The caller gets its own tier map: the table stays immutable.
	m.Tiers = maps.Clone(m.Tiers)
	return m, true
}

// Names lists the model entries (not the aliases), sorted.
func (t *Table) Names() []string {
	return slices.Sorted(maps.Keys(t.models))
}

// Aliases returns a copy of the alias list: snapshot name → entry name.
func (t *Table) Aliases() map[string]string { return maps.Clone(t.aliases) }

// build validates the file form and derives the priced models.
func build(version string, src map[string]*fileModel, aliases map[string]string) (*Table, error) {
	if strings.ContainsFunc(version, isSpace) {
		return nil, fmt.Errorf("pricing: version %q contains white space", version)
	}
	t := &Table{
		version: version,
		models:  make(map[string]Model, len(src)),
		aliases: aliases,
		src:     src,
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(src)) {
		m, err := src[name].model(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t.models[name] = m
	}
	for _, alias := range slices.Sorted(maps.Keys(aliases)) {
		target := aliases[alias]
		switch {
		case alias == "" || strings.ContainsFunc(alias, isSpace):
			errs = append(errs, fmt.Errorf("pricing: bad alias name %q", alias))
		case src[alias] != nil:
			errs = append(errs, fmt.Errorf("pricing: alias %q is also a model", alias))
		case src[target] == nil:
			errs = append(errs, fmt.Errorf("pricing: alias %q points to unknown model %q", alias, target))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

// fileTable is prices.json. Pointers tell "absent" from "zero" so that an
// override replaces only the fields it gives, and null removes an entry.
type fileTable struct {
	Version string                `json:"version"`
	Notes   []string              `json:"notes,omitempty"`
	Models  map[string]*fileModel `json:"models"`
	Aliases map[string]*string    `json:"aliases,omitempty"`
}

// filePrices is one price set: USD per 1M tokens as decimal strings.
type filePrices struct {
	Input            *money.PerMillion `json:"input,omitempty"`
	CachedInput      *money.PerMillion `json:"cached_input,omitempty"`
	Output           *money.PerMillion `json:"output,omitempty"`
	AudioInput       *money.PerMillion `json:"audio_input,omitempty"`
	CachedAudioInput *money.PerMillion `json:"cached_audio_input,omitempty"`
	AudioOutput      *money.PerMillion `json:"audio_output,omitempty"`
	ImageInput       *money.PerMillion `json:"image_input,omitempty"`
	ImageOutput      *money.PerMillion `json:"image_output,omitempty"`
}

// fileModel is one model entry: its standard prices inline, then the rest.
type fileModel struct {
	filePrices
	Tiers           map[string]*filePrices `json:"tiers,omitempty"`
	ContextWindow   *int64                 `json:"context_window,omitempty"`
	MaxOutputTokens *int64                 `json:"max_output_tokens,omitempty"`
	Free            *bool                  `json:"free,omitempty"`
	// Provenance, for people: where and when the figures were taken.
	Source  *string `json:"source,omitempty"`
	Checked *string `json:"checked,omitempty"`
	Note    *string `json:"note,omitempty"`
}

func decodeFile(r io.Reader) (*fileTable, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("pricing: read: %w", err)
	}
	if len(raw) > maxFileSize {
		return nil, fmt.Errorf("pricing: file larger than %d bytes", maxFileSize)
	}
	// encoding/json keeps the last of duplicate keys silently; a price file
	// with two entries for one model is a mistake worth reporting.
	if err := checkDuplicateKeys(raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var f fileTable
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("pricing: decode: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("pricing: decode: data after the top-level object")
	}
	return &f, nil
}

// checkDuplicateKeys reports the first object key that occurs twice in one
// object of a JSON document.
func checkDuplicateKeys(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		// wantKey is true when the next token in an object is a key.
		wantKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pricing: decode: %w", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if key, ok := tok.(string); ok {
				if top.keys[key] {
					return fmt.Errorf("pricing: duplicate key %q", key)
				}
				top.keys[key] = true
				top.wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value (scalar or closed container) was read: in an object the
		// next token is a key again.
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].wantKey = true
		}
	}
}

// merged returns a copy of m with the fields given in patch replaced.
func (m *fileModel) merged(patch *fileModel) *fileModel {
	out := *m
	out.filePrices = m.filePrices.merged(&patch.filePrices)
	if patch.Tiers != nil {
		out.Tiers = maps.Clone(m.Tiers)
		if out.Tiers == nil {
			out.Tiers = map[string]*filePrices{}
		}
		for name, tp := range patch.Tiers {
			if tp == nil {
				delete(out.Tiers, name)
				continue
			}
			base := out.Tiers[name]
			if base == nil {
				base = &filePrices{}
			}
			merged := base.merged(tp)
			out.Tiers[name] = &merged
		}
	}
	setIf(&out.ContextWindow, patch.ContextWindow)
	setIf(&out.MaxOutputTokens, patch.MaxOutputTokens)
	setIf(&out.Free, patch.Free)
	setIf(&out.Source, patch.Source)
	setIf(&out.Checked, patch.Checked)
	setIf(&out.Note, patch.Note)
	return &out
}

func (p *filePrices) merged(patch *filePrices) filePrices {
	out := *p
	setIf(&out.Input, patch.Input)
	setIf(&out.CachedInput, patch.CachedInput)
	setIf(&out.Output, patch.Output)
	setIf(&out.AudioInput, patch.AudioInput)
	setIf(&out.CachedAudioInput, patch.CachedAudioInput)
	setIf(&out.AudioOutput, patch.AudioOutput)
	setIf(&out.ImageInput, patch.ImageInput)
	setIf(&out.ImageOutput, patch.ImageOutput)
	return out
}

func setIf[T any](dst **T, v *T) {
	if v != nil {
		*dst = v
	}
}

func (p *filePrices) prices() Prices {
	get := func(v *money.PerMillion) money.PerMillion {
		if v == nil {
			return 0
		}
		return *v
	}
	return Prices{
		Input:            get(p.Input),
		CachedInput:      get(p.CachedInput),
		Output:           get(p.Output),
		AudioInput:       get(p.AudioInput),
		CachedAudioInput: get(p.CachedAudioInput),
		AudioOutput:      get(p.AudioOutput),
		ImageInput:       get(p.ImageInput),
		ImageOutput:      get(p.ImageOutput),
	}
}

// model validates one entry and converts it.
func (fm *fileModel) model(name string) (Model, error) {
	bad := func(format string, args ...any) (Model, error) {
		return Model{}, fmt.Errorf("pricing: model %q: "+format, append([]any{name}, args...)...)
	}
	if name == "" || strings.ContainsFunc(name, isSpace) {
		return bad("bad model name")
	}
	m := Model{Name: name, Standard: fm.prices()}
	if fm.Free != nil {
		m.Free = *fm.Free
	}
	if fm.ContextWindow != nil {
		m.ContextWindow = *fm.ContextWindow
	}
	if fm.MaxOutputTokens != nil {
		m.MaxOutputTokens = *fm.MaxOutputTokens
	}
	if m.ContextWindow < 0 || m.MaxOutputTokens < 0 {
		return bad("negative token limit")
	}
	if m.ContextWindow > 0 && m.MaxOutputTokens > m.ContextWindow {
		return bad("max_output_tokens %d exceeds context_window %d", m.MaxOutputTokens, m.ContextWindow)
	}
	if err := checkPrices(m.Standard, m.Free); err != nil {
		return bad("%v", err)
	}
	if m.Free {
		if len(fm.Tiers) > 0 {
			return bad("a free model has no tiers")
		}
		return m, nil
	}
	if m.ContextWindow == 0 {
		return bad("context_window is required")
	}
	if m.Standard.maxOutputAny() > 0 && m.MaxOutputTokens == 0 {
		// AffordableOutput caps at MaxOutputTokens: without it no output
		// could ever be reserved.
		return bad("max_output_tokens is required for a model priced for output")
	}
	for _, tier := range slices.Sorted(maps.Keys(fm.Tiers)) {
		tp := fm.Tiers[tier]
		switch tier {
		case "", "auto", "default":
			return bad("tier %q is the standard price set: give it at the model level", tier)
		}
		if tp == nil {
			return bad("tier %q is null", tier)
		}
		p := tp.prices()
		if err := checkPrices(p, false); err != nil {
			return bad("tier %q: %v", tier, err)
		}
		if m.Tiers == nil {
			m.Tiers = make(map[string]Prices, len(fm.Tiers))
		}
		m.Tiers[tier] = p
	}
	return m, nil
}

func (p Prices) maxOutputAny() money.PerMillion { return max(p.Output, p.AudioOutput, p.ImageOutput) }

// checkPrices: no negative price; a free set has none, a priced set has an
// input price (every metered endpoint bills input).
func checkPrices(p Prices, free bool) error {
	all := []money.PerMillion{p.Input, p.CachedInput, p.Output, p.AudioInput, p.CachedAudioInput, p.AudioOutput, p.ImageInput, p.ImageOutput}
	for _, v := range all {
		if v < 0 {
			return fmt.Errorf("negative price %s", v)
		}
	}
	if free {
		for _, v := range all {
			if v != 0 {
				return errors.New("a free model has no prices")
			}
		}
		return nil
	}
	if p.Input == 0 {
		return errors.New("input price is required (or \"free\": true)")
	}
	return nil
}
