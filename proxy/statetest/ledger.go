package statetest

import (
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l402kit/l402kit/proxy"
)

// ledgerCases are the contract of proxy.Ledger.
func ledgerCases(t *testing.T, h Harness) {
	t.Run("Ledger/CreditOnce", func(t *testing.T) { creditOnce(t, h.Open(t)) })
	t.Run("Ledger/TopUpLink", func(t *testing.T) { topUpLink(t, h.Open(t)) })
	t.Run("Ledger/ReserveSettle", func(t *testing.T) { reserveSettle(t, h.Open(t)) })
	t.Run("Ledger/NegativeBound", func(t *testing.T) { negativeBound(t, h.Open(t)) })
	t.Run("Ledger/Expiry", func(t *testing.T) { ledgerExpiry(t, h.Open(t)) })
	t.Run("Ledger/StaleReservations", func(t *testing.T) { staleReservations(t, h.Open(t)) })
	t.Run("Ledger/Drain", func(t *testing.T) { drain(t, h.Open(t)) })
	t.Run("Ledger/Concurrent", func(t *testing.T) {
		s := h.Open(t)
		ledgerConcurrent(t, s, s)
	})
	t.Run("Ledger/Durable", func(t *testing.T) {
		if h.Reopen == nil {
			t.Skip("this store does not outlive its process (no Reopen in the harness)")
		}
		ledgerDurable(t, h)
	})
	t.Run("Ledger/Shared", func(t *testing.T) {
		if h.Second == nil {
			t.Skip("this store cannot be shared between processes (no Second in the harness)")
		}
		a := h.Open(t)
		ledgerConcurrent(t, a, h.Second(t, a))
	})
}

func account(t *testing.T) proxy.AccountID { return proxy.AccountID(tokenID(t)) }

func reservation(t *testing.T, acc proxy.AccountID, units int64) proxy.Reservation {
	var id proxy.ReservationID
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatal(err)
	}
	return proxy.Reservation{ID: id, Account: acc, Units: units, Owner: "me", At: at}
}

func wantBalance(t *testing.T, b proxy.Balance, acc proxy.AccountID, credited, debited, reserved int64) {
	t.Helper()
	if b.Account != acc || b.Credited != credited || b.Debited != debited || b.Reserved != reserved {
		t.Fatalf("balance %x: credited %d debited %d reserved %d, want %x: %d %d %d",
			b.Account[:4], b.Credited, b.Debited, b.Reserved, acc[:4], credited, debited, reserved)
	}
}

func creditOnce(t *testing.T, s proxy.Store) {
	tok := account(t)
	if _, err := s.Balance(ctx, tok); !errors.Is(err, proxy.ErrNoRecord) {
		t.Fatalf("balance never credited: %v, want ErrNoRecord", err)
	}
	c := proxy.Credit{Token: tok, Units: 100, Route: "bundle", Expires: at.Add(time.Hour)}
	b, now, err := s.Credit(ctx, c)
	must(t, err)
	if !now {
		t.Fatal("first credit reported as done before")
	}
	wantBalance(t, b, tok, 100, 0, 0)
	if b.Route != "bundle" || !b.Expires.Equal(c.Expires) || b.Available() != 100 {
		t.Fatalf("balance %+v after crediting %+v", b, c)
	}
	b, now, err = s.Credit(ctx, c)
	must(t, err)
	if now {
		t.Fatal("a token was credited twice")
	}
	wantBalance(t, b, tok, 100, 0, 0)
	got, err := s.Balance(ctx, tok)
	must(t, err)
	if got != b {
		t.Fatalf("Balance %+v, Credit returned %+v", got, b)
	}
}

