package proxy

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

// Errors of a Store. Implementations return them, or errors wrapping them,
// so the proxy can tell a missing or contested record from a store that
// cannot answer (which it reports as 503).
var (
	// ErrNoRecord: no record under that key (never made, collected or
	// revoked).
	ErrNoRecord = errors.New("proxy: no such record")
	// ErrRecordExists: a record under that key exists already.
	ErrRecordExists = errors.New("proxy: record exists already")
	// ErrHoldClaimed: another request is using the held payment right now.
	ErrHoldClaimed = errors.New("proxy: held payment in use")
	// ErrHoldsFull: the bound on unresolved hold invoices is reached.
	ErrHoldsFull = errors.New("proxy: too many unresolved hold invoices")
)

// Store keeps what the proxy must not lose: the root key of every token it
// minted with a stored key (and the challenge that sold it; a KeyStore
// keeps instead one master secret the keys are derived from, and a list of
// revoked tokens), the payment hashes of single-use tokens already used,
// and the preimages of the hold invoices it issued. A
// proxy restarted over the same store keeps accepting the tokens it sold,
// and several proxies sharing one store accept each other's tokens and serve
// each single-use token once between them.
//
// The proxy reads root keys through an in-process cache, so a store is asked
// once per token and cache period, not on every request; Spend and ClaimHold
// are always asked, since only the store can make them atomic across
// proxies. Times are kept to the microsecond at least. Implementations must
// be safe for concurrent use. Package proxy/statetest checks an
// implementation against this contract.
type Store interface {
	// PutToken records a freshly minted token: its root key and what
	// it was sold for. ErrRecordExists when the token id is taken.
	PutToken(ctx context.Context, c TokenRecord) error
	// Token returns the record of a token id, or ErrNoRecord.
	Token(ctx context.Context, id l402.TokenID) (TokenRecord, error)
	// MarkPaid notes that the token's invoice was paid: from then on the
	// record lives until TokenExpires (for ever when zero) instead of
	// going with its invoice. ErrNoRecord when there is no record.
	MarkPaid(ctx context.Context, id l402.TokenID) error
	// Revoke deletes the records of token ids, so their tokens fail from
	// then on, in one write. Revoking an unknown id is not an error.
	Revoke(ctx context.Context, ids ...l402.TokenID) error
	// ExpiredUnpaid returns up to limit records not marked paid whose
	// invoices expired before now, for the proxy to check with its node:
	// an invoice paid at the last moment keeps its token, any other record
	// is revoked.
	ExpiredUnpaid(ctx context.Context, now time.Time, limit int) ([]TokenRecord, error)

	// Spend marks a single-use token's payment hash used until the given
	// time (zero: for ever) and reports whether it was unused before. Of
	// any number of concurrent calls for one hash, on any number of
	// proxies sharing the store, exactly one gets true.
	Spend(ctx context.Context, hash backend.PaymentHash, until time.Time) (bool, error)
	// Unspend forgets a spent hash, so a token whose request failed
	// upstream can be used again.
	Unspend(ctx context.Context, hash backend.PaymentHash) error

	// PutHold records the preimage of a hold invoice about to be created,
	// unless max records are held already (ErrHoldsFull). ErrRecordExists
	// when the hash is taken.
	PutHold(ctx context.Context, h Hold, max int) error
	// ClaimHold marks a hold in use by one request of proxy instance
	// owner, at time now, and returns it: ErrNoRecord when there is none,
	// ErrHoldClaimed when it is claimed already. Atomic across proxies.
	ClaimHold(ctx context.Context, hash backend.PaymentHash, owner string, now time.Time) (Hold, error)
	// ReleaseHold ends a claim without resolving the invoice, so the
	// hold can be claimed again.
	ReleaseHold(ctx context.Context, hash backend.PaymentHash) error
	// DeleteHold forgets a hold whose invoice was settled or canceled.
	// Deleting an unknown hash is not an error.
	DeleteHold(ctx context.Context, hash backend.PaymentHash) error
	// StaleHolds returns up to q.Limit holds that need resolving: those
	// not claimed whose invoices expired before q.ExpiredBefore, and those
	// claimed by q.Owner (when set) or claimed before q.ClaimedBefore.
	StaleHolds(ctx context.Context, q StaleHoldQuery) ([]Hold, error)
	// CountHolds returns how many holds are recorded.
	CountHolds(ctx context.Context) (int, error)

	// Ledger keeps the prepaid balances of bundle routes and sessions.
	Ledger

	// Collect deletes what can no longer matter at now: paid token records
	// past their TokenExpires, spent hashes past their time, balances
	// expired with nothing reserved and token links past their time. It
	// returns how many records went.
	Collect(ctx context.Context, now time.Time) (int, error)
	// Close releases the store's resources.
	Close() error
}

