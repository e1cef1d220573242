package eclair

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt12"
)

// Offers (Eclair v0.12 and later; written from v0.14.1, commit d769db07,
// api/handlers/Offer.scala and Payment.scala, Eclair.scala):
// createoffer, listoffers, disableoffer (which takes the offer itself, not
// its id, and answers true for any offer, known or not, so the adapter
// looks the id up in listoffers first), listreceivedpayments (the payments
// whose BOLT12 invoice was made for the offer) and payoffer (which fetches
// the invoice, then answers the payment id, polled with getsentinfo as for
// payinvoice). payoffer has no payer note: PayOffer with one is
// ErrUnsupported.

var (
	_ backend.Offerer    = (*driver)(nil)
	_ backend.OfferPayer = (*driver)(nil)
)

// offerData is an offer as Eclair writes it (OfferDataSerializer).
type offerData struct {
	Disabled bool   `json:"disabled"`
	Encoded  string `json:"encoded"`
}

func (o *offerData) portable() (*backend.Offer, error) {
	d, err := bolt12.DecodeOffer(o.Encoded)
	if err != nil {
		return nil, fmt.Errorf("%w: offer %q: %w", backend.ErrUnsupported, o.Encoded, err)
	}
	id := d.ID()
	return &backend.Offer{
		ID: hex.EncodeToString(id[:]), Bolt12: o.Encoded, Amount: backend.MilliSat(d.Amount), Description: d.Description,
		Issuer: d.Issuer, ExpiresAt: d.AbsoluteExpiry, Active: !o.Disabled,
	}, nil
}

// CreateOffer implements backend.Offerer with createoffer.
func (b *driver) CreateOffer(ctx context.Context, req backend.OfferRequest) (*backend.Offer, error) {
	form := url.Values{}
	if req.Description != "" {
		form.Set("description", req.Description)
	}
	if req.Amount > 0 {
		form.Set("amountMsat", strconv.FormatInt(int64(req.Amount), 10))
	}
	if req.Expiry > 0 {
		form.Set("expireInSeconds", strconv.FormatInt(int64(req.Expiry/time.Second), 10))
	}
	if req.Issuer != "" {
		form.Set("issuer", req.Issuer)
	}
	var res offerData
	if err := b.call(ctx, "createoffer", form, &res); err != nil {
		return nil, err
	}
	return res.portable()
}

// ListOffers implements backend.Offerer with listoffers, disabled offers
// included (activeOnly=false; Eclair's default lists active ones only).
func (b *driver) ListOffers(ctx context.Context) ([]*backend.Offer, error) {
	var res []offerData
	if err := b.call(ctx, "listoffers", url.Values{"activeOnly": {"false"}}, &res); err != nil {
		return nil, err
	}
	out := make([]*backend.Offer, 0, len(res))
	for i := range res {
		o, err := res[i].portable()
		if err != nil {
			return nil, fmt.Errorf("eclair: listoffers: %w", err)
		}
		out = append(out, o)
	}
	return out, nil
}

// DisableOffer implements backend.Offerer: listoffers finds the offer (an
// id it does not list is ErrNotFound), disableoffer disables it.
func (b *driver) DisableOffer(ctx context.Context, id string) error {
	offs, err := b.ListOffers(ctx)
	if err != nil {
		return err
	}
	for _, o := range offs {
		if o.ID == id {
			return b.call(ctx, "disableoffer", url.Values{"offer": {o.Bolt12}}, nil)
		}
	}
	return fmt.Errorf("eclair: disableoffer: %w: no offer %s", backend.ErrNotFound, id)
}

// receivedOffer is an IncomingPayment of listreceivedpayments, with the
// fields of a Bolt12Invoice read.
type receivedOffer struct {
	Invoice struct {
		Serialized string `json:"serialized"`
	} `json:"invoice"`
	PaymentPreimage string `json:"paymentPreimage"`
	Status          struct {
		Type       string     `json:"type"`
		Amount     int64      `json:"amount"`
		ReceivedAt *timestamp `json:"receivedAt"`
	} `json:"status"`
}

