package memory_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/memory"
)

func TestOpenNamedNodesAreShared(t *testing.T) {
	ctx := context.Background()
	a, err := backend.Open(ctx, "memory://shop")
	if err != nil {
		t.Fatal(err)
	}
	b, err := backend.Open(ctx, "memory://shop")
	if err != nil {
		t.Fatal(err)
	}
	other, err := backend.Open(ctx, "memory://")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	inv, err := a.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(10), Memo: "shared"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.LookupInvoice(ctx, inv.PaymentHash); err != nil {
		t.Fatalf("second handle to memory://shop cannot see the first's invoice: %v", err)
	}
	if _, err := other.LookupInvoice(ctx, inv.PaymentHash); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("memory:// shares state with memory://shop: %v", err)
	}
	if got := backend.Abilities(a); len(got) != 8 {
		t.Fatalf("a named handle hides abilities: %v", got)
	}
	a.Close()
	if _, err := b.LookupInvoice(ctx, inv.PaymentHash); err != nil {
		t.Fatalf("closing one handle closed the shared node: %v", err)
	}
	b.Close()
	c, err := backend.Open(ctx, "memory://shop")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.LookupInvoice(ctx, inv.PaymentHash); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("a node reopened after its last handle closed kept old invoices: %v", err)
	}
}

func TestOpenRejectsPath(t *testing.T) {
	if _, err := backend.Open(context.Background(), "memory://x/y"); !errors.Is(err, backend.ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
}

func TestPayRefusesForeignInvoice(t *testing.T) {
	ctx := context.Background()
	a, b := backend.New(newNode(t), backend.Options{}), backend.New(newNode(t), backend.Options{})
	inv, err := a.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(5)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{}); !errors.Is(err, backend.ErrPaymentFailed) {
		t.Fatalf("paying another node's invoice: %v, want ErrPaymentFailed", err)
	}
	if _, err := a.PayInvoice(ctx, "lnbcrt1garbage", backend.PayOptions{}); !errors.Is(err, backend.ErrInvalid) {
		t.Fatalf("paying garbage: %v, want ErrInvalid", err)
	}
}

func TestHeldPaymentCanceledAtExpiry(t *testing.T) {
	ctx := context.Background()
	n := newNode(t)
	b := backend.New(n, backend.Options{})
	pre, _ := backend.NewPreimage()
	inv, err := b.CreateHoldInvoice(ctx, pre.Hash(), backend.InvoiceRequest{Amount: backend.Sat(5), Expiry: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{})
	if !errors.Is(err, backend.ErrPaymentFailed) {
		t.Fatalf("held payment past expiry: %v, want ErrPaymentFailed", err)
	}
	got, err := b.LookupInvoice(ctx, inv.PaymentHash)
	if err != nil || got.State != backend.StateCanceled {
		t.Fatalf("after expiry the held invoice is %v (%v), want canceled", got, err)
	}
}

func TestDownEndsWaits(t *testing.T) {
	ctx := context.Background()
	n := newNode(t)
	b := backend.New(n, backend.Options{})
	inv, err := b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(5)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.WaitInvoice(ctx, inv.PaymentHash)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	n.SetAvailable(false)
	select {
	case err := <-done:
		if !errors.Is(err, backend.ErrUnavailable) {
			t.Fatalf("wait on a node going down: %v, want ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not end when the node went down")
	}
}

func TestDevPayEndpoint(t *testing.T) {
	ctx := context.Background()
	b := newMemory(t)
	n, _ := memory.AsNode(b)
	mux := http.NewServeMux()
	mux.Handle(memory.DevPayPath, memory.DevPayHandler(n))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	inv, err := b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(10), Memo: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL)
	payer, err := backend.Open(ctx, memory.DevScheme+"://"+u.Host)
	if err != nil {
		t.Fatal(err)
	}
	p, err := payer.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{})
	if err != nil {
		t.Fatalf("pay through dev endpoint: %v", err)
	}
	if !p.Preimage.Matches(inv.PaymentHash) || p.Amount != backend.Sat(10) {
		t.Fatalf("dev payment %+v does not match invoice %s", p, inv.PaymentHash)
	}
	if _, err := payer.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{}); !errors.Is(err, backend.ErrPaymentFailed) {
		t.Fatalf("second dev payment: %v, want ErrPaymentFailed", err)
	}
	resp, err := http.Post(srv.URL+memory.DevPayPath, "application/x-www-form-urlencoded", strings.NewReader("invoice=nonsense"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("garbage invoice answered %s, want 400", resp.Status)
	}
	req, _ := http.NewRequest(http.MethodPut, srv.URL+memory.DevPayPath, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("PUT answered %s, want 405", resp.Status)
	}
	// A payer that lost track of a payment asks what became of it.
	var finder interface {
		FindPayment(context.Context, backend.PaymentHash) (*backend.Payment, error)
	}
	if !payer.As(&finder) {
		t.Fatal("the dev payer cannot find payments")
	}
	found, err := finder.FindPayment(ctx, inv.PaymentHash)
	if err != nil || !found.Preimage.Matches(inv.PaymentHash) {
		t.Fatalf("FindPayment of the paid invoice: %+v %v", found, err)
	}
	open, err := b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := finder.FindPayment(ctx, open.PaymentHash); !errors.Is(err, backend.ErrPaymentUnknown) {
		t.Fatalf("FindPayment of an open invoice: %v, want ErrPaymentUnknown", err)
	}
	if _, err := finder.FindPayment(ctx, backend.PaymentHash{1}); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("FindPayment of an unknown hash: %v, want ErrNotFound", err)
	}
}

