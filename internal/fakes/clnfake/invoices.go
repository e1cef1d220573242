package clnfake

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt11"
)

// record is what lightningd keeps about an invoice beyond what the memory
// node knows: its label and indexes.
type record struct {
	label        string
	description  string // as given, also when only its hash is in the invoice
	hash         backend.PaymentHash
	createdIndex uint64
	payIndex     uint64 // set when the invoice is first seen paid
	updatedIndex uint64
}

// ledger is the fake's own invoice table.
type ledger struct {
	mu           sync.Mutex
	byLabel      map[string]*record
	byHash       map[backend.PaymentHash]*record
	holds        map[backend.PaymentHash]int64      // hold invoice id by hash
	signed       map[string]backend.PaymentHash     // signinvoice output not yet injected
	sent         map[backend.PaymentHash]*payRecord // this node's payments, as listpays and listsendpays report them
	sentIndex    uint64
	fault        *PayFault // what the next xpay or pay answers instead (FailNextPay)
	calls        map[string]int
	createdIndex uint64
	payIndex     uint64
	updatedIndex uint64
}

func newLedger() *ledger {
	return &ledger{
		byLabel: map[string]*record{},
		byHash:  map[backend.PaymentHash]*record{},
		holds:   map[backend.PaymentHash]int64{},
		signed:  map[string]backend.PaymentHash{},
		sent:    map[backend.PaymentHash]*payRecord{},
		calls:   map[string]int{},
	}
}

func (f *Fake) invoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"amount_msat", "label", "description", "expiry", "fallbacks", "preimage", "exposeprivatechannels", "cltv", "deschashonly"}, 3)
	if rerr != nil {
		return nil, rerr
	}
	amount, _, _, rerr := msat(p, "amount_msat", true)
	if rerr != nil {
		return nil, rerr
	}
	lbl, rerr := label(p, "label")
	if rerr != nil {
		return nil, rerr
	}
	desc, rerr := escapedString(p, "description")
	if rerr != nil {
		return nil, rerr
	}
	expiry, hasExpiry, rerr := u64(p, "expiry")
	if rerr != nil {
		return nil, rerr
	}
	if !hasExpiry {
		expiry = 604800 // lightningd's default: one week
	}
	hashOnly, rerr := boolean(p, "deschashonly")
	if rerr != nil {
		return nil, rerr
	}
	if len(lbl) > 128 {
		return nil, errorf(codeInvalidParams, "Label '%s' over 128 bytes", lbl)
	}
	if len(desc) > 639 && !hashOnly {
		return nil, errorf(codeInvalidParams, "Description greater than 639 bytes invalid (description length %d)", len(desc))
	}
	req := backend.InvoiceRequest{
		Amount: backend.MilliSat(amount),
		Memo:   desc,
		Expiry: time.Duration(expiry) * time.Second,
	}
	if hashOnly {
		// The invoice commits to sha256(description) (field h); the
		// text is what listinvoices shows.
		req.Memo, req.HashedDescription = "", desc
	}
	if _, ok := p["preimage"]; ok {
		s, rerr := str(p, "preimage")
		if rerr != nil {
			return nil, rerr
		}
		pre, err := backend.ParsePreimage(s)
		if err != nil {
			return nil, paramErr("preimage", p["preimage"], "a 32 byte hex value")
		}
		req.Preimage = &pre
	}

	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	if _, dup := f.state.byLabel[lbl]; dup {
		return nil, errorf(codeLabelExists, "Duplicate label '%s'", lbl)
	}
	if req.Preimage != nil {
		if _, dup := f.state.byHash[req.Preimage.Hash()]; dup {
			return nil, errorf(codePreimageExists, "preimage already used")
		}
	}
	inv, err := f.b.CreateInvoice(ctx, req)
	switch {
	case errors.Is(err, backend.ErrAlreadyExists):
		return nil, errorf(codePreimageExists, "preimage already used")
	case errors.Is(err, backend.ErrInvalid):
		return nil, errorf(codeInvalidParams, "%v", err)
	case err != nil:
		return nil, nodeError(err)
	}
	f.state.createdIndex++
	r := &record{label: lbl, description: desc, hash: inv.PaymentHash, createdIndex: f.state.createdIndex}
	f.state.byLabel[lbl] = r
	f.state.byHash[inv.PaymentHash] = r
	secret, err := paymentSecret(inv.PaymentRequest)
	if err != nil {
		return nil, nodeError(err)
	}
	return map[string]any{
		"payment_hash":   inv.PaymentHash.String(),
		"expires_at":     inv.ExpiresAt.Unix(),
		"bolt11":         inv.PaymentRequest,
		"payment_secret": secret,
		"created_index":  r.createdIndex,
	}, nil
}

