package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// repoRoot is the checkout this module lives in.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds wrapi and the fake OpenAI once per test run.
func binaries(t *testing.T) (wrapi, fake string) {
	t.Helper()
	wrapi, fake, err := buildBinaries(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	return wrapi, fake
}

// buildInto builds the binaries into a new binDir.
func buildInto(root string) error {
	var err error
	if binDir, err = os.MkdirTemp("", "wrapi-it-bin-"); err != nil {
		return err
	}
	for _, b := range []struct{ dir, target, out string }{
		{filepath.Join(root, "cmd", "wrapi"), ".", "wrapi"},
		{filepath.Join(root, "pkg"), "./openaitest/cmd/fakeopenai", "fakeopenai"},
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, b.out), b.target)
		cmd.Dir = b.dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", b.out, err, out)
		}
	}
	return nil
}

// Lines the services print once they listen.
var (
	readyFake      = regexp.MustCompile(`^fakeopenai: serving `)
	readyServe     = regexp.MustCompile(`serving at http://`)
	readyMemcached = regexp.MustCompile(`server listening`)
)

func freeAddrErr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a process started by a test and stopped (by PID) when it ends.
type proc struct {
	cmd    *exec.Cmd
	output *lockedBuffer
	done   chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs a binary for one test and waits until a line of its output
// matches ready; the test's cleanup stops it.
func start(t *testing.T, env []string, ready *regexp.Regexp, name string, args ...string) *proc {
	t.Helper()
	p, err := startProc(env, ready, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.stop() })
	return p
}

// startProc runs a binary and waits until a line of its output matches
// ready. The caller stops it (by PID) with stop.
func startProc(env []string, ready *regexp.Regexp, name string, args ...string) (*proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &lockedBuffer{}
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(out, pw)
	cmd.Stderr = io.MultiWriter(out, pw)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, output: out, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); pw.Close() }()
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			if !signalled && ready.MatchString(sc.Text()) {
				close(found)
				signalled = true
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case <-found:
		return p, nil
	case err := <-p.done:
		p.done <- err
		return nil, fmt.Errorf("%s exited before it was ready: %v\n%s", filepath.Base(name), err, out.String())
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s not ready after 30s:\n%s", filepath.Base(name), out.String())
	}
}

// stop sends SIGINT and waits for a clean exit (SIGKILL after 20s).
func (p *proc) stop() error {
	if p.cmd.ProcessState != nil {
		return nil
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("%s did not stop on SIGINT within 20s", p.cmd.Path)
	}
}

// runCLI runs a wrapi admin command and returns its stdout.
func runCLI(t *testing.T, wrapi string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(wrapi, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("wrapi %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}
