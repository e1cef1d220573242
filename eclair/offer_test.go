package eclair

import (
	"errors"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// TestPayOfferThroughAdapter pays offers with the adapter's own payoffer
// (the conformance harness pays from the memory node): a fixed offer, an
// any-amount one, and the refusals: a payer note (payoffer has none), a
// disabled offer.
func TestPayOfferThroughAdapter(t *testing.T) {
	e := newEnv(t, 50*time.Millisecond)
	ctx := ctxT(t, 30*time.Second)
	fixed, err := e.b.CreateOffer(ctx, backend.OfferRequest{Amount: 21_000, Description: "coffee", Issuer: "example.com", Expiry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.b.PayOffer(ctx, fixed.Bolt12, backend.OfferPayOptions{PayOptions: backend.PayOptions{MaxFee: backend.Sat(5)}})
	if err != nil {
		t.Fatalf("PayOffer: %v", err)
	}
	if !p.Preimage.Matches(p.PaymentHash) || p.Amount != 21_000 {
		t.Errorf("payment %+v", p)
	}
	invs, err := e.b.OfferPayments(ctx, fixed.ID)
	if err != nil || len(invs) != 1 || invs[0].PaymentHash != p.PaymentHash || invs[0].State != backend.StateSettled {
		t.Errorf("OfferPayments: %+v, %v", invs, err)
	}
	got, err := e.b.LookupInvoice(ctx, p.PaymentHash)
	if err != nil || got.State != backend.StateSettled || got.Memo != "coffee" {
		t.Errorf("LookupInvoice of the offer's invoice: %+v, %v", got, err)
	}

	anyAmt, err := e.b.CreateOffer(ctx, backend.OfferRequest{Description: "tips"})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := e.b.PayOffer(ctx, anyAmt.Bolt12, backend.OfferPayOptions{PayOptions: backend.PayOptions{Amount: 5_000}}); err != nil || p.Amount != 5_000 {
		t.Errorf("any-amount offer: %+v, %v", p, err)
	}
	if _, err := e.b.PayOffer(ctx, anyAmt.Bolt12, backend.OfferPayOptions{PayOptions: backend.PayOptions{Amount: 5_000}, PayerNote: "hi"}); !errors.Is(err, backend.ErrUnsupported) {
		t.Errorf("payer note: %v, want ErrUnsupported", err)
	}

	if err := e.b.DisableOffer(ctx, fixed.ID); err != nil {
		t.Fatal(err)
	}
	offs, err := e.b.ListOffers(ctx)
	if err != nil || len(offs) != 2 {
		t.Fatalf("ListOffers: %+v, %v", offs, err)
	}
	for _, o := range offs {
		if o.ID == fixed.ID && o.Active {
			t.Error("disabled offer listed active")
		}
	}
	if _, err := e.b.PayOffer(ctx, fixed.Bolt12, backend.OfferPayOptions{}); !errors.Is(err, backend.ErrPaymentFailed) {
		t.Errorf("paying a disabled offer: %v, want ErrPaymentFailed", err)
	}
}
