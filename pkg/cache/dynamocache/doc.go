// Package dynamocache is the response-cache backend of deployed stages: a
// [cache.Backend] on one DynamoDB table, on-demand (no VPC, no NAT, ~$0
// when idle). It also implements [cache.MultiGetter] (BatchGetItem) and
// [cache.Adder] (a conditional PutItem), which the flush generations use.
//
// # Table
//
// The cache table is its own table (WRAPI_CACHE_TABLE), with the schema
// every wrapi table has: partition key pk (S), sort key sk (S), no
// secondary index, TTL on the Number attribute expires_at (epoch seconds).
//
//	item      pk          sk                         attributes
//	head      <key>       m                          v (B): the value, when it fits in one item
//	                                                 or n, len, crc, nonce: a manifest of chunks
//	chunk     <key>       c#<nonce>#<0000…>          v (B): one piece of a chunked value
//
// Both carry expires_at when the value was set with a TTL (rounded up to
// the second, so a value never expires early) and none without one.
//
// # Expiry is checked on read
//
// DynamoDB's TTL deletion is garbage collection only: it can lag expiry by
// days and expired items are still returned by every read. A head item
// whose expires_at has passed (by this process's clock) is a miss, and Add
// treats it as absent (its condition is attribute_not_exists(pk) OR
// expires_at <= now).
//
// # Consistency
//
// Head items are read strongly consistent (GetItem, and BatchGetItem in
// GetMulti), at twice the read units of an eventual read: a Set, Delete
// or flush-generation bump is seen by the next read from any process,
// and a generation that lost an Add race is read back at once rather than
// found missing. Chunks are read eventually consistent (see below).
//
// # Large values: chunked
//
// DynamoDB refuses items over 400 KB. A value of up to [ChunkSize] (350
// KiB, leaving room for the key and attributes) is stored inline in its
// head item: one GetItem per hit. A larger one, up to MaxValue (16 MiB by
// default), is split into ceil(len/ChunkSize) chunks written first (one
// BatchWriteItem per 25 chunks), then the manifest is written last in the
// head item: chunk count, total length, CRC-32C of the whole value and a
// random per-write nonce that is part of every chunk's sort key. A reader
// that finds a manifest therefore finds the chunks of that same write (a
// concurrent rewrite writes chunks under another nonce, so pieces of two
// values never mix). Get reads the head strongly consistent, then the
// chunks by key with BatchGetItem, eventually consistent (chunks are never
// rewritten, so a stale read can only be a missing chunk: a miss), retrying
// UnprocessedKeys (BatchGetItem answers at most 16 MB; dynalite, 1 MB). A
// missing chunk, a wrong length or checksum, a manifest that does not
// parse: all are misses, never an error and never wrong bytes.
//
// Chunks were chosen over skipping large values because a cached 1 MB
// response (a long completion with logprobs, an audio transcript, a big
// embedding batch) saves its whole upstream cost on every hit, and its
// storage and request units cost cents per million bytes (see Cost).
// BatchGetItem was chosen over a Query on the chunk prefix because it
// returns up to 16 MB per call where a Query page stops at 1 MB: a 1 MB
// value is one call instead of two, and the per-item 4 KB rounding it pays
// instead of a Query's per-page rounding is under 1%.
//
// Values over MaxValue are not stored: Set deletes the key (it must not
// keep an older value) and returns [cache.ErrTooLarge]; the cache counts
// the entry as skipped. Add takes only values that fit in one item.
//
// # Overwrite and Delete
//
// Set replaces the head item; Delete deletes it. The chunks of a replaced
// or deleted manifest are left in place: nothing can reach them (their
// nonce was only in that manifest) and DynamoDB's TTL removes them
// (deleting them would cost as many write units as writing them did).
// Chunks stored without a TTL would never be removed that way, so Delete
// (DeleteItem returns the old manifest at no extra cost) deletes those
// itself; a Set that overwrites a TTL-less chunked value leaves its old
// chunks behind. The cache writes every entry with a TTL
// (WRAPI_CACHE_TTL); only the generation counters, a few bytes each, are
// written without one.
//
// # Cost
//
// DynamoDB bills a read of an item per 4 KB of its size (rounded up per
// item; an eventually consistent read half of that, a read of an absent
// item still 1 unit strongly consistent) and a write per 1 KB (the larger
// of the old and new item for a replace; a delete, the deleted item). With
// a ~100-byte key an item carries ~120 bytes besides its value (a chunk
// ~150). In request units (RRU, WRU), as measured on dynalite by TestCost:
//
//	operation                          reads (RRU)        writes (WRU)   round trips
//	miss (no head item)                1                  0              1
//	hit, 6 KiB value                   2                  0              1
//	hit, 1 MiB value (3 chunks)        1 + 129 = 130      0              2
//	put, 6 KiB value                   0                  7              1
//	put, 1 MiB value                   0                  1027 + 1       2
//	delete                             0                  1 (small head) 1
//	generations (2 keys, GetMulti)     2                  0              1, once a second per scope
//
// At on-demand list prices in us-east-1 ($0.125 per million RRU, $0.625
// per million WRU) a million 6 KiB hits cost $0.25 and a million 6 KiB puts
// $4.38; storage is $0.25 per GB-month, for the TTL plus TTL deletion's lag.
// [Backend.Capacity] reports the units DynamoDB charged this process.
//
// # Errors
//
// Get and GetMulti return [cache.ErrMiss] (or leave the key out) for
// anything that is not a whole, unexpired value; any other error means
// DynamoDB failed (after the SDK's own retries) and the cache treats it
// as a miss. Operations are bounded by the caller's context and the
// client's own timeouts and retries.
package dynamocache
