package memnode

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// PayInvoice implements backend.Payer for this node's own invoices. It pays
// no routing fee, so any fee limit holds.
func (n *Node) PayInvoice(ctx context.Context, bolt11 string, opts backend.PayOptions) (*backend.Payment, error) {
	d, err := backend.DecodeInvoice(bolt11)
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	if d.Network != n.network {
		return nil, fmt.Errorf("memory: %w: invoice is for %s, node is on %s", backend.ErrInvalid, d.Network, n.network)
	}
	amount := d.Amount
	if amount == 0 {
		amount = opts.Amount
	}
	if d.Payee != n.nodeID {
		return nil, fmt.Errorf("memory: %w: no route to %s (the memory node pays only its own invoices)", backend.ErrPaymentFailed, d.Payee)
	}
	return n.payEntry(ctx, d.PaymentHash, d.PaymentRequest, amount)
}

// payEntry pays the node's own invoice with that hash and request string
// (BOLT11 or BOLT12), settling it or, for a hold invoice, waiting as an
// in-flight HTLC waits.
func (n *Node) payEntry(ctx context.Context, hash backend.PaymentHash, request string, amount backend.MilliSat) (*backend.Payment, error) {
	n.mu.Lock()
	if err := n.check(); err != nil {
		n.mu.Unlock()
		return nil, err
	}
	e, ok := n.invoices[hash]
	if !ok || !strings.EqualFold(e.inv.PaymentRequest, request) { // bech32 ignores case
		n.mu.Unlock()
		return nil, fmt.Errorf("memory: %w: incorrect or unknown payment details", backend.ErrPaymentFailed)
	}
	now := n.now()
	switch {
	case e.inv.State == backend.StateSettled || e.inv.State == backend.StateHeld:
		n.mu.Unlock()
		return nil, fmt.Errorf("memory: %w: invoice is already paid", backend.ErrPaymentFailed)
	case e.inv.State == backend.StateCanceled:
		n.mu.Unlock()
		return nil, fmt.Errorf("memory: %w: invoice is canceled", backend.ErrPaymentFailed)
	case e.inv.Expired(now):
		n.mu.Unlock()
		return nil, fmt.Errorf("memory: %w: invoice expired", backend.ErrPaymentFailed)
	}
	e.inv.AmountReceived = amount
	pay := &backend.Payment{PaymentHash: hash, Amount: amount}
	if !e.hold {
		e.inv.SettledAt = now
		e.setState(backend.StateSettled)
		pay.Preimage = *e.preimage
		n.mu.Unlock()
		return pay, nil
	}
	e.setState(backend.StateHeld)
	expiresAt := e.inv.ExpiresAt
	n.mu.Unlock()
	return n.awaitHeld(ctx, e, pay, expiresAt)
}

// awaitHeld blocks a payer whose payment a hold invoice accepted, as an
// in-flight HTLC blocks, until the payee settles or cancels it or the invoice
// expires (the node then cancels it, returning the payment).
func (n *Node) awaitHeld(ctx context.Context, e *entry, pay *backend.Payment, expiresAt time.Time) (*backend.Payment, error) {
	for {
		n.mu.Lock()
		switch e.inv.State {
		case backend.StateSettled:
			pay.Preimage = *e.preimage
			n.mu.Unlock()
			return pay, nil
		case backend.StateCanceled:
			n.mu.Unlock()
			return nil, fmt.Errorf("memory: %w: payee canceled the held payment", backend.ErrPaymentFailed)
		}
		if !n.now().Before(expiresAt) {
			e.inv.AmountReceived = 0
			e.setState(backend.StateCanceled)
			n.mu.Unlock()
			return nil, fmt.Errorf("memory: %w: held payment expired unsettled", backend.ErrPaymentFailed)
		}
		changed := e.changed
		wait := expiresAt.Sub(n.now())
		n.mu.Unlock()

		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		case <-n.closedCh:
			t.Stop()
			return nil, fmt.Errorf("memory: %w: node closed with payment in flight", backend.ErrPaymentUnknown)
		case <-ctx.Done():
			t.Stop()
			// Like an HTLC, the payment stays held: the payee may still
			// settle it. The payer only stops waiting.
			return nil, fmt.Errorf("memory: %w: payment %s in flight: %w", backend.ErrPaymentUnknown, pay.PaymentHash, ctx.Err())
		}
		t.Stop()
	}
}
