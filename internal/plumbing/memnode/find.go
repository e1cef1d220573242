package memnode

import (
	"context"
	"fmt"

	"github.com/l402kit/l402kit/backend"
)

// FindPayment says what became of the payment of an invoice of this node,
// for a client that lost track of it (its process died mid-payment): the
// payment with its preimage once settled; ErrPaymentFailed when canceled or
// expired unpaid; ErrPaymentUnknown while open or held (still payable, or
// in flight); ErrNotFound for a hash the node never issued. The memory
// node pays only its own invoices, so its invoices are its payments.
func (n *Node) FindPayment(ctx context.Context, hash backend.PaymentHash) (*backend.Payment, error) {
	inv, err := n.LookupInvoice(ctx, hash)
	if err != nil {
		return nil, err
	}
	switch {
	case inv.State == backend.StateSettled && inv.Preimage != nil:
		return &backend.Payment{PaymentHash: hash, Preimage: *inv.Preimage, Amount: inv.AmountReceived}, nil
	case inv.State == backend.StateCanceled:
		return nil, fmt.Errorf("memory: %w: invoice %s was canceled", backend.ErrPaymentFailed, hash)
	case inv.State == backend.StateOpen && inv.Expired(n.now()):
		return nil, fmt.Errorf("memory: %w: invoice %s expired unpaid", backend.ErrPaymentFailed, hash)
	}
	return nil, fmt.Errorf("memory: %w: invoice %s is %s", backend.ErrPaymentUnknown, hash, inv.State)
}