func topUpLink(t *testing.T, s proxy.Store) {
	first, topup := account(t), account(t)
	if err := s.Link(ctx, topup, first, at.Add(time.Hour)); !errors.Is(err, proxy.ErrNoRecord) {
		t.Fatalf("link to an account without balance: %v, want ErrNoRecord", err)
	}
	_, _, err := s.Credit(ctx, proxy.Credit{Token: first, Units: 10, Route: "bundle", Expires: at.Add(time.Hour)})
	must(t, err)
	must(t, s.Link(ctx, topup, first, at.Add(10*time.Minute)))
	if err := s.Link(ctx, topup, first, at.Add(time.Hour)); !errors.Is(err, proxy.ErrRecordExists) {
		t.Fatalf("second link of one token: %v, want ErrRecordExists", err)
	}
	if err := s.Link(ctx, first, first, at.Add(time.Hour)); !errors.Is(err, proxy.ErrRecordExists) {
		t.Fatalf("link of a token already credited: %v, want ErrRecordExists", err)
	}
	// Linked and paid later: the top-up goes to the first balance, once,
	// and extends its expiry.
	for range 2 {
		b, _, err := s.Credit(ctx, proxy.Credit{Token: topup, Units: 25, Route: "bundle", Expires: at.Add(2 * time.Hour)})
		must(t, err)
		wantBalance(t, b, first, 35, 0, 0)
		if !b.Expires.Equal(at.Add(2 * time.Hour)) {
			t.Fatalf("expiry after a later top-up: %v, want %v", b.Expires, at.Add(2*time.Hour))
		}
	}
	if _, err := s.Balance(ctx, topup); !errors.Is(err, proxy.ErrNoRecord) {
		t.Fatalf("a linked token got a balance of its own: %v", err)
	}
	// An earlier expiry never shortens the balance; zero makes it last.
	third := account(t)
	must(t, s.Link(ctx, third, first, time.Time{}))
	b, _, err := s.Credit(ctx, proxy.Credit{Token: third, Units: 1, Route: "bundle", Expires: at})
	must(t, err)
	if !b.Expires.Equal(at.Add(2 * time.Hour)) {
		t.Fatalf("an earlier expiry moved the balance's: %v", b.Expires)
	}
	fourth := account(t)
	must(t, s.Link(ctx, fourth, first, time.Time{}))
	b, _, err = s.Credit(ctx, proxy.Credit{Token: fourth, Units: 1, Route: "bundle"})
	must(t, err)
	if !b.Expires.IsZero() {
		t.Fatalf("a credit that never expires left the balance expiring at %v", b.Expires)
	}
}

func reserveSettle(t *testing.T, s proxy.Store) {
	acc := account(t)
	if _, err := s.Reserve(ctx, reservation(t, acc, 1)); !errors.Is(err, proxy.ErrNoRecord) {
		t.Fatalf("reserve on no balance: %v, want ErrNoRecord", err)
	}
	_, _, err := s.Credit(ctx, proxy.Credit{Token: acc, Units: 100, Route: "bundle"})
	must(t, err)
	r1 := reservation(t, acc, 30)
	b, err := s.Reserve(ctx, r1)
	must(t, err)
	wantBalance(t, b, acc, 100, 0, 30)
	if _, err := s.Reserve(ctx, r1); !errors.Is(err, proxy.ErrRecordExists) {
		t.Fatalf("reservation id reused: %v, want ErrRecordExists", err)
	}
	b, err = s.Reserve(ctx, reservation(t, acc, 71))
	if !errors.Is(err, proxy.ErrInsufficient) {
		t.Fatalf("reserve beyond the available units: %v, want ErrInsufficient", err)
	}
	wantBalance(t, b, acc, 100, 0, 30)
	r2 := reservation(t, acc, 70)
	_, err = s.Reserve(ctx, r2)
	must(t, err)
	st, err := s.Settle(ctx, r1.ID, 20)
	must(t, err)
	wantBalance(t, st.Balance, acc, 100, 20, 70)
	if st.Charged != 20 || st.Forgiven != 0 {
		t.Fatalf("settled 20 of 30 reserved: charged %d forgiven %d", st.Charged, st.Forgiven)
	}
	if _, err := s.Settle(ctx, r1.ID, 20); !errors.Is(err, proxy.ErrNoRecord) {
		t.Fatalf("second settle of one reservation: %v, want ErrNoRecord", err)
	}
	// Zero releases: nothing debited.
	st, err = s.Settle(ctx, r2.ID, 0)
	must(t, err)
	wantBalance(t, st.Balance, acc, 100, 20, 0)
	// Usage above the reservation is debited while the balance covers it.
	r3 := reservation(t, acc, 10)
	_, err = s.Reserve(ctx, r3)
	must(t, err)
	st, err = s.Settle(ctx, r3.ID, 50)
	must(t, err)
	if st.Charged != 50 || st.Available() != 30 {
		t.Fatalf("usage 50 over a reservation of 10 with 80 left: charged %d, available %d", st.Charged, st.Available())
	}
}

