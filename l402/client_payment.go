package l402

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// DefaultSchemes is the order in which a Transport prefers the schemes a
// 402 offers when Transport.Schemes is empty: L402 first, since one L402
// token is kept and reused for later requests its caveats allow, while a
// Payment charge pays for one request; then the legacy LSAT; then a
// Payment charge.
var DefaultSchemes = []string{SchemeL402, SchemeLSAT, SchemePayment}

// schemes returns the Transport's preference order.
func (t *Transport) schemes() []string {
	if len(t.Schemes) > 0 {
		return t.Schemes
	}
	return DefaultSchemes
}

// rank is a scheme's place in the preference order, or -1 when the
// Transport does not pay it.
func (t *Transport) rank(scheme string) int {
	return slices.IndexFunc(t.schemes(), func(s string) bool { return strings.EqualFold(s, scheme) })
}

// preferCharge decides whether a 402 is answered with one of its Payment
// challenges rather than an L402 or LSAT one: when it has Payment
// challenges, the Transport pays the scheme, and no L402 or LSAT challenge
// it would prefer could be read (l402s, l402Err as ParseChallenges gave
// them).
func (t *Transport) preferCharge(h http.Header, l402s []Challenge, l402Err error) ([]PaymentChallenge, bool) {
	pay := t.rank(SchemePayment)
	if pay < 0 {
		return nil, false
	}
	pcs, err := ParsePaymentChallenges(h)
	if err != nil && errors.Is(err, ErrNoPaymentChallenge) {
		return nil, false
	}
	if l402Err == nil {
		for _, c := range l402s {
			if r := t.rank(c.Scheme); r >= 0 && r < pay {
				return nil, false
			}
		}
	}
	return pcs, true // pcs empty: Payment challenges none of which is readable
}

// ranked orders the L402 and LSAT challenges ParseChallenges read by the
// preference order, stably, leaving out the schemes the Transport does not
// pay; none left is ErrNoChallenge (the response is the caller's).
func (t *Transport) ranked(chs []Challenge, err error) ([]Challenge, error) {
	if err != nil {
		return chs, err
	}
	out := make([]Challenge, 0, len(chs))
	for _, c := range chs {
		if t.rank(c.Scheme) >= 0 {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w that this Transport pays (Schemes %v)", ErrNoChallenge, t.schemes())
	}
	slices.SortStableFunc(out, func(a, b Challenge) int { return t.rank(a.Scheme) - t.rank(b.Scheme) })
	return out, nil
}

// pickCharge returns the first Lightning charge among pcs, or the reason
// none can be paid: ErrPaymentUnsupported for other methods and intents
// (a session, another payment network), ErrMalformed for one that cannot
// be read.
func pickCharge(pcs []PaymentChallenge) (PaymentChallenge, *backend.DecodedInvoice, error) {
	var firstErr error
	for _, c := range pcs {
		_, inv, err := c.Charge()
		if err == nil {
			return c, inv, nil
		}
		if firstErr == nil || errors.Is(firstErr, ErrPaymentUnsupported) && !errors.Is(err, ErrPaymentUnsupported) {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("%w: no readable Payment challenge", ErrMalformed)
	}
	return PaymentChallenge{}, nil, firstErr
}

// payCharge answers a 402 with a Lightning charge: it checks the charge
// against MaxPrice and its invoice, pays it, and sends the request again
// with the credential. A charge pays for this one request: nothing is
// cached. The response is returned whatever its status; its
// Payment-Receipt, when the server sent one, is read with
// ParsePaymentReceipt.
func (t *Transport) payCharge(ctx context.Context, req *http.Request, origin string, pcs []PaymentChallenge, replayable bool, send sendFunc) (*http.Response, error) {
	fail := func(err error) (*http.Response, error) {
		return nil, &ChallengeError{URL: req.URL.Redacted(), Scheme: SchemePayment, Err: err}
	}
	ch, inv, err := pickCharge(pcs)
	if err != nil {
		return fail(err)
	}
	if !replayable {
		return fail(fmt.Errorf("%w: %s %s (create it with http.NewRequest from a bytes or strings reader, or set GetBody)",
			ErrNotReplayable, req.Method, req.URL.Redacted()))
	}
	if t.Payer == nil {
		return fail(ErrNoPayer)
	}
	now := t.now()
	if !now.Before(inv.ExpiresAt()) {
		return fail(fmt.Errorf("%w: invoice expired at %s", ErrBadChallenge, inv.ExpiresAt().UTC().Format(time.RFC3339)))
	}
	if exp, ok, err := ch.ExpiresAt(); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrBadChallenge, err))
	} else if ok && !now.Before(exp) {
		return fail(fmt.Errorf("%w: challenge expired at %s", ErrBadChallenge, ch.Expires))
	}
	if inv.Amount <= 0 {
		return fail(fmt.Errorf("%w: invoice names no amount", ErrPriceTooHigh))
	}
	if inv.Amount > t.MaxPrice {
		return fail(fmt.Errorf("%w: %s asks %s, limit is %s", ErrPriceTooHigh, origin, inv.Amount, t.MaxPrice))
	}
	var entry LedgerEntry
	if t.Ledger != nil {
		timeout := t.PayTimeout
		if timeout <= 0 {
			timeout = time.Minute
		}
		entry, err = t.Ledger.Begin(ctx, PaymentIntent{
			Origin: origin, Host: strings.ToLower(req.URL.Host), URL: req.URL.Redacted(), Scheme: SchemePayment,
			Invoice: inv.PaymentRequest, PaymentHash: inv.PaymentHash, Amount: inv.Amount, MaxFee: t.MaxFee,
			Deadline: now.Add(timeout),
		})
		if err != nil {
			return fail(err)
		}
	}
	p, r, err := t.payInvoice(ctx, origin, req.URL.Redacted(), inv, entry)
	if err != nil {
		return nil, err
	}
	auth, err := NewChargeCredential(ch, p.Preimage).Authorization()
	if err != nil {
		return nil, err
	}
	resp, err := send(context.WithValue(ctx, receiptKey{}, r), auth)
	if err != nil {
		return nil, err
	}
	if pr, ok, err := ParsePaymentReceipt(resp.Header); err != nil {
		t.log.InfoContext(ctx, "l402: unreadable Payment-Receipt", "origin", origin, "err", err)
	} else if ok && !strings.EqualFold(pr.Reference, inv.PaymentHash.String()) {
		t.log.InfoContext(ctx, "l402: Payment-Receipt names another payment", "origin", origin, "reference", pr.Reference)
	}
	return resp, nil
}

