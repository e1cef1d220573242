package memory_test

import (
	"context"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/conformance"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/memory"
	"github.com/l402kit/l402kit/proxy/proxytest"
)

// harness runs the suite on a memory node that pays its own invoices; taking
// it down and up is SetAvailable.
type harness struct {
	n *memnode.Node
	b *backend.Backend
}

func (h harness) Backend() *backend.Backend { return h.b }
func (h harness) Payer() backend.Payer      { return h.b }

// OpenBackend implements conformance.Reopener with a new node.
func (h harness) OpenBackend(ctx context.Context) (*backend.Backend, error) {
	return memory.New(ctx, memory.Config{})
}
func (h harness) Support() conformance.Support {
	return conformance.Support{ZeroAmount: true, CallerPreimage: true, DescriptionHash: true, HashedDescription: true, CancelPlain: true}
}
func (h harness) StopNode(context.Context) error  { h.n.SetAvailable(false); return nil }
func (h harness) StartNode(context.Context) error { h.n.SetAvailable(true); return nil }

func newNode(t *testing.T) *memnode.Node {
	t.Helper()
	n, err := memnode.New(memnode.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// newMemory is a Backend made by memory.New, closed when the test ends.
func newMemory(t *testing.T) *backend.Backend {
	t.Helper()
	b, err := memory.New(context.Background(), memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// newHarness is a harness over memory.New, with the node behind it.
func newHarness(t *testing.T) harness {
	b := newMemory(t)
	n, ok := memnode.From(b)
	if !ok {
		t.Fatal("memory.New's Backend hands out no node")
	}
	return harness{n, b}
}

func TestConformance(t *testing.T) {
	conformance.Run(t, newHarness(t))
}

func TestProxyFlow(t *testing.T) {
	proxytest.RunFlow(t, newHarness(t))
}

// noHold hides the memory node's hold invoices, so the proxy flow runs the
// way it does on Eclair, phoenixd and LNURL: single use through the spent
// store.
type noHold struct{ harness }

func (h noHold) Backend() *backend.Backend {
	return backend.New(struct {
		backend.Driver
		backend.Waiter
	}{h.n, h.n}, backend.Options{})
}

func TestProxyFlowWithoutHoldInvoices(t *testing.T) {
	proxytest.RunFlow(t, noHold{newHarness(t)})
}
