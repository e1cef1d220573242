package lnd

import (
	"fmt"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/lndrest"
)

// stateOf maps LND's invoice states; ACCEPTED is LND's name for a hold
// invoice whose HTLCs arrived.
func stateOf(s string) (backend.State, error) {
	switch s {
	case lndrest.InvoiceOpen:
		return backend.StateOpen, nil
	case lndrest.InvoiceAccepted:
		return backend.StateHeld, nil
	case lndrest.InvoiceSettled:
		return backend.StateSettled, nil
	case lndrest.InvoiceCanceled:
		return backend.StateCanceled, nil
	}
	return 0, fmt.Errorf("unknown invoice state %q", s)
}

// fromREST converts LND's invoice.
func fromREST(in *lndrest.Invoice) (*backend.Invoice, error) {
	st, err := stateOf(in.State)
	if err != nil {
		return nil, fmt.Errorf("lnd: %w", err)
	}
	if len(in.RHash) != 32 {
		return nil, fmt.Errorf("lnd: invoice has a %d-byte payment hash", len(in.RHash))
	}
	inv := &backend.Invoice{
		PaymentRequest: in.PaymentRequest,
		Amount:         backend.MilliSat(in.ValueMsat),
		AmountReceived: backend.MilliSat(in.AmtPaidMsat),
		Memo:           in.Memo,
		State:          st,
	}
	copy(inv.PaymentHash[:], in.RHash)
	// Hold invoices have no preimage until settled; LND leaves the field
	// empty then.
	if len(in.RPreimage) == 32 {
		var p backend.Preimage
		copy(p[:], in.RPreimage)
		if p.Matches(inv.PaymentHash) {
			inv.Preimage = &p
		}
	}
	if in.CreationDate > 0 {
		inv.CreatedAt = time.Unix(in.CreationDate, 0)
		inv.ExpiresAt = inv.CreatedAt.Add(time.Duration(in.Expiry) * time.Second)
	}
	if st == backend.StateSettled && in.SettleDate > 0 {
		inv.SettledAt = time.Unix(in.SettleDate, 0)
	}
	return inv, nil
}

// fromPaymentRequest builds a new invoice's view from the BOLT11 string LND
// returned, which saves a LookupInvoice round trip on the challenge path.
func fromPaymentRequest(bolt11 string) (*backend.Invoice, error) {
	d, err := backend.DecodeInvoice(bolt11)
	if err != nil {
		return nil, err
	}
	return d.Invoice(), nil
}
