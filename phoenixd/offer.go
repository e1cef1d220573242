package phoenixd

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt12"
)

// phoenixd pays offers (POST /payoffer: offer, amountSat, message; read
// from ACINQ/phoenixd 402c2eac, v0.8.0-1, Api.kt) and answers one offer of
// its own (GET /getoffer, the node's single default offer, any amount) but
// cannot list or disable offers, so it is an OfferPayer and no Offerer.

var _ backend.OfferPayer = (*driver)(nil)

// PayOffer implements backend.OfferPayer through POST /payoffer, which
// fetches the invoice (within 30 s) and pays it, answering as /payinvoice
// does (PaymentSent, or PaymentFailed with HTTP 200, also for an invoice
// that never came). amountSat is the whole amount in satoshis (phoenixd's
// unit): a fixed offer's own amount is not sent, an any-amount offer's must
// be whole satoshis. The payer note goes as message.
func (c *driver) PayOffer(ctx context.Context, offer string, opts backend.OfferPayOptions) (*backend.Payment, error) {
	form := url.Values{"offer": {offer}}
	if opts.Amount > 0 {
		sat, err := wholeSats(opts.Amount)
		if err != nil {
			return nil, err
		}
		form.Set("amountSat", strconv.FormatInt(sat, 10))
	}
	if opts.PayerNote != "" {
		form.Set("message", opts.PayerNote)
	}
	var out paymentResult
	if err := c.call(ctx, http.MethodPost, "/payoffer", form, &out); err != nil {
		return nil, err
	}
	pay, err := out.payment()
	if err != nil {
		return nil, err
	}
	hash, err := backend.ParsePaymentHash(out.PaymentHash)
	if err != nil {
		return nil, fmt.Errorf("phoenixd: %w: payment answered a bad payment hash: %v", backend.ErrPaymentUnknown, err)
	}
	pay.PaymentHash = hash
	if d, err := bolt12.DecodeOffer(offer); err == nil && d.Amount != 0 && opts.Amount == 0 && uint64(pay.Amount) != d.Amount {
		// phoenixd reports whole satoshis; keep the offer's exact amount.
		pay.Amount = backend.MilliSat(d.Amount)
	}
	return pay, nil
}
