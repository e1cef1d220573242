package lnurl_test

import (
	"context"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/conformance"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/memory"
	"github.com/l402kit/l402kit/proxy/proxytest"
)

// newMemoryNode is the node behind the LNURL server in the always-run
// harness; it also pays, since it pays its own invoices.
func newMemoryNode(t *testing.T) *backend.Backend { return newMemoryNodeTB(t) }

func newMemoryNodeTB(t testing.TB) *backend.Backend {
	t.Helper()
	n, err := memory.New(context.Background(), memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// noFixedSupport is why the contract suite cannot run yet.
func TestConformanceMemory(t *testing.T) {
	node := newMemoryNode(t)
	conformance.Run(t, newLNURLHarness(t, node, node, 0))
}

func TestProxyFlowMemory(t *testing.T) {
	node := newMemoryNode(t)
	proxytest.RunFlow(t, newLNURLHarness(t, node, node, 0))
}

// nodeOf is the memory node behind b.
func nodeOf(b *backend.Backend) *memnode.Node {
	n, _ := memnode.From(b)
	return n
}
