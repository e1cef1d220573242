package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/l402kit/l402kit/l402"
)

// Headers of prepaid (bundle) routes.
const (
	// HeaderBalance, on every response of a bundle route to a paying
	// client, is the units left on its balance: after this request when
	// its cost was known before the response began (a fixed cost, or
	// usage reported in a response header), else after the request's
	// reservation, which is what it is charged at most unless the
	// upstream reports more (see Ledger).
	HeaderBalance = "X-L402-Balance"
	// DefaultUsageHeader is where an upstream reports the units a request
	// used, unless Bundle.UsageHeader names another: a response header,
	// or a trailer for a response that only knows at its end. The proxy
	// reads it and removes it before the client sees the response. In a
	// server-sent event stream the upstream may instead send an event of
	// type DefaultUsageEvent whose data is the units used so far; the last
	// one counts.
	DefaultUsageHeader = "X-L402-Usage"
	// DefaultUsageEvent is the server-sent event type that reports usage.
	DefaultUsageEvent = "l402-usage"
)

// Bundle makes a route prepaid: a payment of the route's price credits
// Units to a balance carried by the token, and each request draws from it,
// a fixed Cost or the usage its upstream reports. A dry balance is answered
// 402 with a top-up challenge whose payment credits the same balance.
type Bundle struct {
	// Units a payment of the route's price credits. Required.
	Units int64
	// Cost is what each request draws when the route is not metered by
	// usage (UsageHeader empty); default 1.
	Cost int64
	// Metered draws the usage the upstream reports (in UsageHeader, a
	// trailer of that name, or a UsageEvent of a server-sent event
	// stream) instead of a fixed cost.
	Metered bool
	// UsageHeader names the header or trailer carrying the usage;
	// default DefaultUsageHeader. UsageEvent names the server-sent event
	// type carrying it; default DefaultUsageEvent.
	UsageHeader string
	UsageEvent  string
	// Reserve is the units held for a metered request while it runs (the
	// estimate); a request is refused with a top-up challenge unless that
	// many are available. Default Units/10, at least 1.
	Reserve int64
	// ReserveField names a number in the request's JSON body (such as
	// max_tokens) that, when present, is the reservation instead of
	// Reserve, bounded by MaxReserve. The body is read up to 1 MiB to
	// find it; a larger body keeps Reserve.
	ReserveField string
	// MaxReserve bounds a reservation taken from the request; default
	// Units.
	MaxReserve int64
}

// maxReserveBody bounds the request body read for Bundle.ReserveField.
const maxReserveBody = 1 << 20

func (b *Bundle) normalize(route string) error {
	if b.Units <= 0 {
		return fmt.Errorf("proxy: route %s: a bundle needs units > 0", route)
	}
	if b.Cost == 0 {
		b.Cost = 1
	}
	if b.UsageHeader == "" {
		b.UsageHeader = DefaultUsageHeader
	}
	b.UsageHeader = http.CanonicalHeaderKey(b.UsageHeader)
	if b.UsageEvent == "" {
		b.UsageEvent = DefaultUsageEvent
	}
	if b.Reserve == 0 {
		b.Reserve = max(b.Units/10, 1)
	}
	if b.MaxReserve == 0 {
		b.MaxReserve = b.Units
	}
	if b.Cost < 0 || b.Reserve < 0 || b.MaxReserve < b.Reserve {
		return fmt.Errorf("proxy: route %s: bundle cost and reserve must be positive, max_reserve at least reserve", route)
	}
	return nil
}

// reservation is the units to hold for r: the fixed cost, or for a
// metered route the estimate, possibly named by the request's body.
func (b *Bundle) reservation(r *http.Request) int64 {
	if !b.Metered {
		return b.Cost
	}
	if b.ReserveField == "" || r.Body == nil || r.Body == http.NoBody {
		return b.Reserve
	}
	head, err := io.ReadAll(io.LimitReader(r.Body, maxReserveBody+1))
	// The request goes on with what was read in front of the rest.
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	if err != nil || len(head) > maxReserveBody {
		return b.Reserve
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(head, &fields) != nil {
		return b.Reserve
	}
	n, err := strconv.ParseInt(string(fields[b.ReserveField]), 10, 64)
	if err != nil || n <= 0 {
		return b.Reserve
	}
	return min(n, b.MaxReserve)
}

// prepaid is the proxy's side of the ledger: which balance each token
// draws from (cached: a token's balance never changes), and the metrics.
type prepaid struct {
	accounts sync.Map // l402.TokenID -> AccountID, tokens credited by this process
	credited *prometheus.CounterVec
	debited  *prometheus.CounterVec
	// outstanding is credited less debited by this proxy, per route: the
	// sum over the proxies sharing a store is the units sold and not yet
	// used (less what expired unused).
	outstanding *prometheus.GaugeVec
	forgiven    *prometheus.CounterVec
}

func newPrepaid(reg prometheus.Registerer) (*prepaid, error) {
	pp := &prepaid{
		credited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "l402", Name: "prepaid_credited_units_total",
			Help: "Units credited to prepaid balances by payments, by route.",
		}, []string{"route"}),
		debited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "l402", Name: "prepaid_debited_units_total",
			Help: "Units debited from prepaid balances by requests, by route.",
		}, []string{"route"}),
		outstanding: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "l402", Name: "prepaid_outstanding_units",
			Help: "Units credited less units debited through this proxy, by route; summed over the proxies sharing a store, the units sold and not yet used.",
		}, []string{"route"}),
		forgiven: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "l402", Name: "prepaid_forgiven_units_total",
			Help: "Usage reported above what a balance could be charged (the negative bound of one reservation), by route.",
		}, []string{"route"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{pp.credited, pp.debited, pp.outstanding, pp.forgiven} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return pp, nil
}

