// Package memcached is the shared cache backend: memcached (ElastiCache on
// AWS), through github.com/bradfitz/gomemcache.
//
// Large values. memcached refuses items over its item size limit (1 MiB by
// default, `-I`). A value that does not fit in one item is split into
// pieces of at most ChunkSize (900 KiB) stored under <key>/<nonce>/<i>,
// then a small manifest (length, piece count, CRC-32C, nonce) is stored
// under the key itself, marked by the item flags. Pieces are written before
// the manifest, so a reader that finds the manifest finds pieces of that
// same write (the nonce keeps a concurrent writer's pieces apart); it
// fetches them in one GetMulti and checks the count, lengths and checksum:
// an evicted or damaged piece makes the value a miss. Values over MaxValue
// (16 MiB) are not stored ([cache.ErrTooLarge]): the proxy skips caching
// such responses.
//
// Failure. gomemcache has no context; every operation is bounded by
// Timeout instead (connect, and each read or write; 150 ms by default),
// so a dead or unreachable server costs one timeout, not a hang. After a
// network failure the backend fails fast (without trying the server) for
// Backoff (1 s), so a down memcached costs one timeout per second, not one
// per request. Callers treat errors as misses.
//
// Expiry is in whole seconds (a TTL under 1 s is rounded up to 1 s); TTLs
// over 30 days are sent as absolute times, as memcached requires.
package memcached

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/wrapi-dev/wrapi/pkg/cache"
)

// Defaults.
const (
	DefaultTimeout      = 150 * time.Millisecond
	DefaultMaxIdleConns = 32
	DefaultItemLimit    = 1 << 20
	DefaultChunkSize    = 900 << 10
	DefaultMaxValue     = 16 << 20
	DefaultBackoff      = time.Second

	// itemMargin is what an item needs besides its value: memcached's
	// item header and the key (measured: a 1 MiB item holds ~1 MiB - 170
	// bytes with a 100-byte key).
	itemMargin = 1 << 10
	// maxKeyLen leaves room for a piece suffix under memcached's 250.
	maxKeyLen = 200
)

// ErrUnavailable is returned without contacting the server while the
// backend backs off after a network failure.
var ErrUnavailable = errors.New("memcached: server unavailable (backing off)")

// Config configures a [Client].
type Config struct {
	// Servers are host:port addresses; keys are spread over them.
	Servers []string
	// Timeout bounds connecting and each read or write (default 150 ms).
	Timeout time.Duration
	// MaxIdleConns per server (default 32; gomemcache's own default of 2
	// makes concurrent requests dial).
	MaxIdleConns int
	// ItemLimit is the servers' item size limit, memcached's -I (default
	// 1 MiB). Values that do not fit in one item are chunked.
	ItemLimit int
	// ChunkSize is the size of the pieces of a chunked value (default
	// 900 KiB; at most ItemLimit minus 1 KiB).
	ChunkSize int
	// MaxValue is the largest value stored (default 16 MiB); larger ones
	// get cache.ErrTooLarge.
	MaxValue int
	// Backoff is how long operations fail fast after a network failure
	// (default 1 s; negative: never back off).
	Backoff time.Duration
}

// Client is a [cache.Backend] on memcached.
type Client struct {
	mc        *memcache.Client
	chunk     int
	single    int // largest value stored as one item, before the key
	maxValue  int
	backoff   time.Duration
	downUntil atomic.Int64 // unix ns
}

var (
	_ cache.Backend     = (*Client)(nil)
	_ cache.MultiGetter = (*Client)(nil)
	_ cache.Adder       = (*Client)(nil)
)

// Item flags: what the item's value is.
const (
	flagValue    = 0
	flagManifest = 1
)

