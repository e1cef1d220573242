package phoenixdfake

import (
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/l402kit/l402kit/backend"
)

type invoiceMeta struct {
	externalID *string
	webhookURL string
	descHash   bool
}

type generatedInvoice struct {
	AmountSat   *int64 `json:"amountSat,omitempty"`
	PaymentHash string `json:"paymentHash"`
	Serialized  string `json:"serialized"`
}

func (s *Server) createInvoice(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		text(w, http.StatusBadRequest, err.Error())
		return
	}
	amountSat, hasAmount, ok := optionalLong(w, r, "amountSat")
	if !ok {
		return
	}
	if hasAmount && amountSat <= 0 {
		// lightning-kmp's Bolt11Invoice requires a positive amount; the
		// IllegalArgumentException reaches phoenixd's StatusPages as a 500
		// with its message.
		text(w, http.StatusInternalServerError, "amount is not valid")
		return
	}
	desc, hasDesc := formValue(r, "description")
	if hasDesc && len(utf16.Encode([]rune(desc))) > 128 {
		text(w, http.StatusBadRequest, "Request parameter description is too long (max 128 characters)")
		return
	}
	var descHash *[32]byte
	if v, ok := formValue(r, "descriptionHash"); ok {
		b, err := hex.DecodeString(v)
		if err != nil || len(b) != 32 {
			badType(w, "descriptionHash", "hex32")
			return
		}
		descHash = new([32]byte)
		copy(descHash[:], b)
	}
	if hasDesc == (descHash != nil) {
		text(w, http.StatusBadRequest, "Must provide either a description or descriptionHash")
		return
	}
	expiry, hasExpiry, ok := optionalLong(w, r, "expirySeconds")
	if !ok {
		return
	}
	req := backend.InvoiceRequest{Amount: backend.Sat(amountSat), DescriptionHash: descHash}
	if hasDesc {
		req.Memo = desc
	}
	if hasExpiry {
		if expiry <= 0 {
			text(w, http.StatusBadRequest, "expirySeconds must be positive")
			return
		}
		req.Expiry = time.Duration(expiry) * time.Second
	} else {
		req.Expiry = time.Hour // phoenixd's documented default
	}
	var meta invoiceMeta
	meta.descHash = descHash != nil
	if v, ok := formValue(r, "externalId"); ok {
		meta.externalID = &v
	}
	if v, ok := formValue(r, "webhookUrl"); ok {
		if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
			badType(w, "webhookUrl", "url")
			return
		}
		meta.webhookURL = v
	}
	inv, err := s.b.CreateInvoice(r.Context(), req)
	if err != nil {
		s.nodeError(w, err)
		return
	}
	s.mu.Lock()
	s.meta[inv.PaymentHash] = meta
	s.mu.Unlock()
	s.watch(inv.PaymentHash)

	out := generatedInvoice{PaymentHash: inv.PaymentHash.String(), Serialized: inv.PaymentRequest}
	if inv.Amount > 0 {
		sat := inv.Amount.Sats()
		out.AmountSat = &sat
	}
	writeJSON(w, out)
}

type incomingPayment struct {
	Type         string  `json:"type"`
	SubType      string  `json:"subType"`
	PaymentHash  string  `json:"paymentHash"`
	Preimage     string  `json:"preimage"`
	ExternalID   *string `json:"externalId,omitempty"`
	Description  *string `json:"description,omitempty"`
	Invoice      string  `json:"invoice"`
	IsPaid       bool    `json:"isPaid"`
	IsExpired    bool    `json:"isExpired"`
	RequestedSat *int64  `json:"requestedSat,omitempty"`
	ReceivedSat  int64   `json:"receivedSat"`
	Fees         int64   `json:"fees"`
	ExpiresAt    int64   `json:"expiresAt"`
	CompletedAt  *int64  `json:"completedAt,omitempty"`
	CreatedAt    int64   `json:"createdAt"`
}

func (s *Server) incomingPayment(w http.ResponseWriter, r *http.Request) {
	hash, err := backend.ParsePaymentHash(r.PathValue("paymentHash"))
	if err != nil {
		badType(w, "paymentHash", "hex32")
		return
	}
	inv, err := s.b.LookupInvoice(r.Context(), hash)
	if errors.Is(err, backend.ErrNotFound) {
		text(w, http.StatusNotFound, "Not found")
		return
	}
	if err != nil {
		s.nodeError(w, err)
		return
	}
	s.mu.Lock()
	meta, known := s.meta[hash]
	s.mu.Unlock()
	if !known {
		// Not made through this API (a hold invoice made on the node
		// directly, say): phoenixd would not know it either.
		text(w, http.StatusNotFound, "Not found")
		return
	}
	out := incomingPayment{
		Type:        "incoming_payment",
		SubType:     "lightning",
		PaymentHash: hash.String(),
		ExternalID:  meta.externalID,
		Invoice:     inv.PaymentRequest,
		IsPaid:      inv.State == backend.StateSettled,
		IsExpired:   time.Now().After(inv.ExpiresAt),
		ReceivedSat: inv.AmountReceived.Sats(),
		ExpiresAt:   inv.ExpiresAt.UnixMilli(),
		CreatedAt:   inv.CreatedAt.UnixMilli(),
	}
	if inv.Preimage != nil {
		out.Preimage = inv.Preimage.String()
	}
	if !meta.descHash {
		memo := inv.Memo
		out.Description = &memo
	}
	if inv.Amount > 0 {
		sat := inv.Amount.Sats()
		out.RequestedSat = &sat
	}
	if out.IsPaid {
		done := inv.SettledAt.UnixMilli()
		out.CompletedAt = &done
	}
	writeJSON(w, out)
}
