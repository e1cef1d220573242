package backend

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Backend is what every adapter provides.
type Backend interface {
	// CreateInvoice asks the node for a new invoice.
	CreateInvoice(ctx context.Context, req InvoiceRequest) (*Invoice, error)
	// LookupInvoice returns the invoice with that payment hash, or an error
	// wrapping ErrNotFound.
	LookupInvoice(ctx context.Context, hash PaymentHash) (*Invoice, error)
	// Close releases connections; the backend is unusable afterwards.
	Close() error
}

// Waiter is a backend that can block until an invoice changes state.
type Waiter interface {
	// WaitInvoice returns the invoice as soon as it is no longer open (held,
	// settled or canceled), or when ctx ends, with ctx's error.
	WaitInvoice(ctx context.Context, hash PaymentHash) (*Invoice, error)
}

// HoldInvoicer is a backend whose invoices can be held: a payment to a hold
// invoice is accepted but not settled until the caller decides.
type HoldInvoicer interface {
	// CreateHoldInvoice creates an invoice for hash, whose preimage only the
	// caller knows. req.Preimage must be nil.
	CreateHoldInvoice(ctx context.Context, hash PaymentHash, req InvoiceRequest) (*Invoice, error)
	// SettleInvoice settles the held invoice whose hash is sha256(preimage),
	// completing the payer's payment.
	SettleInvoice(ctx context.Context, preimage Preimage) error
	// CancelInvoice cancels an open or held invoice; a held payment goes back
	// to the payer.
	CancelInvoice(ctx context.Context, hash PaymentHash) error
}

// Payer is a backend that can pay BOLT11 invoices.
type Payer interface {
	// PayInvoice pays bolt11 and returns the preimage, or an error wrapping
	// ErrPaymentFailed (or ErrInvalid, ErrUnavailable).
	PayInvoice(ctx context.Context, bolt11 string, opts PayOptions) (*Payment, error)
}

// Informer is a backend that can describe its node.
type Informer interface {
	Info(ctx context.Context) (*NodeInfo, error)
}

// Ability names an optional interface.
type Ability string

// The optional abilities.
const (
	AbilityWait Ability = "wait"
	AbilityHold Ability = "hold"
	AbilityPay  Ability = "pay"
	AbilityInfo Ability = "info"
)

// Abilities lists the optional interfaces b implements, in a fixed order.
func Abilities(b Backend) []Ability {
	var out []Ability
	if _, ok := b.(Waiter); ok {
		out = append(out, AbilityWait)
	}
	if _, ok := b.(HoldInvoicer); ok {
		out = append(out, AbilityHold)
	}
	if _, ok := b.(Payer); ok {
		out = append(out, AbilityPay)
	}
	if _, ok := b.(Informer); ok {
		out = append(out, AbilityInfo)
	}
	return out
}

// Wait returns the invoice once it leaves StateOpen: through b's WaitInvoice
// when b is a Waiter, otherwise by looking it up every poll interval (one
// second when poll is zero). An open invoice that expires ends the wait with
// the invoice as it stands, so no caller waits past an expiry.
func Wait(ctx context.Context, b Backend, hash PaymentHash, poll time.Duration) (*Invoice, error) {
	if w, ok := b.(Waiter); ok {
		return w.WaitInvoice(ctx, hash)
	}
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		inv, err := b.LookupInvoice(ctx, hash)
		if err != nil && !errors.Is(err, ErrUnavailable) {
			return nil, err
		}
		if err == nil && (inv.State != StateOpen || inv.Expired(time.Now())) {
			return inv, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for invoice %s: %w", hash, ctx.Err())
		case <-t.C:
		}
	}
}
