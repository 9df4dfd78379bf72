package memcached

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// serverAddr returns the address of a memcached for tests: WRAPI_MEMCACHED_ADDR
// when set, else a memcached started for this test on a free 127.0.0.1
// port and killed by PID when the test ends. Without a memcached binary the
// test is skipped, except under CI=true where it fails
// (scripts/memcached.sh install provides one).
func serverAddr(tb testing.TB) string {
	tb.Helper()
	if addr := os.Getenv("WRAPI_MEMCACHED_ADDR"); addr != "" {
		return addr
	}
	bin, err := exec.LookPath("memcached")
	if err != nil {
		msg := "memcached not found in PATH (run `scripts/memcached.sh install`, or set WRAPI_MEMCACHED_ADDR=host:port)"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	var lastErr error
	for range 3 { // the free port may be taken before memcached binds it
		addr, err := startServer(tb, bin)
		if err == nil {
			return addr
		}
		lastErr = err
	}
	tb.Fatalf("start memcached: %v", lastErr)
	return ""
}

func startServer(tb testing.TB, bin string) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "256", "-I", "1m", "-t", "2"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses to run as root otherwise
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case err := <-exited:
			return "", fmt.Errorf("memcached on %s exited: %v", addr, err)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			tb.Cleanup(stop)
			return addr, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("memcached on %s not reachable after 5s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
