package dynamocache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wrapi-dev/wrapi/pkg/cache"
)

// The table's key schema and TTL attribute, for infrastructure code that
// creates the table.
const (
	PartitionKey = "pk"         // String, HASH
	SortKey      = "sk"         // String, RANGE
	TTLAttribute = "expires_at" // Number, epoch seconds
)

// Sizes.
const (
	// ChunkSize is the largest value stored in one item, and the size of
	// the chunks of larger values (the last one is shorter). DynamoDB's
	// item limit is 400 KB including attribute names and the key.
	ChunkSize = 350 << 10
	// DefaultMaxValue is the default Config.MaxValue.
	DefaultMaxValue = 16 << 20
	// maxKeyLen is well under DynamoDB's 2048-byte partition key.
	maxKeyLen = 1024
)

// Attribute names and sort keys.
const (
	headSK     = "m"
	chunkSK    = "c#"
	attrValue  = "v"
	attrChunks = "n"
	attrLen    = "len"
	attrCRC    = "crc"
	attrNonce  = "nonce"
	nonceLen   = 16 // hex digits
)

// DynamoDB's batch limits.
const (
	batchGetMax   = 100
	batchWriteMax = 25
	// batchAttempts bounds the BatchGetItem/BatchWriteItem calls in a row
	// that make no progress (everything unprocessed: throttling).
	batchAttempts = 8
)

// Config says which table to use.
type Config struct {
	// Client is the DynamoDB client (its retries and HTTP timeouts apply
	// to every call).
	Client *dynamodb.Client
	// Table is the cache table (WRAPI_CACHE_TABLE).
	Table string
	// MaxValue is the largest value stored (default 16 MiB); larger ones
	// get cache.ErrTooLarge.
	MaxValue int
	// Now is the clock expiry is computed and checked with (default
	// time.Now).
	Now func() time.Time
}

// Backend is a [cache.Backend] on one DynamoDB table. It is safe for
// concurrent use.
type Backend struct {
	db       *dynamodb.Client
	table    string
	maxValue int
	now      func() time.Time

	// Request units DynamoDB reported, in halves (eventually consistent
	// reads cost half a unit).
	readHalves, writeHalves atomic.Int64
}

var (
	_ cache.Backend     = (*Backend)(nil)
	_ cache.MultiGetter = (*Backend)(nil)
	_ cache.Adder       = (*Backend)(nil)
)

// New returns a backend on cfg.Table; it does not call DynamoDB.
func New(cfg Config) (*Backend, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("dynamocache: no client"))
	}
	if cfg.Table == "" {
		errs = append(errs, errors.New("dynamocache: no table name"))
	}
	if cfg.MaxValue < 0 {
		errs = append(errs, fmt.Errorf("dynamocache: negative MaxValue %d", cfg.MaxValue))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.MaxValue == 0 {
		cfg.MaxValue = DefaultMaxValue
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Backend{db: cfg.Client, table: cfg.Table, maxValue: cfg.MaxValue, now: cfg.Now}, nil
}

// Capacity is what DynamoDB reported it charged a Backend's requests, in
// request units (conditional writes that failed are not reported).
type Capacity struct {
	ReadUnits, WriteUnits float64
}

// Capacity returns the request units consumed since New.
func (b *Backend) Capacity() Capacity {
	return Capacity{
		ReadUnits:  float64(b.readHalves.Load()) / 2,
		WriteUnits: float64(b.writeHalves.Load()) / 2,
	}
}

func (b *Backend) count(read bool, ccs ...types.ConsumedCapacity) {
	for _, cc := range ccs {
		if cc.CapacityUnits == nil {
			continue
		}
		h := int64(math.Round(*cc.CapacityUnits * 2))
		if read {
			b.readHalves.Add(h)
		} else {
			b.writeHalves.Add(h)
		}
	}
}

func (b *Backend) countOne(read bool, cc *types.ConsumedCapacity) {
	if cc != nil {
		b.count(read, *cc)
	}
}

// item is one DynamoDB item.
type item = map[string]types.AttributeValue

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func itemKey(pk, sk string) item { return item{PartitionKey: str(pk), SortKey: str(sk)} }

func chunkKey(nonce string, i int) string { return fmt.Sprintf("%s%s#%04d", chunkSK, nonce, i) }

func checkKey(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return fmt.Errorf("key of %d bytes (want 1 to %d)", len(key), maxKeyLen)
	}
	return nil
}

func isConditionFailed(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf)
}

