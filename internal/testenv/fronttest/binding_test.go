package fronttest_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// TestForwardAuthFrontsBindOrigin runs a route that binds its tokens to
// the origin (bLIP-26 origin=) through each real front server with the
// deploy files: the token carries the origin the front describes
// (X-Forwarded-Proto and X-Forwarded-Host), is served at that origin and
// refused, without the upstream being asked, when the client addresses the
// front by another name. nginx's file forwards $host, which has no port,
// so through nginx the origin has none.
func TestForwardAuthFrontsBindOrigin(t *testing.T) {
	for _, fc := range fronts {
		t.Run(fc.name, func(t *testing.T) {
			n := newNode(t)
			up := newUpstream(t)
			p, err := proxy.New(proxy.Config{Backend: over(t, n, false), Routes: []proxy.Route{
				{Name: "paid", PathPrefix: "/paid/", Price: backend.Sat(5), BindOrigin: true},
				{Name: "free", PathPrefix: "/", Mode: proxy.ModeFree},
			}})
			if err != nil {
				t.Fatal(err)
			}
			f := startFront(t, fc, up, newAuthServer(t, p))
			_, port, _ := net.SplitHostPort(f.Addr)
			// The harness's Caddy site answers its listen address's host
			// only: there, another port in Host is the other origin.
			host, other, want := "api.example:"+port, "shop.example:"+port, "origin=http://api.example:"+port
			switch fc.name {
			case "nginx":
				want = "origin=http://api.example"
			case "caddy":
				host, other, want = f.Addr, "127.0.0.1:1", "origin=http://"+f.Addr
			}
			resp, body := get(t, f.Addr, "/paid/x", map[string]string{"Host": host})
			chs, err := l402.ParseChallenges(resp.Header)
			if resp.StatusCode != http.StatusPaymentRequired || err != nil {
				t.Fatalf("challenge: %s %q %v", resp.Status, body, err)
			}
			var origin string
			for _, c := range chs[0].Macaroon.Caveats() {
				if strings.HasPrefix(string(c.Id), "origin=") {
					origin = string(c.Id)
				}
			}
			if origin != want {
				t.Fatalf("minted %q through %s, want %q", origin, fc.name, want)
			}
			t.Logf("%s: token bound to %s", fc.name, origin)
			pay, err := n.PayInvoice(context.Background(), chs[0].Invoice, backend.PayOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tok, _ := l402.NewToken(chs[0].Macaroon, pay.Preimage)
			auth := tok.Authorization()
			if resp, body := get(t, f.Addr, "/paid/x", map[string]string{"Host": host, "Authorization": auth}); resp.StatusCode != http.StatusOK || body != paidMark+" /paid/x" {
				t.Fatalf("at its origin: %s %q", resp.Status, body)
			}
			if s := up.take(); s == nil || s.paid != "true" {
				t.Fatalf("upstream saw %+v", s)
			}
			if resp, body := get(t, f.Addr, "/paid/x", map[string]string{"Host": other, "Authorization": auth}); resp.StatusCode != http.StatusPaymentRequired {
				t.Fatalf("at another origin: %s %q, want 402", resp.Status, body)
			}
			if s := up.take(); s != nil {
				t.Fatalf("upstream asked at another origin: %+v", s)
			}
		})
	}
}
