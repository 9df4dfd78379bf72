// Package dynamo is the store.Store of a deployed stage: one DynamoDB table
// per stage, on-demand capacity, generic string keys pk (partition) and sk
// (sort), no secondary index, TTL on the Number attribute expires_at (epoch
// seconds). README.md beside this file has the same design with tables.
//
// # Items
//
//	what               pk                     sk                      notes
//	limit              LIMIT                  <limit ID>              amount; ListLimits is one Query
//	counter            CTR#<limit ID>         <window key>            committed nano-USD (N)
//	reservation        RES#<request ID>       RES                     state, amount, counters, nonce
//	open marker        OPEN#<00..15>          <expires ns, 19 digits>#<id>   one per held reservation
//	record             REC#<UTC day>          <request ID>            one request as billed
//	daily aggregate    USAGE#<UTC day>        <project>#<user>#<model>   ADDed once per record
//	day index          DAYS                   <UTC day>               days that have aggregates
//	key by hash        KEY#<hash>             KEY                     what authentication reads
//	key by ID          KEYS                   <key ID>                ListKeys, RevokeKey
//
// Names inside sort keys escape '%' and '#' (%25, %23) so
// "a#b"/"c" and "a"/"b#c" never share an aggregate row.
//
// # Budgets without transactions
//
// dynalite (the emulator the tests run on) has no TransactWriteItems, so a
// reservation is a sequence of single-item conditional writes:
//
//  1. Put the reservation item, state pending, if attribute_not_exists(pk):
//     a retried Reserve finds it and reserves nothing. A random nonce tells
//     our own write, retried by the SDK, from another attempt's.
//  2. Read the limits' current amounts (consistent BatchGetItem, in
//     parallel with 1), so a lowered limit is honoured and a deleted one no
//     longer constrains.
//  3. For each counter in counter-key order: UpdateItem ADD committed :amt
//     if attribute_not_exists(committed) OR committed <= :max, where max =
//     limit − amt is computed in Go (negative: refuse before writing).
//  4. On a failed condition: ADD −amt to the counters already raised, in
//     reverse order, delete the reservation item (a retry then decides
//     afresh, as on SQLite), and return the refusal with the counters read
//     back.
//  5. Otherwise put the open marker, then set state reserved (conditional
//     on pending and the nonce).
//
// Why a counter never exceeds its limit: a counter is one item, and
// DynamoDB applies an UpdateItem's condition and its ADD atomically on that
// item, serialised with every other write to it. A reservation raises a
// counter only when committed ≤ limit − amt holds at that instant, so
// committed + amt ≤ limit afterwards; every other write to a counter either
// lowers it (compensation, release, expiry, settling below the reservation)
// or adds money already spent (a settle above the reservation or after the
// reaper expired it — the same exception as on SQLite). Raising counters
// one at a time means a reservation refused on its third counter briefly
// held money on the first two: that can refuse a concurrent request
// spuriously, never let one overrun. The fixed order keeps two requests
// from each holding one counter the other needs.
//
// A limit lowered while a Reserve is between steps 2 and 3 is checked at
// its old amount by that one reservation (one round trip); SQLite
// serialises the two and has no such window.
//
// Settle, Release and expiry read the reservation, then move its state
// with a conditional update (state = :expected) before lowering counters,
// so a retry or a concurrent finisher changes nothing twice. When the
// change adds money (a settle above the reservation, or after expiry) the
// counters are raised first and the state moved second; the loser of a
// race lowers them again. Either way every crash window over-counts:
//
//   - Reserve dies after raising some counters and before the marker: they
//     stay raised (pending reservations have no marker, so the reaper never
//     sees them; TTL removes the item a day later). Over-count by amt.
//   - Reserve dies after the marker, before state reserved: the reaper
//     finds the marker after expiry and releases the counters exactly.
//   - Settle, Release or expiry dies between the state change and the
//     counter ADD (negative delta): over-count by the delta.
//   - A settle adding money dies between the ADD and the state change; a
//     retry adds again: over-count by the delta.
//   - An ADD whose response is lost is retried by the SDK and applied
//     twice, or reported failed and not undone: over-count.
//   - Record dies between the record and its aggregate: the dashboard
//     under-counts that request (budgets are unaffected; the records of the
//     day are the truth and can rebuild it).
//
// Over-counting refuses requests early; it never lets spend pass a limit.
// Day and month windows end, which clears it; a total limit keeps it until
// an admin raises the limit.
//
// TTL is never relied on for correctness: the reaper (ReleaseExpired)
// queries the 16 marker partitions for markers whose expiry has passed and
// checks each reservation's state itself. TTL only garbage-collects
// finished reservations a day after they finish, and pending ones a day
// after a Reserve that never finished.
//
// # Cost
//
// In request units (RU) with N the number of matching limits and items
// under 1 KB: Reserve N+3 write, N read (strongly consistent), N+3 round
// trips; refused at counter i: 2i+3 write, 2N read; Settle or Release 1
// read, N+2 write; KeyByHash 1 read; Record 2 write (4 for the first record
// of a (day, project, user, model)); Committed N read. README.md has the
// full table.
//
// # Errors
//
// A failed condition is a value (a refusal, a no-op retry, ErrNotFound or
// ErrConflict); throttling, an unreachable endpoint or any other failure
// is an error, after the SDK's own retries, and the proxy fails closed.
package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wrapi-dev/wrapi/pkg/store"
)

