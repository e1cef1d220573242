package proxytest

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/conformance"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

type flow struct {
	h        conformance.Harness
	payer    backend.Payer
	hold     bool
	base     string
	client   *http.Client
	mu       sync.Mutex
	upstream []seen // what the upstream was sent
}

type seen struct {
	path, paid, auth string
}

func newFlow(t *testing.T, h conformance.Harness) *flow {
	f := &flow{h: h, payer: h.Payer(), client: &http.Client{Timeout: callTimeout}}
	f.hold = h.Backend().Supports(backend.AbilityHold)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.upstream = append(f.upstream, seen{r.URL.Path, r.Header.Get(proxy.HeaderPaid), r.Header.Get("Authorization")})
		f.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/flaky/") {
			http.Error(w, "upstream broke", http.StatusInternalServerError)
			return
		}
		if use := r.URL.Query().Get("use"); use != "" {
			w.Header().Set(proxy.DefaultUsageHeader, use)
		}
		fmt.Fprintf(w, "upstream %s paid=%s", r.URL.Path, r.Header.Get(proxy.HeaderPaid))
	}))
	t.Cleanup(up.Close)
	upURL, _ := url.Parse(up.URL)
	routes := []proxy.Route{
		{Name: "paid", PathPrefix: "/paid/", Price: flowPrice, Upstream: upURL},
		{Name: "other", PathPrefix: "/other/", Price: flowPrice, Upstream: upURL},
		{Name: "short", PathPrefix: "/short/", Price: flowPrice, Upstream: upURL, TokenLifetime: time.Second},
		{Name: "podcast", PathPrefix: "/podcast/", Price: flowPrice, Upstream: upURL, Mode: proxy.ModeOptional},
		{Name: "once", PathPrefix: "/once/", Price: flowPrice, Upstream: upURL, SingleUse: true},
		{Name: "flaky", PathPrefix: "/flaky/", Price: flowPrice, Upstream: upURL, SingleUse: true},
		{Name: "bundle", PathPrefix: "/bundle/", Price: flowPrice, Upstream: upURL, Bundle: &proxy.Bundle{Units: 3}},
		{Name: "metered", PathPrefix: "/metered/", Price: flowPrice, Upstream: upURL, Bundle: &proxy.Bundle{Units: 100, Metered: true, Reserve: 10}},
		{Name: "charge", PathPrefix: "/charge/", Price: flowPrice, Upstream: upURL, Schemes: []string{proxy.SchemePayment}},
		{Name: "both", PathPrefix: "/both/", Price: flowPrice, Upstream: upURL, Schemes: []string{proxy.SchemeL402, proxy.SchemePayment}},
	}
	p, err := proxy.New(proxy.Config{Backend: h.Backend(), Routes: routes, ChallengesPerMinute: -1, NodeTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// No case, and no client, sends the in-flight form where the
		// challenge did not offer it.
		if _, ok := l402.ParsePendingAuthorization(r.Header.Get("Authorization")); ok && !f.inFlightRoute(r.URL.Path) {
			t.Errorf("%s %s: in-flight form sent to a route whose challenge does not advertise it", r.Method, r.URL.Path)
		}
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.base = srv.URL
	return f
}

// inFlightRoute reports whether the proxy offers the in-flight form on
// path: single-use routes on a hold-invoice backend.
func (f *flow) inFlightRoute(path string) bool {
	return f.hold && (strings.HasPrefix(path, "/once/") || strings.HasPrefix(path, "/flaky/"))
}

func (f *flow) lastUpstream() seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.upstream) == 0 {
		return seen{}
	}
	return f.upstream[len(f.upstream)-1]
}

func (f *flow) get(t *testing.T, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", path, err)
	}
	return resp, string(body)
}

