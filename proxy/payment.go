package proxy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

// The Payment HTTP authentication scheme's Lightning charge, beside L402: a
// route offers L402, Payment or both in one 402 (Route.Schemes,
// Config.Schemes). A charge challenge needs no record: its id is an HMAC
// over its parameters (l402.ChargeIssuer) under Config.PaymentSecret, and
// its opaque names the route, so a credential verifies in memory; its
// invoice is a plain one (never a hold invoice: the client needs the
// preimage to present the credential), and its payment hash is spent in
// the Store, so a charge serves one request across every proxy sharing
// the Store. An upstream failure (5xx) releases it again, as for a
// single-use token.

// Schemes a route can offer.
const (
	SchemeL402    = l402.SchemeL402
	SchemePayment = l402.SchemePayment
)

// chargeSpendMargin keeps a spent charge past its challenge's expiry, for
// clocks that disagree a little between proxies.
const chargeSpendMargin = time.Minute

// setSchemes sets the route's schemes (def when it names none), checked.
// A prepaid route (Bundle) sells its bundles with L402 only: the default
// does not reach it, and naming Payment for it is an error.
func (r *Route) setSchemes(def []string) error {
	explicit := len(r.Schemes) > 0
	s := r.Schemes
	if !explicit {
		s = def
	}
	s, err := normalizeSchemes(s)
	if err != nil {
		return fmt.Errorf("proxy: route %s: %w", r.Name, err)
	}
	if r.Bundle != nil && !slices.Equal(s, []string{SchemeL402}) {
		if explicit {
			return fmt.Errorf("proxy: route %s is prepaid (Bundle): its bundles are sold with L402 only, not %v", r.Name, s)
		}
		s = []string{SchemeL402}
	}
	r.Schemes = s
	return nil
}

// offers reports whether route offers scheme.
func (r *Route) offers(scheme string) bool {
	return slices.Contains(r.Schemes, scheme)
}

