package statetest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// restartCases run a proxy over the store, restart it (a new proxy.Proxy
// over the reopened store and the same Lightning node) and check that
// nothing sold was lost.
func restartCases(t *testing.T, h Harness) {
	t.Run("Restart/TokenStillValid", func(t *testing.T) { restartToken(t, h) })
	t.Run("Restart/SpentStaysSpent", func(t *testing.T) { restartSpent(t, h) })
	t.Run("Restart/HeldUnusedIsServed", func(t *testing.T) { restartHeldServed(t, h) })
	t.Run("Restart/HeldUnusedCanceledAtExpiry", func(t *testing.T) { restartHeldExpired(t, h) })
	t.Run("Restart/InFlightIsSettled", func(t *testing.T) { restartInFlight(t, h) })
}

// newNode returns the harness's node, the Backend the proxies of a test
// share, as a restarted proxy finds its node again.
func newNode(t *testing.T, h Harness) *backend.Backend {
	if h.Node == nil {
		t.Fatal("statetest: Harness.Node is required for the cases that run a proxy")
	}
	return h.Node(t)
}

// noHold is a driver that hides the node's hold invoices, so single-use
// routes go through the store's spent hashes.
type noHold struct{ b *backend.Backend }

func (d noHold) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	return d.b.CreateInvoice(ctx, req)
}

func (d noHold) LookupInvoice(ctx context.Context, h backend.PaymentHash) (*backend.Invoice, error) {
	return d.b.LookupInvoice(ctx, h)
}

func (d noHold) Close() error { return nil }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newProxy(t *testing.T, b *backend.Backend, s proxy.Store, instance string, singleUse bool, expiry time.Duration) *proxy.Proxy {
	p, err := proxy.New(proxy.Config{
		Backend: b, Store: s, Instance: instance, CollectEvery: -1, ChallengesPerMinute: -1, Logger: quiet,
		Routes: []proxy.Route{{Name: "r", PathPrefix: "/", Price: backend.Sat(1), SingleUse: singleUse, InvoiceExpiry: expiry}},
	})
	must(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func serve(p *proxy.Proxy, auth string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	p.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })).ServeHTTP(w, r)
	return w
}

func challengeOf(t *testing.T, p *proxy.Proxy) l402.Challenge {
	w := serve(p, "")
	if w.Code != http.StatusPaymentRequired {
		t.Fatalf("challenge: status %d %s", w.Code, w.Body)
	}
	cs, err := l402.ParseChallenges(w.Result().Header)
	if err != nil || len(cs) == 0 {
		t.Fatalf("challenge: %v", err)
	}
	return cs[0]
}

func expect(t *testing.T, w *httptest.ResponseRecorder, status int, what string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("%s: status %d, want %d: %s", what, w.Code, status, w.Body)
	}
}

func restartToken(t *testing.T, h Harness) {
	node := newNode(t, h)
	s := h.Open(t)
	p := newProxy(t, node, s, "a", false, 0)
	c := challengeOf(t, p)
	pay, err := node.PayInvoice(ctx, c.Invoice, backend.PayOptions{})
	must(t, err)
	auth := (&l402.Token{Macaroon: c.Macaroon, Preimage: pay.Preimage}).Authorization()
	expect(t, serve(p, auth), http.StatusOK, "token before restart")
	p.Close()

	p = newProxy(t, node, h.Reopen(t, s), "a", false, 0)
	expect(t, serve(p, auth), http.StatusOK, "token after restart")
	// A collection pass long after the invoice expired keeps a paid token.
	must(t, p.Collect(ctx, time.Now().Add(24*time.Hour), false))
	expect(t, serve(p, auth), http.StatusOK, "token after collection")
}

func restartSpent(t *testing.T, h Harness) {
	node := newNode(t, h)
	nh := backend.New(noHold{node}, backend.Options{})
	s := h.Open(t)
	p := newProxy(t, nh, s, "a", true, 0)
	c := challengeOf(t, p)
	pay, err := node.PayInvoice(ctx, c.Invoice, backend.PayOptions{})
	must(t, err)
	auth := (&l402.Token{Macaroon: c.Macaroon, Preimage: pay.Preimage}).Authorization()
	expect(t, serve(p, auth), http.StatusOK, "single-use token, first use")
	p.Close()

	p = newProxy(t, nh, h.Reopen(t, s), "a", true, 0)
	expect(t, serve(p, auth), http.StatusPaymentRequired, "single-use token after restart")
}

