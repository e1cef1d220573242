package lnurl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// CreateInvoice asks the service's callback for an invoice of req.Amount and
// returns it only if its amount and description hash are what LUD-06
// requires; any other answer is an error wrapping backend.ErrInvalid that
// says what was wrong, and no invoice.
func (c *Client) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	if req.Preimage != nil {
		return nil, fmt.Errorf("lnurl: %w: a LNURL-pay service chooses the preimage itself", backend.ErrUnsupported)
	}
	if req.CommittedDescriptionHash() != nil {
		return nil, fmt.Errorf("lnurl: %w: a LNURL-pay invoice's description hash is the hash of the service's own metadata, not the caller's", backend.ErrUnsupported)
	}
	if req.Amount == 0 {
		return nil, fmt.Errorf("lnurl: %w: LNURL-pay needs an amount (LUD-06 has no any-amount invoices)", backend.ErrInvalid)
	}
	for fresh := false; ; fresh = true {
		p, err := c.paramsForInvoice(ctx, fresh)
		if err != nil {
			return nil, err
		}
		if int64(req.Amount) < p.MinSendable || int64(req.Amount) > p.MaxSendable {
			return nil, fmt.Errorf("lnurl: %w: amount %d msat is outside the service's range %d..%d msat",
				backend.ErrInvalid, int64(req.Amount), p.MinSendable, p.MaxSendable)
		}
		inv, verify, err := c.callback(ctx, p, req.Amount)
		if err == nil {
			if c.claim(inv, verify) {
				return inv, nil
			}
			// A callback bound to one invoice of the service answers
			// again with that invoice; it is someone else's now.
			c.mu.Lock()
			c.callbacks = callbackPerFetch
			c.mu.Unlock()
			err = fmt.Errorf("lnurl: %w: callback answered with invoice %s, which this client already handed out",
				backend.ErrInvalid, inv.PaymentHash)
		}
		c.forgetParams(p)
		// A refusal may be the service's way of saying the parameters
		// are stale (BTCPay: "Invoice not in a valid payable state");
		// an unreachable service is not asked again here.
		if fresh || !errors.Is(err, backend.ErrInvalid) || ctx.Err() != nil {
			return nil, err
		}
		c.log.Debug("lnurl: callback refused; fetching pay parameters again", "url", c.payURL, "err", err)
	}
}

// callback asks for the invoice and checks it against LUD-06 step 6 and 7.
func (c *Client) callback(ctx context.Context, p *payParams, amount backend.MilliSat) (*backend.Invoice, string, error) {
	u, err := checkURL(p.Callback, "callback", c.cfg.AllowHTTP)
	if err != nil {
		return nil, "", fmt.Errorf("lnurl: %w: %v", backend.ErrInvalid, err)
	}
	// Setting the parameter keeps whatever query the callback carries,
	// which is LUD-06's "<callback><?|&>amount=".
	q := u.Query()
	q.Set("amount", strconv.FormatInt(int64(amount), 10))
	u.RawQuery = q.Encode()

	var resp invoiceResponse
	if err := c.getJSON(ctx, u.String(), "callback", &resp); err != nil {
		return nil, "", err
	}
	if resp.PR == "" {
		return nil, "", fmt.Errorf("lnurl: %w: callback answered without an invoice (no \"pr\")", backend.ErrInvalid)
	}
	d, err := backend.DecodeInvoice(resp.PR)
	if err != nil {
		return nil, "", fmt.Errorf("lnurl: callback's invoice: %w", err)
	}
	if d.Amount != amount {
		return nil, "", fmt.Errorf("lnurl: %w: callback's invoice is for %d msat, asked %d msat (LUD-06 step 7)",
			backend.ErrInvalid, int64(d.Amount), int64(amount))
	}
	want := metadataHash(p.Metadata)
	switch {
	case d.DescriptionHash == nil:
		return nil, "", fmt.Errorf("lnurl: %w: callback's invoice has no description hash; LUD-06 step 6 wants sha256(metadata) = %x",
			backend.ErrInvalid, want)
	case *d.DescriptionHash != want:
		return nil, "", fmt.Errorf("lnurl: %w: callback's invoice description hash %x is not sha256(metadata) = %x (LUD-06 step 6)",
			backend.ErrInvalid, *d.DescriptionHash, want)
	}
	if resp.Verify != "" {
		if _, err := checkURL(resp.Verify, "verify URL", c.cfg.AllowHTTP); err != nil {
			return nil, "", fmt.Errorf("lnurl: %w: callback's LUD-21 %v", backend.ErrInvalid, err)
		}
	}
	inv := d.Invoice() // no memo: the invoice commits to the metadata's hash
	inv.PaymentRequest = resp.PR
	return inv, resp.Verify, nil
}

