package conformance

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/l402kit/l402kit/backend"
)

func testFifty(t *testing.T, s *suite) {
	const n, paid = 50, 10
	invs := make([]*backend.Invoice, n)
	errs := make([]error, n)
	// The fifty calls queue behind one another in the node (an NWC wallet
	// service answers one request at a time), so they share the batch's
	// deadline rather than one call's each: under -race on a loaded 2-core
	// machine NWC's fiftieth came after callTimeout (make stress).
	batch, cancel := context.WithTimeout(context.Background(), 4*callTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			invs[i], errs[i] = s.b.CreateInvoice(batch, backend.InvoiceRequest{
				Amount: amount + backend.Sat(int64(i)), Memo: fmt.Sprintf("%s #%d", uniqueMemo(t), i), Expiry: caseExpiry,
			})
		})
	}
	wg.Wait()
	seen := map[backend.PaymentHash]int{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("invoice %d of %d: %v", i, n, err)
		}
		if j, dup := seen[invs[i].PaymentHash]; dup {
			t.Fatalf("invoices %d and %d share hash %s", j, i, invs[i].PaymentHash)
		}
		seen[invs[i].PaymentHash] = i
		if d := decode(t, invs[i]); d.Amount != amount+backend.Sat(int64(i)) {
			t.Errorf("invoice %d asks %s, want %s", i, d.Amount, amount+backend.Sat(int64(i)))
		}
	}
	payErrs := make([]error, paid)
	for i := range paid {
		wg.Go(func() {
			_, payErrs[i] = s.p.PayInvoice(callCtx(t), invs[i].PaymentRequest, backend.PayOptions{})
		})
	}
	wg.Wait()
	for i, err := range payErrs {
		if err != nil {
			t.Errorf("concurrent payment %d: %v", i, err)
		}
	}
	for i, inv := range invs {
		got := s.lookup(t, inv.PaymentHash)
		if i < paid {
			got = s.settled(t, inv.PaymentHash)
		} else if got.State != backend.StateOpen {
			t.Errorf("unpaid invoice %d is %s", i, got.State)
		}
		if got.Amount != inv.Amount {
			t.Errorf("invoice %d: lookup amount %s, created %s", i, got.Amount, inv.Amount)
		}
	}
}
