package fronttest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// TestForwardAuthFrontsPrepaid sells bundles through each real front
// server: a fixed cost per request on /paid/, and on /once/ a route
// metered by usage, which behind a front draws its reservation per request
// (the front never passes the upstream's usage back to the endpoint).
// Each request is decided by the endpoint, even with the nginx auth cache
// allowed, so none is served from a cached grant.
func TestForwardAuthFrontsPrepaid(t *testing.T) {
	for _, fc := range fronts {
		t.Run(fc.name, func(t *testing.T) {
			n := newNode(t)
			up := newUpstream(t)
			p, err := proxy.New(proxy.Config{Backend: over(t, n, false), ForwardAuthCacheMax: time.Minute, Routes: []proxy.Route{
				{Name: "paid", PathPrefix: "/paid/", Price: backend.Sat(5), Bundle: &proxy.Bundle{Units: 3}},
				{Name: "once", PathPrefix: "/once/", Price: backend.Sat(5), Bundle: &proxy.Bundle{Units: 10, Metered: true, Reserve: 4}},
				{Name: "free", PathPrefix: "/", Mode: proxy.ModeFree},
			}})
			if err != nil {
				t.Fatal(err)
			}
			auth := newAuthServer(t, p)
			f := startFront(t, fc, up, auth)
			// draw spends a balance of len(wantUnits) requests with tok,
			// then sees it refused as dry, and returns that 402.
			draw := func(path string, tok string, wantUnits []int) *http.Response {
				t.Helper()
				for _, left := range wantUnits {
					resp, body := get(t, f.Addr, path, map[string]string{"Authorization": tok})
					if resp.StatusCode != http.StatusOK || body != paidMark+" "+path {
						t.Fatalf("%s with %d units to be left: %s %q", path, left, resp.Status, body)
					}
					if s := up.take(); s == nil || s.paid != "true" {
						t.Fatalf("%s: upstream not asked, or not told it was paid: %+v", path, s)
					}
				}
				calls := auth.calls.Load()
				resp, _ := get(t, f.Addr, path, map[string]string{"Authorization": tok})
				if resp.StatusCode != http.StatusPaymentRequired {
					t.Fatalf("%s on a dry balance: %s, want 402", path, resp.Status)
				}
				if auth.calls.Load() == calls {
					t.Fatal("a dry balance was answered from a cached grant")
				}
				if s := up.take(); s != nil {
					t.Fatalf("upstream asked on a dry balance: %+v", s)
				}
				return resp
			}
			tok := buy(t, n, f.Addr, "/paid/doc").Authorization()
			dry := draw("/paid/doc", tok, []int{2, 1, 0})
			// The top-up challenge of the dry answer credits the same
			// balance: the new token and the first one draw from it.
			chs, err := l402.ParseChallenges(dry.Header)
			if err != nil {
				t.Fatalf("dry answer: %v in %q", err, dry.Header.Values("WWW-Authenticate"))
			}
			pay, err := n.PayInvoice(context.Background(), chs[0].Invoice, backend.PayOptions{})
			if err != nil {
				t.Fatal(err)
			}
			topUp, err := l402.NewToken(chs[0].Macaroon, pay.Preimage)
			if err != nil {
				t.Fatal(err)
			}
			resp, body := get(t, f.Addr, "/paid/doc", map[string]string{"Authorization": topUp.Authorization()})
			if resp.StatusCode != http.StatusOK || body != paidMark+" /paid/doc" || up.take() == nil {
				t.Fatalf("top-up token: %s %q", resp.Status, body)
			}
			draw("/paid/doc", tok, []int{1, 0})
			metered := buy(t, n, f.Addr, "/once/doc").Authorization()
			draw("/once/doc", metered, []int{6, 2})
		})
	}
}