// normalizeSchemes checks a scheme list (names in any case) and writes
// them in their canonical spelling.
func normalizeSchemes(s []string) ([]string, error) {
	out := make([]string, 0, len(s))
	for _, v := range s {
		switch {
		case strings.EqualFold(v, SchemeL402):
			v = SchemeL402
		case strings.EqualFold(v, SchemePayment):
			v = SchemePayment
		default:
			return nil, fmt.Errorf("proxy: unknown scheme %q (want %s or %s)", v, SchemeL402, SchemePayment)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("proxy: a route must offer at least one scheme")
	}
	return out, nil
}

// newChargeIssuer makes the issuer of charge challenges from cfg: a random
// secret when none is configured (then only this process accepts its
// charges).
func newChargeIssuer(cfg *Config) (*l402.ChargeIssuer, error) {
	secret := cfg.PaymentSecret
	if len(secret) == 0 {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
	} else if len(secret) < 32 {
		return nil, errors.New("proxy: Config.PaymentSecret must be at least 32 bytes")
	}
	return &l402.ChargeIssuer{Secret: secret, Realm: cfg.PaymentRealm}, nil
}

// networkOf names the network of a BOLT11 invoice by its prefix, as a
// charge request names it.
func networkOf(bolt11 string) string {
	s := strings.ToLower(bolt11)
	switch {
	case strings.HasPrefix(s, "lnbcrt"):
		return "regtest"
	case strings.HasPrefix(s, "lntbs"):
		return "signet"
	case strings.HasPrefix(s, "lntb"):
		return "testnet"
	case strings.HasPrefix(s, "lnsb"):
		return "simnet"
	}
	return "mainnet"
}

// chargePrice is what a charge asks for price: a whole number of satoshis,
// rounded up, since the charge request names whole satoshis.
func chargePrice(price backend.MilliSat) backend.MilliSat {
	return (price + 999) / 1000 * 1000
}

// issueCharge makes a charge challenge for route: a plain invoice (the
// proxy chooses its preimage when the backend takes one, only so the node
// gets it; it is not kept) and the challenge bound to it.
func (p *Proxy) issueCharge(ctx context.Context, route *Route, price backend.MilliSat, bound map[string]string) (l402.PaymentChallenge, *backend.Invoice, error) {
	req := backend.InvoiceRequest{Amount: chargePrice(price), Memo: route.Memo, Expiry: route.InvoiceExpiry}
	var inv *backend.Invoice
	err := p.nodeCall("create_invoice", func() (err error) {
		inv, err = p.cfg.Backend.CreateInvoice(ctx, req)
		return err
	})
	if err != nil {
		return l402.PaymentChallenge{}, nil, nodeFailure(err)
	}
	iss := *p.charges
	iss.Network = networkOf(inv.PaymentRequest)
	opaque := map[string]string{"route": route.Name}
	for k, v := range bound { // the origin and certificate the route binds to
		opaque[k] = v
	}
	ch, err := iss.Challenge(l402.ChargeOffer{
		Invoice: inv.PaymentRequest, PaymentHash: inv.PaymentHash, Amount: req.Amount,
		Description: route.Memo, Expires: inv.ExpiresAt, Opaque: opaque,
	})
	if err != nil {
		return l402.PaymentChallenge{}, nil, &challengeError{http.StatusInternalServerError, "cannot make a Payment challenge", err}
	}
	return ch, inv, nil
}

// gateCharge decides about a request carrying a Payment credential: the
// credential verifies (a charge this proxy's secret issued for this route,
// unexpired, with the preimage of its invoice) and its payment hash is
// spent now, for good unless the upstream fails (5xx). The grant carries
// the receipt. nil when it has answered the request itself.
func (p *Proxy) gateCharge(w http.ResponseWriter, r *http.Request, route *Route, cred string) *grant {
	if !route.offers(SchemePayment) {
		p.refuseCharge(w, r, route, "scheme", fmt.Errorf("%w: this route does not take Payment credentials", l402.ErrPaymentUnsupported))
		return nil
	}
	c, err := l402.ParsePaymentAuthorization(cred)
	if err != nil {
		p.refuseCharge(w, r, route, "malformed", err)
		return nil
	}
	now := time.Now()
	v, err := p.charges.Verify(c, now)
	if err == nil && v.Opaque["route"] != route.Name {
		err = fmt.Errorf("%w: issued for route %q", l402.ErrPaymentChallengeInvalid, v.Opaque["route"])
	}
	if err == nil {
		err = p.checkChargeBindings(r, v.Opaque)
	}
	if err != nil {
		p.refuseCharge(w, r, route, chargeReason(err), err)
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.NodeTimeout)
	defer cancel()
	first, err := p.store.Spend(ctx, v.PaymentHash, v.Expires.Add(chargeSpendMargin))
	if err != nil {
		p.unavailable(w, route, "spent-charge store unavailable", err)
		return nil
	}
	if !first {
		p.refuseCharge(w, r, route, "used", fmt.Errorf("%w: charge already used", l402.ErrPaymentUnverified))
		return nil
	}
	p.m.requests.WithLabelValues(route.Name, "paid").Inc()
	hash := v.PaymentHash
	g := &grant{paid: true, tokenID: hash.String(), receipt: v.Receipt(now).Header()}
	g.finish = func(status int) {
		if status < 500 {
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), p.cfg.NodeTimeout)
		defer cancel()
		if err := p.store.Unspend(ctx, hash); err != nil {
			p.log.Error("could not release a charge after upstream failure", "route", route.Name, "err", err)
		}
	}
	return p.track(g)
}

// chargeReason names a refused charge credential for metrics and logs.
func chargeReason(err error) string {
	switch {
	case errors.Is(err, l402.ErrPaymentExpired):
		return "expired"
	case errors.Is(err, l402.ErrPaymentChallengeInvalid):
		return "invalid_challenge"
	case errors.Is(err, l402.ErrPaymentUnverified):
		return "wrong_preimage"
	case errors.Is(err, l402.ErrPaymentUnsupported):
		return "unsupported"
	}
	return "malformed"
}

// refuseCharge answers a Payment credential that does not grant the
// request: 402 with fresh challenges and a problem document of the type
// the error calls for (RFC 9457, draft-httpauth-payment's types).
func (p *Proxy) refuseCharge(w http.ResponseWriter, r *http.Request, route *Route, why string, err error) {
	p.m.refused.WithLabelValues(route.Name, why).Inc()
	p.m.requests.WithLabelValues(route.Name, "refused").Inc()
	p.log.Info("Payment credential refused", "route", route.Name, "reason", why, "err", err)
	p.challengeWith(w, r, route, "credential refused ("+why+"): "+err.Error(), err)
}