// decodeInvstring reads an invoice string parameter as lightningd's
// to_canonical_invstr does: a "lightning:" or "LIGHTNING:" scheme is
// dropped and case ignored, but nothing else, surrounding whitespace
// included, is forgiven.
func decodeInvstring(s string) (*backend.DecodedInvoice, error) {
	for _, scheme := range []string{"lightning:", "LIGHTNING:"} {
		if rest, ok := strings.CutPrefix(s, scheme); ok {
			s = rest
			break
		}
	}
	if _, err := bolt11.Decode(s); err != nil {
		return nil, err
	}
	return backend.DecodeInvoice(s)
}

// paymentSecret reads the payment secret (BOLT11 field s) from an invoice.
func paymentSecret(s string) (string, error) {
	inv, err := bolt11.Decode(s)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(inv.PaymentSecret[:]), nil
}

// fields renders an invoice as listinvoices and waitinvoice do. The
// ledger's lock must be held.
func (f *Fake) fields(r *record, inv *backend.Invoice) map[string]any {
	out := map[string]any{
		"label":         r.label,
		"bolt11":        inv.PaymentRequest,
		"payment_hash":  inv.PaymentHash.String(),
		"description":   r.description,
		"expires_at":    inv.ExpiresAt.Unix(),
		"created_index": r.createdIndex,
	}
	if inv.Amount > 0 {
		out["amount_msat"] = int64(inv.Amount)
	}
	switch {
	case inv.State == backend.StateSettled:
		if r.payIndex == 0 {
			f.state.payIndex++
			f.state.updatedIndex++
			r.payIndex, r.updatedIndex = f.state.payIndex, f.state.updatedIndex
		}
		out["status"] = "paid"
		out["pay_index"] = r.payIndex
		out["amount_received_msat"] = int64(inv.AmountReceived)
		out["paid_at"] = inv.SettledAt.Unix()
		if inv.Preimage != nil {
			out["payment_preimage"] = inv.Preimage.String()
		}
	case inv.Expired(time.Now()) || inv.State == backend.StateCanceled:
		out["status"] = "expired"
	default:
		out["status"] = "unpaid"
	}
	if r.updatedIndex != 0 {
		out["updated_index"] = r.updatedIndex
	}
	return out
}

func (f *Fake) listinvoices(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"label", "invstring", "payment_hash", "offer_id", "index", "start", "limit"}, 0)
	if rerr != nil {
		return nil, rerr
	}
	if p["offer_id"] != nil {
		id, _, rerr := hash32(p, "offer_id")
		if rerr != nil {
			return nil, rerr
		}
		invs, rerr := f.offerInvoices(id.String())
		if rerr != nil {
			return nil, rerr
		}
		return map[string]any{"invoices": invs}, nil
	}
	var want []*record
	f.state.mu.Lock()
	switch {
	case p["label"] != nil:
		lbl, rerr := label(p, "label")
		if rerr != nil {
			f.state.mu.Unlock()
			return nil, rerr
		}
		if r, ok := f.state.byLabel[lbl]; ok {
			want = append(want, r)
		}
	case p["payment_hash"] != nil:
		h, _, rerr := hash32(p, "payment_hash")
		if rerr != nil {
			f.state.mu.Unlock()
			return nil, rerr
		}
		if r, ok := f.state.byHash[h]; ok {
			want = append(want, r)
		} else if e, rerr := f.offerInvoiceByHash(ctx, h); rerr != nil || e != nil {
			f.state.mu.Unlock()
			if rerr != nil {
				return nil, rerr
			}
			return map[string]any{"invoices": []map[string]any{e}}, nil
		}
	case p["invstring"] != nil:
		s, rerr := str(p, "invstring")
		if rerr != nil {
			f.state.mu.Unlock()
			return nil, rerr
		}
		d, err := decodeInvstring(s)
		if err != nil {
			f.state.mu.Unlock()
			return nil, paramErr("invstring", p["invstring"], "a bolt11 or bolt12 string")
		}
		if r, ok := f.state.byHash[d.PaymentHash]; ok {
			want = append(want, r)
		}
	default:
		for _, r := range f.state.byLabel {
			want = append(want, r)
		}
		sort.Slice(want, func(i, j int) bool { return want[i].createdIndex < want[j].createdIndex })
	}
	f.state.mu.Unlock()

	out := []map[string]any{}
	for _, r := range want {
		inv, err := f.b.LookupInvoice(ctx, r.hash)
		if err != nil {
			return nil, nodeError(err)
		}
		f.state.mu.Lock()
		out = append(out, f.fields(r, inv))
		f.state.mu.Unlock()
	}
	return map[string]any{"invoices": out}, nil
}

