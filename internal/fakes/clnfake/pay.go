package clnfake

// Paying: xpay (Core Lightning v24.11 and later) and pay (removed in v27.03),
// as Core Lightning v26.06.6 (commit 9f7baf66e1e6b421c0c81a3c3f7c307f8e78a911)
// has them: the parameters, checks and error codes of plugins/xpay/xpay.c
// (json_xpay_params, xpay_core), the pay-compatible success that xpay gives
// when it handles pay (payment_listsendpays_previous, payment_succeeded with
// pay_compat), and the records listpays and listsendpays report
// (doc/schemas/listpays.json, listsendpays.json).

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// More of lightningd's codes (common/jsonrpc_errors.h), those xpay answers.
const (
	codePluginFailed      = -3 // PLUGIN_ERROR: xpay's "Unexpected injectpaymentonion error"
	codePayInProgress     = 200
	codeRouteNotFound     = 205
	codePayUnspecified    = 209
	codeXpayAlreadyPaid   = 219 // PAY_INJECTPAYMENTONION_ALREADY_PAID
	defaultRetryForSecond = 60  // xpay's and pay's retry_for default
)

// payUsage is help's text for the paying methods the played release has:
// xpay from v24.11 (doc/schemas/xpay.json "added"), pay until v27.03, which
// removes it (Core Lightning PR #9110 deprecated it in v26.06 for removal
// in v27.03). payer_note came in v26.04, label and localinvreqid in v26.06.
func (f *Fake) payUsage() map[string]string {
	out := map[string]string{}
	if !f.release.atLeast(27, 3) {
		out["pay"] = "pay bolt11 [amount_msat] [label] [riskfactor] [maxfeepercent] [retry_for] [maxdelay] [exemptfee] [localinvreqid] [exclude] [maxfee] [description] [partial_msat]"
	}
	if f.release.atLeast(24, 11) {
		out["xpay"] = "xpay invstring [amount_msat] [maxfee] [layers] [retry_for] [partial_msat] [maxdelay]"
		if f.release.atLeast(26, 4) {
			out["xpay"] += " [payer_note]"
		}
		if f.release.atLeast(26, 6) {
			out["xpay"] += " [label] [localinvreqid]"
		}
	}
	return out
}

// xpayParams are xpay's parameter names in the played release.
func (f *Fake) xpayParams() []string {
	names := []string{"invstring", "amount_msat", "maxfee", "layers", "retry_for", "partial_msat", "maxdelay"}
	if f.release.atLeast(26, 4) {
		names = append(names, "payer_note")
	}
	if f.release.atLeast(26, 6) {
		names = append(names, "label", "localinvreqid")
	}
	return names
}

// payRecord is one payment this node made, as lightningd's payments table
// keeps it (one part: the memory node pays in one).
type payRecord struct {
	index       uint64
	hash        backend.PaymentHash
	bolt11      string
	destination string
	status      string // "pending", "complete", "failed"
	preimage    string
	amount      int64
	sent        int64
	createdAt   time.Time
	completedAt time.Time
}

// record adds a payment to the node's table.
func (f *Fake) record(rec *payRecord) {
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	f.state.sentIndex++
	rec.index = f.state.sentIndex
	f.state.sent[rec.hash] = rec
}

// earlier returns this node's payment of hash, if any.
func (f *Fake) earlier(hash backend.PaymentHash) *payRecord {
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	return f.state.sent[hash]
}

