package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/proxy"
)

// Spend implements proxy.Store.
func (s *Store) Spend(ctx context.Context, hash backend.PaymentHash, until time.Time) (bool, error) {
	var first bool
	err := s.batch(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bSpent)
		first = b.Get(hash[:]) == nil
		if !first {
			return nil
		}
		return b.Put(hash[:], binary.BigEndian.AppendUint64(nil, uint64(unix(until))))
	})
	return first, err
}

// Unspend implements proxy.Store.
func (s *Store) Unspend(ctx context.Context, hash backend.PaymentHash) error {
	return s.batch(ctx, func(tx *bolt.Tx) error { return tx.Bucket(bSpent).Delete(hash[:]) })
}

type holdRec struct {
	Preimage  []byte `json:"p"`
	Route     string `json:"r"`
	Client    string `json:"c"`
	Expires   int64  `json:"e"`
	ClaimedBy string `json:"cb,omitempty"`
	ClaimedAt int64  `json:"ca,omitempty"`
}

func encodeHold(h proxy.Hold) ([]byte, error) {
	return json.Marshal(holdRec{Preimage: h.Preimage[:], Route: h.Route, Client: h.Client, Expires: unix(h.Expires),
		ClaimedBy: h.ClaimedBy, ClaimedAt: unix(h.ClaimedAt)})
}

func decodeHold(v []byte) (proxy.Hold, error) {
	var r holdRec
	if err := json.Unmarshal(v, &r); err != nil {
		return proxy.Hold{}, fmt.Errorf("boltstore: hold record: %w", err)
	}
	h := proxy.Hold{Route: r.Route, Client: r.Client, Expires: fromUnix(r.Expires), ClaimedBy: r.ClaimedBy, ClaimedAt: fromUnix(r.ClaimedAt)}
	copy(h.Preimage[:], r.Preimage)
	return h, nil
}

// PutHold implements proxy.Store.
func (s *Store) PutHold(ctx context.Context, h proxy.Hold, max int) error {
	hash := h.Hash()
	v, err := encodeHold(h)
	if err != nil {
		return err
	}
	return s.batch(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bHolds)
		if b.Get(hash[:]) != nil {
			return proxy.ErrRecordExists
		}
		if b.Stats().KeyN >= max {
			return proxy.ErrHoldsFull
		}
		return b.Put(hash[:], v)
	})
}

// ClaimHold implements proxy.Store.
func (s *Store) ClaimHold(ctx context.Context, hash backend.PaymentHash, owner string, now time.Time) (proxy.Hold, error) {
	var h proxy.Hold
	err := s.batch(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bHolds)
		v := b.Get(hash[:])
		if v == nil {
			return proxy.ErrNoRecord
		}
		var err error
		if h, err = decodeHold(v); err != nil {
			return err
		}
		if h.ClaimedBy != "" {
			return proxy.ErrHoldClaimed
		}
		h.ClaimedBy, h.ClaimedAt = owner, now
		if v, err = encodeHold(h); err != nil {
			return err
		}
		return b.Put(hash[:], v)
	})
	return h, err
}

// ReleaseHold implements proxy.Store.
func (s *Store) ReleaseHold(ctx context.Context, hash backend.PaymentHash) error {
	return s.batch(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bHolds)
		v := b.Get(hash[:])
		if v == nil {
			return nil
		}
		h, err := decodeHold(v)
		if err != nil {
			return err
		}
		h.ClaimedBy, h.ClaimedAt = "", time.Time{}
		if v, err = encodeHold(h); err != nil {
			return err
		}
		return b.Put(hash[:], v)
	})
}

// DeleteHold implements proxy.Store.
func (s *Store) DeleteHold(ctx context.Context, hash backend.PaymentHash) error {
	return s.batch(ctx, func(tx *bolt.Tx) error { return tx.Bucket(bHolds).Delete(hash[:]) })
}

// StaleHolds implements proxy.Store. Holds are bounded by the proxy's
// MaxPendingHolds, so a scan is cheap.
func (s *Store) StaleHolds(ctx context.Context, q proxy.StaleHoldQuery) ([]proxy.Hold, error) {
	var out []proxy.Hold
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bHolds).ForEach(func(_, v []byte) error {
			if len(out) >= q.Limit {
				return nil
			}
			h, err := decodeHold(v)
			if err != nil {
				return err
			}
			if q.Matches(h) {
				out = append(out, h)
			}
			return nil
		})
	})
	return out, err
}

// CountHolds implements proxy.Store.
func (s *Store) CountHolds(ctx context.Context) (int, error) {
	var n int
	err := s.view(ctx, func(tx *bolt.Tx) error {
		n = tx.Bucket(bHolds).Stats().KeyN
		return nil
	})
	return n, err
}
