package boltstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/l402kit/l402kit/proxy"
)

var (
	bBalances     = []byte("balances")      // account -> balanceRec
	bTokens       = []byte("ledger_tokens") // token id -> tokenRec (its link and whether it was credited)
	bReservations = []byte("reservations")  // reservation id -> reservationRec
)

type balanceRec struct {
	Route    string `json:"r"`
	Credited int64  `json:"c"`
	Debited  int64  `json:"d"`
	Reserved int64  `json:"h"`
	Expires  int64  `json:"e,omitempty"`
}

type tokenRec struct {
	Account  []byte `json:"a"`
	Credited bool   `json:"c,omitempty"`
	Expires  int64  `json:"e,omitempty"`
}

type reservationRec struct {
	Account []byte `json:"a"`
	Units   int64  `json:"u"`
	Owner   string `json:"o"`
	At      int64  `json:"t"`
}

func getJSON(b *bolt.Bucket, k []byte, v any) (bool, error) {
	raw := b.Get(k)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("boltstore: record %x: %w", k, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, raw)
}

func (r balanceRec) balance(account []byte) proxy.Balance {
	b := proxy.Balance{Route: r.Route, Credited: r.Credited, Debited: r.Debited, Reserved: r.Reserved, Expires: fromUnix(r.Expires)}
	copy(b.Account[:], account)
	return b
}

func (r reservationRec) reservation(id []byte) proxy.Reservation {
	res := proxy.Reservation{Units: r.Units, Owner: r.Owner, At: fromUnix(r.At)}
	copy(res.ID[:], id)
	copy(res.Account[:], r.Account)
	return res
}

// Link implements proxy.Ledger.
func (s *Store) Link(ctx context.Context, token, account proxy.AccountID, expires time.Time) error {
	return s.batch(ctx, func(tx *bolt.Tx) error {
		tb := tx.Bucket(bTokens)
		if tb.Get(token[:]) != nil {
			return proxy.ErrRecordExists
		}
		if tx.Bucket(bBalances).Get(account[:]) == nil {
			return proxy.ErrNoRecord
		}
		return putJSON(tb, token[:], tokenRec{Account: account[:], Expires: unix(expires)})
	})
}

// Credit implements proxy.Ledger.
func (s *Store) Credit(ctx context.Context, c proxy.Credit) (proxy.Balance, bool, error) {
	var (
		out proxy.Balance
		now bool
	)
	err := s.batch(ctx, func(tx *bolt.Tx) error {
		out, now = proxy.Balance{}, false
		tb, bb := tx.Bucket(bTokens), tx.Bucket(bBalances)
		tk := tokenRec{Account: c.Token[:]}
		if _, err := getJSON(tb, c.Token[:], &tk); err != nil {
			return err
		}
		var rec balanceRec
		found, err := getJSON(bb, tk.Account, &rec)
		if err != nil {
			return err
		}
		if tk.Credited {
			if !found {
				return proxy.ErrNoRecord
			}
			out = rec.balance(tk.Account)
			return nil
		}
		if !found {
			rec = balanceRec{Route: c.Route, Expires: unix(c.Expires)}
		}
		rec.Credited += c.Units
		rec.Expires = unix(proxy.LaterExpiry(fromUnix(rec.Expires), c.Expires))
		if err := putJSON(bb, tk.Account, rec); err != nil {
			return err
		}
		tk.Credited, tk.Expires = true, unix(c.Expires)
		if err := putJSON(tb, c.Token[:], tk); err != nil {
			return err
		}
		out, now = rec.balance(tk.Account), true
		return nil
	})
	return out, now, err
}

// Reserve implements proxy.Ledger.
func (s *Store) Reserve(ctx context.Context, r proxy.Reservation) (proxy.Balance, error) {
	var out proxy.Balance
	err := s.batch(ctx, func(tx *bolt.Tx) error {
		out = proxy.Balance{}
		bb, rb := tx.Bucket(bBalances), tx.Bucket(bReservations)
		var rec balanceRec
		found, err := getJSON(bb, r.Account[:], &rec)
		if err != nil {
			return err
		}
		if !found || rec.Expires != 0 && r.At.UnixNano() >= rec.Expires {
			return proxy.ErrNoRecord
		}
		if b := rec.balance(r.Account[:]); b.Available() < r.Units {
			out = b
			return proxy.ErrInsufficient
		}
		if rb.Get(r.ID[:]) != nil {
			return proxy.ErrRecordExists
		}
		rec.Reserved += r.Units
		if err := putJSON(bb, r.Account[:], rec); err != nil {
			return err
		}
		out = rec.balance(r.Account[:])
		return putJSON(rb, r.ID[:], reservationRec{Account: r.Account[:], Units: r.Units, Owner: r.Owner, At: unix(r.At)})
	})
	return out, err
}

