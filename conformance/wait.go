package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// waiter is the backend: every Backend waits, by the node's own push or by
// polling, so the wait cases run everywhere.
func (s *suite) waiter(*testing.T) backend.Waiter { return s.b }

func testWaitSettlement(t *testing.T, s *suite) {
	w := s.waiter(t)
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	type result struct {
		inv *backend.Invoice
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := w.WaitInvoice(callCtx(t), inv.PaymentHash)
		done <- result{got, err}
	}()
	p := s.pay(t, inv.PaymentRequest, backend.PayOptions{})
	r := <-done
	if r.err != nil {
		t.Fatalf("WaitInvoice: %v", r.err)
	}
	if r.inv.State != backend.StateSettled {
		t.Fatalf("WaitInvoice returned a %s invoice, want settled", r.inv.State)
	}
	if r.inv.Preimage == nil || *r.inv.Preimage != p.Preimage {
		t.Errorf("WaitInvoice preimage %v, payer got %s", r.inv.Preimage, p.Preimage)
	}
}

func testWaitAlreadySettled(t *testing.T, s *suite) {
	w := s.waiter(t)
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	s.pay(t, inv.PaymentRequest, backend.PayOptions{})
	s.settled(t, inv.PaymentHash)
	got, err := w.WaitInvoice(callCtx(t), inv.PaymentHash)
	if err != nil {
		t.Fatalf("WaitInvoice on a settled invoice: %v", err)
	}
	if got.State != backend.StateSettled {
		t.Fatalf("WaitInvoice on a settled invoice gave %s", got.State)
	}
}

func testWaitContextCancel(t *testing.T, s *suite) {
	w := s.waiter(t)
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	got, err := w.WaitInvoice(ctx, inv.PaymentHash)
	if err == nil {
		t.Fatalf("WaitInvoice on an unpaid invoice returned %s without error", got.State)
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitInvoice after its context ended: %v, want a context error", err)
	}
	t.Logf("WaitInvoice returned %s after its 300ms context ended", time.Since(start).Round(time.Millisecond))
}

func testWaitNotFound(t *testing.T, s *suite) {
	w := s.waiter(t)
	_, err := w.WaitInvoice(callCtx(t), randomHash(t))
	wantErr(t, err, backend.ErrNotFound, "WaitInvoice of an unknown hash")
}
