package clnfake

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// The hold plugin's methods. cln_plugin reports every error of a plugin
// method with code -32700 and the error chain as the message.

// naiveTime writes t as the plugin does: chrono's NaiveDateTime in UTC.
func naiveTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000")
}

func (f *Fake) holdinvoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"payment_hash", "amount"}, 2)
	if rerr != nil {
		return nil, errorf(codePluginError, "%s", rerr.Message)
	}
	var hashHex string
	var amount uint64
	if json.Unmarshal(p["payment_hash"], &hashHex) != nil || json.Unmarshal(p["amount"], &amount) != nil {
		return nil, errorf(codePluginError, "could not parse request")
	}
	raw, err := hex.DecodeString(hashHex)
	if err != nil {
		return nil, errorf(codePluginError, "%v", err)
	}
	var hash backend.PaymentHash
	if len(raw) != len(hash) {
		return nil, errorf(codePluginError, "invalid payment hash length %d", len(raw))
	}
	copy(hash[:], raw)
	inv, err := f.b.CreateHoldInvoice(ctx, hash, backend.InvoiceRequest{
		Amount: backend.MilliSat(amount),
		Expiry: time.Hour, // lightning-invoice's DEFAULT_EXPIRY_TIME
	})
	switch {
	case errors.Is(err, backend.ErrAlreadyExists):
		return nil, errorf(codePluginError, "UNIQUE constraint failed: invoices.payment_hash")
	case err != nil:
		return nil, errorf(codePluginError, "%v", err)
	}
	f.state.mu.Lock()
	f.state.holds[hash] = int64(len(f.state.holds) + 1)
	f.state.mu.Unlock()
	return map[string]any{"bolt11": inv.PaymentRequest}, nil
}

func (f *Fake) holdEntry(id int64, inv *backend.Invoice) map[string]any {
	state := map[backend.State]string{
		backend.StateOpen: "unpaid", backend.StateHeld: "accepted",
		backend.StateSettled: "paid", backend.StateCanceled: "cancelled",
	}[inv.State]
	out := map[string]any{
		"id":           id,
		"payment_hash": inv.PaymentHash.String(),
		"invoice":      inv.PaymentRequest,
		"state":        state,
		"created_at":   naiveTime(inv.CreatedAt),
		"htlcs":        []any{},
	}
	if inv.Preimage != nil {
		out["preimage"] = inv.Preimage.String()
	}
	if inv.State == backend.StateSettled {
		out["settled_at"] = naiveTime(inv.SettledAt)
	}
	if inv.AmountReceived > 0 && (inv.State == backend.StateHeld || inv.State == backend.StateSettled) {
		htlcState := "accepted"
		if inv.State == backend.StateSettled {
			htlcState = "paid"
		}
		out["htlcs"] = []any{map[string]any{
			"id": id, "invoice_id": id, "state": htlcState, "scid": "103x1x0", "channel_id": 1,
			"msat": int64(inv.AmountReceived), "cltv_expiry": 200, "created_at": naiveTime(inv.CreatedAt),
		}}
	}
	return out
}

func (f *Fake) listholdinvoices(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"payment_hash", "invoice"}, 0)
	if rerr != nil {
		return nil, errorf(codePluginError, "%s", rerr.Message)
	}
	_, hasHash := p["payment_hash"]
	_, hasInv := p["invoice"]
	if hasHash && hasInv {
		return nil, errorf(codePluginError, "too many parameters")
	}
	type item struct {
		id   int64
		hash backend.PaymentHash
	}
	var want []item
	f.state.mu.Lock()
	switch {
	case hasHash || hasInv:
		var hash backend.PaymentHash
		var s string
		if hasHash {
			if json.Unmarshal(p["payment_hash"], &s) != nil {
				f.state.mu.Unlock()
				return nil, errorf(codePluginError, "could not parse request")
			}
			raw, err := hex.DecodeString(s)
			if err != nil || len(raw) != 32 {
				f.state.mu.Unlock()
				return nil, errorf(codePluginError, "invalid payment hash")
			}
			copy(hash[:], raw)
		} else {
			if json.Unmarshal(p["invoice"], &s) != nil {
				f.state.mu.Unlock()
				return nil, errorf(codePluginError, "could not parse request")
			}
			d, err := backend.DecodeInvoice(s)
			if err != nil {
				f.state.mu.Unlock()
				return nil, errorf(codePluginError, "%v", err)
			}
			hash = d.PaymentHash
		}
		if id, ok := f.state.holds[hash]; ok {
			want = append(want, item{id, hash})
		}
	default:
		for h, id := range f.state.holds {
			want = append(want, item{id, h})
		}
		sort.Slice(want, func(i, j int) bool { return want[i].id < want[j].id })
	}
	f.state.mu.Unlock()
	out := []map[string]any{}
	for _, it := range want {
		inv, err := f.b.LookupInvoice(ctx, it.hash)
		if err != nil {
			return nil, errorf(codePluginError, "%v", err)
		}
		out = append(out, f.holdEntry(it.id, inv))
	}
	return map[string]any{"holdinvoices": out}, nil
}

