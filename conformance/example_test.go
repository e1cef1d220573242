package conformance_test

import (
	"testing"

	"github.com/l402kit/l402kit/conformance"
	"github.com/l402kit/l402kit/memory"
)

// Checking a backend of your own takes a test function: give the suite the
// backend, something that can pay its invoices, and what it supports. Here
// the memory node is both; on regtest the payer is a second node with a
// channel into yours.
func Example() {
	TestMyBackend := func(t *testing.T) {
		node, err := memory.New(memory.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer node.Close()
		conformance.Run(t, conformance.NewHarness(node, node, conformance.Support{
			ZeroAmount: true, CallerPreimage: true, DescriptionHash: true, HashedDescription: true,
		}))
	}
	_ = TestMyBackend
}

// The example's own harness, run for real, so the example cannot rot.
func TestNewHarness(t *testing.T) {
	node, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	conformance.Run(t, conformance.NewHarness(node, node, conformance.Support{
		ZeroAmount: true, CallerPreimage: true, DescriptionHash: true, HashedDescription: true,
	}))
}
