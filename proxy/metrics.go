package proxy

import "github.com/prometheus/client_golang/prometheus"

// metrics are registered on Config.Registerer when one is given; without it
// they still count, unexported, so the hot path has no nil checks.
type metrics struct {
	requests    *prometheus.CounterVec   // route, outcome
	challenges  *prometheus.CounterVec   // route
	refused     *prometheus.CounterVec   // route, reason
	badRequests *prometheus.CounterVec   // reason
	nodeCalls   *prometheus.HistogramVec // op, result
	pending     prometheus.GaugeFunc
	evicted     prometheus.Counter
	// collected counts records dropped by the collector; holdsResolved
	// the hold invoices it settled or canceled (outcome).
	collected     prometheus.Counter
	holdsResolved *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, pending func() float64) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "l402", Name: "requests_total",
			Help: "Requests through the gate, by route and outcome (paid, free, challenged, refused, unavailable).",
		}, []string{"route", "outcome"}),
		challenges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "l402", Name: "challenges_total",
			Help: "402 challenges issued, each with a fresh invoice.",
		}, []string{"route"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "l402", Name: "tokens_refused_total",
			Help: "Tokens presented and refused, by reason.",
		}, []string{"route", "reason"}),
		badRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "l402", Name: "bad_requests_total",
			Help: "Requests refused with 400 by the canonical-request rule, by reason.",
		}, []string{"reason"}),
		nodeCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "l402", Name: "node_call_seconds",
			Help:    "Lightning backend calls made by the proxy, by operation and result.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"op", "result"}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "l402", Name: "unpaid_holds_evicted_total",
			Help: "Unpaid single-use hold invoices canceled to make room at the MaxPendingHolds bound.",
		}),
		pending: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "l402", Name: "hold_invoices_pending",
			Help: "Hold invoices issued for single-use routes and not yet resolved, in the whole store (-1 when it cannot be read).",
		}, pending),
		collected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "l402", Name: "state_collected_total",
			Help: "Records dropped from the state store after they expired (unpaid challenges, spent hashes and tokens past expiry).",
		}),
		holdsResolved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "l402", Name: "holds_resolved_total",
			Help: "Hold invoices the collector resolved: canceled (unused until expiry) or settled (claimed by a request that died with its proxy).",
		}, []string{"outcome"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.challenges, m.refused, m.badRequests, m.nodeCalls, m.pending, m.evicted, m.collected, m.holdsResolved} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
