package lnurl_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/proxy"
)

// The proxy's /healthz over an LNURL backend tells the truth: it asks the
// service for its pay parameters, so a service that is down is reported as
// down (503), and as up again once it answers.
func TestProxyHealthFollowsTheService(t *testing.T) {
	node := newMemoryNode(t)
	h := newLNURLHarness(t, node, node, 0)
	p, err := proxy.New(proxy.Config{Backend: h.Backend(), NodeTimeout: 5 * time.Second, HealthMaxAge: -1,
		Routes: []proxy.Route{{PathPrefix: "/", Price: backend.Sat(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	health := func() int {
		w := httptest.NewRecorder()
		p.Healthz().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		return w.Code
	}
	if code := health(); code != http.StatusOK {
		t.Fatalf("/healthz with the service up: %d, want 200", code)
	}
	if err := h.StopNode(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code := health(); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz with the service down: %d, want 503", code)
	}
	if err := h.StartNode(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code := health(); code != http.StatusOK {
		t.Errorf("/healthz with the service back: %d, want 200", code)
	}
}
