package proxytest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/conformance"
)

func flowNodeDown(t *testing.T, f *flow) {
	r, ok := f.h.(conformance.Restarter)
	if !ok {
		t.Skipf("harness %T is not a conformance.Restarter: cannot stop the node", f.h)
	}
	mac, pre := f.paidToken(t, "/paid/d")
	if err := r.StopNode(callCtx(t)); err != nil {
		t.Fatalf("StopNode: %v", err)
	}
	defer func() {
		if err := r.StartNode(restartCtx(t)); err != nil {
			t.Errorf("StartNode: %v", err)
		}
	}()
	start := time.Now()
	resp, body := f.get(t, "/paid/d", nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("challenge with the node down: %s %s, want 503", resp.Status, body)
	}
	if !strings.Contains(body, "unavailable") {
		t.Errorf("503 body %q does not say why", body)
	}
	t.Logf("503 for a challenge with the node down came after %s", time.Since(start).Round(time.Millisecond))
	f.ok(t, "/paid/d", auth(t, mac, pre), "true")
}
