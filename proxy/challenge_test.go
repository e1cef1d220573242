package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// gatedStore is a MemoryStore whose record writes can be held back or
// made to fail.
type gatedStore struct {
	*proxy.MemoryStore
	mu      sync.Mutex
	entered chan struct{} // closed when PutToken is first called
	release chan struct{} // PutToken waits for it when not nil
	fail    error         // PutToken returns it when set
	once    sync.Once
}

func (s *gatedStore) PutToken(ctx context.Context, c proxy.TokenRecord) error {
	s.once.Do(func() {
		if s.entered != nil {
			close(s.entered)
		}
	})
	if s.release != nil {
		<-s.release
	}
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		return fail
	}
	return s.MemoryStore.PutToken(ctx, c)
}

// challengeOf parses the 402's token and looks its record up.
func challengeOf(t *testing.T, st proxy.Store, w *httptest.ResponseRecorder) (proxy.TokenRecord, l402.Identifier) {
	t.Helper()
	if w.Code != http.StatusPaymentRequired {
		t.Fatalf("status %d: %s", w.Code, w.Body.String())
	}
	chs, err := l402.ParseChallenges(w.Header())
	if err != nil || len(chs) == 0 {
		t.Fatalf("challenge header: %v", err)
	}
	id, err := l402.DecodeIdentifier(chs[0].Macaroon.Id())
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.Token(context.Background(), id.TokenID)
	if err != nil {
		t.Fatalf("record of the token sent: %v", err)
	}
	return c, id
}

// gateNode makes invoices only once gate is closed.
type gateNode struct {
	*memnode.Node
	gate chan struct{}
}

func (g *gateNode) wait() error {
	select {
	case <-g.gate:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("the record write never started before the invoice")
	}
}

func (g *gateNode) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	if err := g.wait(); err != nil {
		return nil, err
	}
	return g.Node.CreateInvoice(ctx, req)
}

func (g *gateNode) CreateHoldInvoice(ctx context.Context, hash backend.PaymentHash, req backend.InvoiceRequest) (*backend.Invoice, error) {
	if err := g.wait(); err != nil {
		return nil, err
	}
	return g.Node.CreateHoldInvoice(ctx, hash, req)
}

// With stored root keys, the token's record is written while the node makes the invoice (the
// node makes it only once the write has begun, and the write ends only
// once the invoice exists), and the 402 waits for the write.
func TestChallengeWritesBesideTheNodeAndAnswersAfter(t *testing.T) {
	for _, single := range []bool{false, true} {
		n, err := memnode.New(memnode.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		st := &gatedStore{MemoryStore: proxy.NewMemoryStore(), entered: make(chan struct{}), release: make(chan struct{})}
		gn := &gateNode{Node: n, gate: st.entered}
		p, err := proxy.New(proxy.Config{Backend: backend.New(gn, backend.Options{}), Store: st, Logger: quietLogger(), StoredRootKeys: true,
			Routes: []proxy.Route{{PathPrefix: "/", Price: backend.Sat(1), SingleUse: single}}})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan *httptest.ResponseRecorder)
		go func() {
			w := httptest.NewRecorder()
			p.Middleware(echo()).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
			done <- w
		}()
		select {
		case <-st.entered:
		case w := <-done:
			t.Fatalf("single-use %v: answered %d without writing the record", single, w.Code)
		}
		for deadline := time.Now().Add(10 * time.Second); n.Len() == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("single-use %v: no invoice made while the record write is pending", single)
			}
		}
		select {
		case w := <-done:
			t.Fatalf("single-use %v: answered %d before the record was written", single, w.Code)
		default:
		}
		close(st.release)
		w := <-done
		c, id := challengeOf(t, st, w)
		if c.PaymentHash != id.PaymentHash {
			t.Fatalf("single-use %v: record hash %s, token hash %s", single, c.PaymentHash, id.PaymentHash)
		}
		inv, err := n.LookupInvoice(context.Background(), id.PaymentHash)
		if err != nil {
			t.Fatalf("single-use %v: the token's hash is not the invoice's: %v", single, err)
		}
		if c.InvoiceExpires.Before(inv.ExpiresAt) {
			t.Fatalf("single-use %v: record expires %v, before its invoice %v", single, c.InvoiceExpires, inv.ExpiresAt)
		}
		if single {
			if h, err := st.ClaimHold(context.Background(), id.PaymentHash, "t", time.Now()); err != nil || h.Hash() != id.PaymentHash {
				t.Fatalf("hold of the challenge: %v", err)
			}
		}
	}
}

