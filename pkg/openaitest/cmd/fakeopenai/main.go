// Command fakeopenai serves the openaitest fake OpenAI API on a TCP
// address, for integration tests that run the proxy as a separate process
// or container:
//
//	fakeopenai -addr 127.0.0.1:8089 -api-key sk-test \
//	    -use /v1/chat/completions=chat-reasoning -fault /v1/embeddings=status:429
//
// It prints the base URL (ending in /v1) on stdout once listening and
// stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/openaitest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fakeopenai:", err)
		os.Exit(1)
	}
}

// pairs is a repeatable "path=value" flag.
type pairs [][2]string

func (p *pairs) String() string { return fmt.Sprint(*p) }

func (p *pairs) Set(v string) error {
	path, val, ok := strings.Cut(v, "=")
	if !ok || !strings.HasPrefix(path, "/v1/") {
		return fmt.Errorf("want /v1/<path>=<value>, got %q", v)
	}
	*p = append(*p, [2]string{path, val})
	return nil
}

// run serves until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("fakeopenai", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8089", "listen address (use 0.0.0.0:<port> to be reachable from other containers)")
	key := fs.String("api-key", "", "require Authorization: Bearer <key> (empty: accept any request)")
	var uses, faults pairs
	fs.Var(&uses, "use", "serve a cassette on a path, as /v1/chat/completions=chat-reasoning (repeatable)")
	fs.Var(&faults, "fault", "inject a fault on a path, as /v1/chat/completions=status:429 (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	var opts []openaitest.Option
	if *key != "" {
		opts = append(opts, openaitest.WithAPIKey(*key))
	}
	fake := openaitest.New(opts...)
	defer fake.Close()
	// Use and Fault panic on bad input, meant for test code; turn that
	// into an error for a command line.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	for _, u := range uses {
		fake.Use(u[0], u[1])
	}
	for _, f := range faults {
		fake.Fault(f[0], f[1])
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: fake.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "fakeopenai: serving http://%s/v1\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	fake.Close() // releases hung and slowed requests so Shutdown can finish
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
