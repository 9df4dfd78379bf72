// Package cache stores complete upstream responses so the proxy can answer
// a repeated request without calling OpenAI (a hit is recorded with cost 0
// and the original cost as saved).
//
// Design.
//
//   - Keys. [Key] hashes (format version, stage, scope, method, path,
//     canonical body) with SHA-256. The scope is built by the proxy
//     ("project:ml", "user:alice", "stage") and decides who shares entries.
//     [Canonical] re-encodes a JSON body with sorted keys and no
//     whitespace, keeping numbers exactly as written, so key order and
//     formatting never split the cache while every value that can change
//     the output does.
//   - Entries. An [Entry] is the response (body, or the raw SSE events of a
//     stream) plus what metering found (usage, model, tier, cost). It is
//     stored in a compact checksummed binary encoding that records its key
//     and scope; a read whose stored key or scope differs from the one
//     asked for is a miss, and so are corrupt bytes.
//   - Backends. A [Backend] is bytes in, bytes out, with a TTL: the
//     in-process LRU (package lru), memcached (package memcached, which
//     chunks values over memcached's item limit) or DynamoDB (package
//     dynamocache). Package cachetest is the conformance suite they pass.
//   - Flush without listing keys. memcached cannot enumerate keys, so
//     every stored key includes a global and a per-scope generation
//     ([Generations]); a flush is one Bump and old entries age out. The
//     generations are read in one round trip and remembered for
//     [Options.GenerationTTL] (1 s by default): a flush made in another
//     process is visible within that time. They live in the backend
//     ([StoredGenerations]), in the LRU's own memory ([GenerationKeeper]),
//     or wherever an injected [Generations] keeps them.
//
// Errors. Get returns [ErrMiss] for anything that is not a usable entry;
// any other error means the cache infrastructure failed, and the proxy
// treats it as a miss (a cache must never fail a request).
package cache
