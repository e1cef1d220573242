package eclairfake

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt11"
)

// outgoing is one payment the fake made for payinvoice.
type outgoing struct {
	rec  outgoingPayment
	done chan struct{} // closed when rec.Status leaves pending
	// event is the payment-sent or payment-failed event, for blocking calls.
	event any
}

func (s *Server) payInvoice(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(r); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	bolt11, ok := field(r, "invoice")
	if !ok {
		missing(w, "invoice")
		return
	}
	d, err := decodeInvoice(bolt11)
	if err != nil {
		malformed(w, "invoice", err.Error())
		return
	}
	var override backend.MilliSat
	if v, ok := field(r, "amountMsat"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			malformed(w, "amountMsat", "'"+v+"' is not a valid millisatoshi amount")
			return
		}
		override = backend.MilliSat(n)
	}
	amount := d.Amount
	if override > 0 {
		amount = override
	}
	if amount == 0 {
		malformed(w, "invoice", "The invoice must have an amount or you need to specify one using the field 'amountMsat'")
		return
	}
	// maxFeeFlatSat is a Long (Satoshi), maxAttempts an Int.
	for _, f := range []struct {
		name string
		bits int
	}{{"maxFeeFlatSat", 64}, {"maxAttempts", 32}} {
		if v, ok := field(r, f.name); ok {
			if _, err := strconv.ParseInt(v, 10, f.bits); err != nil {
				malformed(w, f.name, fmt.Sprintf("'%s' is not a valid %d-bit signed integer value", v, f.bits))
				return
			}
		}
	}
	if v, ok := field(r, "maxFeePct"); ok {
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			malformed(w, "maxFeePct", "'"+v+"' is not a valid 64-bit floating point value")
			return
		}
	}
	blocking := false
	if v, ok := field(r, "blocking"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			malformed(w, "blocking", "'"+v+"' is not a valid Boolean value")
			return
		}
		blocking = b
	}
	externalID, _ := field(r, "externalId")

	inv, err := newInvoiceJSON(bolt11)
	if err != nil {
		s.nodeError(w, err)
		return
	}
	parent := newUUID()
	now := time.Now()
	if bits := s.unsupported(bolt11); bits != "" {
		// PaymentInitiator (eclair v0.14.1, commit d769db07,
		// payment/send/PaymentInitiator.scala, SendPaymentToNode) answers
		// the id first unless blocking, then replies PaymentFailed with
		// UnsupportedFeatures to the asker, which for a non-blocking call
		// has already gone: nothing is stored, no event is published, and
		// getsentinfo (Eclair.scala sentInfo) finds the id neither in the
		// database nor among PaymentInitiator's pending payments: [] for
		// good.
		if !blocking {
			writeJSON(w, http.StatusOK, parent)
			return
		}
		at := millis(now)
		writeJSON(w, http.StatusOK, paymentFailedEvent{
			Type:        "payment-failed",
			ID:          parent,
			PaymentHash: d.PaymentHash.String(),
			Failures:    []paymentFailure{{Amount: int64(amount), Route: []any{}, T: "unsupported invoice features: " + bits}},
			StartedAt:   at,
			SettledAt:   at,
		})
		return
	}
	o := &outgoing{
		rec: outgoingPayment{
			ID:              newUUID(),
			ParentID:        parent,
			ExternalID:      externalID,
			PaymentHash:     d.PaymentHash.String(),
			PaymentType:     "Standard",
			Amount:          int64(amount),
			RecipientAmount: int64(amount),
			RecipientNodeID: d.Payee,
			CreatedAt:       millis(now),
			Invoice:         inv,
			Status:          outgoingStatus{Type: "pending"},
		},
		done: make(chan struct{}),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "server closed")
		return
	}
	s.sent = append(s.sent, o)
	s.wg.Add(1)
	s.mu.Unlock()

	var payAmount backend.MilliSat
	if d.Amount == 0 {
		payAmount = amount
	}
	go s.pay(o, bolt11, payAmount, now)

	if !blocking {
		writeJSON(w, http.StatusOK, parent)
		return
	}
	select {
	case <-o.done:
		s.mu.Lock()
		ev := o.event
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, ev)
	case <-r.Context().Done():
	}
}

