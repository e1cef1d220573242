package proxy

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/macaroon.v2"

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
	// TrustForwardedFor takes the client address from X-Forwarded-For, for
	// a proxy that sits behind another one. Off by default: clients could
	// otherwise choose their address for client_ip caveats and rate limits.
	TrustForwardedFor bool
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
	parsed   *parsedTokens
	inflight sync.WaitGroup // single-use grants not yet resolved
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
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Transport == nil {
		cfg.Transport = NewTransport(TransportConfig{})
	}
	keys := newKeyring(cfg.Store, cfg.KeyCacheTTL, 1<<16)
	p := &Proxy{
		cfg:      cfg,
		routes:   rt,
		unpaid:   newUnpaidBook(cfg.MaxPendingPerClient, cfg.MaxPendingHolds),
		verifier: l402.NewVerifier(keys),
		store:    cfg.Store,
		keys:     keys,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		limit:    newLimiter(cfg.ChallengesPerMinute),
		log:      cfg.Logger,
		proxies:  map[*Route]*httputil.ReverseProxy{},
		parsed:   newParsedTokens(4096),
	}
	if cfg.Backend.Supports(backend.AbilityHold) {
		p.holder = cfg.Backend
	}
	if p.m, err = newMetrics(cfg.Registerer, p.countHolds); err != nil {
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
	sw := &statusWriter{ResponseWriter: w}
	if g.finish == nil {
		h.ServeHTTP(sw, r)
		return
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
	h.ServeHTTP(sw, r)
}

// statusClientGone is what single-use grants are resolved with when the
// client left after the upstream received its request (nginx logs 499).
const statusClientGone = 499

// admit applies the canonical-request rule to r and finds its route (nil
// when none matches) and credential; false when it has answered 400.
func (p *Proxy) admit(w http.ResponseWriter, r *http.Request) (*Route, string, bool) {
	host, cred, rerr := p.canonical(r)
	if rerr == nil {
		var route *Route
		if route, rerr = p.routes.match(host, r.URL.Path); rerr == nil {
			return route, cred, true
		}
	}
	p.badRequest(w, rerr)
	return nil, "", false
}

// canonical applies the canonical-request rule to r as the upstream will
// receive it (its path as r.URL.EscapedPath gives it, which is what
// ReverseProxy forwards): the path and host must have one reading
// (CanonicalPath, CanonicalHost), no header may override the path, and the
// request may carry at most one L402/LSAT credential. It returns the host
// in canonical form (r.Host stays as sent, for the upstream's
// X-Forwarded-Host) and that credential, after removing every L402/LSAT
// Authorization value from r.Header, so none reaches an upstream.
func (p *Proxy) canonical(r *http.Request) (string, string, *RequestError) {
	path, err := CanonicalPath(r.URL.EscapedPath())
	if err != nil {
		return "", "", err.(*RequestError)
	}
	if path != r.URL.Path {
		// The path the upstream gets decodes to something else than the
		// one routing would see: refuse rather than guess which counts.
		return "", "", pathErr("escaped and decoded paths disagree")
	}
	host, err := CanonicalHost(r.Host)
	if err != nil {
		return "", "", err.(*RequestError)
	}
	for k := range r.Header {
		if pathOverrideHeader(k) {
			return "", "", &RequestError{Reason: ReasonHeader, Msg: "header " + k + " refused: frameworks read it as the request path"}
		}
	}
	cred, rerr := takeCredential(r.Header)
	return host, cred, rerr
}

func (p *Proxy) badRequest(w http.ResponseWriter, e *RequestError) {
	p.m.badRequests.WithLabelValues(e.Reason).Inc()
	p.log.Info("request refused", "reason", e.Reason, "err", e.Msg)
	writeError(w, http.StatusBadRequest, e.Msg, e.Reason)
}

// dropOwnHeaders removes client-sent headers that some server would read
// as the gate's own X-L402-* headers (see ownHeader).
func dropOwnHeaders(h http.Header) {
	for k := range h {
		if ownHeader(k) {
			delete(h, k)
		}
	}
}

// takeCredential removes every L402 and LSAT Authorization value from h,
// keeping other schemes' values for the upstream, and returns the one
// credential the request carries ("" for none). A request may repeat its
// credential (some clients send it under both schemes) but not carry two
// different ones, which would leave open which one paid; nor hide one in
// a list inside another scheme's value, where a server splitting on commas
// would find it.
func takeCredential(h http.Header) (string, *RequestError) {
	vals := h.Values(l402.HeaderAuthorization)
	if len(vals) == 0 {
		return "", nil
	}
	if len(vals) == 1 && !l402.IsAuthorization(vals[0]) && strings.IndexByte(vals[0], ',') < 0 {
		return "", nil // the common case of another scheme: nothing to do
	}
	var (
		cred, credRest string
		keep           []string
	)
	for _, v := range vals {
		if !l402.IsAuthorization(v) {
			for _, part := range strings.Split(v, ",") {
				if l402.IsAuthorization(part) {
					return "", &RequestError{Reason: ReasonCredentials, Msg: "an L402/LSAT credential inside another scheme's Authorization value"}
				}
			}
			keep = append(keep, v)
			continue
		}
		_, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
		rest = strings.TrimSpace(rest)
		if cred != "" && rest != credRest {
			return "", &RequestError{Reason: ReasonCredentials, Msg: "several different L402/LSAT credentials in one request"}
		}
		if cred == "" {
			cred, credRest = v, rest
		}
	}
	if len(keep) == 0 {
		delete(h, l402.HeaderAuthorization)
	} else {
		h[l402.HeaderAuthorization] = keep
	}
	return cred, nil
}

// grant lets a request through; finish, set for single-use tokens, runs
// once the upstream answered, with its status, to settle or release what
// the token holds: a status of 500 or more releases it (the client's
// payment returns), anything else uses it up.
type grant struct {
	paid    bool
	tokenID string
	finish  func(status int)
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
	req := l402.Request{Service: route.Name, Now: time.Now(), ClientIP: p.clientIP(r), Path: r.URL.Path, Method: r.Method}
	if cred == "" {
		if route.Mode == ModeOptional && !wantsChallenge(r) {
			p.m.requests.WithLabelValues(route.Name, "free").Inc()
			return &grant{}
		}
		p.challenge(w, r, route, "")
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

// challenge answers 402 with a fresh invoice and macaroon.
//
// The durable record of the token (its root key, and for a hold route the
// preimage) is written while the node makes the invoice, so a challenge
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
func (p *Proxy) challenge(w http.ResponseWriter, r *http.Request, route *Route, why string) {
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
	req := backend.InvoiceRequest{Amount: price, Memo: route.Memo, Expiry: route.InvoiceExpiry}
	hold := route.SingleUse && p.holder != nil
	if hold && !p.makeRoom(ctx, w, route, client) {
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
	c := Challenge{Route: route.Name, Client: client.String(), TokenExpires: tokenExpires}

	var (
		inv *backend.Invoice
		mac *macaroon.Macaroon
	)
	if hold || !p.refusesPreimage.Load() {
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
	if err != nil {
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
		return
	}
	if hold {
		p.unpaid.add(client, inv.PaymentHash, inv.ExpiresAt)
	}
	// Only a single-use hold route accepts the macaroon alone while the
	// payment is in flight, so only its challenge says so.
	l402.AddChallenges(w.Header(), l402.Challenge{Macaroon: mac, Invoice: inv.PaymentRequest, InFlight: hold})
	p.m.challenges.WithLabelValues(route.Name).Inc()
	p.m.requests.WithLabelValues(route.Name, "challenged").Inc()
	msg := fmt.Sprintf("payment required: %s for %s", price, route.Name)
	if why != "" {
		msg = why + "; " + msg
	}
	writeChallenge(w, msg, inv, price)
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
	c Challenge, caveats []l402.Caveat, hold bool) (*backend.Invoice, *macaroon.Macaroon, error) {
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
	mac, err := p.newToken(&c, caveats)
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
	wg.Go(func() { chErr = p.store.PutChallenge(sctx, c) })

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
	if chErr == nil {
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
	c Challenge, caveats []l402.Caveat) (*backend.Invoice, *macaroon.Macaroon, error) {
	var inv *backend.Invoice
	err := p.nodeCall("create_invoice", func() (err error) {
		inv, err = p.cfg.Backend.CreateInvoice(ctx, req)
		return err
	})
	if err != nil {
		return nil, nil, nodeFailure(err)
	}
	c.PaymentHash, c.InvoiceExpires = inv.PaymentHash, inv.ExpiresAt
	mac, err := p.newToken(&c, caveats)
	if err != nil {
		return nil, nil, tokenFailure(err)
	}
	// The store gets its own deadline, not what the node call left over.
	sctx, scancel := context.WithTimeout(r.Context(), p.cfg.NodeTimeout)
	defer scancel()
	if err := p.store.PutChallenge(sctx, c); err != nil {
		return nil, nil, tokenFailure(fmt.Errorf("record challenge: %w", err))
	}
	return inv, mac, nil
}

// makeRoom applies the bounds of the unpaid book (see unpaidBook) before a
// new hold invoice is made for client: 429 when the client's own quota is
// used up; at the global bound, evicts the oldest entry of the client with
// the most, once the node confirms its invoice is still open. False when
// it has answered the request.
func (p *Proxy) makeRoom(ctx context.Context, w http.ResponseWriter, route *Route, client netip.Addr) bool {
	for range 4 {
		held, err := p.store.CountHolds(ctx)
		if err != nil {
			p.unavailable(w, route, "hold store unavailable", err)
			return false
		}
		quotaFull, victim := p.unpaid.admit(client, time.Now(), held)
		if quotaFull {
			p.m.requests.WithLabelValues(route.Name, "rate_limited").Inc()
			w.Header().Set("Retry-After", "60")
			writeError(w, http.StatusTooManyRequests, "too many unpaid single-use invoices for this address; pay or let one expire first", "pending_quota")
			return false
		}
		if victim == nil {
			return true
		}
		p.evictUnpaid(ctx, victim.hash)
	}
	p.unavailable(w, route, "too many unpaid single-use invoices", errors.New("no unpaid invoice could be evicted"))
	return false
}

// evictUnpaid drops an unpaid hold to make room. It asks the node first
// and cancels only an invoice that is still open, so a payment that arrived
// is never lost; one that is held or settled just leaves the unpaid book.
func (p *Proxy) evictUnpaid(ctx context.Context, hash backend.PaymentHash) {
	inv, err := p.lookup(ctx, hash)
	switch {
	case errors.Is(err, backend.ErrNotFound):
	case err != nil:
		p.log.Warn("cannot evict an unpaid single-use invoice: node unavailable", "err", err)
		return
	case inv.State == backend.StateOpen:
		cctx, cancel := context.WithTimeout(ctx, p.cfg.NodeTimeout)
		err := p.nodeCall("cancel", func() error { return p.holder.CancelInvoice(cctx, hash) })
		cancel()
		if err != nil {
			p.log.Warn("cannot evict an unpaid single-use invoice", "hash", hash.String(), "err", err)
			return
		}
		p.m.evicted.Inc()
	case inv.State == backend.StateHeld:
		p.unpaid.remove(hash) // paid: the store keeps it for its token
		return
	}
	p.unpaid.remove(hash)
	if err := p.store.DeleteHold(ctx, hash); err != nil {
		p.log.Warn("cannot forget an evicted single-use invoice; the collector drops it at expiry", "hash", hash.String(), "err", err)
	}
}

// newToken makes the token of a challenge: a fresh token id and root key,
// set in c for its record.
func (p *Proxy) newToken(c *Challenge, caveats []l402.Caveat) (*macaroon.Macaroon, error) {
	id, err := l402.NewIdentifier(c.PaymentHash)
	if err != nil {
		return nil, err
	}
	key := make([]byte, l402.RootKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
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

// refuse answers a presented token that does not grant the request: 401
// with the reason, and a fresh challenge so the client can buy a new token.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, route *Route, why string, err error) {
	p.m.refused.WithLabelValues(route.Name, why).Inc()
	p.m.requests.WithLabelValues(route.Name, "refused").Inc()
	p.log.Info("token refused", "route", route.Name, "reason", why, "err", err)
	p.challenge(w, r, route, "token refused ("+why+"): "+err.Error())
}

func (p *Proxy) unavailable(w http.ResponseWriter, route *Route, msg string, err error) {
	p.m.requests.WithLabelValues(route.Name, "unavailable").Inc()
	p.log.Warn(msg, "route", route.Name, "err", err)
	w.Header().Set("Retry-After", "5")
	writeError(w, http.StatusServiceUnavailable, msg, "unavailable")
}

func (p *Proxy) lookup(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.NodeTimeout)
	defer cancel()
	var inv *backend.Invoice
	err := p.nodeCall("lookup_invoice", func() (err error) {
		inv, err = p.cfg.Backend.LookupInvoice(ctx, hash)
		return err
	})
	return inv, err
}

func (p *Proxy) nodeCall(op string, f func() error) error {
	start := time.Now()
	err := f()
	result := "ok"
	if err != nil {
		result = "error"
	}
	p.m.nodeCalls.WithLabelValues(op, result).Observe(time.Since(start).Seconds())
	return err
}

// Healthz answers 200 when the backend's node answers a ping (its getinfo,
// or for LNURL-pay the service's pay parameters), 503 with the reason when
// it does not. A backend that cannot be pinged is reported as such, with
// 200: the proxy cannot tell.
func (p *Proxy) Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), p.cfg.NodeTimeout)
		defer cancel()
		b := p.cfg.Backend
		body := map[string]any{"backend_abilities": backend.Abilities(b)}
		err := p.nodeCall("ping", func() error { return b.Ping(ctx) })
		if errors.Is(err, backend.ErrUnsupported) {
			body["backend"] = "unchecked: the backend cannot be pinged"
			err = nil
		}
		if err == nil && b.Supports(backend.AbilityInfo) {
			if info, ierr := b.Info(ctx); ierr == nil {
				body["node"] = info
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			body["status"] = "unavailable"
			body["error"] = err.Error()
			w.WriteHeader(http.StatusServiceUnavailable)
		} else {
			body["status"] = "ok"
		}
		json.NewEncoder(w).Encode(body)
	})
}

func (p *Proxy) clientIP(r *http.Request) netip.Addr {
	if p.cfg.TrustForwardedFor {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			if a, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
				return a.Unmap()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// wantsChallenge reports whether the client said it can pay, with
// Accept-Authenticate: L402 (or LSAT), possibly among other schemes.
func wantsChallenge(r *http.Request) bool {
	for _, v := range r.Header.Values(l402.HeaderAcceptAuthenticate) {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if i := strings.IndexAny(s, " ;"); i >= 0 {
				s = s[:i]
			}
			if strings.EqualFold(s, "L402") || strings.EqualFold(s, "LSAT") {
				return true
			}
		}
	}
	return false
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

type errorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason,omitempty"`
}

func writeError(w http.ResponseWriter, status int, msg, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody{Error: msg, Reason: reason})
}

type challengeBody struct {
	Error       string `json:"error"`
	Invoice     string `json:"invoice"`
	PaymentHash string `json:"payment_hash"`
	AmountMsat  int64  `json:"amount_msat"`
}

func writeChallenge(w http.ResponseWriter, msg string, inv *backend.Invoice, price backend.MilliSat) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusPaymentRequired)
	json.NewEncoder(w).Encode(challengeBody{Error: msg, Invoice: inv.PaymentRequest, PaymentHash: inv.PaymentHash.String(), AmountMsat: int64(price)})
}

// statusWriter remembers the status the handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and friends.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
