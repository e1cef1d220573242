package lnurl_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/conformance"
	"github.com/l402kit/l402kit/lnurl"
)

// service serves an lnurl.Server over a real 127.0.0.1 listener that can be
// stopped and started again on the same port, which is what a LNURL service
// going down and coming back looks like to a client.
type service struct {
	t       testing.TB
	handler http.Handler
	addr    string // 127.0.0.1:port, fixed at first start

	mu  sync.Mutex
	srv *http.Server
}

// startService listens on a free loopback port and serves h there.
func startService(t testing.TB, h http.Handler) *service {
	t.Helper()
	s := &service{t: t, handler: h, addr: "127.0.0.1:0"}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.stop(context.Background()) })
	return s
}

func (s *service) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.addr, err)
	}
	s.addr = l.Addr().String()
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.srv = srv
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.t.Errorf("serve %s: %v", s.addr, err)
		}
	}()
	return nil
}

func (s *service) stop(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	// Close, not Shutdown: a service that goes down drops its connections.
	err := s.srv.Close()
	s.srv = nil
	return err
}

// baseURL is the service's http base URL.
func (s *service) baseURL() string { return "http://" + s.addr }

// lnurlHarness runs the conformance suite on an lnurl.Client fetching
// invoices from an lnurl.Server whose backend the payer can pay.
type lnurlHarness struct {
	client *backend.Backend
	payer  backend.Payer
	svc    *service
	addr   string
}

// OpenBackend implements conformance.Reopener: another client of the same
// service.
func (h *lnurlHarness) OpenBackend(ctx context.Context) (*backend.Backend, error) {
	return lnurl.New(ctx, lnurl.Config{Address: h.addr, PollInterval: 50 * time.Millisecond})
}

func (h *lnurlHarness) Backend() *backend.Backend { return h.client }
func (h *lnurlHarness) Payer() backend.Payer      { return h.payer }

// Support: LNURL-pay invoices have the amount the payer asks and nothing
// else of the caller's: no any-amount invoices, no chosen preimage, no
// description hash of the caller's own, and the service's own description
// (hash) and expiry.
func (h *lnurlHarness) Support() conformance.Support {
	return conformance.Support{FixedMemo: true, FixedExpiry: true}
}

// StopNode takes the LNURL service down: its listener closes, so the client
// meets refused connections.
func (h *lnurlHarness) StopNode(ctx context.Context) error { return h.svc.stop(ctx) }

// StartNode serves again on the same port.
func (h *lnurlHarness) StartNode(ctx context.Context) error {
	// The port was just freed; another process could take it in between,
	// which the error then says.
	return h.svc.start()
}

var _ conformance.Restarter = (*lnurlHarness)(nil)

// newLNURLHarness serves an lnurl.Server for node at name@127.0.0.1:port and
// opens a Client on that lightning address.
func newLNURLHarness(t testing.TB, node *backend.Backend, payer backend.Payer, expiry time.Duration) *lnurlHarness {
	t.Helper()
	// The domain (and so the address) needs the port, which is known only
	// once listening: serve a handler that is filled in right after.
	var (
		mu  sync.RWMutex
		srv http.Handler
	)
	svc := startService(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.RLock()
		h := srv
		mu.RUnlock()
		h.ServeHTTP(w, r)
	}))
	s, err := lnurl.NewServer(lnurl.ServerConfig{
		Backend: node,
		Domain:  svc.addr,
		BaseURL: svc.baseURL(),
		Min:     1000,
		Max:     backend.Sat(1_000_000),
		Names:   []string{"alice"},
		Expiry:  expiry,
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	srv = s
	mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := lnurl.New(ctx, lnurl.Config{Address: s.Address("alice"), PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("lnurl.New on %s: %v", s.Address("alice"), err)
	}
	t.Cleanup(func() { c.Close() })
	return &lnurlHarness{client: c, payer: payer, svc: svc, addr: s.Address("alice")}
}
