package eclair_test

import (
	"context"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/conformance"
	"github.com/l402kit/l402kit/eclair"
	"github.com/l402kit/l402kit/internal/fakes/eclairfake"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/proxy/proxytest"
)

const testPassword = "21satoshi"

// fakeHarness runs the adapter against the documented-protocol fake on a
// 127.0.0.1 port; the payer is the memory node behind the fake, which pays
// its own invoices in process, as a second regtest node with a channel
// would pay them over the network.
type fakeHarness struct {
	node *memnode.Node
	fake *eclairfake.Server
	b    *backend.Backend
}

func (h *fakeHarness) Backend() *backend.Backend { return h.b }
func (h *fakeHarness) Payer() backend.Payer      { return backend.New(h.node, backend.Options{}) }

// OpenBackend implements conformance.Reopener: another adapter on the fake.
func (h *fakeHarness) OpenBackend(ctx context.Context) (*backend.Backend, error) {
	return eclair.New(ctx, eclair.Config{URL: h.fake.URL(), Password: testPassword, PollInterval: 100 * time.Millisecond})
}
func (h *fakeHarness) Support() conformance.Support {
	// Eclair's createinvoice takes no amount (any-amount invoice),
	// descriptionHash and paymentPreimage.
	return conformance.Support{ZeroAmount: true, CallerPreimage: true, DescriptionHash: true, HashedDescription: true}
}

// StopNode closes the API's listener and connections: the adapter then
// meets a refused connection, as with a stopped Eclair.
func (h *fakeHarness) StopNode(context.Context) error { return h.fake.Stop() }

// StartNode listens again on the same port.
func (h *fakeHarness) StartNode(context.Context) error { return h.fake.Start() }

var (
	_ conformance.Harness   = (*fakeHarness)(nil)
	_ conformance.Restarter = (*fakeHarness)(nil)
)

// newFakeHarness starts a memory node, the fake in front of it and an
// adapter pointed at the fake, all torn down with t.
func newFakeHarness(t *testing.T) *fakeHarness {
	t.Helper()
	node, err := memnode.New(memnode.Config{Alias: "eclairfake"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	fake, err := eclairfake.New(eclairfake.Config{Node: node, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	b, err := eclair.New(context.Background(), eclair.Config{URL: fake.URL(), Password: testPassword, PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return &fakeHarness{node: node, fake: fake, b: b}
}

func TestConformanceFake(t *testing.T) {
	conformance.Run(t, newFakeHarness(t))
}

// The proxy flow over Eclair: no hold invoices, so single-use tokens rest
// on the proxy's spent-hash record, which SingleUse/ReplayRefused shows.
func TestProxyFlowFake(t *testing.T) {
	proxytest.RunFlow(t, newFakeHarness(t))
}
