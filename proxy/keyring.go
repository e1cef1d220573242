package proxy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/l402kit/l402kit/l402"
)

// keyring is the verifier's root key source: the Store behind an in-process
// cache, so that a token seen before is verified without asking the store.
// An entry is trusted for ttl; after that the store is asked again, which is
// how a token revoked through another proxy sharing the store stops working
// here. Tokens the store does not know are not cached: another proxy may
// have just minted them.
//
// On a KeyStore a token id the store has no record of gets the key derived
// from the master secret, unless the id is on the revocation list; one it
// has a record of (minted with a stored key, before keys were derived or
// with Config.StoredRootKeys) keeps its stored key. A token minted with a
// stored key whose record is gone gets a derived key that is not the one it
// was signed with, so it fails as it did before.
type keyring struct {
	store    Store
	keys     KeyStore   // nil when the store keeps no master secret
	master   *masterKey // nil with keys
	ttl      time.Duration
	perShard int
	shards   [16]keyShard
}

type keyShard struct {
	mu sync.RWMutex
	m  map[l402.TokenID]*cachedKey
}

type cachedKey struct {
	key          []byte
	tokenExpires time.Time
	fetched      time.Time
	// paid: the record is marked paid, or there is no record (a
	// derived key) to mark. Guarded by the shard's lock.
	paid bool
}

func newKeyring(store Store, ttl time.Duration, entries int) *keyring {
	k := &keyring{store: store, ttl: ttl, perShard: max(1, entries/16)}
	if ks, ok := store.(KeyStore); ok {
		k.keys, k.master = ks, &masterKey{ks: ks}
	}
	for i := range k.shards {
		k.shards[i].m = make(map[l402.TokenID]*cachedKey)
	}
	return k
}

func (k *keyring) shard(id l402.TokenID) *keyShard { return &k.shards[id[0]&15] }

// entry returns the cached record of id, asking the store when there is none
// or it is older than ttl.
func (k *keyring) entry(ctx context.Context, id l402.TokenID) (*cachedKey, error) {
	s := k.shard(id)
	s.mu.RLock()
	e := s.m[id]
	s.mu.RUnlock()
	if e != nil && time.Since(e.fetched) < k.ttl {
		return e, nil
	}
	forget := func() (*cachedKey, error) {
		s.mu.Lock()
		delete(s.m, id)
		s.mu.Unlock()
		return nil, l402.ErrUnknownToken
	}
	if k.keys != nil {
		revoked, err := k.keys.Revoked(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("revocation list: %w", err)
		}
		if revoked {
			return forget()
		}
	}
	c, err := k.store.Token(ctx, id)
	switch {
	case err == nil:
		e = &cachedKey{key: c.RootKey, tokenExpires: c.TokenExpires, fetched: time.Now(), paid: c.Paid}
	case errors.Is(err, ErrNoRecord) && k.keys != nil:
		master, err := k.master.get(ctx)
		if err != nil {
			return nil, err
		}
		e = &cachedKey{key: deriveRootKey(master, id), tokenExpires: derivedExpiry(id), fetched: time.Now(), paid: true}
	case errors.Is(err, ErrNoRecord):
		return forget()
	default:
		return nil, err
	}
	s.mu.Lock()
	if len(s.m) >= k.perShard {
		// Crude but bounded: a dropped entry costs one store read.
		clear(s.m)
	}
	s.m[id] = e
	s.mu.Unlock()
	return e, nil
}

// RootKey implements l402.RootKeySource, all the verifier asks of it.
func (k *keyring) RootKey(ctx context.Context, id l402.TokenID) ([]byte, error) {
	e, err := k.entry(ctx, id)
	if err != nil {
		return nil, err
	}
	return e.key, nil
}

// Revoke puts id on the store's revocation list (on a KeyStore), deletes
// its record and drops it from the cache, so its tokens fail here at once.
// The list keeps id until its token would have expired anyway.
func (k *keyring) Revoke(ctx context.Context, id l402.TokenID) error {
	if k.keys != nil {
		var until time.Time
		c, err := k.store.Token(ctx, id)
		switch {
		case err == nil:
			until = c.TokenExpires
		case errors.Is(err, ErrNoRecord):
			until = derivedExpiry(id)
		default:
			return err
		}
		if !until.IsZero() {
			until = until.Add(time.Second)
		}
		if err := k.keys.AddRevoked(ctx, until, id); err != nil {
			return err
		}
	}
	if err := k.store.Revoke(ctx, id); err != nil {
		return err
	}
	s := k.shard(id)
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
	return nil
}

// paid notes that a token verified with its preimage (or its payment is
// held), so its record outlives its invoice. The store is written once per
// token and cache entry; a failed write is retried on the next request and,
// failing that, the collector asks the node before dropping the record.
// It returns the token's expiry, zero for none.
func (k *keyring) paid(ctx context.Context, id l402.TokenID) (time.Time, error) {
	e, err := k.entry(ctx, id)
	if err != nil {
		return time.Time{}, err
	}
	s := k.shard(id)
	s.mu.RLock()
	done := e.paid
	s.mu.RUnlock()
	if done {
		return e.tokenExpires, nil
	}
	if err := k.store.MarkPaid(ctx, id); err != nil {
		return e.tokenExpires, fmt.Errorf("mark token paid: %w", err)
	}
	s.mu.Lock()
	e.paid = true
	s.mu.Unlock()
	return e.tokenExpires, nil
}
