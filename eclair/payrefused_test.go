package eclair

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt11"
	"github.com/l402kit/l402kit/internal/fakes/eclairfake"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
)

// TestPayRefusedBeforeRecording pays an invoice that requires a feature the
// node has disabled (option_payment_metadata, bits 48/49): Eclair's
// PaymentInitiator answers the id and then refuses without recording
// anything, so getsentinfo answers [] for good. The adapter must fail at
// once, not wait out the timeout and call it unknown.
func TestPayRefusedBeforeRecording(t *testing.T) {
	node, err := memnode.New(memnode.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	fake, err := eclairfake.New(eclairfake.Config{Node: node, Password: password, DisabledFeatures: []int{49}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	_, b, err := newTestBackend(Config{URL: fake.URL(), Password: password, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })

	key, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	inv := &bolt11.Invoice{Network: "regtest", Amount: 5000, Timestamp: time.Now(), Description: "needs metadata",
		Expiry: time.Hour, MinFinalCLTV: 18, Features: []int{8, 14, 48}, Metadata: []byte{1, 2}}
	if _, err := rand.Read(inv.PaymentHash[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := rand.Read(inv.PaymentSecret[:]); err != nil {
		t.Fatal(err)
	}
	s, err := bolt11.Encode(inv, key)
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 20 * time.Second
	start := time.Now()
	_, err = b.PayInvoice(context.Background(), s, backend.PayOptions{Timeout: timeout})
	took := time.Since(start)
	if !errors.Is(err, backend.ErrPaymentFailed) {
		t.Fatalf("PayInvoice of an invoice the node refuses: %v, want ErrPaymentFailed", err)
	}
	if took >= timeout {
		t.Errorf("the refusal took %s, the whole PayOptions.Timeout", took)
	}

	// An invoice without the feature is paid as usual.
	ok, err := b.CreateInvoice(ctxT(t, 10*time.Second), backend.InvoiceRequest{Amount: 3000, Memo: "plain", Expiry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PayInvoice(ctxT(t, 20*time.Second), ok.PaymentRequest, backend.PayOptions{}); err != nil {
		t.Errorf("a plain invoice on the same node: %v", err)
	}
}

// TestPayHonoursTimeout pays a hold invoice that stays held: the payment is
// in flight when PayOptions.Timeout passes, and the adapter says so then
// (ErrPaymentUnknown), not when the Backend's grace period ends.
func TestPayHonoursTimeout(t *testing.T) {
	e := newEnv(t, 50*time.Millisecond)
	pre, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	held, err := e.node.CreateHoldInvoice(ctxT(t, 10*time.Second), pre.Hash(), backend.InvoiceRequest{Amount: 4000, Memo: "held", Expiry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.node.CancelInvoice(context.Background(), held.PaymentHash) })
	_, err = e.b.PayInvoice(context.Background(), held.PaymentRequest, backend.PayOptions{Timeout: time.Second})
	if !errors.Is(err, backend.ErrPaymentUnknown) {
		t.Fatalf("payment still held at its timeout: %v, want ErrPaymentUnknown", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the adapter waited for the Backend's deadline instead of PayOptions.Timeout: %v", err)
	}
}
