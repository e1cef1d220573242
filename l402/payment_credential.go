package l402

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/l402kit/l402kit/backend"
)

// maxPaymentCredentialLen bounds the encoded credential ParsePaymentAuthorization
// reads: an echoed charge challenge with a BOLT11 invoice is a few KiB.
const maxPaymentCredentialLen = 32 << 10

// PaymentCredential is what "Authorization: Payment" carries: the challenge
// echoed unchanged, an optional payer identifier, and the method's proof.
type PaymentCredential struct {
	Challenge PaymentChallenge `json:"challenge"`
	Source    string           `json:"source,omitempty"`
	Payload   json.RawMessage  `json:"payload"`
}

// NewChargeCredential answers the charge c with the preimage of its
// invoice.
func NewChargeCredential(c PaymentChallenge, pre backend.Preimage) PaymentCredential {
	p, _ := json.Marshal(ChargePayload{Preimage: pre.String()})
	return PaymentCredential{Challenge: c, Payload: p}
}

// Authorization returns the Authorization value presenting cred:
// "Payment " and base64url (no padding) of its canonical JSON.
func (cred PaymentCredential) Authorization() (string, error) {
	b, err := Canonical(cred)
	if err != nil {
		return "", fmt.Errorf("l402: encode Payment credential: %w", err)
	}
	return SchemePayment + " " + base64.RawURLEncoding.EncodeToString(b), nil
}

// ChargePreimage reads the preimage of a charge credential's payload.
func (cred PaymentCredential) ChargePreimage() (backend.Preimage, error) {
	var p ChargePayload
	var pre backend.Preimage
	if err := json.Unmarshal(cred.Payload, &p); err != nil {
		return pre, fmt.Errorf("%w: Payment payload is not a charge proof: %v", ErrMalformed, err)
	}
	if len(p.Preimage) != 64 {
		return pre, fmt.Errorf("%w: Payment preimage is %d characters, want 64 hex", ErrMalformed, len(p.Preimage))
	}
	if _, err := hex.Decode(pre[:], []byte(p.Preimage)); err != nil {
		return pre, fmt.Errorf("%w: Payment preimage is not hex", ErrMalformed)
	}
	return pre, nil
}

// IsPaymentAuthorization reports whether an Authorization value uses the
// Payment scheme (any case), whatever follows.
func IsPaymentAuthorization(v string) bool {
	scheme, _, _ := strings.Cut(strings.TrimSpace(v), " ")
	return strings.EqualFold(scheme, SchemePayment)
}

// PaymentFromHeader reads the Payment credential of a request: the first
// Authorization value with the Payment scheme. ErrNoPaymentCredentials
// when there is none.
func PaymentFromHeader(h http.Header) (*PaymentCredential, error) {
	for _, v := range h.Values(HeaderAuthorization) {
		if IsPaymentAuthorization(v) {
			return ParsePaymentAuthorization(v)
		}
	}
	return nil, ErrNoPaymentCredentials
}

// ParsePaymentAuthorization reads "Payment <base64url JSON>": strict
// base64url (padding accepted, nothing else), a JSON object with the
// challenge's required parameters and a payload. Errors match
// ErrMalformed and never quote the payload.
func ParsePaymentAuthorization(v string) (*PaymentCredential, error) {
	if len(v) > maxPaymentCredentialLen {
		return nil, fmt.Errorf("%w: Payment credential is %d bytes, more than %d", ErrMalformed, len(v), maxPaymentCredentialLen)
	}
	scheme, tok, _ := strings.Cut(strings.TrimSpace(v), " ")
	if !strings.EqualFold(scheme, SchemePayment) {
		return nil, fmt.Errorf("%w: authorization scheme is not Payment", ErrMalformed)
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return nil, fmt.Errorf("%w: empty Payment credential", ErrMalformed)
	}
	raw, err := DecodeBase64URL(tok)
	if err != nil {
		return nil, fmt.Errorf("%w: Payment credential: %v", ErrMalformed, err)
	}
	var cred PaymentCredential
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&cred); err != nil {
		return nil, fmt.Errorf("%w: Payment credential is not a JSON object", ErrMalformed)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: Payment credential has data after its JSON object", ErrMalformed)
	}
	c := cred.Challenge
	for _, f := range [][2]string{{"id", c.ID}, {"realm", c.Realm}, {"method", c.Method}, {"intent", c.Intent}, {"request", c.Request}} {
		if f[1] == "" {
			return nil, fmt.Errorf("%w: Payment credential has no challenge.%s", ErrMalformed, f[0])
		}
	}
	if p := bytes.TrimSpace(cred.Payload); len(p) == 0 || bytes.Equal(p, []byte("null")) {
		return nil, fmt.Errorf("%w: Payment credential has no payload", ErrMalformed)
	}
	return &cred, nil
}

// DecodeBase64URL decodes base64url as the Payment scheme writes it: the
// URL alphabet only, padding optional but then exact, unused trailing bits
// zero. Every value has one spelling (besides padding): a lenient decoder
// (Go's skips line breaks, others drop trailing bits) would give one value
// several.
func DecodeBase64URL(s string) ([]byte, error) {
	un := strings.TrimRight(s, "=")
	if pad := len(s) - len(un); pad > 0 && (pad > 2 || len(s)%4 != 0) {
		return nil, errors.New("base64url padding is wrong")
	}
	for i := 0; i < len(un); i++ {
		c := un[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("byte %d is not base64url", i)
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(un)
	if err != nil {
		return nil, errors.New("not base64url")
	}
	return b, nil
}
