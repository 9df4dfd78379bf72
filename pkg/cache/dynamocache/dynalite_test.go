package dynamocache

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/wrapi-dev/wrapi/pkg/dynalitetest"
	"github.com/wrapi-dev/wrapi/pkg/store/dynamo"
)

func TestMain(m *testing.M) { dynalitetest.Main(m, filepath.Join("..", "..", "..")) }

func newClient(endpoint string, retries int) *dynamodb.Client {
	return dynalitetest.Client(endpoint, retries)
}

var tables atomic.Int64

// newTable creates a uniquely named cache table, deleted when tb ends, and
// returns the client and its name.
func newTable(tb testing.TB) (*dynamodb.Client, string) {
	tb.Helper()
	db := newClient(dynalitetest.Endpoint(tb), 0)
	name := fmt.Sprintf("wrapi-cache-test-%d-%d", time.Now().UnixNano(), tables.Add(1))
	ctx := context.Background()
	// The cache table has the store table's key schema (pk/sk strings, the
	// contract in functions/README.md), so the store creates it.
	st, err := dynamo.New(dynamo.Config{Client: db, Table: name})
	if err == nil {
		err = st.CreateTable(ctx)
	}
	if err != nil {
		tb.Fatalf("create table %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if _, err := db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &name}); err != nil {
			tb.Errorf("delete table %s: %v", name, err)
		}
	})
	return db, name
}
