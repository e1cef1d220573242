// Package clientstore is the durable state of a paying L402 client, in one
// bbolt file: the tokens it bought (an l402.TokenCache), the budgets it
// spends under and the log of what it paid (an l402.Ledger). Programs that
// pay without a person watching (agents, scripts, several at once) share
// one store: every check and write is one transaction under the file's
// lock, so two processes cannot together spend past a budget.
//
// The file is opened for each transaction and closed after it, so that
// other processes can take their turn: bbolt locks the whole file while it
// is open. Transactions are short (no payment runs inside one), so a
// process waits for another only while that one reads or writes.
//
// A payment is written as pending, with its budgets reserved, before it
// starts, and completed when it ends. A process that dies mid-payment
// leaves it pending: it keeps counting against the budgets, nothing pays
// that challenge again, and Recover completes it later (with the token,
// when the payer can say what became of the payment, see PaymentFinder).
package clientstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

var (
	bucketTokens   = []byte("tokens")   // TokenCache key -> tokenRecord
	bucketPending  = []byte("pending")  // payment hash hex -> pendingRecord
	bucketCounters = []byte("counters") // l402.CounterKey -> int64 msat, big-endian
	bucketSpend    = []byte("spend")    // sequence, big-endian -> SpendRecord
)

// Spend log outcomes.
const (
	// OutcomePending: the payment was started and has not ended (or its
	// process died before it could record the end).
	OutcomePending = "pending"
	// OutcomePaid: paid; the token is in the store.
	OutcomePaid = "paid"
	// OutcomeFailed: it ended without paying, or never started.
	OutcomeFailed = "failed"
	// OutcomeUnknown: its fate is unknown (the payer said so, or the
	// request gave up); it keeps counting against the budgets.
	OutcomeUnknown = "unknown"
	// OutcomeRecovered: a payment left pending by a process that died,
	// found paid by Recover; the token is in the store.
	OutcomeRecovered = "recovered"
)

// DefaultLockTimeout is how long a transaction waits for other processes
// to release the file.
const DefaultLockTimeout = 30 * time.Second

// Store is a client's store file. Its methods are safe for concurrent use,
// by goroutines and by processes opening the same path.
type Store struct {
	path string
	// Budgets are checked before each payment (see Begin).
	budgets []l402.Budget
	now     func() time.Time
	timeout time.Duration

	// mu serializes this process's transactions: bbolt's file lock is
	// per open file, and waiting on it polls.
	mu sync.Mutex
}

// Options configure a Store.
type Options struct {
	// Budgets are checked before each payment.
	Budgets []l402.Budget
	// LockTimeout bounds the wait for other processes; zero means
	// DefaultLockTimeout.
	LockTimeout time.Duration
	// Now replaces time.Now, in tests.
	Now func() time.Time
}

// Open opens (creating it, mode 0600, and its directory, 0700) the store
// at path.
func Open(path string, o Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("clientstore: no path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("clientstore: %w", err)
	}
	s := &Store{path: path, budgets: o.Budgets, now: o.Now, timeout: o.LockTimeout}
	if s.now == nil {
		s.now = time.Now
	}
	if s.timeout <= 0 {
		s.timeout = DefaultLockTimeout
	}
	err := s.update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketTokens, bucketPending, bucketCounters, bucketSpend} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A file created by another tool, or copied, may be readable by
	// others: it holds paid tokens, which are bearer credentials.
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("clientstore: %w", err)
	}
	return s, nil
}

// Path returns the store's file.
func (s *Store) Path() string { return s.path }

// Budgets returns the budgets the store checks.
func (s *Store) Budgets() []l402.Budget { return append([]l402.Budget(nil), s.budgets...) }

func (s *Store) open(readOnly bool) (*bolt.DB, error) {
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: s.timeout, ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("clientstore: open %s: %w", s.path, err)
	}
	return db, nil
}

func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	db, err := s.open(false)
	if err != nil {
		return err
	}
	err = db.Update(fn)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("clientstore: close: %w", cerr)
	}
	return err
}

func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	db, err := s.open(true)
	if err != nil {
		return err
	}
	err = db.View(fn)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("clientstore: close: %w", cerr)
	}
	return err
}

// TokenRecord is a paid token as the store keeps it.
type TokenRecord struct {
	// Key is its TokenCache key: origin and path scope.
	Key    string `json:"key"`
	Origin string `json:"origin"`
	// Authorization is the header value presenting it (it holds the
	// preimage: a bearer credential).
	Authorization string              `json:"authorization"`
	PaymentHash   backend.PaymentHash `json:"payment_hash"`
	Scheme        string              `json:"scheme,omitempty"`
	Amount        backend.MilliSat    `json:"amount_msat"`
	Fee           backend.MilliSat    `json:"fee_msat"`
	PaidAt        time.Time           `json:"paid_at"`
}

