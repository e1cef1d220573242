package proxy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"gopkg.in/macaroon.v2"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

// Challenges: issuing a 402 with a fresh invoice and minting the token and
// its durable record beside it.

// challenge answers 402 with a fresh invoice and macaroon.
//
// On a KeyStore (the default) the token's root key is derived from the
// store's master secret and its id, and its expiry rides in the id, so a
// challenge on a plain route, single-use ones spending hashes included,
// writes nothing durable: it costs the node call and the minting. Nothing
// is written behind either: the record of an unpaid challenge served only
// to find its root key and to drop it once its invoice expired unpaid, and
// an unpaid token is worthless without the preimage that only paying its
// invoice gives. Single use is enforced when a token is used (Spend, a
// hold's claim), never at the challenge, so it holds across restarts and
// instances as before. Two kinds of challenge still write before their
// 402: a hold route's (the preimage the proxy chose, which it needs to
// settle, its claim and the bound on open holds) and a top-up's (the link
// sending its payment to the balance being topped up); so does every
// challenge with Config.StoredRootKeys or on a Store that is no KeyStore
// (the token's record with its random root key).
//
// Such a write is made while the node makes the invoice, so a challenge
// costs the slower of the two rather than their sum. That needs the payment
// hash before the node answers: the proxy chooses the preimage itself, as it
// must for a hold invoice, and for a plain one hands it to the node
// (InvoiceRequest.Preimage) and forgets it, the node keeping it as it would
// its own. A backend that refuses to be given a preimage (phoenixd, LNURL)
// gets the sequential path from then on: invoice first, then the record.
//
// What must not be lost stays ordered: the 402 leaves only once the write
// has returned, so a client never holds a token whose root key (or hold
// preimage) a restart could lose. If the write fails no 402 is sent, and a
// hold invoice already made is canceled. The invoice may exist on the node
// a moment before its record is durable; a crash in that moment leaves an
// invoice no client was ever shown, so nobody pays it and it expires.
//
// A route that offers the Payment scheme gets a charge challenge too, on an
// invoice of its own made beside the L402 one (a Payment-only route gets
// only that), and its 402 body is an RFC 9457 problem document: of type
// payment-required, or of the type problem calls for when a Payment
// credential was refused. A challenge that fails for one scheme while the
// other's succeeds is sent with the one that succeeded.
func (p *Proxy) challenge(w http.ResponseWriter, r *http.Request, route *Route, why string) {
	p.challengeFor(w, r, route, why, nil, nil)
}

// challengeWith is challenge for a refused Payment credential, problem
// being why.
func (p *Proxy) challengeWith(w http.ResponseWriter, r *http.Request, route *Route, why string, problem error) {
	p.challengeFor(w, r, route, why, nil, problem)
}

// challengeTopUp answers 402 with a challenge whose token, once paid,
// credits the balance acc instead of opening its own.
func (p *Proxy) challengeTopUp(w http.ResponseWriter, r *http.Request, route *Route, acc AccountID, why string) {
	p.challengeFor(w, r, route, why, &acc, nil)
}

