package nwc

import (
	"context"
	"errors"

	"github.com/l402kit/l402kit/backend"
)

// FindPayment says what became of a payment of this wallet by its hash,
// with lookup_invoice, for a client that lost track of it (its process
// died mid-payment; l402kit's clientstore.PaymentFinder): the payment with
// its preimage once settled, ErrPaymentFailed once the outgoing payment
// failed, ErrPaymentUnknown otherwise (in flight, or not known to the
// wallet yet). Only connections that may pay have it.
func (m payM) FindPayment(ctx context.Context, hash backend.PaymentHash) (*backend.Payment, error) {
	return m.d.resolve(ctx, hash, false, errors.New("asked what became of the payment"))
}
