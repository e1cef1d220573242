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
	"strings"
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

// meter watches the response of a prepaid request: it settles the
// reservation to the request's cost, reading the usage the upstream
// reports (a header or trailer it removes, or a server-sent event) as the
// response flows, without holding any of it back.
type meter struct {
	p     *Proxy
	route *Route
	res   Reservation
	// reserved is the units available once the reservation was taken.
	reserved int64

	hdr http.Header // the response header, where trailers land after the body

	mu       sync.Mutex
	settled  bool
	usage    int64
	reported bool
	sse      bool
	event    string // event type of the server-sent event being read
	line     []byte // a line of the event stream not yet complete
}

// writer returns w wrapped so the meter sees the response.
func (m *meter) writer(w http.ResponseWriter) http.ResponseWriter {
	m.hdr = w.Header()
	return &meterWriter{ResponseWriter: w, m: m}
}

type meterWriter struct {
	http.ResponseWriter
	m           *meter
	wroteHeader bool
}

func (mw *meterWriter) WriteHeader(code int) {
	if !mw.wroteHeader && code >= 200 {
		mw.wroteHeader = true
		mw.m.header(mw.ResponseWriter.Header(), code)
	}
	mw.ResponseWriter.WriteHeader(code)
}

func (mw *meterWriter) Write(b []byte) (int, error) {
	if !mw.wroteHeader {
		mw.WriteHeader(http.StatusOK)
	}
	if mw.m.sse {
		mw.m.scan(b)
	}
	return mw.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and friends.
func (mw *meterWriter) Unwrap() http.ResponseWriter { return mw.ResponseWriter }

// Flush passes flushes on (ReverseProxy flushes event streams at once).
func (mw *meterWriter) Flush() {
	if !mw.wroteHeader {
		mw.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(mw.ResponseWriter).Flush()
}

// header runs as the response header leaves: it takes the usage header
// out, settles at once when the cost is known (a fixed cost; a usage
// header), and sets the balance header.
func (m *meter) header(h http.Header, code int) {
	b := m.route.Bundle
	name := b.UsageHeader
	v, inHeader := h[name]
	delete(h, name)
	// A trailer announced under that name is dropped from the
	// announcement, so the client never gets it; ReverseProxy still sets
	// it after the body, where finish reads it.
	if ann := h.Values("Trailer"); len(ann) > 0 {
		h.Del("Trailer")
		for _, a := range ann {
			for _, t := range strings.Split(a, ",") {
				if t = strings.TrimSpace(t); t != "" && http.CanonicalHeaderKey(t) != name {
					h.Add("Trailer", t)
				}
			}
		}
	}
	m.sse = b.Metered && strings.HasPrefix(strings.ToLower(h.Get("Content-Type")), "text/event-stream")
	left := m.reserved
	switch {
	case !b.Metered:
		// The reservation is the cost, so the balance after it is the
		// balance after the request; a 5xx gives it back. The store is
		// told after the response (finish).
		if code >= 500 {
			left += m.res.Units
		}
	case inHeader && len(v) > 0:
		if n, err := strconv.ParseInt(strings.TrimSpace(v[0]), 10, 64); err == nil && n >= 0 {
			if st, ok := m.settle(n); ok {
				left = st.Available()
			}
		}
	}
	h.Set(HeaderBalance, strconv.FormatInt(left, 10))
}

// scan reads server-sent event lines as they pass for usage events.
func (m *meter) scan(b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(m.line)+len(b) <= 4096 { // longer lines carry no usage event
				m.line = append(m.line, b...)
			}
			return
		}
		line := b[:i]
		if len(m.line) > 0 {
			line = append(m.line, line...)
			m.line = m.line[:0]
		}
		b = b[i+1:]
		line = bytes.TrimSuffix(line, []byte{'\r'})
		switch {
		case len(line) == 0:
			m.event = ""
		case bytes.HasPrefix(line, []byte("event:")):
			m.event = string(bytes.TrimSpace(line[len("event:"):]))
		case bytes.HasPrefix(line, []byte("data:")) && m.event == m.route.Bundle.UsageEvent:
			if n, err := strconv.ParseInt(string(bytes.TrimSpace(line[len("data:"):])), 10, 64); err == nil && n >= 0 {
				m.usage, m.reported = n, true
			}
		}
	}
}

