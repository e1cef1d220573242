package backend

import (
	"context"
	"encoding/hex"
	"strings"
	"time"

	"github.com/l402kit/l402kit/bolt12"
)

// Offer is a reusable BOLT12 payment code a node made: anyone may pay it
// many times, each payment through its own invoice, until it is disabled or
// expires.
type Offer struct {
	// ID names the offer at its node: hex of the Merkle root of its TLV
	// stream, as Core Lightning, Eclair and phoenixd name offers.
	ID string
	// Bolt12 is the offer string, "lno1...".
	Bolt12 string
	// Amount each payment must carry; zero when the payer chooses.
	Amount MilliSat
	// Description and Issuer, as the offer says them.
	Description string
	Issuer      string
	// ExpiresAt is when the offer stops being payable; zero for never.
	ExpiresAt time.Time
	// Active is false once the offer was disabled.
	Active bool
}

// OfferRequest asks for a new offer.
type OfferRequest struct {
	// Amount per payment; zero lets the payer choose.
	Amount MilliSat
	// Description of what is paid for; the specification requires one
	// when Amount is set.
	Description string
	// Expiry from now; zero for an offer that does not expire.
	Expiry time.Duration
	// Issuer names who is paid, for people ("example.com").
	Issuer string
}

// OfferPayOptions tune paying an offer: PayOptions' Amount (for an
// any-amount offer), MaxFee and Timeout, and a note for the payee.
type OfferPayOptions struct {
	PayOptions
	// PayerNote goes to the payee in the invoice request.
	PayerNote string
}

// Offerer is a driver whose node makes BOLT12 offers and receives payments
// through them.
type Offerer interface {
	// CreateOffer makes an offer; req is validated and Expiry whole
	// seconds.
	CreateOffer(ctx context.Context, req OfferRequest) (*Offer, error)
	// ListOffers returns the node's offers, disabled ones included.
	ListOffers(ctx context.Context) ([]*Offer, error)
	// DisableOffer stops the offer with that id from being paid (a
	// disabled offer cannot be enabled again through this interface);
	// an unknown id is ErrNotFound.
	DisableOffer(ctx context.Context, id string) error
	// OfferPayments returns the invoices paid through the offer (their
	// PaymentRequest is the BOLT12 invoice, "lni1..."), oldest first.
	OfferPayments(ctx context.Context, id string) ([]*Invoice, error)
}

// OfferPayer is a driver that can pay BOLT12 offers: fetch an invoice from
// the offer's issuer and pay it, under the same outcome rules as
// Payer.PayInvoice.
type OfferPayer interface {
	// PayOffer pays offer (a bare "lno1..." string). opts.Amount is set
	// only for an any-amount offer; opts.Timeout is set. The Payment
	// carries the paid invoice's hash.
	PayOffer(ctx context.Context, offer string, opts OfferPayOptions) (*Payment, error)
}

// The offer abilities.
const (
	AbilityOffer    Ability = "offer"
	AbilityPayOffer Ability = "payoffer"
)

func (b *Backend) offerer() (Offerer, error) {
	o, ok := b.drv.(Offerer)
	if !ok {
		return nil, b.unsupported(AbilityOffer)
	}
	return o, nil
}

// CreateOffer makes a reusable offer: fixed amount or any, description,
// expiry, issuer. The offer the node answers is checked against the
// request.
func (b *Backend) CreateOffer(ctx context.Context, req OfferRequest) (*Offer, error) {
	o, err := b.offerer()
	if err != nil {
		return nil, err
	}
	switch {
	case req.Amount < 0 || req.Expiry < 0:
		return nil, errorf(ErrInvalid, "negative amount or expiry in OfferRequest")
	case req.Amount > 0 && req.Description == "":
		return nil, errorf(ErrInvalid, "an offer with an amount needs a description (BOLT 12)")
	case req.Expiry > 0 && req.Expiry < time.Second:
		return nil, errorf(ErrInvalid, "offer expiry under one second")
	}
	req.Expiry = req.Expiry.Truncate(time.Second)
	ctx, done, err := b.call(ctx, b.opts.CallTimeout)
	if err != nil {
		return nil, err
	}
	defer done()
	off, err := o.CreateOffer(ctx, req)
	if err != nil {
		return nil, b.fail(err)
	}
	if off == nil {
		return nil, errorf(ErrUnavailable, "node answered without an offer")
	}
	d, err := bolt12.DecodeOffer(off.Bolt12)
	if err != nil {
		return nil, errorf(ErrUnavailable, "node answered an offer that does not decode: %v", err)
	}
	if MilliSat(d.Amount) != req.Amount || d.Description != req.Description || d.Currency != "" {
		return nil, errorf(ErrUnavailable, "node made an offer of %d msat %q, asked %s %q", d.Amount, d.Description, req.Amount, req.Description)
	}
	return off, nil
}

