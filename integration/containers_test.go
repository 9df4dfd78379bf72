package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"net/netip"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// containers runs every service as a container (testcontainers-go). The
// images come from scripts/images.sh: built here (podman: no registry
// reachable), or public ones for memcached and LocalStack on Docker.
type containers struct {
	images   map[string]string // WRAPI_IT_*_IMAGE → name
	dynamo   *testcontainers.DockerContainer
	fake     *testcontainers.DockerContainer
	dynEP    string
	upstream string // from the test process
	inner    string // the fake's base URL from other containers
}

// Container ports: LocalStack's edge port (the dynalite image listens on
// the same), the fake OpenAI's, memcached's and wrapi's.
const (
	portDynamo    = "4566/tcp"
	portFake      = "8080/tcp"
	portMemcached = "11211/tcp"
	portWrapi     = "8787/tcp"
)

// containerLabel marks every container these tests start, so that
// scripts/integration-test.sh can remove what a killed test binary left
// (Ryuk, testcontainers' reaper, is off on podman).
const containerLabel = "dev.wrapi.it"

// run starts a container of image with the options every container
// shares: its ports published on 127.0.0.1 only, and the label.
func run(ctx context.Context, image string, ports []string, opts ...testcontainers.ContainerCustomizer) (*testcontainers.DockerContainer, error) {
	common := []testcontainers.ContainerCustomizer{
		testcontainers.WithExposedPorts(ports...),
		testcontainers.WithLabels(map[string]string{containerLabel: "true"}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			if hc.PortBindings == nil {
				hc.PortBindings = network.PortMap{}
			}
			for _, p := range ports {
				hc.PortBindings[network.MustParsePort(p)] = []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "0"}}
			}
		}),
	}
	return testcontainers.Run(ctx, image, append(common, opts...)...)
}

// buildImages runs scripts/images.sh build (idempotent: unchanged images
// are kept) and reads the image names it prints.
func buildImages(root string) (map[string]string, error) {
	start := time.Now()
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "images.sh"), "build")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("scripts/images.sh build: %v\n%s", err, stderr.String())
	}
	images := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			images[k] = v
		}
	}
	for _, k := range []string{"WRAPI_IT_WRAPI_IMAGE", "WRAPI_IT_FAKEOPENAI_IMAGE", "WRAPI_IT_MEMCACHED_IMAGE", "WRAPI_IT_DYNAMODB_IMAGE"} {
		if images[k] == "" {
			return nil, fmt.Errorf("scripts/images.sh build printed no %s:\n%s", k, out)
		}
	}
	log.Printf("integration: images ready in %s (engine %s)\n%s", time.Since(start).Round(time.Millisecond), images["WRAPI_IT_ENGINE"], strings.TrimSpace(stderr.String()))
	return images, nil
}

func newContainers(root string) (environment, error) {
	images, err := buildImages(root)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	c := &containers{images: images}
	start := time.Now()
	c.fake, err = run(ctx, images["WRAPI_IT_FAKEOPENAI_IMAGE"], []string{portFake},
		testcontainers.WithCmdArgs("-api-key", upstreamKey),
		testcontainers.WithWaitStrategy(wait.ForLog("fakeopenai: serving").WithStartupTimeout(30*time.Second)),
	)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("fake OpenAI container: %w", err)
	}
	if c.upstream, err = endpoint(ctx, c.fake, portFake, "http://", "/v1"); err != nil {
		c.Close()
		return nil, err
	}
	ip, err := c.fake.ContainerIP(ctx)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.inner = "http://" + ip + ":8080/v1"

	// SERVICES and EAGER_SERVICE_LOADING speed LocalStack up; the
	// dynalite image ignores them.
	c.dynamo, err = run(ctx, images["WRAPI_IT_DYNAMODB_IMAGE"], []string{portDynamo},
		testcontainers.WithEnv(map[string]string{"SERVICES": "dynamodb,secretsmanager", "EAGER_SERVICE_LOADING": "1"}),
		testcontainers.WithWaitStrategy(wait.ForListeningPort(portDynamo).SkipInternalCheck().WithStartupTimeout(2*time.Minute)),
	)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("DynamoDB container: %w", err)
	}
	if c.dynEP, err = endpoint(ctx, c.dynamo, portDynamo, "http://", ""); err != nil {
		c.Close()
		return nil, err
	}
	if err := waitDynamoDB(c.dynEP, 2*time.Minute); err != nil {
		c.Close()
		return nil, err
	}
	log.Printf("integration: environment: containers (DynamoDB %s from %s, fake OpenAI %s) up in %s",
		c.dynEP, images["WRAPI_IT_DYNAMODB_IMAGE"], c.upstream, time.Since(start).Round(time.Millisecond))
	return c, nil
}

