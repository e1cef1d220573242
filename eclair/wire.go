package eclair

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt12"
)

// The types below decode the JSON Eclair's API documents (v0.14) and its
// serializers write. Only the fields the adapter reads are declared; json
// ignores the rest, so additions in later Eclair versions do no harm.

// timestamp is Eclair's {"iso": "...", "unix": seconds} for record times.
// iso carries milliseconds where unix does not, so it is preferred.
type timestamp struct {
	ISO  string `json:"iso"`
	Unix int64  `json:"unix"`
}

func (t *timestamp) time() time.Time {
	if t == nil {
		return time.Time{}
	}
	if t.ISO != "" {
		if v, err := time.Parse(time.RFC3339Nano, t.ISO); err == nil {
			return v
		}
	}
	if t.Unix != 0 {
		return time.Unix(t.Unix, 0).UTC()
	}
	return time.Time{}
}

// invoiceJSON is Eclair's BOLT11 invoice (createinvoice, getinvoice, and the
// invoice inside getreceivedinfo and getsentinfo).
type invoiceJSON struct {
	Prefix          string  `json:"prefix"`
	Timestamp       int64   `json:"timestamp"` // seconds
	NodeID          string  `json:"nodeId"`
	Serialized      string  `json:"serialized"`
	Description     *string `json:"description"`
	DescriptionHash string  `json:"descriptionHash"`
	PaymentHash     string  `json:"paymentHash"`
	Expiry          *int64  `json:"expiry"` // seconds; absent means BOLT11's default
	Amount          *int64  `json:"amount"` // msat; absent for any-amount invoices
}

// bolt11DefaultExpiry applies when an invoice has no expiry field (BOLT11).
const bolt11DefaultExpiry = time.Hour

// invoice converts to the portable form, as an open invoice.
func (j *invoiceJSON) invoice() (*backend.Invoice, error) {
	if j == nil {
		return nil, fmt.Errorf("%w: answer has no invoice", backend.ErrUnsupported)
	}
	hash, err := backend.ParsePaymentHash(j.PaymentHash)
	if err != nil {
		return nil, fmt.Errorf("invoice paymentHash: %w", err)
	}
	if strings.HasPrefix(j.Serialized, bolt12.PrefixInvoice+"1") {
		// A Bolt12Invoice (an offer's): createdAt and expiresAt instead
		// of timestamp and expiry; the string says it all.
		d, err := bolt12.DecodeInvoice(j.Serialized)
		if err != nil {
			return nil, fmt.Errorf("%w: invoice: %w", backend.ErrUnsupported, err)
		}
		if d.PaymentHash != hash {
			return nil, fmt.Errorf("%w: invoice paymentHash differs from its serialized form", backend.ErrUnsupported)
		}
		return &backend.Invoice{PaymentHash: hash, PaymentRequest: j.Serialized, State: backend.StateOpen,
			Amount: backend.MilliSat(d.Amount), Memo: d.Description, CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt()}, nil
	}
	inv := &backend.Invoice{
		PaymentHash:    hash,
		PaymentRequest: j.Serialized,
		State:          backend.StateOpen,
		CreatedAt:      time.Unix(j.Timestamp, 0).UTC(),
	}
	if j.Amount != nil {
		inv.Amount = backend.MilliSat(*j.Amount)
	}
	if j.Description != nil {
		inv.Memo = *j.Description
	}
	expiry := bolt11DefaultExpiry
	if j.Expiry != nil {
		expiry = time.Duration(*j.Expiry) * time.Second
	}
	inv.ExpiresAt = inv.CreatedAt.Add(expiry)
	return inv, nil
}

// incomingPayment is getreceivedinfo's answer.
type incomingPayment struct {
	Invoice         *invoiceJSON `json:"invoice"`
	PaymentPreimage string       `json:"paymentPreimage"`
	PaymentType     string       `json:"paymentType"`
	CreatedAt       *timestamp   `json:"createdAt"`
	Status          struct {
		Type       string     `json:"type"` // pending, expired, received
		Amount     int64      `json:"amount"`
		ReceivedAt *timestamp `json:"receivedAt"`
	} `json:"status"`
}

