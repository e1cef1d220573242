package clnfake

import (
	"encoding/json"
	"sort"

	"github.com/l402kit/l402kit/backend"
)

// payments returns this node's payments, oldest first, filtered by the
// bolt11, payment_hash and status parameters listpays and listsendpays
// share.
func (f *Fake) payments(params json.RawMessage) ([]*payRecord, *rpcError) {
	p, rerr := bind(params, []string{"bolt11", "payment_hash", "status", "index", "start", "limit"}, 0)
	if rerr != nil {
		return nil, rerr
	}
	hash, hasHash, rerr := hash32(p, "payment_hash")
	if rerr != nil {
		return nil, rerr
	}
	status, rerr := str(p, "status")
	if rerr != nil {
		return nil, rerr
	}
	switch status {
	case "", "pending", "complete", "failed":
	default:
		return nil, paramErr("status", p["status"], "a payment status")
	}
	var byBolt11 *backend.PaymentHash
	if _, ok := p["bolt11"]; ok {
		s, rerr := str(p, "bolt11")
		if rerr != nil {
			return nil, rerr
		}
		d, err := decodeInvstring(s)
		if err != nil {
			return nil, errorf(codeInvalidParams, "Invalid bolt11: %v", err)
		}
		byBolt11 = &d.PaymentHash
	}
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	var out []*payRecord
	for h, r := range f.state.sent {
		if (hasHash && h != hash) || (byBolt11 != nil && h != *byBolt11) || (status != "" && r.status != status) {
			continue
		}
		c := *r
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].index < out[j].index })
	return out, nil
}

// listpays reports payments as doc/schemas/listpays.json: a complete one
// with preimage and amounts, a failed one with amount_sent_msat, a pending
// one with neither.
func (f *Fake) listpays(params json.RawMessage) (any, *rpcError) {
	recs, rerr := f.payments(params)
	if rerr != nil {
		return nil, rerr
	}
	pays := []map[string]any{}
	for _, r := range recs {
		e := map[string]any{
			"payment_hash":  r.hash.String(),
			"status":        r.status,
			"destination":   r.destination,
			"created_at":    r.createdAt.Unix(),
			"bolt11":        r.bolt11,
			"created_index": r.index,
		}
		switch r.status {
		case "complete":
			e["completed_at"] = r.completedAt.Unix()
			e["amount_msat"] = r.amount
			e["amount_sent_msat"] = r.sent
			e["preimage"] = r.preimage
		case "failed":
			e["amount_sent_msat"] = r.sent
		}
		pays = append(pays, e)
	}
	return map[string]any{"pays": pays}, nil
}

// listsendpays reports payment parts as doc/schemas/listsendpays.json (one
// part per payment here).
func (f *Fake) listsendpays(params json.RawMessage) (any, *rpcError) {
	recs, rerr := f.payments(params)
	if rerr != nil {
		return nil, rerr
	}
	out := []map[string]any{}
	for _, r := range recs {
		e := map[string]any{
			"created_index":    r.index,
			"id":               r.index,
			"payment_hash":     r.hash.String(),
			"groupid":          1,
			"partid":           1, // xpay's parts are numbered from 1 (injectpaymentonion's partid is nonzero)
			"destination":      r.destination,
			"amount_msat":      r.amount,
			"amount_sent_msat": r.sent,
			"created_at":       r.createdAt.Unix(),
			"status":           r.status,
			"bolt11":           r.bolt11,
		}
		if r.status == "complete" {
			e["completed_at"] = r.completedAt.Unix()
			e["payment_preimage"] = r.preimage
			e["updated_index"] = r.index
		}
		out = append(out, e)
	}
	return map[string]any{"payments": out}, nil
}
