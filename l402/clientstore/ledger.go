package clientstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

// Begin implements l402.Ledger: in one transaction it checks the budgets
// and, when the payment fits, reserves its amount plus fee limit in every
// running sum, writes the payment as pending and logs it.
func (s *Store) Begin(_ context.Context, p l402.PaymentIntent) (l402.LedgerEntry, error) {
	now := s.now()
	hostname, _ := os.Hostname()
	rec := PendingRecord{
		PaymentIntent: p, Reserved: p.Amount + p.MaxFee, Counters: counters(p.Host, now),
		PID: os.Getpid(), Hostname: hostname, Started: now,
	}
	hashKey := []byte(p.PaymentHash.String())
	err := s.update(func(tx *bolt.Tx) error {
		pending, cb := tx.Bucket(bucketPending), tx.Bucket(bucketCounters)
		if pending.Get(hashKey) != nil {
			return fmt.Errorf("%w: payment %s is already pending in %s", l402.ErrBadChallenge, p.PaymentHash, s.path)
		}
		if err := l402.CheckBudgets(s.budgets, p.Host, now, rec.Reserved, func(k string) backend.MilliSat {
			return getCounter(cb, k)
		}); err != nil {
			return err
		}
		if err := addCounters(cb, rec.Counters, rec.Reserved); err != nil {
			return err
		}
		spend := tx.Bucket(bucketSpend)
		seq, err := spend.NextSequence()
		if err != nil {
			return err
		}
		rec.Seq = seq
		if err := putJSON(spend, seqKey(seq), SpendRecord{
			Seq: seq, Time: now, Host: p.Host, URL: p.URL, Amount: p.Amount,
			PaymentHash: p.PaymentHash, Scheme: p.Scheme, Outcome: OutcomePending,
		}); err != nil {
			return err
		}
		return putJSON(pending, hashKey, rec)
	})
	if err != nil {
		return nil, err
	}
	return &entry{s: s, hash: p.PaymentHash}, nil
}

// Check says whether a payment of p would fit the budgets now, without
// reserving anything: a dry run. It returns a *l402.BudgetError when not.
func (s *Store) Check(p l402.PaymentIntent) error {
	now := s.now()
	return s.view(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketCounters)
		return l402.CheckBudgets(s.budgets, p.Host, now, p.Amount+p.MaxFee, func(k string) backend.MilliSat {
			return getCounter(cb, k)
		})
	})
}

type entry struct {
	s    *Store
	hash backend.PaymentHash
}

func (e *entry) Paid(_ context.Context, tok *l402.Token, r l402.Receipt) error {
	return e.s.complete(e.hash, tok, &r.Preimage, r.Amount, r.Fee, OutcomePaid)
}

func (e *entry) Failed(_ context.Context, err error) error {
	return e.s.fail(e.hash, err)
}

// complete records the pending payment hash as paid: its spend entry, its
// running sums adjusted from the reservation to what was paid, its token.
func (s *Store) complete(hash backend.PaymentHash, tok *l402.Token, preimage *backend.Preimage, amount, fee backend.MilliSat, outcome string) error {
	return s.update(func(tx *bolt.Tx) error {
		rec, err := getPending(tx, hash)
		if err != nil {
			return err
		}
		if amount == 0 {
			amount = rec.Amount
		}
		if err := addCounters(tx.Bucket(bucketCounters), rec.Counters, amount+fee-rec.Reserved); err != nil {
			return err
		}
		if err := updateSpend(tx, rec.Seq, func(sr *SpendRecord) {
			sr.Amount, sr.Fee, sr.Outcome, sr.Error = amount, fee, outcome, ""
			switch {
			case tok != nil:
				sr.Preimage = tok.Preimage.String()
			case preimage != nil:
				sr.Preimage = preimage.String()
			}
		}); err != nil {
			return err
		}
		if tok == nil {
			// A Payment charge buys one request, no token to keep.
			return tx.Bucket(bucketPending).Delete([]byte(hash.String()))
		}
		if err := putJSON(tx.Bucket(bucketTokens), []byte(rec.Key), TokenRecord{
			Key: rec.Key, Origin: rec.Origin, Authorization: tok.Authorization(), PaymentHash: hash,
			Scheme: rec.Scheme, Amount: amount, Fee: fee, PaidAt: s.now(),
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketPending).Delete([]byte(hash.String()))
	})
}

// didNotPay reports whether a payment error says no money left: refused,
// or never started (see backend.Payer).
func didNotPay(err error) bool {
	switch backend.Kind(err) {
	case backend.ErrPaymentFailed, backend.ErrInvalid, backend.ErrUnsupported, backend.ErrUnavailable, backend.ErrClosed, backend.ErrNotFound:
		return true
	}
	return false
}

// fail records how a pending payment ended without a token: failed (its
// reservation released, its pending record dropped) or unknown (kept, so
// it keeps counting and Recover can resolve it).
func (s *Store) fail(hash backend.PaymentHash, payErr error) error {
	return s.update(func(tx *bolt.Tx) error {
		rec, err := getPending(tx, hash)
		if err != nil {
			return err
		}
		if !didNotPay(payErr) {
			rec.Unknown = true
			if err := updateSpend(tx, rec.Seq, func(sr *SpendRecord) {
				sr.Outcome, sr.Error = OutcomeUnknown, payErr.Error()
			}); err != nil {
				return err
			}
			return putJSON(tx.Bucket(bucketPending), []byte(hash.String()), rec)
		}
		if err := addCounters(tx.Bucket(bucketCounters), rec.Counters, -rec.Reserved); err != nil {
			return err
		}
		if err := updateSpend(tx, rec.Seq, func(sr *SpendRecord) {
			sr.Outcome, sr.Error = OutcomeFailed, payErr.Error()
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketPending).Delete([]byte(hash.String()))
	})
}

var errNotPending = errors.New("clientstore: no such pending payment")

func getPending(tx *bolt.Tx, hash backend.PaymentHash) (*PendingRecord, error) {
	v := tx.Bucket(bucketPending).Get([]byte(hash.String()))
	if v == nil {
		return nil, fmt.Errorf("%w: %s", errNotPending, hash)
	}
	var rec PendingRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("clientstore: pending %s: %w", hash, err)
	}
	return &rec, nil
}

func updateSpend(tx *bolt.Tx, seq uint64, fn func(*SpendRecord)) error {
	b := tx.Bucket(bucketSpend)
	var sr SpendRecord
	if v := b.Get(seqKey(seq)); v != nil {
		if err := json.Unmarshal(v, &sr); err != nil {
			return fmt.Errorf("clientstore: spend %d: %w", seq, err)
		}
	}
	fn(&sr)
	return putJSON(b, seqKey(seq), sr)
}

// Pending lists the payments started and not recorded as ended.
func (s *Store) Pending() ([]PendingRecord, error) {
	var out []PendingRecord
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPending).ForEach(func(k, v []byte) error {
			var rec PendingRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("clientstore: pending %s: %w", k, err)
			}
			out = append(out, rec)
			return nil
		})
	})
	return out, err
}

// Spends lists the spend log from since on (all of it for the zero time),
// oldest first.
func (s *Store) Spends(since time.Time) ([]SpendRecord, error) {
	var out []SpendRecord
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSpend).ForEach(func(k, v []byte) error {
			var rec SpendRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("clientstore: spend %x: %w", k, err)
			}
			if !rec.Time.Before(since) {
				out = append(out, rec)
			}
			return nil
		})
	})
	return out, err
}
