package proxy

import (
	"encoding/json"
	"net/http"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

// Responses: the gate's own answers (refusals, 402 bodies, 503) and the
// writer that remembers the upstream's status.

// refuse answers a presented token that does not grant the request: 401
// with the reason, and a fresh challenge so the client can buy a new token.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, route *Route, why string, err error) {
	p.m.refused.WithLabelValues(route.Name, why).Inc()
	p.m.requests.WithLabelValues(route.Name, "refused").Inc()
	p.log.Info("token refused", "route", route.Name, "reason", why, "err", err)
	p.challenge(w, r, route, "token refused ("+why+"): "+err.Error())
}

func (p *Proxy) unavailable(w http.ResponseWriter, route *Route, msg string, err error) {
	p.m.requests.WithLabelValues(route.Name, "unavailable").Inc()
	p.log.Warn(msg, "route", route.Name, "err", err)
	w.Header().Set("Retry-After", "5")
	writeError(w, http.StatusServiceUnavailable, msg, "unavailable")
}

type errorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason,omitempty"`
}

func writeError(w http.ResponseWriter, status int, msg, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody{Error: msg, Reason: reason})
}

type challengeBody struct {
	Error       string `json:"error"`
	Invoice     string `json:"invoice"`
	PaymentHash string `json:"payment_hash"`
	AmountMsat  int64  `json:"amount_msat"`
}

func writeChallenge(w http.ResponseWriter, msg string, inv *backend.Invoice, price backend.MilliSat) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusPaymentRequired)
	json.NewEncoder(w).Encode(challengeBody{Error: msg, Invoice: inv.PaymentRequest, PaymentHash: inv.PaymentHash.String(), AmountMsat: int64(price)})
}

// problemChallenge is the 402 body of a route that offers the Payment
// scheme: an RFC 9457 problem document (draft-httpauth-payment's types),
// with the L402 invoice's fields of challengeBody as extension members when
// an L402 challenge was sent too.
type problemChallenge struct {
	l402.Problem
	Invoice     string `json:"invoice,omitempty"`
	PaymentHash string `json:"payment_hash,omitempty"`
	AmountMsat  int64  `json:"amount_msat,omitempty"`
}

func writeProblemChallenge(w http.ResponseWriter, msg string, problem error, charge l402.PaymentChallenge, inv *backend.Invoice, price backend.MilliSat) {
	typ, title := l402.ProblemFor(problem)
	body := problemChallenge{Problem: l402.Problem{Type: typ, Title: title, Status: http.StatusPaymentRequired, Detail: msg, ChallengeID: charge.ID}}
	if inv != nil {
		body.Invoice, body.PaymentHash, body.AmountMsat = inv.PaymentRequest, inv.PaymentHash.String(), int64(price)
	}
	w.Header().Set("Content-Type", l402.ProblemContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusPaymentRequired)
	json.NewEncoder(w).Encode(body)
}

// statusWriter remembers the status the handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and friends.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
