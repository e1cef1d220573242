package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// Node calls: every backend call the gate makes goes through nodeCall for
// its metrics; Healthz pings the node.

func (p *Proxy) lookup(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.NodeTimeout)
	defer cancel()
	var inv *backend.Invoice
	err := p.nodeCall("lookup_invoice", func() (err error) {
		inv, err = p.cfg.Backend.LookupInvoice(ctx, hash)
		return err
	})
	return inv, err
}

func (p *Proxy) nodeCall(op string, f func() error) error {
	start := time.Now()
	err := f()
	result := "ok"
	if err != nil {
		result = "error"
	}
	p.m.nodeCalls.WithLabelValues(op, result).Observe(time.Since(start).Seconds())
	return err
}

// Healthz answers 200 when the backend's node answers a ping (its getinfo,
// or for LNURL-pay the service's pay parameters), 503 with the reason when
// it does not. A backend that cannot be pinged is reported as such, with
// 200: the proxy cannot tell.
func (p *Proxy) Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), p.cfg.NodeTimeout)
		defer cancel()
		b := p.cfg.Backend
		body := map[string]any{"backend_abilities": backend.Abilities(b)}
		err := p.nodeCall("ping", func() error { return b.Ping(ctx) })
		if errors.Is(err, backend.ErrUnsupported) {
			body["backend"] = "unchecked: the backend cannot be pinged"
			err = nil
		}
		if err == nil && b.Supports(backend.AbilityInfo) {
			if info, ierr := b.Info(ctx); ierr == nil {
				body["node"] = info
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			body["status"] = "unavailable"
			body["error"] = err.Error()
			w.WriteHeader(http.StatusServiceUnavailable)
		} else {
			body["status"] = "ok"
		}
		json.NewEncoder(w).Encode(body)
	})
}
