package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

// Grants: what a request with a token is let through with, and how a
// single-use token is used up (a held invoice settled, or a hash spent) or
// released once the upstream has answered.

// grant lets a request through; finish, set for single-use tokens, runs
// once the upstream answered, with its status, to settle or release what
// the token holds: a status of 500 or more releases it (the client's
// payment returns), anything else uses it up.
type grant struct {
	paid    bool
	tokenID string
	finish  func(status int)
	// meter, on a prepaid route, watches the response for its cost.
	meter *meter
	// receipt is the Payment-Receipt of a Payment charge, sent to the
	// client with the upstream's answer.
	receipt string
}

// resolve runs finish, if the grant has one.
func (g *grant) resolve(status int) {
	if g.finish != nil {
		g.finish(status)
	}
}

// gate decides about r on route. It returns nil when it has answered the
// request itself (challenge, refusal, unavailability).
func (p *Proxy) gate(w http.ResponseWriter, r *http.Request, route *Route, cred string) *grant {
	if route.Mode == ModeFree {
		p.m.requests.WithLabelValues(route.Name, "free").Inc()
		return &grant{}
	}
	req := l402.Request{Service: route.Name, Now: time.Now(), ClientIP: p.clientIP(r), Path: r.URL.Path, Method: r.Method,
		Origin: p.requestOrigin(r), ClientCert: p.requestCert(r)}
	if cred == "" {
		if route.Mode == ModeOptional && !wantsChallenge(r) {
			p.m.requests.WithLabelValues(route.Name, "free").Inc()
			return &grant{}
		}
		p.challenge(w, r, route, "")
		return nil
	}
	if l402.IsPaymentAuthorization(cred) {
		return p.gateCharge(w, r, route, cred)
	}
	if !route.offers(SchemeL402) {
		p.refuse(w, r, route, "scheme", errors.New("this route takes Payment credentials only"))
		return nil
	}
	if mac, ok := l402.ParsePendingAuthorization(cred); ok {
		// A macaroon without its preimage: the client's payment is in
		// flight, which only a held invoice of a single-use route can show.
		if !route.SingleUse || p.holder == nil {
			p.refuse(w, r, route, "no_preimage", errors.New("this route takes a token with its preimage"))
			return nil
		}
		id, err := p.verifier.VerifyPending(r.Context(), mac, req)
		if err != nil {
			p.tokenFailed(w, r, route, err)
			return nil
		}
		return p.track(p.useHeld(w, r, route, id, &grant{paid: true, tokenID: id.TokenID.String()}))
	}
	tok, err := p.parsed.parse(cred)
	if err != nil {
		p.refuse(w, r, route, "malformed", err)
		return nil
	}
	if err := p.verifier.Verify(r.Context(), tok, req); err != nil {
		p.tokenFailed(w, r, route, err)
		return nil
	}
	id := tok.ID // decoded from the macaroon by the parser; Verify checked the same bytes
	tokenExpires := p.markPaid(r.Context(), id.TokenID)
	g := &grant{paid: true, tokenID: id.TokenID.String()}
	if route.Bundle != nil {
		return p.track(p.draw(w, r, route, id.TokenID, tokenExpires, g))
	}
	if !route.SingleUse {
		p.m.requests.WithLabelValues(route.Name, "paid").Inc()
		return g
	}
	if p.holder != nil {
		return p.track(p.useHeld(w, r, route, id, g))
	}
	return p.track(p.useSpent(w, r, route, id, tokenExpires, g))
}

// track counts a single-use grant as in flight until it is resolved, for
// Drain.
func (p *Proxy) track(g *grant) *grant {
	if g == nil || g.finish == nil {
		return g
	}
	p.inflight.Add(1)
	f := g.finish
	var once sync.Once
	g.finish = func(status int) {
		once.Do(func() {
			defer p.inflight.Done()
			f(status)
		})
	}
	return g
}

// Drain waits until every single-use grant given so far is resolved: its
// hold invoice settled or canceled, or its spent mark kept or released.
// A server calls it after http.Server.Shutdown, so that stopping never
// leaves a client's payment held. It returns ctx's error if that ends
// first.
func (p *Proxy) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		p.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("proxy: single-use requests still in flight: %w", ctx.Err())
	}
}

// markPaid records, once per token, that its invoice was paid, so its root
// key is kept past the invoice's expiry. A store that cannot take the note
// does not stop the request: the collector asks the node before it drops a
// record not marked paid. It returns the token's expiry (zero for none).
func (p *Proxy) markPaid(ctx context.Context, id l402.TokenID) time.Time {
	until, err := p.keys.paid(ctx, id)
	if err != nil {
		p.log.Warn("could not record a token as paid", "token", id.String(), "err", err)
	}
	return until
}

// tokenFailed answers a token the verifier did not accept: refused when the
// token is at fault, 503 when the root key store could not answer.
func (p *Proxy) tokenFailed(w http.ResponseWriter, r *http.Request, route *Route, err error) {
	if isTokenError(err) {
		p.refuse(w, r, route, reason(err), err)
		return
	}
	p.unavailable(w, route, "token store unavailable", err)
}

