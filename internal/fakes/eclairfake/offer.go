package eclairfake

// Offers, as Eclair v0.14.1 (commit d769db07) serves them: createoffer,
// listoffers, disableoffer (api/handlers/Offer.scala, Eclair.scala
// createOffer/disableOffer/listOffers, OfferData as OfferDataSerializer
// writes it), payoffer (api/handlers/Payment.scala, payOfferInternal: the
// invoice is fetched first, then the payment id answered, or the Failure's
// text with 500) and listreceivedpayments (Bolt12Invoice as
// InvoiceSerializer writes it). The memory node is the issuer of the
// offers and the payer of their invoices: an invoice request reaches it in
// process, where a real node sends an onion message. A disabled offer's
// invoice request is answered with an error at once here; a real Eclair
// issuer ignores it and the payer's payoffer fails only at its timeout.

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt12"
)

// offerData is OfferDataJson.
type offerData struct {
	AmountMsat             *int64     `json:"amountMsat,omitempty"`
	Description            string     `json:"description,omitempty"`
	Issuer                 string     `json:"issuer,omitempty"`
	NodeID                 string     `json:"nodeId,omitempty"`
	BlindedPathFirstNodeID string     `json:"blindedPathFirstNodeId,omitempty"`
	CreatedAt              timestamp  `json:"createdAt"`
	Expiry                 *timestamp `json:"expiry,omitempty"`
	Disabled               bool       `json:"disabled"`
	DisabledAt             *timestamp `json:"disabledAt,omitempty"`
	Encoded                string     `json:"encoded"`
}

func (s *Server) offerData(o *backend.Offer) offerData {
	d := offerData{Description: o.Description, Issuer: o.Issuer, NodeID: s.node.NodeID(), Encoded: o.Bolt12, Disabled: !o.Active}
	if o.Amount > 0 {
		a := int64(o.Amount)
		d.AmountMsat = &a
	}
	if !o.ExpiresAt.IsZero() {
		e := seconds(o.ExpiresAt)
		d.Expiry = &e
	}
	s.mu.Lock()
	d.CreatedAt = s.offerCreated[o.ID]
	if at, ok := s.offerDisabled[o.ID]; ok {
		d.DisabledAt = &at
	}
	s.mu.Unlock()
	return d
}

// seconds is a TimestampSecond as Eclair writes it.
func seconds(t time.Time) timestamp {
	ts := millis(t.Truncate(time.Second))
	ts.Unix = t.Unix()
	return ts
}

func (s *Server) createOffer(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(r); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if _, ok := field(r, "blindedPathsFirstNodeId"); ok {
		writeError(w, http.StatusBadRequest, "eclairfake: blindedPathsFirstNodeId is not modelled")
		return
	}
	var req backend.OfferRequest
	req.Description, _ = field(r, "description")
	req.Issuer, _ = field(r, "issuer")
	if v, ok := field(r, "amountMsat"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			malformed(w, "amountMsat", "'"+v+"' is not a valid millisatoshi amount")
			return
		}
		req.Amount = backend.MilliSat(n)
	}
	if v, ok := field(r, "expireInSeconds"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			malformed(w, "expireInSeconds", fmt.Sprintf("'%s' is not a valid 64-bit signed integer value", v))
			return
		}
		req.Expiry = time.Duration(n) * time.Second
	}
	if req.Amount > 0 && req.Description == "" {
		// OfferCreator: CreateOfferError, failed Future, the generic 500.
		writeError(w, http.StatusInternalServerError, "Description is mandatory for offers with set amount")
		return
	}
	o, err := s.node.CreateOffer(r.Context(), req)
	if err != nil {
		s.nodeError(w, err)
		return
	}
	s.mu.Lock()
	if _, ok := s.offerCreated[o.ID]; !ok {
		s.offerCreated[o.ID] = millis(time.Now())
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.offerData(o))
}