// challengeFor is challenge, for a top-up of the balance topUp when set
// (then with L402 only, as bundles are sold), and for a refused Payment
// credential when problem is set.
func (p *Proxy) challengeFor(w http.ResponseWriter, r *http.Request, route *Route, why string, topUp *AccountID, problem error) {
	bound, opaque, rerr := p.bindings(r, route)
	if rerr != nil {
		p.m.requests.WithLabelValues(route.Name, "refused").Inc()
		status := http.StatusBadRequest
		if rerr.Reason == ReasonClientCert {
			status = http.StatusForbidden
		}
		writeError(w, status, rerr.Msg, rerr.Reason)
		return
	}
	client := p.clientIP(r)
	if !p.limit.allow(client.String(), time.Now()) {
		p.m.requests.WithLabelValues(route.Name, "rate_limited").Inc()
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusTooManyRequests, "too many payment challenges from this address; retry later", "rate_limited")
		return
	}
	price, err := route.price(r)
	if err != nil {
		p.log.Error("price function failed", "route", route.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "cannot price this request", "")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.NodeTimeout)
	defer cancel()
	var (
		charge    l402.PaymentChallenge
		chargeErr error
		chargeWG  sync.WaitGroup
	)
	offersCharge := route.offers(SchemePayment) && topUp == nil
	if offersCharge {
		chargeWG.Go(func() { charge, _, chargeErr = p.issueCharge(ctx, route, price, opaque) })
	}
	if !route.offers(SchemeL402) {
		chargeWG.Wait()
		if chargeErr != nil {
			p.challengeFailed(w, route, chargeErr)
			return
		}
		w.Header().Add(l402.HeaderWWWAuthenticate, charge.Header())
		p.m.challenges.WithLabelValues(route.Name).Inc()
		p.m.requests.WithLabelValues(route.Name, "challenged").Inc()
		writeProblemChallenge(w, problemMsg(why, price, route), problem, charge, nil, price)
		return
	}
	req := backend.InvoiceRequest{Amount: price, Memo: route.Memo, Expiry: route.InvoiceExpiry}
	hold := route.SingleUse && p.holder != nil
	if hold && !p.makeRoom(ctx, w, route, client) {
		chargeWG.Wait()
		return
	}
	caveats := []l402.Caveat{
		l402.ServicesCaveat(l402.Service{Name: route.Name}),
		l402.PathPrefixCaveat(route.PathPrefix),
	}
	var tokenExpires time.Time
	if route.TokenLifetime > 0 {
		tokenExpires = time.Now().Add(route.TokenLifetime)
		caveats = append(caveats, l402.ValidUntilCaveat(route.Name, tokenExpires))
	}
	caveats = append(caveats, route.Caveats...)
	caveats = append(caveats, bound...)
	c := challengeRecord{TokenRecord: TokenRecord{Route: route.Name, Client: client.String(), TokenExpires: tokenExpires}}
	c.topUp = topUp

	var (
		inv *backend.Invoice
		mac *macaroon.Macaroon
	)
	writes := hold || !p.derive || topUp != nil
	if hold || writes && !p.refusesPreimage.Load() {
		inv, mac, err = p.issueAhead(ctx, r, route, req, c, caveats, hold)
	}
	if inv == nil && (err == nil || errors.Is(err, errNoPreimage)) {
		refused := err != nil
		inv, mac, err = p.issueAfter(ctx, r, req, c, caveats)
		// Only once the same request succeeds without the preimage is
		// the refusal known to be about the preimage.
		if refused && err == nil && !p.refusesPreimage.Swap(true) {
			p.log.Info("backend will not take a preimage chosen by the proxy; challenges write their record after the invoice from now on")
		}
	}
	chargeWG.Wait()
	chargeOK := offersCharge && chargeErr == nil
	if err != nil && !chargeOK {
		p.challengeFailed(w, route, err)
		return
	}
	if err != nil {
		p.log.Warn("L402 challenge failed; sending the Payment challenge alone", "route", route.Name, "err", err)
		inv = nil
	}
	if offersCharge && chargeErr != nil {
		p.log.Warn("Payment challenge failed; sending the L402 challenge alone", "route", route.Name, "err", chargeErr)
	}
	if inv != nil {
		if hold {
			p.unpaid.add(client, inv.PaymentHash, inv.ExpiresAt)
		}
		// Only a single-use hold route accepts the macaroon alone while
		// the payment is in flight, so only its challenge says so.
		ch := l402.Challenge{Macaroon: mac, Invoice: inv.PaymentRequest, InFlight: hold}
		l402.AddChallenges(w.Header(), ch)
		if p.cfg.TokenChallenges {
			w.Header().Add(l402.HeaderWWWAuthenticate, ch.TokenHeader(l402.SchemeL402))
		}
	}
	if chargeOK {
		w.Header().Add(l402.HeaderWWWAuthenticate, charge.Header())
	}
	p.m.challenges.WithLabelValues(route.Name).Inc()
	p.m.requests.WithLabelValues(route.Name, "challenged").Inc()
	if offersCharge {
		writeProblemChallenge(w, problemMsg(why, price, route), problem, charge, inv, price)
		return
	}
	writeChallenge(w, problemMsg(why, price, route), inv, price)
}

// problemMsg is the human-readable reason of a 402.
func problemMsg(why string, price backend.MilliSat, route *Route) string {
	msg := fmt.Sprintf("payment required: %s for %s", price, route.Name)
	if why != "" {
		msg = why + "; " + msg
	}
	return msg
}