func (pp *prepaid) countCredit(route string, units int64) {
	pp.credited.WithLabelValues(route).Add(float64(units))
	pp.outstanding.WithLabelValues(route).Add(float64(units))
}

func (pp *prepaid) countSettle(route string, st Settlement) {
	pp.debited.WithLabelValues(route).Add(float64(st.Charged))
	pp.outstanding.WithLabelValues(route).Sub(float64(st.Charged))
	if st.Forgiven > 0 {
		pp.forgiven.WithLabelValues(route).Add(float64(st.Forgiven))
	}
}

// account credits a token's payment once (the store makes it once across
// proxies) and returns the balance it draws from.
func (p *Proxy) account(ctx context.Context, route *Route, id l402.TokenID, tokenExpires time.Time) (AccountID, error) {
	if a, ok := p.prepaid.accounts.Load(id); ok {
		return a.(AccountID), nil
	}
	b, now, err := p.store.Credit(ctx, Credit{Token: AccountID(id), Units: route.Bundle.Units, Route: route.Name, Expires: tokenExpires})
	if err != nil {
		return AccountID{}, err
	}
	if now {
		p.prepaid.countCredit(route.Name, route.Bundle.Units)
	}
	p.prepaid.accounts.Store(id, b.Account)
	return b.Account, nil
}

// errTopUp is why a dry balance is answered 402.
var errTopUp = errors.New("balance too low for this request: pay the challenge to top it up")

// draw reserves what r may cost from the balance of token id, or answers
// r itself (402 with a top-up challenge, 503) and returns nil. The grant
// it returns settles the reservation once the response is known.
func (p *Proxy) draw(w http.ResponseWriter, r *http.Request, route *Route, id l402.TokenID, tokenExpires time.Time, g *grant) *grant {
	ctx := r.Context()
	acc, err := p.account(ctx, route, id, tokenExpires)
	if err != nil {
		p.unavailable(w, route, "balance store unavailable", err)
		return nil
	}
	var rid ReservationID
	rand.Read(rid[:])
	units := route.Bundle.reservation(r)
	res := Reservation{ID: rid, Account: acc, Units: units, Owner: p.cfg.Instance, At: time.Now()}
	bal, err := p.store.Reserve(ctx, res)
	switch {
	case errors.Is(err, ErrInsufficient):
		p.m.requests.WithLabelValues(route.Name, "dry").Inc()
		w.Header().Set(HeaderBalance, strconv.FormatInt(bal.Available(), 10))
		p.challengeTopUp(w, r, route, acc, errTopUp.Error())
		return nil
	case errors.Is(err, ErrNoRecord):
		// The balance expired: a new payment opens a new one.
		p.m.requests.WithLabelValues(route.Name, "dry").Inc()
		p.challenge(w, r, route, "prepaid balance expired")
		return nil
	case err != nil:
		p.unavailable(w, route, "balance store unavailable", err)
		// A store that timed out may have written the reservation all
		// the same (the answer, not the write, was lost): give it back,
		// so a request answered 503 costs nothing.
		p.resettle(route, res.ID, 0, 0)
		return nil
	}
	p.m.requests.WithLabelValues(route.Name, "paid").Inc()
	m := &meter{p: p, route: route, res: res, reserved: bal.Available()}
	g.meter = m
	g.finish = m.finish
	return g
}

// collectReservations charges the reservations no request will settle:
// those of this instance at a restart (its requests died with it) and
// anyone's older than ClaimTimeout (their proxy died). Each is charged its
// full units, what its request was allowed to cost; a request that is in
// fact still running finds its reservation gone and settles nothing more.
func (p *Proxy) collectReservations(ctx context.Context, now time.Time, restarted bool) error {
	q := StaleReservationQuery{Before: now.Add(-p.cfg.ClaimTimeout), Limit: collectBatch}
	if restarted {
		q.Owner = p.cfg.Instance
	}
	stale, err := p.store.StaleReservations(ctx, q)
	if err != nil {
		return fmt.Errorf("stale reservations: %w", err)
	}
	var errs []error
	for _, r := range stale {
		st, err := p.store.Settle(ctx, r.ID, r.Units)
		switch {
		case errors.Is(err, ErrNoRecord):
			// Settled meanwhile by its request or another proxy.
		case err != nil:
			errs = append(errs, err)
		default:
			p.prepaid.countSettle(st.Route, st)
		}
	}
	return errors.Join(errs...)
}
