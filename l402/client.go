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

// Client errors. Each is returned before anything is paid, inside a
// *ChallengeError.
var (
	// ErrPriceTooHigh: the invoice asks more than Transport.MaxPrice, or
	// names no amount.
	ErrPriceTooHigh = errors.New("l402: price above the spending limit")
	// ErrBadChallenge: the challenge cannot be paid safely: its invoice
	// cannot be read, has expired, or pays a different hash than the
	// macaroon commits to (a server, or someone between, asking to be paid
	// for a token the payment would not unlock).
	ErrBadChallenge = errors.New("l402: unusable challenge")
	// ErrNotReplayable: the request has a body that cannot be sent twice
	// (no Request.GetBody), so it cannot be retried after paying.
	ErrNotReplayable = errors.New("l402: request body cannot be replayed")
	// ErrNoPayer: Transport.Payer is nil.
	ErrNoPayer = errors.New("l402: no payer configured")
)

// ChallengeError is what a Transport returns for a 402 response whose L402
// or LSAT challenge it did not pay: nothing was paid. Err says why and
// matches one of ErrPriceTooHigh, ErrBadChallenge, ErrNotReplayable,
// ErrNoPayer or ErrMalformed (a challenge that cannot be read) with
// errors.Is; errors.As finds the ChallengeError through the *url.Error an
// http.Client wraps it in.
//
// A 402 without any challenge the Transport pays (another payment scheme
// only, or a scheme left out of Transport.Schemes) is not an error: the
// Transport returns that response as it is. A Payment challenge it would
// pay but cannot (another method, an intent other than charge) is a
// ChallengeError with Scheme "Payment" and ErrPaymentUnsupported.
type ChallengeError struct {
	// URL is the request's URL, redacted.
	URL string
	// Scheme is the challenge's scheme ("L402", "LSAT", "Payment"), or ""
	// when none could be read.
	Scheme string
	Err    error
}

func (e *ChallengeError) Error() string {
	return "l402: not paying the challenge of " + e.URL + ": " + e.Err.Error()
}

func (e *ChallengeError) Unwrap() error { return e.Err }

// DefaultInFlightAfter is Transport.InFlightAfter's default: longer than a
// payment to a plain invoice takes on a direct channel, short enough not to
// keep a single-use request waiting.
const DefaultInFlightAfter = 500 * time.Millisecond

