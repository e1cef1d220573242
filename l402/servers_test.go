package l402_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/fakes/l402fake"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/memory"
)

// The Transport against stand-ins for the L402 servers users meet, each
// written from that server's source (internal/fakes/l402fake). The fakes fail the
// test if they are sent the in-flight form, which neither advertises.

func newNode(t *testing.T) *backend.Backend {
	t.Helper()
	node, err := memory.New(context.Background(), memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	return node
}

// clock is a settable time shared by a fake and a Transport.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func settledCount(t *testing.T, node *backend.Backend, hashes []backend.PaymentHash) int {
	t.Helper()
	n := 0
	for _, h := range hashes {
		inv, err := node.LookupInvoice(context.Background(), h)
		if err != nil {
			t.Fatal(err)
		}
		if inv.State == backend.StateSettled {
			n++
		}
	}
	return n
}

// do sends a request, with a small body unless it is a GET, and reads the
// answer.
func do(t *testing.T, c *http.Client, method, url string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if method != http.MethodGet {
		body = strings.NewReader("body")
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestTransportPaysNgxL402(t *testing.T) {
	for _, ff := range []bool{false, true} {
		t.Run(fmt.Sprintf("0xff prefix %v", ff), func(t *testing.T) {
			node := newNode(t)
			ngx := l402fake.NewNgx(t, l402fake.NgxConfig{Node: node, Price: backend.Sat(3), PrefixFF: ff})
			srv := httptest.NewServer(ngx)
			defer srv.Close()
			paid := &payments{}
			c := &http.Client{Transport: &l402.Transport{Payer: node, MaxPrice: backend.Sat(3), OnPayment: paid.record}}

			resp, body := do(t, c, "GET", srv.URL+"/doc/a")
			if resp.StatusCode != http.StatusOK || body != "ngx_l402 content for GET /doc/a\n" {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			if r, ok := l402.ReceiptFromResponse(resp); !ok || r.Amount != backend.Sat(3) || r.Scheme != "L402" {
				t.Fatalf("receipt %+v %v", r, ok)
			}

			// ngx_l402 spends a preimage on first use and refuses it
			// again with a bare 401: the Transport drops the token, asks
			// again without it and pays the fresh challenge.
			if resp, body = do(t, c, "GET", srv.URL+"/doc/a"); resp.StatusCode != http.StatusOK {
				t.Fatalf("second request: status %d body %q", resp.StatusCode, body)
			}
			// The token is bound to GET /doc/a: another path gets its own.
			if resp, body = do(t, c, "GET", srv.URL+"/doc/b"); resp.StatusCode != http.StatusOK || body != "ngx_l402 content for GET /doc/b\n" {
				t.Fatalf("other path: status %d body %q", resp.StatusCode, body)
			}
			st := ngx.Stats()
			want := []string{"GET /doc/a", "GET /doc/a", "GET /doc/a", "GET /doc/b"}
			if strings.Join(st.Tokens, ",") != strings.Join(want, ",") {
				t.Fatalf("tokens presented for %q, want %q", st.Tokens, want)
			}
			if st.Challenges != 3 || st.Served != 3 || st.Refused != 1 || paid.count() != 3 {
				t.Fatalf("stats %+v, %d payments; want 3 challenges, 3 served, 1 refused, 3 payments", st, paid.count())
			}
			if n := settledCount(t, node, ngx.Invoices()); n != 3 {
				t.Fatalf("%d invoices settled, want 3", n)
			}
		})
	}
}

func TestTransportNgxL402ReusableTokens(t *testing.T) {
	node := newNode(t)
	clk := &clock{t: time.Now()}
	ngx := l402fake.NewNgx(t, l402fake.NgxConfig{Node: node, Price: backend.Sat(1), IndefiniteAccess: true,
		MacaroonTimeout: time.Minute, Now: clk.now})
	srv := httptest.NewServer(ngx)
	defer srv.Close()
	paid := &payments{}
	c := &http.Client{Transport: &l402.Transport{Payer: node, MaxPrice: backend.Sat(1), OnPayment: paid.record, Now: clk.now}}
	for range 2 {
		if resp, body := do(t, c, "GET", srv.URL+"/v1/data"); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
	}
	// A token bound to GET is not sent with POST.
	if resp, body := do(t, c, "POST", srv.URL+"/v1/data"); resp.StatusCode != http.StatusOK || body != "ngx_l402 content for POST /v1/data\n" {
		t.Fatalf("POST: status %d body %q", resp.StatusCode, body)
	}
	// Past ExpiresAt the token is not sent at all.
	clk.add(2 * time.Minute)
	if resp, body := do(t, c, "GET", srv.URL+"/v1/data"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after expiry: status %d body %q", resp.StatusCode, body)
	}
	st := ngx.Stats()
	if st.Refused != 0 || paid.count() != 3 || st.Served != 4 {
		t.Fatalf("stats %+v, %d payments; want no refusal, 3 payments, 4 served", st, paid.count())
	}
}

func TestTransportPaysAperture(t *testing.T) {
	for _, c := range []struct {
		name            string
		payment, folded bool
	}{
		{"L402 and LSAT", false, false},
		{"with the Payment challenge", true, false},
		{"folded into one line", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			node := newNode(t)
			ap := l402fake.NewAperture(t, l402fake.ApertureConfig{Node: node, Price: backend.Sat(2), Payment: c.payment, Folded: c.folded})
			srv := httptest.NewServer(ap)
			defer srv.Close()
			paid := &payments{}
			client := &http.Client{Transport: &l402.Transport{Payer: node, MaxPrice: backend.Sat(2), OnPayment: paid.record}}
			for _, path := range []string{"/a", "/b/c", "/a"} {
				if resp, body := do(t, client, "GET", srv.URL+path); resp.StatusCode != http.StatusOK || body != "aperture content for GET "+path+"\n" {
					t.Fatalf("%s: status %d body %q", path, resp.StatusCode, body)
				}
			}
			// One token for the service, whatever the path.
			st := ap.Stats()
			if paid.count() != 1 || st.Challenges != 1 || st.Served != 3 || st.Refused != 0 {
				t.Fatalf("stats %+v, %d payments; want one payment for three requests", st, paid.count())
			}
			if paid.r[0].Scheme != "L402" {
				t.Fatalf("paid the %s challenge, want L402", paid.r[0].Scheme)
			}
		})
	}
}

func TestTransportApertureValidUntil(t *testing.T) {
	node := newNode(t)
	clk := &clock{t: time.Now()}
	ap := l402fake.NewAperture(t, l402fake.ApertureConfig{Node: node, Price: backend.Sat(1), Timeout: time.Minute, Now: clk.now})
	srv := httptest.NewServer(ap)
	defer srv.Close()
	paid := &payments{}
	c := &http.Client{Transport: &l402.Transport{Payer: node, MaxPrice: backend.Sat(1), OnPayment: paid.record, Now: clk.now}}
	do(t, c, "GET", srv.URL+"/x")
	clk.add(2 * time.Minute)
	if resp, body := do(t, c, "GET", srv.URL+"/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	st := ap.Stats()
	if len(st.Tokens) != 2 || st.Refused != 0 || paid.count() != 2 {
		t.Fatalf("stats %+v, %d payments: the expired token should not have been sent", st, paid.count())
	}
}

// A payment slower than the in-flight probe: neither server advertised the
// in-flight form, so the Transport waits for the preimage.
func TestTransportSlowPaymentToOtherServers(t *testing.T) {
	node := newNode(t)
	servers := map[string]interface {
		http.Handler
		Stats() l402fake.Stats
	}{
		"ngx_l402": l402fake.NewNgx(t, l402fake.NgxConfig{Node: node, Price: backend.Sat(1)}),
		"aperture": l402fake.NewAperture(t, l402fake.ApertureConfig{Node: node, Price: backend.Sat(1), Payment: true}),
	}
	for name, h := range servers {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			paid := &payments{}
			c := &http.Client{Transport: &l402.Transport{
				Payer: slowPayer{node, 300 * time.Millisecond}, MaxPrice: backend.Sat(1),
				OnPayment: paid.record, InFlightAfter: 10 * time.Millisecond,
			}}
			if resp, body := do(t, c, "GET", srv.URL+"/slow"); resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			if st := h.Stats(); st.InFlight != 0 || st.Served != 1 || paid.count() != 1 {
				t.Fatalf("stats %+v, %d payments", st, paid.count())
			}
		})
	}
}

// rawServer answers every request without a token with the challenge
// challenge makes, and serves any token.
func rawServer(t *testing.T, challenge func(inv *backend.Invoice) string) (*httptest.Server, *backend.Backend) {
	t.Helper()
	node := newNode(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			fmt.Fprint(w, "served")
			return
		}
		inv, err := node.CreateInvoice(r.Context(), backend.InvoiceRequest{Amount: backend.Sat(1)})
		if err != nil {
			t.Error(err)
			return
		}
		w.Header().Set("WWW-Authenticate", challenge(inv))
		w.WriteHeader(http.StatusPaymentRequired)
	}))
	t.Cleanup(srv.Close)
	return srv, node
}

