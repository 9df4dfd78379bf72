package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// FormatVersion is the version of the cache format: it is hashed into every
// key and written at the head of every stored entry. Bump it when the
// canonical form, the key's inputs or the entry encoding change meaning, so
// old entries are neither found nor misread.
const FormatVersion = 1

// KeyLen is the length of a key: hex SHA-256.
const KeyLen = 2 * sha256.Size

// Key returns the cache key of a request: the hex SHA-256 of the format
// version, the stage, the scope (as the proxy builds it: "project:ml",
// "user:alice", "stage"), the method, the path and the canonical body
// (see [Canonical]; nil for a request without a body). Each field is
// length-prefixed, so no two different inputs share an encoding.
func Key(stage, scope, method, path string, canonicalBody []byte) string {
	h := sha256.New()
	var buf [binary.MaxVarintLen64 + 16]byte
	b := append(buf[:0], "wrapi-cache"...)
	h.Write(binary.AppendUvarint(b, FormatVersion))
	for _, f := range [...]string{stage, scope, method, path} {
		h.Write(binary.AppendUvarint(buf[:0], uint64(len(f))))
		h.Write([]byte(f))
	}
	h.Write(binary.AppendUvarint(buf[:0], uint64(len(canonicalBody))))
	h.Write(canonicalBody)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// validKey reports whether k has the shape of a [Key] result (lowercase hex
// SHA-256). The cache refuses anything else, so a caller that hashes
// differently (or not at all) fails loudly instead of sharing entries.
func validKey(k string) bool {
	if len(k) != KeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
