package l402

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// sendFunc sends the request again with an Authorization value.
type sendFunc func(ctx context.Context, auth string) (*http.Response, error)

// obtain returns a token for the request: one another request cached while
// this one waited, or a new one paid for with ch. Only one request per
// origin pays at a time, so a burst of requests pays once. When the server
// served the request while the payment was in flight (single-use route on a
// hold invoice), it returns that response instead of a token.
func (t *Transport) obtain(ctx context.Context, origin string, req *http.Request, sent *Token, ch Challenge, send sendFunc) (*Token, *Receipt, *http.Response, error) {
	q, err := t.check(origin, ch)
	if err != nil {
		return nil, nil, nil, &ChallengeError{URL: req.URL.Redacted(), Scheme: ch.Scheme, Err: err}
	}
	unlock, err := t.lock(ctx, origin)
	if err != nil {
		return nil, nil, nil, err
	}
	defer unlock()
	if cur, _ := t.cached(origin, req.Method, req.URL.Path); cur != nil && !sameCredential(cur, sent) {
		return cur, nil, nil, nil
	}
	if t.Ledger != nil {
		if q.entry, err = t.Ledger.Begin(ctx, t.intent(origin, req.URL, q)); err != nil {
			return nil, nil, nil, &ChallengeError{URL: req.URL.Redacted(), Scheme: ch.Scheme, Err: err}
		}
	}
	tok, receipt, served, err := t.pay(ctx, origin, req.URL, q, send)
	if err != nil || served != nil {
		return nil, nil, served, err
	}
	t.cache.Put(CacheKey(origin, tok), tok)
	return tok, receipt, nil, nil
}

// payment is what the payer goroutine reports.
type payment struct {
	p   *backend.Payment
	err error
}

// offer is what a checked challenge asks: the payment hash (the
// invoice's) and the amount.
type offer struct {
	ch     Challenge
	hash   backend.PaymentHash
	amount backend.MilliSat
	// entry is the Ledger's record of the payment, when there is a Ledger.
	entry LedgerEntry
}

// check decides whether ch may be paid. The hash comes from the invoice,
// which is what the payment proves; the identifier, where readable, must
// agree with it.
func (t *Transport) check(origin string, ch Challenge) (*offer, error) {
	if t.Payer == nil {
		return nil, ErrNoPayer
	}
	inv, err := backend.DecodeInvoice(ch.Invoice)
	if err != nil {
		return nil, fmt.Errorf("%w: invoice: %v", ErrBadChallenge, err)
	}
	if idHash, err := PaymentHashOf(ch.Macaroon.Id()); err == nil && idHash != inv.PaymentHash {
		return nil, fmt.Errorf("%w: invoice pays hash %s but the macaroon commits to %s",
			ErrBadChallenge, inv.PaymentHash, idHash)
	}
	if now := t.now(); !now.Before(inv.ExpiresAt()) {
		return nil, fmt.Errorf("%w: invoice expired at %s", ErrBadChallenge, inv.ExpiresAt().UTC().Format(time.RFC3339))
	}
	if inv.Amount <= 0 {
		return nil, fmt.Errorf("%w: invoice names no amount", ErrPriceTooHigh)
	}
	if inv.Amount > t.MaxPrice {
		return nil, fmt.Errorf("%w: %s asks %s, limit is %s", ErrPriceTooHigh, origin, inv.Amount, t.MaxPrice)
	}
	return &offer{ch: ch, hash: inv.PaymentHash, amount: inv.Amount}, nil
}

func (t *Transport) pay(ctx context.Context, origin string, u *url.URL, q *offer, send sendFunc) (*Token, *Receipt, *http.Response, error) {
	timeout := t.PayTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	done := make(chan payment, 1)
	go func() {
		payCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		p, err := t.Payer.PayInvoice(payCtx, q.ch.Invoice, backend.PayOptions{MaxFee: t.MaxFee, Timeout: timeout})
		done <- payment{p, err}
	}()
	if q.ch.InFlight {
		if tok, r, served, handled, err := t.presentInFlight(ctx, origin, u, q, send, done); handled {
			return tok, r, served, err
		}
	}
	select {
	case res := <-done:
		tok, r, err := t.paid(ctx, origin, u, q, res)
		return tok, r, nil, err
	case <-ctx.Done():
		go t.adopt(ctx, origin, u, q, done)
		return nil, nil, nil, fmt.Errorf("l402: payment to %s in flight: %w: %w", origin, backend.ErrPaymentUnknown, ctx.Err())
	}
}

