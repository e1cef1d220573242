package nwc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/l402kit/l402kit/backend"
)

type getInfoResult struct {
	Alias         string   `json:"alias"`
	Pubkey        string   `json:"pubkey"`
	Network       string   `json:"network"`
	BlockHeight   uint32   `json:"block_height"`
	BlockHash     string   `json:"block_hash"`
	Methods       []string `json:"methods"`
	Notifications []string `json:"notifications"`
}

func invoiceParams(req backend.InvoiceRequest) map[string]any {
	p := map[string]any{"amount": int64(req.Amount), "expiry": int64(req.Expiry / time.Second)}
	if h := req.CommittedDescriptionHash(); h != nil {
		p["description_hash"] = fmt.Sprintf("%x", h[:])
		if req.HashedDescription != "" {
			p["description"] = req.HashedDescription
		}
	} else if req.Memo != "" {
		p["description"] = req.Memo
	}
	return p
}

// CreateInvoice implements backend.Driver with make_invoice. NIP-47 has no
// way to hand the wallet a preimage, so a request with one is
// ErrUnsupported.
func (d *driver) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	if req.Preimage != nil {
		return nil, fmt.Errorf("nwc: %w: NIP-47 make_invoice takes no preimage; the wallet chooses it", backend.ErrUnsupported)
	}
	var t transaction
	if err := d.call(ctx, MethodMakeInvoice, invoiceParams(req), &t); err != nil {
		return nil, err
	}
	if t.State == "" {
		t.State = "pending"
	}
	return t.invoice()
}

// LookupInvoice implements backend.Driver with lookup_invoice.
func (d *driver) LookupInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	var t transaction
	if err := d.call(ctx, MethodLookupInvoice, map[string]any{"payment_hash": hash.String()}, &t); err != nil {
		return nil, err
	}
	return t.invoice()
}

// lookup is lookup_invoice's raw transaction, for the payment side.
func (d *driver) lookup(ctx context.Context, hash backend.PaymentHash) (*transaction, error) {
	var t transaction
	if err := d.call(ctx, MethodLookupInvoice, map[string]any{"payment_hash": hash.String()}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// waitInvoice implements backend.Waiter for a wallet that sends
// notifications: each payment_received or hold_invoice_accepted naming the
// hash, and each relay (re)connection, triggers a lookup; lookups also
// run every few seconds in case a notification was lost, and every
// PollInterval while no relay is connected.
func (d *driver) waitInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	bell := make(chan struct{}, 1)
	d.mu.Lock()
	if d.waiters[hash] == nil {
		d.waiters[hash] = map[chan struct{}]bool{}
	}
	d.waiters[hash][bell] = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.waiters[hash], bell)
		if len(d.waiters[hash]) == 0 {
			delete(d.waiters, hash)
		}
		d.mu.Unlock()
	}()
	for {
		reconn := d.reconnected()
		lctx, cancel := context.WithTimeout(ctx, d.callTO)
		inv, err := d.LookupInvoice(lctx, hash)
		cancel()
		switch {
		case err == nil && (inv.State != backend.StateOpen || inv.Expired(time.Now())):
			return inv, nil
		case err != nil && ctx.Err() == nil && !errors.Is(err, backend.ErrUnavailable):
			return nil, err
		}
		every := connectedPoll
		if d.pool.connected() == 0 {
			every = d.poll
		}
		if err == nil {
			if until := time.Until(inv.ExpiresAt); until > 0 && until < every {
				every = until + 10*time.Millisecond
			}
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("nwc: wait for invoice %s: %w", hash, ctx.Err())
		case <-bell:
		case <-reconn:
		case <-t.C:
		}
		t.Stop()
	}
}

// createHoldInvoice implements backend.HoldInvoicer with make_hold_invoice.
func (d *driver) createHoldInvoice(ctx context.Context, hash backend.PaymentHash, req backend.InvoiceRequest) (*backend.Invoice, error) {
	p := invoiceParams(req)
	p["payment_hash"] = hash.String()
	var t transaction
	if err := d.call(ctx, MethodMakeHoldInvoice, p, &t); err != nil {
		return nil, d.holdError(ctx, hash, err, true)
	}
	if t.State == "" {
		t.State = "pending"
	}
	return t.invoice()
}

// settleInvoice implements backend.HoldInvoicer with settle_hold_invoice.
func (d *driver) settleInvoice(ctx context.Context, pre backend.Preimage) error {
	err := d.call(ctx, MethodSettleHoldInvoice, map[string]any{"preimage": pre.String()}, nil)
	return d.holdError(ctx, pre.Hash(), err, false)
}

// cancelInvoice implements backend.HoldInvoicer with cancel_hold_invoice.
func (d *driver) cancelInvoice(ctx context.Context, hash backend.PaymentHash) error {
	err := d.call(ctx, MethodCancelHoldInvoice, map[string]any{"payment_hash": hash.String()}, nil)
	return d.holdError(ctx, hash, err, false)
}

// holdError turns a wallet's vague answer to a hold call into what the
// invoice's state says. Alby Hub answers a settle of an invoice that is not
// held with INTERNAL "failed to find accepted hold invoice", and a cancel
// of one with NOT_FOUND, whether or not the invoice exists; and a second
// make_hold_invoice for a hash with INTERNAL. A lookup tells the cases
// apart.
func (d *driver) holdError(ctx context.Context, hash backend.PaymentHash, err error, creating bool) error {
	var we *WalletError
	if err == nil || !errors.As(err, &we) || (we.Code != CodeInternal && we.Code != CodeOther && we.Code != CodeNotFound) {
		return err
	}
	inv, lerr := d.LookupInvoice(ctx, hash)
	switch {
	case errors.Is(lerr, backend.ErrNotFound):
		if creating {
			return err
		}
		return fmt.Errorf("nwc: %s: %w: no invoice with hash %s", we.Method, backend.ErrNotFound, hash)
	case lerr != nil:
		return err
	case creating:
		return fmt.Errorf("nwc: %s: %w: an invoice with hash %s exists (%s)", we.Method, backend.ErrAlreadyExists, hash, we.Message)
	case we.Method == MethodSettleHoldInvoice && inv.State == backend.StateSettled,
		we.Method == MethodCancelHoldInvoice && inv.State == backend.StateCanceled:
		return nil // done already
	default:
		return fmt.Errorf("nwc: %s: %w: invoice %s is %s, not held (wallet said %s: %s)", we.Method, backend.ErrInvalid, hash, inv.State, we.Code, we.Message)
	}
}

// info implements backend.Informer with get_info.
func (d *driver) info(ctx context.Context) (*backend.NodeInfo, error) {
	var gi getInfoResult
	if err := d.call(ctx, MethodGetInfo, map[string]any{}, &gi); err != nil {
		return nil, err
	}
	return &backend.NodeInfo{NodeID: gi.Pubkey, Alias: gi.Alias, Network: gi.Network, BlockHeight: gi.BlockHeight, Synced: gi.BlockHeight > 0}, nil
}

// ping implements backend.Pinger with get_info.
func (d *driver) ping(ctx context.Context) error {
	return d.call(ctx, MethodGetInfo, map[string]any{}, nil)
}
