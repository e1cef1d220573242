package l402

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// Client errors. Each is returned before anything is paid.
var (
	// ErrPriceTooHigh: the invoice asks more than Transport.MaxPrice, or
	// names no amount.
	ErrPriceTooHigh = errors.New("l402: price above the spending limit")
	// ErrBadChallenge: the challenge cannot be paid safely: its invoice
	// pays a different hash than the macaroon commits to, or has expired.
	ErrBadChallenge = errors.New("l402: unusable challenge")
	// ErrNotReplayable: the request has a body that cannot be sent twice
	// (no Request.GetBody), so it cannot be retried after paying.
	ErrNotReplayable = errors.New("l402: request body cannot be replayed")
	// ErrNoPayer: Transport.Payer is nil.
	ErrNoPayer = errors.New("l402: no payer configured")
)

// DefaultInFlightAfter is Transport.InFlightAfter's default: longer than a
// payment to a plain invoice takes on a direct channel, short enough not to
// keep a single-use request waiting.
const DefaultInFlightAfter = 500 * time.Millisecond

// TokenCache keeps paid tokens so they are reused for later requests. Keys
// are URL prefixes: the origin ("https://host:port") followed by the
// token's path prefix caveat, or by "/" for a token without one, so a
// server whose routes sell separate tokens ("/paid/", "/podcast/") gets one
// token per route rather than one that keeps being replaced.
type TokenCache interface {
	Get(key string) (*Token, bool)
	Put(key string, t *Token)
	Delete(key string)
}

// MemoryTokenCache is a TokenCache in process memory, safe for concurrent
// use.
type MemoryTokenCache struct {
	mu sync.Mutex
	m  map[string]*Token
}

// NewMemoryTokenCache returns an empty cache.
func NewMemoryTokenCache() *MemoryTokenCache {
	return &MemoryTokenCache{m: make(map[string]*Token)}
}

// Get implements TokenCache.
func (c *MemoryTokenCache) Get(key string) (*Token, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[key]
	return t, ok
}

// Put implements TokenCache.
func (c *MemoryTokenCache) Put(key string, t *Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*Token)
	}
	c.m[key] = t
}

// Delete implements TokenCache.
func (c *MemoryTokenCache) Delete(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}

// CacheKey is the TokenCache key of tok for origin: origin plus the longest
// path prefix the token is restricted to, or plus "/".
func CacheKey(origin string, tok *Token) string {
	scope := "/"
	if tok != nil && tok.Macaroon != nil {
		for _, c := range tok.Macaroon.Caveats() {
			cond, value, ok := strings.Cut(string(c.Id), "=")
			if ok && cond == CondPathPrefix && len(value) > len(scope) {
				scope = value
			}
		}
	}
	return origin + scope
}

// cached finds the token for a request path: the one stored under the
// longest prefix of path among the path itself, its ancestors (with and
// without trailing slash) and "/".
func (t *Transport) cached(origin, path string) (*Token, string) {
	if path == "" {
		path = "/"
	}
	for p := path; ; {
		if tok, ok := t.cache.Get(origin + p); ok && tok != nil {
			return tok, origin + p
		}
		if p == "/" {
			return nil, ""
		}
		if strings.HasSuffix(p, "/") {
			p = p[:len(p)-1] // "/a/b/" -> "/a/b"
		} else {
			p = p[:strings.LastIndexByte(p, '/')+1] // "/a/b" -> "/a/"
		}
		if p == "" {
			p = "/"
		}
	}
}

// Receipt records one payment the Transport made.
type Receipt struct {
	// Origin is the server paid ("https://host:port").
	Origin string
	// URL is the request that was answered with the challenge.
	URL string
	// Scheme is the challenge's scheme, "L402" or "LSAT".
	Scheme      string
	PaymentHash backend.PaymentHash
	// Amount is what the payee received; Fee is the routing fee on top.
	Amount backend.MilliSat
	Fee    backend.MilliSat
}

type receiptKey struct{}

// ReceiptFromResponse returns the payment made to obtain resp, when the
// Transport paid for it. A response that reused a cached token has none.
// After a redirect that followed the paid request, and for a response served
// while its payment was in flight (single-use routes on hold invoices, which
// complete when the body is closed), the payment is only reported to
// Transport.OnPayment.
func ReceiptFromResponse(resp *http.Response) (*Receipt, bool) {
	if resp == nil || resp.Request == nil {
		return nil, false
	}
	r, ok := resp.Request.Context().Value(receiptKey{}).(*Receipt)
	return r, ok
}

