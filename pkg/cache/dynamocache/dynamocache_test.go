package dynamocache

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wrapi-dev/wrapi/pkg/cache"
	"github.com/wrapi-dev/wrapi/pkg/cache/cachetest"
	"github.com/wrapi-dev/wrapi/pkg/dynalitetest"
)

var ctx = context.Background()

// clock is a settable clock for expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 500_000_000, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a backend on its own table, with the raw client and clock.
type fixture struct {
	b     *Backend
	db    *dynamodb.Client
	table string
	clock *clock
}

func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	db, table := newTable(t)
	clk := newClock()
	cfg.Client, cfg.Table, cfg.Now = db, table, clk.now
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{b: b, db: db, table: table, clock: clk}
}

// items returns every item of partition key, by sort key.
func (f *fixture) items(t *testing.T, key string) map[string]item {
	t.Helper()
	m := map[string]item{}
	q := &dynamodb.QueryInput{
		TableName:                 &f.table,
		KeyConditionExpression:    aws.String("pk = :k"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": str(key)},
		ConsistentRead:            aws.Bool(true),
	}
	for {
		out, err := f.db.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range out.Items {
			sk, _ := strAttr(it, SortKey)
			m[sk] = it
		}
		if len(out.LastEvaluatedKey) == 0 {
			return m
		}
		q.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

func (f *fixture) head(t *testing.T, key string) item {
	t.Helper()
	out, err := f.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &f.table, Key: itemKey(key, headSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func (f *fixture) putRaw(t *testing.T, it item) {
	t.Helper()
	if _, err := f.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &f.table, Item: it}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) deleteRaw(t *testing.T, key, sk string) {
	t.Helper()
	if _, err := f.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &f.table, Key: itemKey(key, sk)}); err != nil {
		t.Fatal(err)
	}
}

// uniqueKey returns a key no other run uses.
func uniqueKey(name string) string {
	var b [6]byte
	crand.Read(b[:])
	return "dt-" + hex.EncodeToString(b[:]) + "/" + name
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	crand.Read(b)
	return b
}

func mustSet(t testing.TB, b *Backend, key string, val []byte, ttl time.Duration) {
	t.Helper()
	if err := b.Set(ctx, key, val, ttl); err != nil {
		t.Fatalf("Set(%s, %d bytes): %v", key, len(val), err)
	}
}

func mustGet(t testing.TB, b *Backend, key string, want []byte) {
	t.Helper()
	got, err := b.Get(ctx, key)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Get(%s) = %d bytes, %v; want the %d bytes set", key, len(got), err, len(want))
	}
}

func mustMiss(t testing.TB, b *Backend, key string) {
	t.Helper()
	got, err := b.Get(ctx, key)
	if !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get(%s) = %d bytes, %v; want ErrMiss", key, len(got), err)
	}
}

