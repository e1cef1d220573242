package cln

import (
	"context"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt11"
)

func (b *driver) lookupHold(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	var res listHoldInvoicesResult
	if err := b.call(ctx, "listholdinvoices", map[string]string{"payment_hash": hash.String()}, &res); err != nil {
		return nil, err
	}
	if len(res.HoldInvoices) == 0 {
		return nil, fmt.Errorf("cln: %w: no invoice with payment hash %s", backend.ErrNotFound, hash)
	}
	inv, err := fromHold(&res.HoldInvoices[0])
	if err != nil {
		return nil, fmt.Errorf("cln: listholdinvoices: %w", err)
	}
	return inv, nil
}

// fromHold converts a listholdinvoices entry; amount, memo and times come
// from its BOLT11 string, which is all the plugin keeps of them.
func fromHold(h *holdInvoice) (*backend.Invoice, error) {
	hash, err := backend.ParsePaymentHash(h.PaymentHash)
	if err != nil {
		return nil, err
	}
	d, err := backend.DecodeInvoice(h.Invoice)
	if err != nil {
		return nil, err
	}
	inv := d.Invoice()
	inv.PaymentHash = hash // as the plugin lists it
	for _, htlc := range h.HTLCs {
		if htlc.State == "accepted" || htlc.State == "paid" {
			inv.AmountReceived += backend.MilliSat(htlc.Msat)
		}
	}
	switch h.State {
	case "unpaid":
		inv.State = backend.StateOpen
	case "accepted":
		inv.State = backend.StateHeld
	case "paid":
		inv.State = backend.StateSettled
		if inv.SettledAt, err = parseNaiveTime(h.SettledAt); err != nil {
			return nil, err
		}
	case "cancelled":
		inv.State = backend.StateCanceled
		inv.AmountReceived = 0
	default:
		return nil, fmt.Errorf("%w: hold invoice %s has unknown state %q", backend.ErrInvalid, hash, h.State)
	}
	if h.Preimage != "" {
		pre, err := backend.ParsePreimage(h.Preimage)
		if err != nil {
			return nil, err
		}
		inv.Preimage = &pre
	}
	return inv, nil
}

func (b *driver) pollHold(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	t := time.NewTicker(b.holdPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cln: wait for invoice %s: %w", hash, ctx.Err())
		case <-t.C:
		}
		inv, err := b.lookupHold(ctx, hash)
		if err != nil {
			return nil, err
		}
		if inv.State != backend.StateOpen || inv.Expired(time.Now()) {
			return inv, nil
		}
	}
}

// holdCLTV is the min_final_cltv_expiry of the invoices the adapter
// encodes itself (hold invoices): the hold
// plugin's own encoder uses 80 blocks, leaving room to decide before the
// payer's HTLC times out.
const holdCLTV = 80

// CreateHoldInvoice implements backend.HoldInvoicer. The hold plugin's own
// holdinvoice RPC takes only a hash and an amount (no description, a fixed
// one-hour expiry), so the adapter writes the invoice itself: it encodes
// the BOLT11 with the request's amount, memo or description hash and
// expiry, has lightningd sign it as the node (signinvoice, which keeps no
// state), and hands it to the plugin with injectholdinvoice.
func (h *holdDriver) CreateHoldInvoice(ctx context.Context, hash backend.PaymentHash, req backend.InvoiceRequest) (*backend.Invoice, error) {
	unsigned, err := encodeUnsigned(h.network, hash, req, req.Expiry)
	if err != nil {
		return nil, err
	}
	var signed holdInvoiceResult
	if err := h.call(ctx, "signinvoice", map[string]string{"invstring": unsigned}, &signed); err != nil {
		return nil, err
	}
	d, err := backend.DecodeInvoice(signed.Bolt11)
	if err != nil {
		return nil, fmt.Errorf("cln: signinvoice: %w", err)
	}
	if d.PaymentHash != hash {
		return nil, fmt.Errorf("cln: signinvoice: %w: bolt11 hash %s, asked %s", backend.ErrInvalid, d.PaymentHash, hash)
	}
	if err := h.call(ctx, "injectholdinvoice", map[string]string{"invoice": signed.Bolt11}, nil); err != nil {
		return nil, err
	}
	return d.Invoice(), nil
}

// encodeUnsigned writes a BOLT11 invoice for signinvoice, which ignores the
// signature it finds: the throwaway key only satisfies the encoder.
func encodeUnsigned(network string, hash backend.PaymentHash, req backend.InvoiceRequest, expiry time.Duration) (string, error) {
	key, err := btcec.NewPrivateKey()
	if err != nil {
		return "", fmt.Errorf("cln: %w", err)
	}
	s, err := bolt11.EncodePayable(bolt11.Invoice{
		Network: portableNetwork(network), PaymentHash: hash, Timestamp: time.Now(), Expiry: expiry,
		Amount: int64(req.Amount), Description: req.Memo, DescriptionHash: req.CommittedDescriptionHash(), MinFinalCLTV: holdCLTV,
	}, key)
	if err != nil {
		return "", fmt.Errorf("cln: node network %q: %w: %w", network, backend.ErrInvalid, err)
	}
	return s, nil
}

// SettleInvoice implements backend.HoldInvoicer with settleholdinvoice.
func (h *holdDriver) SettleInvoice(ctx context.Context, preimage backend.Preimage) error {
	return h.call(ctx, "settleholdinvoice", map[string]string{"preimage": preimage.String()}, nil)
}

// CancelInvoice implements backend.HoldInvoicer with cancelholdinvoice. It
// cancels hold invoices only: Core Lightning cannot cancel a plain invoice
// (delinvoice deletes it instead).
func (h *holdDriver) CancelInvoice(ctx context.Context, hash backend.PaymentHash) error {
	return h.call(ctx, "cancelholdinvoice", map[string]string{"payment_hash": hash.String()}, nil)
}