// challenge asks for path and checks the 402: an L402 and an LSAT challenge
// with the same macaroon and invoice, the invoice asking the route's price
// and committing to the macaroon's payment hash.
func (f *flow) challenge(t *testing.T, path string, hdr map[string]string) l402.Challenge {
	t.Helper()
	resp, body := f.get(t, path, hdr)
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("GET %s without a token: %s %s, want 402", path, resp.Status, body)
	}
	chs, err := l402.ParseChallenges(resp.Header)
	if err != nil {
		t.Fatalf("402 challenges do not parse: %v (%q)", err, resp.Header.Values("WWW-Authenticate"))
	}
	var l, s *l402.Challenge
	for i := range chs {
		switch chs[i].Scheme {
		case "L402":
			l = &chs[i]
		case "LSAT":
			s = &chs[i]
		}
	}
	if l == nil || s == nil {
		t.Fatalf("402 must carry both an L402 and an LSAT challenge, got %q", resp.Header.Values("WWW-Authenticate"))
	}
	lb, _ := l.Macaroon.MarshalBinary()
	sb, _ := s.Macaroon.MarshalBinary()
	if string(lb) != string(sb) || l.Invoice != s.Invoice {
		t.Errorf("L402 and LSAT challenges differ")
	}
	id, err := l402.DecodeIdentifier(l.Macaroon.Id())
	if err != nil {
		t.Fatalf("challenge macaroon identifier: %v", err)
	}
	d, err := backend.DecodeInvoice(l.Invoice)
	if err != nil {
		t.Fatalf("challenge invoice: %v", err)
	}
	if d.PaymentHash != id.PaymentHash {
		t.Errorf("invoice hash %s, macaroon commits to %s", d.PaymentHash, id.PaymentHash)
	}
	if d.Amount != flowPrice {
		t.Errorf("invoice asks %s, route price is %s", d.Amount, flowPrice)
	}
	// The in-flight form is advertised exactly where it is accepted.
	if want := f.inFlightRoute(path); l.InFlight != want || s.InFlight != want {
		t.Errorf("challenge for %s advertises the in-flight form: %v, want %v (only single-use routes on hold invoices accept it)",
			path, l.InFlight, want)
	}
	return *l
}

func (f *flow) pay(t *testing.T, bolt11 string) backend.Preimage {
	t.Helper()
	p, err := f.payer.PayInvoice(callCtx(t), bolt11, backend.PayOptions{})
	if err != nil {
		t.Fatalf("paying the challenge's invoice: %v", err)
	}
	return p.Preimage
}

func encode(t *testing.T, m *macaroon.Macaroon) string {
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func auth(t *testing.T, m *macaroon.Macaroon, pre backend.Preimage) map[string]string {
	return map[string]string{"Authorization": "L402 " + encode(t, m) + ":" + pre.String()}
}

// refused checks a presented token was not let through: a 402 with a fresh
// challenge and the reason, and nothing reached the upstream.
func (f *flow) refused(t *testing.T, path string, hdr map[string]string, reason string) {
	t.Helper()
	before := len(f.upstreamCalls())
	resp, body := f.get(t, path, hdr)
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("GET %s with a bad token: %s %s, want 402", path, resp.Status, body)
	}
	if !strings.Contains(body, reason) {
		t.Errorf("refusal body %q does not give the reason %q", body, reason)
	}
	if after := len(f.upstreamCalls()); after != before {
		t.Errorf("a refused request reached the upstream")
	}
}

func (f *flow) upstreamCalls() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.upstream...)
}

func (f *flow) ok(t *testing.T, path string, hdr map[string]string, wantPaid string) {
	t.Helper()
	resp, body := f.get(t, path, hdr)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s, want 200", path, resp.Status, body)
	}
	want := "upstream " + path + " paid=" + wantPaid
	if body != want {
		t.Fatalf("GET %s: body %q, want %q", path, body, want)
	}
	if up := f.lastUpstream(); up.path != path || up.paid != wantPaid || up.auth != "" {
		t.Errorf("upstream saw %+v, want path %s, %s=%s and no Authorization", up, path, proxy.HeaderPaid, wantPaid)
	}
}

// paidToken buys a token for path through the challenge.
func (f *flow) paidToken(t *testing.T, path string) (*macaroon.Macaroon, backend.Preimage) {
	t.Helper()
	ch := f.challenge(t, path, nil)
	return ch.Macaroon, f.pay(t, ch.Invoice)
}
