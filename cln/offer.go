package cln

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt12"
)

// offerMethods are the Core Lightning methods the offer abilities call
// (lightningd/offer.c, plugins/offers_offer.c and plugins/fetchinvoice.c,
// on by default since v24.11); all must be present, besides xpay or pay.
var offerMethods = []string{"offer", "listoffers", "disableoffer", "fetchinvoice"}

// Error codes of the offer methods (common/jsonrpc_errors.h).
const (
	codeOfferAlreadyDisabled = 1001
	codeOfferExpired         = 1002
	codeOfferRouteNotFound   = 1003
	codeOfferBadInvreqReply  = 1004
	codeOfferTimeout         = 1005
)

// offers gives a driver the offer abilities: backend.Offerer and
// backend.OfferPayer.
type offers struct{ d *driver }

// offerDriver and holdOfferDriver are the drivers of nodes with offers,
// without and with the hold plugin, so that every ability is a type's own.
type offerDriver struct {
	*driver
	offers
}

type holdOfferDriver struct {
	*holdDriver
	offers
}

var (
	_ backend.Offerer      = (*offerDriver)(nil)
	_ backend.OfferPayer   = (*offerDriver)(nil)
	_ backend.HoldInvoicer = (*holdOfferDriver)(nil)
	_ backend.Offerer      = (*holdOfferDriver)(nil)
)

