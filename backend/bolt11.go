package backend

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/l402kit/l402kit/bolt11"
)

// DecodedInvoice is what a BOLT11 payment request says about itself, in
// backend's types. Package bolt11 has every field; this is the part adapters
// compare with what their node reports.
type DecodedInvoice struct {
	// PaymentRequest is the bare invoice decoded: without surrounding
	// whitespace or a "lightning:" URI scheme, which nodes' own decoders
	// do not all strip. Send this string to a node.
	PaymentRequest  string
	Network         string // "mainnet", "testnet", "signet", "regtest", "simnet"
	PaymentHash     PaymentHash
	Amount          MilliSat // zero for an any-amount invoice
	Memo            string
	DescriptionHash *[32]byte
	Payee           string // hex compressed public key of the node to pay
	CreatedAt       time.Time
	Expiry          time.Duration
}

// ExpiresAt is CreatedAt plus Expiry.
func (d *DecodedInvoice) ExpiresAt() time.Time { return d.CreatedAt.Add(d.Expiry) }

// Invoice is the open invoice the BOLT11 string alone describes: hash,
// payment request, amount, memo, creation and expiry. Adapters add what
// their node reports beyond it (state, amount received, preimage).
func (d *DecodedInvoice) Invoice() *Invoice {
	return &Invoice{
		PaymentHash:    d.PaymentHash,
		PaymentRequest: d.PaymentRequest,
		Amount:         d.Amount,
		Memo:           d.Memo,
		State:          StateOpen,
		CreatedAt:      d.CreatedAt,
		ExpiresAt:      d.ExpiresAt(),
	}
}

// DecodeInvoice decodes and checks a BOLT11 payment request (signature
// included) with package bolt11, after trimming whitespace and a
// "lightning:" URI scheme. Its errors match ErrInvalid.
func DecodeInvoice(s string) (*DecodedInvoice, error) {
	s = TrimInvoice(s)
	inv, err := bolt11.Decode(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return &DecodedInvoice{
		PaymentRequest:  s,
		Network:         inv.Network,
		PaymentHash:     inv.PaymentHash,
		Amount:          MilliSat(inv.Amount),
		Memo:            inv.Description,
		DescriptionHash: inv.DescriptionHash,
		Payee:           hex.EncodeToString(inv.Payee[:]),
		CreatedAt:       inv.Timestamp,
		Expiry:          inv.Expiry,
	}, nil
}
