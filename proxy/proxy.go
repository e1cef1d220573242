package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

// Headers the proxy sets on requests it forwards. Values a client sent under
// these names are removed first, so the upstream can trust them.
const (
	// HeaderPaid is "true" when the request carried a valid token, "false"
	// for the free variant of optional and free routes.
	HeaderPaid = "X-L402-Paid"
	// HeaderTokenID names the token a paid request used, for accounting.
	HeaderTokenID = "X-L402-Token-Id"
)

// Config sets up a Proxy.
type Config struct {
	// Backend issues the invoices. Required.
	Backend *backend.Backend
	// Routes to price; a request no route matches is answered 404.
	Routes []Route
	// Store keeps root keys, spent single-use hashes and held preimages;
	// default a MemoryStore, which a restart empties. Proxies sharing a
	// store accept each other's tokens.
	Store Store
	// StoredRootKeys mints each token under a random root key written to
	// Store before its 402 leaves, as every store did before keys were
	// derived: a durable write per challenge, but no master secret whose
	// theft lets a thief mint tokens. By default a Store that is a
	// KeyStore derives root keys from its master secret and a challenge
	// on a plain route writes nothing (see KeyStore). Tokens minted
	// either way keep verifying when this changes.
	StoredRootKeys bool
	// KeyCacheTTL is how long a root key read from Store is used before it
	// is read again: the bound on how long a token revoked through another
	// proxy sharing the store keeps working here. Default 30 s.
	KeyCacheTTL time.Duration
	// Instance names this proxy among those sharing Store: distinct per
	// running proxy and the same across its restarts, so that a restarted
	// proxy resolves the single-use requests it had in flight when it
	// stopped. Default: the host name.
	Instance string
	// CollectEvery is how often expired state is collected and stale hold
	// invoices resolved; default 30 s, negative to never (then call
	// Collect yourself).
	CollectEvery time.Duration
	// ClaimTimeout is how long a single-use request may hold its token
	// before any proxy treats the request as dead and resolves the hold
	// invoice; default 10 minutes.
	ClaimTimeout time.Duration
	// Location goes into minted macaroons; default "l402kit".
	Location string
	// NodeTimeout bounds each backend call; default 5 s.
	NodeTimeout time.Duration
	// HealthMaxAge bounds how old the node ping /healthz answers from may
	// be: one ping at a time, its result reused until it is this old, so
	// health checks, however many, cost the node at most one call per
	// period. Default 2 s; negative: ping on every request.
	HealthMaxAge time.Duration
	// ChallengesPerMinute bounds challenges (each a new invoice on the
	// node) per client address; default 120, negative for no limit.
	ChallengesPerMinute int
	// MaxPendingHolds bounds hold invoices issued and not yet resolved,
	// in the whole Store; default 10000. When it is reached by unpaid
	// invoices, the oldest still-open invoice of the client with the most
	// is canceled to make room, so a flood from many addresses does not
	// lock others out.
	MaxPendingHolds int
	// MaxPendingPerClient bounds the unpaid single-use hold invoices of one
	// client (an IPv4 address or an IPv6 /64); further challenges get 429.
	// Default 16, negative for no bound.
	MaxPendingPerClient int
	// TrustedForwarders are the addresses of front servers (reverse
	// proxies, load balancers, forward-auth callers) whose forwarded client
	// addresses are believed. A request from one of them is its client's:
	// the right-most X-Forwarded-For address that is not a trusted
	// forwarder itself (X-Real-IP when there is no X-Forwarded-For), in
	// reverse-proxy and forward-auth modes alike. A request from any other
	// address is that address's, whatever its headers claim. Challenge
	// limits, per-client quotas, eviction and client_ip caveats all use
	// this address. nil: DefaultTrustedForwarders (loopback only); an
	// empty non-nil list trusts no one.
	TrustedForwarders []netip.Prefix
	// ForwardAuthCacheMax lets a front server cache the forward-auth
	// endpoint's grants (nginx proxy_cache reads X-Accel-Expires) for at
	// most this long, and never past the token's earliest valid_until.
	// Only grants on free routes and for multi-use tokens on required
	// routes are cacheable; refusals, single-use and optional routes never
	// are. A revoked token keeps passing a caching front server until its
	// entry expires: this is the bound on revocation. 0, the default: the
	// endpoint marks every answer uncacheable.
	ForwardAuthCacheMax time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer receives the proxy's Prometheus metrics when set.
	Registerer prometheus.Registerer
	// Schemes are the schemes a route offers when its own Schemes is
	// empty: SchemeL402, SchemePayment or both (one 402 then carries the
	// L402, LSAT and Payment challenges). Default: L402 only.
	Schemes []string
	// PaymentSecret keys the ids of Payment charge challenges, which bind
	// each challenge to its parameters so that a credential verifies
	// without a record; at least 32 bytes. Proxies sharing a Store must
	// share it to accept each other's charges. Default: random for this
	// process.
	PaymentSecret []byte
	// PaymentRealm is the realm of Payment challenges; default Location.
	PaymentRealm string
	// TokenChallenges also sends every L402 challenge in bLIP-26's form,
	// version="0", token="...", after the macaroon= form that every client
	// reads (clients written before bLIP-26 read only that one).
	TokenChallenges bool
	// PublicOrigin is the origin clients address the gate at,
	// "https://api.example[:port]", for a gate serving one origin behind a
	// front server: the origin tokens are bound to (Route.BindOrigin) and
	// origin= caveats are checked against. Unset, a request's origin is
	// read from the request: in forward auth, the front's
	// X-Forwarded-Proto and X-Forwarded-Host; otherwise https when TLS
	// ends at the gate or a trusted forwarder says X-Forwarded-Proto:
	// https, http else, and the Host header (with its port).
	PublicOrigin string
	// ClientCertHeader names the header in which a trusted forwarder (see
	// TrustedForwarders) passes on the client's TLS certificate when TLS
	// ends at the front (ParseClientCertHeader reads the forms nginx,
	// Caddy and Traefik send). The front must set it on every request,
	// empty when there is no certificate, replacing what the client sent.
	// Unset, only a TLS connection ending at the gate carries a client
	// certificate, and a forward-auth request carries none.
	ClientCertHeader string
	// Transport for upstream requests; default NewTransport with
	// TransportConfig's defaults (256 idle connections per upstream,
	// timeouts, HTTP/2 where an https upstream offers it).
	Transport http.RoundTripper
}

