// Package proxytest runs the HTTP 402 flow end to end through the real proxy
// over any backend's conformance.Harness: the same harnesses that run the
// driver contract (conformance.Run) run this suite, on every adapter.
package proxytest

import (
	"context"
	"encoding/base64"
	"errors"
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

// flowPrice is what the proxy-flow routes charge: whole satoshis, small.
const flowPrice = backend.MilliSat(100_000)

// callTimeout bounds every single call the suite makes, as in conformance.
const callTimeout = 30 * time.Second

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

// restartCtx bounds a harness's StartNode, as in conformance: a real node
// on a busy machine can take well over callTimeout to start and sync (LND
// on a loaded 2-core machine took longer than 30 s and the rest of the run
// found it still starting), and how long it takes is no part of the flow.
func restartCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

type payResult struct {
	p   *backend.Payment
	err error
}

// RunFlow runs the HTTP 402 flow end to end over h's backend: a real
// upstream and a real proxy on loopback listeners, a client that pays with
// h's payer. Cases: challenge then paid access (all three Authorization
// forms), forged signature, wrong preimage, expired token, wrong path,
// optional route with and without Accept-Authenticate, single-use replay,
// single-use upstream failure, the paying client transport, prepaid
// bundles (a fixed cost per request until dry, then a top-up payment that
// credits the same balance; usage reported by the upstream; the client
// transport topping up), the Payment scheme's Lightning charge (alone, and
// beside L402 in one 402: paid by hand and by the client in either
// preference order, its replay, a credential for another route, a tampered
// request and an unreadable one refused with their problem types), and
// (when h is a conformance.Restarter) a node that goes down: challenges answer 503
// while valid tokens keep working.
func RunFlow(t *testing.T, h conformance.Harness) {
	t.Helper()
	f := newFlow(t, h)
	for _, c := range []struct {
		name string
		fn   func(*testing.T, *flow)
	}{
		{"Required/ChallengeThenAccess", flowChallengeThenAccess},
		{"Required/ForgedSignatureRefused", flowForged},
		{"Required/WrongPreimageRefused", flowWrongPreimage},
		{"Required/ExpiredTokenRefused", flowExpired},
		{"Required/WrongPathRefused", flowWrongPath},
		{"Optional/FreeVariantWithoutAcceptAuthenticate", flowOptionalFree},
		{"Optional/PaidVariantWithAcceptAuthenticate", flowOptionalPaid},
		{"SingleUse/ReplayRefused", flowSingleUse},
		{"SingleUse/UpstreamFailureReleasesToken", flowSingleUseFailure},
		{"Client/TransportPaysAndRetries", flowTransport},
		{"Client/TransportSingleUse", flowTransportSingleUse},
		{"Prepaid/BundleDrawsThenTopsUp", flowBundle},
		{"Prepaid/UsageReportedByUpstream", flowMetered},
		{"Prepaid/TransportTopsUp", flowTransportTopUp},
		{"Payment/ChargeOnceWithReceipt", flowCharge},
		{"Payment/BothSchemesInOne402", flowBothSchemes},
		{"Unavailable/ChallengesFailTokensWork", flowNodeDown},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, f) })
	}
}

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

func flowChallengeThenAccess(t *testing.T, f *flow) {
	mac, pre := f.paidToken(t, "/paid/a")
	f.ok(t, "/paid/a", auth(t, mac, pre), "true")
	// The same token in the legacy forms, and again: it is not single-use.
	f.ok(t, "/paid/b", map[string]string{"Authorization": "LSAT " + encode(t, mac) + ":" + pre.String()}, "true")
	f.ok(t, "/paid/c", map[string]string{"Authorization": `LSAT macaroon="` + encode(t, mac) + `", preimage="` + pre.String() + `"`}, "true")
}

