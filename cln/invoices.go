package cln

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// newLabel returns a label no other invoice has: Core Lightning requires
// one per invoice, and the adapter finds invoices by hash, not label.
func newLabel() (string, error) {
	var r [12]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("cln: label: %w", err)
	}
	return "l402kit-" + hex.EncodeToString(r[:]), nil
}

// CreateInvoice implements backend.Driver with the invoice method. A
// request with HashedDescription asks invoice for deschashonly: lightningd
// hashes the text it is given into the invoice's h field. A request with
// only a DescriptionHash is ErrUnsupported: Core Lightning makes a
// description-hash invoice only from the description's text (createinvoice,
// which signs an invoice the caller encodes, refuses one without a
// description with "Missing description in invoice").
func (b *driver) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	if req.DescriptionHash != nil && req.HashedDescription == "" {
		return nil, fmt.Errorf("cln: %w: Core Lightning commits to a description hash only when given the description itself (InvoiceRequest.HashedDescription)", backend.ErrUnsupported)
	}
	expiry := req.Expiry
	label, err := newLabel()
	if err != nil {
		return nil, err
	}
	p := invoiceParams{
		AmountMsat:  "any",
		Label:       label,
		Description: req.Memo,
		Expiry:      int64(expiry / time.Second),
	}
	if req.HashedDescription != "" {
		p.Description, p.DescHashOnly = req.HashedDescription, true
	}
	if err := checkDescription(p.Description); err != nil {
		return nil, fmt.Errorf("cln: %w", err)
	}
	if req.Amount > 0 {
		p.AmountMsat = int64(req.Amount)
	}
	if req.Preimage != nil {
		p.Preimage = req.Preimage.String()
	}
	var res invoiceResult
	if err := b.call(ctx, "invoice", p, &res); err != nil {
		return nil, err
	}
	inv, err := fromCreated(&res, req)
	if err != nil {
		return nil, fmt.Errorf("cln: invoice: %w", err)
	}
	return inv, nil
}

// fromCreated builds the portable invoice from invoice's reply and the
// request, reading the creation time from the BOLT11 string, which is the
// only place Core Lightning reports it.
func fromCreated(res *invoiceResult, req backend.InvoiceRequest) (*backend.Invoice, error) {
	hash, err := backend.ParsePaymentHash(res.PaymentHash)
	if err != nil {
		return nil, err
	}
	d, err := backend.DecodeInvoice(res.Bolt11)
	if err != nil {
		return nil, err
	}
	if d.PaymentHash != hash {
		return nil, fmt.Errorf("%w: bolt11 hash %s differs from payment_hash %s", backend.ErrInvalid, d.PaymentHash, hash)
	}
	inv := &backend.Invoice{
		PaymentHash:    hash,
		PaymentRequest: res.Bolt11,
		Amount:         req.Amount,
		Memo:           d.Memo,
		State:          backend.StateOpen,
		CreatedAt:      d.CreatedAt,
		ExpiresAt:      time.Unix(res.ExpiresAt, 0),
	}
	return inv, nil
}

// fromFields converts an invoice as listinvoices and waitinvoice report it.
// Core Lightning's "expired" status reads as Open here: backend leaves
// expiry to Invoice.Expired, and CLN never cancels an invoice.
func fromFields(f *invoiceFields) (*backend.Invoice, error) {
	if f.Bolt11 == "" && f.Bolt12 != "" {
		return fromBolt12Fields(f)
	}
	if f.Bolt11 == "" {
		return nil, fmt.Errorf("%w: invoice %q is neither BOLT11 nor BOLT12", backend.ErrUnsupported, f.Label)
	}
	hash, err := backend.ParsePaymentHash(f.PaymentHash)
	if err != nil {
		return nil, err
	}
	d, err := backend.DecodeInvoice(f.Bolt11)
	if err != nil {
		return nil, err
	}
	inv := &backend.Invoice{
		PaymentHash:    hash,
		PaymentRequest: f.Bolt11,
		Memo:           f.Description,
		CreatedAt:      d.CreatedAt,
		ExpiresAt:      time.Unix(f.ExpiresAt, 0),
	}
	switch {
	case d.DescriptionHash != nil:
		// lightningd lists the text it hashed (deschashonly); the
		// invoice itself carries no memo.
		inv.Memo = ""
	case inv.Memo == "":
		inv.Memo = d.Memo
	}
	if f.AmountMsat != nil {
		inv.Amount = backend.MilliSat(*f.AmountMsat)
	}
	switch f.Status {
	case "paid":
		inv.State = backend.StateSettled
		if f.AmountReceivedMsat != nil {
			inv.AmountReceived = backend.MilliSat(*f.AmountReceivedMsat)
		}
		inv.SettledAt = time.Unix(f.PaidAt, 0)
		pre, err := backend.ParsePreimage(f.PaymentPreimage)
		if err != nil {
			return nil, fmt.Errorf("paid invoice %s: %w", hash, err)
		}
		inv.Preimage = &pre
	case "unpaid", "expired":
		inv.State = backend.StateOpen
	default:
		return nil, fmt.Errorf("%w: invoice %s has unknown status %q", backend.ErrInvalid, hash, f.Status)
	}
	return inv, nil
}

// LookupInvoice implements backend.Driver: listinvoices by payment_hash,
// then, with the hold plugin, listholdinvoices (hold invoices are signed by
// lightningd but kept by the plugin, so listinvoices does not know them).
func (b *driver) LookupInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	inv, _, err := b.lookup(ctx, hash)
	return inv, err
}

// lookup returns the invoice and, for a plain one, its label.
func (b *driver) lookup(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, string, error) {
	var res listInvoicesResult
	if err := b.call(ctx, "listinvoices", map[string]string{"payment_hash": hash.String()}, &res); err != nil {
		return nil, "", err
	}
	if len(res.Invoices) > 0 {
		inv, err := fromFields(&res.Invoices[0])
		if err != nil {
			return nil, "", fmt.Errorf("cln: listinvoices: %w", err)
		}
		return inv, res.Invoices[0].Label, nil
	}
	if b.hold {
		inv, err := b.lookupHold(ctx, hash)
		return inv, "", err
	}
	return nil, "", fmt.Errorf("cln: %w: no invoice with payment hash %s", backend.ErrNotFound, hash)
}

// WaitInvoice implements backend.Waiter: waitinvoice for a plain invoice
// (lightningd answers when it is paid, or with error 903 when it expires),
// polling listholdinvoices for a hold invoice.
func (b *driver) WaitInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	inv, label, err := b.lookup(ctx, hash)
	if err != nil {
		return nil, err
	}
	if inv.State != backend.StateOpen || inv.Expired(time.Now()) {
		return inv, nil
	}
	if label == "" {
		return b.pollHold(ctx, hash)
	}
	var f invoiceFields
	err = b.call(ctx, "waitinvoice", map[string]string{"label": label}, &f)
	var rerr *RPCError
	if errors.As(err, &rerr) && rerr.Code == codeExpiredDuringWait {
		// The error's data is the invoice, now expired.
		if jerr := json.Unmarshal(rerr.Data, &f); jerr != nil || f.PaymentHash == "" {
			return b.LookupInvoice(ctx, hash)
		}
		err = nil
	}
	if err != nil {
		return nil, err
	}
	inv, err = fromFields(&f)
	if err != nil {
		return nil, fmt.Errorf("cln: waitinvoice: %w", err)
	}
	return inv, nil
}