// endpoint is scheme + host:mapped-port + suffix.
func endpoint(ctx context.Context, c *testcontainers.DockerContainer, port, scheme, suffix string) (string, error) {
	ep, err := c.PortEndpoint(ctx, port, "")
	if err != nil {
		return "", fmt.Errorf("%s: %w", port, err)
	}
	return scheme + ep + suffix, nil
}

func (c *containers) Kind() string     { return "containers" }
func (c *containers) DynamoDB() string { return c.dynEP }
func (c *containers) Upstream() string { return c.upstream }

func (c *containers) Close() {
	for _, ct := range []*testcontainers.DockerContainer{c.fake, c.dynamo} {
		if ct != nil {
			if err := ct.Terminate(context.Background()); err != nil {
				log.Printf("integration: terminate %s: %v", ct.GetContainerID(), err)
			}
		}
	}
}

// terminate stops a container when the test ends.
func terminate(t *testing.T, ct *testcontainers.DockerContainer) {
	t.Cleanup(func() {
		if err := ct.Terminate(context.Background()); err != nil {
			t.Errorf("terminate %s: %v", ct.GetContainerID(), err)
		}
	})
}

func (c *containers) Memcached(t *testing.T) *memcachedSvc {
	t.Helper()
	ctx := context.Background()
	ct, err := run(ctx, c.images["WRAPI_IT_MEMCACHED_IMAGE"], []string{portMemcached},
		testcontainers.WithWaitStrategy(wait.ForListeningPort(portMemcached).SkipInternalCheck().WithStartupTimeout(30*time.Second)),
	)
	if ct != nil {
		terminate(t, ct)
	}
	if err != nil {
		t.Fatalf("memcached container: %v", err)
	}
	addr, err := endpoint(ctx, ct, portMemcached, "", "")
	if err != nil {
		t.Fatal(err)
	}
	ip, err := ct.ContainerIP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &memcachedSvc{Addr: addr, Inner: ip + ":11211", stop: func(ctx context.Context) error {
		timeout := 5 * time.Second
		return ct.Stop(ctx, &timeout)
	}}
}

func (c *containers) Proxy(t *testing.T, pc proxyConfig) *proxySvc {
	t.Helper()
	ctx := context.Background()
	logs := &lockedBuffer{}
	ct, err := run(ctx, c.images["WRAPI_IT_WRAPI_IMAGE"], []string{portWrapi},
		testcontainers.WithEnv(map[string]string{"OPENAI_API_KEY": upstreamKey}),
		testcontainers.WithCmd(serveArgs("0.0.0.0:8787", c.inner, pc)...),
		testcontainers.WithLogConsumers(logWriter{logs}),
		testcontainers.WithWaitStrategy(wait.ForLog("serving at http://").WithStartupTimeout(30*time.Second)),
	)
	if ct != nil {
		terminate(t, ct)
	}
	if err != nil {
		t.Fatalf("wrapi container: %v", err)
	}
	base, err := endpoint(ctx, ct, portWrapi, "http://", "/v1")
	if err != nil {
		t.Fatal(err)
	}
	return &proxySvc{
		BaseURL: base,
		// The admin commands run inside the container, on its store
		// (WRAPI_STORE in the image), as an operator would with exec.
		admin: func(t *testing.T, args ...string) string {
			t.Helper()
			return containerExec(t, ct, append(append([]string{"/wrapi"}, args...), "--stage", pc.Stage)...)
		},
		logs: logs.String,
	}
}

// containerExec runs cmd in ct and returns its stdout; a non-zero exit
// fails the test with its stderr.
func containerExec(t *testing.T, ct *testcontainers.DockerContainer, cmd ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, r, err := ct.Exec(ctx, cmd)
	if err != nil {
		t.Fatalf("exec %s: %v", strings.Join(cmd, " "), err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, r); err != nil && err != io.EOF {
		t.Fatalf("exec %s: reading output: %v", strings.Join(cmd, " "), err)
	}
	if code != 0 {
		t.Fatalf("exec %s: exit %d\n%s%s", strings.Join(cmd, " "), code, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// logWriter keeps a container's log lines.
type logWriter struct{ b *lockedBuffer }

func (l logWriter) Accept(lg testcontainers.Log) { l.b.Write(lg.Content) }

var _ testcontainers.LogConsumer = logWriter{}
