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
	return conformance.Support{ZeroAmount: true, CallerPreimage: true, DescriptionHash: true, CancelPlain: true}
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