// OfferPayments implements backend.Offerer with listreceivedpayments: the
// received payments whose BOLT12 invoice copies the offer.
func (b *driver) OfferPayments(ctx context.Context, id string) ([]*backend.Invoice, error) {
	var res []receivedOffer
	form := url.Values{"from": {"0"}, "to": {strconv.FormatInt(time.Now().Add(24*time.Hour).Unix(), 10)}}
	if err := b.call(ctx, "listreceivedpayments", form, &res); err != nil {
		return nil, err
	}
	var out []*backend.Invoice
	for _, p := range res {
		if !strings.HasPrefix(p.Invoice.Serialized, bolt12.PrefixInvoice+"1") || p.Status.Type != "received" {
			continue
		}
		d, err := bolt12.DecodeInvoice(p.Invoice.Serialized)
		if err != nil {
			return nil, fmt.Errorf("eclair: listreceivedpayments: %w: %w", backend.ErrUnsupported, err)
		}
		if offerID(d.Records) != id {
			continue
		}
		pre, err := backend.ParsePreimage(p.PaymentPreimage)
		if err != nil || !pre.Matches(d.PaymentHash) {
			return nil, fmt.Errorf("eclair: listreceivedpayments: %w: payment of %x without its preimage", backend.ErrUnsupported, d.PaymentHash)
		}
		out = append(out, &backend.Invoice{
			PaymentHash: d.PaymentHash, PaymentRequest: p.Invoice.Serialized, Amount: backend.MilliSat(d.Amount),
			AmountReceived: backend.MilliSat(p.Status.Amount), Memo: d.Description, State: backend.StateSettled,
			Preimage: &pre, CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt(), SettledAt: p.Status.ReceivedAt.time(),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SettledAt.Before(out[j].SettledAt) })
	return out, nil
}

// offerID is the id of the offer an invoice's records copy: the Merkle
// root of those in the offer's ranges.
func offerID(rs []bolt12.Record) string {
	var offer []bolt12.Record
	for _, r := range rs {
		if (r.Type >= 1 && r.Type <= 79) || (r.Type >= 1_000_000_000 && r.Type <= 1_999_999_999) {
			offer = append(offer, r)
		}
	}
	id := bolt12.MerkleRoot(offer)
	return hex.EncodeToString(id[:])
}

// PayOffer implements backend.OfferPayer with payoffer (amountMsat is
// required: the offer's own amount for a fixed offer), then getsentinfo
// as for PayInvoice. payoffer answers only once it has an invoice, so a
// refusal (the Failure's text, HTTP 500) paid nothing: ErrPaymentFailed;
// only Eclair's own timeout of the call (408, or a 500 saying the server
// was not able to produce a timely response) leaves the payment unknown.
func (b *driver) PayOffer(ctx context.Context, offer string, opts backend.OfferPayOptions) (*backend.Payment, error) {
	if opts.PayerNote != "" {
		return nil, fmt.Errorf("eclair: %w: payoffer takes no payer note", backend.ErrUnsupported)
	}
	amount := opts.Amount
	if amount == 0 {
		d, err := bolt12.DecodeOffer(offer)
		if err != nil {
			return nil, fmt.Errorf("eclair: %w: %w", backend.ErrInvalid, err)
		}
		amount = backend.MilliSat(d.Amount)
	}
	form := url.Values{"offer": {offer}, "amountMsat": {strconv.FormatInt(int64(amount), 10)}}
	if opts.MaxFee > 0 {
		form.Set("maxFeeFlatSat", strconv.FormatInt(opts.MaxFee.Sats(), 10))
		form.Set("maxFeePct", "0")
	}
	start := time.Now()
	var id string
	if err := b.call(ctx, "payoffer", form, &id); err != nil {
		var apiErr *APIError
		switch {
		case errors.Is(err, errNotSent):
			return nil, err
		case errors.As(err, &apiErr) && apiErr.Status < 500 && apiErr.Status != 408:
			return nil, err
		case errors.As(err, &apiErr) && apiErr.Status == 500 && !strings.Contains(apiErr.Message, "timely response"):
			return nil, fmt.Errorf("eclair: payoffer: %w: %v", backend.ErrPaymentFailed, apiErr)
		}
		return nil, fmt.Errorf("eclair: payoffer: %w: %v", backend.ErrPaymentUnknown, err)
	}
	if id == "" {
		return nil, fmt.Errorf("eclair: payoffer: %w: empty payment id", backend.ErrPaymentUnknown)
	}
	return b.waitSent(ctx, id, start.Add(opts.Timeout), opts.Timeout)
}