// Transport is an http.RoundTripper that pays for L402-protected resources.
// It sends each request with "Accept-Authenticate: L402" (so routes where
// payment is optional offer a challenge) and a cached token whose caveats,
// as far as a client can read them, allow the request: path prefix,
// method and expiry in this package's and Aperture's conventions,
// ngx_l402's exact RequestPath, RequestMethod and ExpiresAt.
//
// A 402 may offer several schemes: L402, the legacy LSAT, and the Payment
// scheme's Lightning charge (draft-httpauth-payment, as Aperture serves it
// beside L402). The Transport answers the first it can read in the order
// of Schemes (DefaultSchemes: L402, LSAT, Payment); challenges of other
// schemes are ignored. A Payment charge is paid for the one request: the
// request is sent again with "Authorization: Payment <credential>" and
// nothing is cached; the server's Payment-Receipt is read with
// ParsePaymentReceipt.
//
// On a 402 answered with an L402 or LSAT challenge, it checks the invoice
// against MaxPrice and against the macaroon, pays it through Payer, caches the token (per origin and the
// token's path) and retries the request once with it. The payment hash
// comes from the invoice; the macaroon's identifier is read only to check
// that it commits to the same hash, in the layouts PaymentHashOf knows
// (Aperture's, ngx_l402's): one it cannot read does not stop the payment,
// one that disagrees does. A challenge it does not pay is a
// *ChallengeError saying why.
//
// A 401 or 402 answer to a token drops it from the cache. A 401 answer to
// a cached token (ngx_l402 refuses a spent single-use token with a bare
// 401) is followed by one request without the token, so the server can
// challenge again; a 401 that carries another scheme's challenge (Basic,
// Bearer) is the upstream's own and leaves the token alone.
//
// Requests with a body are retried through Request.GetBody (set by
// http.NewRequest for in-memory bodies); without it the Transport refuses
// to pay (ErrNotReplayable).
//
// Single-use routes on servers with hold invoices cannot hand out the
// preimage before the request is served: the payment stays in flight until
// the server settles it after answering. Such a server says so in its
// challenge (ParamInFlight, this project's extension). Only then, when the
// payment is still in flight after InFlightAfter, does the Transport
// present the macaroon alone ("L402 <macaroon>:", see
// PendingAuthorization), retrying while the server answers that the
// payment has not arrived; once served, the payment completes and is
// reported when the response body is closed. Every other challenge is
// answered with the preimage, however long the payment takes within
// PayTimeout.
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
	// Now replaces time.Now for the invoice and token expiry checks, in
	// tests.
	Now func() time.Time
	// InFlightAfter is how long a payment may run before the Transport
	// presents the macaroon alone, to servers whose challenge accepts it;
	// zero means DefaultInFlightAfter.
	InFlightAfter time.Duration
	// Schemes is the order in which the schemes of a 402 are preferred,
	// of "L402", "LSAT" and "Payment" (Lightning charges); a scheme left
	// out is never paid. Empty means DefaultSchemes.
	Schemes []string
	// PayTimeout bounds each payment; zero means one minute. A payment
	// outlives the request that started it when that request is canceled
	// (a Lightning payment cannot be called back once sent): its token is
	// still cached and reported when it completes.
	PayTimeout time.Duration
	// Ledger, when set, may refuse each payment before it starts (budgets)
	// and records how each ended (a durable token store, a spend log).
	Ledger Ledger

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
	hasBody := req.Body != nil && req.Body != http.NoBody
	replayable := !hasBody || req.GetBody != nil

	// send sends the request again, with auth as its Authorization ("" for
	// none).
	send := func(ctx context.Context, auth string) (*http.Response, error) {
		r := req.Clone(ctx)
		if hasBody {
			body, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("l402: replay request body: %w", err)
			}
			r.Body = body
		}
		if r.Header.Get(HeaderAcceptAuthenticate) == "" {
			r.Header.Set(HeaderAcceptAuthenticate, SchemeL402)
		}
		if auth != "" {
			r.Header.Set(HeaderAuthorization, auth)
		}
		resp, err := t.base().RoundTrip(r)
		if resp != nil && resp.Request == nil {
			resp.Request = r
		}
		return resp, err
	}

	first := req.Clone(ctx)
	if first.Header.Get(HeaderAcceptAuthenticate) == "" {
		first.Header.Set(HeaderAcceptAuthenticate, SchemeL402)
	}
	sent, sentKey := t.cached(origin, req.Method, req.URL.Path)
	if sent != nil {
		first.Header.Set(HeaderAuthorization, sent.Authorization())
	}
	resp, err := t.base().RoundTrip(first)
	if err != nil {
		return nil, err
	}
	if sent != nil && refusesToken(resp) {
		// Expired, revoked or spent: keep no token known to be useless
		// for this request.
		t.drop(sentKey, sent)
		t.log.DebugContext(ctx, "l402: token refused", "origin", origin, "status", resp.StatusCode)
		if resp.StatusCode == http.StatusUnauthorized {
			if !replayable {
				return resp, nil
			}
			// Servers that refuse with a bare 401 challenge only a
			// request without credentials.
			discard(resp)
			if resp, err = send(ctx, ""); err != nil {
				return nil, err
			}
		}
	}
	if resp.StatusCode != http.StatusPaymentRequired {
		return resp, nil
	}
	chs, err := ParseChallenges(resp.Header)
	if pcs, ok := t.preferCharge(resp.Header, chs, err); ok {
		discard(resp)
		return t.payCharge(ctx, req, origin, pcs, replayable, send)
	}
	chs, err = t.ranked(chs, err)
	if errors.Is(err, ErrNoChallenge) {
		// Another payment scheme: the caller's to handle.
		return resp, nil
	}
	discard(resp)
	if err != nil {
		return nil, &ChallengeError{URL: req.URL.Redacted(), Err: err}
	}
	ch := pickChallenge(chs)
	if !replayable {
		return nil, &ChallengeError{URL: req.URL.Redacted(), Scheme: ch.Scheme, Err: fmt.Errorf(
			"%w: %s %s (create it with http.NewRequest from a bytes or strings reader, or set GetBody)",
			ErrNotReplayable, req.Method, req.URL.Redacted())}
	}
	tok, receipt, served, err := t.obtain(ctx, origin, req, sent, ch, send)
	if err != nil || served != nil {
		return served, err
	}
	retryCtx := ctx
	if receipt != nil {
		retryCtx = context.WithValue(ctx, receiptKey{}, receipt)
	}
	resp, err = send(retryCtx, tok.Authorization())
	if err == nil && refusesToken(resp) {
		t.drop(CacheKey(origin, tok), tok)
		t.log.InfoContext(ctx, "l402: server refused the token it was paid for", "origin", origin, "status", resp.StatusCode)
	}
	return resp, err
}

// refusesToken reports whether resp refuses the L402 token the request
// carried: a 402, or a 401 that is not another scheme's challenge (an
// upstream asking for its own credentials says nothing about the token).
func refusesToken(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusPaymentRequired:
		return true
	case http.StatusUnauthorized:
		for _, line := range resp.Header.Values(HeaderWWWAuthenticate) {
			chs, _ := parseChallengeList(line)
			for _, ch := range chs {
				if !isL402Scheme(ch.scheme) {
					return false
				}
			}
		}
		return true
	}
	return false
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

// pickChallenge takes the first of the challenges t.ranked ordered.
func pickChallenge(chs []Challenge) Challenge {
	return chs[0]
}

// discard drains a little of a body so the connection can be reused, then
// closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// sameCredential reports whether a and b are one token. A durable
// TokenCache decodes a new *Token on every Get, so pointers cannot tell;
// the credential can.
func sameCredential(a, b *Token) bool {
	if a == b {
		return true
	}
	return a != nil && b != nil && a.Authorization() == b.Authorization()
}