func (f *Fake) waitinvoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"label"}, 1)
	if rerr != nil {
		return nil, rerr
	}
	lbl, rerr := label(p, "label")
	if rerr != nil {
		return nil, rerr
	}
	f.state.mu.Lock()
	r, ok := f.state.byLabel[lbl]
	f.state.mu.Unlock()
	if !ok {
		return nil, errorf(codeLightningd, "Label not found")
	}
	f.waiting.Add(1)
	inv, err := f.b.WaitInvoice(ctx, r.hash)
	f.waiting.Add(-1)
	if err != nil {
		return nil, nodeError(err)
	}
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	fl := f.fields(r, inv)
	if fl["status"] == "paid" {
		return fl, nil
	}
	// lightningd's tell_waiter: the error's data is the invoice.
	return nil, &rpcError{Code: codeExpiredDuringWait, Message: "invoice expired during wait", Data: fl}
}

// createinvoice stores an invoice the caller encoded, with its preimage,
// refusing what lightningd refuses: an invoice for another network, one
// without a description (d; a description hash alone is "Missing
// description in invoice"), one whose expiry is zero, a preimage that does
// not hash to its payment hash. The memory node makes its own BOLT11 with
// the same hash, amount, description and expiry; that string is returned
// where lightningd would return the caller's invoice with its signature.
func (f *Fake) createinvoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"invstring", "label", "preimage"}, 3)
	if rerr != nil {
		return nil, rerr
	}
	s, rerr := str(p, "invstring")
	if rerr != nil {
		return nil, rerr
	}
	lbl, rerr := label(p, "label")
	if rerr != nil {
		return nil, rerr
	}
	ps, rerr := str(p, "preimage")
	if rerr != nil {
		return nil, rerr
	}
	pre, err := backend.ParsePreimage(ps)
	if err != nil {
		return nil, paramErr("preimage", p["preimage"], "a 32 byte hex value")
	}
	d, err := decodeInvstring(s)
	if err == nil {
		var info *backend.NodeInfo
		if info, err = f.node.Info(ctx); err == nil && d.Network != info.Network {
			err = fmt.Errorf("invoice is for %s, the node is on %s", d.Network, info.Network)
		}
	}
	if err != nil {
		return nil, errorf(codeInvalidParams, "Unparsable invoice '%s': %v", s, err)
	}
	// lightningd stores the description it finds in the invoice (field
	// d); one with only a description hash (h) has none to store.
	switch {
	case d.DescriptionHash != nil:
		return nil, errorf(codeInvalidParams, "Missing description in invoice")
	case d.Expiry == 0:
		return nil, errorf(codeInvalidParams, "Missing expiry in invoice")
	case d.PaymentHash != pre.Hash():
		return nil, errorf(codeInvalidParams, "Incorrect preimage")
	}
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	if _, dup := f.state.byLabel[lbl]; dup {
		return nil, errorf(codeLabelExists, "Duplicate label '%s'", lbl)
	}
	if _, dup := f.state.byHash[pre.Hash()]; dup {
		return nil, errorf(codePreimageExists, "preimage already used")
	}
	inv, err := f.b.CreateInvoice(ctx, backend.InvoiceRequest{
		Amount:   d.Amount,
		Memo:     d.Memo,
		Expiry:   d.Expiry,
		Preimage: &pre,
	})
	switch {
	case errors.Is(err, backend.ErrAlreadyExists):
		return nil, errorf(codePreimageExists, "preimage already used")
	case err != nil:
		return nil, nodeError(err)
	}
	f.state.createdIndex++
	r := &record{label: lbl, description: d.Memo, hash: inv.PaymentHash, createdIndex: f.state.createdIndex}
	f.state.byLabel[lbl] = r
	f.state.byHash[inv.PaymentHash] = r
	return f.fields(r, inv), nil
}
