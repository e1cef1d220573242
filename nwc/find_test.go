package nwc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/nwc"
)

// A client that lost track of a payment (l402's store after a crash) asks
// the wallet what became of it by hash.
func TestFindPayment(t *testing.T) {
	relay := startRelay(t)
	_, uri := serve(t, relay, newMemory(t), nwc.Permissions{})
	b := open(t, uri)
	var finder interface {
		FindPayment(context.Context, backend.PaymentHash) (*backend.Payment, error)
	}
	if !b.As(&finder) {
		t.Fatal("a paying NWC connection cannot find payments")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	paid, err := b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(3)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PayInvoice(ctx, paid.PaymentRequest, backend.PayOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := finder.FindPayment(ctx, paid.PaymentHash)
	if err != nil || !p.Preimage.Matches(paid.PaymentHash) {
		t.Fatalf("FindPayment of a paid invoice: %+v %v", p, err)
	}
	unpaid, err := b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(3)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := finder.FindPayment(ctx, unpaid.PaymentHash); !errors.Is(err, backend.ErrPaymentUnknown) {
		t.Fatalf("FindPayment of an unpaid invoice: %v, want ErrPaymentUnknown", err)
	}
}
