package integration

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/wrapi-dev/wrapi/pkg/dynalitetest"
)

// The environment: the services a stage runs on, started once per test
// binary and shared by the scenarios (each scenario uses its own tables,
// projects and memcached). WRAPI_IT_ENV chooses where they come from:
//
//	containers  testcontainers-go on Docker or podman (DOCKER_HOST)
//	processes   plain local processes (dynalite, memcached, the binaries)
//	auto        containers when an engine answers, else processes (default)
//
// Image names are settings (WRAPI_IT_<NAME>_IMAGE, see scripts/images.sh),
// so the same code runs LocalStack and memcached's public image on a
// laptop's Docker and the locally built images on podman.

const upstreamKey = "sk-upstream-it" // the stage's OpenAI key, known to the fake upstream

// memcachedSvc is one memcached.
type memcachedSvc struct {
	Addr  string // host:port from the test process
	Inner string // host:port from the proxy container (or process)
	stop  func(context.Context) error
}

// Stop stops memcached mid-run (the outage scenario); idempotent.
func (m *memcachedSvc) Stop(ctx context.Context) error { return m.stop(ctx) }

// proxyConfig is how to run `wrapi serve`.
type proxyConfig struct {
	Stage           string
	Memcached       string // Inner address; "" runs without a cache
	UpstreamTimeout time.Duration
}

// proxySvc is a running `wrapi serve` (the container image or the binary).
type proxySvc struct {
	BaseURL string // http://127.0.0.1:PORT/v1
	// admin runs a wrapi admin command on the proxy's own store and
	// returns its stdout; it fails the test on a non-zero exit.
	admin func(t *testing.T, args ...string) string
	logs  func() string
}

// environment yields endpoints; the scenarios do not care which kind.
type environment interface {
	Kind() string     // "containers" or "processes"
	DynamoDB() string // endpoint from the test process
	Upstream() string // the fake OpenAI's base URL (…/v1) from the test process
	Memcached(t *testing.T) *memcachedSvc
	Proxy(t *testing.T, c proxyConfig) *proxySvc
	Close()
}

var (
	envOnce sync.Once
	theEnv  environment
	envErr  error
	envSkip string
)

// env returns the shared environment, starting it on first use. Outside
// CI a missing tool skips; under CI=true it fails.
func env(t *testing.T) environment {
	t.Helper()
	envOnce.Do(func() { theEnv, envSkip, envErr = newEnvironment(repoRoot(t)) })
	if envErr != nil {
		t.Fatalf("integration environment: %v", envErr)
	}
	if envSkip != "" {
		t.Skip(envSkip)
	}
	return theEnv
}

