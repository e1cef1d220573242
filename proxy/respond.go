package proxy

import (
	"encoding/json"
	"net/http"

	"github.com/l402kit/l402kit/backend"
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