// presentInFlight presents the macaroon alone to a server that advertised
// it, once the payment has run for InFlightAfter: perhaps a hold invoice
// that the server settles only after serving the request. ok is false when
// handled is false when the caller should wait for the payment and present
// the preimage.
func (t *Transport) presentInFlight(ctx context.Context, origin string, u *url.URL, q *offer, send sendFunc, done <-chan payment) (tok *Token, r *Receipt, served *http.Response, handled bool, err error) {
	wait := t.InFlightAfter
	if wait <= 0 {
		wait = DefaultInFlightAfter
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case res := <-done:
		tok, r, err := t.paid(ctx, origin, u, q, res)
		return tok, r, nil, true, err
	case <-timer.C:
	case <-ctx.Done():
		return nil, nil, nil, false, nil
	}
	pending := PendingAuthorization(q.ch.Macaroon)
	if q.ch.encoded != "" {
		pending = SchemeL402 + " " + q.ch.encoded + ":"
	}
	for {
		resp, err := send(ctx, pending)
		if err != nil {
			return nil, nil, nil, false, nil // the payment's own outcome decides
		}
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			discard(resp)
			return nil, nil, nil, false, nil
		case resp.StatusCode != http.StatusPaymentRequired:
			t.log.DebugContext(ctx, "l402: served while the payment is in flight", "origin", origin, "status", resp.StatusCode)
			resp.Body = &settleOnClose{ReadCloser: resp.Body, t: t, ctx: ctx, origin: origin, u: u, q: q, done: done}
			return nil, nil, resp, true, nil
		}
		_, challenged := resp.Header[http.CanonicalHeaderKey(HeaderWWWAuthenticate)]
		retryAfter := resp.Header.Get("Retry-After")
		discard(resp)
		if challenged {
			// The server wants the preimage after all.
			return nil, nil, nil, false, nil
		}
		// Not arrived yet: try again shortly, or as soon as the payment
		// completes.
		delay := 200 * time.Millisecond
		if secs, err := time.ParseDuration(retryAfter + "s"); err == nil && secs < delay {
			delay = secs
		}
		select {
		case res := <-done:
			tok, r, err := t.paid(ctx, origin, u, q, res)
			return tok, r, nil, true, err
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, nil, nil, false, nil
		}
	}
}

// adopt waits for a payment whose request gave up, then caches and reports
// its token as if the request had waited: the money is spent either way.
func (t *Transport) adopt(ctx context.Context, origin string, u *url.URL, q *offer, done <-chan payment) {
	ctx = context.WithoutCancel(ctx)
	tok, r, err := t.complete(ctx, origin, u, q, <-done)
	if err != nil {
		t.log.InfoContext(ctx, "l402: abandoned payment did not complete", "origin", origin, "err", err)
		return
	}
	t.cache.Put(CacheKey(origin, tok), tok)
	t.report(ctx, r)
}

// paid turns a finished payment into a token and reports it.
func (t *Transport) paid(ctx context.Context, origin string, u *url.URL, q *offer, res payment) (*Token, *Receipt, error) {
	tok, r, err := t.complete(ctx, origin, u, q, res)
	if err == nil {
		t.report(ctx, r)
	}
	return tok, r, err
}

// complete checks a finished payment and makes its token and receipt.
func (t *Transport) complete(ctx context.Context, origin string, u *url.URL, q *offer, res payment) (tok *Token, r *Receipt, err error) {
	if q.entry != nil {
		defer func() { t.record(ctx, q.entry, tok, r, err) }()
	}
	if res.err != nil {
		return nil, nil, fmt.Errorf("l402: pay %s for %s: %w", q.amount, origin, res.err)
	}
	p := res.p
	if !p.Preimage.Matches(q.hash) {
		return nil, nil, fmt.Errorf("l402: payer returned a preimage that does not match hash %s: %w",
			q.hash, backend.ErrPaymentFailed)
	}
	amount := p.Amount
	if amount == 0 {
		amount = q.amount
	}
	r = &Receipt{
		Origin: origin, URL: u.Redacted(), Scheme: q.ch.Scheme,
		PaymentHash: q.hash, Amount: amount, Fee: p.Fee, Preimage: p.Preimage,
	}
	id, err := DecodeIdentifier(q.ch.Macaroon.Id())
	if err != nil {
		id = Identifier{PaymentHash: q.hash} // another server's layout
	}
	return &Token{Macaroon: q.ch.Macaroon, Preimage: p.Preimage, ID: id, encoded: q.ch.encoded}, r, nil
}

// settleOnClose is the body of a response served while its payment was in
// flight. The server settles (or, after a failure, cancels) the payment once
// it has answered, so Close waits for the payment's outcome and reports it:
// the caller learns what was paid when it is done with the body.
type settleOnClose struct {
	io.ReadCloser
	t      *Transport
	ctx    context.Context
	origin string
	u      *url.URL
	q      *offer
	done   <-chan payment
	once   sync.Once
}

func (b *settleOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		select {
		case res := <-b.done:
			if _, _, perr := b.t.paid(b.ctx, b.origin, b.u, b.q, res); perr != nil {
				// A canceled hold returns the money: nothing was paid.
				b.t.log.InfoContext(b.ctx, "l402: in-flight payment did not complete", "origin", b.origin, "err", perr)
			}
		case <-b.ctx.Done():
			// Report it when it completes, without holding up Close.
			go func() {
				ctx := context.WithoutCancel(b.ctx)
				if _, _, err := b.t.paid(ctx, b.origin, b.u, b.q, <-b.done); err != nil {
					b.t.log.InfoContext(ctx, "l402: in-flight payment did not complete", "origin", b.origin, "err", err)
				}
			}()
		}
	})
	return err
}
