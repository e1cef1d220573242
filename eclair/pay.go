package eclair

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// PayInvoice implements backend.Payer: payinvoice starts the payment and
// returns its id at once; getsentinfo is then polled (quickly at first,
// then every PollInterval) until the payment is sent or failed, or
// opts.Timeout has passed, or ctx ends.
//
// A non-zero opts.MaxFee is sent as maxFeeFlatSat, rounded down to whole
// satoshis (Eclair's unit), with maxFeePct 0 so the flat cap is the cap;
// zero leaves Eclair's configured defaults.
//
// payinvoice that could not reach Eclair did not start the payment
// (ErrUnavailable); any other failure of it, and a payment still in flight
// when opts.Timeout passes or ctx ends, leave its fate unknown
// (ErrPaymentUnknown): getsentinfo with the id in the message will tell.
// Eclair is not told to stop at opts.Timeout (payinvoice has no such
// parameter), so waiting longer would only delay the same answer.
//
// An empty getsentinfo answer for the id payinvoice returned is a refusal,
// ErrPaymentFailed at once: Eclair's sentInfo (v0.10.0 and later, ACINQ/eclair
// #2142; read at v0.14.1, commit d769db07, Eclair.scala) answers a payment
// that PaymentInitiator has started but not yet written to its database
// with a pending placeholder taken from PaymentInitiator's own list, so an
// id found in neither was refused before anything was recorded
// (PaymentInitiator.scala: an invoice requiring features the node has
// disabled gets PaymentFailed(UnsupportedFeatures) after the id was
// already answered, and nothing is stored), and stays unknown for good.
func (b *driver) PayInvoice(ctx context.Context, bolt11 string, opts backend.PayOptions) (*backend.Payment, error) {
	form := url.Values{"invoice": {bolt11}}
	if opts.Amount > 0 {
		form.Set("amountMsat", strconv.FormatInt(int64(opts.Amount), 10))
	}
	if opts.MaxFee > 0 {
		form.Set("maxFeeFlatSat", strconv.FormatInt(opts.MaxFee.Sats(), 10))
		form.Set("maxFeePct", "0")
	}
	start := time.Now()
	var id string
	if err := b.call(ctx, "payinvoice", form, &id); err != nil {
		var apiErr *APIError
		switch {
		case errors.Is(err, errNotSent):
			return nil, err
		case errors.As(err, &apiErr) && apiErr.Status < 500 && apiErr.Status != 408:
			// Eclair refused the request as such: nothing started.
			return nil, err
		}
		return nil, fmt.Errorf("eclair: payinvoice: %w: %v", backend.ErrPaymentUnknown, err)
	}
	if id == "" {
		return nil, fmt.Errorf("eclair: payinvoice: %w: empty payment id", backend.ErrPaymentUnknown)
	}
	return b.waitSent(ctx, id, start.Add(opts.Timeout), opts.Timeout)
}

// waitSent polls getsentinfo for the payment id until it is sent or failed,
// the deadline (the caller's PayOptions.Timeout after it started) passes,
// or ctx ends; see PayInvoice.
func (b *driver) waitSent(ctx context.Context, id string, deadline time.Time, timeout time.Duration) (*backend.Payment, error) {
	pctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	wait := 20 * time.Millisecond
	var lastErr error
	for {
		var recs []outgoingPayment
		err := b.call(pctx, "getsentinfo", url.Values{"id": {id}}, &recs)
		switch {
		case err == nil && len(recs) == 0:
			return nil, fmt.Errorf("eclair: payment %s: %w: Eclair refused it before recording it (getsentinfo knows no such payment, nor a pending one)", id, backend.ErrPaymentFailed)
		case err == nil:
			pay, done, perr := sentOutcome(recs)
			if done {
				if perr != nil {
					return nil, fmt.Errorf("eclair: payment %s: %w", id, perr)
				}
				if h, err := backend.ParsePaymentHash(recs[0].PaymentHash); err == nil {
					pay.PaymentHash = h
				}
				return pay, nil
			}
		case errors.Is(err, backend.ErrUnavailable):
			// The payment is in the node's hands; keep asking until the
			// node answers or time runs out.
			lastErr = err
		case pctx.Err() != nil:
			lastErr = err
		default:
			return nil, fmt.Errorf("eclair: payment %s: %w: %v", id, backend.ErrPaymentUnknown, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-pctx.Done():
			t.Stop()
			why := ctx.Err()
			if why == nil {
				why = fmt.Errorf("%w: PayOptions.Timeout (%s) passed", backend.ErrPaymentUnknown, timeout)
			}
			if lastErr != nil {
				return nil, fmt.Errorf("eclair: payment %s still in flight (last error: %v): %w", id, lastErr, why)
			}
			return nil, fmt.Errorf("eclair: payment %s still in flight: %w", id, why)
		case <-t.C:
		}
		if wait *= 2; wait > b.poll {
			wait = b.poll
		}
	}
}

// LimitsFees implements backend.FeeLimiter: payinvoice takes maxFeeFlatSat.
func (b *driver) LimitsFees() {}
