package cln

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// PayInvoice implements backend.Payer with xpay where the node has it
// (v24.11 and later; v27.03 has nothing else) and pay on older nodes: which
// one New chose from help (payMethod). retry_for is opts.Timeout, so the
// node stops trying before the Backend stops waiting; maxfee is opts.MaxFee
// (zero leaves the node's default: xpay's 5000 msat or 1%, whichever is
// greater; pay's 0.5% with 5 sat exempt).
//
// listpays is asked first: a complete payment of the invoice is
// ErrPaymentFailed (xpay would answer 219, pay the earlier success again,
// paying nothing either way), a pending one ErrPaymentUnknown. After an
// error whose outcome is not certain (xpay's 209, -1 or a plugin error,
// pay's 200, a connection lost mid-call) listpays is asked again instead of
// guessing: a complete payment is the success (with its preimage), one
// with a part still in flight ErrPaymentUnknown (xpay gives up without
// waiting for parts in flight), a failed or unrecorded one
// ErrPaymentFailed when the node answered, ErrPaymentUnknown when it did
// not. Nothing is ever sent twice.
func (b *driver) PayInvoice(ctx context.Context, bolt11 string, opts backend.PayOptions) (*backend.Payment, error) {
	d, err := backend.DecodeInvoice(bolt11)
	if err != nil {
		return nil, err
	}
	earlier, err := b.listpays(ctx, d.PaymentHash)
	if err != nil {
		return nil, err // nothing was sent yet
	}
	switch payStatus(earlier) {
	case "complete":
		return nil, fmt.Errorf("cln: %s: %w: invoice is already paid (listpays)", b.payMethod, backend.ErrPaymentFailed)
	case "pending":
		return nil, fmt.Errorf("cln: %s: %w: a payment of this invoice is in flight (listpays)", b.payMethod, backend.ErrPaymentUnknown)
	}
	retryFor := int64((opts.Timeout + time.Second - 1) / time.Second)
	switch b.payMethod {
	case "xpay":
		return b.xpay(ctx, d.PaymentHash, xpayParams{Invstring: bolt11, AmountMsat: int64(opts.Amount), MaxFee: int64(opts.MaxFee), RetryFor: retryFor})
	case "pay":
		return b.pay(ctx, d.PaymentHash, payParams{Bolt11: bolt11, AmountMsat: int64(opts.Amount), MaxFee: int64(opts.MaxFee), RetryFor: retryFor})
	}
	return nil, fmt.Errorf("cln: %w: the node has neither xpay nor pay (help knows neither)", backend.ErrUnsupported)
}

// listpays returns this node's payments of hash.
func (b *driver) listpays(ctx context.Context, hash backend.PaymentHash) ([]listPaysEntry, error) {
	var res listPaysResult
	if err := b.call(ctx, "listpays", map[string]string{"payment_hash": hash.String()}, &res); err != nil {
		return nil, err
	}
	return res.Pays, nil
}

// payStatus sums up a payment's attempts: "complete" if one completed,
// else "pending" if one has a part in flight, else "failed", or "" when
// there is none.
func payStatus(pays []listPaysEntry) string {
	out := ""
	for _, p := range pays {
		switch {
		case p.Status == "complete":
			return "complete"
		case p.Status == "pending":
			out = "pending"
		case out == "":
			out = "failed"
		}
	}
	return out
}

// xpay pays with xpay. Its success has no status: it is complete.
func (b *driver) xpay(ctx context.Context, hash backend.PaymentHash, p xpayParams) (*backend.Payment, error) {
	var res xpayResult
	err := b.call(ctx, "xpay", p, &res)
	if err == nil {
		return payment(hash, res.PaymentPreimage, res.AmountMsat, res.AmountSentMsat)
	}
	var rerr *RPCError
	if errors.As(err, &rerr) {
		switch rerr.Code {
		case codeXpayAlreadyPaid:
			return nil, fmt.Errorf("cln: xpay: %w: invoice is already paid: %w", backend.ErrPaymentFailed, rerr)
		case codeDestPermFail, codeRouteNotFound, codeInvoiceExpired:
			return nil, err // classify: ErrPaymentFailed
		case codeInvalidParams, codeInvalidRequest, codeMethodNotFound:
			return nil, err // refused before anything was sent
		}
		if rerr.Code >= codeRuneNotAuthorized && rerr.Code <= codeRuneBlacklisted {
			return nil, err
		}
		// 209 (other, among them "Timed out" with parts still in
		// flight), -1, a plugin error, 200: ask what became of it.
		return b.resolve(ctx, "xpay", hash, true, err)
	}
	return b.resolve(ctx, "xpay", hash, false, err)
}