// PendingRecord is a payment that was started and has not been recorded
// as ended.
type PendingRecord struct {
	l402.PaymentIntent
	// Reserved is what it counts against the budgets until it ends.
	Reserved backend.MilliSat `json:"reserved_msat"`
	Counters []string         `json:"counters"`
	Seq      uint64           `json:"seq"`
	// PID and Hostname name the process paying it; Started when.
	PID      int       `json:"pid"`
	Hostname string    `json:"hostname"`
	Started  time.Time `json:"started"`
	// Unknown says the paying process gave up on it with its fate unknown.
	Unknown bool `json:"unknown,omitempty"`
}

// SpendRecord is one payment in the spend log.
type SpendRecord struct {
	Seq         uint64              `json:"seq"`
	Time        time.Time           `json:"time"`
	Host        string              `json:"host"`
	URL         string              `json:"url"`
	Amount      backend.MilliSat    `json:"amount_msat"`
	Fee         backend.MilliSat    `json:"fee_msat"`
	PaymentHash backend.PaymentHash `json:"payment_hash"`
	// Preimage is set once paid.
	Preimage string `json:"preimage,omitempty"`
	Scheme   string `json:"scheme"`
	Outcome  string `json:"outcome"`
	// Error says why a payment failed or is unknown.
	Error string `json:"error,omitempty"`
}

// Spent is what a payment counts against budgets: nothing unless paid or
// possibly paid, amount and fee then.
func (r SpendRecord) Spent() backend.MilliSat {
	switch r.Outcome {
	case OutcomePaid, OutcomeRecovered, OutcomePending, OutcomeUnknown:
		return r.Amount + r.Fee
	}
	return 0
}

func seqKey(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}

func getCounter(b *bolt.Bucket, key string) backend.MilliSat {
	v := b.Get([]byte(key))
	if len(v) != 8 {
		return 0
	}
	return backend.MilliSat(int64(binary.BigEndian.Uint64(v)))
}

func addCounters(b *bolt.Bucket, keys []string, d backend.MilliSat) error {
	for _, k := range keys {
		n := getCounter(b, k) + d
		if n < 0 {
			n = 0
		}
		if err := b.Put([]byte(k), seqKey(uint64(n))); err != nil {
			return err
		}
	}
	return nil
}

// counters names every running sum a payment to host at t adds to: total
// and the host's, over every period, so that a budget set later counts
// what was paid before it.
func counters(host string, t time.Time) []string {
	keys := make([]string, 0, 2*len(l402.Periods))
	for _, p := range l402.Periods {
		keys = append(keys, l402.CounterKey("", p, t), l402.CounterKey(host, p, t))
	}
	return keys
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, buf)
}

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

// Get implements l402.TokenCache. A stored token that cannot be read is
// treated as absent.
func (s *Store) Get(key string) (*l402.Token, bool) {
	var auth string
	_ = s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTokens).Get([]byte(key))
		if v == nil {
			return nil
		}
		var rec TokenRecord
		if json.Unmarshal(v, &rec) == nil {
			auth = rec.Authorization
		}
		return nil
	})
	if auth == "" {
		return nil, false
	}
	tok, err := l402.RestoreToken(auth)
	if err != nil {
		return nil, false
	}
	return tok, true
}

// Put implements l402.TokenCache. A Transport puts a token after its
// Ledger entry recorded it; Put writes only a token the store does not
// hold already under key (one bought without the store as Ledger).
func (s *Store) Put(key string, tok *l402.Token) {
	auth := tok.Authorization()
	_ = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		if v := b.Get([]byte(key)); v != nil {
			var rec TokenRecord
			if json.Unmarshal(v, &rec) == nil && rec.Authorization == auth {
				return nil
			}
		}
		origin := key
		if u, err := url.Parse(key); err == nil {
			origin = l402.Origin(u)
		}
		return putJSON(b, []byte(key), TokenRecord{
			Key: key, Origin: origin, Authorization: auth, PaymentHash: tok.ID.PaymentHash, PaidAt: s.now(),
		})
	})
}

// Delete implements l402.TokenCache: a refused or expired token is
// dropped.
func (s *Store) Delete(key string) {
	_ = s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketTokens).Delete([]byte(key)) })
}

