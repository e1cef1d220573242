package l402

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"sync"

	"gopkg.in/macaroon.v2"
)

// sigCache remembers macaroons whose signature chain verified, keyed by a
// digest of their whole content. Sharded maps rather than sync.Map, whose
// interface keys would allocate on every lookup.
type sigCache struct {
	perShard int
	shards   [16]sigShard
}

type sigShard struct {
	mu sync.RWMutex
	m  map[[32]byte][]byte // digest -> root key that verified it
}

func newSigCache(entries int) *sigCache {
	if entries <= 0 {
		return nil
	}
	c := &sigCache{perShard: max(1, entries/16)}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte][]byte)
	}
	return c
}

func (c *sigCache) has(digest [32]byte, key []byte) bool {
	s := &c.shards[digest[0]&15]
	s.mu.RLock()
	k, ok := s.m[digest]
	s.mu.RUnlock()
	// The key comparison makes an entry die with its key: a token id whose
	// key was revoked and made anew does not inherit the old verdicts.
	return ok && subtle.ConstantTimeCompare(k, key) == 1
}

func (c *sigCache) add(digest [32]byte, key []byte) {
	s := &c.shards[digest[0]&15]
	k := append([]byte(nil), key...)
	s.mu.Lock()
	if len(s.m) >= c.perShard {
		// Dropping the shard is crude but bounded and cheap; entries
		// come back at the cost of one full verification each.
		clear(s.m)
	}
	s.m[digest] = k
	s.mu.Unlock()
}

// macaroonDigest hashes a macaroon's identifier, caveats and signature,
// each with its length so that no two different macaroons share an input.
func macaroonDigest(id []byte, caveats []macaroon.Caveat, sig []byte) [32]byte {
	n := 4 + len(id) + 4 + len(sig)
	for i := range caveats {
		n += 12 + len(caveats[i].Id) + len(caveats[i].VerificationId) + len(caveats[i].Location)
	}
	var stack [1024]byte
	var buf []byte
	if n <= len(stack) {
		buf = stack[:0]
	} else {
		buf = make([]byte, 0, n)
	}
	buf = appendPart(buf, id)
	for i := range caveats {
		buf = appendPart(buf, caveats[i].Id)
		buf = appendPart(buf, caveats[i].VerificationId)
		buf = appendPart(buf, []byte(caveats[i].Location))
	}
	buf = appendPart(buf, sig)
	return sha256.Sum256(buf)
}

func appendPart(b, p []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
	return append(b, p...)
}