// TokenRecord is the record of one token minted with a stored root key
// (Config.StoredRootKeys, a Store that is no KeyStore, or a token sold
// before keys were derived).
type TokenRecord struct {
	TokenID     l402.TokenID
	RootKey     []byte
	PaymentHash backend.PaymentHash
	// Route is the name of the route that sold the token.
	Route string
	// Client is the address the challenge was issued to.
	Client string
	// InvoiceExpires is when the invoice stops being payable: an unpaid
	// record is collected after it.
	InvoiceExpires time.Time
	// TokenExpires is when the token stops granting anything (its
	// valid_until caveat); zero when it never does.
	TokenExpires time.Time
	// Paid is set once the invoice is known to be paid.
	Paid bool
}

// Hold is a hold invoice the proxy issued for a single-use token: its
// preimage, needed to settle it, and who is using it.
type Hold struct {
	Preimage backend.Preimage
	Route    string
	Client   string
	// Expires is the invoice's expiry: an unclaimed hold is canceled after
	// it, which returns a held payment to its payer.
	Expires time.Time
	// ClaimedBy names the proxy instance serving a request with the
	// token right now, empty while it is unused; ClaimedAt is when.
	ClaimedBy string
	ClaimedAt time.Time
}

// Hash is the hold invoice's payment hash.
func (h Hold) Hash() backend.PaymentHash { return h.Preimage.Hash() }

// StaleHoldQuery selects the holds StaleHolds returns.
type StaleHoldQuery struct {
	ExpiredBefore time.Time
	Owner         string
	ClaimedBefore time.Time
	Limit         int
}

// Matches reports whether h is selected by q; implementations that filter
// in Go use it, so all of them agree.
func (q StaleHoldQuery) Matches(h Hold) bool {
	if h.ClaimedBy == "" {
		return h.Expires.Before(q.ExpiredBefore)
	}
	return q.Owner != "" && h.ClaimedBy == q.Owner || h.ClaimedAt.Before(q.ClaimedBefore)
}

// MemoryStore is a Store in process memory, the default of Config: what it
// holds is lost when the process ends, with every token it sold. For tests
// and single-process programs that accept that.
type MemoryStore struct {
	mu      sync.Mutex
	master  []byte
	revoked map[l402.TokenID]time.Time
	tokens  map[l402.TokenID]*TokenRecord
	spent   map[backend.PaymentHash]time.Time
	holds   map[backend.PaymentHash]*Hold
	ledger  memLedger
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		revoked: map[l402.TokenID]time.Time{},
		tokens:  map[l402.TokenID]*TokenRecord{},
		spent:   map[backend.PaymentHash]time.Time{},
		holds:   map[backend.PaymentHash]*Hold{},
	}
}

// PutToken implements Store.
func (s *MemoryStore) PutToken(_ context.Context, c TokenRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.tokens[c.TokenID]; dup {
		return ErrRecordExists
	}
	c.RootKey = slices.Clone(c.RootKey)
	s.tokens[c.TokenID] = &c
	return nil
}

// Token implements Store.
func (s *MemoryStore) Token(_ context.Context, id l402.TokenID) (TokenRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.tokens[id]
	if c == nil {
		return TokenRecord{}, ErrNoRecord
	}
	out := *c
	out.RootKey = slices.Clone(c.RootKey)
	return out, nil
}

// MarkPaid implements Store.
func (s *MemoryStore) MarkPaid(_ context.Context, id l402.TokenID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.tokens[id]
	if c == nil {
		return ErrNoRecord
	}
	c.Paid = true
	return nil
}

