package proxy_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/proxy"
)

// pings counts the node pings a registry's proxy made.
func pings(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != "l402_node_call_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == "ping" {
					n += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return n
}

// TestHealthzCachedPing: many concurrent health checks cost the node one
// ping while it is fresh; the public handler hides the node's identity,
// HealthzWithNode shows it.
func TestHealthzCachedPing(t *testing.T) {
	n := newNode(t)
	reg := prometheus.NewRegistry()
	p, err := proxy.New(proxy.Config{Backend: n, Registerer: reg, HealthMaxAge: time.Hour, Routes: []proxy.Route{{PathPrefix: "/", Price: backend.Sat(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if w := do(t, p.Healthz(), http.MethodGet, "/healthz", nil); w.Code != http.StatusOK {
				t.Errorf("healthz: %d", w.Code)
			}
		})
	}
	wg.Wait()
	if got := pings(t, reg); got != 1 {
		t.Fatalf("50 health checks made %d node pings, want 1", got)
	}
	var public, private map[string]any
	if err := json.Unmarshal(do(t, p.Healthz(), http.MethodGet, "/healthz", nil).Body.Bytes(), &public); err != nil {
		t.Fatal(err)
	}
	if _, ok := public["node"]; ok {
		t.Fatalf("the public /healthz shows the node: %v", public)
	}
	if err := json.Unmarshal(do(t, p.HealthzWithNode(), http.MethodGet, "/healthz", nil).Body.Bytes(), &private); err != nil {
		t.Fatal(err)
	}
	if _, ok := private["node"]; !ok {
		t.Fatalf("HealthzWithNode shows no node: %v", private)
	}
	if got := pings(t, reg); got != 1 {
		t.Fatalf("%d pings, want still 1", got)
	}
}
