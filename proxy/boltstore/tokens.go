package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

type challengeRec struct {
	RootKey        []byte `json:"k"`
	PaymentHash    []byte `json:"h"`
	Route          string `json:"r"`
	Client         string `json:"c"`
	InvoiceExpires int64  `json:"ie"`
	TokenExpires   int64  `json:"te,omitempty"`
	Paid           bool   `json:"p,omitempty"`
}

func encodeChallenge(c proxy.TokenRecord) ([]byte, error) {
	return json.Marshal(challengeRec{RootKey: c.RootKey, PaymentHash: c.PaymentHash[:], Route: c.Route, Client: c.Client,
		InvoiceExpires: unix(c.InvoiceExpires), TokenExpires: unix(c.TokenExpires), Paid: c.Paid})
}

func decodeChallenge(id, v []byte) (proxy.TokenRecord, error) {
	var r challengeRec
	if err := json.Unmarshal(v, &r); err != nil {
		return proxy.TokenRecord{}, fmt.Errorf("boltstore: token record %x: %w", id, err)
	}
	c := proxy.TokenRecord{RootKey: r.RootKey, Route: r.Route, Client: r.Client,
		InvoiceExpires: fromUnix(r.InvoiceExpires), TokenExpires: fromUnix(r.TokenExpires), Paid: r.Paid}
	copy(c.TokenID[:], id)
	copy(c.PaymentHash[:], r.PaymentHash)
	return c, nil
}

// PutToken implements proxy.Store.
func (s *Store) PutToken(ctx context.Context, c proxy.TokenRecord) error {
	v, err := encodeChallenge(c)
	if err != nil {
		return err
	}
	return s.batch(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bChallenges)
		if b.Get(c.TokenID[:]) != nil {
			return proxy.ErrRecordExists
		}
		if err := b.Put(c.TokenID[:], v); err != nil {
			return err
		}
		if c.Paid {
			return indexPaid(tx, c)
		}
		return tx.Bucket(bUnpaid).Put(timeKey(c.InvoiceExpires, c.TokenID[:]), nil)
	})
}

func indexPaid(tx *bolt.Tx, c proxy.TokenRecord) error {
	if c.TokenExpires.IsZero() {
		return nil
	}
	return tx.Bucket(bPaidExpiry).Put(timeKey(c.TokenExpires, c.TokenID[:]), nil)
}

// Token implements proxy.Store.
func (s *Store) Token(ctx context.Context, id l402.TokenID) (proxy.TokenRecord, error) {
	var c proxy.TokenRecord
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bChallenges).Get(id[:])
		if v == nil {
			return proxy.ErrNoRecord
		}
		var err error
		c, err = decodeChallenge(id[:], v)
		return err
	})
	return c, err
}

// MarkPaid implements proxy.Store.
func (s *Store) MarkPaid(ctx context.Context, id l402.TokenID) error {
	return s.batch(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bChallenges)
		v := b.Get(id[:])
		if v == nil {
			return proxy.ErrNoRecord
		}
		c, err := decodeChallenge(id[:], v)
		if err != nil || c.Paid {
			return err
		}
		c.Paid = true
		if v, err = encodeChallenge(c); err != nil {
			return err
		}
		if err := b.Put(id[:], v); err != nil {
			return err
		}
		if err := tx.Bucket(bUnpaid).Delete(timeKey(c.InvoiceExpires, id[:])); err != nil {
			return err
		}
		return indexPaid(tx, c)
	})
}

// Revoke implements proxy.Store.
func (s *Store) Revoke(ctx context.Context, ids ...l402.TokenID) error {
	return s.batch(ctx, func(tx *bolt.Tx) error {
		for _, id := range ids {
			if err := deleteChallenge(tx, id[:]); err != nil {
				return err
			}
		}
		return nil
	})
}

func deleteChallenge(tx *bolt.Tx, id []byte) error {
	b := tx.Bucket(bChallenges)
	v := b.Get(id)
	if v == nil {
		return nil
	}
	c, err := decodeChallenge(id, v)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bUnpaid).Delete(timeKey(c.InvoiceExpires, id)); err != nil {
		return err
	}
	if !c.TokenExpires.IsZero() {
		if err := tx.Bucket(bPaidExpiry).Delete(timeKey(c.TokenExpires, id)); err != nil {
			return err
		}
	}
	return b.Delete(id)
}

// ExpiredUnpaid implements proxy.Store.
func (s *Store) ExpiredUnpaid(ctx context.Context, now time.Time, limit int) ([]proxy.TokenRecord, error) {
	var out []proxy.TokenRecord
	err := s.view(ctx, func(tx *bolt.Tx) error {
		cb := tx.Bucket(bChallenges)
		cur := tx.Bucket(bUnpaid).Cursor()
		end := binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano()))
		for k, _ := cur.First(); k != nil && len(out) < limit && bytes.Compare(k[:8], end) < 0; k, _ = cur.Next() {
			id := k[8:]
			v := cb.Get(id)
			if v == nil {
				continue
			}
			c, err := decodeChallenge(id, v)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	return out, err
}
