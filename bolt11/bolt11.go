// Package bolt11 reads and writes BOLT11 Lightning invoices (payment
// requests) as the specification in lightning/bolts 11-payment-encoding.md
// defines them, without any Lightning node implementation behind it.
//
// Decode is as strict as the specification asks a reader to be: the bech32
// checksum, the human-readable part and its amount, every defined tagged
// field's length and encoding, the feature bits and the signature are all
// checked, and anything the specification says must fail the payment is an
// error. Encode writes what a writer must and signs with a secp256k1 key.
//
// The package is a leaf: it depends on btcec/v2 and btcutil's bech32 only and
// uses plain types (millisatoshis as int64, hashes as [32]byte), so that every
// part of l402kit, the node adapters and the test fakes can share one codec.
package bolt11

import (
	"errors"
	"fmt"
	"time"
)

// Every error Decode and Encode return matches ErrInvalid and exactly one of
// the more specific sentinels below, with errors.Is.
var (
	// ErrInvalid matches every error of this package.
	ErrInvalid = errors.New("bolt11: invalid invoice")

	// ErrBech32: not a bech32 string (bad character, mixed case, no
	// separator, wrong checksum).
	ErrBech32 = reason("bech32")
	// ErrHRP: the human-readable part names no known currency or its
	// amount is malformed.
	ErrHRP = reason("human-readable part")
	// ErrData: the data part is too short or a field runs past its end.
	ErrData = reason("data part")
	// ErrField: a required field is missing, or a field has the wrong
	// length or an impossible value.
	ErrField = reason("field")
	// ErrFeature: the invoice requires a feature this package does not know.
	ErrFeature = reason("features")
	// ErrSignature: the signature does not verify, or no key can be
	// recovered from it.
	ErrSignature = reason("signature")
)

// reason is a specific sentinel that also matches ErrInvalid.
type reason string

func (r reason) Error() string        { return "bolt11: invalid " + string(r) }
func (r reason) Is(target error) bool { return target == ErrInvalid }

func fail(r reason, format string, args ...any) error {
	return fmt.Errorf("%w: %s", r, fmt.Sprintf(format, args...))
}

// DefaultExpiry is the lifetime of an invoice without an x field.
const DefaultExpiry = time.Hour

// DefaultMinFinalCLTV is the final CLTV delta of an invoice without a c field.
const DefaultMinFinalCLTV = 18

// MaxDescriptionLen is the most bytes a d field holds (1023 five-bit groups).
const MaxDescriptionLen = 639

// Networks are named as l402kit names them elsewhere; the prefix is "ln"
// followed by the BIP-0173 currency prefix. Longer currency prefixes are
// listed first only for readability: parsing takes the whole run of letters.
var networks = []struct{ currency, name string }{
	{"bc", "mainnet"},
	{"tb", "testnet"},
	{"tbs", "signet"},
	{"bcrt", "regtest"},
	{"sb", "simnet"},
}

// Prefix returns the human-readable prefix ("lnbc", "lnbcrt", ...) of
// invoices on a network named "mainnet", "testnet", "signet", "regtest" or
// "simnet".
func Prefix(network string) (string, error) {
	for _, n := range networks {
		if n.name == network {
			return "ln" + n.currency, nil
		}
	}
	return "", fail(ErrHRP, "unknown network %q", network)
}