// An invoice pays however a wallet hands it over: with a "lightning:"
// scheme, surrounding whitespace or in upper case (bech32 ignores case).
func TestPayForgivesInvoiceSpelling(t *testing.T) {
	n, err := memory.New(t.Context(), memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, spell := range []func(string) string{
		func(s string) string { return "lightning:" + s },
		func(s string) string { return " \n" + s + "\t" },
		strings.ToUpper,
	} {
		inv, err := n.CreateInvoice(t.Context(), backend.InvoiceRequest{Amount: 1000, Memo: "spelling"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.PayInvoice(t.Context(), spell(inv.PaymentRequest), backend.PayOptions{}); err != nil {
			t.Errorf("PayInvoice(%.20q): %v", spell(inv.PaymentRequest), err)
		}
	}
}

// A flood of invoices nobody pays is forgotten once they are past expiry
// by KeepExpired; paid ones stay.
func TestExpiredInvoicesForgotten(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	n, err := memnode.New(memnode.Config{Now: func() time.Time { return now }, KeepExpired: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	var paid, canceled backend.PaymentHash
	for i := range 100 {
		inv, err := n.CreateInvoice(ctx, backend.InvoiceRequest{Amount: 1000, Expiry: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0:
			if _, err := n.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{}); err != nil {
				t.Fatal(err)
			}
			paid = inv.PaymentHash
		case 1:
			if err := n.CancelInvoice(ctx, inv.PaymentHash); err != nil {
				t.Fatal(err)
			}
			canceled = inv.PaymentHash
		}
	}
	now = now.Add(2*time.Minute + time.Second) // expired a minute and a second ago
	if _, err := n.CreateInvoice(ctx, backend.InvoiceRequest{Amount: 1000, Expiry: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if got := n.Len(); got != 2 {
		t.Fatalf("%d invoices left, want the paid one and the new one", got)
	}
	if _, err := n.LookupInvoice(ctx, paid); err != nil {
		t.Fatalf("paid invoice: %v", err)
	}
	if _, err := n.LookupInvoice(ctx, canceled); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("canceled invoice past expiry and keep: %v, want ErrNotFound", err)
	}
}
