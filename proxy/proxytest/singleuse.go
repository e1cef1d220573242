package proxytest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

// useOnce spends a single-use token on path and returns its preimage. On a
// hold-invoice backend the client presents the macaroon alone while its
// payment is held, and gets the preimage once the proxy settles; elsewhere
// it pays first and presents the preimage.
func (f *flow) useOnce(t *testing.T, path string, wantStatus int) (*macaroon.Macaroon, backend.Preimage, error) {
	t.Helper()
	ch := f.challenge(t, path, nil)
	if !f.hold {
		pre := f.pay(t, ch.Invoice)
		resp, body := f.get(t, path, auth(t, ch.Macaroon, pre))
		if resp.StatusCode != wantStatus {
			t.Fatalf("single-use GET %s: %s %s, want %d", path, resp.Status, body, wantStatus)
		}
		return ch.Macaroon, pre, nil
	}
	res := make(chan payResult, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*callTimeout)
	defer cancel()
	go func() {
		p, err := f.payer.PayInvoice(ctx, ch.Invoice, backend.PayOptions{Timeout: 2 * callTimeout})
		res <- payResult{p, err}
	}()
	pending := map[string]string{"Authorization": l402.PendingAuthorization(ch.Macaroon)}
	deadline := time.Now().Add(callTimeout)
	for {
		resp, body := f.get(t, path, pending)
		if resp.StatusCode == wantStatus {
			break
		}
		if resp.StatusCode != http.StatusPaymentRequired || !strings.Contains(body, "payment_pending") || time.Now().After(deadline) {
			t.Fatalf("single-use GET %s while paying: %s %s, want %d", path, resp.Status, body, wantStatus)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := <-res
	if r.err != nil {
		return ch.Macaroon, backend.Preimage{}, r.err
	}
	return ch.Macaroon, r.p.Preimage, nil
}

func flowSingleUse(t *testing.T, f *flow) {
	mac, pre, err := f.useOnce(t, "/once/x", http.StatusOK)
	if err != nil {
		t.Fatalf("payment for a served single-use token failed: %v", err)
	}
	if up := f.lastUpstream(); up.path != "/once/x" || up.paid != "true" {
		t.Errorf("upstream saw %+v", up)
	}
	f.refused(t, "/once/x", auth(t, mac, pre), "used")
	if f.hold {
		f.refused(t, "/once/x", map[string]string{"Authorization": l402.PendingAuthorization(mac)}, "used")
	}
}

func flowSingleUseFailure(t *testing.T, f *flow) {
	mac, pre, err := f.useOnce(t, "/flaky/x", http.StatusInternalServerError)
	if f.hold {
		// The proxy canceled the held invoice: the payment went back.
		if !errors.Is(err, backend.ErrPaymentFailed) {
			t.Fatalf("payment for a token whose request failed upstream: %v, want it returned (ErrPaymentFailed)", err)
		}
		id, _ := l402.DecodeIdentifier(mac.Id())
		inv, lerr := f.h.Backend().LookupInvoice(callCtx(t), id.PaymentHash)
		if lerr != nil || inv.State != backend.StateCanceled {
			t.Fatalf("invoice after upstream failure: %v %v, want canceled", inv, lerr)
		}
		return
	}
	// Without hold invoices the spent mark is released: the token works
	// again (and meets the same failing upstream).
	resp, body := f.get(t, "/flaky/x", auth(t, mac, pre))
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("retry of a single-use token after upstream failure: %s %s, want the upstream's 500 again", resp.Status, body)
	}
}