// pay pays with pay (nodes before v24.11, or without the xpay plugin).
func (b *driver) pay(ctx context.Context, hash backend.PaymentHash, p payParams) (*backend.Payment, error) {
	start := time.Now()
	var res payResult
	err := b.call(ctx, "pay", p, &res)
	var rerr *RPCError
	switch {
	case errors.As(err, &rerr) && rerr.Code == codePayInProgress:
		return b.resolve(ctx, "pay", hash, true, err)
	case errors.As(err, &rerr):
		return nil, err
	case err != nil:
		return b.resolve(ctx, "pay", hash, false, err)
	}
	switch {
	case res.Status == "pending":
		return b.resolve(ctx, "pay", hash, true, fmt.Errorf("status %q", res.Status))
	case res.Status != "complete":
		return nil, fmt.Errorf("cln: pay: %w: status %q", backend.ErrPaymentFailed, res.Status)
	case res.CreatedAt > 0 && res.CreatedAt < float64(start.Add(-2*time.Second).UnixMilli())/1000:
		return nil, fmt.Errorf("cln: pay: %w: invoice is already paid (pay returned the payment of %s)",
			backend.ErrPaymentFailed, time.UnixMilli(int64(res.CreatedAt*1000)).UTC().Format(time.RFC3339))
	}
	return payment(hash, res.PaymentPreimage, res.AmountMsat, res.AmountSentMsat)
}

// payment builds the result of a complete payment.
func payment(hash backend.PaymentHash, preimage string, amount, sent Msat) (*backend.Payment, error) {
	pre, err := backend.ParsePreimage(preimage)
	if err != nil {
		return nil, fmt.Errorf("cln: %w: payment of %s completed with an unreadable preimage: %w", backend.ErrPaymentUnknown, hash, err)
	}
	return &backend.Payment{
		PaymentHash: hash,
		Preimage:    pre,
		Amount:      backend.MilliSat(amount),
		Fee:         backend.MilliSat(sent - amount),
	}, nil
}

// resolve asks listpays what became of a payment whose call ended without
// a certain outcome (cause). answered says the node replied: a payment it
// did not record, or recorded as failed, then certainly did not pay. A
// connection that failed before the request left is no payment at all; a
// context that ended leaves nothing to ask with.
func (b *driver) resolve(ctx context.Context, method string, hash backend.PaymentHash, answered bool, cause error) (*backend.Payment, error) {
	if errors.Is(cause, errNotSent) {
		return nil, cause
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("cln: %s: %w: %w", method, backend.ErrPaymentUnknown, cause)
	}
	pays, err := b.listpays(ctx, hash)
	if err != nil {
		return nil, fmt.Errorf("cln: %s: %w: %v; and listpays failed: %v", method, backend.ErrPaymentUnknown, cause, err)
	}
	switch payStatus(pays) {
	case "complete":
		for _, p := range pays {
			if p.Status == "complete" {
				b.log.Debug("cln: payment completed despite the error", "method", method, "hash", hash, "err", cause)
				return payment(hash, p.Preimage, p.AmountMsat, p.AmountSentMsat)
			}
		}
	case "pending":
		return nil, fmt.Errorf("cln: %s: %w: a part is still in flight (listpays): %v", method, backend.ErrPaymentUnknown, cause)
	}
	if answered {
		return nil, fmt.Errorf("cln: %s: %w: nothing in flight (listpays): %v", method, backend.ErrPaymentFailed, cause)
	}
	return nil, fmt.Errorf("cln: %s: %w: the node went away during the call: %v", method, backend.ErrPaymentUnknown, cause)
}
