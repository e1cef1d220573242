package lnurl_test

import (
	"context"
	"testing"

	"github.com/l402kit/l402kit/backend"
)

// BenchmarkCreateInvoice compares an invoice through the LNURL client and
// server on loopback with the same memory node called directly: the cost
// LNURL-pay adds is one HTTP round trip and two BOLT11 decodes.
func BenchmarkCreateInvoice(b *testing.B) {
	ctx := context.Background()
	req := backend.InvoiceRequest{Amount: backend.Sat(21)}
	b.Run("memory", func(b *testing.B) {
		node := newMemoryNodeTB(b)
		h := [32]byte{1}
		r := req
		r.DescriptionHash = &h
		for b.Loop() {
			if _, err := backend.New(node, backend.Options{}).CreateInvoice(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("lnurl", func(b *testing.B) {
		node := newMemoryNodeTB(b)
		c := newLNURLHarness(b, node, node, 0).client
		for b.Loop() {
			if _, err := c.CreateInvoice(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
