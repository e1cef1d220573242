package phoenixd_test

import (
	"context"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/fakes/phoenixdfake"
	"github.com/l402kit/l402kit/phoenixd"
)

// Round trips through the adapter and the fake over 127.0.0.1: the
// adapter's own cost (HTTP, JSON, BOLT11 decoding) plus the fake's. A real
// phoenixd adds its own time on top.

func BenchmarkCreateInvoice(b *testing.B) {
	h := newBenchHarness(b)
	ctx := context.Background()
	req := backend.InvoiceRequest{Amount: backend.Sat(100), Memo: "bench"}
	for b.Loop() {
		if _, err := h.client.CreateInvoice(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookupInvoice(b *testing.B) {
	h := newBenchHarness(b)
	ctx := context.Background()
	inv, err := h.client.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(100), Memo: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := h.client.LookupInvoice(ctx, inv.PaymentHash); err != nil {
			b.Fatal(err)
		}
	}
}

func newBenchHarness(b *testing.B) *harness {
	b.Helper()
	return newHarness(b, phoenixdfake.Config{}, phoenixd.Config{})
}