// Tokens lists the stored tokens, by key, dropping those past their
// validity.
func (s *Store) Tokens() ([]TokenRecord, error) {
	var out []TokenRecord
	var expired [][]byte
	now := s.now()
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			var rec TokenRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("clientstore: token %q: %w", k, err)
			}
			if tok, err := l402.RestoreToken(rec.Authorization); err == nil && l402.TokenExpired(tok, now) {
				expired = append(expired, bytes.Clone(k))
				return nil
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if len(expired) > 0 {
		err = s.update(func(tx *bolt.Tx) error {
			for _, k := range expired {
				if err := tx.Bucket(bucketTokens).Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return out, err
}

// RemoveToken deletes the token stored under key, or whose payment hash
// is key; it reports whether there was one.
func (s *Store) RemoveToken(key string) (bool, error) {
	found := false
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		if b.Get([]byte(key)) != nil {
			found = true
			return b.Delete([]byte(key))
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var rec TokenRecord
			if json.Unmarshal(v, &rec) == nil && rec.PaymentHash.String() == strings.ToLower(key) {
				found = true
				return b.Delete(k)
			}
		}
		return nil
	})
	return found, err
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

// BudgetState is a budget and what is left of it now.
type BudgetState struct {
	Budget l402.Budget `json:"-"`
	// Spec is the budget as ParseBudget reads it.
	Spec  string           `json:"budget"`
	Host  string           `json:"host,omitempty"`
	Limit backend.MilliSat `json:"limit_msat"`
	Spent backend.MilliSat `json:"spent_msat"`
	Left  backend.MilliSat `json:"left_msat"`
	// Resets is when its window ends (absent for life).
	Resets *time.Time `json:"resets,omitempty"`
}

// Remaining reports each budget's state now. A per-host budget ("*") is
// reported for each host paid in its window; host narrows the report to
// that host (and the total budgets).
func (s *Store) Remaining(host string) ([]BudgetState, error) {
	now := s.now()
	var out []BudgetState
	err := s.view(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketCounters)
		for _, b := range s.budgets {
			hosts := []string{b.Host}
			switch {
			case b.Host == "":
			case b.Host == "*" && host != "":
				hosts = []string{host}
			case b.Host == "*":
				hosts = hostsPaid(cb, b.Period, now)
			case host != "" && b.Host != host:
				continue
			}
			for _, h := range hosts {
				spent := getCounter(cb, b.Counter(h, now))
				st := BudgetState{Budget: b, Spec: b.String(), Limit: b.Limit, Spent: spent, Left: max(b.Limit-spent, 0)}
				if b.Host != "" {
					st.Host = h
				}
				if end := b.Period.End(now); !end.IsZero() {
					st.Resets = &end
				}
				out = append(out, st)
			}
		}
		return nil
	})
	return out, err
}

// hostsPaid lists the hosts with a running sum in the current window of p.
func hostsPaid(cb *bolt.Bucket, p l402.Period, now time.Time) []string {
	suffix := "|" + string(p) + "|" + p.Window(now)
	var hosts []string
	c := cb.Cursor()
	prefix := []byte("host=")
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if h, ok := strings.CutSuffix(string(k[len(prefix):]), suffix); ok && len(v) == 8 {
			hosts = append(hosts, h)
		}
	}
	sort.Strings(hosts)
	return hosts
}

// PaymentFinder is a payer that can say what became of a payment it made,
// by payment hash: the payment with its preimage when it completed, an
// error matching backend.ErrPaymentFailed or backend.ErrNotFound when it
// did not (and never will), any other error when that is not known yet.
type PaymentFinder interface {
	FindPayment(ctx context.Context, hash backend.PaymentHash) (*backend.Payment, error)
}

// Recover resolves the pending payments no live process is paying: those
// of a process on this host that is gone, past their deadline, or given
// up with their fate unknown. With a finder it asks what became of each:
// paid ones get their token stored (outcome "recovered"), failed ones
// release their reservation; the rest stay pending, counting against the
// budgets. It returns how many it resolved.
func (s *Store) Recover(ctx context.Context, finder PaymentFinder) (int, error) {
	if finder == nil {
		return 0, nil
	}
	pend, err := s.Pending()
	if err != nil {
		return 0, err
	}
	hostname, _ := os.Hostname()
	now := s.now()
	n := 0
	var errs []error
	for _, rec := range pend {
		if !rec.Unknown && now.Before(rec.Deadline) && (rec.Hostname != hostname || processAlive(rec.PID)) {
			continue // still being paid
		}
		p, ferr := finder.FindPayment(ctx, rec.PaymentHash)
		switch {
		case ferr == nil && p != nil && p.Preimage.Matches(rec.PaymentHash):
			var tok *l402.Token
			var err error
			if rec.Scheme != l402.SchemePayment { // a charge bought no token
				tok, err = rec.TokenFor(p.Preimage)
			}
			if err == nil {
				err = s.complete(rec.PaymentHash, tok, &p.Preimage, p.Amount, p.Fee, OutcomeRecovered)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		case ferr != nil && (errors.Is(ferr, backend.ErrPaymentFailed) || errors.Is(ferr, backend.ErrNotFound)):
			if err := s.fail(rec.PaymentHash, ferr); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}

// processAlive reports whether a process with this id runs on this host.
// A reused id reads as alive: the payment then waits for its deadline.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || !errors.Is(err, os.ErrProcessDone) && !errors.Is(err, syscall.ESRCH)
}
