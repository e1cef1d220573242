package nwc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/l402kit/l402kit/backend"
)

func str(p map[string]any, k string) string {
	v, _ := p[k].(string)
	return v
}

func num(p map[string]any, k string) int64 {
	switch v := p[k].(type) {
	case float64:
		return int64(v)
	case json.Number:
		n, _ := v.Int64()
		return n
	}
	return 0
}

func (s *Service) handle(c *connection, req request) (any, *responseError) {
	if !c.methods[req.Method] {
		if slices.Contains(s.served(), req.Method) {
			return nil, &responseError{CodeRestricted, "this connection may not call " + req.Method}
		}
		return nil, &responseError{CodeNotImplemented, "unknown method " + req.Method}
	}
	ctx, cancel := context.WithTimeout(s.ctx, backend.DefaultCallTimeout)
	defer cancel()
	p := req.Params
	if p == nil {
		p = map[string]any{}
	}
	switch req.Method {
	case MethodGetInfo:
		out := map[string]any{"methods": s.methodsOf(c), "notifications": []string{notifyReceived, notifyHoldAccepted}}
		if s.b.Supports(backend.AbilityInfo) {
			ni, err := s.b.Info(ctx)
			if err != nil {
				return nil, codeOf(err)
			}
			out["alias"], out["pubkey"], out["network"], out["block_height"] = ni.Alias, ni.NodeID, ni.Network, ni.BlockHeight
		}
		return out, nil
	case MethodMakeInvoice, MethodMakeHoldInvoice:
		ir := backend.InvoiceRequest{Amount: backend.MilliSat(num(p, "amount")), Expiry: time.Duration(num(p, "expiry")) * time.Second}
		desc, dh := str(p, "description"), str(p, "description_hash")
		if dh != "" {
			raw, err := hex.DecodeString(dh)
			if err != nil || len(raw) != 32 {
				return nil, &responseError{CodeOther, "description_hash is not 32 bytes of hex"}
			}
			h := [32]byte(raw)
			if desc != "" && sha256.Sum256([]byte(desc)) == h {
				ir.HashedDescription = desc
			} else {
				ir.DescriptionHash = &h
			}
		} else {
			ir.Memo = desc
		}
		var inv *backend.Invoice
		var err error
		if req.Method == MethodMakeInvoice {
			inv, err = s.b.CreateInvoice(ctx, ir)
		} else {
			h, perr := backend.ParsePaymentHash(str(p, "payment_hash"))
			if perr != nil {
				return nil, &responseError{CodeOther, "payment_hash: " + perr.Error()}
			}
			inv, err = s.b.CreateHoldInvoice(ctx, h, ir)
		}
		if err != nil {
			return nil, codeOf(err)
		}
		s.notifyOn(c, inv)
		return txOf(inv), nil
	case MethodLookupInvoice:
		hs := str(p, "payment_hash")
		if hs == "" && str(p, "invoice") != "" {
			d, err := backend.DecodeInvoice(str(p, "invoice"))
			if err != nil {
				return nil, &responseError{CodeOther, err.Error()}
			}
			hs = d.PaymentHash.String()
		}
		h, err := backend.ParsePaymentHash(hs)
		if err != nil {
			return nil, &responseError{CodeOther, "payment_hash: " + err.Error()}
		}
		inv, err := s.b.LookupInvoice(ctx, h)
		if errors.Is(err, backend.ErrNotFound) {
			s.mu.Lock()
			t := s.paid[h]
			s.mu.Unlock()
			if t != nil {
				return t, nil
			}
		}
		if err != nil {
			return nil, codeOf(err)
		}
		return txOf(inv), nil
	case MethodPayInvoice:
		return s.pay(c, p)
	case MethodSettleHoldInvoice, MethodCancelHoldInvoice:
		var h backend.PaymentHash
		var pre backend.Preimage
		if req.Method == MethodSettleHoldInvoice {
			var err error
			if pre, err = backend.ParsePreimage(str(p, "preimage")); err != nil {
				return nil, &responseError{CodeInternal, "invalid preimage format"}
			}
			h = pre.Hash()
		} else {
			var err error
			if h, err = backend.ParsePaymentHash(str(p, "payment_hash")); err != nil {
				return nil, &responseError{CodeOther, "payment_hash: " + err.Error()}
			}
		}
		inv, err := s.b.LookupInvoice(ctx, h)
		if req.Method == MethodSettleHoldInvoice && (err == nil && inv.State != backend.StateHeld || errors.Is(err, backend.ErrNotFound)) {
			// Alby Hub settles only accepted hold invoices.
			return nil, &responseError{CodeInternal, "failed to find accepted hold invoice"}
		}
		if err != nil {
			return nil, codeOf(err)
		}
		if req.Method == MethodSettleHoldInvoice {
			err = s.b.SettleInvoice(ctx, pre)
		} else {
			err = s.b.CancelInvoice(ctx, h)
		}
		if err != nil {
			return nil, codeOf(err)
		}
		return map[string]any{}, nil
	}
	return nil, &responseError{CodeNotImplemented, "unknown method " + req.Method}
}

