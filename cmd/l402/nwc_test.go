package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/testenv/nostrrelay"
)

// TestNWCServe runs "l402 nwc serve" on a memory backend and a loopback
// relay, reads the URI it prints and uses it as a backend: an invoice made
// through NWC is paid through NWC.
func TestNWCServe(t *testing.T) {
	relay, err := nostrrelay.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"nwc", "serve", "--backend", "memory://", "--relay", relay.URL(), "--max-payment", "50"}, w, io.Discard)
		w.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("no URI printed: %v", err)
	}
	go io.Copy(io.Discard, out)
	uri := strings.TrimSpace(line)
	if !strings.HasPrefix(uri, "nostr+walletconnect://") {
		t.Fatalf("printed %q", uri)
	}
	b, err := backend.Open(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	inv, err := b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(21), Memo: "nwc serve"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{}); err != nil {
		t.Fatalf("pay through the served wallet: %v", err)
	}
	big, err := b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(51)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PayInvoice(ctx, big.PaymentRequest, backend.PayOptions{}); backend.Kind(err) != backend.ErrPaymentFailed {
		t.Errorf("a payment over --max-payment: %v, want ErrPaymentFailed", err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit status %d", code)
	}
}

func TestNWCServeUsage(t *testing.T) {
	var errOut strings.Builder
	if code := run(context.Background(), []string{"nwc", "serve", "--backend", "memory://"}, io.Discard, &errOut); code != 2 {
		t.Errorf("without --relay: status %d, want 2", code)
	}
	if code := run(context.Background(), []string{"nwc"}, io.Discard, &errOut); code != 2 {
		t.Errorf("without serve: status %d, want 2", code)
	}
}
