// Package dynalitetest gives tests a DynamoDB-compatible endpoint:
// WRAPI_DYNAMODB_ENDPOINT when set (a running dynalite, LocalStack or
// DynamoDB Local), else a dynalite (installed from npm by
// scripts/dynalite.sh) started on a free 127.0.0.1 port and stopped by PID.
// The emulator exits when its stdin closes, so a test binary that dies
// leaves nothing behind.
package dynalitetest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Emulator is an endpoint for a test binary. Call Start from TestMain and
// Stop when the tests are done.
type Emulator struct {
	// Endpoint is the base URL ("http://127.0.0.1:PORT").
	Endpoint string
	// SkipWhy is set when node/npm are missing outside CI: tests skip.
	SkipWhy string
	// Err is set when the emulator could not be started: tests fail.
	Err  error
	stop func()
}

// Start finds or starts the emulator. repoRoot locates scripts/dynalite.sh.
func Start(repoRoot string) *Emulator {
	e := &Emulator{stop: func() {}}
	if e.Endpoint = os.Getenv("WRAPI_DYNAMODB_ENDPOINT"); e.Endpoint != "" {
		return e
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				e.Err = fmt.Errorf("%s is not installed and CI=true: install nodejs and npm, or set WRAPI_DYNAMODB_ENDPOINT", tool)
			} else {
				e.SkipWhy = tool + " is not installed: install nodejs and npm (scripts/dynalite.sh installs dynalite), or set WRAPI_DYNAMODB_ENDPOINT"
			}
			return e
		}
	}
	ep, stop, err := start(repoRoot)
	if err != nil {
		e.Err = fmt.Errorf("start dynalite: %w", err)
		return e
	}
	e.Endpoint, e.stop = ep, stop
	return e
}

// Stop stops an emulator this package started.
func (e *Emulator) Stop() { e.stop() }

// dynaliteJS runs dynalite's CLI and exits when its stdin closes, so a
// test binary that dies (a panic, a -timeout) leaves no emulator behind.
const dynaliteJS = `
const [cli, port] = process.argv.slice(1);
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
process.argv = [process.argv[0], cli, '--host', '127.0.0.1', '--port', port,
  '--createTableMs', '0', '--deleteTableMs', '0', '--updateTableMs', '0'];
require(cli);
`

func start(repoRoot string) (endpoint string, stop func(), err error) {
	script := filepath.Join(repoRoot, "scripts", "dynalite.sh")
	out, err := exec.Command("bash", script, "cli").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return "", nil, fmt.Errorf("install: %w", err)
	}
	cli := strings.TrimSpace(string(out))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	cmd := exec.Command("node", "-e", dynaliteJS, cli, fmt.Sprint(port))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		stdin.Close()
		_ = cmd.Process.Kill() // by PID
		_ = cmd.Wait()
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening") {
				ready <- true
				break
			}
		}
		ready <- false
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case ok := <-ready:
		if !ok {
			stop()
			return "", nil, fmt.Errorf("dynalite exited: %s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		stop()
		return "", nil, fmt.Errorf("dynalite did not listen within 30s: %s", stderr.String())
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port), stop, nil
}

// Client returns a client of endpoint with static fake credentials.
func Client(endpoint string, retries int) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		RetryMaxAttempts: retries,
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = 256
			tr.MaxIdleConnsPerHost = 256
		}),
	})
}

var current = &Emulator{SkipWhy: "dynalitetest.Main was not called from TestMain", stop: func() {}}

// Main is a test binary's TestMain: it finds or starts the emulator, runs
// the tests, stops the emulator and exits. repoRoot locates
// scripts/dynalite.sh.
func Main(m *testing.M, repoRoot string) {
	current = Start(repoRoot)
	code := m.Run()
	current.Stop()
	os.Exit(code)
}

// Endpoint returns the emulator Main started, skipping tb when node is
// missing outside CI and failing it when the emulator could not start.
func Endpoint(tb testing.TB) string {
	tb.Helper()
	if current.SkipWhy != "" {
		tb.Skip(current.SkipWhy)
	}
	if current.Err != nil {
		tb.Fatal(current.Err)
	}
	return current.Endpoint
}

// Unreachable returns the URL of a loopback port nothing listens on, for
// tests of a DynamoDB that cannot be reached.
func Unreachable(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}
