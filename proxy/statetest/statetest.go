// Package statetest is the contract every proxy.Store passes: Run checks
// records, atomic spends and claims, the prepaid ledger (credits once per
// token, reservations that never grant units twice, the negative bound),
// collection, derived root keys and the revocation list (for a
// proxy.KeyStore), and, where the store offers
// them, durability across a reopen and sharing between two handles, as two
// proxy processes would have.
package statetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// Harness makes the stores under test.
type Harness struct {
	// Open returns a new, empty store, and closes it when the test ends
	// (t.Cleanup).
	Open func(t *testing.T) proxy.Store
	// Reopen closes s and opens the same state again, as a restarted
	// process would, closing the new store when the test ends; nil for
	// stores whose state ends with them.
	Reopen func(t *testing.T, s proxy.Store) proxy.Store
	// Second opens another handle onto the state of s, as a second proxy
	// process would; nil for stores that cannot be shared.
	Second func(t *testing.T, s proxy.Store) proxy.Store
	// Node returns the Lightning node of the cases that run a proxy over
	// the store (restarts, revocation across proxies): a Backend with hold
	// invoices that pays its own invoices, as memory.New gives, closed
	// when the test ends. Required.
	Node func(t *testing.T) *backend.Backend
}

// Run checks the store h makes against the proxy.Store contract.
func Run(t *testing.T, h Harness) {
	t.Run("Token/PutGet", func(t *testing.T) { tokenPutGet(t, h.Open(t)) })
	t.Run("Token/MarkPaidRevoke", func(t *testing.T) { tokenPaidRevoke(t, h.Open(t)) })
	t.Run("Token/ExpiredUnpaid", func(t *testing.T) { expiredUnpaid(t, h.Open(t)) })
	t.Run("Spend/Once", func(t *testing.T) { spendOnce(t, h.Open(t)) })
	t.Run("Spend/Concurrent", func(t *testing.T) {
		s := h.Open(t)
		spendConcurrent(t, s, s)
	})
	t.Run("Hold/ClaimRelease", func(t *testing.T) { holdClaim(t, h.Open(t)) })
	t.Run("Hold/ConcurrentClaims", func(t *testing.T) {
		s := h.Open(t)
		claimConcurrent(t, s, s)
	})
	t.Run("Hold/Bound", func(t *testing.T) { holdBound(t, h.Open(t)) })
	t.Run("Hold/Stale", func(t *testing.T) { holdStale(t, h.Open(t)) })
	t.Run("Collect", func(t *testing.T) { collect(t, h.Open(t)) })
	ledgerCases(t, h)
	keyCases(t, h)
	t.Run("Durable/Reopen", func(t *testing.T) {
		if h.Reopen == nil {
			t.Skip("this store does not outlive its process (no Reopen in the harness)")
		}
		durable(t, h)
	})
	if h.Reopen != nil {
		restartCases(t, h)
	} else {
		t.Run("Restart", func(t *testing.T) {
			t.Skip("this store does not outlive its process (no Reopen in the harness)")
		})
	}
	t.Run("Shared/RevokeReachesOtherProxy", func(t *testing.T) {
		a := h.Open(t)
		b := a // two proxies over one store, when it has no second handle
		if h.Second != nil {
			b = h.Second(t, a)
		}
		revokeAcross(t, h, a, b)
	})
	t.Run("Shared/TwoHandles", func(t *testing.T) {
		if h.Second == nil {
			t.Skip("this store cannot be shared between processes (no Second in the harness)")
		}
		a := h.Open(t)
		b := h.Second(t, a)
		shared(t, a, b)
	})
}

var ctx = context.Background()

// at is a fixed time in whole seconds, which every store keeps exactly.
var at = time.Unix(1_900_000_000, 0)

func tokenID(t *testing.T) l402.TokenID {
	var id l402.TokenID
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatal(err)
	}
	return id
}

