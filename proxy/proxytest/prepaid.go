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
	"github.com/l402kit/l402kit/proxy"
)

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