func isTokenError(err error) bool {
	for _, e := range []error{l402.ErrMalformed, l402.ErrUnknownToken, l402.ErrBadSignature, l402.ErrWrongPreimage, l402.ErrCaveat, l402.ErrExpired} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func reason(err error) string {
	switch {
	case errors.Is(err, l402.ErrExpired):
		return "expired"
	case errors.Is(err, l402.ErrWrongPreimage):
		return "wrong_preimage"
	case errors.Is(err, l402.ErrBadSignature):
		return "bad_signature"
	case errors.Is(err, l402.ErrUnknownToken):
		return "unknown_token"
	case errors.Is(err, l402.ErrCaveat):
		return "caveat"
	}
	return "malformed"
}

// useHeld serves a single-use token on a hold-invoice backend: the invoice
// must be Held (paid, not settled); it is settled after the upstream answers
// below 500 and canceled otherwise, so the client gets its payment back.
func (p *Proxy) useHeld(w http.ResponseWriter, r *http.Request, route *Route, id l402.Identifier, g *grant) *grant {
	hash := id.PaymentHash
	inv, err := p.lookup(r.Context(), hash)
	if err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			p.refuse(w, r, route, "unknown_invoice", err)
		} else {
			p.unavailable(w, route, "cannot check the payment", err)
		}
		return nil
	}
	switch inv.State {
	case backend.StateOpen:
		if inv.Expired(time.Now()) {
			p.refuse(w, r, route, "expired", errors.New("the invoice expired unpaid"))
			return nil
		}
		p.m.requests.WithLabelValues(route.Name, "pending").Inc()
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusPaymentRequired, "payment not received yet; retry once it is in flight", "payment_pending")
		return nil
	case backend.StateSettled:
		p.unpaid.remove(hash)
		p.refuse(w, r, route, "used", errors.New("single-use token already used"))
		return nil
	case backend.StateCanceled:
		p.unpaid.remove(hash)
		p.refuse(w, r, route, "canceled", errors.New("the invoice was canceled"))
		return nil
	}
	p.unpaid.remove(hash) // held: paid, no longer counts against its client
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.NodeTimeout)
	defer cancel()
	held, err := p.store.ClaimHold(ctx, hash, p.cfg.Instance, time.Now())
	switch {
	case errors.Is(err, ErrNoRecord) || errors.Is(err, ErrHoldClaimed):
		// Another request is using the token right now, or the preimage
		// is gone (resolved already): either way not servable.
		p.refuse(w, r, route, "used", errors.New("single-use token in use or already resolved"))
		return nil
	case err != nil:
		p.unavailable(w, route, "hold store unavailable", err)
		return nil
	}
	p.markPaid(r.Context(), id.TokenID)
	pre := held.Preimage
	p.m.requests.WithLabelValues(route.Name, "paid").Inc()
	g.finish = func(status int) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), p.cfg.NodeTimeout)
		defer cancel()
		var err error
		if status >= 500 {
			err = p.nodeCall("cancel", func() error { return p.holder.CancelInvoice(ctx, hash) })
		} else {
			err = p.nodeCall("settle", func() error { return p.holder.SettleInvoice(ctx, pre) })
		}
		if err != nil {
			// Keep the preimage: a later retry of the request can still
			// settle, and an unsettled hold expires back to the payer.
			p.log.Error("single-use hold invoice not resolved", "route", route.Name, "hash", hash.String(), "upstream_status", status, "err", err)
			if err := p.store.ReleaseHold(ctx, hash); err != nil {
				p.log.Error("could not release a held payment's claim; the collector resolves it after ClaimTimeout", "hash", hash.String(), "err", err)
			}
			return
		}
		if err := p.store.DeleteHold(ctx, hash); err != nil {
			p.log.Warn("could not forget a resolved hold invoice; the collector retries", "hash", hash.String(), "err", err)
		}
	}
	return g
}

// useSpent serves a single-use token on a backend without hold invoices by
// recording its payment hash; a 5xx from the upstream forgets it again.
func (p *Proxy) useSpent(w http.ResponseWriter, r *http.Request, route *Route, id l402.Identifier, tokenExpires time.Time, g *grant) *grant {
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.NodeTimeout)
	defer cancel()
	// Once the token expires it cannot verify, so its hash need not be
	// kept longer.
	first, err := p.store.Spend(ctx, id.PaymentHash, tokenExpires)
	if err != nil {
		p.unavailable(w, route, "spent-token store unavailable", err)
		return nil
	}
	if !first {
		p.refuse(w, r, route, "used", errors.New("single-use token already used"))
		return nil
	}
	p.m.requests.WithLabelValues(route.Name, "paid").Inc()
	g.finish = func(status int) {
		if status < 500 {
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), p.cfg.NodeTimeout)
		defer cancel()
		if err := p.store.Unspend(ctx, id.PaymentHash); err != nil {
			p.log.Error("could not release single-use token after upstream failure", "route", route.Name, "err", err)
		}
	}
	return g
}
