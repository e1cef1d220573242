package eclair

import (
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// Round trips through the adapter and the fake over loopback HTTP: the
// adapter's own cost plus the fake's, not a real Eclair's.

func BenchmarkCreateInvoiceFake(b *testing.B) {
	e := newEnv(b, time.Hour)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: 1000, Memo: "bench", Expiry: time.Minute}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookupInvoiceFake(b *testing.B) {
	e := newEnv(b, time.Hour)
	ctx := b.Context()
	inv, err := e.b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: 1000, Memo: "bench", Expiry: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.b.LookupInvoice(ctx, inv.PaymentHash); err != nil {
			b.Fatal(err)
		}
	}
}

// From the payer's success to WaitInvoice returning, through the websocket
// event and one lookup.
func BenchmarkWaitAfterPaymentFake(b *testing.B) {
	e := newEnv(b, time.Hour)
	ctx := b.Context()
	for b.Loop() {
		b.StopTimer()
		inv, err := e.b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: 1000, Memo: "bench", Expiry: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := e.b.WaitInvoice(ctx, inv.PaymentHash)
			done <- err
		}()
		for !e.d.events.Connected() {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(5 * time.Millisecond) // let the wait's first lookup finish
		if _, err := e.node.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}