// Proxy is the L402 gate. As an http.Handler it is a reverse proxy to each
// route's Upstream; Middleware puts the same gate in front of any handler.
type Proxy struct {
	cfg      Config
	routes   router
	verifier *l402.Verifier
	holder   backend.HoldInvoicer // nil when the backend has no hold invoices
	unpaid   *unpaidBook
	store    Store
	keys     *keyring
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	limit    *limiter
	log      *slog.Logger
	m        *metrics
	proxies  map[*Route]*httputil.ReverseProxy
	parsed   *parseCache
	prepaid  *prepaid
	inflight sync.WaitGroup // single-use and prepaid grants not yet resolved
	// forwarders are Config.TrustedForwarders, defaults filled.
	forwarders forwarders
	health     healthCache
	charges    *l402.ChargeIssuer
	// derive: tokens are minted under keys derived from the store's
	// master secret, with no record (KeyStore, not StoredRootKeys).
	derive bool
	// refusesPreimage is set once the backend has refused a preimage
	// chosen by the proxy on a plain route (see challenge).
	refusesPreimage atomic.Bool
}

// New checks cfg and returns a ready Proxy.
func New(cfg Config) (*Proxy, error) {
	if cfg.Backend == nil {
		return nil, errors.New("proxy: Config.Backend is required")
	}
	rt, err := newRouter(cfg.Routes)
	if err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		cfg.Store = NewMemoryStore()
	}
	if cfg.KeyCacheTTL <= 0 {
		cfg.KeyCacheTTL = 30 * time.Second
	}
	if cfg.Instance == "" {
		cfg.Instance, _ = os.Hostname()
	}
	if cfg.CollectEvery == 0 {
		cfg.CollectEvery = 30 * time.Second
	}
	if cfg.ClaimTimeout <= 0 {
		cfg.ClaimTimeout = 10 * time.Minute
	}
	if cfg.Location == "" {
		cfg.Location = "l402kit"
	}
	if cfg.HealthMaxAge == 0 {
		cfg.HealthMaxAge = 2 * time.Second
	}
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = 5 * time.Second
	}
	if cfg.ChallengesPerMinute == 0 {
		cfg.ChallengesPerMinute = 120
	}
	if cfg.MaxPendingHolds <= 0 {
		cfg.MaxPendingHolds = 10000
	}
	if cfg.MaxPendingPerClient == 0 {
		cfg.MaxPendingPerClient = 16
	}
	if cfg.TrustedForwarders == nil {
		cfg.TrustedForwarders = DefaultTrustedForwarders
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Transport == nil {
		cfg.Transport = NewTransport(TransportConfig{})
	}
	if cfg.PublicOrigin != "" {
		if cfg.PublicOrigin, err = ParseOrigin(cfg.PublicOrigin); err != nil {
			return nil, err
		}
	}
	if cfg.ClientCertHeader != "" {
		cfg.ClientCertHeader = http.CanonicalHeaderKey(cfg.ClientCertHeader)
	}
	if cfg.PaymentRealm == "" {
		cfg.PaymentRealm = cfg.Location
	}
	if len(cfg.Schemes) == 0 {
		cfg.Schemes = []string{SchemeL402}
	}
	if cfg.Schemes, err = normalizeSchemes(cfg.Schemes); err != nil {
		return nil, err
	}
	for _, r := range rt.routes {
		if err := r.setSchemes(cfg.Schemes); err != nil {
			return nil, err
		}
	}
	charges, err := newChargeIssuer(&cfg)
	if err != nil {
		return nil, err
	}
	keys := newKeyring(cfg.Store, cfg.KeyCacheTTL, 1<<16)
	p := &Proxy{
		forwarders: forwarders(cfg.TrustedForwarders),
		cfg:        cfg,
		routes:     rt,
		unpaid:     newUnpaidBook(cfg.MaxPendingPerClient, cfg.MaxPendingHolds),
		verifier:   l402.NewVerifier(keys),
		store:      cfg.Store,
		keys:       keys,
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		limit:      newLimiter(cfg.ChallengesPerMinute),
		log:        cfg.Logger,
		proxies:    map[*Route]*httputil.ReverseProxy{},
		parsed:     newParseCache(4096),
		charges:    charges,
		derive:     keys.master != nil && !cfg.StoredRootKeys,
	}
	if cfg.Backend.Supports(backend.AbilityHold) {
		p.holder = cfg.Backend
	}
	if p.m, err = newMetrics(cfg.Registerer, p.countHolds); err != nil {
		return nil, fmt.Errorf("proxy: metrics: %w", err)
	}
	if p.prepaid, err = newPrepaid(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("proxy: metrics: %w", err)
	}
	for _, r := range rt.routes {
		if r.Upstream == nil {
			continue
		}
		up := r.Upstream
		p.proxies[r] = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(up)
				pr.SetXForwarded()
				// Rewrite runs after hop-by-hop headers are removed, from
				// a copy of the inbound headers, so ours survive.
				pr.Out.Header.Set(HeaderPaid, pr.In.Header.Get(HeaderPaid))
				if id := pr.In.Header.Get(HeaderTokenID); id != "" {
					pr.Out.Header.Set(HeaderTokenID, id)
				}
			},
			Transport:  cfg.Transport,
			BufferPool: copyBuffers,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				p.log.Warn("upstream failed", "upstream", up.String(), "err", err)
				writeError(w, http.StatusBadGateway, "upstream unreachable", "")
			},
		}
	}
	if cfg.CollectEvery > 0 {
		go p.collectLoop(cfg.CollectEvery)
	} else {
		close(p.done)
	}
	return p, nil
}

