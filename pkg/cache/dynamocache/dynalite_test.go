package dynamocache

// The emulator helper below is a copy of the one in pkg/store/dynamo's
// tests (to be shared later).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The emulator every test here uses: WRAPI_DYNAMODB_ENDPOINT (a running
// dynalite, LocalStack or DynamoDB Local), or a dynalite this binary starts
// on a free 127.0.0.1 port and stops by PID when it exits.
var (
	endpoint string
	skipWhy  string // node/npm missing outside CI: skip
	setupErr error  // anything else: fail
)

func TestMain(m *testing.M) {
	stop := setup()
	code := m.Run()
	stop()
	os.Exit(code)
}

func setup() (stop func()) {
	if endpoint = os.Getenv("WRAPI_DYNAMODB_ENDPOINT"); endpoint != "" {
		return func() {}
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				setupErr = fmt.Errorf("%s is not installed and CI=true: install nodejs and npm, or set WRAPI_DYNAMODB_ENDPOINT", tool)
			} else {
				skipWhy = tool + " is not installed: install nodejs and npm (scripts/dynalite.sh installs dynalite), or set WRAPI_DYNAMODB_ENDPOINT"
			}
			return func() {}
		}
	}
	stop, err := startDynalite()
	if err != nil {
		setupErr = fmt.Errorf("start dynalite: %w", err)
		return func() {}
	}
	return stop
}

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

func startDynalite() (stop func(), err error) {
	script, err := filepath.Abs(filepath.Join("..", "..", "..", "scripts", "dynalite.sh"))
	if err != nil {
		return nil, err
	}
	out, err := exec.Command("bash", script, "cli").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("install: %w", err)
	}
	cli := strings.TrimSpace(string(out))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	cmd := exec.Command("node", "-e", dynaliteJS, cli, fmt.Sprint(port))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
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
			return nil, fmt.Errorf("dynalite exited: %s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		stop()
		return nil, fmt.Errorf("dynalite did not listen within 30s: %s", stderr.String())
	}
	endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
	return stop, nil
}

// newClient returns a client of endpoint with static fake credentials.
func newClient(endpoint string, retries int) *dynamodb.Client {
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

var tables atomic.Int64

// newTable creates a uniquely named cache table, deleted when tb ends, and
// returns the client and its name.
func newTable(tb testing.TB) (*dynamodb.Client, string) {
	tb.Helper()
	if skipWhy != "" {
		tb.Skip(skipWhy)
	}
	if setupErr != nil {
		tb.Fatal(setupErr)
	}
	db := newClient(endpoint, 0)
	name := fmt.Sprintf("wrapi-cache-test-%d-%d", time.Now().UnixNano(), tables.Add(1))
	ctx := context.Background()
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   &name,
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(PartitionKey), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(SortKey), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(PartitionKey), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(SortKey), KeyType: types.KeyTypeRange},
		},
	})
	if err != nil {
		tb.Fatalf("create table %s: %v", name, err)
	}
	w := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = 20 * time.Millisecond })
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: &name}, 30*time.Second); err != nil {
		tb.Fatalf("table %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if _, err := db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &name}); err != nil {
			tb.Errorf("delete table %s: %v", name, err)
		}
	})
	return db, name
}
