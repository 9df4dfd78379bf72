package meter

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestMembers(t *testing.T) {
	tests := []struct {
		in   string
		want string // "key=value;…" or "error"
	}{
		{`{}`, ""},
		{" \n{ } \n", ""},
		{`{"a":1}`, "a=1;"},
		{`{"a" : "x" , "b":[1,{"c":"]"}],"d":{"e":[]},"f":null,"g":true,"h":-1.5e3}`,
			`a="x";b=[1,{"c":"]"}];d={"e":[]};f=null;g=true;h=-1.5e3;`},
		{`{"k\"ey":"v\\","x":"\\\""}`, `k\"ey="v\\";x="\\\"";`},
		{`{"a":"{[","b":"}]"}`, `a="{[";b="}]";`},
		{`{"a":1,"a":2}`, "a=1;a=2;"},
		{"{\"a\":[\n1,\n2\n]}", "a=[\n1,\n2\n];"},
		{`{"deep":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, "deep=" + strings.Repeat("[", 100) + strings.Repeat("]", 100) + ";"},

		{``, "error"},
		{`[]`, "error"},
		{`"a"`, "error"},
		{`{`, "error"},
		{`{"a"}`, "error"},
		{`{"a":}`, "error"},
		{`{"a":1,}`, "error"},
		{`{"a":1 "b":2}`, "error"},
		{`{"a":"x}`, "error"},
		{`{"a":"x\"}`, "error"},
		{`{"a":[1,2}`, "error"},
		{`{"a":{"b":1]}`, "error"},
		{`{"a":[1,2]]}`, "error"},
		{`{"a":1}}`, "error"},
		{`{"a":1} x`, "error"},
		{`{a:1}`, "error"},
		{`{"a":,}`, "error"},
	}
	for _, tt := range tests {
		var got strings.Builder
		err := members([]byte(tt.in), func(k, v []byte) {
			got.WriteString(string(k) + "=" + string(v) + ";")
		})
		if err != nil {
			if !errors.Is(err, ErrMalformedBody) {
				t.Errorf("%q: error %v does not wrap ErrMalformedBody", tt.in, err)
			}
			if tt.want != "error" {
				t.Errorf("%q: %v", tt.in, err)
			}
			continue
		}
		if got.String() != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, got.String(), tt.want)
		}
	}
}

// refFromJSON is FromJSON written with encoding/json, the slow and obvious
// way; members must agree with it on valid JSON.
func refFromJSON(endpoint string, body []byte) (Result, error) {
	if !Supports(endpoint) {
		return Result{}, ErrUnknownEndpoint
	}
	var env struct {
		Model       refString       `json:"model"`
		ServiceTier refString       `json:"service_tier"`
		Usage       json.RawMessage `json:"usage"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return Result{}, ErrMalformedBody
	}
	var res Result
	if env.Model != "" {
		res.Model = string(env.Model)
	}
	if env.ServiceTier != "" {
		res.ServiceTier = string(env.ServiceTier)
	}
	u, found, err := parseUsage(endpointKind(endpoint), env.Usage)
	if err != nil {
		return res, err
	}
	res.Usage, res.Found = u, found
	return res, nil
}

type refString string

func (s *refString) UnmarshalJSON(b []byte) error {
	if b[0] == '"' && len(b) <= maxNameLen+2 {
		var v string
		if json.Unmarshal(b, &v) == nil {
			*s = refString(v)
		}
	}
	return nil
}

func TestFromJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, rec := range recorded {
		if !strings.HasSuffix(rec.file, ".json") {
			continue
		}
		body := readTestdata(t, rec.file)
		got, err := FromJSON(rec.endpoint, body)
		want, werr := refFromJSON(rec.endpoint, body)
		if got != want || (err == nil) != (werr == nil) {
			t.Errorf("%s: got %+v, %v; encoding/json %+v, %v", rec.file, got, err, want, werr)
		}
	}
}