// Close stops the proxy's collector. It does not close Config.Store or the
// backend, which the caller owns.
func (p *Proxy) Close() error {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
	return nil
}

// Revoke makes every token of a token id fail from now on: at once on this
// proxy, within Config.KeyCacheTTL on others sharing its Store.
func (p *Proxy) Revoke(ctx context.Context, id l402.TokenID) error {
	return p.keys.Revoke(ctx, id)
}

// ServeHTTP is the reverse proxy: gate, then forward to the route's
// upstream. A route without an upstream answers 502.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.serve(w, r, nil)
}

// Middleware returns next behind the gate. Routes' Upstream fields are not
// used; requests no route matches are passed to next ungated and unpaid.
func (p *Proxy) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, next) })
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	dropOwnHeaders(r.Header)
	route, cred, ok := p.admit(w, r)
	if !ok {
		return
	}
	if route == nil {
		if next != nil {
			r.Header.Set(HeaderPaid, "false")
			next.ServeHTTP(w, r)
			return
		}
		writeError(w, http.StatusNotFound, "no route for this path", "")
		return
	}
	g := p.gate(w, r, route, cred)
	if g == nil {
		return
	}
	h := next
	if h == nil {
		rp := p.proxies[route]
		if rp == nil {
			g.resolve(http.StatusBadGateway)
			writeError(w, http.StatusBadGateway, "route has no upstream", "")
			return
		}
		h = rp
	}
	if g.paid {
		r.Header.Set(HeaderPaid, "true")
		r.Header.Set(HeaderTokenID, g.tokenID)
	} else {
		r.Header.Set(HeaderPaid, "false")
	}
	if g.receipt != "" {
		w.Header().Set(l402.HeaderPaymentReceipt, g.receipt)
	}
	sw := &statusWriter{ResponseWriter: w}
	if g.finish == nil {
		h.ServeHTTP(sw, r)
		return
	}
	var out http.ResponseWriter = sw
	if g.meter != nil {
		out = g.meter.writer(sw) // a prepaid request's cost is read from its response
	}
	// A single-use grant is resolved whatever happens below, panics
	// included (ReverseProxy aborts with http.ErrAbortHandler when a
	// response cannot be copied; a next handler may panic), so no hold
	// invoice is left held.
	var sent atomic.Bool
	if next != nil {
		sent.Store(true) // an in-process handler has the request as soon as it runs
	} else {
		r = r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
			WroteRequest: func(i httptrace.WroteRequestInfo) {
				if i.Err == nil {
					sent.Store(true)
				}
			},
		}))
	}
	defer func() {
		rec := recover()
		status := sw.code
		switch {
		case r.Context().Err() != nil && sent.Load():
			// The client went away after the upstream had the request:
			// the token is used, whatever the upstream or the failed copy
			// to the client made of it.
			status = statusClientGone
		case status == 0 && rec != nil:
			status = http.StatusInternalServerError
		case status == 0:
			status = http.StatusOK
		}
		g.finish(status)
		if rec != nil {
			panic(rec)
		}
	}()
	h.ServeHTTP(out, r)
}

// statusClientGone is what single-use grants are resolved with when the
// client left after the upstream received its request (nginx logs 499).
const statusClientGone = 499