// Revoke implements Store.
func (s *MemoryStore) Revoke(_ context.Context, ids ...l402.TokenID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.tokens, id)
	}
	return nil
}

// ExpiredUnpaid implements Store.
func (s *MemoryStore) ExpiredUnpaid(_ context.Context, now time.Time, limit int) ([]TokenRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []TokenRecord
	for _, c := range s.tokens {
		if len(out) >= limit {
			break
		}
		if !c.Paid && c.InvoiceExpires.Before(now) {
			cc := *c
			cc.RootKey = slices.Clone(c.RootKey)
			out = append(out, cc)
		}
	}
	return out, nil
}

// MasterKey implements KeyStore: a secret of this store's lifetime.
func (s *MemoryStore) MasterKey(context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.master == nil {
		k, err := NewMasterKey()
		if err != nil {
			return nil, err
		}
		s.master = k
	}
	return slices.Clone(s.master), nil
}

// AddRevoked implements KeyStore.
func (s *MemoryStore) AddRevoked(_ context.Context, until time.Time, ids ...l402.TokenID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if old, ok := s.revoked[id]; ok && (old.IsZero() || !until.IsZero() && old.After(until)) {
			continue
		}
		s.revoked[id] = until
	}
	return nil
}

// Revoked implements KeyStore.
func (s *MemoryStore) Revoked(_ context.Context, id l402.TokenID) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.revoked[id]
	return ok, nil
}

// Spend implements Store.
func (s *MemoryStore) Spend(_ context.Context, hash backend.PaymentHash, until time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, used := s.spent[hash]; used {
		return false, nil
	}
	s.spent[hash] = until
	return true, nil
}

// Unspend implements Store.
func (s *MemoryStore) Unspend(_ context.Context, hash backend.PaymentHash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.spent, hash)
	return nil
}

// PutHold implements Store.
func (s *MemoryStore) PutHold(_ context.Context, h Hold, max int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.holds[h.Hash()]; dup {
		return ErrRecordExists
	}
	if len(s.holds) >= max {
		return ErrHoldsFull
	}
	s.holds[h.Hash()] = &h
	return nil
}

// ClaimHold implements Store.
func (s *MemoryStore) ClaimHold(_ context.Context, hash backend.PaymentHash, owner string, now time.Time) (Hold, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.holds[hash]
	switch {
	case h == nil:
		return Hold{}, ErrNoRecord
	case h.ClaimedBy != "":
		return Hold{}, ErrHoldClaimed
	}
	h.ClaimedBy, h.ClaimedAt = owner, now
	return *h, nil
}

// ReleaseHold implements Store.
func (s *MemoryStore) ReleaseHold(_ context.Context, hash backend.PaymentHash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.holds[hash]; h != nil {
		h.ClaimedBy, h.ClaimedAt = "", time.Time{}
	}
	return nil
}

// DeleteHold implements Store.
func (s *MemoryStore) DeleteHold(_ context.Context, hash backend.PaymentHash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.holds, hash)
	return nil
}

// StaleHolds implements Store.
func (s *MemoryStore) StaleHolds(_ context.Context, q StaleHoldQuery) ([]Hold, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Hold
	for _, h := range s.holds {
		if len(out) >= q.Limit {
			break
		}
		if q.Matches(*h) {
			out = append(out, *h)
		}
	}
	return out, nil
}

// CountHolds implements Store.
func (s *MemoryStore) CountHolds(context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.holds), nil
}

// Collect implements Store.
func (s *MemoryStore) Collect(_ context.Context, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, c := range s.tokens {
		if c.Paid && !c.TokenExpires.IsZero() && c.TokenExpires.Before(now) {
			delete(s.tokens, id)
			n++
		}
	}
	for h, until := range s.spent {
		if !until.IsZero() && until.Before(now) {
			delete(s.spent, h)
			n++
		}
	}
	for id, until := range s.revoked {
		if !until.IsZero() && until.Before(now) {
			delete(s.revoked, id)
			n++
		}
	}
	n += s.ledger.collect(now)
	return n, nil
}

// Close implements Store.
func (s *MemoryStore) Close() error { return nil }

var _ KeyStore = (*MemoryStore)(nil)