// New returns a client for cfg.Servers. It does not connect.
func New(cfg Config) (*Client, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("memcached: no servers configured")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxIdleConns <= 0 {
		cfg.MaxIdleConns = DefaultMaxIdleConns
	}
	if cfg.ItemLimit <= 0 {
		cfg.ItemLimit = DefaultItemLimit
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.MaxValue <= 0 {
		cfg.MaxValue = DefaultMaxValue
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.ItemLimit <= 2*itemMargin {
		return nil, fmt.Errorf("memcached: item limit %d is too small", cfg.ItemLimit)
	}
	if cfg.ChunkSize > cfg.ItemLimit-itemMargin {
		return nil, fmt.Errorf("memcached: chunk size %d does not fit in an item of %d bytes", cfg.ChunkSize, cfg.ItemLimit)
	}
	ss := new(memcache.ServerList)
	if err := ss.SetServers(cfg.Servers...); err != nil {
		return nil, fmt.Errorf("memcached: servers %v: %w", cfg.Servers, err)
	}
	mc := memcache.NewFromSelector(ss)
	mc.Timeout = cfg.Timeout
	mc.MaxIdleConns = cfg.MaxIdleConns
	return &Client{
		mc:       mc,
		chunk:    cfg.ChunkSize,
		single:   cfg.ItemLimit - itemMargin,
		maxValue: cfg.MaxValue,
		backoff:  cfg.Backoff,
	}, nil
}

// Close closes the idle connections.
func (c *Client) Close() error { return c.mc.Close() }

// before checks the context, the key and the back-off.
func (c *Client) before(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(key) > maxKeyLen {
		return fmt.Errorf("memcached: key of %d bytes (max %d)", len(key), maxKeyLen)
	}
	if c.backoff > 0 && time.Now().UnixNano() < c.downUntil.Load() {
		return ErrUnavailable
	}
	return nil
}

// after translates gomemcache's errors and starts the back-off on a
// network failure.
func (c *Client) after(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, memcache.ErrCacheMiss):
		return cache.ErrMiss
	case errors.Is(err, memcache.ErrNotStored):
		return cache.ErrNotStored
	}
	var ne net.Error
	var cte *memcache.ConnectTimeoutError
	if c.backoff > 0 && (errors.As(err, &ne) || errors.As(err, &cte) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, memcache.ErrNoServers)) {
		c.downUntil.Store(time.Now().Add(c.backoff).UnixNano())
	}
	return err
}

