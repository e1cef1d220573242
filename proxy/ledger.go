package proxy

import (
	"context"
	"errors"
	"time"
)

// ErrInsufficient: the balance cannot cover the units asked for (it is dry,
// or what is left is held by reservations of requests in flight).
var ErrInsufficient = errors.New("proxy: balance insufficient")

// AccountID names a prepaid balance. For L402 it is the token id of the
// token whose payment opened the balance; for a Payment session, the
// session's id. Tokens bought later as top-ups are linked to it.
type AccountID [32]byte

// ReservationID names one reservation: random, chosen by the proxy.
type ReservationID [16]byte

// Balance is a prepaid account: units credited by payments, units debited
// by settled requests, and units held by reservations of requests in
// flight.
type Balance struct {
	Account AccountID
	// Route is the route that sold the first credit; metrics count
	// credits and debits under it.
	Route    string
	Credited int64
	Debited  int64
	Reserved int64
	// Expires is when unused units stop being usable (and the record may
	// be collected once nothing is reserved); zero for never. A credit
	// extends it, never shortens it.
	Expires time.Time
}

// Available is what a new reservation may take: credited, less debited,
// less reserved. It can be below zero by at most one reservation (see
// Ledger.Settle).
func (b Balance) Available() int64 { return b.Credited - b.Debited - b.Reserved }

// Credit is the price of one paid token (or session deposit) in units.
type Credit struct {
	// Token is the token whose payment is being credited; each token is
	// credited once, whatever the number of calls or proxies.
	Token AccountID
	Units int64
	// Route is the route that sold it.
	Route string
	// Expires is when the balance may expire, zero for never; the
	// balance keeps the later of its own and this.
	Expires time.Time
}

// Reservation holds units of a balance for one request in flight, so that
// concurrent requests cannot spend the same units.
type Reservation struct {
	ID      ReservationID
	Account AccountID
	Units   int64
	// Owner names the proxy instance serving the request, At when it
	// reserved: the collector charges the reservations of a proxy that
	// died (its own at restart, anyone's after a timeout).
	Owner string
	At    time.Time
}

// Settlement is what Settle did: the balance after it, and how many units
// were debited.
type Settlement struct {
	Balance
	// Charged is the units debited.
	Charged int64
	// Forgiven is usage above what the negative bound let the ledger
	// charge (used - Charged).
	Forgiven int64
}

// StaleReservationQuery selects the reservations StaleReservations
// returns: those of Owner (when set) and those taken before Before.
type StaleReservationQuery struct {
	Owner  string
	Before time.Time
	Limit  int
}

// Matches reports whether r is selected by q; stores that filter in Go use
// it, so all of them agree.
func (q StaleReservationQuery) Matches(r Reservation) bool {
	return q.Owner != "" && r.Owner == q.Owner || r.At.Before(q.Before)
}

// Ledger keeps prepaid balances, one design for every credential that
// carries one (an L402 token of a bundle route, a Payment session). Each
// operation is atomic across every proxy sharing the store: a token is
// credited once, a reservation is granted only from units nobody else
// holds, and a reservation is settled once.
//
// The one way a balance goes below zero: a request whose reported usage is
// above its reservation is debited its usage, but never so much that the
// balance ends below minus that reservation; the rest is forgiven
// (Settlement.Forgiven). So a balance is never overdrawn by more than one
// reservation.
type Ledger interface {
	// Link records that the payment of token (a top-up bought by a holder
	// of account) is to be credited to account, not to a balance of its
	// own. expires is when an unpaid link may be forgotten.
	// ErrRecordExists when token is linked or credited already;
	// ErrNoRecord when account has no balance.
	Link(ctx context.Context, token, account AccountID, expires time.Time) error
	// Credit adds c.Units to the balance token is linked to (a balance
	// of its own, opened now, when it is linked to none), once per
	// token. It returns that balance and whether this call credited it.
	Credit(ctx context.Context, c Credit) (Balance, bool, error)
	// Reserve holds r.Units of r.Account's balance for one request if
	// that many are available at r.At and the balance has not expired;
	// ErrInsufficient (with the balance) when not, ErrNoRecord when
	// there is no such balance.
	Reserve(ctx context.Context, r Reservation) (Balance, error)
	// Settle ends a reservation and debits used units (zero releases
	// it): at most what leaves the balance at minus the reservation.
	// ErrNoRecord when the reservation is unknown or settled already.
	Settle(ctx context.Context, id ReservationID, used int64) (Settlement, error)
	// Balance reads an account: ErrNoRecord when there is none.
	Balance(ctx context.Context, account AccountID) (Balance, error)
	// Drain debits every available unit of an account at once and
	// returns how many it took, for a session closing with a refund:
	// of concurrent calls, one takes the units.
	Drain(ctx context.Context, account AccountID) (Balance, int64, error)
	// StaleReservations returns up to q.Limit reservations q selects,
	// for the collector to settle at their full units.
	StaleReservations(ctx context.Context, q StaleReservationQuery) ([]Reservation, error)
}

