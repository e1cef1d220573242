package nwc

import (
	"context"

	"github.com/l402kit/l402kit/backend"
)

// The wallet decides at connection time what this client may do, and an
// ability must be an interface the driver implements (so Supports cannot
// lie), hence one type per combination of the four optional abilities:
// w (notifications: Waiter), h (hold methods: HoldInvoicer), p
// (pay_invoice: Payer), i (get_info: Informer and Pinger). Code generated
// by hand from one pattern; each method is the driver's.

type waitM struct{ d *driver }

// WaitInvoice implements backend.Waiter.
func (m waitM) WaitInvoice(ctx context.Context, h backend.PaymentHash) (*backend.Invoice, error) {
	return m.d.waitInvoice(ctx, h)
}

type holdM struct{ d *driver }

// CreateHoldInvoice implements backend.HoldInvoicer.
func (m holdM) CreateHoldInvoice(ctx context.Context, h backend.PaymentHash, req backend.InvoiceRequest) (*backend.Invoice, error) {
	return m.d.createHoldInvoice(ctx, h, req)
}

// SettleInvoice implements backend.HoldInvoicer.
func (m holdM) SettleInvoice(ctx context.Context, p backend.Preimage) error {
	return m.d.settleInvoice(ctx, p)
}

// CancelInvoice implements backend.HoldInvoicer.
func (m holdM) CancelInvoice(ctx context.Context, h backend.PaymentHash) error {
	return m.d.cancelInvoice(ctx, h)
}

type payM struct{ d *driver }

// PayInvoice implements backend.Payer.
func (m payM) PayInvoice(ctx context.Context, bolt11 string, opts backend.PayOptions) (*backend.Payment, error) {
	return m.d.payInvoice(ctx, bolt11, opts)
}

type infoM struct{ d *driver }

// Info implements backend.Informer.
func (m infoM) Info(ctx context.Context) (*backend.NodeInfo, error) { return m.d.info(ctx) }

// Ping implements backend.Pinger.
func (m infoM) Ping(ctx context.Context) error { return m.d.ping(ctx) }

type drvW struct {
	*driver
	waitM
}

type drvH struct {
	*driver
	holdM
}

type drvWH struct {
	*driver
	waitM
	holdM
}

type drvP struct {
	*driver
	payM
}

type drvWP struct {
	*driver
	waitM
	payM
}

type drvHP struct {
	*driver
	holdM
	payM
}

type drvWHP struct {
	*driver
	waitM
	holdM
	payM
}

type drvI struct {
	*driver
	infoM
}

type drvWI struct {
	*driver
	waitM
	infoM
}

type drvHI struct {
	*driver
	holdM
	infoM
}

type drvWHI struct {
	*driver
	waitM
	holdM
	infoM
}

type drvPI struct {
	*driver
	payM
	infoM
}

type drvWPI struct {
	*driver
	waitM
	payM
	infoM
}

type drvHPI struct {
	*driver
	holdM
	payM
	infoM
}

type drvWHPI struct {
	*driver
	waitM
	holdM
	payM
	infoM
}

// As hands out the *driver behind any of the types above.
func (d *driver) As(target any) bool {
	if p, ok := target.(**driver); ok {
		*p = d
		return true
	}
	return false
}

// compose wraps d in the type whose methods are the abilities the wallet
// grants this connection.
func compose(d *driver) backend.Driver {
	mask := 0
	if d.notifs[notifyReceived] && (!d.holds() || d.notifs[notifyHoldAccepted]) {
		mask |= 1
	}
	if d.holds() {
		mask |= 2
	}
	if d.methods[MethodPayInvoice] {
		mask |= 4
	}
	if d.methods[MethodGetInfo] {
		mask |= 8
	}
	switch mask {
	case 1:
		return drvW{d, waitM{d}}
	case 2:
		return drvH{d, holdM{d}}
	case 3:
		return drvWH{d, waitM{d}, holdM{d}}
	case 4:
		return drvP{d, payM{d}}
	case 5:
		return drvWP{d, waitM{d}, payM{d}}
	case 6:
		return drvHP{d, holdM{d}, payM{d}}
	case 7:
		return drvWHP{d, waitM{d}, holdM{d}, payM{d}}
	case 8:
		return drvI{d, infoM{d}}
	case 9:
		return drvWI{d, waitM{d}, infoM{d}}
	case 10:
		return drvHI{d, holdM{d}, infoM{d}}
	case 11:
		return drvWHI{d, waitM{d}, holdM{d}, infoM{d}}
	case 12:
		return drvPI{d, payM{d}, infoM{d}}
	case 13:
		return drvWPI{d, waitM{d}, payM{d}, infoM{d}}
	case 14:
		return drvHPI{d, holdM{d}, payM{d}, infoM{d}}
	case 15:
		return drvWHPI{d, waitM{d}, holdM{d}, payM{d}, infoM{d}}
	}
	return d
}

// holds reports whether the connection has all three hold methods.
func (d *driver) holds() bool {
	return d.methods[MethodMakeHoldInvoice] && d.methods[MethodSettleHoldInvoice] && d.methods[MethodCancelHoldInvoice]
}