func macaroonB64(t *testing.T, id []byte) string {
	t.Helper()
	m, err := macaroon.New([]byte("key"), id, "x", macaroon.V2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// An identifier in no known layout does not stop a payment whose invoice
// can be read: the invoice says what is paid.
func TestTransportPaysDespiteUnknownIdentifier(t *testing.T) {
	srv, node := rawServer(t, func(inv *backend.Invoice) string {
		return `L402 macaroon="` + macaroonB64(t, []byte("opaque-token-20bytes")) + `", invoice="` + inv.PaymentRequest + `"`
	})
	paid := &payments{}
	c := &http.Client{Transport: &l402.Transport{Payer: node, MaxPrice: backend.Sat(1), OnPayment: paid.record}}
	if resp, body := do(t, c, "GET", srv.URL+"/x"); resp.StatusCode != http.StatusOK || body != "served" || paid.count() != 1 {
		t.Fatalf("status %d body %q, %d payments", resp.StatusCode, body, paid.count())
	}
}

// An identifier that can be read and commits to another hash than the
// invoice's is refused before paying: the token would not be worth the
// payment.
func TestTransportRefusesDisagreeingIdentifier(t *testing.T) {
	var other backend.PaymentHash
	other[0] = 7
	srv, node := rawServer(t, func(inv *backend.Invoice) string {
		return `L402 macaroon="` + macaroonB64(t, other[:]) + `", invoice="` + inv.PaymentRequest + `"`
	})
	paid := &payments{}
	c := &http.Client{Transport: &l402.Transport{Payer: node, MaxPrice: backend.Sat(1), OnPayment: paid.record}}
	resp, err := c.Get(srv.URL + "/x")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("status %d, want a refusal", resp.StatusCode)
	}
	var ce *l402.ChallengeError
	if !errors.As(err, &ce) || !errors.Is(err, l402.ErrBadChallenge) || ce.Scheme != "L402" || !strings.Contains(err.Error(), "macaroon commits to "+other.String()) {
		t.Fatalf("err = %v, want a ChallengeError with ErrBadChallenge", err)
	}
	if paid.count() != 0 {
		t.Fatal("paid")
	}
}

// A challenge the Transport cannot read is an error the caller sees, not a
// 402 handed back with the reason in a debug log.
func TestTransportUnreadableChallengeIsAnError(t *testing.T) {
	srv, node := rawServer(t, func(inv *backend.Invoice) string {
		return `L402 macaroon="bm90IGEgbWFjYXJvb24=", invoice="` + inv.PaymentRequest + `"`
	})
	c := &http.Client{Transport: &l402.Transport{Payer: node, MaxPrice: backend.Sat(1)}}
	resp, err := c.Get(srv.URL + "/x")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("status %d, want an error", resp.StatusCode)
	}
	var ce *l402.ChallengeError
	if !errors.As(err, &ce) || !errors.Is(err, l402.ErrMalformed) {
		t.Fatalf("err = %v, want a ChallengeError matching ErrMalformed", err)
	}
}

// A 401 carrying another scheme's challenge is the upstream asking for its
// own credentials: the L402 token stays cached and nothing is paid again.
func TestTransportKeepsTokenOnUpstream401(t *testing.T) {
	pw, srv := newPaywall(t, backend.Sat(1))
	c, _, paid := newClient(pw, backend.Sat(1))
	var upstream401 sync.Once
	inner := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/paid/login" && r.Header.Get("Authorization") != "" {
			deny := false
			upstream401.Do(func() { deny = true })
			if deny {
				w.Header().Set("WWW-Authenticate", `Basic realm="app"`)
				http.Error(w, "log in", http.StatusUnauthorized)
				return
			}
		}
		inner.ServeHTTP(w, r)
	})
	get(t, c, srv.URL+"/paid/one")
	if resp, _ := get(t, c, srv.URL+"/paid/login"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want the upstream's 401", resp.StatusCode)
	}
	if resp, _ := get(t, c, srv.URL+"/paid/two"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if paid.count() != 1 {
		t.Fatalf("%d payments, want the one token kept", paid.count())
	}
}
