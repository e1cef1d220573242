package phoenixd_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/fakes/phoenixdfake"
	"github.com/l402kit/l402kit/phoenixd"
)

// TestPayOffer pays offers through /payoffer: a fixed one, the node's own
// default offer from /getoffer (any amount) with a payer note, and a
// disabled one, refused; a fee limit is refused before anything is sent.
func TestPayOffer(t *testing.T) {
	h := newHarness(t, phoenixdfake.Config{}, phoenixd.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fixed, err := h.node.CreateOffer(ctx, backend.OfferRequest{Amount: 21_000, Description: "coffee"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.client.PayOffer(ctx, fixed.Bolt12, backend.OfferPayOptions{})
	if err != nil {
		t.Fatalf("PayOffer: %v", err)
	}
	if !p.Preimage.Matches(p.PaymentHash) || p.Amount != 21_000 {
		t.Errorf("payment %+v", p)
	}
	invs, err := h.node.OfferPayments(ctx, fixed.ID)
	if err != nil || len(invs) != 1 || invs[0].PaymentHash != p.PaymentHash {
		t.Errorf("the issuer's payments of the offer: %+v, %v", invs, err)
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.fake.URL()+"/getoffer", nil)
	req.SetBasicAuth("", password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	def := strings.TrimSpace(string(body))
	if p, err := h.client.PayOffer(ctx, def, backend.OfferPayOptions{PayOptions: backend.PayOptions{Amount: backend.Sat(7)}, PayerNote: "thanks"}); err != nil || p.Amount != backend.Sat(7) {
		t.Errorf("paying the default offer %q: %+v, %v", def, p, err)
	}
	if _, err := h.client.PayOffer(ctx, def, backend.OfferPayOptions{PayOptions: backend.PayOptions{Amount: 7500}}); !errors.Is(err, backend.ErrInvalid) {
		t.Errorf("an amount in part satoshis: %v, want ErrInvalid", err)
	}
	if _, err := h.client.PayOffer(ctx, fixed.Bolt12, backend.OfferPayOptions{PayOptions: backend.PayOptions{MaxFee: 1000}}); !errors.Is(err, backend.ErrUnsupported) {
		t.Errorf("a fee limit: %v, want ErrUnsupported", err)
	}
	if err := h.node.DisableOffer(ctx, fixed.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.PayOffer(ctx, fixed.Bolt12, backend.OfferPayOptions{}); !errors.Is(err, backend.ErrPaymentFailed) {
		t.Errorf("paying a disabled offer: %v, want ErrPaymentFailed", err)
	}
}