// hasOffers asks help for each offer method.
func (b *driver) hasOffers(ctx context.Context) (bool, error) {
	if b.payMethod == "" {
		return false, nil
	}
	for _, m := range offerMethods {
		var h helpResult
		err := b.call(ctx, "help", map[string]string{"command": m}, &h)
		if errors.Is(err, backend.ErrUnsupported) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// offerParams is the request of offer.
type offerParams struct {
	Amount         string `json:"amount"` // "any" or "<n>msat"
	Description    string `json:"description,omitempty"`
	Issuer         string `json:"issuer,omitempty"`
	AbsoluteExpiry int64  `json:"absolute_expiry,omitempty"`
}

// offerEntry is an offer as offer, listoffers and disableoffer report it.
type offerEntry struct {
	OfferID string `json:"offer_id"`
	Active  bool   `json:"active"`
	Bolt12  string `json:"bolt12"`
	Used    bool   `json:"used"`
}

func portableOffer(e *offerEntry) (*backend.Offer, error) {
	d, err := bolt12.DecodeOffer(e.Bolt12)
	if err != nil {
		return nil, fmt.Errorf("%w: offer %s: %w", backend.ErrInvalid, e.OfferID, err)
	}
	return &backend.Offer{
		ID: e.OfferID, Bolt12: e.Bolt12, Amount: backend.MilliSat(d.Amount), Description: d.Description,
		Issuer: d.Issuer, ExpiresAt: d.AbsoluteExpiry, Active: e.Active,
	}, nil
}

// CreateOffer implements backend.Offerer with offer.
func (o offers) CreateOffer(ctx context.Context, req backend.OfferRequest) (*backend.Offer, error) {
	p := offerParams{Amount: "any", Description: req.Description, Issuer: req.Issuer}
	if req.Amount > 0 {
		p.Amount = strconv.FormatInt(int64(req.Amount), 10) + "msat"
	}
	if req.Expiry > 0 {
		p.AbsoluteExpiry = time.Now().Add(req.Expiry).Unix()
	}
	var res offerEntry
	if err := o.d.call(ctx, "offer", p, &res); err != nil {
		return nil, err
	}
	off, err := portableOffer(&res)
	if err != nil {
		return nil, fmt.Errorf("cln: offer: %w", err)
	}
	if !off.Active {
		// offer answers an existing offer with the same fields; a
		// disabled one (code 1000) is refused, an active one returned.
		return nil, fmt.Errorf("cln: offer: %w: offer %s exists and is not active", backend.ErrAlreadyExists, off.ID)
	}
	return off, nil
}

// ListOffers implements backend.Offerer with listoffers.
func (o offers) ListOffers(ctx context.Context) ([]*backend.Offer, error) {
	var res struct {
		Offers []offerEntry `json:"offers"`
	}
	if err := o.d.call(ctx, "listoffers", struct{}{}, &res); err != nil {
		return nil, err
	}
	out := make([]*backend.Offer, 0, len(res.Offers))
	for i := range res.Offers {
		off, err := portableOffer(&res.Offers[i])
		if err != nil {
			return nil, fmt.Errorf("cln: listoffers: %w", err)
		}
		out = append(out, off)
	}
	return out, nil
}

// DisableOffer implements backend.Offerer with disableoffer: "Unknown
// offer" (-1) is ErrNotFound, an offer already disabled (1001) no error.
func (o offers) DisableOffer(ctx context.Context, id string) error {
	err := o.d.call(ctx, "disableoffer", map[string]string{"offer_id": id}, nil)
	var rerr *RPCError
	switch {
	case errors.As(err, &rerr) && rerr.Code == codeOfferAlreadyDisabled:
		return nil
	case errors.As(err, &rerr) && rerr.Code == codeLightningd && rerr.Message == "Unknown offer":
		return fmt.Errorf("cln: disableoffer: %w: %w", backend.ErrNotFound, rerr)
	}
	return err
}

// OfferPayments implements backend.Offerer with listinvoices by offer_id:
// the paid ones.
func (o offers) OfferPayments(ctx context.Context, id string) ([]*backend.Invoice, error) {
	var res listInvoicesResult
	if err := o.d.call(ctx, "listinvoices", map[string]string{"offer_id": id}, &res); err != nil {
		return nil, err
	}
	var out []*backend.Invoice
	for i := range res.Invoices {
		f := &res.Invoices[i]
		if f.Status != "paid" {
			continue
		}
		inv, err := fromBolt12Fields(f)
		if err != nil {
			return nil, fmt.Errorf("cln: listinvoices: %w", err)
		}
		out = append(out, inv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SettledAt.Before(out[j].SettledAt) })
	return out, nil
}

// fromBolt12Fields converts an invoice made for an offer as listinvoices
// and waitinvoice report it; as for BOLT11, "expired" reads as StateOpen.
func fromBolt12Fields(f *invoiceFields) (*backend.Invoice, error) {
	d, err := bolt12.DecodeInvoice(f.Bolt12)
	if err != nil {
		return nil, fmt.Errorf("%w: invoice %q: %w", backend.ErrInvalid, f.Label, err)
	}
	hash, err := backend.ParsePaymentHash(f.PaymentHash)
	if err != nil {
		return nil, err
	}
	if hash != d.PaymentHash {
		return nil, fmt.Errorf("%w: invoice %q: payment_hash differs from its bolt12's", backend.ErrInvalid, f.Label)
	}
	inv := &backend.Invoice{
		PaymentHash: hash, PaymentRequest: f.Bolt12, Amount: backend.MilliSat(d.Amount), Memo: d.Description,
		CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt(),
	}
	switch f.Status {
	case "paid":
		pre, err := backend.ParsePreimage(f.PaymentPreimage)
		if err != nil {
			return nil, fmt.Errorf("paid invoice %s: %w", hash, err)
		}
		inv.State, inv.Preimage, inv.SettledAt = backend.StateSettled, &pre, time.Unix(f.PaidAt, 0)
		if f.AmountReceivedMsat != nil {
			inv.AmountReceived = backend.MilliSat(*f.AmountReceivedMsat)
		}
	case "unpaid", "expired":
		inv.State = backend.StateOpen
	default:
		return nil, fmt.Errorf("%w: invoice %s has unknown status %q", backend.ErrInvalid, hash, f.Status)
	}
	return inv, nil
}

// fetchInvoiceParams is the request of fetchinvoice.
type fetchInvoiceParams struct {
	Offer      string `json:"offer"`
	AmountMsat int64  `json:"amount_msat,omitempty"`
	Timeout    int64  `json:"timeout,omitempty"`
	PayerNote  string `json:"payer_note,omitempty"`
}

// PayOffer implements backend.OfferPayer: fetchinvoice asks the offer's
// issuer for an invoice (within opts.Timeout), which must be for the
// amount asked, then xpay (or pay) pays it with what is left of
// opts.Timeout, under PayInvoice's outcome rules. fetchinvoice's own
// failures (1002 expired, 1003 no route, 1004 the issuer answered an
// error, such as a disabled offer, 1005 no answer in time) pay nothing:
// ErrPaymentFailed.
func (o offers) PayOffer(ctx context.Context, offer string, opts backend.OfferPayOptions) (*backend.Payment, error) {
	start := time.Now()
	secs := int64((opts.Timeout + time.Second - 1) / time.Second)
	var res struct {
		Invoice string `json:"invoice"`
	}
	err := o.d.call(ctx, "fetchinvoice", fetchInvoiceParams{Offer: offer, AmountMsat: int64(opts.Amount), Timeout: secs, PayerNote: opts.PayerNote}, &res)
	var rerr *RPCError
	switch {
	case errors.As(err, &rerr) && rerr.Code >= codeOfferExpired && rerr.Code <= codeOfferTimeout:
		return nil, fmt.Errorf("cln: fetchinvoice: %w: %w", backend.ErrPaymentFailed, rerr)
	case errors.As(err, &rerr) && rerr.Code == codeLightningd:
		return nil, fmt.Errorf("cln: fetchinvoice: %w: %w", backend.ErrPaymentFailed, rerr)
	case err != nil:
		if errors.Is(err, backend.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			// No invoice came back, so nothing can have been paid.
			return nil, fmt.Errorf("cln: fetchinvoice: %w: %w", backend.ErrPaymentFailed, err)
		}
		return nil, err
	}
	inv, err := bolt12.DecodeInvoice(res.Invoice)
	if err != nil {
		return nil, fmt.Errorf("cln: fetchinvoice: %w: the invoice does not decode: %w", backend.ErrPaymentFailed, err)
	}
	want := opts.Amount
	if want == 0 {
		d, err := bolt12.DecodeOffer(offer)
		if err != nil {
			return nil, fmt.Errorf("cln: %w: %w", backend.ErrInvalid, err)
		}
		want = backend.MilliSat(d.Amount)
	}
	if backend.MilliSat(inv.Amount) != want {
		return nil, fmt.Errorf("cln: fetchinvoice: %w: the invoice asks %d msat, not %s", backend.ErrPaymentFailed, inv.Amount, want)
	}
	hash := backend.PaymentHash(inv.PaymentHash)
	left := int64((opts.Timeout - time.Since(start) + time.Second - 1) / time.Second)
	if left < 1 {
		left = 1
	}
	switch o.d.payMethod {
	case "xpay":
		return o.d.xpay(ctx, hash, xpayParams{Invstring: res.Invoice, MaxFee: int64(opts.MaxFee), RetryFor: left})
	case "pay":
		return o.d.pay(ctx, hash, payParams{Bolt11: res.Invoice, MaxFee: int64(opts.MaxFee), RetryFor: left})
	}
	return nil, fmt.Errorf("cln: %w: the node has neither xpay nor pay", backend.ErrUnsupported)
}
