package backend

import "context"

// Driver is what an adapter implements for one kind of node: the node's wire
// protocol and nothing else. Users never call a Driver; they hold the
// *Backend that New or Open wraps around it, which validates requests,
// applies defaults and deadlines, normalizes invoices and errors and handles
// the closed state, so a Driver may assume:
//
//   - requests passed InvoiceRequest.Validate; Expiry is set, whole seconds,
//     at least one second;
//   - every call's context has a deadline, except WaitInvoice's (bounded by
//     its caller, and ended by Close);
//   - PayInvoice's bolt11 is bare (no "lightning:" prefix, no whitespace),
//     opts.Amount is set only for an any-amount invoice, opts.Timeout is set;
//   - no call arrives after Close.
//
// A Driver's errors should wrap the sentinels of this package; one that
// matches none is classified by the Backend (see ErrUnavailable and
// ErrPaymentUnknown), keeping the driver's error in the chain.
type Driver interface {
	// CreateInvoice asks the node for a new invoice.
	CreateInvoice(ctx context.Context, req InvoiceRequest) (*Invoice, error)
	// LookupInvoice returns the invoice with that payment hash, or an error
	// wrapping ErrNotFound.
	LookupInvoice(ctx context.Context, hash PaymentHash) (*Invoice, error)
	// Close releases connections and ends the driver's goroutines; waits in
	// progress return.
	Close() error
}

// The optional abilities below are separate interfaces a Driver implements
// when its node has the ability, found by type assertion as in
// database/sql/driver, so no capability flag can lie. *Backend has every
// method; for an ability its driver lacks it answers ErrUnsupported (or, for
// WaitInvoice, polls LookupInvoice). Supports and Abilities tell which.

// Waiter is a driver that can block until an invoice changes state.
type Waiter interface {
	// WaitInvoice returns the invoice as soon as it is no longer open (held,
	// settled or canceled) or is open past its expiry, or when ctx ends,
	// with ctx's error.
	WaitInvoice(ctx context.Context, hash PaymentHash) (*Invoice, error)
}

// HoldInvoicer is a driver whose invoices can be held: a payment to a hold
// invoice is accepted but not settled until the caller decides.
type HoldInvoicer interface {
	// CreateHoldInvoice creates an invoice for hash, whose preimage only the
	// caller knows. req.Preimage is nil.
	CreateHoldInvoice(ctx context.Context, hash PaymentHash, req InvoiceRequest) (*Invoice, error)
	// SettleInvoice settles the held invoice whose hash is sha256(preimage),
	// completing the payer's payment.
	SettleInvoice(ctx context.Context, preimage Preimage) error
	// CancelInvoice cancels an open or held invoice; a held payment goes back
	// to the payer.
	CancelInvoice(ctx context.Context, hash PaymentHash) error
}

// Payer is a driver (or anything else) that can pay BOLT11 invoices. A
// *Backend is a Payer, so code that only pays, such as l402.Transport, asks
// for this one method.
type Payer interface {
	// PayInvoice pays bolt11 and returns the payment with its preimage. The
	// error says what became of the money: ErrInvalid, ErrUnsupported and
	// ErrUnavailable mean the payment did not start; ErrPaymentFailed means
	// it ended without paying; ErrPaymentUnknown means its fate is unknown.
	PayInvoice(ctx context.Context, bolt11 string, opts PayOptions) (*Payment, error)
}

// FeeLimiter marks a Payer that honours PayOptions.MaxFee: it never pays a
// routing fee above it. A Payer without it cannot bound fees, and the Backend
// refuses a payment that sets MaxFee (ErrUnsupported) rather than let the
// node pay more than the caller allowed.
type FeeLimiter interface {
	// LimitsFees is a marker; its result is not read.
	LimitsFees()
}

// Informer is a driver that can describe its node.
type Informer interface {
	// Info describes the node.
	Info(ctx context.Context) (*NodeInfo, error)
}

// Pinger is a driver that can check that its node answers, with the
// cheapest real request the node offers (its getinfo, or for LNURL-pay the
// service's pay parameters). Health checks use it.
type Pinger interface {
	// Ping returns nil when the node answers now.
	Ping(ctx context.Context) error
}

// Ability names an optional interface.
type Ability string

// The optional abilities.
const (
	AbilityWait     Ability = "wait"
	AbilityHold     Ability = "hold"
	AbilityPay      Ability = "pay"
	AbilityFeeLimit Ability = "feelimit"
	AbilityInfo     Ability = "info"
	AbilityPing     Ability = "ping"
)

// driverAbilities lists what d implements, in a fixed order.
func driverAbilities(d Driver) []Ability {
	var out []Ability
	if _, ok := d.(Waiter); ok {
		out = append(out, AbilityWait)
	}
	if _, ok := d.(HoldInvoicer); ok {
		out = append(out, AbilityHold)
	}
	if _, ok := d.(Payer); ok {
		out = append(out, AbilityPay)
		if _, ok := d.(FeeLimiter); ok {
			out = append(out, AbilityFeeLimit)
		}
	}
	if _, ok := d.(Informer); ok {
		out = append(out, AbilityInfo)
	}
	if _, ok := d.(Pinger); ok {
		out = append(out, AbilityPing)
	}
	if _, ok := d.(Offerer); ok {
		out = append(out, AbilityOffer)
	}
	if _, ok := d.(OfferPayer); ok {
		out = append(out, AbilityPayOffer)
	}
	return out
}
