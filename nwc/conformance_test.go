package nwc_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/conformance"
	"github.com/l402kit/l402kit/internal/testenv/nostrrelay"
	"github.com/l402kit/l402kit/memory"
	"github.com/l402kit/l402kit/nwc"
	"github.com/l402kit/l402kit/proxy/proxytest"
)

// harness is the NWC adapter -> a relay -> this package's wallet service
// -> a node. The payer is a second NWC connection to a wallet service: on
// memory the same node (it pays its own invoices), on regtest another node,
// so payments go through pay_invoice too.
type harness struct {
	relay *nostrrelay.Relay
	uri   string
	b     *backend.Backend
	payer *backend.Backend
	sup   conformance.Support
	// served are the nodes the harness's wallet services serve.
	served []*backend.Backend
}

// Quiesce closes the idle HTTP connections of the served nodes' adapters
// (LND's REST client on regtest): the wallet service is the harness's side,
// and a connection it opened while serving the Backend under test is not
// that Backend's leak (conformance.Quiescer).
func (h *harness) Quiesce() {
	for _, n := range h.served {
		var c *http.Client
		if n.As(&c) {
			c.CloseIdleConnections()
		}
	}
}

func (h *harness) Backend() *backend.Backend { return h.b }
func (h *harness) Payer() backend.Payer      { return h.payer }

// Support is the served node's, less what NIP-47 cannot carry: a
// caller-chosen preimage (make_invoice has none) and the cancel of a plain
// invoice (cancel_hold_invoice is for hold invoices).
func (h *harness) Support() conformance.Support { return h.sup }

func nwcSupport(node conformance.Support) conformance.Support {
	node.CallerPreimage, node.CancelPlain = false, false
	return node
}

func (h *harness) OpenBackend(ctx context.Context) (*backend.Backend, error) {
	return backend.Open(ctx, h.uri)
}

// StopNode takes the relay down: the wallet is then unreachable, as it is
// when its relay restarts.
func (h *harness) StopNode(context.Context) error { h.relay.Stop(); return nil }

// StartNode brings the relay back and returns once the wallet answers
// through it again (the service republishes its info event, the client
// resubscribes).
func (h *harness) StartNode(ctx context.Context) error {
	if err := h.relay.Resume(); err != nil {
		return err
	}
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := h.b.Ping(cctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func startRelay(t testing.TB) *nostrrelay.Relay {
	t.Helper()
	r, err := nostrrelay.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// serve starts a wallet service for node on relay and returns one
// connection's URI.
func serve(t testing.TB, relay *nostrrelay.Relay, node *backend.Backend, perm nwc.Permissions) (*nwc.Service, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := nwc.NewService(ctx, nwc.ServiceConfig{Backend: node, Relays: []string{relay.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	uri, err := svc.Connect(ctx, perm)
	if err != nil {
		t.Fatal(err)
	}
	return svc, uri
}

func open(t testing.TB, uri string) *backend.Backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := backend.Open(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func newMemory(t testing.TB) *backend.Backend {
	t.Helper()
	n, err := memory.New(context.Background(), memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func newMemoryHarness(t testing.TB) *harness {
	relay := startRelay(t)
	_, uri := serve(t, relay, newMemory(t), nwc.Permissions{})
	b := open(t, uri)
	// The memory node makes any-amount invoices and commits to description
	// hashes.
	return &harness{relay: relay, uri: uri, b: b, payer: b, sup: nwcSupport(conformance.Support{ZeroAmount: true, DescriptionHash: true, HashedDescription: true})}
}

func TestConformanceMemory(t *testing.T) {
	conformance.Run(t, newMemoryHarness(t))
}

func TestProxyFlowMemory(t *testing.T) {
	proxytest.RunFlow(t, newMemoryHarness(t))
}