// send pays through the memory node, recording the payment, and maps the
// memory node's failure to the code lightningd's payer gives it.
func (f *Fake) send(ctx context.Context, bolt11 string, d *backend.DecodedInvoice, amount, maxfee int64, retryFor uint64) (*payRecord, *rpcError) {
	rec := &payRecord{hash: d.PaymentHash, bolt11: bolt11, destination: d.Payee, status: "pending", createdAt: time.Now()}
	f.record(rec)
	pay, err := f.payThrough(ctx, bolt11, backend.PayOptions{
		Amount:  backend.MilliSat(amount),
		MaxFee:  backend.MilliSat(maxfee),
		Timeout: time.Duration(retryFor) * time.Second,
	})
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	if err != nil {
		rec.status = "failed"
		msg := strings.ToLower(err.Error())
		switch {
		case errors.Is(err, backend.ErrInvalid):
			return nil, errorf(codeInvalidParams, "%v", err)
		case strings.Contains(msg, "expired"):
			return nil, errorf(codeInvoiceExpired, "Invoice expired")
		case strings.Contains(msg, "no route"):
			return nil, errorf(codeRouteNotFound, "Failed: could not route: %v", err)
		case errors.Is(err, context.DeadlineExceeded):
			return nil, errorf(codePayUnspecified, "Timed out after after 1 attempts. %v", err)
		case errors.Is(err, backend.ErrPaymentFailed):
			return nil, errorf(codeDestPermFail, "Destination said it doesn't know invoice: incorrect_or_unknown_payment_details (%v)", err)
		}
		return nil, nodeError(err)
	}
	rec.status = "complete"
	rec.preimage = pay.Preimage.String()
	rec.amount = int64(pay.Amount)
	rec.sent = int64(pay.Amount + pay.Fee)
	rec.completedAt = time.Now()
	return rec, nil
}

// payCompat is pay's success object (doc/schemas/pay.json), which xpay
// also writes when it handles pay.
func payCompat(r *payRecord, parts int) map[string]any {
	return map[string]any{
		"payment_preimage": r.preimage,
		"destination":      r.destination,
		"payment_hash":     r.hash.String(),
		"created_at":       float64(r.createdAt.UnixMilli()) / 1000,
		"parts":            parts,
		"amount_msat":      r.amount,
		"amount_sent_msat": r.sent,
		"status":           "complete",
	}
}

// invoiceAmount applies the amount rules xpay_core and pay share: an
// any-amount invoice needs amount_msat, another must not get one.
func invoiceAmount(p map[string]json.RawMessage, d *backend.DecodedInvoice) (int64, *rpcError) {
	amount, _, hasAmount, rerr := msat(p, "amount_msat", false)
	if rerr != nil {
		return 0, rerr
	}
	switch {
	case d.Amount != 0 && hasAmount:
		return 0, errorf(codeInvalidParams, "amount_msat unnecessary")
	case d.Amount == 0 && !hasAmount:
		return 0, errorf(codeInvalidParams, "amount_msat required")
	case d.Amount == 0 && amount == 0:
		return 0, errorf(codeInvalidParams, "Cannot pay bolt11 invoice with zero amount")
	}
	return amount, nil
}

// xpay pays a BOLT11 invoice as xpay_core does. It answers 219 for an
// invoice this node already paid, where pay repeats the earlier success.
func (f *Fake) xpay(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	p, rerr := bind(params, f.xpayParams(), 1)
	if rerr != nil {
		return nil, rerr
	}
	inv, rerr := str(p, "invstring")
	if rerr != nil {
		return nil, rerr
	}
	var d *backend.DecodedInvoice
	var amount int64
	if isBolt12Invoice(inv) {
		if d, rerr = decodeBolt12(inv); rerr != nil {
			return nil, rerr
		}
		if _, ok := p["amount_msat"]; ok {
			return nil, errorf(codeInvalidParams, "Cannot override amount for bolt12 invoices")
		}
	} else {
		var err error
		if d, err = decodeInvstring(inv); err != nil {
			return nil, errorf(codeInvalidParams, "Invalid bolt11 invoice: %v", err)
		}
		if _, ok := p["localinvreqid"]; ok {
			return nil, errorf(codeInvalidParams, "Cannot use localinvreqid with BOLT11 payment")
		}
		if amount, rerr = invoiceAmount(p, d); rerr != nil {
			return nil, rerr
		}
	}
	maxfee, _, _, rerr := msat(p, "maxfee", false)
	if rerr != nil {
		return nil, rerr
	}
	retryFor, hasRetry, rerr := u64(p, "retry_for")
	if rerr != nil {
		return nil, rerr
	}
	if !hasRetry {
		retryFor = defaultRetryForSecond
	}
	if _, _, _, rerr := msat(p, "partial_msat", false); rerr != nil {
		return nil, rerr
	}
	if _, ok := p["partial_msat"]; ok {
		// The memory node pays whole invoices only; a partial payment
		// waits for someone else's parts, which no test supplies.
		return nil, errorf(codeInvalidParams, "clnfake: partial_msat is not modelled")
	}
	if now := time.Now(); now.After(d.ExpiresAt()) {
		return nil, errorf(codeInvoiceExpired, "Invoice expired %d seconds ago", now.Unix()-d.ExpiresAt().Unix())
	}
	if pf := f.takeFault(); pf != nil {
		return nil, f.applyFault(ctx, pf, inv, d, amount)
	}
	if e := f.earlier(d.PaymentHash); e != nil {
		switch e.status {
		case "complete":
			return nil, errorf(codeXpayAlreadyPaid, "Already paid this invoice successfully")
		case "pending":
			// injectpaymentonion refuses a second group while one is
			// in flight (check_progress: 200), and xpay gives up.
			return nil, errorf(codePluginFailed, "Unexpected injectpaymentonion error %d: Payment with groupid=1 still in progress, cannot retry before that completes.", codePayInProgress)
		}
	}
	rec, rerr := f.send(ctx, inv, d, amount, maxfee, retryFor)
	if rerr != nil {
		return nil, rerr
	}
	return map[string]any{
		"payment_preimage": rec.preimage,
		"amount_msat":      rec.amount,
		"amount_sent_msat": rec.sent,
		"failed_parts":     0,
		"successful_parts": 1,
	}, nil
}

