package l402

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// PaymentReceipt is the Payment-Receipt of an accepted credential. For a
// Lightning charge, Reference is the payment hash.
type PaymentReceipt struct {
	Status      string `json:"status"`
	Method      string `json:"method"`
	Timestamp   string `json:"timestamp"`
	Reference   string `json:"reference"`
	ChallengeID string `json:"challengeId,omitempty"`
}

// Header returns the Payment-Receipt value: base64url (no padding) of the
// canonical JSON of r.
func (r PaymentReceipt) Header() string {
	b, err := Canonical(r)
	if err != nil {
		// Only strings: Marshal and Transform cannot fail on them.
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParsePaymentReceipt reads the Payment-Receipt of a response; ok is false
// when there is none.
func ParsePaymentReceipt(h http.Header) (r PaymentReceipt, ok bool, err error) {
	v := h.Get(HeaderPaymentReceipt)
	if v == "" {
		return r, false, nil
	}
	b, err := DecodeBase64URL(strings.TrimSpace(v))
	if err != nil {
		return r, true, fmt.Errorf("%w: Payment-Receipt: %v", ErrMalformed, err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, true, fmt.Errorf("%w: Payment-Receipt is not a JSON object", ErrMalformed)
	}
	return r, true, nil
}
