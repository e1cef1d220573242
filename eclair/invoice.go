package eclair

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// CreateInvoice implements backend.Driver with createinvoice. Eclair honours
// any-amount invoices, description hashes and caller-chosen preimages.
func (b *driver) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	form := url.Values{}
	if h := req.CommittedDescriptionHash(); h != nil {
		form.Set("descriptionHash", hex.EncodeToString(h[:]))
	} else {
		// Eclair requires one of description and descriptionHash; an empty
		// description is accepted.
		form.Set("description", req.Memo)
	}
	if req.Amount > 0 {
		form.Set("amountMsat", strconv.FormatInt(int64(req.Amount), 10))
	}
	form.Set("expireIn", strconv.FormatInt(int64(req.Expiry/time.Second), 10))
	if req.Preimage != nil {
		form.Set("paymentPreimage", req.Preimage.String())
		// Eclair stores invoices by payment hash and fails a duplicate only
		// when its internal ask times out, with a generic 500; checking
		// first gives callers ErrAlreadyExists at once.
		if err := b.checkNew(ctx, req.Preimage.Hash()); err != nil {
			return nil, err
		}
	}
	var j invoiceJSON
	if err := b.call(ctx, "createinvoice", form, &j); err != nil {
		if req.Preimage != nil && errors.Is(err, backend.ErrUnavailable) {
			// A concurrent create with the same preimage may have won.
			if cerr := b.checkNew(ctx, req.Preimage.Hash()); errors.Is(cerr, backend.ErrAlreadyExists) {
				return nil, cerr
			}
		}
		return nil, err
	}
	inv, err := j.invoice()
	if err != nil {
		return nil, fmt.Errorf("eclair: createinvoice: %w", err)
	}
	return inv, nil
}

// checkNew returns ErrAlreadyExists when the node has an invoice for hash.
func (b *driver) checkNew(ctx context.Context, hash backend.PaymentHash) error {
	_, err := b.LookupInvoice(ctx, hash)
	switch {
	case err == nil:
		return fmt.Errorf("eclair: createinvoice: %w: invoice with payment hash %s", backend.ErrAlreadyExists, hash)
	case errors.Is(err, backend.ErrNotFound):
		return nil
	}
	return err
}

// LookupInvoice implements backend.Driver with getreceivedinfo, whose
// answer includes the invoice itself, BOLT11 string and all.
func (b *driver) LookupInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	var p incomingPayment
	if err := b.call(ctx, "getreceivedinfo", url.Values{"paymentHash": {hash.String()}}, &p); err != nil {
		return nil, err
	}
	inv, err := p.invoice()
	if err != nil {
		return nil, fmt.Errorf("eclair: getreceivedinfo: %w", err)
	}
	if inv.PaymentHash != hash {
		return nil, fmt.Errorf("eclair: getreceivedinfo: %w: asked for %s, got %s", backend.ErrUnsupported, hash, inv.PaymentHash)
	}
	return inv, nil
}

// Info implements backend.Informer with getinfo. Eclair only serves its API
// once it has started, and it refuses to start until bitcoind has finished
// its initial block download, so an answering node is synced.
func (b *driver) Info(ctx context.Context) (*backend.NodeInfo, error) {
	var g getInfo
	if err := b.call(ctx, "getinfo", url.Values{}, &g); err != nil {
		return nil, err
	}
	return &backend.NodeInfo{
		NodeID:      g.NodeID,
		Alias:       g.Alias,
		Network:     networkName(g.Network),
		BlockHeight: g.BlockHeight,
		Synced:      true,
	}, nil
}

// Ping implements backend.Pinger with getinfo.
func (b *driver) Ping(ctx context.Context) error {
	return b.call(ctx, "getinfo", url.Values{}, nil)
}