func preimage(t *testing.T) backend.Preimage {
	p, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func challenge(t *testing.T) proxy.TokenRecord {
	key := make([]byte, l402.RootKeySize)
	rand.Read(key)
	return proxy.TokenRecord{
		TokenID: tokenID(t), RootKey: key, PaymentHash: preimage(t).Hash(),
		Route: "paid", Client: "192.0.2.7", InvoiceExpires: at.Add(10 * time.Minute), TokenExpires: at.Add(time.Hour),
	}
}

func sameChallenge(t *testing.T, got, want proxy.TokenRecord) {
	t.Helper()
	if got.TokenID != want.TokenID || !bytes.Equal(got.RootKey, want.RootKey) || got.PaymentHash != want.PaymentHash ||
		got.Route != want.Route || got.Client != want.Client || !got.InvoiceExpires.Equal(want.InvoiceExpires) ||
		!got.TokenExpires.Equal(want.TokenExpires) || got.Paid != want.Paid {
		t.Fatalf("token record:\n got %+v\nwant %+v", got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func tokenPutGet(t *testing.T, s proxy.Store) {
	c := challenge(t)
	must(t, s.PutToken(ctx, c))
	got, err := s.Token(ctx, c.TokenID)
	must(t, err)
	sameChallenge(t, got, c)
	if err := s.PutToken(ctx, c); !errors.Is(err, proxy.ErrRecordExists) {
		t.Fatalf("second PutToken for one token id: %v, want ErrRecordExists", err)
	}
	if _, err := s.Token(ctx, tokenID(t)); !errors.Is(err, proxy.ErrNoRecord) {
		t.Fatalf("unknown token id: %v, want ErrNoRecord", err)
	}
	// A token that never expires keeps a zero TokenExpires.
	forever := challenge(t)
	forever.TokenExpires = time.Time{}
	must(t, s.PutToken(ctx, forever))
	got, err = s.Token(ctx, forever.TokenID)
	must(t, err)
	sameChallenge(t, got, forever)
}

func tokenPaidRevoke(t *testing.T, s proxy.Store) {
	c := challenge(t)
	must(t, s.PutToken(ctx, c))
	must(t, s.MarkPaid(ctx, c.TokenID))
	must(t, s.MarkPaid(ctx, c.TokenID)) // twice changes nothing
	got, err := s.Token(ctx, c.TokenID)
	must(t, err)
	c.Paid = true
	sameChallenge(t, got, c)
	if err := s.MarkPaid(ctx, tokenID(t)); !errors.Is(err, proxy.ErrNoRecord) {
		t.Fatalf("MarkPaid of an unknown id: %v, want ErrNoRecord", err)
	}
	must(t, s.Revoke(ctx, c.TokenID))
	if _, err := s.Token(ctx, c.TokenID); !errors.Is(err, proxy.ErrNoRecord) {
		t.Fatalf("revoked token: %v, want ErrNoRecord", err)
	}
	must(t, s.Revoke(ctx, c.TokenID))
	must(t, s.Revoke(ctx, tokenID(t)))
	// Several in one call, unknown ones among them.
	x, y := challenge(t), challenge(t)
	must(t, s.PutToken(ctx, x))
	must(t, s.PutToken(ctx, y))
	must(t, s.Revoke(ctx, x.TokenID, tokenID(t), y.TokenID))
	for _, id := range []l402.TokenID{x.TokenID, y.TokenID} {
		if _, err := s.Token(ctx, id); !errors.Is(err, proxy.ErrNoRecord) {
			t.Fatalf("revoked together: %v, want ErrNoRecord", err)
		}
	}
	must(t, s.Revoke(ctx))
}

func expiredUnpaid(t *testing.T, s proxy.Store) {
	want := map[l402.TokenID]bool{}
	for i := range 5 {
		c := challenge(t)
		c.InvoiceExpires = at.Add(time.Duration(i) * time.Second)
		must(t, s.PutToken(ctx, c))
		want[c.TokenID] = true
	}
	paid := challenge(t)
	paid.InvoiceExpires = at
	must(t, s.PutToken(ctx, paid))
	must(t, s.MarkPaid(ctx, paid.TokenID))
	later := challenge(t)
	later.InvoiceExpires = at.Add(time.Minute)
	must(t, s.PutToken(ctx, later))

	got, err := s.ExpiredUnpaid(ctx, at.Add(10*time.Second), 100)
	must(t, err)
	if len(got) != len(want) {
		t.Fatalf("ExpiredUnpaid gave %d records, want %d", len(got), len(want))
	}
	for _, c := range got {
		if !want[c.TokenID] {
			t.Fatalf("ExpiredUnpaid gave %s, which is paid or not expired", c.TokenID)
		}
		if len(c.RootKey) != l402.RootKeySize || c.Route != "paid" {
			t.Fatalf("ExpiredUnpaid record incomplete: %+v", c)
		}
	}
	got, err = s.ExpiredUnpaid(ctx, at.Add(10*time.Second), 2)
	must(t, err)
	if len(got) != 2 {
		t.Fatalf("ExpiredUnpaid with limit 2 gave %d", len(got))
	}
	// Strictly before now: an invoice expiring at now is not expired yet.
	got, err = s.ExpiredUnpaid(ctx, at, 100)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("ExpiredUnpaid(at) gave %d records, want 0", len(got))
	}
}

func spendOnce(t *testing.T, s proxy.Store) {
	h := preimage(t).Hash()
	if ok, err := s.Spend(ctx, h, time.Time{}); err != nil || !ok {
		t.Fatalf("first spend: %v %v", ok, err)
	}
	if ok, err := s.Spend(ctx, h, time.Time{}); err != nil || ok {
		t.Fatalf("second spend: %v %v, want refused", ok, err)
	}
	must(t, s.Unspend(ctx, h))
	if ok, err := s.Spend(ctx, h, at); err != nil || !ok {
		t.Fatalf("spend after unspend: %v %v", ok, err)
	}
	must(t, s.Unspend(ctx, preimage(t).Hash()))
}

// spendConcurrent spends one hash from many goroutines spread over a and b:
// exactly one wins.
func spendConcurrent(t *testing.T, a, b proxy.Store) {
	h := preimage(t).Hash()
	var wins, fails atomic.Int32
	var wg sync.WaitGroup
	for i := range 64 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			ok, err := s.Spend(ctx, h, time.Time{})
			if err != nil {
				fails.Add(1)
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent spends of one hash succeeded, want exactly 1", wins.Load())
	}
}

func hold(t *testing.T) proxy.Hold {
	return proxy.Hold{Preimage: preimage(t), Route: "once", Client: "198.51.100.4", Expires: at.Add(10 * time.Minute)}
}

func holdClaim(t *testing.T, s proxy.Store) {
	h := hold(t)
	must(t, s.PutHold(ctx, h, 10))
	if err := s.PutHold(ctx, h, 10); !errors.Is(err, proxy.ErrRecordExists) {
		t.Fatalf("second PutHold: %v, want ErrRecordExists", err)
	}
	got, err := s.ClaimHold(ctx, h.Hash(), "a", at)
	must(t, err)
	if got.Preimage != h.Preimage || got.Route != h.Route || got.Client != h.Client || !got.Expires.Equal(h.Expires) || got.ClaimedBy != "a" || !got.ClaimedAt.Equal(at) {
		t.Fatalf("claimed hold %+v, put %+v", got, h)
	}
	if _, err := s.ClaimHold(ctx, h.Hash(), "b", at); !errors.Is(err, proxy.ErrHoldClaimed) {
		t.Fatalf("second claim: %v, want ErrHoldClaimed", err)
	}
	must(t, s.ReleaseHold(ctx, h.Hash()))
	if _, err := s.ClaimHold(ctx, h.Hash(), "b", at); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	must(t, s.DeleteHold(ctx, h.Hash()))
	if _, err := s.ClaimHold(ctx, h.Hash(), "b", at); !errors.Is(err, proxy.ErrNoRecord) {
		t.Fatalf("claim after delete: %v, want ErrNoRecord", err)
	}
	must(t, s.DeleteHold(ctx, h.Hash()))
	must(t, s.ReleaseHold(ctx, h.Hash()))
}

func claimConcurrent(t *testing.T, a, b proxy.Store) {
	h := hold(t)
	must(t, a.PutHold(ctx, h, 10))
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 64 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			_, err := s.ClaimHold(ctx, h.Hash(), "x", at)
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, proxy.ErrHoldClaimed):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent claims of one hold succeeded, want exactly 1", wins.Load())
	}
}

func holdBound(t *testing.T, s proxy.Store) {
	for range 3 {
		must(t, s.PutHold(ctx, hold(t), 3))
	}
	if err := s.PutHold(ctx, hold(t), 3); !errors.Is(err, proxy.ErrHoldsFull) {
		t.Fatalf("fourth hold under a bound of 3: %v, want ErrHoldsFull", err)
	}
	n, err := s.CountHolds(ctx)
	must(t, err)
	if n != 3 {
		t.Fatalf("CountHolds = %d, want 3", n)
	}
}

func holdStale(t *testing.T, s proxy.Store) {
	expired, live, mine, old, fresh := hold(t), hold(t), hold(t), hold(t), hold(t)
	expired.Expires = at.Add(-time.Second)
	for _, h := range []proxy.Hold{expired, live, mine, old, fresh} {
		must(t, s.PutHold(ctx, h, 100))
	}
	_, err := s.ClaimHold(ctx, mine.Hash(), "me", at)
	must(t, err)
	_, err = s.ClaimHold(ctx, old.Hash(), "other", at.Add(-time.Hour))
	must(t, err)
	_, err = s.ClaimHold(ctx, fresh.Hash(), "other", at)
	must(t, err)

	check := func(q proxy.StaleHoldQuery, want ...proxy.Hold) {
		t.Helper()
		got, err := s.StaleHolds(ctx, q)
		must(t, err)
		wantSet := map[backend.PaymentHash]bool{}
		for _, h := range want {
			wantSet[h.Hash()] = true
		}
		if len(got) != len(want) {
			t.Fatalf("StaleHolds(%+v) gave %d holds, want %d", q, len(got), len(want))
		}
		for _, h := range got {
			if !wantSet[h.Hash()] {
				t.Fatalf("StaleHolds(%+v) gave %+v", q, h)
			}
		}
	}
	q := proxy.StaleHoldQuery{ExpiredBefore: at, ClaimedBefore: at.Add(-time.Minute), Limit: 100}
	check(q, expired, old)
	q.Owner = "me"
	check(q, expired, old, mine)
	q.Limit = 1
	got, err := s.StaleHolds(ctx, q)
	must(t, err)
	if len(got) != 1 {
		t.Fatalf("StaleHolds with limit 1 gave %d", len(got))
	}
}

func collect(t *testing.T, s proxy.Store) {
	gone, forever, unpaid := challenge(t), challenge(t), challenge(t)
	gone.TokenExpires = at.Add(-time.Second)
	forever.TokenExpires = time.Time{}
	unpaid.TokenExpires = at.Add(-time.Second)
	for _, c := range []proxy.TokenRecord{gone, forever, unpaid} {
		must(t, s.PutToken(ctx, c))
	}
	must(t, s.MarkPaid(ctx, gone.TokenID))
	must(t, s.MarkPaid(ctx, forever.TokenID))
	spentOld, spentKeep := preimage(t).Hash(), preimage(t).Hash()
	_, err := s.Spend(ctx, spentOld, at.Add(-time.Second))
	must(t, err)
	_, err = s.Spend(ctx, spentKeep, time.Time{})
	must(t, err)

	n, err := s.Collect(ctx, at)
	must(t, err)
	if n != 2 {
		t.Fatalf("Collect dropped %d records, want 2 (a paid token past expiry, a spent hash past its time)", n)
	}
	if _, err := s.Token(ctx, gone.TokenID); !errors.Is(err, proxy.ErrNoRecord) {
		t.Fatalf("expired paid token kept: %v", err)
	}
	for _, c := range []proxy.TokenRecord{forever, unpaid} {
		if _, err := s.Token(ctx, c.TokenID); err != nil {
			// Unpaid records go through ExpiredUnpaid and the node, never
			// by Collect alone.
			t.Fatalf("Collect dropped a record it must keep: %v", err)
		}
	}
	if ok, _ := s.Spend(ctx, spentOld, time.Time{}); !ok {
		t.Fatal("a spent hash past its time was kept")
	}
	if ok, _ := s.Spend(ctx, spentKeep, time.Time{}); ok {
		t.Fatal("a spent hash without an end was dropped")
	}
}

func durable(t *testing.T, h Harness) {
	s := h.Open(t)
	c := challenge(t)
	must(t, s.PutToken(ctx, c))
	must(t, s.MarkPaid(ctx, c.TokenID))
	spent := preimage(t).Hash()
	_, err := s.Spend(ctx, spent, time.Time{})
	must(t, err)
	free, claimed := hold(t), hold(t)
	must(t, s.PutHold(ctx, free, 10))
	must(t, s.PutHold(ctx, claimed, 10))
	_, err = s.ClaimHold(ctx, claimed.Hash(), "me", at)
	must(t, err)

	s = h.Reopen(t, s)
	got, err := s.Token(ctx, c.TokenID)
	must(t, err)
	c.Paid = true
	sameChallenge(t, got, c)
	if ok, err := s.Spend(ctx, spent, time.Time{}); err != nil || ok {
		t.Fatalf("spent hash after reopen: spend gave %v %v, want refused", ok, err)
	}
	if _, err := s.ClaimHold(ctx, free.Hash(), "me", at); err != nil {
		t.Fatalf("unclaimed hold after reopen: %v", err)
	}
	stale, err := s.StaleHolds(ctx, proxy.StaleHoldQuery{Owner: "me", ExpiredBefore: at, ClaimedBefore: at.Add(-time.Hour), Limit: 10})
	must(t, err)
	if len(stale) != 2 {
		t.Fatalf("holds claimed before reopen: %d, want 2", len(stale))
	}
}

func shared(t *testing.T, a, b proxy.Store) {
	c := challenge(t)
	must(t, a.PutToken(ctx, c))
	got, err := b.Token(ctx, c.TokenID)
	must(t, err)
	sameChallenge(t, got, c)
	must(t, b.Revoke(ctx, c.TokenID))
	if _, err := a.Token(ctx, c.TokenID); !errors.Is(err, proxy.ErrNoRecord) {
		t.Fatalf("revoked through one handle, still there through the other: %v", err)
	}
	spendConcurrent(t, a, b)
	claimConcurrent(t, a, b)
}