// Transport is an http.RoundTripper that pays for L402-protected resources.
// It sends each request with "Accept-Authenticate: L402" (so routes where
// payment is optional offer a challenge) and any token cached for the
// origin. On a 402 with an L402 (preferred) or LSAT challenge it checks the
// invoice against MaxPrice and against the macaroon, pays it through
// Payer, caches the token (per origin and the token's path prefix) and
// retries the request once with it.
//
// Requests with a body are retried through Request.GetBody (set by
// http.NewRequest for in-memory bodies); without it the Transport refuses
// to pay (ErrNotReplayable).
//
// Single-use routes on servers with hold invoices cannot hand out the
// preimage before the request is served: the payment stays in flight until
// the server settles it after answering. When a payment is still in flight
// after InFlightAfter, the Transport presents the macaroon alone ("L402
// <macaroon>:", see PendingAuthorization), retrying while the server answers
// that the payment has not arrived; once served, the payment completes and
// is reported when the response body is closed. A server that refuses the
// in-flight form gets the usual retry with the preimage once the payment
// completes.
//
// A Transport is safe for concurrent use; concurrent requests to one origin
// pay at most once between them. Its fields must not change after first use.
type Transport struct {
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Payer pays the invoices.
	Payer backend.Payer
	// MaxPrice is the most one invoice may ask. Zero or less refuses every
	// payment: spending must be allowed explicitly.
	MaxPrice backend.MilliSat
	// MaxFee is the most routing fee per payment; zero lets the payer
	// choose its default.
	MaxFee backend.MilliSat
	// Tokens caches tokens per origin and path prefix (see TokenCache);
	// nil means a cache private to this Transport.
	Tokens TokenCache
	// Logger receives a line per payment; nil means no logs.
	Logger *slog.Logger
	// OnPayment, when set, is called after each payment, before the
	// retried request is sent, whatever its outcome.
	OnPayment func(ctx context.Context, r Receipt)
	// Now replaces time.Now for the invoice expiry check, in tests.
	Now func() time.Time
	// InFlightAfter is how long a payment may run before the Transport
	// presents the macaroon alone, for single-use routes on hold
	// invoices; zero means DefaultInFlightAfter.
	InFlightAfter time.Duration
	// PayTimeout bounds each payment; zero means one minute. A payment
	// outlives the request that started it when that request is canceled
	// (a Lightning payment cannot be called back once sent): its token is
	// still cached and reported when it completes.
	PayTimeout time.Duration

	initOnce sync.Once
	cache    TokenCache
	log      *slog.Logger
	locksMu  sync.Mutex
	locks    map[string]chan struct{}
}

func (t *Transport) init() {
	t.initOnce.Do(func() {
		t.cache = t.Tokens
		if t.cache == nil {
			t.cache = NewMemoryTokenCache()
		}
		t.log = t.Logger
		if t.log == nil {
			t.log = slog.New(slog.DiscardHandler)
		}
		t.locks = make(map[string]chan struct{})
	})
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *Transport) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// Origin returns the origin of u, scheme and host lower-cased
// ("https://host:port"), which starts every TokenCache key.
func Origin(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.init()
	ctx := req.Context()
	origin := Origin(req.URL)

	first := req.Clone(ctx)
	if first.Header.Get(HeaderAcceptAuthenticate) == "" {
		first.Header.Set(HeaderAcceptAuthenticate, SchemeL402)
	}
	sent, sentKey := t.cached(origin, req.URL.Path)
	if sent != nil {
		first.Header.Set(HeaderAuthorization, sent.Authorization())
	}
	resp, err := t.base().RoundTrip(first)
	if err != nil || resp.StatusCode != http.StatusPaymentRequired {
		return resp, err
	}
	chs, err := ParseChallenges(resp.Header)
	if err != nil {
		// A 402 without a challenge we can read is the server's answer
		// to give to the caller as it is.
		t.log.DebugContext(ctx, "l402: 402 without a usable challenge", "origin", origin, "err", err)
		return resp, nil
	}
	discard(resp)
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return nil, fmt.Errorf("%w: %s %s (create it with http.NewRequest from a bytes or strings reader, or set GetBody)",
			ErrNotReplayable, req.Method, req.URL.Redacted())
	}

	send := func(ctx context.Context, auth string) (*http.Response, error) {
		r := req.Clone(ctx)
		if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
			body, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("l402: replay request body: %w", err)
			}
			r.Body = body
		}
		if r.Header.Get(HeaderAcceptAuthenticate) == "" {
			r.Header.Set(HeaderAcceptAuthenticate, SchemeL402)
		}
		r.Header.Set(HeaderAuthorization, auth)
		resp, err := t.base().RoundTrip(r)
		if resp != nil && resp.Request == nil {
			resp.Request = r
		}
		return resp, err
	}
	tok, receipt, served, err := t.obtain(ctx, origin, req.URL, sent, sentKey, pickChallenge(chs), send)
	if err != nil || served != nil {
		return served, err
	}
	retryCtx := ctx
	if receipt != nil {
		retryCtx = context.WithValue(ctx, receiptKey{}, receipt)
	}
	return send(retryCtx, tok.Authorization())
}