// expiresAt is the expires_at of a value stored now for ttl: rounded up
// to the second, so it never expires early.
func (b *Backend) expiresAt(ttl time.Duration) (int64, bool) {
	if ttl <= 0 {
		return 0, false
	}
	t := b.now().Add(ttl)
	s := t.Unix()
	if t.After(time.Unix(s, 0)) {
		s++
	}
	return s, true
}

// expired reports whether an item's expires_at has passed; one that does
// not parse counts as expired (a miss).
func (b *Backend) expired(it item) bool {
	av, ok := it[TTLAttribute]
	if !ok {
		return false
	}
	n, ok := av.(*types.AttributeValueMemberN)
	if !ok {
		return true
	}
	s, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return true
	}
	return b.now().Unix() >= s
}

func bytesAttr(it item, name string) ([]byte, bool) {
	v, ok := it[name].(*types.AttributeValueMemberB)
	if !ok {
		return nil, false
	}
	if v.Value == nil {
		return []byte{}, true
	}
	return v.Value, true
}

func intAttr(it item, name string) (int64, bool) {
	v, ok := it[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	return n, err == nil
}

func strAttr(it item, name string) (string, bool) {
	v, ok := it[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return v.Value, true
}

// manifest describes a chunked value.
type manifest struct {
	nonce  string
	chunks int
	length int
	sum    uint32
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (m manifest) item(key string) item {
	it := itemKey(key, headSK)
	it[attrChunks] = num(int64(m.chunks))
	it[attrLen] = num(int64(m.length))
	it[attrCRC] = num(int64(m.sum))
	it[attrNonce] = str(m.nonce)
	return it
}

// parseManifest reads a head item's manifest; ok is false when the item
// is not a well-formed manifest of a value up to maxValue.
func parseManifest(it item, maxValue int) (m manifest, ok bool) {
	nonce, ok1 := strAttr(it, attrNonce)
	chunks, ok2 := intAttr(it, attrChunks)
	length, ok3 := intAttr(it, attrLen)
	sum, ok4 := intAttr(it, attrCRC)
	if !ok1 || !ok2 || !ok3 || !ok4 || len(nonce) != nonceLen {
		return m, false
	}
	if _, err := hex.DecodeString(nonce); err != nil {
		return m, false
	}
	if length <= 0 || length > int64(maxValue) || chunks != (length+ChunkSize-1)/ChunkSize ||
		sum < 0 || sum > math.MaxUint32 {
		return m, false
	}
	return manifest{nonce: nonce, chunks: int(chunks), length: int(length), sum: uint32(sum)}, true
}

func (m manifest) chunkKeys(key string) []item {
	keys := make([]item, m.chunks)
	for i := range keys {
		keys[i] = itemKey(key, chunkKey(m.nonce, i))
	}
	return keys
}

func newNonce() string {
	var b [nonceLen / 2]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b[:])
}

// Get implements [cache.Backend].
func (b *Backend) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("dynamocache: get: %w", err)
	}
	out, err := b.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:              &b.table,
		Key:                    itemKey(key, headSK),
		ConsistentRead:         aws.Bool(true),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		return nil, fmt.Errorf("dynamocache: get %s: %w", key, err)
	}
	b.countOne(true, out.ConsumedCapacity)
	v, err := b.value(ctx, key, out.Item)
	if err != nil && !errors.Is(err, cache.ErrMiss) {
		return nil, fmt.Errorf("dynamocache: get %s: %w", key, err)
	}
	return v, err
}

