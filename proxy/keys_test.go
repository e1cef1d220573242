package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// writeless is a MemoryStore that refuses, and counts, every write a
// challenge or a multi-use token could make; Spend (a single-use token's
// use) passes.
type writeless struct {
	*proxy.MemoryStore
	writes atomic.Int64
}

var errNoWrites = errors.New("this store takes no writes")

func (s *writeless) refuse() error { s.writes.Add(1); return errNoWrites }

func (s *writeless) PutToken(context.Context, proxy.TokenRecord) error { return s.refuse() }
func (s *writeless) MarkPaid(context.Context, l402.TokenID) error      { return s.refuse() }
func (s *writeless) Revoke(context.Context, ...l402.TokenID) error     { return s.refuse() }
func (s *writeless) PutHold(context.Context, proxy.Hold, int) error    { return s.refuse() }
func (s *writeless) AddRevoked(context.Context, time.Time, ...l402.TokenID) error {
	return s.refuse()
}
func (s *writeless) Link(context.Context, proxy.AccountID, proxy.AccountID, time.Time) error {
	return s.refuse()
}

// plainNode hides the memory node's hold invoices, so single-use routes
// spend hashes.
type plainNode struct{ b *backend.Backend }

func (d plainNode) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	return d.b.CreateInvoice(ctx, req)
}

func (d plainNode) LookupInvoice(ctx context.Context, h backend.PaymentHash) (*backend.Invoice, error) {
	return d.b.LookupInvoice(ctx, h)
}

func (d plainNode) Close() error { return nil }