// SettleCharge is how many of used units a settlement debits from a
// balance whose available units are avail (this reservation of units still
// held): used, unless that would leave the balance below minus units.
// Stores use it so that all of them agree.
func SettleCharge(avail, units, used int64) int64 {
	charge := min(used, avail+2*units)
	return max(charge, 0)
}

// memLedger is MemoryStore's ledger, under MemoryStore.mu.
type memLedger struct {
	balances     map[AccountID]*Balance
	tokens       map[AccountID]*memToken
	reservations map[ReservationID]Reservation
}

type memToken struct {
	account  AccountID
	credited bool
	expires  time.Time
}

func (l *memLedger) init() {
	if l.balances == nil {
		l.balances = map[AccountID]*Balance{}
		l.tokens = map[AccountID]*memToken{}
		l.reservations = map[ReservationID]Reservation{}
	}
}

// LaterExpiry is the later of two balance expiries, zero meaning never.
func LaterExpiry(a, b time.Time) time.Time {
	if a.IsZero() || b.IsZero() {
		return time.Time{}
	}
	if b.After(a) {
		return b
	}
	return a
}

// Link implements Ledger.
func (s *MemoryStore) Link(_ context.Context, token, account AccountID, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ledger.init()
	if s.ledger.tokens[token] != nil {
		return ErrRecordExists
	}
	if s.ledger.balances[account] == nil {
		return ErrNoRecord
	}
	s.ledger.tokens[token] = &memToken{account: account, expires: expires}
	return nil
}

// Credit implements Ledger.
func (s *MemoryStore) Credit(_ context.Context, c Credit) (Balance, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ledger.init()
	tk := s.ledger.tokens[c.Token]
	if tk == nil {
		tk = &memToken{account: c.Token}
		s.ledger.tokens[c.Token] = tk
	}
	b := s.ledger.balances[tk.account]
	if tk.credited {
		if b == nil {
			return Balance{}, false, ErrNoRecord
		}
		return *b, false, nil
	}
	if b == nil {
		b = &Balance{Account: tk.account, Route: c.Route, Expires: c.Expires}
		s.ledger.balances[tk.account] = b
	}
	b.Credited += c.Units
	b.Expires = LaterExpiry(b.Expires, c.Expires)
	tk.credited, tk.expires = true, c.Expires
	return *b, true, nil
}

// Reserve implements Ledger.
func (s *MemoryStore) Reserve(_ context.Context, r Reservation) (Balance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ledger.init()
	b := s.ledger.balances[r.Account]
	switch {
	case b == nil || !b.Expires.IsZero() && !r.At.Before(b.Expires):
		return Balance{}, ErrNoRecord
	case b.Available() < r.Units:
		return *b, ErrInsufficient
	}
	if _, dup := s.ledger.reservations[r.ID]; dup {
		return Balance{}, ErrRecordExists
	}
	b.Reserved += r.Units
	s.ledger.reservations[r.ID] = r
	return *b, nil
}

// Settle implements Ledger.
func (s *MemoryStore) Settle(_ context.Context, id ReservationID, used int64) (Settlement, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ledger.init()
	r, ok := s.ledger.reservations[id]
	if !ok {
		return Settlement{}, ErrNoRecord
	}
	delete(s.ledger.reservations, id)
	b := s.ledger.balances[r.Account]
	if b == nil {
		return Settlement{}, ErrNoRecord
	}
	charge := SettleCharge(b.Available(), r.Units, used)
	b.Reserved -= r.Units
	b.Debited += charge
	return Settlement{Balance: *b, Charged: charge, Forgiven: used - charge}, nil
}

// Balance implements Ledger.
func (s *MemoryStore) Balance(_ context.Context, account AccountID) (Balance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ledger.init()
	b := s.ledger.balances[account]
	if b == nil {
		return Balance{}, ErrNoRecord
	}
	return *b, nil
}

// Drain implements Ledger.
func (s *MemoryStore) Drain(_ context.Context, account AccountID) (Balance, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ledger.init()
	b := s.ledger.balances[account]
	if b == nil {
		return Balance{}, 0, ErrNoRecord
	}
	n := max(b.Available(), 0)
	b.Debited += n
	return *b, n, nil
}

// StaleReservations implements Ledger.
func (s *MemoryStore) StaleReservations(_ context.Context, q StaleReservationQuery) ([]Reservation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Reservation
	for _, r := range s.ledger.reservations {
		if len(out) >= q.Limit {
			break
		}
		if q.Matches(r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// collect drops, under s.mu, balances expired before now with nothing
// reserved, and token records past their time.
func (l *memLedger) collect(now time.Time) int {
	n := 0
	for id, b := range l.balances {
		if !b.Expires.IsZero() && b.Expires.Before(now) && b.Reserved == 0 {
			delete(l.balances, id)
			n++
		}
	}
	for id, tk := range l.tokens {
		if !tk.expires.IsZero() && tk.expires.Before(now) {
			delete(l.tokens, id)
			n++
		}
	}
	return n
}