// expiration converts a TTL to memcached's exptime.
func expiration(ttl time.Duration) int32 {
	if ttl <= 0 {
		return 0
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	const month = 30 * 24 * 3600
	if secs > month {
		return int32(time.Now().Unix() + secs)
	}
	return int32(secs)
}

// Get implements [cache.Backend].
func (c *Client) Get(ctx context.Context, key string) ([]byte, error) {
	if err := c.before(ctx, key); err != nil {
		return nil, fmt.Errorf("memcached: get: %w", err)
	}
	it, err := c.mc.Get(key)
	if err = c.after(err); err != nil {
		if errors.Is(err, cache.ErrMiss) {
			return nil, err
		}
		return nil, fmt.Errorf("memcached: get: %w", err)
	}
	return c.value(ctx, it)
}

// GetMulti implements [cache.MultiGetter].
func (c *Client) GetMulti(ctx context.Context, keys []string) (map[string][]byte, error) {
	for _, k := range keys {
		if err := c.before(ctx, k); err != nil {
			return nil, fmt.Errorf("memcached: get: %w", err)
		}
	}
	items, err := c.mc.GetMulti(keys)
	if err = c.after(err); err != nil {
		return nil, fmt.Errorf("memcached: get: %w", err)
	}
	out := make(map[string][]byte, len(items))
	for k, it := range items {
		v, err := c.value(ctx, it)
		if errors.Is(err, cache.ErrMiss) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// value returns an item's value, assembling it when the item is a manifest.
func (c *Client) value(ctx context.Context, it *memcache.Item) ([]byte, error) {
	switch it.Flags {
	case flagValue:
		return it.Value, nil
	case flagManifest:
		return c.assemble(ctx, it.Key, it.Value)
	default:
		return nil, cache.ErrMiss
	}
}

// manifest describes a chunked value.
type manifest struct {
	length int
	pieces int
	sum    uint32
	nonce  [8]byte
}

const manifestLen = 4 + 4 + 4 + 4 + 8

var manifestMagic = [4]byte{'w', 'M', 'f', '1'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (m manifest) encode() []byte {
	b := make([]byte, 0, manifestLen)
	b = append(b, manifestMagic[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(m.length))
	b = binary.LittleEndian.AppendUint32(b, uint32(m.pieces))
	b = binary.LittleEndian.AppendUint32(b, m.sum)
	return append(b, m.nonce[:]...)
}

func parseManifest(b []byte) (manifest, bool) {
	var m manifest
	if len(b) != manifestLen || [4]byte(b[:4]) != manifestMagic {
		return m, false
	}
	m.length = int(binary.LittleEndian.Uint32(b[4:]))
	m.pieces = int(binary.LittleEndian.Uint32(b[8:]))
	m.sum = binary.LittleEndian.Uint32(b[12:])
	copy(m.nonce[:], b[16:])
	return m, true
}

func pieceKey(key string, nonce [8]byte, i int) string {
	return key + "/" + hex.EncodeToString(nonce[:]) + "/" + strconv.Itoa(i)
}

// assemble fetches and checks the pieces of a chunked value; anything
// missing or inconsistent is a miss.
func (c *Client) assemble(ctx context.Context, key string, mb []byte) ([]byte, error) {
	m, ok := parseManifest(mb)
	if !ok || m.length <= 0 || m.length > c.maxValue || m.pieces != (m.length+c.chunk-1)/c.chunk {
		return nil, cache.ErrMiss
	}
	keys := make([]string, m.pieces)
	for i := range keys {
		keys[i] = pieceKey(key, m.nonce, i)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memcached: get pieces: %w", err)
	}
	items, err := c.mc.GetMulti(keys)
	if err = c.after(err); err != nil {
		return nil, fmt.Errorf("memcached: get pieces: %w", err)
	}
	val := make([]byte, 0, m.length)
	for i, k := range keys {
		it := items[k]
		want := min(c.chunk, m.length-i*c.chunk)
		if it == nil || it.Flags != flagValue || len(it.Value) != want {
			return nil, cache.ErrMiss
		}
		val = append(val, it.Value...)
	}
	if crc32.Checksum(val, castagnoli) != m.sum {
		return nil, cache.ErrMiss
	}
	return val, nil
}

// Set implements [cache.Backend].
func (c *Client) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return c.store(ctx, key, val, ttl, false)
}

// Add implements [cache.Adder] (single-item values only).
func (c *Client) Add(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return c.store(ctx, key, val, ttl, true)
}

func (c *Client) store(ctx context.Context, key string, val []byte, ttl time.Duration, onlyNew bool) error {
	if err := c.before(ctx, key); err != nil {
		return fmt.Errorf("memcached: set: %w", err)
	}
	exp := expiration(ttl)
	if len(val) <= c.single-len(key) {
		it := &memcache.Item{Key: key, Value: val, Flags: flagValue, Expiration: exp}
		var err error
		if onlyNew {
			err = c.mc.Add(it)
		} else {
			err = c.mc.Set(it)
		}
		if err = c.after(err); err != nil {
			if errors.Is(err, cache.ErrNotStored) {
				return err
			}
			return fmt.Errorf("memcached: set: %w", err)
		}
		return nil
	}
	if len(val) > c.maxValue || onlyNew {
		// Add is for small values (generations); a value over MaxValue
		// is not stored, and the key must not keep an older value.
		if err := c.Delete(ctx, key); err != nil {
			return err
		}
		if onlyNew {
			return fmt.Errorf("memcached: add of %d bytes: only single-item values", len(val))
		}
		return cache.ErrTooLarge
	}
	m := manifest{length: len(val), pieces: (len(val) + c.chunk - 1) / c.chunk, sum: crc32.Checksum(val, castagnoli)}
	rand.Read(m.nonce[:])
	// Pieces outlive the manifest a little, so a manifest never outlives
	// its pieces by the rounding of expiry times.
	pieceExp := exp
	if ttl > 0 {
		pieceExp = expiration(ttl + 5*time.Second)
	}
	for i := 0; i < m.pieces; i++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memcached: set: %w", err)
		}
		part := val[i*c.chunk : min(len(val), (i+1)*c.chunk)]
		err := c.mc.Set(&memcache.Item{Key: pieceKey(key, m.nonce, i), Value: part, Flags: flagValue, Expiration: pieceExp})
		if err = c.after(err); err != nil {
			return fmt.Errorf("memcached: set piece %d/%d: %w", i+1, m.pieces, err)
		}
	}
	err := c.mc.Set(&memcache.Item{Key: key, Value: m.encode(), Flags: flagManifest, Expiration: exp})
	if err = c.after(err); err != nil {
		return fmt.Errorf("memcached: set manifest: %w", err)
	}
	return nil
}

// Delete implements [cache.Backend]. Deleting a chunked value deletes its
// manifest; the pieces age out.
func (c *Client) Delete(ctx context.Context, key string) error {
	if err := c.before(ctx, key); err != nil {
		return fmt.Errorf("memcached: delete: %w", err)
	}
	err := c.after(c.mc.Delete(key))
	if err != nil && !errors.Is(err, cache.ErrMiss) {
		return fmt.Errorf("memcached: delete: %w", err)
	}
	return nil
}
