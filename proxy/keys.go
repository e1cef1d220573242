package proxy

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

// Derived root keys: a challenge mints its token under a root key computed
// from a master secret kept once per store and the token id, so issuing a
// challenge writes nothing durable: the key can be computed again by any
// proxy sharing the store, after any restart. What a record used to say
// about the token (when it expires) is carried in the token id itself, which
// the macaroon's signature covers.

// MasterKeySize is the size of the master secret a KeyStore keeps.
const MasterKeySize = 32

// KeyStore is a Store that keeps a master secret, from which the proxy
// derives each token's root key (HMAC-SHA256 of the token id under it)
// instead of writing a random one per challenge, and a list of revoked token
// ids, since a token whose key is derived verifies without any record. The
// stores of this module (MemoryStore, proxy/boltstore, proxy/pgstore) are
// KeyStores; on a Store that is not one the proxy writes a root key per
// challenge, as Config.StoredRootKeys asks of any store.
//
// The master secret lets whoever reads it mint tokens that pass the gate
// with a preimage of their own choosing: it must be kept as secret as the
// store's credentials. Replacing it (deleting it from the store) makes
// every token minted under it fail; there is no rotation that keeps them.
type KeyStore interface {
	Store
	// MasterKey returns the store's master secret, MasterKeySize random
	// bytes made and kept durably by the first call on the store: every
	// later call, on any handle onto the same state and after any
	// restart, returns the same bytes, and concurrent first calls on
	// several handles agree on one.
	MasterKey(ctx context.Context) ([]byte, error)
	// AddRevoked puts ids on the revocation list until the given time
	// (zero: for ever), after which Collect may drop them. Adding an id
	// already listed keeps it listed until the later time.
	AddRevoked(ctx context.Context, until time.Time, ids ...l402.TokenID) error
	// Revoked reports whether id is on the revocation list.
	Revoked(ctx context.Context, id l402.TokenID) (bool, error)
}

// NewMasterKey returns a fresh master secret, for KeyStore implementations.
func NewMasterKey() ([]byte, error) {
	k := make([]byte, MasterKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("proxy: master key: %w", err)
	}
	return k, nil
}

// rootKeyLabel separates this use of the master secret from any other.
const rootKeyLabel = "l402kit root key v1\x00"

// deriveRootKey is the root key of token id under master.
func deriveRootKey(master []byte, id l402.TokenID) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(rootKeyLabel))
	m.Write(id[:])
	return m.Sum(nil)
}

// A derived token's id is 24 random bytes and then, big endian, the unix
// second its token stops granting anything (0: never), which is what the
// token's record told the proxy before keys were derived: how long a spent
// single-use hash and a prepaid balance must be kept. The id is signed
// with the rest of the macaroon, so a client cannot change it, and a
// client's own valid_until caveats cannot shorten it.
const expiryOffset = len(l402.TokenID{}) - 8

// newDerivedID returns a token id for a token expiring at expires (zero:
// never).
func newDerivedID(hash backend.PaymentHash, expires time.Time) (l402.Identifier, error) {
	id := l402.Identifier{Version: l402.IdentifierVersion, PaymentHash: hash}
	if _, err := rand.Read(id.TokenID[:expiryOffset]); err != nil {
		return l402.Identifier{}, fmt.Errorf("l402: token id: %w", err)
	}
	var sec uint64
	if !expires.IsZero() {
		// Rounded up: the token is never kept for less than it lives.
		sec = uint64(expires.Add(time.Second - 1).Unix())
	}
	binary.BigEndian.PutUint64(id.TokenID[expiryOffset:], sec)
	return id, nil
}

// maxExpirySec bounds the expiry read from a token id: above it (the year
// 10000), the bytes are not an expiry, as in the random id of a token
// minted with a stored root key, and mean never.
const maxExpirySec = 253402300800

// derivedExpiry reads the expiry a derived token's id carries; meaningful
// only for an id whose token verified under a derived key.
func derivedExpiry(id l402.TokenID) time.Time {
	sec := binary.BigEndian.Uint64(id[expiryOffset:])
	if sec == 0 || sec >= maxExpirySec {
		return time.Time{}
	}
	return time.Unix(int64(sec), 0)
}

// masterKey reads the store's master secret once and keeps it; a failed
// read is retried on the next call, so a store unreachable at start does
// not stop the proxy from minting later.
type masterKey struct {
	ks  KeyStore
	mu  sync.Mutex
	key atomic.Pointer[[]byte]
}

func (m *masterKey) get(ctx context.Context) ([]byte, error) {
	if k := m.key.Load(); k != nil {
		return *k, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if k := m.key.Load(); k != nil {
		return *k, nil
	}
	k, err := m.ks.MasterKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	if len(k) < MasterKeySize {
		return nil, errors.New("master key: the store returned a key shorter than MasterKeySize")
	}
	m.key.Store(&k)
	return k, nil
}