// GetMulti implements [cache.MultiGetter]: one BatchGetItem for the head
// items (more for over 100 keys), then the chunks of chunked values.
func (b *Backend) GetMulti(ctx context.Context, keys []string) (map[string][]byte, error) {
	seen := make(map[string]bool, len(keys))
	heads := make([]item, 0, len(keys))
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return nil, fmt.Errorf("dynamocache: get: %w", err)
		}
		if !seen[k] { // BatchGetItem refuses duplicate keys
			seen[k] = true
			heads = append(heads, itemKey(k, headSK))
		}
	}
	items, err := b.batchGet(ctx, heads, true)
	if err != nil {
		return nil, fmt.Errorf("dynamocache: get %d keys: %w", len(heads), err)
	}
	out := make(map[string][]byte, len(items))
	for _, it := range items {
		k, ok := strAttr(it, PartitionKey)
		if !ok || !seen[k] {
			continue
		}
		v, err := b.value(ctx, k, it)
		if errors.Is(err, cache.ErrMiss) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dynamocache: get %s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// value returns the value a head item holds, assembling chunks when it is
// a manifest, or ErrMiss.
func (b *Backend) value(ctx context.Context, key string, it item) ([]byte, error) {
	if it == nil || b.expired(it) {
		return nil, cache.ErrMiss
	}
	if v, ok := bytesAttr(it, attrValue); ok {
		return v, nil
	}
	m, ok := parseManifest(it, b.maxValue)
	if !ok {
		return nil, cache.ErrMiss
	}
	return b.assemble(ctx, key, m)
}

// assemble reads and checks the chunks of m.
func (b *Backend) assemble(ctx context.Context, key string, m manifest) ([]byte, error) {
	items, err := b.batchGet(ctx, m.chunkKeys(key), false)
	if err != nil {
		return nil, fmt.Errorf("read %d chunks: %w", m.chunks, err)
	}
	parts := make([][]byte, m.chunks)
	for _, it := range items {
		sk, _ := strAttr(it, SortKey)
		i, ok := m.chunkIndex(sk)
		if !ok {
			continue
		}
		if v, ok := bytesAttr(it, attrValue); ok {
			parts[i] = v
		}
	}
	val := make([]byte, 0, m.length)
	for i, p := range parts {
		want := min(ChunkSize, m.length-i*ChunkSize)
		if len(p) != want { // missing (nil) or damaged
			return nil, cache.ErrMiss
		}
		val = append(val, p...)
	}
	if crc32.Checksum(val, castagnoli) != m.sum {
		return nil, cache.ErrMiss
	}
	return val, nil
}

// chunkIndex parses a chunk's sort key of m.
func (m manifest) chunkIndex(sk string) (int, bool) {
	prefix := chunkSK + m.nonce + "#"
	if len(sk) <= len(prefix) || sk[:len(prefix)] != prefix {
		return 0, false
	}
	i, err := strconv.Atoi(sk[len(prefix):])
	if err != nil || i < 0 || i >= m.chunks {
		return 0, false
	}
	return i, true
}

// Set implements [cache.Backend].
func (b *Backend) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("dynamocache: set: %w", err)
	}
	if len(val) > b.maxValue {
		// Not stored, and the key must not keep an older value.
		if err := b.Delete(ctx, key); err != nil {
			return err
		}
		return cache.ErrTooLarge
	}
	exp, hasTTL := b.expiresAt(ttl)
	withTTL := func(it item) item {
		if hasTTL {
			it[TTLAttribute] = num(exp)
		}
		return it
	}
	if len(val) <= ChunkSize {
		it := withTTL(itemKey(key, headSK))
		it[attrValue] = &types.AttributeValueMemberB{Value: nonNil(val)}
		if err := b.put(ctx, it, false); err != nil {
			return fmt.Errorf("dynamocache: set %s: %w", key, err)
		}
		return nil
	}
	m := manifest{
		nonce:  newNonce(),
		chunks: (len(val) + ChunkSize - 1) / ChunkSize,
		length: len(val),
		sum:    crc32.Checksum(val, castagnoli),
	}
	chunks := make([]item, m.chunks)
	for i := range chunks {
		it := withTTL(itemKey(key, chunkKey(m.nonce, i)))
		it[attrValue] = &types.AttributeValueMemberB{Value: val[i*ChunkSize : min(len(val), (i+1)*ChunkSize)]}
		chunks[i] = it
	}
	if err := b.batchWrite(ctx, chunks, false); err != nil {
		return fmt.Errorf("dynamocache: set %s: write %d chunks: %w", key, m.chunks, err)
	}
	// The manifest last: a reader that finds it finds its chunks.
	if err := b.put(ctx, withTTL(m.item(key)), false); err != nil {
		return fmt.Errorf("dynamocache: set %s: write manifest: %w", key, err)
	}
	return nil
}

// nonNil makes an empty value an empty (not absent) binary attribute.
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

// Add implements [cache.Adder]: it stores val only if key holds nothing,
// or only an expired value. Values over ChunkSize are refused.
func (b *Backend) Add(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("dynamocache: add: %w", err)
	}
	if len(val) > ChunkSize || len(val) > b.maxValue {
		return fmt.Errorf("dynamocache: add %s: %d bytes, over the %d an add stores: %w",
			key, len(val), min(ChunkSize, b.maxValue), cache.ErrTooLarge)
	}
	it := itemKey(key, headSK)
	it[attrValue] = &types.AttributeValueMemberB{Value: nonNil(val)}
	if exp, ok := b.expiresAt(ttl); ok {
		it[TTLAttribute] = num(exp)
	}
	err := b.put(ctx, it, true)
	switch {
	case isConditionFailed(err):
		return cache.ErrNotStored
	case err != nil:
		return fmt.Errorf("dynamocache: add %s: %w", key, err)
	}
	return nil
}

