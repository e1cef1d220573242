package phoenixd

import (
	"context"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/fakes/phoenixdfake"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
)

func newFakeClient(t *testing.T, poll time.Duration) (*memnode.Node, *phoenixdfake.Server, *testClient) {
	t.Helper()
	node, err := memnode.New(memnode.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	fake, err := phoenixdfake.New(node, phoenixdfake.Config{Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	d, err := newDriver(Config{URL: fake.URL(), Password: "pw", PollInterval: poll})
	if err != nil {
		t.Fatal(err)
	}
	c := &testClient{Backend: backend.New(d, backend.Options{}), hub: d.hub}
	t.Cleanup(func() { c.Close() })
	return node, fake, c
}

// testClient is the Backend with its driver's event hub in reach.
type testClient struct {
	*backend.Backend
	hub interface {
		Connected() bool
		Running() bool
	}
}

// waitConnected waits until the client's websocket is up, with a deadline.
func waitConnected(t *testing.T, c *testClient, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.hub.Connected() != want {
		if time.Now().After(deadline) {
			t.Fatalf("websocket connected=%t after 10s, want %t", !want, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type waitResult struct {
	inv *backend.Invoice
	err error
}

// TestWaitWakesOnWebsocketEvent: with polling set to an hour, a waiter can
// only learn of the payment from the websocket's payment_received event.
func TestWaitWakesOnWebsocketEvent(t *testing.T) {
	node, _, c := newFakeClient(t, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	inv, err := c.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(9), Memo: "ws"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan waitResult, 1)
	go func() {
		got, err := c.WaitInvoice(ctx, inv.PaymentHash)
		done <- waitResult{got, err}
	}()
	waitConnected(t, c, true)
	// The waiter has looked up at least once since the socket came up
	// (setUp wakes it); give it that lookup before paying, so only an
	// event can wake it again.
	time.Sleep(100 * time.Millisecond)
	if _, err := node.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("WaitInvoice: %v (the websocket event did not wake it)", r.err)
	}
	if r.inv.State != backend.StateSettled {
		t.Fatalf("WaitInvoice gave %s", r.inv.State)
	}
}

// TestWaitPollsWhileSocketDown: the websocket drops and cannot come back
// while the API still answers; the waiter polls and sees the payment, then
// the hub redials by itself once websockets are accepted again.
func TestWaitPollsWhileSocketDown(t *testing.T) {
	node, fake, c := newFakeClient(t, 50*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	inv, err := c.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(9), Memo: "poll"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan waitResult, 1)
	go func() {
		got, err := c.WaitInvoice(ctx, inv.PaymentHash)
		done <- waitResult{got, err}
	}()
	waitConnected(t, c, true)
	fake.SetWebsocketAvailable(false)
	waitConnected(t, c, false)
	// Paid with no socket to carry the event: only a lookup can see it.
	if _, err := node.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.inv.State != backend.StateSettled {
		t.Fatalf("WaitInvoice with the websocket down: %v %v", r.inv, r.err)
	}

	// A new waiter once websockets are back gets a socket again.
	fake.SetWebsocketAvailable(true)
	inv2, err := c.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(9), Memo: "poll 2"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		got, err := c.WaitInvoice(ctx, inv2.PaymentHash)
		done <- waitResult{got, err}
	}()
	waitConnected(t, c, true)
	if _, err := node.PayInvoice(ctx, inv2.PaymentRequest, backend.PayOptions{}); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || r.inv.State != backend.StateSettled {
		t.Fatalf("WaitInvoice after websockets came back: %v %v", r.inv, r.err)
	}
}

// TestHubStopsWithoutWaiters: the websocket is held only while someone
// waits.
func TestHubStopsWithoutWaiters(t *testing.T) {
	_, _, c := newFakeClient(t, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	inv, err := c.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(1), Memo: "idle"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.WaitInvoice(ctx, inv.PaymentHash)
		done <- err
	}()
	waitConnected(t, c, true)
	cancel()
	<-done
	if c.hub.Connected() {
		t.Fatal("websocket still marked up after the last waiter left")
	}
	if c.hub.Running() {
		t.Fatal("websocket loop still running after the last waiter left")
	}
}

// TestCloseEndsWaits: Close ends waits in progress with ErrUnavailable.
func TestCloseEndsWaits(t *testing.T) {
	_, _, c := newFakeClient(t, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inv, err := c.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(1), Memo: "close"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.WaitInvoice(ctx, inv.PaymentHash)
		done <- err
	}()
	waitConnected(t, c, true)
	c.Close()
	if err := <-done; err == nil || ctx.Err() != nil {
		t.Fatalf("WaitInvoice after Close: %v (ctx %v), want ErrUnavailable before the context ends", err, ctx.Err())
	}
}
