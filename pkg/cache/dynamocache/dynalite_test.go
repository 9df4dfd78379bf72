package dynamocache

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/wrapi-dev/wrapi/pkg/dynalitetest"
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