func negativeBound(t *testing.T, s proxy.Store) {
	acc := account(t)
	_, _, err := s.Credit(ctx, proxy.Credit{Token: acc, Units: 10, Route: "bundle"})
	must(t, err)
	r := reservation(t, acc, 10)
	_, err = s.Reserve(ctx, r)
	must(t, err)
	st, err := s.Settle(ctx, r.ID, 500)
	must(t, err)
	if st.Available() != -10 || st.Charged != 20 || st.Forgiven != 480 {
		t.Fatalf("usage 500 on 10 units reserved of 10: available %d charged %d forgiven %d; want -10 20 480",
			st.Available(), st.Charged, st.Forgiven)
	}
	if _, err := s.Reserve(ctx, reservation(t, acc, 1)); !errors.Is(err, proxy.ErrInsufficient) {
		t.Fatalf("reserve on an overdrawn balance: %v, want ErrInsufficient", err)
	}
	// A top-up pays the debt first.
	top := account(t)
	must(t, s.Link(ctx, top, acc, time.Time{}))
	b, _, err := s.Credit(ctx, proxy.Credit{Token: top, Units: 15, Route: "bundle"})
	must(t, err)
	if b.Available() != 5 {
		t.Fatalf("after a top-up of 15 on -10: %d available", b.Available())
	}
}

func ledgerExpiry(t *testing.T, s proxy.Store) {
	acc := account(t)
	_, _, err := s.Credit(ctx, proxy.Credit{Token: acc, Units: 10, Route: "bundle", Expires: at.Add(time.Minute)})
	must(t, err)
	late := reservation(t, acc, 1)
	late.At = at.Add(time.Minute)
	if _, err := s.Reserve(ctx, late); !errors.Is(err, proxy.ErrNoRecord) {
		t.Fatalf("reserve on an expired balance: %v, want ErrNoRecord", err)
	}
	held := reservation(t, acc, 3)
	_, err = s.Reserve(ctx, held)
	must(t, err)
	// Collection keeps a balance with units reserved, and its token.
	_, err = s.Collect(ctx, at.Add(time.Hour))
	must(t, err)
	if _, err := s.Balance(ctx, acc); err != nil {
		t.Fatalf("expired balance with a reservation was collected: %v", err)
	}
	_, err = s.Settle(ctx, held.ID, 3)
	must(t, err)
	_, err = s.Collect(ctx, at.Add(time.Hour))
	must(t, err)
	if _, err := s.Balance(ctx, acc); !errors.Is(err, proxy.ErrNoRecord) {
		t.Fatalf("expired balance after collection: %v, want ErrNoRecord", err)
	}
	// A balance that never expires stays.
	forever := account(t)
	_, _, err = s.Credit(ctx, proxy.Credit{Token: forever, Units: 1, Route: "bundle"})
	must(t, err)
	_, err = s.Collect(ctx, at.Add(1000*time.Hour))
	must(t, err)
	if _, err := s.Balance(ctx, forever); err != nil {
		t.Fatalf("balance without expiry was collected: %v", err)
	}
}

func staleReservations(t *testing.T, s proxy.Store) {
	acc := account(t)
	_, _, err := s.Credit(ctx, proxy.Credit{Token: acc, Units: 100, Route: "bundle"})
	must(t, err)
	mine, old, fresh := reservation(t, acc, 5), reservation(t, acc, 6), reservation(t, acc, 7)
	old.Owner, old.At = "other", at.Add(-time.Hour)
	fresh.Owner = "other"
	for _, r := range []proxy.Reservation{mine, old, fresh} {
		_, err := s.Reserve(ctx, r)
		must(t, err)
	}
	got, err := s.StaleReservations(ctx, proxy.StaleReservationQuery{Owner: "me", Before: at.Add(-time.Minute), Limit: 10})
	must(t, err)
	ids := map[proxy.ReservationID]proxy.Reservation{}
	for _, r := range got {
		ids[r.ID] = r
	}
	if len(got) != 2 || ids[mine.ID].Units != 5 || ids[old.ID].Units != 6 || ids[old.ID].Owner != "other" ||
		!ids[old.ID].At.Equal(old.At) || ids[old.ID].Account != acc {
		t.Fatalf("stale reservations %+v, want %x and %x", got, mine.ID, old.ID)
	}
	if got, err := s.StaleReservations(ctx, proxy.StaleReservationQuery{Before: at.Add(time.Minute), Limit: 2}); err != nil || len(got) != 2 {
		t.Fatalf("limit 2: %d reservations, %v", len(got), err)
	}
	// The collector charges what they held.
	for _, r := range got {
		_, err := s.Settle(ctx, r.ID, r.Units)
		must(t, err)
	}
	b, err := s.Balance(ctx, acc)
	must(t, err)
	wantBalance(t, b, acc, 100, 11, 7)
}