// With stored root keys, a failed record write sends no challenge, and a hold invoice made beside
// it is canceled and its hold forgotten.
func TestChallengeStoreFailureSendsNothing(t *testing.T) {
	for _, single := range []bool{false, true} {
		n, err := memnode.New(memnode.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		st := &gatedStore{MemoryStore: proxy.NewMemoryStore(), fail: errors.New("disk gone")}
		hn := &holdNode{Node: n}
		p, err := proxy.New(proxy.Config{Backend: backend.New(hn, backend.Options{}), Store: st, Logger: quietLogger(), StoredRootKeys: true,
			Routes: []proxy.Route{{PathPrefix: "/", Price: backend.Sat(1), SingleUse: single}}})
		if err != nil {
			t.Fatal(err)
		}
		w := do(t, p.Middleware(echo()), http.MethodGet, "/x", nil)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("WWW-Authenticate") != "" || !strings.Contains(w.Body.String(), "store") {
			t.Fatalf("single-use %v: %d %q %q", single, w.Code, w.Header().Get("WWW-Authenticate"), w.Body.String())
		}
		if n, err := st.CountHolds(context.Background()); err != nil || n != 0 {
			t.Fatalf("single-use %v: %d holds left (%v)", single, n, err)
		}
		if single {
			inv, err := n.LookupInvoice(context.Background(), hn.last)
			if err != nil || inv.State != backend.StateCanceled {
				t.Fatalf("hold invoice of the unsent challenge: %v, state %v", err, inv)
			}
		}
	}
}

// holdNode remembers the hash of the last hold invoice it made.
type holdNode struct {
	*memnode.Node
	last backend.PaymentHash
}

func (h *holdNode) CreateHoldInvoice(ctx context.Context, hash backend.PaymentHash, req backend.InvoiceRequest) (*backend.Invoice, error) {
	h.last = hash
	return h.Node.CreateHoldInvoice(ctx, hash, req)
}

// refusingNode is a node that chooses every preimage itself, as phoenixd
// and LNURL services do.
type refusingNode struct {
	*memnode.Node
	refused int
}

func (r *refusingNode) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	if req.Preimage != nil {
		r.refused++
		return nil, backend.ErrUnsupported
	}
	return r.Node.CreateInvoice(ctx, req)
}

// A backend that will not take the proxy's preimage still gets its
// challenges, written after the invoice, and is asked only once.
func TestChallengeBackendChoosesPreimage(t *testing.T) {
	n, err := memnode.New(memnode.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	rn := &refusingNode{Node: n}
	st := proxy.NewMemoryStore()
	p, err := proxy.New(proxy.Config{Backend: backend.New(rn, backend.Options{}), Store: st, Logger: quietLogger(), StoredRootKeys: true,
		Routes: []proxy.Route{{PathPrefix: "/", Price: backend.Sat(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c, id := challengeOf(t, st, do(t, p.Middleware(echo()), http.MethodGet, "/x", nil))
		if c.PaymentHash != id.PaymentHash {
			t.Fatalf("record hash %s, token hash %s", c.PaymentHash, id.PaymentHash)
		}
	}
	if rn.refused != 1 {
		t.Fatalf("asked with a preimage %d times, want once", rn.refused)
	}
}