func flowForged(t *testing.T, f *flow) {
	mac, pre := f.paidToken(t, "/paid/f")
	// Same identifier, different root key: the signature cannot verify.
	forged, err := macaroon.New([]byte("not the root key at all, forged!"), mac.Id(), mac.Location(), macaroon.V2)
	if err != nil {
		t.Fatal(err)
	}
	f.refused(t, "/paid/f", auth(t, forged, pre), "bad_signature")
	// A genuine macaroon whose signature was altered in transit.
	raw, _ := mac.MarshalBinary()
	raw[len(raw)-1] ^= 0xff // flip a bit of the signature
	var flipped macaroon.Macaroon
	if err := flipped.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	f.refused(t, "/paid/f", auth(t, &flipped, pre), "bad_signature")
}

func flowWrongPreimage(t *testing.T, f *flow) {
	ch := f.challenge(t, "/paid/w", nil)
	wrong, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	f.refused(t, "/paid/w", auth(t, ch.Macaroon, wrong), "wrong_preimage")
}

func flowExpired(t *testing.T, f *flow) {
	mac, pre := f.paidToken(t, "/short/x")
	// valid_until is in whole seconds; wait until it has surely passed.
	time.Sleep(2100 * time.Millisecond)
	f.refused(t, "/short/x", auth(t, mac, pre), "expired")
}

func flowWrongPath(t *testing.T, f *flow) {
	mac, pre := f.paidToken(t, "/paid/p")
	f.ok(t, "/paid/p", auth(t, mac, pre), "true")
	f.refused(t, "/other/p", auth(t, mac, pre), "caveat")
}

func flowOptionalFree(t *testing.T, f *flow) {
	f.ok(t, "/podcast/ep1", nil, "false")
}

func flowOptionalPaid(t *testing.T, f *flow) {
	ch := f.challenge(t, "/podcast/ep2", map[string]string{l402.HeaderAcceptAuthenticate: "L402"})
	f.challenge(t, "/podcast/ep2", map[string]string{l402.HeaderAcceptAuthenticate: "LSAT"})
	pre := f.pay(t, ch.Invoice)
	f.ok(t, "/podcast/ep2", auth(t, ch.Macaroon, pre), "true")
}

