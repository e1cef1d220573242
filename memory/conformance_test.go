package memory_test

import (
	"context"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/conformance"
	"github.com/l402kit/l402kit/memory"
)

// harness runs the suite on a memory node that pays its own invoices; taking
// it down and up is SetAvailable.
type harness struct{ n *memory.Node }

func (h harness) Backend() backend.Backend { return h.n }
func (h harness) Payer() backend.Payer     { return h.n }
func (h harness) Support() conformance.Support {
	return conformance.Support{ZeroAmount: true, CallerPreimage: true, DescriptionHash: true, HashedDescription: true, CancelPlain: true}
}
func (h harness) StopNode(context.Context) error  { h.n.SetAvailable(false); return nil }
func (h harness) StartNode(context.Context) error { h.n.SetAvailable(true); return nil }

func newNode(t *testing.T) *memory.Node {
	t.Helper()
	n, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestConformance(t *testing.T) {
	conformance.Run(t, harness{newNode(t)})
}

func TestProxyFlow(t *testing.T) {
	conformance.RunProxyFlow(t, harness{newNode(t)})
}

// noHold hides the memory node's hold invoices, so the proxy flow runs the
// way it does on Eclair, phoenixd and LNURL: single use through the spent
// store.
type noHold struct{ harness }

func (h noHold) Backend() backend.Backend {
	return struct {
		backend.Backend
		backend.Waiter
	}{h.n, h.n}
}

func TestProxyFlowWithoutHoldInvoices(t *testing.T) {
	conformance.RunProxyFlow(t, noHold{harness{newNode(t)}})
}
