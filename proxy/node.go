package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
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

// Healthz answers 200 when the backend's node answered its last ping (its
// getinfo, or for LNURL-pay the service's pay parameters), 503 with the
// reason when it did not. A backend that cannot be pinged is reported as
// such, with 200: the proxy cannot tell. The ping is at most
// Config.HealthMaxAge old (plus the ping's own NodeTimeout), and at most one
// is in flight, so a flood of health checks costs the node nothing more.
// The node's identity (id, alias) is not shown: see HealthzWithNode.
func (p *Proxy) Healthz() http.Handler { return p.healthz(false) }

// HealthzWithNode is Healthz with the node's identity (Informer: id,
// alias, network), for an operator's own listener: it tells anyone who
// asks which node takes the payments.
func (p *Proxy) HealthzWithNode() http.Handler { return p.healthz(true) }

// healthCache is the last ping's result.
type healthCache struct {
	mu   sync.Mutex // held through a ping: one at a time
	at   time.Time
	err  error
	note string // "" or why the node was not checked
	info *backend.NodeInfo
}

func (p *Proxy) checkHealth() (note string, info *backend.NodeInfo, err error) {
	h := &p.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if p.cfg.HealthMaxAge > 0 && !h.at.IsZero() && time.Since(h.at) < p.cfg.HealthMaxAge {
		return h.note, h.info, h.err
	}
	// Not the request's context: the result serves every request until
	// it is stale.
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.NodeTimeout)
	defer cancel()
	b := p.cfg.Backend
	err = p.nodeCall("ping", func() error { return b.Ping(ctx) })
	if errors.Is(err, backend.ErrUnsupported) {
		note, err = "unchecked: the backend cannot be pinged", nil
	}
	if err == nil && b.Supports(backend.AbilityInfo) {
		if i, ierr := b.Info(ctx); ierr == nil {
			info = i
		}
	}
	h.at, h.err, h.note, h.info = time.Now(), err, note, info
	return note, info, err
}

func (p *Proxy) healthz(withNode bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		note, info, err := p.checkHealth()
		body := map[string]any{"backend_abilities": backend.Abilities(p.cfg.Backend)}
		if note != "" {
			body["backend"] = note
		}
		if withNode && info != nil {
			body["node"] = info
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
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
