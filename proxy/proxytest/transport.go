package proxytest

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/l402kit/l402kit/l402"
)

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
