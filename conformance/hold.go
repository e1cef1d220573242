package conformance

import (
	"context"
	"testing"

	"github.com/l402kit/l402kit/backend"
)

func (s *suite) holder(t *testing.T) backend.HoldInvoicer {
	if !s.b.Supports(backend.AbilityHold) {
		t.Skipf("the backend has no hold ability (abilities: %v)", backend.Abilities(s.b))
	}
	return s.b
}

type payResult struct {
	p   *backend.Payment
	err error
}

// heldPayment creates a hold invoice, pays it in the background and returns
// once the backend reports it Held, with the payer still waiting.
func (s *suite) heldPayment(t *testing.T, hi backend.HoldInvoicer) (*backend.Invoice, backend.Preimage, <-chan payResult) {
	t.Helper()
	pre, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	inv, err := hi.CreateHoldInvoice(callCtx(t), pre.Hash(), backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t), Expiry: caseExpiry})
	if err != nil {
		t.Fatalf("CreateHoldInvoice: %v", err)
	}
	if inv.PaymentHash != pre.Hash() || decode(t, inv).PaymentHash != pre.Hash() {
		t.Fatalf("hold invoice hash %s, asked for %s", inv.PaymentHash, pre.Hash())
	}
	if inv.State != backend.StateOpen {
		t.Fatalf("new hold invoice is %s", inv.State)
	}
	res := make(chan payResult, 1)
	payCtx, cancel := context.WithTimeout(context.Background(), 2*callTimeout)
	t.Cleanup(cancel)
	go func() {
		p, err := s.p.PayInvoice(payCtx, inv.PaymentRequest, backend.PayOptions{Timeout: 2 * callTimeout})
		res <- payResult{p, err}
	}()
	{
		got, err := s.b.WaitInvoice(callCtx(t), inv.PaymentHash)
		if err != nil {
			t.Fatalf("WaitInvoice on a hold invoice being paid: %v", err)
		}
		if got.State != backend.StateHeld {
			t.Fatalf("WaitInvoice on a hold invoice being paid returned %s, want held", got.State)
		}
	}
	held := s.until(t, inv.PaymentHash, backend.StateHeld)
	if held.AmountReceived < amount {
		t.Errorf("held invoice shows %s received, want at least %s", held.AmountReceived, amount)
	}
	select {
	case r := <-res:
		t.Fatalf("payer returned while the invoice is held: payment %v, error %v", r.p, r.err)
	default:
	}
	return inv, pre, res
}

func testHoldHeld(t *testing.T, s *suite) {
	hi := s.holder(t)
	inv, _, res := s.heldPayment(t, hi)
	if err := hi.CancelInvoice(callCtx(t), inv.PaymentHash); err != nil {
		t.Fatalf("CancelInvoice: %v", err)
	}
	<-res
}

func testHoldSettle(t *testing.T, s *suite) {
	hi := s.holder(t)
	inv, pre, res := s.heldPayment(t, hi)
	if err := hi.SettleInvoice(callCtx(t), pre); err != nil {
		t.Fatalf("SettleInvoice: %v", err)
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("payer of a settled hold invoice failed: %v", r.err)
	}
	if r.p.Preimage != pre {
		t.Errorf("payer got preimage %s, want %s", r.p.Preimage, pre)
	}
	got := s.settled(t, inv.PaymentHash)
	if got.Preimage == nil || *got.Preimage != pre {
		t.Errorf("settled hold invoice shows preimage %v, want %s", got.Preimage, pre)
	}
}

func testHoldCancel(t *testing.T, s *suite) {
	hi := s.holder(t)
	inv, _, res := s.heldPayment(t, hi)
	if err := hi.CancelInvoice(callCtx(t), inv.PaymentHash); err != nil {
		t.Fatalf("CancelInvoice: %v", err)
	}
	r := <-res
	if r.err == nil {
		t.Fatalf("payer of a canceled hold invoice succeeded with preimage %s", r.p.Preimage)
	}
	wantErr(t, r.err, backend.ErrPaymentFailed, "payer of a canceled hold invoice")
	got := s.until(t, inv.PaymentHash, backend.StateCanceled)
	if got.Preimage != nil && got.Preimage.Matches(inv.PaymentHash) {
		t.Errorf("canceled hold invoice reveals its preimage")
	}
}

func testHoldUnknown(t *testing.T, s *suite) {
	hi := s.holder(t)
	pre, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, hi.SettleInvoice(callCtx(t), pre), backend.ErrNotFound, "SettleInvoice with an unknown preimage")
	wantErr(t, hi.CancelInvoice(callCtx(t), pre.Hash()), backend.ErrNotFound, "CancelInvoice of an unknown hash")
}

func testHoldDuplicate(t *testing.T, s *suite) {
	hi := s.holder(t)
	h := randomHash(t)
	req := backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t), Expiry: caseExpiry}
	if _, err := hi.CreateHoldInvoice(callCtx(t), h, req); err != nil {
		t.Fatalf("CreateHoldInvoice: %v", err)
	}
	_, err := hi.CreateHoldInvoice(callCtx(t), h, req)
	wantErr(t, err, backend.ErrAlreadyExists, "a second hold invoice with the same hash")
}