// The table's key schema and TTL attribute, for infrastructure code that
// creates the table.
const (
	PartitionKey = "pk"         // String, HASH
	SortKey      = "sk"         // String, RANGE
	TTLAttribute = "expires_at" // Number, epoch seconds
)

// Config says which table to use.
type Config struct {
	Client *dynamodb.Client
	Table  string
}

// Store is a store.Store on one DynamoDB table.
type Store struct {
	db    *dynamodb.Client
	table string
	now   func() time.Time // wall clock: TTLs and finish times only
}

var _ store.Store = (*Store)(nil)

// New returns a store on cfg.Table; it does not call DynamoDB.
func New(cfg Config) (*Store, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("dynamo: no client"))
	}
	if cfg.Table == "" {
		errs = append(errs, errors.New("dynamo: no table name"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Store{db: cfg.Client, table: cfg.Table, now: time.Now}, nil
}

// Close does nothing: the client has nothing to release.
func (s *Store) Close() error { return nil }

// CreateTable creates the table (pk and sk strings, on-demand) and waits
// until it is active, for tests and local runs. Deployed tables come from
// the infrastructure code, which also enables TTL on expires_at and
// point-in-time recovery (dynalite implements neither).
func (s *Store) CreateTable(ctx context.Context) error {
	_, err := s.db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   &s.table,
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
		return fmt.Errorf("dynamo: create table %s: %w", s.table, err)
	}
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table})
		if err != nil {
			return fmt.Errorf("dynamo: create table %s: %w", s.table, err)
		}
		if out.Table.TableStatus == types.TableStatusActive {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dynamo: create table %s: %w", s.table, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// item is one DynamoDB item.
type item = map[string]types.AttributeValue

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func boolean(v bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: v} }

func itemKey(pk, sk string) item { return item{PartitionKey: str(pk), SortKey: str(sk)} }

// ttl is the expires_at value for an item to be forgotten at t.
func ttl(t time.Time) types.AttributeValue { return num(t.Unix()) }

// escape makes a name safe inside a '#'-separated sort key.
func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "%", "%25"), "#", "%23")
}

// decoder reads typed attributes from an item, keeping the first error.
type decoder struct {
	it  item
	err error
}

func (d *decoder) fail(name string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("attribute %s: %w", name, err)
	}
}

// s returns a String attribute ("" when absent).
func (d *decoder) s(name string) string {
	switch v := d.it[name].(type) {
	case nil:
		return ""
	case *types.AttributeValueMemberS:
		return v.Value
	default:
		d.fail(name, fmt.Errorf("want a string, got %T", v))
		return ""
	}
}

// i returns a Number attribute as an int64 (0 when absent).
func (d *decoder) i(name string) int64 {
	switch v := d.it[name].(type) {
	case nil:
		return 0
	case *types.AttributeValueMemberN:
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			d.fail(name, err)
		}
		return n
	default:
		d.fail(name, fmt.Errorf("want a number, got %T", v))
		return 0
	}
}

