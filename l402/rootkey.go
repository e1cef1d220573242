package l402

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
)

// RootKeySize is the size of the root keys NewMemoryRootKeyStore makes.
const RootKeySize = 32

// RootKeySource is what a Verifier needs: the root key of a token id. The
// verifier asks it on every request, so implementations should answer from
// memory (a shared store can sit behind an in-process cache, as long as
// revocation reaches it).
type RootKeySource interface {
	// RootKey returns the root key of id, or an error wrapping
	// ErrUnknownToken when there is none or it was revoked. Callers must
	// not modify the returned slice.
	RootKey(ctx context.Context, id TokenID) ([]byte, error)
}

// RootKeyStore holds one root key per token id: the source a Verifier reads
// and the keys a Minter makes.
type RootKeyStore interface {
	RootKeySource
	// NewRootKey makes a random root key for id, stores it and returns it.
	NewRootKey(ctx context.Context, id TokenID) ([]byte, error)
	// Revoke forgets the root key of id, so every token signed with it
	// fails verification from then on. Revoking an unknown id is not an
	// error.
	Revoke(ctx context.Context, id TokenID) error
}

// MemoryRootKeyStore is a RootKeyStore in process memory, safe for
// concurrent use. Its keys are lost when the process ends, and with them
// every token it signed.
type MemoryRootKeyStore struct {
	mu   sync.RWMutex
	keys map[TokenID]*[RootKeySize]byte
}

// NewMemoryRootKeyStore returns an empty store.
func NewMemoryRootKeyStore() *MemoryRootKeyStore {
	return &MemoryRootKeyStore{keys: make(map[TokenID]*[RootKeySize]byte)}
}

// NewRootKey implements RootKeyStore. A second key for the same id is
// refused: replacing it would silently invalidate the first token.
func (s *MemoryRootKeyStore) NewRootKey(ctx context.Context, id TokenID) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k := new([RootKeySize]byte)
	if _, err := rand.Read(k[:]); err != nil {
		return nil, fmt.Errorf("l402: root key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.keys[id]; dup {
		return nil, fmt.Errorf("l402: root key for token %s exists already", id)
	}
	s.keys[id] = k
	return k[:], nil
}

// RootKey implements RootKeyStore. The slice it returns is the stored key
// itself (keys are never changed in place, only dropped), which keeps
// verification free of copies.
func (s *MemoryRootKeyStore) RootKey(ctx context.Context, id TokenID) ([]byte, error) {
	s.mu.RLock()
	k := s.keys[id]
	s.mu.RUnlock()
	if k == nil {
		return nil, ErrUnknownToken
	}
	return k[:], nil
}

// Revoke implements RootKeyStore.
func (s *MemoryRootKeyStore) Revoke(ctx context.Context, id TokenID) error {
	s.mu.Lock()
	delete(s.keys, id)
	s.mu.Unlock()
	return nil
}

// Len returns the number of keys held, for metrics.
func (s *MemoryRootKeyStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.keys)
}
