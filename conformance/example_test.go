package conformance_test

import (
	"context"
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
		b, err := memory.New(context.Background(), memory.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		conformance.Run(t, conformance.NewHarness(b, b, conformance.Support{
			ZeroAmount: true, CallerPreimage: true, DescriptionHash: true, HashedDescription: true,
		}))
	}
	_ = TestMyBackend
}

// The example's own harness, run for real, so the example cannot rot.
func TestNewHarness(t *testing.T) {
	b, err := memory.New(context.Background(), memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	conformance.Run(t, conformance.NewHarness(b, b, conformance.Support{
		ZeroAmount: true, CallerPreimage: true, DescriptionHash: true, HashedDescription: true,
	}))
}
