package lnurl_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/lnurl"
)

// An invoice expires when the service says, not when the caller asked: the
// Invoice tells the truth about it, a lookup after it reads unpayable,
// waiting returns instead of polling on, and the payer is refused.
func TestServiceExpiry(t *testing.T) {
	node := newMemoryNode(t)
	s, _ := serveOn(t, node, func(c *lnurl.ServerConfig) { c.Expiry = 2 * time.Second })
	c, err := lnurl.New(ctx10(t), lnurl.Config{Address: s.Address("alice"), PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inv, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: 4000, Expiry: time.Hour, Memo: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := backend.DecodeInvoice(inv.PaymentRequest)
	if err != nil {
		t.Fatal(err)
	}
	if d.Expiry != 2*time.Second || !inv.ExpiresAt.Equal(d.ExpiresAt()) {
		t.Fatalf("invoice expiry %s, ExpiresAt %s; BOLT11 says %s, %s", d.Expiry, inv.ExpiresAt, d.Expiry, d.ExpiresAt())
	}
	if d.Memo != "" || inv.Memo != "" {
		t.Errorf("memo %q / %q: LNURL-pay cannot carry the caller's memo and must not claim to", d.Memo, inv.Memo)
	}
	time.Sleep(time.Until(inv.ExpiresAt) + 500*time.Millisecond)
	got, err := c.LookupInvoice(ctx10(t), inv.PaymentHash)
	if err != nil {
		t.Fatal(err)
	}
	if got.Payable(time.Now()) {
		t.Errorf("invoice past its expiry reads payable")
	}
	got, err = c.WaitInvoice(ctx10(t), inv.PaymentHash)
	if err != nil || got.Payable(time.Now()) {
		t.Errorf("WaitInvoice on an expired invoice: %v %v, want the unpayable invoice at once", got, err)
	}
	if _, err := node.PayInvoice(ctx10(t), inv.PaymentRequest, backend.PayOptions{}); err == nil {
		t.Errorf("an expired invoice was paid")
	}
}

// Pay parameters are reused for ParamsTTL once a second fetch shows the
// callback stays the same, and fetched again at once when the callback
// refuses, since the service may have changed them; the refused request is
// asked once more with the fresh ones.
func TestParamsCache(t *testing.T) {
	node := newMemoryNode(t)
	var (
		srv                atomic.Pointer[lnurl.Server]
		fetches, callbacks atomic.Int32
		failNext           atomic.Bool
	)
	svc := startService(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/.well-known/"):
			fetches.Add(1)
		case strings.HasSuffix(r.URL.Path, "/callback"):
			callbacks.Add(1)
			if failNext.CompareAndSwap(true, false) {
				writeJSON(w, map[string]any{"status": "ERROR", "reason": "try again"})
				return
			}
		}
		srv.Load().ServeHTTP(w, r)
	}))
	// The server names its own address in URLs, known once listening.
	s, err := lnurl.NewServer(lnurl.ServerConfig{Backend: node, Domain: svc.addr, BaseURL: svc.baseURL(), Names: []string{"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Store(s)
	c, err := lnurl.New(ctx10(t), lnurl.Config{Address: "alice@" + svc.addr, ParamsTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 5 {
		if _, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: 5000}); err != nil {
			t.Fatal(err)
		}
	}
	if f := fetches.Load(); f != 2 {
		t.Errorf("5 invoices fetched pay parameters %d times, want twice (the second shows the callback is static)", f)
	}
	failNext.Store(true)
	if _, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: 5000}); err != nil {
		t.Fatalf("a refusal is retried once with fresh parameters: %v", err)
	}
	if _, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: 5000}); err != nil {
		t.Fatal(err)
	}
	if f := fetches.Load(); f != 3 {
		t.Errorf("after a refused callback pay parameters were fetched %d times in all, want 3", f)
	}
	if n := callbacks.Load(); n != 8 {
		t.Errorf("callbacks %d, want 8", n)
	}
}

// Calls after Close fail, and Close can be called again.
func TestClientClose(t *testing.T) {
	node := newMemoryNode(t)
	s, _ := serveOn(t, node, nil)
	c, err := lnurl.New(ctx10(t), lnurl.Config{Address: s.Address("alice")})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = c.LookupInvoice(ctx10(t), inv.PaymentHash)
	wantRefused(t, err, backend.ErrClosed, "closed")
	_, err = c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: 5000})
	wantRefused(t, err, backend.ErrClosed, "closed")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.WaitInvoice(ctx, inv.PaymentHash)
	wantRefused(t, err, backend.ErrClosed, "closed")
}
