package phoenixdfake

// Offers as phoenixd serves them (ACINQ/phoenixd 402c2eac, v0.8.0-1,
// Api.kt): GET /getoffer answers the node's default offer, a plain
// string; POST /payoffer (offer, amountSat, message) fetches an invoice
// and pays it, answering PaymentSent, or PaymentFailed (HTTP 200) when the
// payment or the fetch failed (OfferNotPaid). The memory node is the
// issuer: an invoice request reaches it in process.

import (
	"net/http"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt12"
)

// getOffer answers the node's default offer: one any-amount offer, the
// same on every call.
func (s *Server) getOffer(w http.ResponseWriter, r *http.Request) {
	s.offerMu.Lock()
	defer s.offerMu.Unlock()
	if s.offer == "" {
		off, err := s.node.CreateOffer(r.Context(), backend.OfferRequest{})
		if err != nil {
			text(w, http.StatusInternalServerError, err.Error())
			return
		}
		s.offer = off.Bolt12
	}
	text(w, http.StatusOK, s.offer)
}

func (s *Server) payOffer(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		text(w, http.StatusBadRequest, err.Error())
		return
	}
	amountSat, hasAmount, ok := optionalLong(w, r, "amountSat")
	if !ok {
		return
	}
	offer, present := formValue(r, "offer")
	if !present {
		missing(w, "offer")
		return
	}
	o, err := bolt12.DecodeOffer(offer)
	if err != nil {
		badType(w, "offer", "offer")
		return
	}
	amount := backend.MilliSat(o.Amount)
	if hasAmount {
		amount = backend.Sat(amountSat)
	}
	if amount == 0 {
		missing(w, "amountSat")
		return
	}
	note, _ := formValue(r, "message")
	invreq, err := s.node.NewInvoiceRequest(offer, amount, note)
	if err != nil {
		text(w, http.StatusBadRequest, err.Error())
		return
	}
	inv, err := s.node.InvoiceForOffer(invreq)
	if err != nil {
		writeJSON(w, paymentFailed{PaymentHash: "", Reason: "offer not paid: " + err.Error()})
		return
	}
	pay, err := s.node.PayBolt12Invoice(r.Context(), inv)
	if err != nil {
		d, _ := bolt12.DecodeInvoice(inv)
		hash := ""
		if d != nil {
			hash = backend.PaymentHash(d.PaymentHash).String()
		}
		writeJSON(w, paymentFailed{PaymentHash: hash, Reason: err.Error()})
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
