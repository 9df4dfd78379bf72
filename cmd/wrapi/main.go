// Command wrapi is the OpenAI spend proxy's CLI: serve, usage, limits,
// keys. The work happens in internal/cli so it can be tested.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/wrapi-dev/wrapi/cmd/wrapi/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