// Invoice is what a BOLT11 payment request says. Decode fills it; Encode
// writes it.
type Invoice struct {
	// Network is "mainnet", "testnet", "signet", "regtest" or "simnet".
	Network string
	// Amount in millisatoshis; zero means the invoice names no amount.
	Amount int64
	// Timestamp is when the invoice was made, in whole seconds.
	Timestamp time.Time

	// PaymentHash (p) is the SHA-256 of the preimage that pays it.
	PaymentHash [32]byte
	// PaymentSecret (s) goes in the payment onion; every invoice has one.
	PaymentSecret [32]byte
	// Description (d) is the purpose of the payment, UTF-8, possibly
	// empty. An invoice carries a description or a DescriptionHash,
	// never both.
	Description string
	// DescriptionHash (h) is the SHA-256 of a description given some
	// other way; nil when the invoice carries Description instead.
	DescriptionHash *[32]byte
	// Expiry (x) is how long after Timestamp the invoice may be paid.
	// Decode sets DefaultExpiry when the field is absent; Encode leaves
	// the field out when Expiry equals it. Expiries too long for a
	// time.Duration are read as the longest one in whole seconds.
	Expiry time.Duration
	// MinFinalCLTV (c) is the CLTV delta the last hop needs. Decode sets
	// DefaultMinFinalCLTV when the field is absent; Encode always writes it.
	MinFinalCLTV uint64
	// Fallbacks (f) are on-chain addresses to pay if Lightning fails, in
	// order of preference. Versions the specification does not define
	// are skipped by Decode.
	Fallbacks []Fallback
	// Routes (r) are private route hints, each from a public node to the
	// payee.
	Routes [][]Hop
	// Features (9) lists the feature bits set, ascending.
	Features []int
	// Metadata (m) goes in the payment onion as payment_metadata; nil when
	// the invoice has none.
	Metadata []byte

	// Payee is the compressed public key of the node to pay: the n field
	// when the invoice has one, otherwise the key recovered from the
	// signature. Encode fills it in from the signing key.
	Payee [33]byte
	// ExplicitPayee reports whether the invoice carries Payee in an n
	// field. Encode writes one when it is set.
	ExplicitPayee bool
	// Signature is the 64-byte r||s followed by the recovery id, as the
	// invoice carries it. Encode ignores it.
	Signature [65]byte
}

// ExpiresAt is Timestamp plus Expiry; the invoice may not be paid from then
// on.
func (inv *Invoice) ExpiresAt() time.Time { return inv.Timestamp.Add(inv.Expiry) }

// Fallback is an on-chain address: a witness version (0 to 16) and program,
// or version 17 with a public key hash (P2PKH) or 18 with a script hash
// (P2SH).
type Fallback struct {
	Version byte
	Program []byte
}

// Hop is one channel of a route hint.
type Hop struct {
	NodeID                    [33]byte // compressed public key of the channel's start
	ShortChannelID            uint64   // block height << 40 | transaction index << 16 | output index
	FeeBaseMsat               uint32
	FeeProportionalMillionths uint32
	CLTVExpiryDelta           uint16
}

// Field type numbers (the bech32 character's value).
const (
	tagPaymentHash     = 1  // p
	tagRoute           = 3  // r
	tagFeatures        = 5  // 9
	tagExpiry          = 6  // x
	tagFallback        = 9  // f
	tagDescription     = 13 // d
	tagPaymentSecret   = 16 // s
	tagPayee           = 19 // n
	tagDescriptionHash = 23 // h
	tagMinFinalCLTV    = 24 // c
	tagMetadata        = 27 // m
)

// knownEvenFeatures are the required (even) bits BOLT 9 defines for
// invoices: var_onion_optin, payment_secret, basic_mpp,
// option_route_blinding, option_attribution_data, option_payment_metadata.
// A required bit not listed here fails the invoice; odd bits are optional
// and ignored when unknown.
var knownEvenFeatures = map[int]bool{8: true, 14: true, 16: true, 24: true, 36: true, 48: true}

// hopLen is the size of one route hint entry: pubkey (33), short channel id
// (8), fee base (4), proportional fee (4), CLTV delta (2).
const hopLen = 33 + 8 + 4 + 4 + 2

// Lengths in five-bit groups.
const (
	timestampGroups = 7   // 35 bits
	signatureGroups = 104 // 520 bits: r, s and the recovery id
	hash256Groups   = 52  // 256 bits plus 4 bits of padding
	pubkeyGroups    = 53  // 264 bits plus 1 bit of padding
	maxFieldGroups  = 1023
)
