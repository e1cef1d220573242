package backend

import (
	"fmt"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/zpay32"
)

// DecodedInvoice is what a BOLT11 payment request says about itself.
type DecodedInvoice struct {
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

// networkByPrefix is ordered so that longer human-readable prefixes are tried
// before their own prefixes ("lnbcrt" before "lnbc", "lntbs" before "lntb").
var networkByPrefix = []struct {
	prefix, name string
	params       *chaincfg.Params
}{
	{"lnbcrt", "regtest", &chaincfg.RegressionNetParams},
	{"lnbc", "mainnet", &chaincfg.MainNetParams},
	{"lntbs", "signet", &chaincfg.SigNetParams},
	{"lntb", "testnet", &chaincfg.TestNet3Params},
	{"lnsb", "simnet", &chaincfg.SimNetParams},
}

// NetworkParams returns the chain parameters for a network name as NodeInfo
// and DecodedInvoice spell it.
func NetworkParams(network string) (*chaincfg.Params, error) {
	for _, n := range networkByPrefix {
		if n.name == network {
			return n.params, nil
		}
	}
	return nil, fmt.Errorf("%w: unknown network %q", ErrInvalid, network)
}

// DecodeInvoice decodes and checks a BOLT11 payment request (signature
// included) with lnd's zpay32, picking the network from its prefix.
func DecodeInvoice(bolt11 string) (*DecodedInvoice, error) {
	s := strings.ToLower(strings.TrimSpace(bolt11))
	s = strings.TrimPrefix(s, "lightning:")
	for _, n := range networkByPrefix {
		if !strings.HasPrefix(s, n.prefix) {
			continue
		}
		inv, err := zpay32.Decode(s, n.params)
		if err != nil {
			return nil, fmt.Errorf("%w: bolt11: %v", ErrInvalid, err)
		}
		d := &DecodedInvoice{
			Network:   n.name,
			CreatedAt: inv.Timestamp,
			Expiry:    inv.Expiry(),
		}
		if inv.PaymentHash != nil {
			d.PaymentHash = *inv.PaymentHash
		}
		if inv.MilliSat != nil {
			d.Amount = MilliSat(*inv.MilliSat)
		}
		if inv.Description != nil {
			d.Memo = *inv.Description
		}
		if inv.DescriptionHash != nil {
			h := *inv.DescriptionHash
			d.DescriptionHash = &h
		}
		if inv.Destination != nil {
			d.Payee = fmt.Sprintf("%x", inv.Destination.SerializeCompressed())
		}
		return d, nil
	}
	return nil, fmt.Errorf("%w: bolt11: unknown network prefix in %.12q", ErrInvalid, s)
}