// pay pays a BOLT11 invoice as pay did (and as xpay does when it handles
// pay, the default since xpay-handle-pay): an invoice this node already
// paid gets that payment's success again, and nothing is paid.
func (f *Fake) pay(ctx context.Context, params json.RawMessage) (any, *rpcError) {
	names := []string{"bolt11", "amount_msat", "label", "riskfactor", "maxfeepercent", "retry_for", "maxdelay", "exemptfee", "localinvreqid", "exclude", "maxfee", "description", "partial_msat"}
	if f.release.atLeast(26, 6) {
		names = append(names, "invstring") // pay's alternate name since v26.06
	}
	p, rerr := bind(params, names, 0)
	if rerr != nil {
		return nil, rerr
	}
	key := "bolt11"
	if _, ok := p[key]; !ok {
		key = "invstring"
	}
	if _, ok := p[key]; !ok {
		return nil, errorf(codeInvalidParams, "missing required parameter: bolt11")
	}
	inv, rerr := str(p, key)
	if rerr != nil {
		return nil, rerr
	}
	var d *backend.DecodedInvoice
	var amount int64
	if isBolt12Invoice(inv) {
		if d, rerr = decodeBolt12(inv); rerr != nil {
			return nil, rerr
		}
	} else {
		var err error
		if d, err = decodeInvstring(inv); err != nil {
			return nil, errorf(codeInvalidParams, "Invalid bolt11: %v", err)
		}
		if amount, rerr = invoiceAmount(p, d); rerr != nil {
			return nil, rerr
		}
	}
	maxfee, _, _, rerr := msat(p, "maxfee", false)
	if rerr != nil {
		return nil, rerr
	}
	retryFor, hasRetry, rerr := u64(p, "retry_for")
	if rerr != nil {
		return nil, rerr
	}
	if !hasRetry {
		retryFor = defaultRetryForSecond
	}
	if time.Now().After(d.ExpiresAt()) {
		return nil, &rpcError{Code: codeInvoiceExpired, Message: "Invoice expired",
			Data: map[string]int64{"now": time.Now().Unix(), "expiry": d.ExpiresAt().Unix()}}
	}
	if pf := f.takeFault(); pf != nil {
		return nil, f.applyFault(ctx, pf, inv, d, amount)
	}
	if e := f.earlier(d.PaymentHash); e != nil {
		switch e.status {
		case "complete":
			return payCompat(e, 1), nil
		case "pending":
			return nil, errorf(codePayInProgress, "Payment with groupid=1 still in progress, cannot retry before that completes.")
		}
	}
	rec, rerr := f.send(ctx, inv, d, amount, maxfee, retryFor)
	if rerr != nil {
		if rerr.Code == codePayUnspecified {
			rerr.Code = codeStoppedRetrying // pay's "Ran out of time"
		}
		return nil, rerr
	}
	return payCompat(rec, 1), nil
}