// finish settles the reservation once the response is over, if the header
// did not: to the usage reported (trailer or event), or to the
// reservation when nothing was reported or the client went away.
// status is as serve resolves grants (statusClientGone for a client that
// left after the upstream had the request).
func (m *meter) finish(status int) {
	if m.hdr != nil {
		m.trailer(m.hdr)
	}
	m.mu.Lock()
	done, usage, reported := m.settled, m.usage, m.reported
	m.mu.Unlock()
	if done {
		return
	}
	used := m.res.Units
	switch {
	case status == statusClientGone:
		used = max(m.res.Units, usage)
	case reported:
		used = usage
	case status >= 500:
		used = 0
	}
	if m.route.Bundle.Metered {
		m.settle(used)
		return
	}
	// A fixed cost was held in full before the request: settling it
	// changes no unit anyone can use, so the response need not wait for
	// the write. Drain waits for it; a proxy that dies first leaves the
	// reservation, which the collector charges: the same cost.
	m.p.inflight.Add(1)
	go func() {
		defer m.p.inflight.Done()
		m.settle(used)
	}()
}

// trailer reads the usage trailer from the response header map after the
// body (ReverseProxy copies trailers there) and removes it.
func (m *meter) trailer(h http.Header) {
	name := m.route.Bundle.UsageHeader
	for _, k := range []string{name, http.TrailerPrefix + name} {
		if v := h.Get(k); v != "" {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
				m.mu.Lock()
				m.usage, m.reported = n, true
				m.mu.Unlock()
			}
		}
		delete(h, k)
	}
}

// settle ends the reservation once; the store call outlives the client's
// context, so a client that leaves cannot cancel its own debit.
func (m *meter) settle(used int64) (Settlement, bool) {
	m.mu.Lock()
	if m.settled {
		m.mu.Unlock()
		return Settlement{}, false
	}
	m.settled = true
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), m.p.cfg.NodeTimeout)
	defer cancel()
	st, err := m.p.store.Settle(ctx, m.res.ID, used)
	if err != nil {
		m.p.log.Warn("could not settle a prepaid request, trying again", "route", m.route.Name, "units", used, "err", err)
		m.p.resettle(m.route, m.res.ID, used, time.Second)
		return st, false
	}
	m.p.prepaid.countSettle(m.route.Name, st)
	return st, true
}

// settleTries is how many times resettle asks the store.
const settleTries = 4

// resettle settles reservation id to used in the background, asking again
// (after wait, then after 1, 2, 4 s) while the store fails: a busy store
// that timed out would otherwise leave the reservation to the collector,
// which charges it in full. Settling is once only in the store, so a retry
// after a write whose answer was lost finds ErrNoRecord and charges nothing
// twice. A give-back (used 0) of a reservation whose write timed out asks
// every time even on ErrNoRecord: that write may land late, and settling
// nothing twice costs nothing. Drain waits for it.
func (p *Proxy) resettle(route *Route, id ReservationID, used int64, wait time.Duration) {
	p.inflight.Add(1)
	go func() {
		defer p.inflight.Done()
		var err error
		for try := range settleTries {
			if try > 0 {
				wait = time.Second << (try - 1)
			}
			time.Sleep(wait)
			ctx, cancel := context.WithTimeout(context.Background(), p.cfg.NodeTimeout)
			var st Settlement
			st, err = p.store.Settle(ctx, id, used)
			cancel()
			switch {
			case err == nil:
				p.prepaid.countSettle(route.Name, st)
				return
			case errors.Is(err, ErrNoRecord) && used > 0:
				return // settled already
			case errors.Is(err, ErrNoRecord):
				err = nil // not (or not yet) written
			}
		}
		if err == nil {
			return
		}
		// The reservation stays in the store: the collector charges it
		// in full after ClaimTimeout, what the request was allowed to
		// cost.
		p.log.Warn("could not settle a prepaid request", "route", route.Name, "units", used, "tries", settleTries, "err", err)
	}()
}

// granted is the units available once a request granted by forward auth
// is charged its reservation, as it is there (the front reports no usage).
func (m *meter) granted() int64 { return m.reserved }

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