// sendFunc sends the request again with an Authorization value.
type sendFunc func(ctx context.Context, auth string) (*http.Response, error)

// obtain returns a token for origin: one another request cached while this
// one waited, or a new one paid for with ch. Only one request per origin
// pays at a time, so a burst of requests pays once. When the server served
// the request while the payment was in flight (single-use route on a hold
// invoice), it returns that response instead of a token.
func (t *Transport) obtain(ctx context.Context, origin string, u *url.URL, sent *Token, sentKey string, ch Challenge, send sendFunc) (*Token, *Receipt, *http.Response, error) {
	unlock, err := t.lock(ctx, origin)
	if err != nil {
		return nil, nil, nil, err
	}
	defer unlock()
	if cur, _ := t.cached(origin, u.Path); cur != nil && cur != sent {
		return cur, nil, nil, nil
	}
	if sent != nil {
		// The server refused the token we sent (expired, revoked, spent):
		// keep no token known to be useless for this path.
		t.cache.Delete(sentKey)
	}
	tok, receipt, served, err := t.pay(ctx, origin, u, ch, send)
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

// offer is what a checked challenge asks: the macaroon's identifier and the
// decoded invoice.
type offer struct {
	ch     Challenge
	id     Identifier
	amount backend.MilliSat
}

func (t *Transport) check(origin string, ch Challenge) (*offer, error) {
	if t.Payer == nil {
		return nil, ErrNoPayer
	}
	id, err := DecodeIdentifier(ch.Macaroon.Id())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadChallenge, err)
	}
	inv, err := backend.DecodeInvoice(ch.Invoice)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadChallenge, err)
	}
	if inv.PaymentHash != id.PaymentHash {
		return nil, fmt.Errorf("%w: invoice pays hash %s but the macaroon commits to %s",
			ErrBadChallenge, inv.PaymentHash, id.PaymentHash)
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
	return &offer{ch: ch, id: id, amount: inv.Amount}, nil
}