func (s *Server) listOffers(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(r); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	activeOnly := true // listOffers(onlyActive.getOrElse(true))
	if v, ok := field(r, "activeOnly"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			malformed(w, "activeOnly", "'"+v+"' is not a valid Boolean value")
			return
		}
		activeOnly = b
	}
	offs, err := s.node.ListOffers(r.Context())
	if err != nil {
		s.nodeError(w, err)
		return
	}
	out := []offerData{}
	for _, o := range offs {
		if activeOnly && !o.Active {
			continue
		}
		out = append(out, s.offerData(o))
	}
	writeJSON(w, http.StatusOK, out)
}

// offerField reads the offer form field as offerFormParam does.
func offerField(w http.ResponseWriter, r *http.Request) (*bolt12.Offer, string, bool) {
	v, ok := field(r, "offer")
	if !ok {
		missing(w, "offer")
		return nil, "", false
	}
	o, err := bolt12.DecodeOffer(v)
	if err != nil {
		malformed(w, "offer", err.Error())
		return nil, "", false
	}
	return o, v, true
}

// disableOffer tells the offer manager to disable the offer and answers
// {offerId: true}, known offer or not (Eclair.scala disableOffer).
func (s *Server) disableOffer(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(r); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	o, _, ok := offerField(w, r)
	if !ok {
		return
	}
	id := o.ID()
	ids := hex.EncodeToString(id[:])
	if err := s.node.DisableOffer(r.Context(), ids); err == nil {
		s.mu.Lock()
		if _, done := s.offerDisabled[ids]; !done {
			s.offerDisabled[ids] = millis(time.Now())
		}
		s.mu.Unlock()
	} else if !errors.Is(err, backend.ErrNotFound) {
		s.nodeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{ids: true})
}

// payOffer fetches an invoice for the offer (amountMsat is required, the
// whole amount to pay), then pays it as payinvoice pays and answers the
// payment id; a failure to get an invoice is the 500 with OfferPayment's
// Failure.
func (s *Server) payOffer(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(r); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	o, offer, ok := offerField(w, r)
	if !ok {
		return
	}
	v, ok := field(r, "amountMsat")
	if !ok {
		missing(w, "amountMsat")
		return
	}
	amount, err := strconv.ParseInt(v, 10, 64)
	if err != nil || amount <= 0 {
		malformed(w, "amountMsat", "'"+v+"' is not a valid millisatoshi amount")
		return
	}
	for _, f := range []struct {
		name string
		bits int
	}{{"maxFeeFlatSat", 64}, {"maxAttempts", 32}, {"quantity", 64}} {
		if v, ok := field(r, f.name); ok {
			if _, err := strconv.ParseInt(v, 10, f.bits); err != nil {
				malformed(w, f.name, fmt.Sprintf("'%s' is not a valid %d-bit signed integer value", v, f.bits))
				return
			}
		}
	}
	if _, ok := field(r, "blocking"); ok {
		writeError(w, http.StatusBadRequest, "eclairfake: blocking payoffer is not modelled")
		return
	}
	switch {
	case o.Expired(time.Now()):
		writeError(w, http.StatusInternalServerError, "ExpiredOffer")
		return
	case o.Amount != 0 && uint64(amount) < o.Amount:
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("AmountInsufficient(%dmsat)", o.Amount))
		return
	}
	invreq, err := s.node.NewInvoiceRequest(offer, backend.MilliSat(amount), "")
	if err != nil {
		s.nodeError(w, err)
		return
	}
	inv, err := s.node.InvoiceForOffer(invreq)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InvalidInvoiceResponse(invoice_error: "+err.Error()+")")
		return
	}
	d, err := bolt12.DecodeInvoice(inv)
	if err != nil {
		s.nodeError(w, err)
		return
	}
	now := time.Now()
	parent := newUUID()
	out := &outgoing{
		rec: outgoingPayment{
			ID: newUUID(), ParentID: parent, PaymentHash: hex.EncodeToString(d.PaymentHash[:]), PaymentType: "Blinded",
			Amount: int64(d.Amount), RecipientAmount: int64(d.Amount), RecipientNodeID: hex.EncodeToString(d.NodeID),
			CreatedAt: millis(now), Status: outgoingStatus{Type: "pending"},
		},
		done: make(chan struct{}),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "server closed")
		return
	}
	s.sent = append(s.sent, out)
	s.wg.Add(1)
	s.mu.Unlock()
	go s.pay(out, inv, 0, now)
	writeJSON(w, http.StatusOK, parent)
}