func (f *Fake) isHold(hash backend.PaymentHash) bool {
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	_, ok := f.state.holds[hash]
	return ok
}

func (f *Fake) settleholdinvoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"preimage"}, 1)
	if rerr != nil {
		return nil, errorf(codePluginError, "too few parameters")
	}
	var s string
	if json.Unmarshal(p["preimage"], &s) != nil {
		return nil, errorf(codePluginError, "could not parse request")
	}
	pre, err := backend.ParsePreimage(s)
	if err != nil {
		return nil, errorf(codePluginError, "%v", err)
	}
	if !f.isHold(pre.Hash()) {
		return nil, errorf(codePluginError, "invoice not found")
	}
	err = f.b.SettleInvoice(ctx, pre)
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return nil, errorf(codePluginError, "invoice not found")
	case errors.Is(err, backend.ErrInvalid):
		return nil, errorf(codePluginError, "no HTLCs to settle")
	case err != nil:
		return nil, errorf(codePluginError, "%v", err)
	}
	return map[string]any{}, nil
}

func (f *Fake) cancelholdinvoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"payment_hash"}, 1)
	if rerr != nil {
		return nil, errorf(codePluginError, "too few parameters")
	}
	var s string
	if json.Unmarshal(p["payment_hash"], &s) != nil {
		return nil, errorf(codePluginError, "could not parse request")
	}
	hash, err := backend.ParsePaymentHash(s)
	if err != nil {
		return nil, errorf(codePluginError, "%v", err)
	}
	if !f.isHold(hash) {
		return nil, errorf(codePluginError, "invoice not found")
	}
	err = f.b.CancelInvoice(ctx, hash)
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return nil, errorf(codePluginError, "invoice not found")
	case errors.Is(err, backend.ErrInvalid):
		return nil, errorf(codePluginError, "state paid is final")
	case err != nil:
		return nil, errorf(codePluginError, "%v", err)
	}
	return map[string]any{}, nil
}

// signinvoice signs an invoice as the node. The memory node signs only
// invoices it keeps, so here (unlike lightningd, which keeps nothing) the
// invoice is registered with the memory node as a hold invoice with the
// same hash, amount, description (or hash) and expiry, and the memory
// node's BOLT11 comes back: same fields, the node's own timestamp and
// payment secret. (A real node would refuse payments to it until
// injectholdinvoice hands it to the plugin; the memory node cannot tell, so
// tests must not rely on that refusal.) A hash the node already has gives back that invoice, so the
// plugin's duplicate check (at injection) is where a duplicate fails, as
// with the real plugin. The fake checks the signature it is given, which
// lightningd ignores.
func (f *Fake) signinvoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"invstring"}, 1)
	if rerr != nil {
		return nil, rerr
	}
	s, rerr := str(p, "invstring")
	if rerr != nil {
		return nil, rerr
	}
	d, err := decodeInvstring(s)
	if err != nil {
		return nil, errorf(codeInvalidParams, "Unparsable invoice '%s': %v", s, err)
	}
	if existing, err := f.b.LookupInvoice(ctx, d.PaymentHash); err == nil {
		return map[string]any{"bolt11": existing.PaymentRequest}, nil
	}
	inv, err := f.b.CreateHoldInvoice(ctx, d.PaymentHash, backend.InvoiceRequest{
		Amount:          d.Amount,
		Memo:            d.Memo,
		DescriptionHash: d.DescriptionHash,
		Expiry:          d.Expiry,
	})
	if err != nil {
		return nil, nodeError(err)
	}
	f.state.mu.Lock()
	f.state.signed[inv.PaymentRequest] = inv.PaymentHash
	f.state.mu.Unlock()
	return map[string]any{"bolt11": inv.PaymentRequest}, nil
}

// injectholdinvoice is the plugin's: it takes an invoice the node signed.
func (f *Fake) injectholdinvoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"invoice", "min_cltv"}, 1)
	if rerr != nil {
		return nil, errorf(codePluginError, "%s", rerr.Message)
	}
	var s string
	if json.Unmarshal(p["invoice"], &s) != nil {
		return nil, errorf(codePluginError, "could not parse request")
	}
	d, err := backend.DecodeInvoice(s)
	if err != nil {
		return nil, errorf(codePluginError, "%v", err)
	}
	if d.Payee != f.node.NodeID() {
		return nil, errorf(codePluginError, "invoice is not related to us")
	}
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	if _, dup := f.state.holds[d.PaymentHash]; dup {
		return nil, errorf(codePluginError, "UNIQUE constraint failed: invoices.payment_hash")
	}
	if _, plain := f.state.byHash[d.PaymentHash]; plain {
		return nil, errorf(codePluginError, "UNIQUE constraint failed: invoices.payment_hash")
	}
	if f.state.signed[s] != d.PaymentHash {
		return nil, errorf(codePluginError, "clnfake: invoice was not signed by this node's signinvoice")
	}
	delete(f.state.signed, s)
	f.state.holds[d.PaymentHash] = int64(len(f.state.holds) + 1)
	return map[string]any{}, nil
}
