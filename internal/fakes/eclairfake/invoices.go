package eclairfake

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt11"
)

func (s *Server) createInvoice(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(r); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var req backend.InvoiceRequest
	desc, hasDesc := field(r, "description")
	dh, hasDH := field(r, "descriptionHash")
	if hasDH {
		h, err := parseBytes32(dh)
		if err != nil {
			malformed(w, "descriptionHash", err.Error())
			return
		}
		req.DescriptionHash = &h
	}
	if v, ok := field(r, "amountMsat"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			malformed(w, "amountMsat", "'"+v+"' is not a valid 64-bit signed integer value")
			return
		}
		if n <= 0 {
			// Bolt11Invoice requires a positive amount ("amount is not
			// valid"); the requirement fails inside Eclair's invoice actor,
			// so the API answers the generic 500 when its ask times out.
			// The fake answers at once.
			writeError(w, http.StatusInternalServerError, internalErrorMessage)
			return
		}
		req.Amount = backend.MilliSat(n)
	}
	if v, ok := field(r, "expireIn"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			malformed(w, "expireIn", "'"+v+"' is not a valid 64-bit signed integer value")
			return
		}
		req.Expiry = time.Duration(n) * time.Second
	}
	if v, ok := field(r, "paymentPreimage"); ok {
		p, err := parseBytes32(v)
		if err != nil {
			malformed(w, "paymentPreimage", err.Error())
			return
		}
		pre := backend.Preimage(p)
		req.Preimage = &pre
	}
	// Eclair's route fails with a RuntimeException here, which its
	// exception handler turns into the generic 500.
	if hasDesc == hasDH {
		writeError(w, http.StatusInternalServerError, internalErrorMessage)
		return
	}
	req.Memo = desc
	inv, err := s.b.CreateInvoice(r.Context(), req)
	switch {
	case errors.Is(err, backend.ErrInvalid):
		// IllegalArgumentException in Eclair: 400 with the generic text.
		writeError(w, http.StatusBadRequest, internalErrorMessage)
		return
	case err != nil:
		s.nodeError(w, err)
		return
	}
	j, err := newInvoiceJSON(inv.PaymentRequest)
	if err != nil {
		s.nodeError(w, err)
		return
	}
	s.watch(inv.PaymentHash)
	writeJSON(w, http.StatusOK, j)
}

// hashField reads paymentHash, or the hash of an invoice field, as
// getreceivedinfo accepts either.
func hashField(w http.ResponseWriter, r *http.Request, allowInvoice bool) (backend.PaymentHash, bool) {
	if err := parseForm(r); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return backend.PaymentHash{}, false
	}
	if v, ok := field(r, "paymentHash"); ok {
		h, err := parseBytes32(v)
		if err != nil {
			malformed(w, "paymentHash", err.Error())
			return backend.PaymentHash{}, false
		}
		return h, true
	}
	if allowInvoice {
		if v, ok := field(r, "invoice"); ok {
			d, err := decodeInvoice(v)
			if err != nil {
				malformed(w, "invoice", err.Error())
				return backend.PaymentHash{}, false
			}
			return d.PaymentHash, true
		}
	}
	missing(w, "paymentHash")
	return backend.PaymentHash{}, false
}

// lookup returns the node's invoice, answering 404 as Eclair's
// completeOrNotFound does when there is none. Eclair has no canceled
// invoices (it deletes them), so a canceled one reads as not found.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, hash backend.PaymentHash) (*backend.Invoice, bool) {
	inv, err := s.b.LookupInvoice(r.Context(), hash)
	if errors.Is(err, backend.ErrNotFound) || (err == nil && inv.State == backend.StateCanceled) {
		writeError(w, http.StatusNotFound, "Not found")
		return nil, false
	}
	if err != nil {
		s.nodeError(w, err)
		return nil, false
	}
	return inv, true
}

func (s *Server) getInvoice(w http.ResponseWriter, r *http.Request) {
	hash, ok := hashField(w, r, false)
	if !ok {
		return
	}
	inv, ok := s.lookup(w, r, hash)
	if !ok {
		return
	}
	j, err := newInvoiceJSON(inv.PaymentRequest)
	if err != nil {
		s.nodeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) getReceivedInfo(w http.ResponseWriter, r *http.Request) {
	hash, ok := hashField(w, r, true)
	if !ok {
		return
	}
	inv, ok := s.lookup(w, r, hash)
	if !ok {
		return
	}
	if strings.HasPrefix(inv.PaymentRequest, "lni1") {
		s.offerReceivedInfo(w, inv)
		return
	}
	j, err := newInvoiceJSON(inv.PaymentRequest)
	if err != nil {
		s.nodeError(w, err)
		return
	}
	var pre backend.Preimage
	if inv.Preimage != nil {
		pre = *inv.Preimage
	}
	out := incomingPayment{
		Invoice:         j,
		PaymentPreimage: pre.String(),
		PaymentType:     "Standard",
		CreatedAt:       millis(inv.CreatedAt),
	}
	switch {
	case inv.State == backend.StateSettled:
		a := int64(inv.AmountReceived)
		at := millis(inv.SettledAt)
		out.Status = incomingStatus{Type: "received", Amount: &a, ReceivedAt: &at}
	case inv.Expired(time.Now()):
		out.Status = incomingStatus{Type: "expired"}
	default:
		out.Status = incomingStatus{Type: "pending"}
	}
	writeJSON(w, http.StatusOK, out)
}

// decodeInvoice reads an invoice form field as Eclair's
// Bolt11Invoice.fromString does: the bare invoice only, without surrounding
// whitespace or a "lightning:" scheme.
func decodeInvoice(s string) (*backend.DecodedInvoice, error) {
	if _, err := bolt11.Decode(s); err != nil {
		return nil, err
	}
	return backend.DecodeInvoice(s)
}