// Settle implements proxy.Ledger.
func (s *Store) Settle(ctx context.Context, id proxy.ReservationID, used int64) (proxy.Settlement, error) {
	var out proxy.Settlement
	err := s.batch(ctx, func(tx *bolt.Tx) error {
		out = proxy.Settlement{}
		bb, rb := tx.Bucket(bBalances), tx.Bucket(bReservations)
		var r reservationRec
		found, err := getJSON(rb, id[:], &r)
		if err != nil {
			return err
		}
		var rec balanceRec
		if found {
			found, err = getJSON(bb, r.Account, &rec)
			if err != nil {
				return err
			}
		}
		if !found {
			return proxy.ErrNoRecord
		}
		charge := proxy.SettleCharge(rec.balance(r.Account).Available(), r.Units, used)
		rec.Reserved -= r.Units
		rec.Debited += charge
		if err := putJSON(bb, r.Account, rec); err != nil {
			return err
		}
		out = proxy.Settlement{Balance: rec.balance(r.Account), Charged: charge, Forgiven: used - charge}
		return rb.Delete(id[:])
	})
	return out, err
}

// Balance implements proxy.Ledger.
func (s *Store) Balance(ctx context.Context, account proxy.AccountID) (proxy.Balance, error) {
	var out proxy.Balance
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var rec balanceRec
		found, err := getJSON(tx.Bucket(bBalances), account[:], &rec)
		if err != nil {
			return err
		}
		if !found {
			return proxy.ErrNoRecord
		}
		out = rec.balance(account[:])
		return nil
	})
	return out, err
}

// Drain implements proxy.Ledger.
func (s *Store) Drain(ctx context.Context, account proxy.AccountID) (proxy.Balance, int64, error) {
	var (
		out proxy.Balance
		n   int64
	)
	err := s.batch(ctx, func(tx *bolt.Tx) error {
		out, n = proxy.Balance{}, 0
		bb := tx.Bucket(bBalances)
		var rec balanceRec
		found, err := getJSON(bb, account[:], &rec)
		if err != nil {
			return err
		}
		if !found {
			return proxy.ErrNoRecord
		}
		n = max(rec.balance(account[:]).Available(), 0)
		rec.Debited += n
		out = rec.balance(account[:])
		return putJSON(bb, account[:], rec)
	})
	return out, n, err
}

// StaleReservations implements proxy.Ledger. Reservations are bounded by
// the requests in flight, so a scan is cheap.
func (s *Store) StaleReservations(ctx context.Context, q proxy.StaleReservationQuery) ([]proxy.Reservation, error) {
	var out []proxy.Reservation
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bReservations).ForEach(func(k, v []byte) error {
			if len(out) >= q.Limit {
				return nil
			}
			var r reservationRec
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("boltstore: reservation %x: %w", k, err)
			}
			if res := r.reservation(k); q.Matches(res) {
				out = append(out, res)
			}
			return nil
		})
	})
	return out, err
}

// collectLedger deletes, in tx, balances expired before now with nothing
// reserved and token records past their time.
func collectLedger(tx *bolt.Tx, now time.Time) (int, error) {
	n := 0
	for _, name := range [][]byte{bBalances, bTokens} {
		var gone [][]byte
		err := tx.Bucket(name).ForEach(func(k, v []byte) error {
			var e struct {
				Reserved int64 `json:"h"`
				Expires  int64 `json:"e"`
			}
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("boltstore: record %x: %w", k, err)
			}
			if e.Expires != 0 && e.Expires < now.UnixNano() && e.Reserved == 0 {
				gone = append(gone, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		for _, k := range gone {
			if err := tx.Bucket(name).Delete(k); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