// bolt12InvoiceJSON is a Bolt12Invoice as InvoiceSerializer writes it.
type bolt12InvoiceJSON struct {
	Amount      int64  `json:"amount"`
	NodeID      string `json:"nodeId"`
	PaymentHash string `json:"paymentHash"`
	Description string `json:"description,omitempty"`
	Features    any    `json:"features"`
	CreatedAt   int64  `json:"createdAt"`
	ExpiresAt   int64  `json:"expiresAt"`
	Serialized  string `json:"serialized"`
}

// listReceivedPayments lists the received payments of the node's offers
// between from and to (seconds), as IncomingPayment with its
// Bolt12Invoice. Payments of BOLT11 invoices are not listed by the fake.
func (s *Server) listReceivedPayments(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(r); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	from, to := int64(0), int64(1<<62)
	for name, dst := range map[string]*int64{"from": &from, "to": &to} {
		if v, ok := field(r, name); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				malformed(w, name, fmt.Sprintf("'%s' is not a valid 64-bit signed integer value", v))
				return
			}
			*dst = n
		}
	}
	offs, err := s.node.ListOffers(r.Context())
	if err != nil {
		s.nodeError(w, err)
		return
	}
	out := []any{}
	for _, o := range offs {
		invs, err := s.node.OfferPayments(r.Context(), o.ID)
		if err != nil {
			s.nodeError(w, err)
			return
		}
		for _, inv := range invs {
			if inv.SettledAt.Unix() < from || inv.SettledAt.Unix() > to {
				continue
			}
			p, err := incomingBolt12(inv)
			if err != nil {
				s.nodeError(w, err)
				return
			}
			out = append(out, p)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// incomingBolt12 is an IncomingPayment of an offer's invoice.
func incomingBolt12(inv *backend.Invoice) (map[string]any, error) {
	d, err := bolt12.DecodeInvoice(inv.PaymentRequest)
	if err != nil {
		return nil, err
	}
	out := map[string]any{
		"invoice": bolt12InvoiceJSON{
			Amount: int64(d.Amount), NodeID: hex.EncodeToString(d.NodeID), PaymentHash: inv.PaymentHash.String(),
			Description: d.Description, Features: map[string]any{"activated": map[string]any{}, "unknown": []any{}},
			CreatedAt: d.CreatedAt.Unix(), ExpiresAt: d.ExpiresAt().Unix(), Serialized: inv.PaymentRequest,
		},
		"paymentType": "Blinded",
		"createdAt":   millis(inv.CreatedAt),
		"status":      incomingStatus{Type: "pending"},
	}
	switch {
	case inv.State == backend.StateSettled:
		a := int64(inv.AmountReceived)
		at := millis(inv.SettledAt)
		out["status"] = incomingStatus{Type: "received", Amount: &a, ReceivedAt: &at}
		out["paymentPreimage"] = inv.Preimage.String()
	case inv.Expired(time.Now()):
		out["status"] = incomingStatus{Type: "expired"}
	}
	return out, nil
}

// offerReceivedInfo answers getreceivedinfo for an offer's invoice.
func (s *Server) offerReceivedInfo(w http.ResponseWriter, inv *backend.Invoice) {
	p, err := incomingBolt12(inv)
	if err != nil {
		s.nodeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}