// ListOffers returns the node's offers.
func (b *Backend) ListOffers(ctx context.Context) ([]*Offer, error) {
	o, err := b.offerer()
	if err != nil {
		return nil, err
	}
	ctx, done, err := b.call(ctx, b.opts.CallTimeout)
	if err != nil {
		return nil, err
	}
	defer done()
	offs, err := o.ListOffers(ctx)
	if err != nil {
		return nil, b.fail(err)
	}
	return offs, nil
}

// checkOfferID refuses what cannot be an offer id.
func checkOfferID(id string) error {
	if b, err := hex.DecodeString(id); err != nil || len(b) != 32 {
		return errorf(ErrInvalid, "offer id %q is not 32 bytes of hex", id)
	}
	return nil
}

// DisableOffer stops an offer from being paid.
func (b *Backend) DisableOffer(ctx context.Context, id string) error {
	o, err := b.offerer()
	if err != nil {
		return err
	}
	if err := checkOfferID(id); err != nil {
		return err
	}
	ctx, done, err := b.call(ctx, b.opts.CallTimeout)
	if err != nil {
		return err
	}
	defer done()
	return b.fail(o.DisableOffer(ctx, id))
}

// OfferPayments returns the invoices paid through an offer.
func (b *Backend) OfferPayments(ctx context.Context, id string) ([]*Invoice, error) {
	o, err := b.offerer()
	if err != nil {
		return nil, err
	}
	if err := checkOfferID(id); err != nil {
		return nil, err
	}
	ctx, done, err := b.call(ctx, b.opts.CallTimeout)
	if err != nil {
		return nil, err
	}
	defer done()
	invs, err := o.OfferPayments(ctx, id)
	if err != nil {
		return nil, b.fail(err)
	}
	return invs, nil
}

// TrimOffer returns an offer string without surrounding whitespace and
// without a "lightning:" or "bitcoin:?lno=" style prefix.
func TrimOffer(s string) string {
	s = TrimInvoice(s)
	if i := strings.Index(strings.ToLower(s), "lno="); i >= 0 && strings.HasPrefix(strings.ToLower(s), "bitcoin:") {
		s = s[i+len("lno="):]
		if j := strings.IndexByte(s, '&'); j >= 0 {
			s = s[:j]
		}
	}
	return s
}

// PayOffer pays a BOLT12 offer: the node fetches an invoice from the
// offer's issuer and pays it. The rules of PayInvoice apply: the amount
// (opts.Amount is required for an any-amount offer and must not disagree
// with a fixed one), the fee limit, the timeout and the outcome sentinels.
// Offers priced in a fiat currency or by quantity are ErrUnsupported; an
// expired offer is ErrPaymentFailed.
func (b *Backend) PayOffer(ctx context.Context, offer string, opts OfferPayOptions) (*Payment, error) {
	p, ok := b.drv.(OfferPayer)
	if !ok {
		return nil, b.unsupported(AbilityPayOffer)
	}
	offer = TrimOffer(offer)
	d, err := bolt12.DecodeOffer(offer)
	if err != nil {
		return nil, as(ErrInvalid, err)
	}
	switch {
	case opts.Amount < 0 || opts.MaxFee < 0 || opts.Timeout < 0:
		return nil, errorf(ErrInvalid, "negative amount, fee limit or timeout in OfferPayOptions")
	case d.Currency != "":
		return nil, errorf(ErrUnsupported, "offer is priced in %s; only millisatoshi offers are paid", d.Currency)
	case d.QuantityMax != nil:
		return nil, errorf(ErrUnsupported, "offer is sold by quantity")
	case d.Amount == 0 && opts.Amount == 0:
		return nil, errorf(ErrInvalid, "any-amount offer needs PayOptions.Amount")
	case d.Amount != 0 && opts.Amount != 0 && uint64(opts.Amount) != d.Amount:
		return nil, errorf(ErrInvalid, "offer asks %d msat, PayOptions.Amount is %s", d.Amount, opts.Amount)
	case d.Amount != 0:
		opts.Amount = 0
	}
	if opts.MaxFee > 0 && !b.feeOK {
		return nil, errorf(ErrUnsupported, "this node cannot limit routing fees; PayOptions.MaxFee must be zero")
	}
	if d.Expired(time.Now()) {
		return nil, errorf(ErrPaymentFailed, "offer expired at %s", d.AbsoluteExpiry.UTC().Format(time.RFC3339))
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultPayTimeout
	}
	bound, cancel := context.WithTimeout(ctx, opts.Timeout+payGrace)
	defer cancel()
	ctx, done, err := b.call(bound, 0)
	if err != nil {
		return nil, err
	}
	defer done()
	pay, err := p.PayOffer(ctx, offer, opts)
	if err != nil {
		return nil, b.failPay(err)
	}
	if pay == nil || pay.PaymentHash.IsZero() || !pay.Preimage.Matches(pay.PaymentHash) {
		return nil, errorf(ErrPaymentUnknown, "node reported paying the offer without a preimage of the invoice's hash")
	}
	if pay.Amount == 0 {
		pay.Amount = MilliSat(d.Amount)
		if d.Amount == 0 {
			pay.Amount = opts.Amount
		}
	}
	return pay, nil
}
