package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/admin"
	"github.com/wrapi-dev/wrapi/pkg/dashboard"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

type dashboardConfig struct {
	listen, storePath, stage, timezone string
	admin, allowRemote                 bool
	now                                func() time.Time // tests; default time.Now
}

// runDashboard is `wrapi dashboard`: the spend dashboard of the local
// store on http://127.0.0.1:8790/.
func runDashboard(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dashboard", stderr)
	var c dashboardConfig
	sp := storeFlag(fs)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8790", "address to listen on (loopback unless --allow-remote)")
	fs.StringVar(&c.stage, "stage", "local", "stage name of the store")
	fs.StringVar(&c.timezone, "timezone", "UTC", "time zone of daily and monthly budget periods")
	fs.BoolVar(&c.admin, "admin", false, "allow setting and deleting limits and flushing the cache from the page (loopback only)")
	fs.BoolVar(&c.allowRemote, "allow-remote", false, "allow a non-loopback --listen address for a read-only dashboard (no authentication: anyone who reaches it sees all usage)")
	if err := parse(fs, args); err != nil {
		return err
	}
	c.storePath = *sp
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return serveDashboard(ctx, c, stdout, logger, nil)
}

// checkDashboardListen refuses a non-loopback address unless the dashboard
// is read-only and --allow-remote says so: the page has no login, and its
// admin actions must never be reachable from another machine.
func checkDashboardListen(c dashboardConfig) error {
	if _, _, err := net.SplitHostPort(c.listen); err != nil {
		return fmt.Errorf("%w: --listen %q: %v", errUsage, c.listen, err)
	}
	if isLoopback(c.listen) {
		return nil
	}
	if c.admin {
		return fmt.Errorf("%w: --admin is only served on a loopback address (got --listen %s)", errUsage, c.listen)
	}
	if !c.allowRemote {
		return fmt.Errorf("%w: --listen %s is not a loopback address; the dashboard has no login, so pass --allow-remote to serve it read-only to the network", errUsage, c.listen)
	}
	return nil
}

// loopbackHosts are the Host headers a loopback dashboard answers to, so a
// web page elsewhere cannot read it through DNS rebinding.
func loopbackHosts(addr string) []string {
	host, port, _ := net.SplitHostPort(addr)
	hosts := []string{net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("localhost", port), net.JoinHostPort("::1", port)}
	if host != "127.0.0.1" && host != "localhost" && host != "::1" {
		hosts = append(hosts, net.JoinHostPort(host, port))
	}
	return hosts
}

// generationFlusher flushes the response cache by starting a new flush
// generation in the store, as `wrapi cache flush` does: a running `wrapi
// serve` on the same store sees it within a second.
type generationFlusher struct{ g *sqlite.Generations }

var _ admin.CacheFlusher = generationFlusher{}

func (f generationFlusher) Flush(ctx context.Context, scope string) error {
	return f.g.Bump(ctx, scope)
}

// serveDashboard runs the dashboard until ctx ends. ready, if non-nil,
// receives the bound address (tests listen on :0).
func serveDashboard(ctx context.Context, c dashboardConfig, stdout io.Writer, logger *slog.Logger, ready chan<- string) error {
	loc, err := time.LoadLocation(c.timezone)
	if err != nil {
		return fmt.Errorf("%w: --timezone: %v", errUsage, err)
	}
	if err := checkDashboardListen(c); err != nil {
		return err
	}
	st, err := openStore(ctx, c.storePath)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := &admin.Service{Store: st, Stage: c.stage, Location: loc, Now: c.now}
	if c.admin {
		gens, err := st.CacheGenerations(ctx)
		if err != nil {
			return err
		}
		svc.Cache = generationFlusher{gens}
	}
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	var hosts []string
	if isLoopback(c.listen) {
		hosts = loopbackHosts(ln.Addr().String())
	}
	h, err := dashboard.New(dashboard.Config{Source: dashboard.Local{Service: svc}, Stage: c.stage, Admin: c.admin, Hosts: hosts, Now: c.now, Logger: logger})
	if err != nil {
		ln.Close()
		return err
	}
	srv := newServer(h, logger)
	mode := "read-only; --admin to manage limits and the cache"
	if c.admin {
		mode = "admin: limits and the cache can be changed from the page"
	}
	url := "http://" + ln.Addr().String() + "/"
	if strings.HasPrefix(ln.Addr().String(), "127.0.0.1:") && strings.HasPrefix(c.listen, "localhost:") {
		url = "http://localhost:" + strings.TrimPrefix(ln.Addr().String(), "127.0.0.1:") + "/"
	}
	fmt.Fprintf(stdout, "wrapi: dashboard of stage %q at %s (store %s, %s)\n", c.stage, url, c.storePath, mode)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	return serveUntil(ctx, srv, ln, 5*time.Second, logger)
}