func drain(t *testing.T, s proxy.Store) {
	acc := account(t)
	if _, _, err := s.Drain(ctx, acc); !errors.Is(err, proxy.ErrNoRecord) {
		t.Fatalf("drain of no balance: %v", err)
	}
	_, _, err := s.Credit(ctx, proxy.Credit{Token: acc, Units: 100, Route: "session"})
	must(t, err)
	r := reservation(t, acc, 30)
	_, err = s.Reserve(ctx, r)
	must(t, err)
	b, n, err := s.Drain(ctx, acc)
	must(t, err)
	if n != 70 || b.Available() != 0 {
		t.Fatalf("drain with 30 reserved of 100: took %d, %d left", n, b.Available())
	}
	if _, n, err = s.Drain(ctx, acc); err != nil || n != 0 {
		t.Fatalf("second drain took %d (%v), want 0", n, err)
	}
	st, err := s.Settle(ctx, r.ID, 10)
	must(t, err)
	wantBalance(t, st.Balance, acc, 100, 80, 0)
}

// ledgerConcurrent runs 200 requests on one balance of 100 units from
// goroutines spread over a and b, as two proxies would: each reserves 1
// and settles to a usage of 1, or (every tenth) 3, the usage an upstream
// reports above the estimate. None is lost, none overdraws beyond the
// bound, and the units granted never exceed what was available.
func ledgerConcurrent(t *testing.T, a, b proxy.Store) {
	acc := account(t)
	_, _, err := a.Credit(ctx, proxy.Credit{Token: acc, Units: 100, Route: "bundle"})
	must(t, err)
	var (
		wg               sync.WaitGroup
		granted, charged atomic.Int64
		refused          atomic.Int64
	)
	for i := range 200 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			r := reservation(t, acc, 1)
			_, err := s.Reserve(ctx, r)
			if errors.Is(err, proxy.ErrInsufficient) {
				refused.Add(1)
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			granted.Add(1)
			used := int64(1)
			if i%10 == 0 {
				used = 3
			}
			st, err := s.Settle(ctx, r.ID, used)
			if err != nil {
				t.Error(err)
				return
			}
			charged.Add(st.Charged)
		})
	}
	wg.Wait()
	final, err := b.Balance(ctx, acc)
	must(t, err)
	if final.Reserved != 0 || final.Debited != charged.Load() {
		t.Fatalf("after 200 requests: reserved %d, debited %d, sum of charges %d: a debit was lost or doubled",
			final.Reserved, final.Debited, charged.Load())
	}
	if granted.Load()+refused.Load() != 200 || granted.Load() > 100 || granted.Load() == 0 {
		t.Fatalf("%d granted, %d refused of 200 on 100 units", granted.Load(), refused.Load())
	}
	if final.Available() < -1 {
		t.Fatalf("balance %d: overdrawn beyond one reservation (1 unit)", final.Available())
	}
}

func ledgerDurable(t *testing.T, h Harness) {
	s := h.Open(t)
	acc := account(t)
	_, _, err := s.Credit(ctx, proxy.Credit{Token: acc, Units: 50, Route: "bundle", Expires: at.Add(time.Hour)})
	must(t, err)
	top := account(t)
	must(t, s.Link(ctx, top, acc, at.Add(time.Hour)))
	r := reservation(t, acc, 7)
	_, err = s.Reserve(ctx, r)
	must(t, err)

	s = h.Reopen(t, s)
	b, err := s.Balance(ctx, acc)
	must(t, err)
	wantBalance(t, b, acc, 50, 0, 7)
	if b.Route != "bundle" || !b.Expires.Equal(at.Add(time.Hour)) {
		t.Fatalf("balance after reopen %+v", b)
	}
	got, err := s.StaleReservations(ctx, proxy.StaleReservationQuery{Owner: "me", Limit: 10})
	must(t, err)
	if len(got) != 1 || got[0].ID != r.ID {
		t.Fatalf("reservations after reopen: %+v", got)
	}
	st, err := s.Settle(ctx, r.ID, 7)
	must(t, err)
	wantBalance(t, st.Balance, acc, 50, 7, 0)
	b, _, err = s.Credit(ctx, proxy.Credit{Token: top, Units: 5, Route: "bundle"})
	must(t, err)
	wantBalance(t, b, acc, 55, 7, 0)
}
