package clnfake

// Offers, as Core Lightning v26.06.6 (commit
// 9f7baf66e1e6b421c0c81a3c3f7c307f8e78a911) has them, on by default since
// v24.11 ("plugins: don't check for experimental-offers option: it's the
// default now", 46b0eb108): offer (plugins/offers_offer.c json_offer and
// lightningd/offer.c json_createoffer), listoffers and disableoffer
// (lightningd/offer.c), fetchinvoice (plugins/fetchinvoice.c), xpay and
// pay of a BOLT12 invoice (plugins/xpay/xpay.c xpay_core), listinvoices by
// offer_id; fields and error codes from doc/schemas and
// common/jsonrpc_errors.h. The memory node is the issuer: its offers and
// invoices are real BOLT12 encodings (package bolt12), and an invoice
// request reaches the issuer in process (Config.Route's node, or the
// fake's own) instead of by onion message.

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt12"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
)

// Offer error codes (common/jsonrpc_errors.h).
const (
	codeOfferAlreadyDisabled = 1001
	codeOfferExpired         = 1002
	codeOfferRouteNotFound   = 1003
	codeOfferBadInvreqReply  = 1004
)

// offerUsage is help's text for the offer methods, present from v24.11.
func (f *Fake) offerUsage() map[string]string {
	if !f.release.atLeast(24, 11) {
		return nil
	}
	return map[string]string{
		"offer":        "offer amount [description] [issuer] [label] [quantity_max] [absolute_expiry] [recurrence] [recurrence_base] [recurrence_paywindow] [recurrence_limit] [single_use] [proportional_amount] [optional_recurrence] [fronting_nodes]",
		"listoffers":   "listoffers [offer_id] [active_only]",
		"disableoffer": "disableoffer offer_id",
		"fetchinvoice": "fetchinvoice offer [amount_msat] [quantity] [recurrence_counter] [recurrence_start] [recurrence_label] [timeout] [payer_note] [payer_metadata] [bip353]",
	}
}

// routeNode is the memory node payments and invoice requests go to.
func (f *Fake) routeNode() *memnode.Node {
	if f.cfg.Route != nil {
		return f.cfg.Route
	}
	return f.node
}

