package backend

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnwire"
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

// InvoiceTemplate is what EncodeInvoice writes into a BOLT11 invoice.
type InvoiceTemplate struct {
	Network     string // as NetworkParams spells it
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
// secret and the features today's payers require (TLV onion, payment
// secret), signed by key. Nodes whose RPC signs or stores an invoice they are
// handed (Core Lightning's signinvoice and createinvoice) take such a string
// signed with any key; the memory node signs with its own.
func EncodeInvoice(t InvoiceTemplate, key *btcec.PrivateKey) (string, error) {
	params, err := NetworkParams(t.Network)
	if err != nil {
		return "", err
	}
	expiry := t.Expiry.Truncate(time.Second)
	if expiry <= 0 {
		return "", fmt.Errorf("%w: expiry under one second", ErrInvalid)
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", fmt.Errorf("payment secret: %w", err)
	}
	cltv := t.MinFinalCLTV
	if cltv == 0 {
		cltv = 80
	}
	features := lnwire.NewFeatureVector(
		lnwire.NewRawFeatureVector(lnwire.TLVOnionPayloadRequired, lnwire.PaymentAddrRequired),
		lnwire.Features,
	)
	opts := []func(*zpay32.Invoice){
		zpay32.Expiry(expiry),
		zpay32.PaymentAddr(secret),
		zpay32.Features(features),
		zpay32.CLTVExpiry(cltv),
	}
	if t.Amount > 0 {
		opts = append(opts, zpay32.Amount(lnwire.MilliSatoshi(t.Amount)))
	}
	if t.DescriptionHash != nil {
		opts = append(opts, zpay32.DescriptionHash(*t.DescriptionHash))
	} else {
		opts = append(opts, zpay32.Description(t.Memo))
	}
	inv, err := zpay32.NewInvoice(params, t.PaymentHash, t.CreatedAt.Truncate(time.Second), opts...)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	s, err := inv.Encode(zpay32.MessageSigner{
		SignCompact: func(msg []byte) ([]byte, error) {
			return ecdsa.SignCompact(key, chainhash.HashB(msg), true), nil
		},
	})
	if err != nil {
		return "", fmt.Errorf("encode invoice: %w", err)
	}
	return s, nil
}
