package fronttest_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// TestForwardAuthFrontsPayment runs the Payment scheme's Lightning charge
// through each real front server with the deploy files: a route that
// offers L402 and Payment in one 402 passes both challenges to the client
// (nginx 1.22 passes on only the first WWW-Authenticate value, so the
// endpoint folds them into one in nginx mode); a paid charge is served
// once, the upstream never sees the Payment credential, and nginx hands
// the client the Payment-Receipt; the same credential again is refused
// without the upstream being asked. An L402 token bought from the same
// 402 passes too.
func TestForwardAuthFrontsPayment(t *testing.T) {
	for _, fc := range fronts {
		t.Run(fc.name, func(t *testing.T) {
			n := newNode(t)
			up := newUpstream(t)
			p, err := proxy.New(proxy.Config{Backend: over(t, n, false), Routes: []proxy.Route{
				{Name: "paid", PathPrefix: "/paid/", Price: backend.Sat(5), Schemes: []string{proxy.SchemeL402, proxy.SchemePayment}},
				{Name: "free", PathPrefix: "/", Mode: proxy.ModeFree},
			}})
			if err != nil {
				t.Fatal(err)
			}
			auth := newAuthServer(t, p)
			f := startFront(t, fc, up, auth)
			resp, _ := get(t, f.Addr, "/paid/doc", nil)
			if resp.StatusCode != http.StatusPaymentRequired {
				t.Fatalf("no credential: %s, want 402", resp.Status)
			}
			pcs, err := l402.ParsePaymentChallenges(resp.Header)
			if err != nil || len(pcs) != 1 {
				t.Fatalf("Payment challenge through %s: %+v %v in %q", fc.name, pcs, err, resp.Header.Values("WWW-Authenticate"))
			}
			if _, err := l402.ParseChallenges(resp.Header); err != nil {
				t.Fatalf("L402 challenge through %s: %v in %q", fc.name, err, resp.Header.Values("WWW-Authenticate"))
			}
			_, inv, err := pcs[0].Charge()
			if err != nil {
				t.Fatal(err)
			}
			pay, err := n.PayInvoice(context.Background(), inv.PaymentRequest, backend.PayOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cred, err := l402.NewChargeCredential(pcs[0], pay.Preimage).Authorization()
			if err != nil {
				t.Fatal(err)
			}
			resp, body := get(t, f.Addr, "/paid/doc", map[string]string{"Authorization": cred})
			if resp.StatusCode != http.StatusOK || body != paidMark+" /paid/doc" {
				t.Fatalf("paid charge: %s %q", resp.Status, body)
			}
			s := up.take()
			if s == nil || s.paid != "true" || s.auth != "" {
				t.Fatalf("upstream saw %+v, want paid and no Authorization", s)
			}
			if fc.name == "nginx" {
				r, ok, err := l402.ParsePaymentReceipt(resp.Header)
				if !ok || err != nil || r.Reference != inv.PaymentHash.String() {
					t.Errorf("Payment-Receipt through nginx: %+v %v %v", r, ok, err)
				}
			}
			resp, _ = get(t, f.Addr, "/paid/doc", map[string]string{"Authorization": cred})
			if resp.StatusCode != http.StatusPaymentRequired {
				t.Fatalf("replayed charge: %s, want 402", resp.Status)
			}
			if s := up.take(); s != nil {
				t.Fatalf("upstream asked for a replayed charge: %+v", s)
			}
			tok := buy(t, n, f.Addr, "/paid/x").Authorization()
			if resp, body := get(t, f.Addr, "/paid/x", map[string]string{"Authorization": tok}); resp.StatusCode != http.StatusOK || body != paidMark+" /paid/x" {
				t.Fatalf("L402 token from the same route: %s %q", resp.Status, body)
			}
		})
	}
}
