package l402

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gowebpki/jcs"

	"github.com/l402kit/l402kit/backend"
)

// ChargeRequest is the request of a Lightning charge: what to pay. The
// invoice is authoritative; Amount (whole satoshis, decimal) and
// PaymentHash must agree with it.
type ChargeRequest struct {
	Amount        string              `json:"amount"`
	Currency      string              `json:"currency"`
	Description   string              `json:"description,omitempty"`
	Recipient     string              `json:"recipient,omitempty"`
	ExternalID    string              `json:"externalId,omitempty"`
	MethodDetails ChargeMethodDetails `json:"methodDetails"`
}

// ChargeMethodDetails are the Lightning fields of a charge request.
// Network is "mainnet", "testnet", "signet" or "regtest" ("mainnet" when
// empty).
type ChargeMethodDetails struct {
	Invoice     string `json:"invoice"`
	PaymentHash string `json:"paymentHash,omitempty"`
	Network     string `json:"network,omitempty"`
}

// ChargePayload is the proof of a Lightning charge: the preimage, 64 hex.
type ChargePayload struct {
	Preimage string `json:"preimage"`
}

// Canonical returns the RFC 8785 (JCS) serialization of v: v marshalled
// by encoding/json, then canonicalized, which sorts members by UTF-16 code
// units, writes numbers in ECMAScript form and escapes only what JSON
// requires (encoding/json alone escapes <, >, & and U+2028/U+2029 and keeps
// struct order).
func Canonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}

// EncodeChargeRequest returns the request parameter of a charge: base64url
// (no padding) of the canonical JSON of r.
func EncodeChargeRequest(r ChargeRequest) (string, error) {
	b, err := Canonical(r)
	if err != nil {
		return "", fmt.Errorf("l402: encode charge request: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ChargeRequest decodes c's request as a Lightning charge's. It does not
// check the method or intent; see Charge.
func (c PaymentChallenge) ChargeRequest() (ChargeRequest, error) {
	var r ChargeRequest
	b, err := DecodeBase64URL(c.Request)
	if err != nil {
		return r, fmt.Errorf("%w: Payment request: %v", ErrMalformed, err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%w: Payment request is not a charge: %v", ErrMalformed, err)
	}
	return r, nil
}

// Charge checks that c is a Lightning charge and returns its request, its
// invoice decoded, and its payment hash: ErrPaymentUnsupported for another
// method or intent, ErrMalformed for a request that cannot be read or does
// not agree with its invoice (hash, amount, currency).
func (c PaymentChallenge) Charge() (ChargeRequest, *backend.DecodedInvoice, error) {
	if !strings.EqualFold(c.Method, MethodLightning) {
		return ChargeRequest{}, nil, fmt.Errorf("%w: method %q", ErrPaymentUnsupported, c.Method)
	}
	if c.Intent != IntentCharge {
		return ChargeRequest{}, nil, fmt.Errorf("%w: intent %q", ErrPaymentUnsupported, c.Intent)
	}
	r, err := c.ChargeRequest()
	if err != nil {
		return r, nil, err
	}
	if r.Currency == "" || r.MethodDetails.Invoice == "" {
		return r, nil, fmt.Errorf("%w: charge request has no currency or no invoice", ErrMalformed)
	}
	if r.Currency != CurrencySat {
		return r, nil, fmt.Errorf("%w: currency %q, want %q", ErrPaymentUnsupported, r.Currency, CurrencySat)
	}
	inv, err := backend.DecodeInvoice(r.MethodDetails.Invoice)
	if err != nil {
		return r, nil, fmt.Errorf("%w: charge invoice: %v", ErrMalformed, err)
	}
	if r.MethodDetails.PaymentHash != "" && !strings.EqualFold(r.MethodDetails.PaymentHash, inv.PaymentHash.String()) {
		return r, nil, fmt.Errorf("%w: charge names payment hash %s, its invoice pays %s", ErrMalformed, r.MethodDetails.PaymentHash, inv.PaymentHash)
	}
	sats, err := parseSats(r.Amount)
	if err != nil {
		return r, nil, err
	}
	if inv.Amount != 0 && inv.Amount != backend.Sat(sats) {
		return r, nil, fmt.Errorf("%w: charge asks %s sat, its invoice %s", ErrMalformed, r.Amount, inv.Amount)
	}
	return r, inv, nil
}

// parseSats reads a decimal amount of whole satoshis.
func parseSats(s string) (int64, error) {
	if s == "" || len(s) > 15 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w: charge amount %q is not a whole number of sat", ErrMalformed, s)
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: charge amount %q is not a whole number of sat", ErrMalformed, s)
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, nil
}