// challengeFailed answers a challenge that could not be issued.
func (p *Proxy) challengeFailed(w http.ResponseWriter, route *Route, err error) {
	var ce *challengeError
	if errors.As(err, &ce) {
		if ce.status == http.StatusServiceUnavailable {
			p.unavailable(w, route, ce.msg, ce.err)
		} else {
			p.log.Error(ce.msg, "route", route.Name, "err", ce.err)
			writeError(w, ce.status, ce.msg, "")
		}
		return
	}
	p.unavailable(w, route, "cannot issue a challenge", err)
}

// challengeError is why a challenge could not be issued, with the answer
// the client gets.
type challengeError struct {
	status int
	msg    string
	err    error
}

func (e *challengeError) Error() string { return e.msg + ": " + e.err.Error() }

func (e *challengeError) Unwrap() error { return e.err }

// errNoPreimage: the backend refused a preimage chosen by the proxy.
var errNoPreimage = errors.New("proxy: backend refuses a chosen preimage")

// nodeFailure maps a failed invoice creation to the client's answer.
func nodeFailure(err error) error {
	if errors.Is(err, backend.ErrInvalid) || errors.Is(err, backend.ErrUnsupported) {
		return &challengeError{http.StatusInternalServerError, "the Lightning backend refused to create the invoice", err}
	}
	return &challengeError{http.StatusServiceUnavailable, "Lightning node unavailable: cannot create an invoice", err}
}

// tokenFailure maps a failed minting or record write to the client's answer.
func tokenFailure(err error) error {
	switch {
	case errors.Is(err, l402.ErrMalformed):
		return &challengeError{http.StatusInternalServerError, "cannot make a token for this route", err}
	case errors.Is(err, ErrHoldsFull):
		return &challengeError{http.StatusServiceUnavailable, "too many unpaid single-use invoices", err}
	}
	return &challengeError{http.StatusServiceUnavailable, "token store unavailable", err}
}

// issueAhead issues a challenge whose payment hash the proxy fixes by
// choosing the preimage, writing the token's record (and the hold) while
// the node makes the invoice. It returns errNoPreimage, having made
// nothing that lasts, when the backend will not take the preimage.
func (p *Proxy) issueAhead(ctx context.Context, r *http.Request, route *Route, req backend.InvoiceRequest,
	c challengeRecord, caveats []l402.Caveat, hold bool) (*backend.Invoice, *macaroon.Macaroon, error) {
	pre, err := backend.NewPreimage()
	if err != nil {
		return nil, nil, &challengeError{http.StatusInternalServerError, "cannot make a preimage", err}
	}
	hash := pre.Hash()
	c.PaymentHash = hash
	// The node's expiry is unknown until it answers; it counts from a
	// moment within NodeTimeout of now, so this bound is never early and
	// the collector never asks about a still-payable invoice too soon.
	c.InvoiceExpires = time.Now().Add(req.ExpiryOrDefault() + p.cfg.NodeTimeout)
	mac, err := p.newToken(ctx, &c.TokenRecord, caveats)
	if err != nil {
		return nil, nil, tokenFailure(err)
	}
	// The store gets its own deadline, not what the node call leaves over.
	sctx, scancel := context.WithTimeout(r.Context(), p.cfg.NodeTimeout)
	defer scancel()
	h := Hold{Preimage: pre, Route: route.Name, Client: c.Client, Expires: time.Now().Add(route.InvoiceExpiry)}
	var holdErr, chErr error
	var wg sync.WaitGroup
	if hold {
		// Both writes go at once so a store that groups concurrent
		// writes commits them with one sync.
		wg.Go(func() { holdErr = p.store.PutHold(sctx, h, p.cfg.MaxPendingHolds) })
	}
	wg.Go(func() { chErr = p.putToken(sctx, c) })

	var inv *backend.Invoice
	if hold {
		err = p.nodeCall("create_hold_invoice", func() (err error) {
			inv, err = p.holder.CreateHoldInvoice(ctx, hash, req)
			return err
		})
	} else {
		req.Preimage = &pre
		err = p.nodeCall("create_invoice", func() (err error) {
			inv, err = p.cfg.Backend.CreateInvoice(ctx, req)
			return err
		})
		if inv != nil {
			inv.Preimage = nil // never kept: the node holds it until paid
		}
	}
	wg.Wait()
	storeErr := errors.Join(holdErr, chErr)
	if err == nil && storeErr == nil {
		return inv, mac, nil
	}
	// Undo what was made, off the request's context: a client gone must
	// not leave a hold invoice open.
	uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.NodeTimeout)
	defer ucancel()
	if err == nil && hold {
		if cerr := p.nodeCall("cancel", func() error { return p.holder.CancelInvoice(uctx, hash) }); cerr != nil {
			p.log.Warn("could not cancel the hold invoice of a challenge never sent; the collector cancels it at expiry", "hash", hash.String(), "err", cerr)
		}
	}
	if hold && holdErr == nil {
		if derr := p.store.DeleteHold(uctx, hash); derr != nil {
			p.log.Warn("could not forget the hold of a challenge never sent; the collector drops it at expiry", "err", derr)
		}
	}
	if chErr == nil && !p.derive {
		if rerr := p.store.Revoke(uctx, c.TokenID); rerr != nil {
			p.log.Warn("could not drop the record of a challenge never sent; the collector drops it at expiry", "err", rerr)
		}
	}
	switch {
	case err != nil && !hold && errors.Is(err, backend.ErrUnsupported):
		return nil, nil, fmt.Errorf("%w: %w", errNoPreimage, err)
	case err != nil:
		return nil, nil, nodeFailure(err)
	}
	return nil, nil, tokenFailure(storeErr)
}

