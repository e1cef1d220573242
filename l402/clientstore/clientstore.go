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
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
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

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, buf)
}
