package fronttest_test

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/l402kit/l402kit/proxy"
)

// Two clients on one host: loopback is a /8, and each dials from its own
// address. The front reaches the endpoint from 127.0.0.1, the one trusted
// forwarder.
const (
	flooder = "127.0.0.2"
	victim  = "127.0.0.3"
)

// TestOneFlooderDoesNotLockOutAnother: through each front, one client takes
// all the unpaid single-use hold invoices one address may hold (429 once
// there), also while claiming the other client's address in its own
// X-Forwarded-For and X-Real-IP; the other client still gets its challenge.
// Reached directly, the endpoint believes no client's forwarded address
// either.
func TestOneFlooderDoesNotLockOutAnother(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	spoof := []string{"X-Forwarded-For: " + victim, "X-Real-IP: " + victim}
	for _, fc := range fronts {
		t.Run(fc.name, func(t *testing.T) {
			n := newNode(t)
			up := newUpstream(t)
			p, err := proxy.New(proxy.Config{Backend: over(t, n, true), Routes: routes(), MaxPendingPerClient: 4, TrustedForwarders: trusted})
			if err != nil {
				t.Fatal(err)
			}
			auth := newAuthServer(t, p)
			f := startFront(t, fc, up, auth)
			flood(t, f.Addr, "/once/x", spoof)
			resp, body, err := rawRequestFrom(victim, f.Addr, "/once/x", nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusPaymentRequired {
				t.Fatalf("%s: the other client got %s %q after one address's flood, want its own 402", fc.name, resp.Status, body)
			}
			if l := up.takeLeaks(); len(l) > 0 {
				t.Fatalf("selling handlers ran unpaid for %q", l)
			}
		})
	}
	t.Run("direct", func(t *testing.T) {
		n := newNode(t)
		p, err := proxy.New(proxy.Config{Backend: over(t, n, true), Routes: routes(), MaxPendingPerClient: 4, TrustedForwarders: trusted})
		if err != nil {
			t.Fatal(err)
		}
		auth := newAuthServer(t, p)
		fwd := []string{"X-Forwarded-Method: GET", "X-Forwarded-Proto: http", "X-Forwarded-Host: h", "X-Forwarded-Uri: /once/x"}
		flood(t, auth.addr(), "/l402/auth", append(fwd, spoof...))
		resp, body, err := rawRequestFrom(victim, auth.addr(), "/l402/auth", fwd)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusPaymentRequired {
			t.Fatalf("the victim got %s %q after a direct client's flood claiming its address, want its own 402", resp.Status, body)
		}
	})
}

// flood asks for target from the flooder until it is refused 429, and
// fails when that does not come within a bound well above the quota.
func flood(t *testing.T, addr, target string, lines []string) {
	t.Helper()
	for i := range 50 {
		resp, body, err := rawRequestFrom(flooder, addr, target, lines)
		if err != nil {
			t.Fatal(err)
		}
		switch resp.StatusCode {
		case http.StatusPaymentRequired:
			continue
		case http.StatusTooManyRequests:
			t.Logf("flooder refused 429 after %d challenges", i)
			return
		default:
			t.Fatalf("flood request %d: %s %q", i, resp.Status, body)
		}
	}
	t.Fatal("the flooder was never refused: no per-client quota")
}
