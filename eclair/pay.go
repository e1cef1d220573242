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
// opts.Timeout (default one minute) runs out.
//
// A non-zero opts.MaxFee is sent as maxFeeFlatSat, rounded down to whole
// satoshis (Eclair's unit), with maxFeePct 0 so the flat cap is the cap;
// zero leaves Eclair's configured defaults.
//
// When the time runs out with the payment in flight, the error wraps
// context.DeadlineExceeded, not ErrPaymentFailed: the payment may still
// succeed, and getsentinfo with the id in the message will tell.
func (b *Backend) PayInvoice(ctx context.Context, bolt11 string, opts backend.PayOptions) (*backend.Payment, error) {
	d, err := backend.DecodeInvoice(bolt11)
	if err != nil {
		return nil, fmt.Errorf("eclair: %w", err)
	}
	form := url.Values{"invoice": {bolt11}}
	switch {
	case opts.Amount < 0 || opts.MaxFee < 0:
		return nil, fmt.Errorf("eclair: %w: negative amount or fee limit", backend.ErrInvalid)
	case d.Amount == 0 && opts.Amount == 0:
		return nil, fmt.Errorf("eclair: %w: any-amount invoice needs PayOptions.Amount", backend.ErrInvalid)
	case d.Amount == 0:
		form.Set("amountMsat", strconv.FormatInt(int64(opts.Amount), 10))
	case opts.Amount != 0 && opts.Amount != d.Amount:
		return nil, fmt.Errorf("eclair: %w: invoice asks %s, PayOptions.Amount is %s", backend.ErrInvalid, d.Amount, opts.Amount)
	}
	if opts.MaxFee > 0 {
		form.Set("maxFeeFlatSat", strconv.FormatInt(opts.MaxFee.Sats(), 10))
		form.Set("maxFeePct", "0")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var id string
	if err := b.call(ctx, "payinvoice", form, &id); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("eclair: payinvoice: %w: empty payment id", backend.ErrUnsupported)
	}

	wait := 20 * time.Millisecond
	var lastErr error
	for {
		var recs []outgoingPayment
		err := b.call(ctx, "getsentinfo", url.Values{"id": {id}}, &recs)
		switch {
		case err == nil:
			pay, done, perr := sentOutcome(d.PaymentHash, recs)
			if done {
				if perr != nil {
					return nil, fmt.Errorf("eclair: payment %s: %w", id, perr)
				}
				return pay, nil
			}
		case errors.Is(err, backend.ErrUnavailable):
			// The payment is in the node's hands; keep asking until the
			// node answers or time runs out.
			lastErr = err
		default:
			return nil, fmt.Errorf("eclair: payment %s: %w", id, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if lastErr != nil {
				return nil, fmt.Errorf("eclair: payment %s still in flight (last error: %v): %w", id, lastErr, ctx.Err())
			}
			return nil, fmt.Errorf("eclair: payment %s still in flight: %w", id, ctx.Err())
		case <-b.closed:
			t.Stop()
			return nil, fmt.Errorf("eclair: payment %s: %w: backend closed with the payment in flight", id, backend.ErrUnavailable)
		case <-t.C:
		}
		if wait *= 2; wait > b.poll {
			wait = b.poll
		}
	}
}
