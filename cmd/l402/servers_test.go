package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/fakes/l402fake"
)

// fakeServer is an l402fake stand-in for a server users meet.
type fakeServer interface {
	http.Handler
	Stats() l402fake.Stats
	Invoices() []backend.PaymentHash
}

// l402 get pays the L402 servers users meet, on the memory backend as its
// wallet: stand-ins for ngx_l402 and Aperture written from their sources,
// invoicing on the same named memory node the command opens. The slow
// variants settle a second after payment, longer than the in-flight probe
// waits; the fakes fail the test if sent the in-flight form, which neither
// advertises.
func TestGetPaysOtherServers(t *testing.T) {
	cases := []struct {
		name    string
		path    string
		content string
		server  func(node *backend.Backend) fakeServer
	}{
		{"ngx_l402", "/protected/doc", "ngx_l402 content for GET /protected/doc\n", func(n *backend.Backend) fakeServer {
			return l402fake.NewNgx(t, l402fake.NgxConfig{Node: n, Price: backend.Sat(5), MacaroonTimeout: time.Hour})
		}},
		{"ngx_l402 0xff identifier", "/protected/doc", "ngx_l402 content for GET /protected/doc\n", func(n *backend.Backend) fakeServer {
			return l402fake.NewNgx(t, l402fake.NgxConfig{Node: n, Price: backend.Sat(5), PrefixFF: true})
		}},
		{"ngx_l402 slow payment", "/protected/doc", "ngx_l402 content for GET /protected/doc\n", func(n *backend.Backend) fakeServer {
			return l402fake.NewNgx(t, l402fake.NgxConfig{Node: n, Price: backend.Sat(5), SettleAfter: time.Second})
		}},
		{"aperture", "/service/x", "aperture content for GET /service/x\n", func(n *backend.Backend) fakeServer {
			return l402fake.NewAperture(t, l402fake.ApertureConfig{Node: n, Price: backend.Sat(5), Timeout: time.Hour})
		}},
		{"aperture with Payment challenge", "/service/x", "aperture content for GET /service/x\n", func(n *backend.Backend) fakeServer {
			return l402fake.NewAperture(t, l402fake.ApertureConfig{Node: n, Price: backend.Sat(5), Payment: true})
		}},
		{"aperture slow payment", "/service/x", "aperture content for GET /service/x\n", func(n *backend.Backend) fakeServer {
			return l402fake.NewAperture(t, l402fake.ApertureConfig{Node: n, Price: backend.Sat(5), Payment: true, SettleAfter: time.Second})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nodeURL := "memory://" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
			b, err := backend.Open(context.Background(), nodeURL)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			fake := c.server(b)
			srv := httptest.NewServer(fake)
			defer srv.Close()

			code, out, errOut := runCLI("get", srv.URL+c.path, "--backend", nodeURL, "--max-price", "5")
			if code != 0 || out != c.content {
				t.Fatalf("exit %d stdout %q stderr:\n%s", code, out, errOut)
			}
			hashes := fake.Invoices()
			if !strings.Contains(errOut, "paid 5 sat (fee 0 sat) to "+srv.URL+", payment hash "+hashes[0].String()) {
				t.Fatalf("stderr %q does not report the payment", errOut)
			}
			st := fake.Stats()
			if st.Served != 1 || st.Refused != 0 || st.InFlight != 0 {
				t.Fatalf("server saw %+v", st)
			}
			inv, err := b.LookupInvoice(context.Background(), hashes[0])
			if err != nil || inv.State != backend.StateSettled {
				t.Fatalf("invoice %+v, %v: want settled", inv, err)
			}
		})
	}
}

// A 402 that carries only another payment scheme's challenge is shown as it
// is, with what was offered.
func TestGetOtherSchemeOnly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Payment id="x", realm="r", method="lightning", intent="charge", request="e30"`)
		http.Error(w, "pay another way", http.StatusPaymentRequired)
	}))
	defer srv.Close()
	code, out, errOut := runCLI("get", srv.URL, "--backend", "memory://", "--max-price", "5", "--schemes", "L402,LSAT")
	if code != exitHTTPStatus || out != "pay another way\n" || !strings.Contains(errOut, "402 Payment Required") ||
		!strings.Contains(errOut, "no challenge of the schemes L402,LSAT; offered: Payment") || !strings.Contains(errOut, "nothing paid") {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errOut)
	}
	// With the default schemes the Payment challenge is read, and this one
	// cannot be paid: it says why, and pays nothing.
	code, _, errOut = runCLI("get", srv.URL, "--backend", "memory://", "--max-price", "5")
	if code != exitPayment || !strings.Contains(errOut, "not paying the challenge") || !strings.Contains(errOut, "nothing paid") {
		t.Fatalf("exit %d stderr %q", code, errOut)
	}
}

// l402 get pays the Payment charge of a 402 that offers L402 too (the
// Aperture stand-in) when --schemes puts Payment first, and shows the
// server's receipt.
func TestGetPaysCharge(t *testing.T) {
	nodeURL := "memory://" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	b, err := backend.Open(context.Background(), nodeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fake := l402fake.NewAperture(t, l402fake.ApertureConfig{Node: b, Price: backend.Sat(5), Payment: true})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	code, out, errOut := runCLI("get", srv.URL+"/service/x", "--backend", nodeURL, "--max-price", "5", "--schemes", "Payment,L402")
	if code != 0 || out != "aperture content for GET /service/x\n" {
		t.Fatalf("exit %d stdout %q stderr:\n%s", code, out, errOut)
	}
	hashes := fake.Invoices()
	// Aperture's 402 has two invoices: the L402 one first, then the charge's.
	if len(hashes) != 2 || !strings.Contains(errOut, "paid 5 sat (fee 0 sat) to "+srv.URL+", payment hash "+hashes[1].String()) ||
		!strings.Contains(errOut, "receipt from server: lightning success, reference "+hashes[1].String()) {
		t.Fatalf("stderr %q", errOut)
	}
	if st := fake.Stats(); st.Served != 1 || st.Refused != 0 {
		t.Fatalf("server saw %+v", st)
	}
}