func TestConformance(t *testing.T) {
	clk := newClock()
	cachetest.Run(t, cachetest.Config{
		New: func(t *testing.T) cache.Backend {
			db, table := newTable(t)
			b, err := New(Config{Client: db, Table: table, Now: clk.now})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		// Expiry is in whole seconds, rounded up: a value lives for its
		// TTL plus less than a second.
		Advance:  func(d time.Duration) { clk.add(d + time.Second) },
		MaxValue: DefaultMaxValue,
	})
}

func TestNewValidates(t *testing.T) {
	db := newClient("http://127.0.0.1:1", 1)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no client", Config{Table: "t"}, "no client"},
		{"no table", Config{Client: db}, "no table"},
		{"neither", Config{}, "no client\ndynamocache: no table"},
		{"negative max", Config{Client: db, Table: "t", MaxValue: -1}, "negative MaxValue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	b, err := New(Config{Client: db, Table: "t"})
	if err != nil || b.maxValue != DefaultMaxValue {
		t.Fatalf("New with defaults = %+v, %v; want MaxValue %d", b, err, DefaultMaxValue)
	}
}

// TestLayout stores values around the chunk boundary and checks the items
// written: one head item with the value, or a manifest and its chunks.
func TestLayout(t *testing.T) {
	f := newFixture(t, Config{})
	tests := []struct {
		size   int
		chunks int // 0: inline
	}{
		{0, 0},
		{1, 0},
		{6 << 10, 0},
		{ChunkSize - 1, 0},
		{ChunkSize, 0}, // exactly at the boundary: still one item
		{ChunkSize + 1, 2},
		{2 * ChunkSize, 2},
		{2*ChunkSize + 1, 3},
		{1 << 20, 3},
		{3584 << 10, 11},
		{DefaultMaxValue, 47},
	}
	for _, tc := range tests {
		ttls := []time.Duration{time.Hour, 0}
		if tc.chunks > 3 {
			ttls = ttls[:1] // large: once is enough
		}
		for _, ttl := range ttls {
			t.Run(fmt.Sprintf("%d/ttl=%s", tc.size, ttl), func(t *testing.T) {
				key := uniqueKey("layout")
				val := randomBytes(tc.size)
				mustSet(t, f.b, key, bytes.Clone(val), ttl)
				mustGet(t, f.b, key, val)

				items := f.items(t, key)
				head := items[headSK]
				if head == nil {
					t.Fatalf("no head item; items %v", slices.Collect(mapKeys(items)))
				}
				wantExp := ""
				if ttl > 0 {
					// 12:00:00.5 + 1h, rounded up.
					wantExp = fmt.Sprint(time.Date(2026, 11, 27, 13, 0, 1, 0, time.UTC).Unix())
				}
				for sk, it := range items {
					if got := numString(it[TTLAttribute]); got != wantExp {
						t.Errorf("item %s: expires_at %q, want %q", sk, got, wantExp)
					}
				}
				if tc.chunks == 0 {
					v, ok := bytesAttr(head, attrValue)
					if len(items) != 1 || !ok || !bytes.Equal(v, val) {
						t.Fatalf("want one head item holding the value; got %d items, v present %v", len(items), ok)
					}
					return
				}
				m, ok := parseManifest(head, DefaultMaxValue)
				if !ok || m.chunks != tc.chunks || m.length != tc.size {
					t.Fatalf("manifest %+v (ok %v), want %d chunks of %d bytes", m, ok, tc.chunks, tc.size)
				}
				if len(items) != tc.chunks+1 {
					t.Fatalf("%d items, want the manifest and %d chunks", len(items), tc.chunks)
				}
				for i := range m.chunks {
					sk := fmt.Sprintf("c#%s#%04d", m.nonce, i)
					v, ok := bytesAttr(items[sk], attrValue)
					if !ok || len(v) != min(ChunkSize, tc.size-i*ChunkSize) {
						t.Fatalf("chunk %s: %d bytes (present %v)", sk, len(v), ok)
					}
				}
			})
		}
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func numString(av types.AttributeValue) string {
	if n, ok := av.(*types.AttributeValueMemberN); ok {
		return n.Value
	}
	return ""
}

func TestTooLarge(t *testing.T) {
	const maxValue = 2*ChunkSize + 10
	f := newFixture(t, Config{MaxValue: maxValue})
	key := uniqueKey("big")
	val := randomBytes(maxValue)
	mustSet(t, f.b, key, bytes.Clone(val), time.Hour)
	mustGet(t, f.b, key, val)
	if err := f.b.Set(ctx, key, make([]byte, maxValue+1), time.Hour); !errors.Is(err, cache.ErrTooLarge) {
		t.Fatalf("Set of MaxValue+1 bytes = %v, want ErrTooLarge", err)
	}
	mustMiss(t, f.b, key) // the older value is gone too
	if err := f.b.Add(ctx, uniqueKey("add"), make([]byte, ChunkSize+1), 0); !errors.Is(err, cache.ErrTooLarge) {
		t.Fatalf("Add of a value that needs chunks = %v, want ErrTooLarge", err)
	}
}

// TestDamaged: whatever happens to a chunked value's items, Get returns the
// value exactly or a miss, never an error or other bytes.
func TestDamaged(t *testing.T) {
	f := newFixture(t, Config{})
	size := 2*ChunkSize + 1000 // three chunks
	setAttr := func(name string, av types.AttributeValue) func(*testing.T, string, manifest, item) {
		return func(t *testing.T, key string, m manifest, head item) {
			if av == nil {
				delete(head, name)
			} else {
				head[name] = av
			}
			f.putRaw(t, head)
		}
	}
	chunk := func(i int, change func([]byte) []byte) func(*testing.T, string, manifest, item) {
		return func(t *testing.T, key string, m manifest, head item) {
			sk := chunkKey(m.nonce, i)
			it := f.items(t, key)[sk]
			v, _ := bytesAttr(it, attrValue)
			it[attrValue] = &types.AttributeValueMemberB{Value: change(bytes.Clone(v))}
			f.putRaw(t, it)
		}
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, key string, m manifest, head item)
	}{
		{"missing first chunk", func(t *testing.T, key string, m manifest, _ item) { f.deleteRaw(t, key, chunkKey(m.nonce, 0)) }},
		{"missing middle chunk", func(t *testing.T, key string, m manifest, _ item) { f.deleteRaw(t, key, chunkKey(m.nonce, 1)) }},
		{"missing last chunk", func(t *testing.T, key string, m manifest, _ item) { f.deleteRaw(t, key, chunkKey(m.nonce, 2)) }},
		{"chunk truncated", chunk(1, func(v []byte) []byte { return v[:len(v)-1] })},
		{"chunk extended", chunk(2, func(v []byte) []byte { return append(v, 0) })},
		{"chunk byte flipped", chunk(1, func(v []byte) []byte { v[1234] ^= 1; return v })},
		{"chunks swapped", func(t *testing.T, key string, m manifest, _ item) {
			items := f.items(t, key)
			a, b := items[chunkKey(m.nonce, 0)], items[chunkKey(m.nonce, 1)]
			a[attrValue], b[attrValue] = b[attrValue], a[attrValue]
			f.putRaw(t, a)
			f.putRaw(t, b)
		}},
		{"chunk of another type", func(t *testing.T, key string, m manifest, _ item) {
			it := itemKey(key, chunkKey(m.nonce, 1))
			it[attrValue] = str(strings.Repeat("x", ChunkSize))
			f.putRaw(t, it)
		}},
		{"manifest checksum wrong", func(t *testing.T, key string, m manifest, head item) {
			setAttr(attrCRC, num(int64(m.sum^1)))(t, key, m, head)
		}},
		{"manifest length wrong", setAttr(attrLen, num(int64(size-1)))},
		{"manifest length over MaxValue", setAttr(attrLen, num(DefaultMaxValue+1))},
		{"manifest length negative", setAttr(attrLen, num(-5))},
		{"manifest chunk count wrong", setAttr(attrChunks, num(2))},
		{"manifest chunk count huge", setAttr(attrChunks, num(1<<40))},
		{"manifest nonce of another write", setAttr(attrNonce, str("0123456789abcdef"))},
		{"manifest nonce not hex", setAttr(attrNonce, str("0123456789abcdeg"))},
		{"manifest nonce short", setAttr(attrNonce, str("0123"))},
		{"manifest length a string", setAttr(attrLen, str(fmt.Sprint(size)))},
		{"manifest checksum out of range", setAttr(attrCRC, num(1<<33))},
		{"manifest without nonce", setAttr(attrNonce, nil)},
		{"manifest without length", setAttr(attrLen, nil)},
		{"expires_at not a number", setAttr(TTLAttribute, str("soon"))},
		{"head without value or manifest", func(t *testing.T, key string, _ manifest, _ item) { f.putRaw(t, itemKey(key, headSK)) }},
		{"inline value of another type", func(t *testing.T, key string, _ manifest, _ item) {
			it := itemKey(key, headSK)
			it[attrValue] = str("text")
			f.putRaw(t, it)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := uniqueKey("damaged")
			val := randomBytes(size)
			mustSet(t, f.b, key, bytes.Clone(val), time.Hour)
			mustGet(t, f.b, key, val)
			head := f.head(t, key)
			m, ok := parseManifest(head, DefaultMaxValue)
			if !ok || m.chunks != 3 {
				t.Fatalf("manifest %+v, want 3 chunks", m)
			}
			tc.damage(t, key, m, head)
			mustMiss(t, f.b, key)
			got, err := f.b.GetMulti(ctx, []string{key})
			if err != nil || len(got) != 0 {
				t.Fatalf("GetMulti = %d values, %v; want none", len(got), err)
			}
			// Setting the key again repairs it.
			mustSet(t, f.b, key, bytes.Clone(val), time.Hour)
			mustGet(t, f.b, key, val)
		})
	}
}

// TestExpiry: an expired item is a miss though DynamoDB (whose TTL
// deletion lags) still returns it; a value never expires before its TTL.
func TestExpiry(t *testing.T) {
	f := newFixture(t, Config{})
	small, big := uniqueKey("small"), uniqueKey("big")
	never := uniqueKey("never")
	sv, bv, nv := randomBytes(100), randomBytes(ChunkSize+100), randomBytes(ChunkSize+100)
	mustSet(t, f.b, small, bytes.Clone(sv), time.Hour)
	mustSet(t, f.b, big, bytes.Clone(bv), time.Hour)
	mustSet(t, f.b, never, bytes.Clone(nv), 0)

	f.clock.add(time.Hour - time.Nanosecond)
	mustGet(t, f.b, small, sv)
	mustGet(t, f.b, big, bv)
	f.clock.add(time.Second + time.Nanosecond)
	mustMiss(t, f.b, small)
	mustMiss(t, f.b, big)
	if f.head(t, small) == nil || f.head(t, big) == nil {
		t.Fatal("the expired items are gone from the table; the test needs them there")
	}
	got, err := f.b.GetMulti(ctx, []string{small, big, never})
	if err != nil || len(got) != 1 || !bytes.Equal(got[never], nv) {
		t.Fatalf("GetMulti = %d values, %v; want only the value without TTL", len(got), err)
	}
	f.clock.add(10 * 365 * 24 * time.Hour)
	mustGet(t, f.b, never, nv)

	// Add treats an expired value as absent, an unexpired one as present.
	if err := f.b.Add(ctx, small, []byte("new"), time.Minute); err != nil {
		t.Fatalf("Add over an expired value = %v, want it stored", err)
	}
	mustGet(t, f.b, small, []byte("new"))
	if err := f.b.Add(ctx, small, []byte("newer"), time.Minute); !errors.Is(err, cache.ErrNotStored) {
		t.Fatalf("Add over a live value = %v, want ErrNotStored", err)
	}
	if err := f.b.Add(ctx, never, []byte("x"), 0); !errors.Is(err, cache.ErrNotStored) {
		t.Fatalf("Add over a value without TTL = %v, want ErrNotStored", err)
	}

	// A sub-second TTL lives until the next whole second at least.
	short := uniqueKey("short")
	mustSet(t, f.b, short, []byte("s"), time.Millisecond)
	mustGet(t, f.b, short, []byte("s"))
	f.clock.add(time.Second)
	mustMiss(t, f.b, short)
}

// TestDelete: Delete removes the head item; chunks with a TTL are left to
// it, chunks without one are deleted.
func TestDelete(t *testing.T) {
	f := newFixture(t, Config{})
	for _, tc := range []struct {
		ttl        time.Duration
		wantChunks int
	}{{time.Hour, 2}, {0, 0}} {
		t.Run(fmt.Sprint("ttl=", tc.ttl), func(t *testing.T) {
			key := uniqueKey("del")
			mustSet(t, f.b, key, randomBytes(ChunkSize+1), tc.ttl)
			if err := f.b.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			mustMiss(t, f.b, key)
			items := f.items(t, key)
			if items[headSK] != nil || len(items) != tc.wantChunks {
				t.Fatalf("after Delete: items %v, want %d chunks and no head", slices.Collect(mapKeys(items)), tc.wantChunks)
			}
			if err := f.b.Delete(ctx, key); err != nil {
				t.Fatalf("Delete of an absent key = %v", err)
			}
		})
	}
}

// TestGetMulti: duplicate keys, more than one BatchGetItem of keys, and
// chunked values mixed with inline ones.
func TestGetMulti(t *testing.T) {
	f := newFixture(t, Config{})
	want := map[string][]byte{}
	var keys []string
	for i := range 130 {
		k := uniqueKey(fmt.Sprint("multi", i))
		keys = append(keys, k)
		if i%3 == 0 {
			continue // absent
		}
		v := randomBytes(10 + i)
		if i%40 == 1 {
			v = randomBytes(ChunkSize + i)
		}
		mustSet(t, f.b, k, bytes.Clone(v), time.Hour)
		want[k] = v
	}
	keys = append(keys, keys[1], keys[2], keys[1])
	got, err := f.b.GetMulti(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("GetMulti: %d values, want %d", len(got), len(want))
	}
	for k, v := range want {
		if !bytes.Equal(got[k], v) {
			t.Fatalf("GetMulti[%s]: %d bytes, want %d", k, len(got[k]), len(v))
		}
	}
	if got, err := f.b.GetMulti(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("GetMulti(nil) = %v, %v", got, err)
	}
}

func TestInvalidKeys(t *testing.T) {
	f := newFixture(t, Config{})
	for _, k := range []string{"", strings.Repeat("k", maxKeyLen+1)} {
		for name, err := range map[string]error{
			"Get":    func() error { _, err := f.b.Get(ctx, k); return err }(),
			"Set":    f.b.Set(ctx, k, []byte("v"), 0),
			"Add":    f.b.Add(ctx, k, []byte("v"), 0),
			"Delete": f.b.Delete(ctx, k),
			"GetMulti": func() error {
				_, err := f.b.GetMulti(ctx, []string{"ok", k})
				return err
			}(),
		} {
			if err == nil || errors.Is(err, cache.ErrMiss) || !strings.HasPrefix(err.Error(), "dynamocache: ") {
				t.Errorf("%s(%d-byte key) = %v, want a dynamocache error", name, len(k), err)
			}
		}
	}
}

// TestUnavailable: an unreachable DynamoDB is an error, never a miss.
func TestUnavailable(t *testing.T) {
	b, err := New(Config{Client: newClient(dynalitetest.Unreachable(t), 1), Table: "t"})
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"Get":         func() error { _, err := b.Get(ctx, "k"); return err },
		"GetMulti":    func() error { _, err := b.GetMulti(ctx, []string{"k"}); return err },
		"Set":         func() error { return b.Set(ctx, "k", []byte("v"), time.Hour) },
		"Set chunked": func() error { return b.Set(ctx, "k", make([]byte, ChunkSize+1), time.Hour) },
		"Add":         func() error { return b.Add(ctx, "k", []byte("v"), 0) },
		"Delete":      func() error { return b.Delete(ctx, "k") },
	} {
		err := call()
		if err == nil || errors.Is(err, cache.ErrMiss) || errors.Is(err, cache.ErrNotStored) ||
			!strings.HasPrefix(err.Error(), "dynamocache: ") {
			t.Errorf("%s = %v, want a dynamocache infrastructure error", name, err)
		}
	}
}

// TestConcurrentRewrites: writers replace one key with chunked values of
// different lengths while readers read it; every read is one whole value
// or a miss (the nonce keeps the chunks of two writes apart).
func TestConcurrentRewrites(t *testing.T) {
	f := newFixture(t, Config{})
	key := uniqueKey("race")
	vals := [][]byte{
		randomBytes(ChunkSize + 10),
		randomBytes(2*ChunkSize + 10),
		randomBytes(2*ChunkSize + 10), // same length and chunk count as the previous
		randomBytes(1000),             // inline
	}
	const writers, readers, ops = 4, 6, 12
	var hits, misses atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)
	for w := range writers {
		wg.Go(func() {
			for i := range ops {
				if err := f.b.Set(ctx, key, vals[(w+i)%len(vals)], time.Hour); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range readers {
		wg.Go(func() {
			for range ops * 2 {
				got, err := f.b.Get(ctx, key)
				if errors.Is(err, cache.ErrMiss) {
					misses.Add(1)
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if !slices.ContainsFunc(vals, func(v []byte) bool { return bytes.Equal(v, got) }) {
					errs <- fmt.Errorf("Get returned %d bytes that are none of the values written", len(got))
					return
				}
				hits.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if hits.Load() == 0 {
		t.Errorf("no read hit (%d misses)", misses.Load())
	}
	t.Logf("%d hits, %d misses", hits.Load(), misses.Load())
	// After the writers are done, the key holds one of the values.
	got, err := f.b.Get(ctx, key)
	if err != nil || !slices.ContainsFunc(vals, func(v []byte) bool { return bytes.Equal(v, got) }) {
		t.Fatalf("final Get = %d bytes, %v", len(got), err)
	}
}

// TestConcurrentAdd: of many Adds of one key at once, exactly one stores.
func TestConcurrentAdd(t *testing.T) {
	f := newFixture(t, Config{})
	key := uniqueKey("add")
	const n = 32
	var stored, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			switch err := f.b.Add(ctx, key, []byte(fmt.Sprint(i)), 0); {
			case err == nil:
				stored.Add(1)
			case errors.Is(err, cache.ErrNotStored):
				refused.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if stored.Load() != 1 || refused.Load() != n-1 {
		t.Fatalf("%d Adds stored and %d refused, want 1 and %d", stored.Load(), refused.Load(), n-1)
	}
}

// realisticKey is as long as a cache entry's stored key in a stage
// namespace: prod/e/<64 hex>/<generation>.<generation>.
func realisticKey() string {
	return "prod/e/" + strings.Repeat("ab", 32) + "/" + uniqueKey("")[:13] + "." + "1y2p0ij32e8e7"
}

// TestCost pins the request units of the package documentation's table,
// as dynalite computes them (DynamoDB's item-size formula).
func TestCost(t *testing.T) {
	f := newFixture(t, Config{})
	measure := func(op func()) Capacity {
		before := f.b.Capacity()
		op()
		after := f.b.Capacity()
		return Capacity{after.ReadUnits - before.ReadUnits, after.WriteUnits - before.WriteUnits}
	}
	small, big := realisticKey(), realisticKey()
	sv, bv := randomBytes(6<<10), randomBytes(1<<20)
	tests := []struct {
		name string
		op   func()
		want Capacity
	}{
		{"miss", func() { mustMiss(t, f.b, small) }, Capacity{1, 0}},
		{"put 6 KiB", func() { mustSet(t, f.b, small, sv, time.Hour) }, Capacity{0, 7}},
		{"hit 6 KiB", func() { mustGet(t, f.b, small, sv) }, Capacity{2, 0}},
		{"put 1 MiB", func() { mustSet(t, f.b, big, bv, time.Hour) }, Capacity{0, 1028}},
		{"hit 1 MiB", func() { mustGet(t, f.b, big, bv) }, Capacity{130, 0}},
		{"delete manifest", func() {
			if err := f.b.Delete(ctx, big); err != nil {
				t.Fatal(err)
			}
		}, Capacity{0, 1}},
		{"generations", func() {
			g1, g2 := realisticKey(), realisticKey()
			for _, k := range []string{g1, g2} {
				if err := f.b.Add(ctx, k, []byte("4611686018427387904"), 0); err != nil {
					t.Fatal(err)
				}
			}
			before := f.b.Capacity()
			if m, err := f.b.GetMulti(ctx, []string{g1, g2}); err != nil || len(m) != 2 {
				t.Fatalf("GetMulti = %v, %v", m, err)
			}
			if got := f.b.Capacity().ReadUnits - before.ReadUnits; got != 2 {
				t.Errorf("GetMulti of two generations: %v read units, want 2", got)
			}
		}, Capacity{2, 2}},
	}
	for _, tc := range tests {
		if got := measure(tc.op); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// BenchmarkBackend measures Set and Get of a 6 KiB and a 1 MiB value
// straight on the backend, and the same through cache.Cache.
func BenchmarkBackend(b *testing.B) {
	db, table := newTable(b)
	be, err := New(Config{Client: db, Table: table})
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{6 << 10, 1 << 20} {
		name := fmt.Sprintf("%dKiB", size>>10)
		key := uniqueKey(name)
		val := randomBytes(size)
		b.Run("Set/"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			before := be.Capacity()
			for b.Loop() {
				mustSet(b, be, key, val, time.Hour)
			}
			b.ReportMetric((be.Capacity().WriteUnits-before.WriteUnits)/float64(b.N), "WRU/op")
		})
		b.Run("Get/"+name, func(b *testing.B) {
			mustSet(b, be, key, val, time.Hour)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			before := be.Capacity()
			for b.Loop() {
				mustGet(b, be, key, val)
			}
			b.ReportMetric((be.Capacity().ReadUnits-before.ReadUnits)/float64(b.N), "RRU/op")
		})
	}
	b.Run("Cache", func(b *testing.B) { cachetest.Bench(b, be) })
}