func (s *Service) methodsOf(c *connection) []string {
	var out []string
	for _, m := range s.served() {
		if c.methods[m] {
			out = append(out, m)
		}
	}
	return out
}

// pay checks the connection's limits, pays and records the outgoing
// payment for lookup_invoice.
func (s *Service) pay(c *connection, p map[string]any) (any, *responseError) {
	bolt11 := str(p, "invoice")
	d, err := backend.DecodeInvoice(bolt11)
	if err != nil {
		return nil, &responseError{CodeOther, "invoice: " + err.Error()}
	}
	amount := d.Amount
	opts := backend.PayOptions{Timeout: s.payTO}
	if amount == 0 {
		amount = backend.MilliSat(num(p, "amount"))
		opts.Amount = amount
	}
	if rerr := c.reserve(amount); rerr != nil {
		return nil, rerr
	}
	t := &transaction{Type: "outgoing", State: "pending", Invoice: d.PaymentRequest, PaymentHash: d.PaymentHash.String(), Amount: int64(amount), CreatedAt: time.Now().Unix()}
	s.mu.Lock()
	if old := s.paid[d.PaymentHash]; old == nil || old.State != "settled" {
		s.paid[d.PaymentHash] = t
	}
	// Outgoing records answer lookup_invoice for a day, long enough for a
	// client to resolve a payment whose answer it missed.
	for h, old := range s.paid {
		if old.State != "pending" && old.CreatedAt < time.Now().Add(-paidKeep).Unix() {
			delete(s.paid, h)
		}
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.ctx, s.payTO+15*time.Second)
	defer cancel()
	pm, err := s.b.PayInvoice(ctx, bolt11, opts)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		c.charge(pm.Fee)
		t.State, t.Preimage, t.FeesPaid, t.SettledAt = "settled", pm.Preimage.String(), int64(pm.Fee), time.Now().Unix()
		return map[string]any{"preimage": pm.Preimage.String(), "fees_paid": int64(pm.Fee)}, nil
	case errors.Is(err, backend.ErrPaymentUnknown):
		// Still pending: the budget stays reserved.
	default:
		c.charge(-amount)
		t.State = "failed"
	}
	// Alby Hub answers every payment error with INTERNAL and the node's text.
	return nil, &responseError{CodeInternal, err.Error()}
}

// reserve takes amount from the connection's limits or refuses with
// QUOTA_EXCEEDED.
func (c *connection) reserve(amount backend.MilliSat) *responseError {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.perm.MaxPayment > 0 && amount > c.perm.MaxPayment {
		return &responseError{CodeQuotaExceeded, fmt.Sprintf("payment of %s is over this connection's limit of %s", amount, c.perm.MaxPayment)}
	}
	if c.perm.Budget > 0 {
		if now := time.Now(); now.Sub(c.periodStart) >= c.perm.BudgetPeriod {
			c.periodStart, c.spent = now, 0
		}
		if c.spent+amount > c.perm.Budget {
			return &responseError{CodeQuotaExceeded, fmt.Sprintf("payment of %s would exceed this connection's budget (%s of %s spent this period)", amount, c.spent, c.perm.Budget)}
		}
	}
	c.spent += amount
	return nil
}

func (c *connection) charge(m backend.MilliSat) {
	c.mu.Lock()
	c.spent += m
	c.mu.Unlock()
}

func txOf(inv *backend.Invoice) *transaction {
	t := &transaction{
		Type:        "incoming",
		Invoice:     inv.PaymentRequest,
		Description: inv.Memo,
		PaymentHash: inv.PaymentHash.String(),
		Amount:      int64(inv.Amount),
		CreatedAt:   inv.CreatedAt.Unix(),
		ExpiresAt:   inv.ExpiresAt.Unix(),
	}
	switch inv.State {
	case backend.StateSettled:
		t.State, t.SettledAt = "settled", inv.SettledAt.Unix()
		if inv.AmountReceived > 0 {
			t.Amount = int64(inv.AmountReceived)
		}
	case backend.StateHeld:
		t.State = "accepted"
	case backend.StateCanceled:
		t.State = "failed"
	default:
		t.State = "pending"
		if inv.Expired(time.Now()) {
			t.State = "expired"
		}
	}
	if inv.Preimage != nil && inv.State == backend.StateSettled {
		t.Preimage = inv.Preimage.String()
	}
	return t
}