// payChallenge pays the 402 w and returns the token's Authorization and id.
func payChallenge(t *testing.T, n *backend.Backend, w *httptest.ResponseRecorder) (string, l402.Identifier) {
	t.Helper()
	if w.Code != http.StatusPaymentRequired {
		t.Fatalf("want 402, got %d %s", w.Code, w.Body)
	}
	chs, err := l402.ParseChallenges(w.Header())
	if err != nil || len(chs) == 0 {
		t.Fatalf("challenge: %v", err)
	}
	pay, err := n.PayInvoice(context.Background(), chs[0].Invoice, backend.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := l402.NewToken(chs[0].Macaroon, pay.Preimage)
	if err != nil {
		t.Fatal(err)
	}
	id, err := l402.DecodeIdentifier(chs[0].Macaroon.Id())
	if err != nil {
		t.Fatal(err)
	}
	return tok.Authorization(), id
}

func authHeader(auth string) http.Header { return http.Header{"Authorization": {auth}} }

// A challenge on a plain route writes nothing durable: on a store that
// refuses every write it is still sent, and its token, paid, is served
// (once, on a single-use route, whose spend is the one write).
func TestDerivedChallengeWritesNothing(t *testing.T) {
	n := newNode(t)
	st := &writeless{MemoryStore: proxy.NewMemoryStore()}
	p, err := proxy.New(proxy.Config{Backend: backend.New(plainNode{n}, backend.Options{}), Store: st, Logger: quietLogger(),
		Routes: []proxy.Route{
			{Name: "multi", PathPrefix: "/multi/", Price: backend.Sat(1), TokenLifetime: time.Hour},
			{Name: "once", PathPrefix: "/once/", Price: backend.Sat(1), SingleUse: true},
		}})
	if err != nil {
		t.Fatal(err)
	}
	h := p.Middleware(echo())
	auth, id := payChallenge(t, n, do(t, h, http.MethodGet, "/multi/x", nil))
	for range 2 {
		if w := do(t, h, http.MethodGet, "/multi/x", authHeader(auth)); w.Code != http.StatusOK {
			t.Fatalf("multi-use token: %d %s", w.Code, w.Body)
		}
	}
	if _, err := st.Token(context.Background(), id.TokenID); !errors.Is(err, proxy.ErrNoRecord) {
		t.Fatalf("record of a derived token: %v, want none", err)
	}
	auth, _ = payChallenge(t, n, do(t, h, http.MethodGet, "/once/x", nil))
	if w := do(t, h, http.MethodGet, "/once/x", authHeader(auth)); w.Code != http.StatusOK {
		t.Fatalf("single-use token, first use: %d %s", w.Code, w.Body)
	}
	if w := do(t, h, http.MethodGet, "/once/x", authHeader(auth)); w.Code != http.StatusPaymentRequired {
		t.Fatalf("single-use token, second use: %d %s", w.Code, w.Body)
	}
	if k := st.writes.Load(); k != 0 {
		t.Fatalf("%d writes refused; want none asked", k)
	}
}

// Tokens minted with stored root keys, before keys were derived, keep
// verifying with their stored key; revoking one works as it did; and a
// stored-key token whose record is gone stays refused (its derived key is
// not the one it was signed with).
func TestStoredKeyTokensStillVerify(t *testing.T) {
	n := newNode(t)
	st := proxy.NewMemoryStore()
	mk := func(stored bool) http.Handler {
		p, err := proxy.New(proxy.Config{Backend: n, Store: st, Logger: quietLogger(), StoredRootKeys: stored, CollectEvery: -1,
			Routes: []proxy.Route{{Name: "r", PathPrefix: "/", Price: backend.Sat(1)}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p.Middleware(echo())
	}
	old := mk(true)
	a, ida := payChallenge(t, n, do(t, old, http.MethodGet, "/x", nil))
	b, idb := payChallenge(t, n, do(t, old, http.MethodGet, "/x", nil))
	if _, err := st.Token(context.Background(), ida.TokenID); err != nil {
		t.Fatalf("stored-key token has no record: %v", err)
	}
	p, err := proxy.New(proxy.Config{Backend: n, Store: st, Logger: quietLogger(), CollectEvery: -1,
		Routes: []proxy.Route{{Name: "r", PathPrefix: "/", Price: backend.Sat(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	h := p.Middleware(echo())
	for _, auth := range []string{a, b} {
		if w := do(t, h, http.MethodGet, "/x", authHeader(auth)); w.Code != http.StatusOK {
			t.Fatalf("stored-key token on a deriving proxy: %d %s", w.Code, w.Body)
		}
	}
	if err := p.Revoke(context.Background(), ida.TokenID); err != nil {
		t.Fatal(err)
	}
	if w := do(t, h, http.MethodGet, "/x", authHeader(a)); w.Code != http.StatusPaymentRequired {
		t.Fatalf("revoked stored-key token: %d", w.Code)
	}
	// Its record gone some other way (a store restored without it): the
	// derived key does not match, so it is still refused.
	if err := st.Revoke(context.Background(), idb.TokenID); err != nil {
		t.Fatal(err)
	}
	h2 := mk(false)
	if w := do(t, h2, http.MethodGet, "/x", authHeader(b)); w.Code != http.StatusPaymentRequired {
		t.Fatalf("stored-key token without its record: %d", w.Code)
	}
}

// A revoked derived token is refused, stays refused after a collection
// pass before its expiry, and its list entry goes once it has expired.
func TestDerivedRevocation(t *testing.T) {
	n := newNode(t)
	st := proxy.NewMemoryStore()
	p, err := proxy.New(proxy.Config{Backend: n, Store: st, Logger: quietLogger(), CollectEvery: -1,
		Routes: []proxy.Route{{Name: "r", PathPrefix: "/", Price: backend.Sat(1), TokenLifetime: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	h := p.Middleware(echo())
	auth, id := payChallenge(t, n, do(t, h, http.MethodGet, "/x", nil))
	if w := do(t, h, http.MethodGet, "/x", authHeader(auth)); w.Code != http.StatusOK {
		t.Fatalf("token: %d %s", w.Code, w.Body)
	}
	if err := p.Revoke(context.Background(), id.TokenID); err != nil {
		t.Fatal(err)
	}
	if w := do(t, h, http.MethodGet, "/x", authHeader(auth)); w.Code != http.StatusPaymentRequired {
		t.Fatalf("revoked token: %d", w.Code)
	}
	ctx := context.Background()
	if _, err := st.Collect(ctx, time.Now().Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r, err := st.Revoked(ctx, id.TokenID); err != nil || !r {
		t.Fatalf("revocation before the token's expiry: listed %v (%v)", r, err)
	}
	if _, err := st.Collect(ctx, time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if r, err := st.Revoked(ctx, id.TokenID); err != nil || r {
		t.Fatalf("revocation after the token's expiry: listed %v (%v)", r, err)
	}
}
