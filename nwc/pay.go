package nwc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// payInvoice implements backend.Payer with pay_invoice. The request is
// published once, never again. An answer is taken at its word only when it
// is a success or a refusal that says nothing was paid (PAYMENT_FAILED,
// INSUFFICIENT_BALANCE, QUOTA_EXCEEDED, RESTRICTED, ...); otherwise (no
// answer before the deadline, the relay went away, or an INTERNAL/OTHER
// error, which Alby Hub also sends for real payment failures) the outcome is
// resolved by lookup_invoice: settled with the preimage is success, failed
// is ErrPaymentFailed, and anything else ErrPaymentUnknown.
func (d *driver) payInvoice(ctx context.Context, bolt11 string, opts backend.PayOptions) (*backend.Payment, error) {
	dec, err := backend.DecodeInvoice(bolt11)
	if err != nil {
		return nil, err
	}
	params := map[string]any{"invoice": bolt11}
	if opts.Amount > 0 {
		params["amount"] = int64(opts.Amount)
	}
	// Stop waiting for the answer early enough to ask lookup_invoice.
	answerCtx := ctx
	if dl, ok := ctx.Deadline(); ok {
		reserve := min(time.Until(dl)/4, 10*time.Second)
		var cancel context.CancelFunc
		answerCtx, cancel = context.WithDeadline(ctx, dl.Add(-reserve))
		defer cancel()
	}
	var res struct {
		Preimage string `json:"preimage"`
		FeesPaid int64  `json:"fees_paid"`
	}
	written, err := d.send(answerCtx, MethodPayInvoice, params, &res)
	if err == nil {
		p, perr := backend.ParsePreimage(res.Preimage)
		if perr != nil || !p.Matches(dec.PaymentHash) {
			return d.resolve(ctx, dec.PaymentHash, false, fmt.Errorf("wallet reported success without the preimage of %s", dec.PaymentHash))
		}
		return &backend.Payment{PaymentHash: dec.PaymentHash, Preimage: p, Fee: backend.MilliSat(res.FeesPaid)}, nil
	}
	if !written {
		return nil, err // nothing reached a relay: safe to retry
	}
	var we *WalletError
	if errors.As(err, &we) && we.Code != CodeInternal && we.Code != CodeOther {
		s := we.Unwrap()
		if s == backend.ErrPaymentFailed || s == backend.ErrInvalid || s == backend.ErrUnsupported {
			return nil, err
		}
		if we.Code == CodeRateLimited {
			// Refused before anything started.
			return nil, err
		}
	}
	return d.resolve(ctx, dec.PaymentHash, we != nil, err)
}

// resolve asks lookup_invoice what became of a payment whose answer was
// missing or unclear. When the wallet answered with an error (answered),
// only a payment still in flight is unknown: the wallet handled the
// request and said no, so a settled invoice was paid before (by this
// wallet, which pays its own invoices only once) and anything else did not
// pay. Without an answer, only a settled invoice with its preimage (the
// proof of payment) is success and only a failed outgoing payment a
// failure.
func (d *driver) resolve(ctx context.Context, hash backend.PaymentHash, answered bool, cause error) (*backend.Payment, error) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(d.callTO, 10*time.Second))
	defer cancel()
	t, err := d.lookup(lctx, hash)
	switch {
	case answered && errors.Is(err, backend.ErrNotFound):
		return nil, fmt.Errorf("nwc: pay_invoice: %w: %v; the wallet has no record of it", backend.ErrPaymentFailed, cause)
	case err != nil:
		return nil, fmt.Errorf("nwc: pay_invoice: %w: %v; lookup_invoice then: %v", backend.ErrPaymentUnknown, cause, err)
	case answered && (t.State == "pending" && t.Type == "outgoing" || t.State == "accepted"):
		return nil, fmt.Errorf("nwc: pay_invoice: %w: %v; lookup_invoice shows it %s", backend.ErrPaymentUnknown, cause, t.State)
	case answered:
		return nil, fmt.Errorf("nwc: pay_invoice: %w: %v (lookup_invoice: %s %s)", backend.ErrPaymentFailed, cause, t.Type, t.State)
	}
	if t.Preimage != "" && (t.State == "settled" || t.State == "" && t.SettledAt != 0) {
		if p, perr := backend.ParsePreimage(t.Preimage); perr == nil && p.Matches(hash) {
			return &backend.Payment{PaymentHash: hash, Preimage: p, Fee: backend.MilliSat(t.FeesPaid)}, nil
		}
	}
	if t.Type == "outgoing" && t.State == "failed" {
		return nil, fmt.Errorf("nwc: pay_invoice: %w: %v; lookup_invoice shows the payment failed", backend.ErrPaymentFailed, cause)
	}
	return nil, fmt.Errorf("nwc: pay_invoice: %w: %v; lookup_invoice shows state %q", backend.ErrPaymentUnknown, cause, t.State)
}
