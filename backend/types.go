package backend

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// MilliSat is an amount in millisatoshis, the unit Lightning invoices carry.
type MilliSat int64

// Sat returns n satoshis as millisatoshis.
func Sat(n int64) MilliSat { return MilliSat(n * 1000) }

// Sats returns the amount in whole satoshis, rounding down.
func (m MilliSat) Sats() int64 { return int64(m) / 1000 }

// String formats the amount as "<n> msat", or "<n> sat" when it is whole.
func (m MilliSat) String() string {
	if m%1000 == 0 {
		return strconv.FormatInt(int64(m)/1000, 10) + " sat"
	}
	return strconv.FormatInt(int64(m), 10) + " msat"
}

// PaymentHash is the SHA-256 of an invoice's preimage; it names the invoice.
type PaymentHash [32]byte

// String returns the hash as lowercase hex.
func (h PaymentHash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero value (no hash).
func (h PaymentHash) IsZero() bool { return h == PaymentHash{} }

// MarshalText encodes the hash as hex, so hashes read well in JSON and YAML.
func (h PaymentHash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText parses a hex hash.
func (h *PaymentHash) UnmarshalText(b []byte) error {
	v, err := ParsePaymentHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParsePaymentHash parses 64 hex characters.
func ParsePaymentHash(s string) (PaymentHash, error) {
	var h PaymentHash
	if err := parseHex32(s, h[:]); err != nil {
		return h, fmt.Errorf("payment hash: %w", err)
	}
	return h, nil
}

// Preimage is the secret whose SHA-256 is an invoice's payment hash; whoever
// holds it has proof the invoice was paid.
type Preimage [32]byte

// NewPreimage returns 32 random bytes from crypto/rand.
func NewPreimage() (Preimage, error) {
	var p Preimage
	if _, err := rand.Read(p[:]); err != nil {
		return p, fmt.Errorf("preimage: %w", err)
	}
	return p, nil
}

// String returns the preimage as lowercase hex.
func (p Preimage) String() string { return hex.EncodeToString(p[:]) }

// Hash returns sha256(p), the payment hash p unlocks.
func (p Preimage) Hash() PaymentHash { return sha256.Sum256(p[:]) }

// Matches reports whether sha256(p) equals h, in constant time.
func (p Preimage) Matches(h PaymentHash) bool {
	got := p.Hash()
	return subtle.ConstantTimeCompare(got[:], h[:]) == 1
}

// MarshalText encodes the preimage as hex.
func (p Preimage) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses a hex preimage.
func (p *Preimage) UnmarshalText(b []byte) error {
	v, err := ParsePreimage(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ParsePreimage parses 64 hex characters.
func ParsePreimage(s string) (Preimage, error) {
	var p Preimage
	if err := parseHex32(s, p[:]); err != nil {
		return p, fmt.Errorf("preimage: %w", err)
	}
	return p, nil
}

func parseHex32(s string, dst []byte) error {
	if len(s) != 64 {
		return fmt.Errorf("%w: want 64 hex characters, got %d", ErrInvalid, len(s))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// State is where an invoice is in its life.
type State int

const (
	// StateOpen: waiting for payment.
	StateOpen State = iota
	// StateHeld: a hold invoice whose payment has arrived (HTLCs accepted)
	// but which is neither settled nor canceled yet.
	StateHeld
	// StateSettled: paid; the preimage is released.
	StateSettled
	// StateCanceled: will never be paid; for a held invoice, the payment
	// went back to the payer.
	StateCanceled
)

func (s State) String() string {
	switch s {
	case StateOpen:
		return "open"
	case StateHeld:
		return "held"
	case StateSettled:
		return "settled"
	case StateCanceled:
		return "canceled"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Final reports whether the state can no longer change.
func (s State) Final() bool { return s == StateSettled || s == StateCanceled }

// DefaultExpiry is the invoice lifetime used when a request leaves Expiry zero,
// the BOLT11 default.
const DefaultExpiry = time.Hour

// InvoiceRequest asks a backend for an invoice.
type InvoiceRequest struct {
	// Amount asked; zero asks for an any-amount invoice where the node
	// allows it.
	Amount MilliSat
	// Memo is the BOLT11 description. Leave it empty when DescriptionHash
	// or HashedDescription is set.
	Memo string
	// DescriptionHash, when set, is committed to instead of a memo. Nodes
	// that take only the hash use it; nodes that hash the text themselves
	// (Core Lightning) need HashedDescription and refuse a request with
	// the hash alone (ErrUnsupported).
	DescriptionHash *[32]byte
	// HashedDescription is a description whose SHA-256 the invoice
	// commits to (field h) instead of a memo, such as LNURL-pay's
	// metadata. It may be longer than a memo. Nodes that take only a hash
	// get its SHA-256; when DescriptionHash is set too, it must be that
	// hash. Use CommittedDescriptionHash to read either.
	HashedDescription string
	// Expiry is the invoice's lifetime; zero means DefaultExpiry.
	Expiry time.Duration
	// Preimage, when set, is used instead of a random one chosen by the node.
	// Backends that cannot honour it answer ErrUnsupported.
	Preimage *Preimage
}

// Validate checks what every backend would refuse, so adapters answer the
// same ErrInvalid for the same mistake.
func (r InvoiceRequest) Validate() error {
	if r.Amount < 0 {
		return fmt.Errorf("%w: negative amount %d msat", ErrInvalid, int64(r.Amount))
	}
	if r.Expiry < 0 {
		return fmt.Errorf("%w: negative expiry %s", ErrInvalid, r.Expiry)
	}
	if r.Memo != "" && (r.DescriptionHash != nil || r.HashedDescription != "") {
		return fmt.Errorf("%w: memo and description hash are exclusive", ErrInvalid)
	}
	if r.DescriptionHash != nil && r.HashedDescription != "" && *r.DescriptionHash != sha256.Sum256([]byte(r.HashedDescription)) {
		return fmt.Errorf("%w: description hash is not the SHA-256 of the hashed description", ErrInvalid)
	}
	if len(r.Memo) > 639 {
		// BOLT11's description field holds at most 639 bytes.
		return fmt.Errorf("%w: memo is %d bytes, BOLT11 allows 639", ErrInvalid, len(r.Memo))
	}
	return nil
}

// CommittedDescriptionHash returns the hash the invoice commits to in place
// of a memo: DescriptionHash, or the SHA-256 of HashedDescription, or nil
// when the request has neither.
func (r InvoiceRequest) CommittedDescriptionHash() *[32]byte {
	switch {
	case r.DescriptionHash != nil:
		h := *r.DescriptionHash
		return &h
	case r.HashedDescription != "":
		h := sha256.Sum256([]byte(r.HashedDescription))
		return &h
	}
	return nil
}

// ExpiryOrDefault returns r.Expiry, or DefaultExpiry when it is zero.
func (r InvoiceRequest) ExpiryOrDefault() time.Duration {
	if r.Expiry == 0 {
		return DefaultExpiry
	}
	return r.Expiry
}

// Invoice is a backend's view of one invoice.
type Invoice struct {
	PaymentHash    PaymentHash
	PaymentRequest string // BOLT11
	Amount         MilliSat
	AmountReceived MilliSat
	Memo           string
	State          State
	// Preimage is set once the backend knows it: at creation on most nodes,
	// after settlement on all. Nil means unknown.
	Preimage  *Preimage
	CreatedAt time.Time
	ExpiresAt time.Time
	SettledAt time.Time // zero unless State is StateSettled
}

// Expired reports whether an open invoice is past its expiry at now, whatever
// the node reports: nodes differ in when (and whether) they mark invoices
// expired.
func (i *Invoice) Expired(now time.Time) bool {
	return i.State == StateOpen && !i.ExpiresAt.IsZero() && !now.Before(i.ExpiresAt)
}

// Payable reports whether the invoice can still be paid at now.
func (i *Invoice) Payable(now time.Time) bool {
	return i.State == StateOpen && !i.Expired(now)
}

// PayOptions bound a payment.
type PayOptions struct {
	// Amount to pay an any-amount invoice; must be zero or equal to the
	// invoice's own amount otherwise.
	Amount MilliSat
	// MaxFee is the most routing fee to pay; zero lets the backend choose
	// its default (adapters document theirs).
	MaxFee MilliSat
	// Timeout bounds the whole payment attempt; zero means one minute.
	Timeout time.Duration
}

// Payment is the outcome of a successful payment.
type Payment struct {
	PaymentHash PaymentHash
	Preimage    Preimage
	Amount      MilliSat // sent to the payee, fees excluded
	Fee         MilliSat
}

// NodeInfo describes the node behind a backend.
type NodeInfo struct {
	NodeID      string // hex compressed public key, when the node has one
	Alias       string
	Network     string // "mainnet", "testnet", "signet", "regtest", "simnet"
	BlockHeight uint32
	Synced      bool
}
