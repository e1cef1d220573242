package l402

import (
	"context"
	"net/http"

	"github.com/l402kit/l402kit/backend"
)

// Receipt records one payment the Transport made.
type Receipt struct {
	// Origin is the server paid ("https://host:port").
	Origin string
	// URL is the request that was answered with the challenge.
	URL string
	// Scheme is the challenge's scheme, "L402", "LSAT" or "Payment".
	Scheme      string
	PaymentHash backend.PaymentHash
	// Amount is what the payee received; Fee is the routing fee on top.
	Amount backend.MilliSat
	Fee    backend.MilliSat
	// Preimage is the payment's proof (for an L402 token, also its
	// secret half).
	Preimage backend.Preimage
}

type receiptKey struct{}

// ReceiptFromResponse returns the payment made to obtain resp, when the
// Transport paid for it. A response that reused a cached token has none.
// After a redirect that followed the paid request, and for a response served
// while its payment was in flight (single-use routes on hold invoices, which
// complete when the body is closed), the payment is only reported to
// Transport.OnPayment.
func ReceiptFromResponse(resp *http.Response) (*Receipt, bool) {
	if resp == nil || resp.Request == nil {
		return nil, false
	}
	r, ok := resp.Request.Context().Value(receiptKey{}).(*Receipt)
	return r, ok
}

func (t *Transport) report(ctx context.Context, r *Receipt) {
	t.log.InfoContext(ctx, "l402: paid", "origin", r.Origin, "amount_msat", int64(r.Amount),
		"fee_msat", int64(r.Fee), "payment_hash", r.PaymentHash.String())
	if t.OnPayment != nil {
		t.OnPayment(ctx, *r)
	}
}
