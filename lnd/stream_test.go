package lnd

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/lndrest"
	"github.com/l402kit/l402kit/memory"
)

func stubBackend(t *testing.T) (*stubLND, *backend.Backend) {
	t.Helper()
	cert, certPEM := localhostCert(t)
	stub := newStub()
	srv := serve(t, "127.0.0.1:0", cert, stub)
	t.Cleanup(func() { stop(srv) })
	b, err := New(context.Background(), Config{Address: srv.Listener.Addr().String(), TLSCert: string(certPEM), Macaroon: testMacHex})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return stub, b
}

func openInvoice(stub *stubLND, h backend.PaymentHash) {
	stub.put(h, lndrest.Invoice{State: lndrest.InvoiceOpen, ValueMsat: 1000, CreationDate: time.Now().Unix(), Expiry: 3600})
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWaitFollowsStream(t *testing.T) {
	stub, b := stubBackend(t)
	h := backend.PaymentHash{7, 7}
	openInvoice(stub, h)
	done := make(chan error, 1)
	var got *backend.Invoice
	go func() {
		var err error
		got, err = b.WaitInvoice(context.Background(), h)
		done <- err
	}()
	waitFor(t, "the subscription", func() bool { return stub.subscriptions.Load() == 1 })
	pre := backend.Preimage{9}
	stub.put(pre.Hash(), lndrest.Invoice{}) // another invoice changing wakes nothing here
	stub.put(h, lndrest.Invoice{State: lndrest.InvoiceSettled, ValueMsat: 1000, AmtPaidMsat: 1000, CreationDate: time.Now().Unix(), SettleDate: time.Now().Unix(), Expiry: 3600})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got.State != backend.StateSettled || got.AmountReceived != 1000 || got.PaymentHash != h {
		t.Fatalf("WaitInvoice = %+v", got)
	}
	waitFor(t, "the subscription to end at the node", func() bool { return stub.subscriptions.Load() == 0 })
}

func TestWaitUnknownAndCancel(t *testing.T) {
	stub, b := stubBackend(t)
	if _, err := b.WaitInvoice(context.Background(), backend.PaymentHash{1}); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("WaitInvoice unknown = %v, want ErrNotFound", err)
	}
	waitFor(t, "the subscription to end at the node", func() bool { return stub.subscriptions.Load() == 0 })

	h := backend.PaymentHash{2}
	openInvoice(stub, h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := b.WaitInvoice(ctx, h); done <- err }()
	waitFor(t, "the subscription", func() bool { return stub.subscriptions.Load() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitInvoice after cancel = %v, want context.Canceled", err)
	}
	waitFor(t, "the subscription to end at the node", func() bool { return stub.subscriptions.Load() == 0 })
}

// Close ends waits in progress, returns only once their goroutines are
// gone, and the node sees the subscriptions end.
func TestCloseEndsStreams(t *testing.T) {
	stub, b := stubBackend(t)
	h := backend.PaymentHash{3}
	openInvoice(stub, h)
	done := make(chan error, 2)
	for range 2 {
		go func() { _, err := b.WaitInvoice(context.Background(), h); done <- err }()
	}
	waitFor(t, "two subscriptions", func() bool { return stub.subscriptions.Load() == 2 })
	b.Close()
	for range 2 {
		if err := <-done; !errors.Is(err, backend.ErrClosed) {
			t.Fatalf("WaitInvoice across Close = %v, want ErrClosed", err)
		}
	}
	waitFor(t, "the subscriptions to end at the node", func() bool { return stub.subscriptions.Load() == 0 })
}

// A node that goes away mid-wait ends the wait with ErrUnavailable.
func TestWaitNodeGone(t *testing.T) {
	cert, certPEM := localhostCert(t)
	stub := newStub()
	srv := serve(t, "127.0.0.1:0", cert, stub)
	b, err := New(context.Background(), Config{Address: srv.Listener.Addr().String(), TLSCert: string(certPEM), Macaroon: testMacHex})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h := backend.PaymentHash{4}
	openInvoice(stub, h)
	done := make(chan error, 1)
	go func() { _, err := b.WaitInvoice(context.Background(), h); done <- err }()
	waitFor(t, "the subscription", func() bool { return stub.subscriptions.Load() == 1 })
	stop(srv)
	if err := <-done; !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("WaitInvoice when the node went away = %v, want ErrUnavailable", err)
	}
}

func TestPay(t *testing.T) {
	stub, b := stubBackend(t)
	mem, err := memory.New(context.Background(), memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	pre := backend.Preimage{5}
	inv, err := mem.CreateInvoice(context.Background(), backend.InvoiceRequest{Amount: backend.Sat(5), Memo: "stub pay", Preimage: &pre})
	if err != nil {
		t.Fatal(err)
	}
	var sent lndrest.SendPaymentRequest
	cases := []struct {
		name   string
		status int
		body   any
		want   error
	}{
		{"succeeded", 200, map[string]any{"result": map[string]any{"status": "SUCCEEDED", "payment_preimage": pre.String(), "value_msat": "5000", "fee_msat": "12"}}, nil},
		{"failed", 200, map[string]any{"result": map[string]any{"status": "FAILED", "failure_reason": "FAILURE_REASON_NO_ROUTE"}}, backend.ErrPaymentFailed},
		{"already paid", 409, gatewayError(6, "invoice is already paid"), backend.ErrPaymentFailed},
		// An error after the stream began: the payment may be in flight.
		{"error in stream", 200, map[string]any{"error": gatewayError(2, "something broke")}, backend.ErrPaymentUnknown},
		{"success without the preimage", 200, map[string]any{"result": map[string]any{"status": "SUCCEEDED", "payment_preimage": backend.Preimage{6}.String()}}, backend.ErrPaymentUnknown},
		{"starting", 500, gatewayError(2, "server is still in the process of starting"), backend.ErrUnavailable},
		{"bad macaroon", 500, gatewayError(2, "verification failed: signature mismatch after caveat verification"), backend.ErrInvalid},
		{"no router", 404, gatewayError(5, "Not Found"), backend.ErrUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stub.payment = func(req lndrest.SendPaymentRequest) (int, any) {
				sent = req
				return c.status, c.body
			}
			p, err := b.PayInvoice(context.Background(), inv.PaymentRequest, backend.PayOptions{MaxFee: 20_000, Timeout: 7 * time.Second})
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if p.Preimage != pre || p.Amount != 5000 || p.Fee != 12 || p.PaymentHash != inv.PaymentHash {
					t.Fatalf("Payment = %+v", p)
				}
			} else if !errors.Is(err, c.want) {
				t.Fatalf("PayInvoice = %v, want %v", err, c.want)
			}
			if sent.PaymentRequest != inv.PaymentRequest || sent.FeeLimitMsat != 20_000 || sent.TimeoutSeconds != 7 || sent.AmtMsat != 0 {
				t.Fatalf("node received %+v", sent)
			}
		})
	}
}

// The http.Client As hands out authenticates like the adapter.
func TestAsHTTPClient(t *testing.T) {
	stub, b := stubBackend(t)
	var hc *http.Client
	var base url.URL
	if !b.As(&hc) || !b.As(&base) {
		t.Fatal("As failed")
	}
	stub.sawMacaroon.Store("")
	resp, err := hc.Get(base.JoinPath("/v1/getinfo").String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || stub.sawMacaroon.Load() != testMacHex {
		t.Fatalf("status %d, macaroon %v", resp.StatusCode, stub.sawMacaroon.Load())
	}
}