// payThrough pays a BOLT11 or BOLT12 invoice through the route.
func (f *Fake) payThrough(ctx context.Context, invoice string, opts backend.PayOptions) (*backend.Payment, error) {
	if !isBolt12Invoice(invoice) {
		return f.route.PayInvoice(ctx, invoice, opts)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	return f.routeNode().PayBolt12Invoice(ctx, invoice)
}

func isBolt12Invoice(s string) bool { return strings.HasPrefix(strings.ToLower(s), "lni1") }

// decodeBolt12 reads a BOLT12 invoice as xpay_core does, into the fields
// the paying code shares with BOLT11.
func decodeBolt12(s string) (*backend.DecodedInvoice, *rpcError) {
	inv, err := bolt12.DecodeInvoice(s)
	if err != nil {
		return nil, errorf(codeInvalidParams, "Invalid bolt12 invoice: %v", err)
	}
	if inv.Amount == 0 {
		return nil, errorf(codeInvalidParams, "Invalid bolt12 invoice with zero amount")
	}
	return &backend.DecodedInvoice{
		PaymentRequest: s, PaymentHash: backend.PaymentHash(inv.PaymentHash), Amount: backend.MilliSat(inv.Amount),
		Memo: inv.Description, Payee: strings.ToLower(hexString(inv.NodeID)), CreatedAt: inv.CreatedAt, Expiry: inv.RelativeExpiry,
	}, nil
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// offerJSON is an offer as offer, listoffers and disableoffer write it
// (lightningd/offer.c json_populate_offer).
func offerJSON(o *backend.Offer) map[string]any {
	out := map[string]any{
		"offer_id":    o.ID,
		"active":      o.Active,
		"single_use":  false,
		"bolt12":      o.Bolt12,
		"force_paths": false,
		"used":        false,
	}
	if o.Description != "" {
		out["description"] = o.Description
	}
	return out
}

// offer makes an offer (json_offer): amount "any" or msat; a description is
// required with an amount.
func (f *Fake) offer(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"amount", "description", "issuer", "label", "quantity_max", "absolute_expiry",
		"recurrence", "recurrence_base", "recurrence_paywindow", "recurrence_limit", "single_use",
		"proportional_amount", "optional_recurrence", "fronting_nodes"}, 1)
	if rerr != nil {
		return nil, rerr
	}
	for _, unmodelled := range []string{"quantity_max", "recurrence", "recurrence_base", "recurrence_paywindow", "recurrence_limit", "fronting_nodes"} {
		if _, ok := p[unmodelled]; ok {
			return nil, errorf(codeInvalidParams, "clnfake: %s is not modelled", unmodelled)
		}
	}
	if single, rerr := boolean(p, "single_use"); rerr != nil || single {
		if rerr != nil {
			return nil, rerr
		}
		return nil, errorf(codeInvalidParams, "clnfake: single_use is not modelled")
	}
	amount, anyAmount, _, rerr := msat(p, "amount", true)
	if rerr != nil {
		return nil, errorf(codeInvalidParams, "amount: should be 'any', msatoshis or <amount>[.<amount>]<ISO-4217>: invalid token '%s'", strings.Trim(string(p["amount"]), `"`))
	}
	desc, rerr := escapedString(p, "description")
	if _, ok := p["description"]; !ok {
		desc, rerr = "", nil
	}
	if rerr != nil {
		return nil, rerr
	}
	issuer := ""
	if _, ok := p["issuer"]; ok {
		if issuer, rerr = escapedString(p, "issuer"); rerr != nil {
			return nil, rerr
		}
	}
	if !anyAmount && amount > 0 && desc == "" {
		return nil, errorf(codeInvalidParams, "description: description is required for the user to know what it was they paid for: invalid token '%s'", string(params))
	}
	req := backend.OfferRequest{Description: desc, Issuer: issuer}
	if !anyAmount {
		req.Amount = backend.MilliSat(amount)
	}
	if abs, ok, rerr := u64(p, "absolute_expiry"); rerr != nil {
		return nil, rerr
	} else if ok {
		req.Expiry = time.Until(time.Unix(int64(abs), 0))
		if req.Expiry < time.Second {
			req.Expiry = time.Second
		}
	}
	o, err := f.node.CreateOffer(ctx, req)
	switch {
	case errors.Is(err, backend.ErrAlreadyExists):
		return nil, errorf(1000, "Offer already exists, but isn't active")
	case err != nil:
		return nil, nodeError(err)
	}
	out := offerJSON(o)
	delete(out, "description")
	out["created"] = true
	return out, nil
}

func (f *Fake) listoffers(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"offer_id", "active_only"}, 0)
	if rerr != nil {
		return nil, rerr
	}
	id, hasID, rerr := hash32(p, "offer_id")
	if rerr != nil {
		return nil, rerr
	}
	activeOnly, rerr := boolean(p, "active_only")
	if rerr != nil {
		return nil, rerr
	}
	offs, err := f.node.ListOffers(ctx)
	if err != nil {
		return nil, nodeError(err)
	}
	out := []map[string]any{}
	for _, o := range offs {
		if (hasID && o.ID != id.String()) || (activeOnly && !o.Active) {
			continue
		}
		out = append(out, offerJSON(o))
	}
	return map[string]any{"offers": out}, nil
}

func (f *Fake) disableoffer(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"offer_id"}, 1)
	if rerr != nil {
		return nil, rerr
	}
	id, _, rerr := hash32(p, "offer_id")
	if rerr != nil {
		return nil, rerr
	}
	o, err := f.node.LookupOffer(id.String())
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return nil, errorf(codeLightningd, "Unknown offer")
	case err != nil:
		return nil, nodeError(err)
	case !o.Active:
		return nil, errorf(codeOfferAlreadyDisabled, "offer is not active")
	}
	if err := f.node.DisableOffer(ctx, o.ID); err != nil {
		return nil, nodeError(err)
	}
	o.Active = false
	return offerJSON(o), nil
}