// put writes one head item; onlyNew adds the condition that no unexpired
// item is there.
func (b *Backend) put(ctx context.Context, it item, onlyNew bool) error {
	in := &dynamodb.PutItemInput{
		TableName:              &b.table,
		Item:                   it,
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	}
	if onlyNew {
		in.ConditionExpression = aws.String("attribute_not_exists(#pk) OR #exp <= :now")
		in.ExpressionAttributeNames = map[string]string{"#pk": PartitionKey, "#exp": TTLAttribute}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":now": num(b.now().Unix())}
	}
	out, err := b.db.PutItem(ctx, in)
	if err != nil {
		return err
	}
	b.countOne(false, out.ConsumedCapacity)
	return nil
}

// Delete implements [cache.Backend]: it deletes the head item. The chunks
// of a chunked value are left to TTL, except those stored without a TTL,
// which nothing else would ever remove.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("dynamocache: delete: %w", err)
	}
	out, err := b.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:              &b.table,
		Key:                    itemKey(key, headSK),
		ReturnValues:           types.ReturnValueAllOld,
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		return fmt.Errorf("dynamocache: delete %s: %w", key, err)
	}
	b.countOne(false, out.ConsumedCapacity)
	if _, hasTTL := out.Attributes[TTLAttribute]; hasTTL {
		return nil
	}
	if m, ok := parseManifest(out.Attributes, b.maxValue); ok {
		if err := b.batchWrite(ctx, m.chunkKeys(key), true); err != nil {
			return fmt.Errorf("dynamocache: delete %s: delete %d chunks: %w", key, m.chunks, err)
		}
	}
	return nil
}

// batchGet reads the items with keys, in any order; missing items are
// left out. Unprocessed keys (over BatchGetItem's response size, or
// throttled) are asked for again at once while calls make progress, with
// a growing pause when one returns nothing.
func (b *Backend) batchGet(ctx context.Context, keys []item, consistent bool) ([]item, error) {
	var out []item
	for len(keys) > 0 {
		group := keys[:min(len(keys), batchGetMax)]
		keys = keys[len(group):]
		req := map[string]types.KeysAndAttributes{b.table: {Keys: group, ConsistentRead: aws.Bool(consistent)}}
		for idle := 0; len(req) > 0; {
			res, err := b.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
				RequestItems:           req,
				ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
			})
			if err != nil {
				return nil, err
			}
			b.count(true, res.ConsumedCapacity...)
			got := res.Responses[b.table]
			out = append(out, got...)
			req = nil
			if u := res.UnprocessedKeys[b.table]; len(u.Keys) > 0 {
				req = map[string]types.KeysAndAttributes{b.table: u}
			}
			if len(got) > 0 || len(req) == 0 {
				idle = 0
				continue
			}
			if idle++; idle == batchAttempts {
				return nil, errors.New("batch get: keys left unprocessed")
			}
			if err := pause(ctx, idle); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// batchWrite puts items (or, with del, deletes the items with those keys),
// 25 to a call, retrying unprocessed ones with a growing pause.
func (b *Backend) batchWrite(ctx context.Context, items []item, del bool) error {
	for len(items) > 0 {
		group := items[:min(len(items), batchWriteMax)]
		items = items[len(group):]
		reqs := make([]types.WriteRequest, len(group))
		for i, it := range group {
			if del {
				reqs[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: it}}
			} else {
				reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: it}}
			}
		}
		req := map[string][]types.WriteRequest{b.table: reqs}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt > 0 {
				if attempt == batchAttempts {
					return errors.New("batch write: items left unprocessed")
				}
				if err := pause(ctx, attempt); err != nil {
					return err
				}
			}
			res, err := b.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems:           req,
				ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
			})
			if err != nil {
				return err
			}
			b.count(false, res.ConsumedCapacity...)
			req = nil
			if u := res.UnprocessedItems[b.table]; len(u) > 0 {
				req = map[string][]types.WriteRequest{b.table: u}
			}
		}
	}
	return nil
}

// pause waits before retrying unprocessed batch items: 20 ms, doubling,
// at most 1.28 s.
func pause(ctx context.Context, attempt int) error {
	t := time.NewTimer(time.Duration(10<<min(attempt, 7)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
