// Package cli implements the wrapi command line. Main is the whole
// program; cmd/wrapi only wires signals and exits.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/admin"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

const usageText = `wrapi — an OpenAI API proxy that meters, caps and caches spend.

Usage:
  wrapi serve    [flags]                 run the proxy locally on an embedded store
  wrapi connect  --stage S [--project P] [--url URL] [--port N]
                                         local sidecar that signs SDK calls to a deployed stage
  wrapi usage    [--by project,user,model,day] [--since D] [--until D] [--json]
  wrapi limits   set|list|delete [flags] manage budget limits
  wrapi keys     create|list|revoke      manage virtual keys (sk-wrapi-…)
  wrapi cache    flush [--project P] | stats   flush cached responses, or show hits and savings
  wrapi dashboard [--listen 127.0.0.1:8790] [--admin]   web page: spend, limits, cache, errors (CSV too)
  wrapi reservations [--json]            list budget reservations held by requests in flight
  wrapi reap                             release expired budget reservations
  wrapi version

The admin commands (usage, limits, keys, cache, reservations, reap) work on
a local store (--store PATH, the default) or on a deployed stage
(--stage NAME: its admin function, invoked with your AWS credentials;
stages are listed in ~/.config/wrapi/stages.json).

Run "wrapi COMMAND -h" for a command's flags. Every flag has a WRAPI_<FLAG>
environment variable (e.g. WRAPI_STORE, WRAPI_LISTEN).
`

// Version is set at build time with -ldflags.
var Version = "dev"

// errUsage marks an error in the command line (exit code 2).
var errUsage = errors.New("usage")

// Main runs the CLI and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], stdout, stderr)
	case "connect":
		err = runConnect(ctx, args[1:], stdout, stderr)
	case "usage":
		err = runUsage(ctx, args[1:], stdout, stderr)
	case "limits":
		err = runLimits(ctx, args[1:], stdout, stderr)
	case "keys":
		err = runKeys(ctx, args[1:], stdout, stderr)
	case "cache":
		err = runCache(ctx, args[1:], stdout, stderr)
	case "dashboard":
		err = runDashboard(ctx, args[1:], stdout, stderr)
	case "reap":
		err = runReap(ctx, args[1:], stdout, stderr)
	case "reservations":
		err = runReservations(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "wrapi", Version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usageText)
	default:
		fmt.Fprintf(stderr, "wrapi: unknown command %q\n\n%s", args[0], usageText)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage), errors.Is(err, admin.ErrInvalid):
		fmt.Fprintln(stderr, "wrapi:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "wrapi:", err)
		return 1
	}
}

// newFlags makes a FlagSet whose defaults come from WRAPI_* variables.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("wrapi "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args, taking unset flags from WRAPI_<NAME> env variables.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		env := envName(fs.Name(), f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%w: %s: %v", errUsage, env, err))
			}
		}
	})
	return errors.Join(errs...)
}

func storeFlag(fs *flag.FlagSet) *string {
	def, _ := sqlite.DefaultPath()
	return fs.String("store", def, "SQLite store file")
}

func openStore(ctx context.Context, path string) (*sqlite.Store, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: --store is required (no home directory for the default)", errUsage)
	}
	return sqlite.Open(ctx, path)
}

// parseTime reads a date (2026-11-01) or an RFC 3339 instant.
func parseTime(s string) (time.Time, error) { return admin.ParseTime(s) }

// ownEnv lists flags whose environment variable carries the command's
// name, because the same flag means something else elsewhere: WRAPI_LISTEN
// set for `serve` must not move the dashboard, and nothing but an explicit
// WRAPI_DASHBOARD_ADMIN may turn on the dashboard's admin mode.
var ownEnv = map[string]map[string]bool{
	"wrapi dashboard": {"listen": true, "admin": true, "allow-remote": true},
}

// envName is the variable that sets flag of the command named cmd
// ("wrapi serve"): WRAPI_<FLAG>, or WRAPI_<COMMAND>_<FLAG> for ownEnv.
func envName(cmd, flag string) string {
	name := strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
	if ownEnv[cmd][flag] {
		c := strings.ToUpper(strings.TrimPrefix(cmd, "wrapi "))
		return "WRAPI_" + c + "_" + name
	}
	return "WRAPI_" + name
}
