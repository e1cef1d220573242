package phoenixdfake

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt11"
)

type paymentSent struct {
	RecipientAmountSat int64  `json:"recipientAmountSat"`
	RoutingFeeSat      int64  `json:"routingFeeSat"`
	PaymentID          string `json:"paymentId"`
	PaymentHash        string `json:"paymentHash"`
	PaymentPreimage    string `json:"paymentPreimage"`
}

type paymentFailed struct {
	PaymentHash string `json:"paymentHash"`
	Reason      string `json:"reason"`
}

func (s *Server) payInvoice(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		text(w, http.StatusBadRequest, err.Error())
		return
	}
	amountSat, hasAmount, ok := optionalLong(w, r, "amountSat")
	if !ok {
		return
	}
	bolt11String, present := formValue(r, "invoice")
	if !present {
		missing(w, "invoice")
		return
	}
	// lightning-kmp's Bolt11Invoice.read takes the bare invoice only: no
	// surrounding whitespace, no "lightning:" scheme.
	if _, err := bolt11.Decode(bolt11String); err != nil {
		badType(w, "invoice", "bolt11invoice")
		return
	}
	d, err := backend.DecodeInvoice(bolt11String)
	if err != nil {
		badType(w, "invoice", "bolt11invoice")
		return
	}
	amount := d.Amount
	if hasAmount {
		amount = backend.Sat(amountSat)
	}
	if amount == 0 {
		missing(w, "amountSat")
		return
	}
	opts := backend.PayOptions{}
	if d.Amount == 0 {
		opts.Amount = amount
	} else if hasAmount {
		opts.Amount = amount // memory refuses a different amount; phoenixd would try to pay it
	}
	pay, err := s.b.PayInvoice(r.Context(), bolt11String, opts)
	if err != nil {
		writeJSON(w, paymentFailed{PaymentHash: d.PaymentHash.String(), Reason: err.Error()})
		return
	}
	writeJSON(w, paymentSent{
		RecipientAmountSat: pay.Amount.Sats(),
		RoutingFeeSat:      pay.Fee.Sats(),
		PaymentID:          newUUID(),
		PaymentHash:        pay.PaymentHash.String(),
		PaymentPreimage:    pay.Preimage.String(),
	})
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
