package nwc

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	nostr "github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip04"
	"github.com/nbd-wtf/go-nostr/nip44"

	"github.com/l402kit/l402kit/backend"
)

// Event kinds of NIP-47.
const (
	KindInfo           = 13194
	KindRequest        = 23194
	KindResponse       = 23195
	KindNotifyNIP04    = 23196
	KindNotification   = 23197
	encNIP44           = "nip44_v2"
	encNIP04           = "nip04"
	notifyReceived     = "payment_received"
	notifyHoldAccepted = "hold_invoice_accepted"
)

// Methods of NIP-47 this package speaks.
const (
	MethodGetInfo           = "get_info"
	MethodMakeInvoice       = "make_invoice"
	MethodLookupInvoice     = "lookup_invoice"
	MethodPayInvoice        = "pay_invoice"
	MethodMakeHoldInvoice   = "make_hold_invoice"
	MethodSettleHoldInvoice = "settle_hold_invoice"
	MethodCancelHoldInvoice = "cancel_hold_invoice"
)

// Error codes of NIP-47 (nostr-protocol/nips 47.md).
const (
	CodeRateLimited           = "RATE_LIMITED"
	CodeNotImplemented        = "NOT_IMPLEMENTED"
	CodeInsufficientBalance   = "INSUFFICIENT_BALANCE"
	CodeQuotaExceeded         = "QUOTA_EXCEEDED"
	CodeRestricted            = "RESTRICTED"
	CodeUnauthorized          = "UNAUTHORIZED"
	CodeInternal              = "INTERNAL"
	CodeUnsupportedEncryption = "UNSUPPORTED_ENCRYPTION"
	CodePaymentFailed         = "PAYMENT_FAILED"
	CodeNotFound              = "NOT_FOUND"
	CodeOther                 = "OTHER"
)

// request is the decrypted content of a kind 23194 event.
type request struct {
	Method string         `json:"method"`
	Params map[string]any `json:"params"`
}

// response is the decrypted content of a kind 23195 event.
type response struct {
	ResultType string          `json:"result_type"`
	Error      *responseError  `json:"error"`
	Result     json.RawMessage `json:"result"`
}

type responseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// notification is the decrypted content of a kind 23197 (or 23196) event.
type notification struct {
	Type         string          `json:"notification_type"`
	Notification json.RawMessage `json:"notification"`
}

// transaction is NIP-47's invoice/payment object (make_invoice,
// lookup_invoice, notifications).
type transaction struct {
	Type            string `json:"type"`
	State           string `json:"state,omitempty"`
	Invoice         string `json:"invoice,omitempty"`
	Description     string `json:"description,omitempty"`
	DescriptionHash string `json:"description_hash,omitempty"`
	Preimage        string `json:"preimage,omitempty"`
	PaymentHash     string `json:"payment_hash"`
	Amount          int64  `json:"amount"`
	FeesPaid        int64  `json:"fees_paid"`
	CreatedAt       int64  `json:"created_at"`
	ExpiresAt       int64  `json:"expires_at,omitempty"`
	SettledAt       int64  `json:"settled_at,omitempty"`
	SettleDeadline  uint32 `json:"settle_deadline,omitempty"`
}

// invoice turns a NIP-47 transaction into a backend invoice. The BOLT11
// string is the authority for hash, amount, memo and times; the state comes
// from the wallet.
func (t *transaction) invoice() (*backend.Invoice, error) {
	d, err := backend.DecodeInvoice(t.Invoice)
	if err != nil {
		return nil, fmt.Errorf("nwc: wallet returned an invoice that does not decode: %w", err)
	}
	if t.PaymentHash != "" && !strings.EqualFold(t.PaymentHash, d.PaymentHash.String()) {
		return nil, fmt.Errorf("nwc: %w: wallet's payment_hash %s is not its invoice's %s", backend.ErrUnavailable, t.PaymentHash, d.PaymentHash)
	}
	inv := d.Invoice()
	switch t.State {
	case "settled":
		inv.State = backend.StateSettled
	case "accepted":
		inv.State = backend.StateHeld
	case "failed":
		inv.State = backend.StateCanceled
	case "pending", "expired":
		inv.State = backend.StateOpen
	case "":
		// Wallets from before the state field: settled_at says it.
		if t.SettledAt != 0 {
			inv.State = backend.StateSettled
		}
	default:
		return nil, fmt.Errorf("nwc: %w: unknown invoice state %q", backend.ErrUnavailable, t.State)
	}
	if inv.State == backend.StateSettled || inv.State == backend.StateHeld {
		inv.AmountReceived = backend.MilliSat(t.Amount)
		if inv.AmountReceived == 0 {
			inv.AmountReceived = inv.Amount
		}
	}
	if inv.State == backend.StateSettled {
		inv.SettledAt = time.Unix(t.SettledAt, 0)
	}
	if t.Preimage != "" {
		p, err := backend.ParsePreimage(t.Preimage)
		if err == nil && p.Matches(inv.PaymentHash) {
			inv.Preimage = &p
		}
	}
	return inv, nil
}

// cipher is one NIP-47 encryption scheme bound to a conversation.
type cipher interface {
	encrypt(plain string) (string, error)
	decrypt(msg string) (string, error)
	// tag is the encryption tag value requests carry ("" for NIP-04,
	// which is what a request without the tag means).
	tag() string
}

type nip44Cipher struct{ key [32]byte }

func (c nip44Cipher) encrypt(p string) (string, error) { return nip44.Encrypt(p, c.key) }
func (c nip44Cipher) decrypt(m string) (string, error) { return nip44.Decrypt(m, c.key) }
func (nip44Cipher) tag() string                        { return encNIP44 }

type nip04Cipher struct{ key []byte }

func (c nip04Cipher) encrypt(p string) (string, error) { return nip04.Encrypt(p, c.key) }
func (c nip04Cipher) decrypt(m string) (string, error) { return nip04.Decrypt(m, c.key) }
func (nip04Cipher) tag() string                        { return "" }

// newCipher makes the scheme's cipher between secret key sk and peer pub.
func newCipher(scheme, pub, sk string) (cipher, error) {
	switch scheme {
	case encNIP44:
		k, err := nip44.GenerateConversationKey(pub, sk)
		if err != nil {
			return nil, err
		}
		return nip44Cipher{k}, nil
	case encNIP04, "":
		k, err := nip04.ComputeSharedSecret(pub, sk)
		if err != nil {
			return nil, err
		}
		return nip04Cipher{k}, nil
	}
	return nil, fmt.Errorf("unknown encryption %q", scheme)
}

// chooseEncryption reads an info event's encryption tag as NIP-47 says:
// no tag means NIP-04 only; with a tag, NIP-44 v2 when listed, else NIP-04
// when listed; nothing this package speaks is ErrUnsupported.
func chooseEncryption(info *nostr.Event) (string, error) {
	tag := info.Tags.GetFirst([]string{"encryption", ""})
	if tag == nil {
		return encNIP04, nil
	}
	schemes := strings.Fields((*tag)[1])
	for _, want := range []string{encNIP44, encNIP04} {
		for _, s := range schemes {
			if s == want {
				return want, nil
			}
		}
	}
	return "", fmt.Errorf("nwc: %w: wallet offers encryption %q, this client speaks nip44_v2 and nip04", backend.ErrUnsupported, (*tag)[1])
}

// tagValue returns the first value of ev's tag named name.
func tagValue(ev *nostr.Event, name string) string {
	t := ev.Tags.GetFirst([]string{name, ""})
	if t == nil {
		return ""
	}
	return (*t)[1]
}

func isHex32(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32
}