// invoice converts to the portable form. Eclair's "expired" is an open
// invoice past its expiry (Invoice.Expired says so); Eclair has no
// canceled state, as it deletes invoices instead.
func (p *incomingPayment) invoice() (*backend.Invoice, error) {
	inv, err := p.Invoice.invoice()
	if err != nil {
		return nil, err
	}
	if p.PaymentPreimage != "" {
		pre, err := backend.ParsePreimage(p.PaymentPreimage)
		if err != nil {
			return nil, fmt.Errorf("paymentPreimage: %w", err)
		}
		// Blinded (BOLT12) payments carry no preimage of their own hash
		// here; only keep one that matches.
		if pre.Matches(inv.PaymentHash) {
			inv.Preimage = &pre
		}
	}
	switch p.Status.Type {
	case "pending", "expired":
		inv.State = backend.StateOpen
	case "received":
		inv.State = backend.StateSettled
		inv.AmountReceived = backend.MilliSat(p.Status.Amount)
		inv.SettledAt = p.Status.ReceivedAt.time()
	default:
		return nil, fmt.Errorf("%w: unknown incoming payment status %q", backend.ErrUnsupported, p.Status.Type)
	}
	return inv, nil
}

// outgoingPayment is one record of getsentinfo's list: one attempt (or one
// part of a multi-part payment).
type outgoingPayment struct {
	ID              string `json:"id"`
	ParentID        string `json:"parentId"`
	PaymentHash     string `json:"paymentHash"`
	Amount          int64  `json:"amount"`          // msat, this part, fees excluded
	RecipientAmount int64  `json:"recipientAmount"` // msat, whole payment
	Status          struct {
		Type            string `json:"type"` // pending, sent, failed
		PaymentPreimage string `json:"paymentPreimage"`
		FeesPaid        int64  `json:"feesPaid"` // msat
		Failures        []struct {
			FailureType    string `json:"failureType"`
			FailureMessage string `json:"failureMessage"`
		} `json:"failures"`
	} `json:"status"`
}

// sentOutcome sums up a payment's attempts: done with a payment, done with
// an error wrapping ErrPaymentFailed, or not done yet.
func sentOutcome(recs []outgoingPayment) (pay *backend.Payment, done bool, err error) {
	if len(recs) == 0 {
		return nil, false, nil
	}
	var (
		pending  bool
		failures []string
	)
	for _, r := range recs {
		switch r.Status.Type {
		case "sent":
			pre, err := backend.ParsePreimage(r.Status.PaymentPreimage)
			if err != nil {
				return nil, true, fmt.Errorf("%w: sent payment's preimage: %w", backend.ErrPaymentUnknown, err)
			}
			if pay == nil {
				pay = &backend.Payment{Preimage: pre, Amount: backend.MilliSat(r.RecipientAmount)}
			}
			pay.Fee += backend.MilliSat(r.Status.FeesPaid)
		case "pending":
			pending = true
		case "failed":
			for _, f := range r.Status.Failures {
				failures = append(failures, f.FailureMessage)
			}
		}
	}
	switch {
	case pay != nil && !pending:
		return pay, true, nil
	case pay != nil || pending:
		// Parts of a multi-part payment still settling: fees are not final.
		return nil, false, nil
	}
	msg := strings.Join(failures, "; ")
	if msg == "" {
		msg = "no details given"
	}
	return nil, true, fmt.Errorf("%w: %s", backend.ErrPaymentFailed, msg)
}

// getInfo is getinfo's answer.
type getInfo struct {
	Version     string `json:"version"`
	NodeID      string `json:"nodeId"`
	Alias       string `json:"alias"`
	ChainHash   string `json:"chainHash"`
	Network     string `json:"network"`
	BlockHeight uint32 `json:"blockHeight"`
}

// networkName maps Eclair's chain names to backend's. Eclair names both
// testnets; BOLT11 and backend know one "testnet" (lntb).
func networkName(eclair string) string {
	switch eclair {
	case "testnet", "testnet3", "testnet4":
		return "testnet"
	}
	return eclair
}

// event is the part of a websocket message the adapter reads.
type event struct {
	Type        string `json:"type"`
	PaymentHash string `json:"paymentHash"`
}

// call POSTs form to method and decodes the JSON answer into out.
func (b *driver) call(ctx context.Context, method string, form url.Values, out any) error {
	if form == nil {
		form = url.Values{}
	}
	req, err := b.api.Request(ctx, http.MethodPost, "/"+method, form)
	if err != nil {
		return fmt.Errorf("eclair: %s: %w: %v", method, backend.ErrInvalid, err)
	}
	status, body, err := b.api.Do(req, 16<<20)
	if err != nil {
		return b.transportError(ctx, method, err)
	}
	if status != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if len(msg) > 512 {
			msg = msg[:512] + "…"
		}
		return &APIError{Method: method, Status: status, Message: msg, kind: classify(status, msg)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("eclair: %s: %w: decode answer: %v", method, backend.ErrUnsupported, err)
	}
	return nil
}