// useOnce spends a single-use token on path and returns its preimage. On a
// hold-invoice backend the client presents the macaroon alone while its
// payment is held, and gets the preimage once the proxy settles; elsewhere
// it pays first and presents the preimage.
func (f *flow) useOnce(t *testing.T, path string, wantStatus int) (*macaroon.Macaroon, backend.Preimage, error) {
	t.Helper()
	ch := f.challenge(t, path, nil)
	if !f.hold {
		pre := f.pay(t, ch.Invoice)
		resp, body := f.get(t, path, auth(t, ch.Macaroon, pre))
		if resp.StatusCode != wantStatus {
			t.Fatalf("single-use GET %s: %s %s, want %d", path, resp.Status, body, wantStatus)
		}
		return ch.Macaroon, pre, nil
	}
	res := make(chan payResult, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*callTimeout)
	defer cancel()
	go func() {
		p, err := f.payer.PayInvoice(ctx, ch.Invoice, backend.PayOptions{Timeout: 2 * callTimeout})
		res <- payResult{p, err}
	}()
	pending := map[string]string{"Authorization": l402.PendingAuthorization(ch.Macaroon)}
	deadline := time.Now().Add(callTimeout)
	for {
		resp, body := f.get(t, path, pending)
		if resp.StatusCode == wantStatus {
			break
		}
		if resp.StatusCode != http.StatusPaymentRequired || !strings.Contains(body, "payment_pending") || time.Now().After(deadline) {
			t.Fatalf("single-use GET %s while paying: %s %s, want %d", path, resp.Status, body, wantStatus)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := <-res
	if r.err != nil {
		return ch.Macaroon, backend.Preimage{}, r.err
	}
	return ch.Macaroon, r.p.Preimage, nil
}

func flowSingleUse(t *testing.T, f *flow) {
	mac, pre, err := f.useOnce(t, "/once/x", http.StatusOK)
	if err != nil {
		t.Fatalf("payment for a served single-use token failed: %v", err)
	}
	if up := f.lastUpstream(); up.path != "/once/x" || up.paid != "true" {
		t.Errorf("upstream saw %+v", up)
	}
	f.refused(t, "/once/x", auth(t, mac, pre), "used")
	if f.hold {
		f.refused(t, "/once/x", map[string]string{"Authorization": l402.PendingAuthorization(mac)}, "used")
	}
}

func flowSingleUseFailure(t *testing.T, f *flow) {
	mac, pre, err := f.useOnce(t, "/flaky/x", http.StatusInternalServerError)
	if f.hold {
		// The proxy canceled the held invoice: the payment went back.
		if !errors.Is(err, backend.ErrPaymentFailed) {
			t.Fatalf("payment for a token whose request failed upstream: %v, want it returned (ErrPaymentFailed)", err)
		}
		id, _ := l402.DecodeIdentifier(mac.Id())
		inv, lerr := f.h.Backend().LookupInvoice(callCtx(t), id.PaymentHash)
		if lerr != nil || inv.State != backend.StateCanceled {
			t.Fatalf("invoice after upstream failure: %v %v, want canceled", inv, lerr)
		}
		return
	}
	// Without hold invoices the spent mark is released: the token works
	// again (and meets the same failing upstream).
	resp, body := f.get(t, "/flaky/x", auth(t, mac, pre))
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("retry of a single-use token after upstream failure: %s %s, want the upstream's 500 again", resp.Status, body)
	}
}

func flowTransport(t *testing.T, f *flow) {
	var receipts []l402.Receipt
	tr := &l402.Transport{Payer: f.payer, MaxPrice: flowPrice, OnPayment: func(_ context.Context, r l402.Receipt) { receipts = append(receipts, r) }}
	c := &http.Client{Transport: tr, Timeout: callTimeout}
	for i, path := range []string{"/paid/t1", "/paid/t2"} {
		resp, err := c.Get(f.base + path)
		if err != nil {
			t.Fatalf("client GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "upstream "+path+" paid=true" {
			t.Fatalf("client GET %s: %s %q", path, resp.Status, body)
		}
		if len(receipts) != 1 {
			t.Fatalf("after request %d the client paid %d times, want once (token cached per origin)", i+1, len(receipts))
		}
	}
	if receipts[0].Amount != flowPrice {
		t.Errorf("receipt amount %s, want %s", receipts[0].Amount, flowPrice)
	}
	cheap := &l402.Transport{Payer: f.payer, MaxPrice: flowPrice - 1000}
	resp, err := (&http.Client{Transport: cheap, Timeout: callTimeout}).Get(f.base + "/paid/t3")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("a client with a spending limit below the price got the paid resource")
		}
	}
}

