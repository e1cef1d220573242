package proxytest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/l402kit/l402kit/l402"
)

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
