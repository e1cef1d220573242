package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
)

func testPaySettles(t *testing.T, s *suite) {
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	p := s.pay(t, inv.PaymentRequest, backend.PayOptions{})
	if p.PaymentHash != inv.PaymentHash {
		t.Errorf("payment hash %s, invoice %s", p.PaymentHash, inv.PaymentHash)
	}
	if !p.Preimage.Matches(inv.PaymentHash) {
		t.Fatalf("payer got preimage %s whose sha256 is not %s", p.Preimage, inv.PaymentHash)
	}
	got := s.settled(t, inv.PaymentHash)
	if got.Preimage == nil || *got.Preimage != p.Preimage {
		t.Errorf("settled invoice has preimage %v, payer got %s", got.Preimage, p.Preimage)
	}
	if got.AmountReceived < amount {
		t.Errorf("settled invoice received %s, want at least %s", got.AmountReceived, amount)
	}
	if got.SettledAt.IsZero() {
		t.Errorf("settled invoice has no SettledAt")
	}
}

func testSecondPaymentFails(t *testing.T, s *suite) {
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	s.pay(t, inv.PaymentRequest, backend.PayOptions{})
	_, err := s.p.PayInvoice(callCtx(t), inv.PaymentRequest, backend.PayOptions{})
	wantErr(t, err, backend.ErrPaymentFailed, "paying a settled invoice again")
}

func testExpiry(t *testing.T, s *suite) {
	if s.sup.FixedExpiry {
		t.Skip("Support.FixedExpiry is true: a 2s invoice cannot be asked for, the node chooses every invoice's expiry")
	}
	const short = 2 * time.Second
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t), Expiry: short})
	if d := decode(t, inv); d.Expiry != short {
		t.Errorf("BOLT11 expiry %s, want %s", d.Expiry, short)
	}
	// Wait past the expiry by the BOLT11's own clock, with a margin for
	// nodes that check expiry on a timer.
	time.Sleep(time.Until(inv.ExpiresAt) + 1500*time.Millisecond)
	got := s.lookup(t, inv.PaymentHash)
	if got.Payable(time.Now()) {
		t.Errorf("invoice past its expiry reads %s and payable", got.State)
	}
	{
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := s.b.WaitInvoice(ctx, inv.PaymentHash)
		if err != nil {
			t.Errorf("WaitInvoice on an expired invoice: %v (it should return the invoice, not wait)", err)
		} else if got.Payable(time.Now()) {
			t.Errorf("WaitInvoice on an expired invoice gave a payable %s invoice", got.State)
		}
	}
	_, err := s.p.PayInvoice(callCtx(t), inv.PaymentRequest, backend.PayOptions{})
	wantErr(t, err, backend.ErrPaymentFailed, "paying an expired invoice")
	if got := s.lookup(t, inv.PaymentHash); got.State == backend.StateSettled {
		t.Errorf("expired invoice got settled")
	}
}

func testZeroAmount(t *testing.T, s *suite) {
	if !s.sup.ZeroAmount {
		t.Skip("Support.ZeroAmount is false: this backend cannot create any-amount invoices")
	}
	inv := s.create(t, backend.InvoiceRequest{Memo: uniqueMemo(t)})
	if d := decode(t, inv); d.Amount != 0 {
		t.Fatalf("any-amount invoice's BOLT11 asks %s", d.Amount)
	}
	const chosen = backend.MilliSat(1_500_000)
	s.pay(t, inv.PaymentRequest, backend.PayOptions{Amount: chosen})
	got := s.settled(t, inv.PaymentHash)
	if got.AmountReceived != chosen {
		t.Errorf("any-amount invoice received %s, payer sent %s", got.AmountReceived, chosen)
	}
}