// holdPaid challenges a single-use route on a hold-invoice node and pays:
// the payment stays held, the payer blocked until the proxy settles or
// cancels. It returns the in-flight Authorization and the payer's outcome.
func holdPaid(t *testing.T, node *backend.Backend, p *proxy.Proxy) (string, backend.PaymentHash, <-chan error) {
	c := challengeOf(t, p)
	d, err := backend.DecodeInvoice(c.Invoice)
	must(t, err)
	payCtx, cancel := context.WithTimeout(ctx, time.Minute)
	t.Cleanup(cancel)
	res := make(chan error, 1)
	go func() {
		pay, err := node.PayInvoice(payCtx, c.Invoice, backend.PayOptions{})
		if err == nil && !pay.Preimage.Matches(d.PaymentHash) {
			err = errors.New("payer got a wrong preimage")
		}
		res <- err
	}()
	for {
		inv, err := node.LookupInvoice(ctx, d.PaymentHash)
		must(t, err)
		if inv.State == backend.StateHeld {
			break
		}
		select {
		case err := <-res:
			t.Fatalf("payment ended before it was held: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return l402.PendingAuthorization(c.Macaroon), d.PaymentHash, res
}

func state(t *testing.T, node *backend.Backend, hash backend.PaymentHash) backend.State {
	inv, err := node.LookupInvoice(ctx, hash)
	must(t, err)
	return inv.State
}

func restartHeldServed(t *testing.T, h Harness) {
	node := newNode(t, h)
	s := h.Open(t)
	p := newProxy(t, node, s, "a", true, 0)
	auth, hash, paid := holdPaid(t, node, p)
	p.Close()

	p = newProxy(t, node, h.Reopen(t, s), "a", true, 0)
	must(t, p.Collect(ctx, time.Now(), true)) // nothing to resolve: unclaimed, not expired
	if st := state(t, node, hash); st != backend.StateHeld {
		t.Fatalf("after the restart's collection the invoice is %s, want still held", st)
	}
	expect(t, serve(p, auth), http.StatusOK, "held token after restart")
	if err := <-paid; err != nil {
		t.Fatalf("payer: %v (want settled)", err)
	}
	if st := state(t, node, hash); st != backend.StateSettled {
		t.Fatalf("invoice %s after use, want settled", st)
	}
	expect(t, serve(p, auth), http.StatusPaymentRequired, "held token used twice")
}

func restartHeldExpired(t *testing.T, h Harness) {
	node := newNode(t, h)
	s := h.Open(t)
	p := newProxy(t, node, s, "a", true, time.Hour)
	_, hash, paid := holdPaid(t, node, p)
	p.Close()

	p = newProxy(t, node, h.Reopen(t, s), "a", true, time.Hour)
	// A pass as if the invoice's hour had passed with the token unused.
	must(t, p.Collect(ctx, time.Now().Add(2*time.Hour), false))
	if st := state(t, node, hash); st != backend.StateCanceled {
		t.Fatalf("unused held invoice past expiry is %s, want canceled", st)
	}
	if err := <-paid; !errors.Is(err, backend.ErrPaymentFailed) {
		t.Fatalf("payer: %v, want its payment returned (ErrPaymentFailed)", err)
	}
}

func restartInFlight(t *testing.T, h Harness) {
	node := newNode(t, h)
	s := h.Open(t)
	p := newProxy(t, node, s, "a", true, 0)
	_, hash, paid := holdPaid(t, node, p)
	// What a proxy that died while the upstream had the request leaves
	// behind: the hold claimed by its instance.
	_, err := s.ClaimHold(ctx, hash, "a", time.Now())
	must(t, err)
	p.Close()

	s = h.Reopen(t, s)
	p = newProxy(t, node, s, "a", true, 0)
	must(t, p.Collect(ctx, time.Now(), true))
	if st := state(t, node, hash); st != backend.StateSettled {
		t.Fatalf("hold in use when the proxy stopped is %s after restart, want settled", st)
	}
	if err := <-paid; err != nil {
		t.Fatalf("payer: %v (want settled)", err)
	}
	n, err := s.CountHolds(ctx)
	must(t, err)
	if n != 0 {
		t.Fatalf("%d holds left after resolution", n)
	}
}

// revokeAcross revokes a token through one proxy and checks that a second
// proxy over the same state refuses it once its cached key is older than
// KeyCacheTTL, while the first refuses it at once.
func revokeAcross(t *testing.T, h Harness, a, b proxy.Store) {
	node := newNode(t, h)
	mk := func(s proxy.Store) *proxy.Proxy {
		p, err := proxy.New(proxy.Config{
			Backend: node, Store: s, CollectEvery: -1, ChallengesPerMinute: -1, Logger: quiet, KeyCacheTTL: 50 * time.Millisecond,
			Routes: []proxy.Route{{Name: "r", PathPrefix: "/", Price: backend.Sat(1)}},
		})
		must(t, err)
		t.Cleanup(func() { p.Close() })
		return p
	}
	pa, pb := mk(a), mk(b)
	c := challengeOf(t, pa)
	pay, err := node.PayInvoice(ctx, c.Invoice, backend.PayOptions{})
	must(t, err)
	tok := &l402.Token{Macaroon: c.Macaroon, Preimage: pay.Preimage}
	auth := tok.Authorization()
	expect(t, serve(pa, auth), http.StatusOK, "token on the proxy that sold it")
	expect(t, serve(pb, auth), http.StatusOK, "token on the other proxy")
	id, err := l402.DecodeIdentifier(c.Macaroon.Id())
	must(t, err)
	must(t, pa.Revoke(ctx, id.TokenID))
	expect(t, serve(pa, auth), http.StatusPaymentRequired, "revoked token on the proxy that revoked it")
	time.Sleep(100 * time.Millisecond) // past the other proxy's KeyCacheTTL
	expect(t, serve(pb, auth), http.StatusPaymentRequired, "revoked token on the other proxy after KeyCacheTTL")
}