// issueAfter issues a challenge on a plain route the sequential way, for
// a backend that chooses every preimage itself: invoice first, then the
// token's record with the hash the node answered.
func (p *Proxy) issueAfter(ctx context.Context, r *http.Request, req backend.InvoiceRequest,
	c challengeRecord, caveats []l402.Caveat) (*backend.Invoice, *macaroon.Macaroon, error) {
	var inv *backend.Invoice
	err := p.nodeCall("create_invoice", func() (err error) {
		inv, err = p.cfg.Backend.CreateInvoice(ctx, req)
		return err
	})
	if err != nil {
		return nil, nil, nodeFailure(err)
	}
	c.PaymentHash, c.InvoiceExpires = inv.PaymentHash, inv.ExpiresAt
	mac, err := p.newToken(ctx, &c.TokenRecord, caveats)
	if err != nil {
		return nil, nil, tokenFailure(err)
	}
	if p.derive && c.topUp == nil {
		return inv, mac, nil // nothing to write
	}
	// The store gets its own deadline, not what the node call left over.
	sctx, scancel := context.WithTimeout(r.Context(), p.cfg.NodeTimeout)
	defer scancel()
	if err := p.putToken(sctx, c); err != nil {
		return nil, nil, tokenFailure(fmt.Errorf("record challenge: %w", err))
	}
	return inv, mac, nil
}

// newToken makes the token of a challenge: a fresh token id and root key,
// set in c for its record. The key is derived from the store's master
// secret when p.derive, else random (and then must be written).
func (p *Proxy) newToken(ctx context.Context, c *TokenRecord, caveats []l402.Caveat) (*macaroon.Macaroon, error) {
	var (
		id  l402.Identifier
		key []byte
		err error
	)
	if p.derive {
		master, merr := p.keys.master.get(ctx)
		if merr != nil {
			return nil, merr
		}
		if id, err = newDerivedID(c.PaymentHash, c.TokenExpires); err != nil {
			return nil, err
		}
		key = deriveRootKey(master, id.TokenID)
	} else {
		if id, err = l402.NewIdentifier(c.PaymentHash); err != nil {
			return nil, err
		}
		key = make([]byte, l402.RootKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
	}
	mac, err := l402.NewMacaroon(key, id, p.cfg.Location, caveats...)
	if err != nil {
		return nil, err
	}
	c.TokenID, c.RootKey = id.TokenID, key
	if c.InvoiceExpires.IsZero() {
		c.InvoiceExpires = time.Now().Add(backend.DefaultExpiry)
	}
	return mac, nil
}

// challengeRecord is a challenge's token record with, for a top-up, the
// balance its payment is to credit.
type challengeRecord struct {
	TokenRecord
	topUp *AccountID
}

// putToken writes a challenge's token record and, for a top-up, the link
// that sends its payment to the balance being topped up, before the 402
// leaves, so a paid top-up always finds its balance.
//
// A token whose key is derived (p.derive) has no record to write.
func (p *Proxy) putToken(ctx context.Context, c challengeRecord) error {
	if !p.derive {
		if err := p.store.PutToken(ctx, c.TokenRecord); err != nil {
			return err
		}
	}
	if c.topUp == nil {
		return nil
	}
	return p.store.Link(ctx, AccountID(c.TokenID), *c.topUp, c.InvoiceExpires)
}
