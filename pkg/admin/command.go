package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

// Request is one admin command as JSON: the payload of the admin Lambda
// (aws lambda invoke --payload '{"command":"limits.list"}') and of the CLI
// against a deployed stage. See functions/README.md for every command.
type Request struct {
	Command string          `json:"command"`
	Args    json.RawMessage `json:"args,omitempty"`
}

// Response is the answer to a Request. Exactly one of Result and Error is
// set. Errors are typed and never carry a stack trace.
type Response struct {
	OK     bool           `json:"ok"`
	Result any            `json:"result,omitempty"`
	Error  *ResponseError `json:"error,omitempty"`
}

// ResponseError is a typed admin error.
type ResponseError struct {
	// Type is invalid_input, not_found, unavailable or internal.
	Type    string `json:"type"`
	Message string `json:"message"`
}

func (e *ResponseError) Error() string { return e.Type + ": " + e.Message }

// ScopeArgs names a limit's scope and period.
type ScopeArgs struct {
	Project string `json:"project,omitempty"`
	User    string `json:"user,omitempty"`
	Model   string `json:"model,omitempty"`
	Period  string `json:"period,omitempty"` // default month
}

func (a ScopeArgs) scope() budget.Scope {
	return budget.Scope{Project: a.Project, User: a.User, Model: a.Model}
}

func (a ScopeArgs) period() string {
	if a.Period == "" {
		return string(budget.Month)
	}
	return a.Period
}

// SetLimitArgs are the arguments of limits.set.
type SetLimitArgs struct {
	ScopeArgs
	USD string `json:"usd"`
}

// UsageArgs are the arguments of usage.
type UsageArgs struct {
	By      []string `json:"by,omitempty"`
	Since   string   `json:"since,omitempty"` // 2006-01-02 or RFC 3339
	Until   string   `json:"until,omitempty"`
	Project string   `json:"project,omitempty"`
	User    string   `json:"user,omitempty"`
	Model   string   `json:"model,omitempty"`
}

// KeyArgs are the arguments of keys.create and keys.revoke.
type KeyArgs struct {
	ID      string `json:"id,omitempty"`
	User    string `json:"user,omitempty"`
	Project string `json:"project,omitempty"`
}

// CacheArgs are the arguments of cache.flush.
type CacheArgs struct {
	// Scope to flush ("project:ml"); empty flushes everything.
	Scope string `json:"scope,omitempty"`
}

// CreatedKey is the result of keys.create: the only time the secret is
// shown.
type CreatedKey struct {
	store.Key
	Secret string `json:"secret"`
}

// CacheFlusher flushes the response cache; nil when the stage has none.
type CacheFlusher interface {
	Flush(ctx context.Context, scope string) error
}

// Commands lists the command names Do understands.
var Commands = []string{
	"limits.set", "limits.list", "limits.delete", "usage", "keys.create", "keys.list", "keys.revoke",
	"reservations.list", "reap", "cache.flush",
}

// ParseTime reads a date (2026-11-01) or an RFC 3339 instant; "" is zero.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q is neither a date (2006-01-02) nor an RFC 3339 time", ErrInvalid, s)
	}
	return t, nil
}

// Do runs one command. It never panics on bad input and never returns a
// Go error: failures are typed in the Response.
func (s *Service) Do(ctx context.Context, req Request) (resp Response) {
	defer func() {
		if v := recover(); v != nil {
			resp = Response{Error: &ResponseError{Type: "internal", Message: "internal error"}}
		}
	}()
	result, err := s.do(ctx, req)
	if err != nil {
		return Response{Error: classify(err)}
	}
	return Response{OK: true, Result: result}
}

func classify(err error) *ResponseError {
	var re *ResponseError
	switch {
	case errors.As(err, &re):
		return re
	case errors.Is(err, ErrInvalid):
		return &ResponseError{Type: "invalid_input", Message: err.Error()}
	case errors.Is(err, store.ErrNotFound):
		return &ResponseError{Type: "not_found", Message: "not found"}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &ResponseError{Type: "unavailable", Message: "the store did not answer in time"}
	default:
		return &ResponseError{Type: "internal", Message: "the store failed; see the function's logs"}
	}
}

func decode(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: arguments: %v", ErrInvalid, err)
	}
	return nil
}

func (s *Service) do(ctx context.Context, req Request) (any, error) {
	switch req.Command {
	case "limits.set":
		var a SetLimitArgs
		if err := decode(req.Args, &a); err != nil {
			return nil, err
		}
		return s.SetLimit(ctx, a.scope(), a.period(), a.USD)
	case "limits.list":
		ls, err := s.Limits(ctx)
		if ls == nil {
			ls = []LimitStatus{}
		}
		return ls, err
	case "limits.delete":
		var a ScopeArgs
		if err := decode(req.Args, &a); err != nil {
			return nil, err
		}
		return nil, s.DeleteLimit(ctx, a.scope(), a.period())
	case "usage":
		var a UsageArgs
		if err := decode(req.Args, &a); err != nil {
			return nil, err
		}
		for _, d := range a.By {
			if _, err := ParseBy(d); err != nil {
				return nil, err
			}
		}
		q := UsageQuery{By: a.By, UsageFilter: store.UsageFilter{Project: a.Project, User: a.User, Model: a.Model}}
		var err error
		if q.Since, err = ParseTime(a.Since); err != nil {
			return nil, err
		}
		if q.Until, err = ParseTime(a.Until); err != nil {
			return nil, err
		}
		return s.Usage(ctx, q)
	case "keys.create":
		var a KeyArgs
		if err := decode(req.Args, &a); err != nil {
			return nil, err
		}
		secret, k, err := s.CreateKey(ctx, a.User, a.Project)
		if err != nil {
			return nil, err
		}
		return CreatedKey{Key: k, Secret: secret}, nil
	case "keys.list":
		ks, err := s.ListKeys(ctx)
		if ks == nil {
			ks = []store.Key{}
		}
		return ks, err
	case "keys.revoke":
		var a KeyArgs
		if err := decode(req.Args, &a); err != nil {
			return nil, err
		}
		if a.ID == "" {
			return nil, fmt.Errorf("%w: keys.revoke needs an id", ErrInvalid)
		}
		return nil, s.RevokeKey(ctx, a.ID)
	case "reservations.list":
		rs, err := s.Reservations(ctx)
		if rs == nil {
			rs = []store.Reservation{}
		}
		return rs, err
	case "reap":
		n, err := s.Reap(ctx)
		return map[string]int{"released": n}, err
	case "cache.flush":
		var a CacheArgs
		if err := decode(req.Args, &a); err != nil {
			return nil, err
		}
		if s.Cache == nil {
			return nil, &ResponseError{Type: "invalid_input", Message: "this stage has no response cache"}
		}
		return nil, s.Cache.Flush(ctx, a.Scope)
	case "":
		return nil, fmt.Errorf("%w: missing \"command\" (one of %v)", ErrInvalid, Commands)
	default:
		return nil, fmt.Errorf("%w: unknown command %q (one of %v)", ErrInvalid, req.Command, Commands)
	}
}
