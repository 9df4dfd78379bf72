package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/wrapi-dev/wrapi/pkg/admin"
	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/store"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

// This file lets the admin commands run against a deployed stage: the
// same commands, the same output, with each operation sent as one JSON
// command (pkg/admin Request/Response) to the stage's admin Lambda,
// invoked with the caller's own AWS credentials. IAM decides who may.

// stageEntry is one deployed stage in stages.json.
type stageEntry struct {
	URL           string `json:"url"`
	Region        string `json:"region,omitempty"`
	AdminFunction string `json:"admin_function,omitempty"`
}

// stagesPath is $XDG_CONFIG_HOME/wrapi/stages.json, else
// ~/.config/wrapi/stages.json (on every OS, so the docs hold everywhere).
func stagesPath() (string, error) {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "wrapi", "stages.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("stages file: no home directory: %w", err)
	}
	return filepath.Join(home, ".config", "wrapi", "stages.json"), nil
}

// loadStages reads stages.json; a missing file is no stages.
func loadStages() (map[string]stageEntry, string, error) {
	path, err := stagesPath()
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]stageEntry{}, path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("stages file: %w", err)
	}
	m := map[string]stageEntry{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, path, fmt.Errorf("stages file %s: %w", path, err)
	}
	return m, path, nil
}

// saveStage merges one entry into stages.json (written atomically, 0600).
func saveStage(name string, e stageEntry) (string, error) {
	m, path, err := loadStages()
	if err != nil {
		return path, err
	}
	old := m[name]
	if e.Region == "" {
		e.Region = old.Region
	}
	if e.AdminFunction == "" {
		e.AdminFunction = old.AdminFunction
	}
	m[name] = e
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return path, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return path, fmt.Errorf("stages file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".stages-*.json")
	if err != nil {
		return path, fmt.Errorf("stages file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return path, fmt.Errorf("stages file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return path, fmt.Errorf("stages file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return path, fmt.Errorf("stages file: %w", err)
	}
	return path, nil
}

// awsConfig loads the SDK's default credential chain (environment,
// shared config and SSO profiles, container and instance roles).
func awsConfig(ctx context.Context, profile, region string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	return cfg, nil
}

// invoker invokes a Lambda function synchronously: JSON payload in, the
// function's JSON answer out.
type invoker interface {
	Invoke(ctx context.Context, function string, payload []byte) ([]byte, error)
}

// lambdaInvoker invokes through the Lambda API (AWS_ENDPOINT_URL_LAMBDA
// points it elsewhere, e.g. at LocalStack or a test server).
type lambdaInvoker struct{ c *lambda.Client }

var _ invoker = lambdaInvoker{}

func (l lambdaInvoker) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	out, err := l.c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(function), Payload: payload})
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", function, err)
	}
	if out.FunctionError != nil {
		var fe struct {
			Message string `json:"errorMessage"`
		}
		_ = json.Unmarshal(out.Payload, &fe)
		return nil, fmt.Errorf("admin function %s failed (%s): %s", function, *out.FunctionError, fe.Message)
	}
	return out.Payload, nil
}

// adminAPI is what the admin commands call: the local store's
// admin.Service, or a deployed stage's admin function.
type adminAPI interface {
	SetLimit(ctx context.Context, sc budget.Scope, period, usd string) (budget.Limit, error)
	DeleteLimit(ctx context.Context, sc budget.Scope, period string) error
	Limits(ctx context.Context) ([]admin.LimitStatus, error)
	Usage(ctx context.Context, q admin.UsageQuery) (admin.Report, error)
	CreateKey(ctx context.Context, user, project string) (string, store.Key, error)
	ListKeys(ctx context.Context) ([]store.Key, error)
	RevokeKey(ctx context.Context, id string) error
	Reservations(ctx context.Context) ([]store.Reservation, error)
	Reap(ctx context.Context) (int, error)
	// FlushCache flushes one cache scope ("" = everything).
	FlushCache(ctx context.Context, scope string) error
}