// b returns a Boolean attribute (false when absent).
func (d *decoder) b(name string) bool {
	switch v := d.it[name].(type) {
	case nil:
		return false
	case *types.AttributeValueMemberBOOL:
		return v.Value
	default:
		d.fail(name, fmt.Errorf("want a boolean, got %T", v))
		return false
	}
}

// time returns a Number attribute of Unix nanoseconds as a UTC time.
func (d *decoder) time(name string) time.Time { return time.Unix(0, d.i(name)).UTC() }

func (d *decoder) has(name string) bool { return d.it[name] != nil }

// expr builds expression attribute names (#name) and values (:vN), so no
// attribute name ever collides with DynamoDB's reserved words.
type expr struct {
	names  map[string]string
	values map[string]types.AttributeValue
}

// n names an attribute; names are [a-z_] so "#"+name is a valid token.
func (e *expr) n(name string) string {
	if e.names == nil {
		e.names = map[string]string{}
	}
	e.names["#"+name] = name
	return "#" + name
}

// v binds a value.
func (e *expr) v(av types.AttributeValue) string {
	if e.values == nil {
		e.values = map[string]types.AttributeValue{}
	}
	k := ":v" + strconv.Itoa(len(e.values))
	e.values[k] = av
	return k
}

// isConditionFailed reports whether err is a failed condition expression.
func isConditionFailed(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf)
}

// query runs q to the end, page by page, calling fn for every item.
func (s *Store) query(ctx context.Context, q *dynamodb.QueryInput, fn func(item) error) error {
	q.TableName = &s.table
	for {
		out, err := s.db.Query(ctx, q)
		if err != nil {
			return err
		}
		for _, it := range out.Items {
			if err := fn(it); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		q.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// queryPK returns every item of partition pk (strongly consistent when
// consistent is set).
func (s *Store) queryPK(ctx context.Context, pk string, consistent bool, fn func(item) error) error {
	var e expr
	return s.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String(e.n(PartitionKey) + " = " + e.v(str(pk))),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
		ConsistentRead:            aws.Bool(consistent),
	}, fn)
}

// backoff waits before retrying unprocessed batch items.
func backoff(ctx context.Context, attempt int) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Duration(10<<min(attempt, 6)) * time.Millisecond):
		return nil
	}
}

const batchAttempts = 8

// batchGet reads the items with keys (strongly consistent), in any order;
// missing items are left out.
func (s *Store) batchGet(ctx context.Context, keys []item) ([]item, error) {
	var out []item
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), 100)]
		keys = keys[len(chunk):]
		req := map[string]types.KeysAndAttributes{s.table: {Keys: chunk, ConsistentRead: aws.Bool(true)}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt == batchAttempts {
				return nil, errors.New("batch get: items left unprocessed")
			}
			if attempt > 0 {
				if err := backoff(ctx, attempt); err != nil {
					return nil, err
				}
			}
			res, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, err
			}
			out = append(out, res.Responses[s.table]...)
			req = res.UnprocessedKeys
		}
	}
	return out, nil
}

// batchDelete deletes the items with keys.
func (s *Store) batchDelete(ctx context.Context, keys []item) error {
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), 25)]
		keys = keys[len(chunk):]
		reqs := make([]types.WriteRequest, len(chunk))
		for i, k := range chunk {
			reqs[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k}}
		}
		req := map[string][]types.WriteRequest{s.table: reqs}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt == batchAttempts {
				return errors.New("batch delete: items left unprocessed")
			}
			if attempt > 0 {
				if err := backoff(ctx, attempt); err != nil {
					return err
				}
			}
			res, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
			if err != nil {
				return err
			}
			req = res.UnprocessedItems
		}
	}
	return nil
}

// each runs fn(i) for every i in [0, n), at most width at a time, and
// returns the first error (after which no new i starts).
func each(ctx context.Context, n, width int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return context.Cause(ctx)
}

// detached is ctx without its cancellation, bounded in time: for writes
// that must follow one already made (undoing a counter, finishing a state
// change) even when the caller has gone.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

func newNonce() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b)
}
