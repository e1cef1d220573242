package backend

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
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

// DecodeInvoice decodes and checks a BOLT11 payment request (signature
// included) with package bolt11, after trimming whitespace and a
// "lightning:" URI scheme. Its errors match ErrInvalid.
func DecodeInvoice(s string) (*DecodedInvoice, error) {
	s = strings.TrimSpace(s)
	if len(s) >= len("lightning:") && strings.EqualFold(s[:len("lightning:")], "lightning:") {
		s = s[len("lightning:"):]
	}
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

// InvoiceTemplate is what EncodeInvoice writes into a BOLT11 invoice.
type InvoiceTemplate struct {
	Network     string // as NodeInfo spells it
	PaymentHash PaymentHash
	CreatedAt   time.Time     // written in whole seconds
	Expiry      time.Duration // written in whole seconds; must be at least one
	// Amount, Memo and DescriptionHash as in InvoiceRequest.
	Amount          MilliSat
	Memo            string
	DescriptionHash *[32]byte
	// MinFinalCLTV is the final hop's CLTV delta; zero means 80 blocks.
	MinFinalCLTV uint64
}

// EncodeInvoice builds a BOLT11 payment request with a random payment
// secret and the features today's payers require (var_onion_optin and
// payment_secret, both required), signed by key. Nodes whose RPC signs or
// stores an invoice they are handed (Core Lightning's signinvoice and
// createinvoice) take such a string signed with any key; the memory node
// signs with its own.
func EncodeInvoice(t InvoiceTemplate, key *btcec.PrivateKey) (string, error) {
	if t.Expiry < time.Second {
		return "", fmt.Errorf("%w: expiry under one second", ErrInvalid)
	}
	inv := &bolt11.Invoice{
		Network:         t.Network,
		Amount:          int64(t.Amount),
		Timestamp:       t.CreatedAt.Truncate(time.Second),
		PaymentHash:     t.PaymentHash,
		Description:     t.Memo,
		DescriptionHash: t.DescriptionHash,
		Expiry:          t.Expiry.Truncate(time.Second),
		MinFinalCLTV:    t.MinFinalCLTV,
		Features:        []int{8, 14},
	}
	if inv.MinFinalCLTV == 0 {
		inv.MinFinalCLTV = 80
	}
	if _, err := rand.Read(inv.PaymentSecret[:]); err != nil {
		return "", fmt.Errorf("payment secret: %w", err)
	}
	s, err := bolt11.Encode(inv, key)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return s, nil
}