// payInvoice pays one charge invoice under PayTimeout, checks the
// preimage, and reports the payment (OnPayment, and the Ledger's entry when
// there is one). A request canceled meanwhile returns at once; the payment
// goes on (it cannot be called back) and is reported when it completes.
func (t *Transport) payInvoice(ctx context.Context, origin, rawURL string, inv *backend.DecodedInvoice, entry LedgerEntry) (*backend.Payment, *Receipt, error) {
	timeout := t.PayTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	done := make(chan payment, 1)
	go func() {
		payCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		p, err := t.Payer.PayInvoice(payCtx, inv.PaymentRequest, backend.PayOptions{MaxFee: t.MaxFee, Timeout: timeout})
		done <- payment{p, err}
	}()
	finish := func(ctx context.Context, res payment) (*backend.Payment, *Receipt, error) {
		var (
			r   *Receipt
			err = res.err
		)
		if err != nil {
			err = fmt.Errorf("l402: pay %s for %s: %w", inv.Amount, origin, err)
		} else if !res.p.Preimage.Matches(inv.PaymentHash) {
			err = fmt.Errorf("l402: payer returned a preimage that does not match hash %s: %w", inv.PaymentHash, backend.ErrPaymentFailed)
		} else {
			r = &Receipt{Origin: origin, URL: rawURL, Scheme: SchemePayment, PaymentHash: inv.PaymentHash, Amount: res.p.Amount, Fee: res.p.Fee, Preimage: res.p.Preimage}
			if r.Amount == 0 {
				r.Amount = inv.Amount
			}
		}
		if entry != nil {
			// A charge buys no token: the Ledger is given none.
			t.record(ctx, entry, nil, r, err)
		}
		if err != nil {
			return nil, nil, err
		}
		t.report(ctx, r)
		return res.p, r, nil
	}
	select {
	case res := <-done:
		return finish(ctx, res)
	case <-ctx.Done():
		go func() {
			bg := context.WithoutCancel(ctx)
			if _, _, err := finish(bg, <-done); err != nil {
				t.log.InfoContext(bg, "l402: abandoned charge payment did not complete", "origin", origin, "err", err)
			}
		}()
		return nil, nil, fmt.Errorf("l402: payment to %s in flight: %w", origin, ctx.Err())
	}
}