// LookupInvoice asks the invoice's LUD-21 verify URL how it stands. Only
// invoices this Client created are known (others are ErrNotFound); those
// the service gave no verify URL for are ErrUnsupported.
func (c *Client) LookupInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	c.mu.Lock()
	rec, ok := c.invoices[hash]
	var inv backend.Invoice
	var verify string
	if ok {
		inv, verify = rec.inv, rec.verify
	}
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("lnurl: %w: invoice %s was not created by this client (LNURL-pay offers no lookup of other invoices)",
			backend.ErrNotFound, hash)
	}
	if verify == "" {
		return nil, fmt.Errorf("lnurl: %w: the service gave no LUD-21 verify URL for invoice %s, so its state cannot be learned (the payer's preimage still proves payment)",
			backend.ErrUnsupported, hash)
	}
	if inv.State == backend.StateSettled {
		return &inv, nil // settlement is final; the verify URL need not be asked again
	}

	var raw json.RawMessage
	if err := c.getJSON(ctx, verify, "verify URL", &raw); err != nil {
		var se *serviceError
		if errors.As(err, &se) && strings.Contains(strings.ToLower(se.reason), "not found") {
			return nil, fmt.Errorf("lnurl: %w: verify URL for invoice %s: %s", backend.ErrNotFound, hash, se.reason)
		}
		return nil, err
	}
	settled, preimage, err := parseVerify(raw, hash, inv.PaymentRequest)
	if err != nil {
		return nil, fmt.Errorf("lnurl: %w: verify URL for invoice %s answered garbage: %v", backend.ErrInvalid, hash, err)
	}
	if !settled {
		return &inv, nil
	}
	inv.State = backend.StateSettled
	inv.Preimage = &preimage
	inv.AmountReceived = inv.Amount // LUD-21 does not say what arrived; the invoice's amount is what settles it
	inv.SettledAt = time.Now()
	c.mu.Lock()
	if rec, ok := c.invoices[hash]; ok {
		rec.inv = inv
	}
	c.mu.Unlock()
	return &inv, nil
}

// parseVerify checks a LUD-21 verify answer for the invoice pr with hash
// and returns whether it is settled, with its checked preimage.
func parseVerify(raw json.RawMessage, hash backend.PaymentHash, pr string) (bool, backend.Preimage, error) {
	var v struct {
		Status   string  `json:"status"`
		Settled  *bool   `json:"settled"`
		Preimage *string `json:"preimage"`
		PR       string  `json:"pr"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, backend.Preimage{}, fmt.Errorf("not a LUD-21 object: %v", err)
	}
	if v.Status != "" && !strings.EqualFold(v.Status, "OK") {
		return false, backend.Preimage{}, fmt.Errorf("status %q", v.Status)
	}
	if v.Settled == nil {
		return false, backend.Preimage{}, errors.New("no \"settled\" field")
	}
	if v.PR == "" {
		return false, backend.Preimage{}, errors.New("no \"pr\" field")
	}
	if !strings.EqualFold(strings.TrimSpace(v.PR), pr) {
		return false, backend.Preimage{}, errors.New("\"pr\" is another invoice")
	}
	if !*v.Settled {
		return false, backend.Preimage{}, nil
	}
	if v.Preimage == nil {
		return false, backend.Preimage{}, errors.New("settled without a preimage, so the claim cannot be checked")
	}
	p, err := backend.ParsePreimage(*v.Preimage)
	if err != nil {
		return false, backend.Preimage{}, err
	}
	if !p.Matches(hash) {
		return false, backend.Preimage{}, fmt.Errorf("preimage %s does not hash to the payment hash", p)
	}
	return true, p, nil
}

// claim keeps inv and its verify URL for lookups, unless this client
// already handed out an invoice of that payment hash (false), and now and
// then drops invoices that expired longer than Retain ago.
func (c *Client) claim(inv *backend.Invoice, verify string) bool {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.invoices[inv.PaymentHash]; dup {
		return false
	}
	c.invoices[inv.PaymentHash] = &record{inv: *inv, verify: verify}
	if now.Sub(c.prunedAt) < time.Minute {
		return true
	}
	c.prunedAt = now
	for h, r := range c.invoices {
		if !r.inv.ExpiresAt.IsZero() && now.Sub(r.inv.ExpiresAt) > c.cfg.Retain {
			delete(c.invoices, h)
		}
	}
	return true
}
