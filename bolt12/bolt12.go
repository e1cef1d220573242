// Package bolt12 reads and writes BOLT12 offers, invoice requests and
// invoices as the specification in lightning/bolts 12-offer-encoding.md
// defines them: the bech32 string without a checksum (either case, with
// "+" continuations), the TLV stream, the fields of each message with the
// checks the specification asks a reader to make, and the Merkle-tree
// BIP-340 signature.
//
// What a reader may only check against its own state (the time, the chains
// it accepts, the invoice request it sent) is left to the caller: Decode*
// check the encoding and the message on its own, and Offer.Expired,
// Invoice.Expired and Invoice.Matches do the rest. Unknown odd fields are
// kept (Records), as a writer of an invoice request or invoice must copy
// them.
//
// The package is a leaf like bolt11: it depends on btcec/v2 only, so the
// adapters, the fakes and the client share one codec.
package bolt12

import (
	"errors"
	"fmt"
)

// Every error of this package matches ErrInvalid and exactly one of the more
// specific sentinels below, with errors.Is.
var (
	// ErrInvalid matches every error of this package.
	ErrInvalid = errors.New("bolt12: invalid")

	// ErrString: not a BOLT12 string (bad character, mixed case, a "+" not
	// between two bech32 characters, bad padding, wrong prefix).
	ErrString = reason("string")
	// ErrTLV: the TLV stream is malformed (truncated, not minimal, out of
	// order, duplicate, an unknown even type, a type outside the message's
	// ranges).
	ErrTLV = reason("TLV stream")
	// ErrField: a field is missing, has the wrong length or an impossible
	// value, or the fields contradict each other.
	ErrField = reason("field")
	// ErrFeature: a feature bit this package does not know is required.
	ErrFeature = reason("features")
	// ErrSignature: the signature is missing or does not verify.
	ErrSignature = reason("signature")
)

// reason is a specific sentinel that also matches ErrInvalid.
type reason string

func (r reason) Error() string        { return "bolt12: invalid " + string(r) }
func (r reason) Is(target error) bool { return target == ErrInvalid }

func fail(r reason, format string, args ...any) error {
	return fmt.Errorf("%w: %s", r, fmt.Sprintf(format, args...))
}

// The human-readable prefixes of the three messages.
const (
	PrefixOffer          = "lno"
	PrefixInvoiceRequest = "lnr"
	PrefixInvoice        = "lni"
)

// DefaultRelativeExpiry is an invoice's lifetime without
// invoice_relative_expiry.
const DefaultRelativeExpiry = 7200

// ChainBitcoin is the chain hash of bitcoin mainnet (its genesis block hash
// in the byte order the specification writes chain_hash), implied when an
// offer has no offer_chains.
var ChainBitcoin = [32]byte{
	0x6f, 0xe2, 0x8c, 0x0a, 0xb6, 0xf1, 0xb3, 0x72, 0xc1, 0xa6, 0xa2, 0x46, 0xae, 0x63, 0xf7, 0x4f,
	0x93, 0x1e, 0x83, 0x65, 0xe1, 0x5a, 0x08, 0x9c, 0x68, 0xd6, 0x19, 0x00, 0x00, 0x00, 0x00, 0x00,
}
