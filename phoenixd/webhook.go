package phoenixd

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/l402kit/l402kit/backend"
)

// SignatureHeader is the header phoenixd signs webhook calls with: the hex
// HMAC-SHA256 of the raw body, keyed with webhook-secret from phoenix.conf
// (both taken as UTF-8 bytes; the secret is not hex-decoded).
const SignatureHeader = "X-Phoenix-Signature"

// ErrBadSignature is what VerifyWebhook returns for a missing, malformed or
// wrong signature. It wraps backend.ErrInvalid.
var ErrBadSignature = fmt.Errorf("%w: phoenixd webhook signature", backend.ErrInvalid)

// VerifyWebhook checks that body was signed by a phoenixd holding secret.
// signature is the X-Phoenix-Signature header's value. The comparison is in
// constant time.
func VerifyWebhook(secret string, body []byte, signature string) error {
	if secret == "" {
		return fmt.Errorf("%w: empty webhook secret", ErrBadSignature)
	}
	sig := strings.TrimSpace(signature)
	if sig == "" {
		return fmt.Errorf("%w: missing %s header", ErrBadSignature, SignatureHeader)
	}
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: %s is not 64 hex characters", ErrBadSignature, SignatureHeader)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return fmt.Errorf("%w: signature does not match the body", ErrBadSignature)
	}
	return nil
}

// WebhookEvent is the JSON body of a phoenixd webhook call, the same event
// the websocket streams. AmountSat is in satoshis; Timestamp in Unix
// milliseconds. phoenixd sends null for the absent optional fields.
type WebhookEvent struct {
	Type        string              `json:"type"` // "payment_received"
	Timestamp   int64               `json:"timestamp"`
	AmountSat   int64               `json:"amountSat"`
	PaymentHash backend.PaymentHash `json:"paymentHash"`
	ExternalID  *string             `json:"externalId"`
	PayerNote   *string             `json:"payerNote"` // Bolt12 payments only
	PayerKey    *string             `json:"payerKey"`  // Bolt12 payments only
}

// Amount returns AmountSat as millisatoshis.
func (e *WebhookEvent) Amount() backend.MilliSat { return backend.Sat(e.AmountSat) }

// maxWebhookBody bounds a webhook body; phoenixd's are a few hundred bytes.
const maxWebhookBody = 64 << 10

// WebhookHandler returns an http.Handler for phoenixd's webhook calls: it
// answers 405 to anything but POST, 401 when the signature does not verify,
// 400 when the body is not an event, and otherwise calls handle and answers
// 200, or 500 when handle fails (phoenixd does not retry; the status is for
// logs). The body is verified before it is parsed.
func WebhookHandler(secret string, handle func(ctx context.Context, ev *WebhookEvent) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		if err := VerifyWebhook(secret, body, r.Header.Get(SignatureHeader)); err != nil {
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		var ev WebhookEvent
		if err := json.Unmarshal(body, &ev); err != nil || ev.Type == "" {
			http.Error(w, "not a phoenixd event", http.StatusBadRequest)
			return
		}
		if err := handle(r.Context(), &ev); err != nil {
			http.Error(w, "handler failed", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}