// fetchinvoice asks the offer's issuer for an invoice (plugins/fetchinvoice.c
// json_fetchinvoice): an expired offer is 1002 before anything is sent, an
// issuer that cannot be reached 1003, an issuer's invoice_error (a disabled
// or unknown offer) 1004.
func (f *Fake) fetchinvoice(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, []string{"offer", "amount_msat", "quantity", "recurrence_counter", "recurrence_start",
		"recurrence_label", "timeout", "payer_note", "payer_metadata", "bip353"}, 1)
	if rerr != nil {
		return nil, rerr
	}
	s, rerr := str(p, "offer")
	if rerr != nil {
		return nil, rerr
	}
	o, err := bolt12.DecodeOffer(s)
	if err != nil {
		return nil, errorf(codeInvalidParams, "offer: Unparsable offer: %v", err)
	}
	amount, _, hasAmount, rerr := msat(p, "amount_msat", false)
	if rerr != nil {
		return nil, rerr
	}
	switch {
	case o.Amount == 0 && !hasAmount:
		return nil, errorf(codeInvalidParams, "amount_msat: Offer has no amount, so amount_msat is required")
	case o.Amount != 0 && hasAmount && uint64(amount) < o.Amount:
		return nil, errorf(codeInvalidParams, "amount_msat: Amount must be at least %dmsat", o.Amount)
	}
	if _, ok := p["quantity"]; ok || o.QuantityMax != nil {
		return nil, errorf(codeInvalidParams, "clnfake: quantity is not modelled")
	}
	if _, _, rerr := u64(p, "timeout"); rerr != nil {
		return nil, rerr
	}
	note := ""
	if _, ok := p["payer_note"]; ok {
		if note, rerr = str(p, "payer_note"); rerr != nil {
			return nil, rerr
		}
	}
	if o.Expired(time.Now()) {
		return nil, errorf(codeOfferExpired, "Offer expired")
	}
	issuer := f.routeNode()
	req, err := issuer.NewInvoiceRequest(s, backend.MilliSat(amount), note)
	if err != nil {
		return nil, nodeError(err)
	}
	inv, err := issuer.InvoiceForOffer(req)
	switch {
	case err != nil && strings.Contains(err.Error(), "no route"):
		return nil, errorf(codeOfferRouteNotFound, "Failed: could not route or connect directly to %s: %v", hexString(o.IssuerID), err)
	case errors.Is(err, backend.ErrPaymentFailed) || errors.Is(err, backend.ErrInvalid):
		return nil, &rpcError{Code: codeOfferBadInvreqReply, Message: "Remote node sent failure message",
			Data: map[string]any{"invoice_request": req, "invoice_error": strconv.Quote(err.Error())}}
	case err != nil:
		return nil, nodeError(err)
	}
	return map[string]any{"invoice": inv, "changes": map[string]any{}}, nil
}

// offerInvoiceByHash is the listinvoices entry of the offer invoice with
// that hash, or nil when the node made none.
func (f *Fake) offerInvoiceByHash(ctx context.Context, h backend.PaymentHash) (map[string]any, *rpcError) {
	inv, err := f.node.LookupInvoice(ctx, h)
	if err != nil || !strings.HasPrefix(inv.PaymentRequest, "lni1") {
		return nil, nil
	}
	offs, err := f.node.ListOffers(ctx)
	if err != nil {
		return nil, nodeError(err)
	}
	for _, o := range offs {
		es, rerr := f.offerInvoices(o.ID)
		if rerr != nil {
			return nil, rerr
		}
		for _, e := range es {
			if e["payment_hash"] == h.String() {
				return e, nil
			}
		}
	}
	return nil, nil
}

// offerInvoices lists the invoices of an offer as listinvoices does
// (offer_id filter): the BOLT12 string, local_offer_id, status.
func (f *Fake) offerInvoices(id string) ([]map[string]any, *rpcError) {
	invs, err := f.node.OfferInvoices(id)
	if errors.Is(err, backend.ErrNotFound) {
		return []map[string]any{}, nil
	}
	if err != nil {
		return nil, nodeError(err)
	}
	out := []map[string]any{}
	for i, inv := range invs {
		e := map[string]any{
			"label":          "clnfake-offer-" + id[:8] + "-" + strconv.Itoa(i),
			"bolt12":         inv.PaymentRequest,
			"payment_hash":   inv.PaymentHash.String(),
			"amount_msat":    int64(inv.Amount),
			"description":    inv.Memo,
			"expires_at":     inv.ExpiresAt.Unix(),
			"local_offer_id": id,
			"created_index":  i + 1,
		}
		switch {
		case inv.State == backend.StateSettled:
			e["status"] = "paid"
			e["amount_received_msat"] = int64(inv.AmountReceived)
			e["paid_at"] = inv.SettledAt.Unix()
			e["payment_preimage"] = inv.Preimage.String()
			e["pay_index"] = i + 1
		case inv.Expired(time.Now()):
			e["status"] = "expired"
		default:
			e["status"] = "unpaid"
		}
		out = append(out, e)
	}
	return out, nil
}