// localAdmin is the admin service on a local store; cache flushes bump
// the store's generations, which `wrapi serve` re-reads every second.
type localAdmin struct {
	*admin.Service
	st *sqlite.Store
}

var _ adminAPI = localAdmin{}

func (l localAdmin) FlushCache(ctx context.Context, scope string) error {
	gens, err := l.st.CacheGenerations(ctx)
	if err != nil {
		return err
	}
	return gens.Bump(ctx, scope)
}

// remoteAdmin sends each operation to a stage's admin function.
type remoteAdmin struct {
	inv      invoker
	function string
}

var _ adminAPI = (*remoteAdmin)(nil)

// remoteError is a typed error from the admin function. invalid_input
// counts as admin.ErrInvalid (exit code 2), as it does locally.
type remoteError struct{ admin.ResponseError }

func (e *remoteError) Error() string { return e.Message }

func (e *remoteError) Is(target error) bool {
	return target == admin.ErrInvalid && e.Type == "invalid_input"
}

// call runs one command and decodes its result into out (if non-nil).
func (r *remoteAdmin) call(ctx context.Context, command string, args, out any) error {
	req := admin.Request{Command: command}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return err
		}
		req.Args = b
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return err
	}
	answer, err := r.inv.Invoke(ctx, r.function, payload)
	if err != nil {
		return err
	}
	var resp struct {
		OK     bool                 `json:"ok"`
		Result json.RawMessage      `json:"result"`
		Error  *admin.ResponseError `json:"error"`
	}
	if err := json.Unmarshal(answer, &resp); err != nil {
		return fmt.Errorf("admin function %s: answer is not an admin response: %w", r.function, err)
	}
	if !resp.OK {
		if resp.Error == nil {
			return fmt.Errorf("admin function %s: failed without an error", r.function)
		}
		if resp.Error.Type == "not_found" {
			return store.ErrNotFound
		}
		return &remoteError{*resp.Error}
	}
	if out != nil && len(resp.Result) > 0 {
		if err := json.Unmarshal(resp.Result, out); err != nil {
			return fmt.Errorf("admin function %s: %s result: %w", r.function, command, err)
		}
	}
	return nil
}

func scopeArgs(sc budget.Scope, period string) admin.ScopeArgs {
	return admin.ScopeArgs{Project: sc.Project, User: sc.User, Model: sc.Model, Period: period}
}

func (r *remoteAdmin) SetLimit(ctx context.Context, sc budget.Scope, period, usd string) (budget.Limit, error) {
	var l budget.Limit
	err := r.call(ctx, "limits.set", admin.SetLimitArgs{ScopeArgs: scopeArgs(sc, period), USD: usd}, &l)
	return l, err
}

func (r *remoteAdmin) DeleteLimit(ctx context.Context, sc budget.Scope, period string) error {
	return r.call(ctx, "limits.delete", scopeArgs(sc, period), nil)
}