func (t *Transport) pay(ctx context.Context, origin string, u *url.URL, ch Challenge, send sendFunc) (*Token, *Receipt, *http.Response, error) {
	q, err := t.check(origin, ch)
	if err != nil {
		return nil, nil, nil, err
	}
	timeout := t.PayTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	done := make(chan payment, 1)
	go func() {
		payCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		p, err := t.Payer.PayInvoice(payCtx, ch.Invoice, backend.PayOptions{MaxFee: t.MaxFee, Timeout: timeout})
		done <- payment{p, err}
	}()
	wait := t.InFlightAfter
	if wait <= 0 {
		wait = DefaultInFlightAfter
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case res := <-done:
		tok, r, err := t.paid(ctx, origin, u, q, res)
		return tok, r, nil, err
	case <-timer.C:
	}

	// The payment is still in flight: perhaps a hold invoice that the
	// server settles only after serving the request.
	pending := PendingAuthorization(ch.Macaroon)
	for {
		resp, err := send(ctx, pending)
		if err != nil {
			break // the payment's own outcome decides below
		}
		if resp.StatusCode != http.StatusPaymentRequired {
			t.log.DebugContext(ctx, "l402: served while the payment is in flight", "origin", origin, "status", resp.StatusCode)
			resp.Body = &settleOnClose{ReadCloser: resp.Body, t: t, ctx: ctx, origin: origin, u: u, q: q, done: done}
			return nil, nil, resp, nil
		}
		_, challenged := resp.Header[http.CanonicalHeaderKey(HeaderWWWAuthenticate)]
		retryAfter := resp.Header.Get("Retry-After")
		discard(resp)
		if challenged {
			// The server wants the preimage (not a single-use hold
			// route): wait for the payment to complete.
			break
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
			return tok, r, nil, err
		case <-time.After(delay):
		case <-ctx.Done():
			go t.adopt(ctx, origin, u, q, done)
			return nil, nil, nil, fmt.Errorf("l402: payment to %s in flight: %w", origin, ctx.Err())
		}
	}
	select {
	case res := <-done:
		tok, r, err := t.paid(ctx, origin, u, q, res)
		return tok, r, nil, err
	case <-ctx.Done():
		go t.adopt(ctx, origin, u, q, done)
		return nil, nil, nil, fmt.Errorf("l402: payment to %s in flight: %w", origin, ctx.Err())
	}
}

// adopt waits for a payment whose request gave up, then caches and reports
// its token as if the request had waited: the money is spent either way.
func (t *Transport) adopt(ctx context.Context, origin string, u *url.URL, q *offer, done <-chan payment) {
	ctx = context.WithoutCancel(ctx)
	tok, r, err := t.complete(origin, u, q, <-done)
	if err != nil {
		t.log.InfoContext(ctx, "l402: abandoned payment did not complete", "origin", origin, "err", err)
		return
	}
	t.cache.Put(CacheKey(origin, tok), tok)
	t.report(ctx, r)
}

// paid turns a finished payment into a token and reports it.
func (t *Transport) paid(ctx context.Context, origin string, u *url.URL, q *offer, res payment) (*Token, *Receipt, error) {
	tok, r, err := t.complete(origin, u, q, res)
	if err == nil {
		t.report(ctx, r)
	}
	return tok, r, err
}

// complete checks a finished payment and makes its token and receipt.
func (t *Transport) complete(origin string, u *url.URL, q *offer, res payment) (*Token, *Receipt, error) {
	if res.err != nil {
		return nil, nil, fmt.Errorf("l402: pay %s for %s: %w", q.amount, origin, res.err)
	}
	p := res.p
	if !p.Preimage.Matches(q.id.PaymentHash) {
		return nil, nil, fmt.Errorf("l402: payer returned a preimage that does not match hash %s: %w",
			q.id.PaymentHash, backend.ErrPaymentFailed)
	}
	amount := p.Amount
	if amount == 0 {
		amount = q.amount
	}
	r := &Receipt{
		Origin: origin, URL: u.Redacted(), Scheme: q.ch.Scheme,
		PaymentHash: q.id.PaymentHash, Amount: amount, Fee: p.Fee,
	}
	return &Token{Macaroon: q.ch.Macaroon, Preimage: p.Preimage, ID: q.id}, r, nil
}

func (t *Transport) report(ctx context.Context, r *Receipt) {
	t.log.InfoContext(ctx, "l402: paid", "origin", r.Origin, "amount_msat", int64(r.Amount),
		"fee_msat", int64(r.Fee), "payment_hash", r.PaymentHash.String())
	if t.OnPayment != nil {
		t.OnPayment(ctx, *r)
	}
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

// lock takes the per-origin payment lock, giving up when ctx ends.
func (t *Transport) lock(ctx context.Context, origin string) (func(), error) {
	t.locksMu.Lock()
	l := t.locks[origin]
	if l == nil {
		l = make(chan struct{}, 1)
		t.locks[origin] = l
	}
	t.locksMu.Unlock()
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("l402: wait for another payment to %s: %w", origin, ctx.Err())
	}
}

// pickChallenge prefers L402 over the legacy LSAT scheme.
func pickChallenge(chs []Challenge) Challenge {
	for _, c := range chs {
		if c.Scheme == SchemeL402 {
			return c
		}
	}
	return chs[0]
}

// discard drains a little of a body so the connection can be reused, then
// closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}
