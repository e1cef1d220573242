package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// The master secret the proxy derives root keys from lives in the meta
// bucket, made when the store is created (or first opened by a build that
// derives keys), in the same file as everything else: whoever can read the
// file can mint tokens, which is why the file is mode 0600 in a 0700
// directory. The revocation list is a bucket of token ids.
var (
	metaMaster = []byte("master")
	bRevoked   = []byte("revoked") // token id -> until (unix ns, 0 for ever)
)

// initMaster makes the master secret if the store has none yet.
func initMaster(tx *bolt.Tx) error {
	m := tx.Bucket(bMeta)
	if m == nil {
		return fmt.Errorf("no %s bucket", bMeta)
	}
	if m.Get(metaMaster) != nil {
		return nil
	}
	k, err := proxy.NewMasterKey()
	if err != nil {
		return err
	}
	return m.Put(metaMaster, k)
}

// checkMaster is the integrity check of the meta bucket's master secret.
func checkMaster(m *bolt.Bucket) error {
	if v := m.Get(metaMaster); v != nil && len(v) != proxy.MasterKeySize {
		return fmt.Errorf("master secret is %d bytes, want %d", len(v), proxy.MasterKeySize)
	}
	return nil
}

// MasterKey implements proxy.KeyStore.
func (s *Store) MasterKey(ctx context.Context) ([]byte, error) {
	var k []byte
	err := s.view(ctx, func(tx *bolt.Tx) error {
		k = bytes.Clone(tx.Bucket(bMeta).Get(metaMaster))
		return nil
	})
	if err == nil && len(k) != proxy.MasterKeySize {
		err = fmt.Errorf("boltstore: master secret missing or damaged (%d bytes)", len(k))
	}
	return k, err
}

// AddRevoked implements proxy.KeyStore.
func (s *Store) AddRevoked(ctx context.Context, until time.Time, ids ...l402.TokenID) error {
	if len(ids) == 0 {
		return nil
	}
	u := uint64(unix(until))
	return s.batch(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bRevoked)
		for _, id := range ids {
			if old := b.Get(id[:]); len(old) == 8 {
				if o := binary.BigEndian.Uint64(old); o == 0 || u != 0 && o > u {
					continue
				}
			}
			if err := b.Put(id[:], binary.BigEndian.AppendUint64(nil, u)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Revoked implements proxy.KeyStore.
func (s *Store) Revoked(ctx context.Context, id l402.TokenID) (bool, error) {
	var listed bool
	err := s.view(ctx, func(tx *bolt.Tx) error {
		listed = tx.Bucket(bRevoked).Get(id[:]) != nil
		return nil
	})
	return listed, err
}

// collectRevoked drops list entries whose tokens have expired by now.
func collectRevoked(tx *bolt.Tx, now time.Time) (int, error) {
	b := tx.Bucket(bRevoked)
	var ids [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if u := int64(binary.BigEndian.Uint64(v)); u != 0 && u < now.UnixNano() {
			ids = append(ids, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		if err := b.Delete(id); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// checkRevoked is the integrity check of a revocation list entry.
func checkRevoked(k, v []byte) error {
	if len(k) != len(l402.TokenID{}) || len(v) != 8 {
		return fmt.Errorf("revoked record %x: bad length", k)
	}
	return nil
}

var _ proxy.KeyStore = (*Store)(nil)

// ReplaceMasterKey replaces the store's master secret with a fresh one:
// every token whose root key was derived from the old one fails from then
// on, on every proxy that reads the new one (a running proxy keeps the
// secret it read until it restarts). It is the answer to a stolen secret.
func (s *Store) ReplaceMasterKey(ctx context.Context) error {
	k, err := proxy.NewMasterKey()
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(metaMaster, k) })
}