func TestMain(m *testing.M) {
	// testcontainers logs every container step; WRAPI_IT_VERBOSE=1 keeps it.
	if os.Getenv("WRAPI_IT_VERBOSE") == "" {
		tclog.SetDefault(tclog.NewNoopLogger())
	}
	code := m.Run()
	if theEnv != nil {
		theEnv.Close()
	}
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func newEnvironment(root string) (environment, string, error) {
	mode := os.Getenv("WRAPI_IT_ENV")
	if mode == "" {
		mode = "auto"
	}
	switch mode {
	case "processes":
		return newProcesses(root)
	case "containers", "auto":
	default:
		return nil, "", fmt.Errorf("WRAPI_IT_ENV=%q: want auto, containers or processes", mode)
	}
	if why := engineProblem(); why != "" {
		if mode == "containers" {
			return nil, "", fmt.Errorf("WRAPI_IT_ENV=containers but no container engine answers: %s (scripts/podman.sh start, or start Docker)", why)
		}
		log.Printf("integration: no container engine (%s); WRAPI_IT_ENV=auto falls back to local processes", why)
		return newProcesses(root)
	}
	e, err := newContainers(root)
	if err != nil {
		return nil, "", err
	}
	return e, "", nil
}

// engineProblem says why testcontainers cannot run containers, or "".
// It checks the provider's health first: without an engine,
// testcontainers panics inside Run instead of returning an error.
func engineProblem() (why string) {
	defer func() {
		if r := recover(); r != nil {
			why = fmt.Sprint(r)
		}
	}()
	p, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return err.Error()
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Health(ctx); err != nil {
		return err.Error()
	}
	return ""
}

// waitDynamoDB polls ListTables until the emulator answers (LocalStack
// accepts connections before its DynamoDB is up).
func waitDynamoDB(endpoint string, timeout time.Duration) error {
	db := dynalitetest.Client(endpoint, 1)
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := db.ListTables(ctx, &dynamodb.ListTablesInput{})
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("DynamoDB at %s did not answer within %s: %w", endpoint, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ---- processes ----

type processes struct {
	dyn      *dynalitetest.Emulator
	fake     *proc
	upstream string
	wrapi    string
}

func newProcesses(root string) (environment, string, error) {
	ci := os.Getenv("CI") == "true"
	if _, err := exec.LookPath("memcached"); err != nil {
		if ci {
			return nil, "", errors.New("memcached is not installed and CI=true (scripts/deps.sh installs it)")
		}
		return nil, "memcached is not installed (scripts/memcached.sh install)", nil
	}
	dyn := dynalitetest.Start(root)
	if dyn.Err != nil {
		return nil, "", dyn.Err
	}
	if dyn.SkipWhy != "" {
		return nil, dyn.SkipWhy, nil
	}
	wrapi, fake, err := buildBinaries(root)
	if err != nil {
		dyn.Stop()
		return nil, "", err
	}
	addr, err := freeAddrErr()
	if err != nil {
		dyn.Stop()
		return nil, "", err
	}
	p, err := startProc(nil, readyFake, fake, "-addr", addr, "-api-key", upstreamKey)
	if err != nil {
		dyn.Stop()
		return nil, "", err
	}
	log.Printf("integration: environment: local processes (dynalite %s, fake OpenAI http://%s/v1)", dyn.Endpoint, addr)
	return &processes{dyn: dyn, fake: p, upstream: "http://" + addr + "/v1", wrapi: wrapi}, "", nil
}

func (p *processes) Kind() string     { return "processes" }
func (p *processes) DynamoDB() string { return p.dyn.Endpoint }
func (p *processes) Upstream() string { return p.upstream }

func (p *processes) Close() {
	_ = p.fake.stop()
	p.dyn.Stop()
}

func (p *processes) Memcached(t *testing.T) *memcachedSvc {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	args := []string{"-l", "127.0.0.1", "-p", port, "-U", "0", "-m", "64", "-vv"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses root without -u
	}
	// -vv prints "server listening" once the socket is bound.
	m := start(t, nil, readyMemcached, "memcached", args...)
	return &memcachedSvc{Addr: addr, Inner: addr, stop: func(context.Context) error { return m.stop() }}
}

func (p *processes) Proxy(t *testing.T, c proxyConfig) *proxySvc {
	t.Helper()
	addr := freeAddr(t)
	db := filepath.Join(t.TempDir(), "wrapi.db")
	s := start(t, []string{"OPENAI_API_KEY=" + upstreamKey, "WRAPI_STORE=" + db}, readyServe, p.wrapi,
		serveArgs(addr, p.upstream, c)...)
	return &proxySvc{
		BaseURL: "http://" + addr + "/v1",
		admin: func(t *testing.T, args ...string) string {
			t.Helper()
			return runCLI(t, p.wrapi, []string{"WRAPI_STORE=" + db}, append(args, "--stage", c.Stage)...)
		},
		logs: s.output.String,
	}
}

// serveArgs is the `wrapi serve` command line of both kinds.
func serveArgs(listen, upstream string, c proxyConfig) []string {
	args := []string{"serve", "--listen", listen, "--auth", "keys", "--stage", c.Stage, "--upstream", upstream,
		"--upstream-timeout", c.UpstreamTimeout.String(), "--shutdown-timeout", "10s", "--cache-default=false"}
	if c.Memcached != "" {
		args = append(args, "--cache", "memcached", "--memcached", c.Memcached)
	} else {
		args = append(args, "--cache", "off")
	}
	return args
}

// buildBinaries builds wrapi and the fake OpenAI once per run (shared
// with the tests that run them directly).
func buildBinaries(root string) (wrapi, fake string, err error) {
	buildOnce.Do(func() { buildErr = buildInto(root) })
	if buildErr != nil {
		return "", "", buildErr
	}
	return filepath.Join(binDir, "wrapi"), filepath.Join(binDir, "fakeopenai"), nil
}
