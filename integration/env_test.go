package integration

import (
	"bufio"
	"context"
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
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "wrapi-it-bin-")
		if buildErr != nil {
			return
		}
		root := repoRoot(t)
		for _, b := range []struct{ dir, out string }{
			{filepath.Join(root, "cmd", "wrapi"), "wrapi"},
			{filepath.Join(root, "pkg"), "fakeopenai"},
		} {
			target := "."
			if b.out == "fakeopenai" {
				target = "./openaitest/cmd/fakeopenai"
			}
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, b.out), target)
			cmd.Dir = b.dir
			cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", b.out, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "wrapi"), filepath.Join(binDir, "fakeopenai")
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

// start runs a binary and waits until a line of its output matches ready.
func start(t *testing.T, env []string, ready *regexp.Regexp, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &lockedBuffer{}
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(out, pw)
	cmd.Stderr = io.MultiWriter(out, pw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, output: out, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() { p.stop(t) })
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
	case err := <-p.done:
		t.Fatalf("%s exited before it was ready: %v\n%s", filepath.Base(name), err, out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s not ready after 30s:\n%s", filepath.Base(name), out.String())
	}
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) error {
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
		t.Errorf("%s did not stop on SIGINT within 20s", p.cmd.Path)
		return context.DeadlineExceeded
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