// pay makes the payment through the memory node and records the outcome,
// as Eclair's payment lifecycle records it in its payments database.
func (s *Server) pay(o *outgoing, bolt11 string, amount backend.MilliSat, started time.Time) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	var p *backend.Payment
	var err error
	if strings.HasPrefix(bolt11, "lni1") {
		p, err = s.node.PayBolt12Invoice(ctx, bolt11)
	} else {
		p, err = s.b.PayInvoice(ctx, bolt11, backend.PayOptions{Amount: amount, Timeout: time.Minute})
	}
	done := millis(time.Now())
	s.mu.Lock()
	if err != nil {
		o.rec.Status = outgoingStatus{
			Type:        "failed",
			Failures:    []failureSummary{{FailureType: "Local", FailureMessage: err.Error(), FailedRoute: []any{}}},
			CompletedAt: &done,
		}
		o.event = paymentFailedEvent{
			Type:        "payment-failed",
			ID:          o.rec.ParentID,
			PaymentHash: o.rec.PaymentHash,
			Failures:    []paymentFailure{{Amount: o.rec.Amount, Route: []any{}, T: err.Error()}},
			StartedAt:   millis(started),
			SettledAt:   done,
		}
	} else {
		fees := int64(p.Fee)
		o.rec.Status = outgoingStatus{
			Type:            "sent",
			PaymentPreimage: p.Preimage.String(),
			FeesPaid:        &fees,
			Route:           &[]any{},
			CompletedAt:     &done,
		}
		o.event = paymentSentEvent{
			Type:            "payment-sent",
			ID:              o.rec.ParentID,
			PaymentHash:     o.rec.PaymentHash,
			PaymentPreimage: p.Preimage.String(),
			RecipientAmount: o.rec.RecipientAmount,
			RecipientNodeID: o.rec.RecipientNodeID,
			Parts: []sentPart{{
				ID: o.rec.ID, ChannelID: randomHex32(), NextNodeID: o.rec.RecipientNodeID,
				AmountWithFees: o.rec.Amount + fees, Fees: fees, Route: []any{},
				StartedAt: millis(started), SettledAt: done,
			}},
			Fees:      fees,
			StartedAt: millis(started),
			SettledAt: done,
		}
	}
	ev := o.event
	close(o.done)
	s.mu.Unlock()
	s.broadcast(ev)
}

func (s *Server) getSentInfo(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(r); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var match func(o *outgoing) bool
	if v, ok := field(r, "id"); ok {
		if !isUUID(v) {
			malformed(w, "id", "Invalid UUID string: "+v)
			return
		}
		// Eclair looks the id up as a parent id first (the id payinvoice
		// returns), then as the id of one attempt.
		byParent := false
		s.mu.Lock()
		for _, o := range s.sent {
			if o.rec.ParentID == v {
				byParent = true
				break
			}
		}
		s.mu.Unlock()
		if byParent {
			match = func(o *outgoing) bool { return o.rec.ParentID == v }
		} else {
			match = func(o *outgoing) bool { return o.rec.ID == v }
		}
	} else if v, ok := field(r, "paymentHash"); ok {
		h, err := parseBytes32(v)
		if err != nil {
			malformed(w, "paymentHash", err.Error())
			return
		}
		hs := hex.EncodeToString(h[:])
		match = func(o *outgoing) bool { return o.rec.PaymentHash == hs }
	} else {
		missing(w, "id")
		return
	}
	out := []outgoingPayment{}
	s.mu.Lock()
	for _, o := range s.sent {
		if match(o) {
			out = append(out, o.rec)
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

func randomHex32() string {
	p, _ := backend.NewPreimage()
	return p.String()
}

// unsupported returns the invoice's features as hex (Features.toByteVector)
// when it requires one this node has disabled, as
// nodeParams.features.invoiceFeatures().areSupported refuses it, or "".
func (s *Server) unsupported(invoice string) string {
	inv, err := bolt11.Decode(invoice)
	if err != nil {
		return ""
	}
	refused := false
	for _, b := range inv.Features {
		for _, off := range s.cfg.DisabledFeatures {
			refused = refused || (b%2 == 0 && b/2 == off/2)
		}
	}
	if !refused {
		return ""
	}
	max := 0
	for _, b := range inv.Features {
		max = b
	}
	vec := make([]byte, max/8+1)
	for _, b := range inv.Features {
		vec[len(vec)-1-b/8] |= 1 << (b % 8)
	}
	return hex.EncodeToString(vec)
}