func (r *remoteAdmin) Limits(ctx context.Context) ([]admin.LimitStatus, error) {
	var ls []admin.LimitStatus
	err := r.call(ctx, "limits.list", nil, &ls)
	if len(ls) == 0 {
		ls = nil // as the local service returns an empty list
	}
	return ls, err
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

func (r *remoteAdmin) Usage(ctx context.Context, q admin.UsageQuery) (admin.Report, error) {
	var rep admin.Report
	err := r.call(ctx, "usage", admin.UsageArgs{By: q.By, Since: rfc3339(q.Since), Until: rfc3339(q.Until),
		Project: q.Project, User: q.User, Model: q.Model}, &rep)
	return rep, err
}

func (r *remoteAdmin) CreateKey(ctx context.Context, user, project string) (string, store.Key, error) {
	var k admin.CreatedKey
	err := r.call(ctx, "keys.create", admin.KeyArgs{User: user, Project: project}, &k)
	return k.Secret, k.Key, err
}

func (r *remoteAdmin) ListKeys(ctx context.Context) ([]store.Key, error) {
	var ks []store.Key
	err := r.call(ctx, "keys.list", nil, &ks)
	if len(ks) == 0 {
		ks = nil
	}
	return ks, err
}

func (r *remoteAdmin) RevokeKey(ctx context.Context, id string) error {
	return r.call(ctx, "keys.revoke", admin.KeyArgs{ID: id}, nil)
}

func (r *remoteAdmin) Reservations(ctx context.Context) ([]store.Reservation, error) {
	var rs []store.Reservation
	err := r.call(ctx, "reservations.list", nil, &rs)
	if len(rs) == 0 {
		rs = nil
	}
	return rs, err
}

func (r *remoteAdmin) Reap(ctx context.Context) (int, error) {
	var out struct {
		Released int `json:"released"`
	}
	err := r.call(ctx, "reap", nil, &out)
	return out.Released, err
}

func (r *remoteAdmin) FlushCache(ctx context.Context, scope string) error {
	return r.call(ctx, "cache.flush", admin.CacheArgs{Scope: scope}, nil)
}

// target is where an admin command runs: --store PATH (local, as
// always) or --stage NAME (a deployed stage's admin function).
type target struct {
	fs                             *flag.FlagSet
	store, stage, tz               *string
	adminFunction, region, profile *string
}

// targetFlags registers --store, --stage, --admin-function, --region,
// --profile (and --timezone when withTZ) on fs.
func targetFlags(fs *flag.FlagSet, withTZ bool) *target {
	t := &target{fs: fs, store: storeFlag(fs)}
	t.stage = fs.String("stage", "local", "stage: a deployed stage named in "+stagesHint+" (its admin function), or the local store's stage name with --store")
	t.adminFunction = fs.String("admin-function", "", "the deployed stage's admin function (default: admin_function in "+stagesHint+")")
	t.region = fs.String("region", "", "AWS region of the admin function (default: the stage's, else the AWS config's)")
	t.profile = fs.String("profile", "", "AWS profile for the stage's credentials (default: the SDK's chain)")
	tz := "UTC"
	t.tz = &tz
	if withTZ {
		t.tz = fs.String("timezone", "UTC", "time zone of budget periods (local store)")
	}
	return t
}

const stagesHint = "~/.config/wrapi/stages.json"

// remote reports whether the command goes to a deployed stage: an
// explicit --admin-function, or --stage NAME (not "local") without an
// explicit --store.
func (t *target) remote() bool {
	set := map[string]bool{}
	t.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *t.adminFunction != "" {
		return true
	}
	return !set["store"] && set["stage"] && *t.stage != "local"
}

// run opens the target and runs fn on it.
func (t *target) run(ctx context.Context, fn func(adminAPI) error) error {
	if !t.remote() {
		loc, err := time.LoadLocation(*t.tz)
		if err != nil {
			return fmt.Errorf("%w: --timezone: %v", errUsage, err)
		}
		st, err := openStore(ctx, *t.store)
		if err != nil {
			return err
		}
		defer st.Close()
		return fn(localAdmin{Service: &admin.Service{Store: st, Stage: *t.stage, Location: loc}, st: st})
	}
	function, region := *t.adminFunction, *t.region
	if function == "" || region == "" {
		stages, path, err := loadStages()
		if err != nil {
			return err
		}
		e, ok := stages[*t.stage]
		if function == "" {
			if !ok || e.AdminFunction == "" {
				return fmt.Errorf("%w: stage %q has no admin_function in %s (known: %s); pass --admin-function NAME, or --store PATH for a local store",
					errUsage, *t.stage, path, known(stages))
			}
			function = e.AdminFunction
		}
		if region == "" {
			region = e.Region
		}
	}
	cfg, err := awsConfig(ctx, *t.profile, region)
	if err != nil {
		return err
	}
	if cfg.Region == "" {
		return fmt.Errorf("%w: no AWS region: pass --region, or set region in %s or the AWS config", errUsage, stagesHint)
	}
	return fn(&remoteAdmin{inv: lambdaInvoker{c: lambda.NewFromConfig(cfg)}, function: function})
}

func known(stages map[string]stageEntry) string {
	if len(stages) == 0 {
		return "none"
	}
	names := make([]string, 0, len(stages))
	for n := range stages {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