// flowTransportSingleUse has the paying client use a single-use route
// twice: each request needs a payment of its own. On a hold-invoice backend
// the client presents the macaroon while its payment is held, as the proxy
// asks.
func flowTransportSingleUse(t *testing.T, f *flow) {
	var mu sync.Mutex
	var receipts []l402.Receipt
	tr := &l402.Transport{Payer: f.payer, MaxPrice: flowPrice, OnPayment: func(_ context.Context, r l402.Receipt) {
		mu.Lock()
		receipts = append(receipts, r)
		mu.Unlock()
	}}
	c := &http.Client{Transport: tr, Timeout: 2 * callTimeout}
	for i := 1; i <= 2; i++ {
		resp, err := c.Get(f.base + "/once/client")
		if err != nil {
			t.Fatalf("client GET %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close() // the Transport reports a held payment once the body is closed
		if resp.StatusCode != http.StatusOK || string(body) != "upstream /once/client paid=true" {
			t.Fatalf("client GET %d: %s %q", i, resp.Status, body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(receipts) != 2 {
		t.Fatalf("two requests to a single-use route made %d payments, want 2", len(receipts))
	}
	if receipts[0].PaymentHash == receipts[1].PaymentHash {
		t.Fatalf("both requests used payment %s", receipts[0].PaymentHash)
	}
}

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

// prepaidOK is ok for a bundle route: 200 from the upstream, and the
// balance header saying left units; the usage header never reaches the
// client.
func (f *flow) prepaidOK(t *testing.T, path string, hdr map[string]string, left int) {
	t.Helper()
	resp, body := f.get(t, path, hdr)
	base, _, _ := strings.Cut(path, "?")
	if resp.StatusCode != http.StatusOK || body != "upstream "+base+" paid=true" {
		t.Fatalf("GET %s: %s %q, want 200 from the upstream", path, resp.Status, body)
	}
	if got := resp.Header.Get(proxy.HeaderBalance); got != fmt.Sprint(left) {
		t.Fatalf("GET %s: %s %q, want %d", path, proxy.HeaderBalance, got, left)
	}
	if v := resp.Header.Get(proxy.DefaultUsageHeader); v != "" {
		t.Fatalf("GET %s: the upstream's usage header reached the client (%q)", path, v)
	}
}

// flowBundle buys a bundle of 3 requests, uses it up, gets a top-up
// challenge (never a 200 on credit), pays it, and draws on with the new
// token and the first one alike: one balance.
func flowBundle(t *testing.T, f *flow) {
	mac, pre := f.paidToken(t, "/bundle/a")
	first := auth(t, mac, pre)
	for left := 2; left >= 0; left-- {
		f.prepaidOK(t, "/bundle/a", first, left)
	}
	before := len(f.upstreamCalls())
	top := f.challenge(t, "/bundle/a", first)
	if len(f.upstreamCalls()) != before {
		t.Fatal("a request on a dry balance reached the upstream")
	}
	topUp := auth(t, top.Macaroon, f.pay(t, top.Invoice))
	f.prepaidOK(t, "/bundle/a", topUp, 2)
	f.prepaidOK(t, "/bundle/a", first, 1)
	f.prepaidOK(t, "/bundle/a", topUp, 0)
}

// flowMetered draws the usage the upstream reports in its response header.
func flowMetered(t *testing.T, f *flow) {
	mac, pre := f.paidToken(t, "/metered/a")
	tok := auth(t, mac, pre)
	f.prepaidOK(t, "/metered/a?use=7", tok, 93)
	f.prepaidOK(t, "/metered/a?use=30", tok, 63) // above the reservation of 10: debited while covered
	f.prepaidOK(t, "/metered/a", tok, 53)        // nothing reported: charged the reservation
}

// flowTransportTopUp has the paying client draw a bundle of 3 with 7
// requests: it pays at the first and whenever the balance is dry.
func flowTransportTopUp(t *testing.T, f *flow) {
	var mu sync.Mutex
	var receipts []l402.Receipt
	tr := &l402.Transport{Payer: f.payer, MaxPrice: flowPrice, OnPayment: func(_ context.Context, r l402.Receipt) {
		mu.Lock()
		receipts = append(receipts, r)
		mu.Unlock()
	}}
	c := &http.Client{Transport: tr, Timeout: callTimeout}
	var lefts []string
	for range 7 {
		resp, err := c.Get(f.base + "/bundle/t")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("client GET /bundle/t: %s", resp.Status)
		}
		lefts = append(lefts, resp.Header.Get(proxy.HeaderBalance))
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(lefts, " ") != "2 1 0 2 1 0 2" || len(receipts) != 3 {
		t.Fatalf("balances %v after %d payments; want 2 1 0 2 1 0 2 after 3", lefts, len(receipts))
	}
}

// chargeChallenge asks for path and checks the 402 of a route that offers
// the Payment scheme: a problem document, and a Lightning charge challenge
// whose invoice asks the route's price (L402 challenges too when wantL402,
// with another invoice).
func (f *flow) chargeChallenge(t *testing.T, path string, wantL402 bool) l402.PaymentChallenge {
	t.Helper()
	resp, body := f.get(t, path, nil)
	if resp.StatusCode != http.StatusPaymentRequired || resp.Header.Get("Content-Type") != l402.ProblemContentType {
		t.Fatalf("GET %s without a credential: %s %s %q, want 402 problem+json", path, resp.Status, resp.Header.Get("Content-Type"), body)
	}
	if !strings.Contains(body, l402.ProblemPaymentRequired) {
		t.Errorf("402 body %q has not the payment-required type", body)
	}
	pcs, err := l402.ParsePaymentChallenges(resp.Header)
	if err != nil || len(pcs) != 1 {
		t.Fatalf("Payment challenges %+v %v (%q)", pcs, err, resp.Header.Values("WWW-Authenticate"))
	}
	req, inv, err := pcs[0].Charge()
	if err != nil {
		t.Fatalf("charge challenge: %v", err)
	}
	if inv.Amount != flowPrice || req.Amount != fmt.Sprint(int64(flowPrice/1000)) || req.MethodDetails.PaymentHash != inv.PaymentHash.String() {
		t.Errorf("charge asks %s (%s sat), hash %s; invoice %s", inv.Amount, req.Amount, req.MethodDetails.PaymentHash, inv.PaymentHash)
	}
	chs, err := l402.ParseChallenges(resp.Header)
	if wantL402 {
		if err != nil || len(chs) != 2 {
			t.Fatalf("L402 challenges beside the charge: %+v %v", chs, err)
		}
		if chs[0].Invoice == req.MethodDetails.Invoice {
			t.Errorf("the L402 and Payment challenges share an invoice")
		}
	} else if err == nil {
		t.Errorf("a Payment-only route sent L402 challenges %q", resp.Header.Values("WWW-Authenticate"))
	}
	return pcs[0]
}

// charge pays ch and returns its Authorization value.
func (f *flow) charge(t *testing.T, ch l402.PaymentChallenge) string {
	t.Helper()
	_, inv, err := ch.Charge()
	if err != nil {
		t.Fatal(err)
	}
	a, err := l402.NewChargeCredential(ch, f.pay(t, inv.PaymentRequest)).Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// refusedCharge checks a Payment credential was refused: 402, a problem
// document of type problem with fresh challenges, nothing upstream.
func (f *flow) refusedCharge(t *testing.T, path, authz, problem string) {
	t.Helper()
	before := len(f.upstreamCalls())
	resp, body := f.get(t, path, map[string]string{"Authorization": authz})
	if resp.StatusCode != http.StatusPaymentRequired || resp.Header.Get("Content-Type") != l402.ProblemContentType || !strings.Contains(body, `"type":"`+problem+`"`) {
		t.Fatalf("GET %s with a bad credential: %s %q, want 402 of type %s", path, resp.Status, body, problem)
	}
	if _, err := l402.ParsePaymentChallenges(resp.Header); err != nil {
		t.Errorf("refusal without a fresh challenge: %v", err)
	}
	if after := len(f.upstreamCalls()); after != before {
		t.Errorf("a refused credential reached the upstream")
	}
}

// flowCharge: a Payment-only route, paid by charge: served once with a
// receipt, the credential stripped; the same credential again, one for
// another route, one with its request changed and one that is not even
// readable are refused with their problem types.
func flowCharge(t *testing.T, f *flow) {
	ch := f.chargeChallenge(t, "/charge/a", false)
	authz := f.charge(t, ch)
	resp, body := f.get(t, "/charge/a", map[string]string{"Authorization": authz})
	if resp.StatusCode != http.StatusOK || body != "upstream /charge/a paid=true" {
		t.Fatalf("paid charge: %s %q", resp.Status, body)
	}
	if up := f.lastUpstream(); up.auth != "" {
		t.Errorf("the upstream was sent the Payment credential %q", up.auth)
	}
	_, inv, _ := ch.Charge()
	r, ok, err := l402.ParsePaymentReceipt(resp.Header)
	if !ok || err != nil || r.Status != "success" || r.Method != l402.MethodLightning || r.Reference != inv.PaymentHash.String() || r.ChallengeID != ch.ID {
		t.Errorf("Payment-Receipt %+v %v %v", r, ok, err)
	}
	f.refusedCharge(t, "/charge/a", authz, l402.ProblemVerificationFailed)

	other := f.chargeChallenge(t, "/both/a", true)
	f.refusedCharge(t, "/charge/a", f.charge(t, other), l402.ProblemInvalidChallenge)

	tampered := f.chargeChallenge(t, "/charge/b", false)
	req, _ := tampered.ChargeRequest()
	req.Amount = "1"
	enc, err := l402.EncodeChargeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	paid := f.charge(t, tampered) // paid honestly, then the echo is changed
	cred, err := l402.ParsePaymentAuthorization(paid)
	if err != nil {
		t.Fatal(err)
	}
	cred.Challenge.Request = enc
	bad, _ := cred.Authorization()
	f.refusedCharge(t, "/charge/b", bad, l402.ProblemInvalidChallenge)
	f.refusedCharge(t, "/charge/b", "Payment bm90IGpzb24", l402.ProblemMalformedCredential)
	// The honest credential still works: the refusals spent nothing.
	if resp, body := f.get(t, "/charge/b", map[string]string{"Authorization": paid}); resp.StatusCode != http.StatusOK {
		t.Fatalf("honest credential after refusals: %s %q", resp.Status, body)
	}
}

// flowBothSchemes: a route offering both schemes in one 402 is paid either
// way, by hand and by the paying client in each preference order.
func flowBothSchemes(t *testing.T, f *flow) {
	ch := f.chargeChallenge(t, "/both/x", true)
	if resp, body := f.get(t, "/both/x", map[string]string{"Authorization": f.charge(t, ch)}); resp.StatusCode != http.StatusOK || body != "upstream /both/x paid=true" {
		t.Fatalf("charge on /both/: %s %q", resp.Status, body)
	}
	mac, pre := f.paidToken(t, "/both/y")
	f.ok(t, "/both/y", auth(t, mac, pre), "true")
	for _, schemes := range [][]string{{l402.SchemePayment, l402.SchemeL402}, {l402.SchemeL402, l402.SchemePayment}} {
		var mu sync.Mutex
		var receipts []l402.Receipt
		tr := &l402.Transport{Payer: f.payer, MaxPrice: flowPrice, Schemes: schemes, OnPayment: func(_ context.Context, r l402.Receipt) {
			mu.Lock()
			receipts = append(receipts, r)
			mu.Unlock()
		}}
		c := &http.Client{Transport: tr, Timeout: callTimeout}
		for _, path := range []string{"/both/c1", "/both/c2"} {
			resp, err := c.Get(f.base + path)
			if err != nil {
				t.Fatalf("client %v GET %s: %v", schemes, path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != "upstream "+path+" paid=true" {
				t.Fatalf("client %v GET %s: %s %q", schemes, path, resp.Status, body)
			}
			_, hasReceipt, _ := l402.ParsePaymentReceipt(resp.Header)
			if hasReceipt != (schemes[0] == l402.SchemePayment) {
				t.Errorf("client %v: Payment-Receipt present %v", schemes, hasReceipt)
			}
		}
		mu.Lock()
		// A charge buys one request; an L402 token is reused.
		want := map[string]int{l402.SchemePayment: 2, l402.SchemeL402: 1}[schemes[0]]
		if len(receipts) != want || receipts[0].Scheme != schemes[0] {
			t.Errorf("client %v made payments %+v, want %d by %s", schemes, receipts, want, schemes[0])
		}
		mu.Unlock()
	}
}
