package lnurl_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/lnurl"
	"github.com/l402kit/l402kit/proxy"
)

// Stand-ins for LNURL-pay services users point the lnurl client at,
// written from their sources (lnurl/testdata/README.md lists what was
// read): BTCPay Server's lightning addresses, whose callback is bound to
// one store invoice; LNbits' lnurlp extension, whose callback is static and
// which answers 520 when its funding source cannot make an invoice; and a
// lightning address on a custom domain that redirects to, or serves a copy
// of, its provider's document.

// btcpay serves what BTCPay Server's UILNURLController does for a
// lightning address: each fetch of /.well-known/lnurlp/{user} makes a
// store invoice and names a callback for it, /BTC/UILNURL/pay/i/{id}. The
// callback makes a Lightning invoice for the amount, answers with the same
// one when asked the same amount again, cancels it and makes another for a
// different amount, and once the store invoice is paid (or expired) answers
// 400 {"status":"ERROR","reason":"Invoice not in a valid payable state"}.
type btcpay struct {
	t    *testing.T
	node *backend.Backend
	srv  *httptest.Server

	mu      sync.Mutex
	storeIn map[string]*storeInvoice

	fetches, callbacks atomic.Int32
}

type storeInvoice struct {
	metadata string
	expires  time.Time
	bolt11   string
	hash     backend.PaymentHash
	amount   backend.MilliSat
	paid     bool // paid by some other wallet through the store's checkout
}

func newBTCPay(t *testing.T, node *backend.Backend) *btcpay {
	b := &btcpay{t: t, node: node, storeIn: make(map[string]*storeInvoice)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/lnurlp/{user}", b.resolve)
	mux.HandleFunc("GET /BTC/UILNURL/pay/i/{id}", b.callback)
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

func (b *btcpay) address() string { return "alice@" + strings.TrimPrefix(b.srv.URL, "http://") }

func (b *btcpay) resolve(w http.ResponseWriter, r *http.Request) {
	b.fetches.Add(1)
	id := randomID()
	meta, _ := json.Marshal([][]string{{"text/plain", "Paid to Test Store"}, {"text/identifier", r.PathValue("user") + "@" + r.Host}})
	b.mu.Lock()
	// The store invoice's expiry: min(store setting, 2 minutes).
	b.storeIn[id] = &storeInvoice{metadata: string(meta), expires: time.Now().Add(2 * time.Minute)}
	b.mu.Unlock()
	writeJSON(w, map[string]any{
		"tag": "payRequest", "minSendable": 1000, "maxSendable": 612_000_000_000, "commentAllowed": 0,
		"metadata": string(meta), "callback": b.srv.URL + "/BTC/UILNURL/pay/i/" + id,
	})
}

func (b *btcpay) callback(w http.ResponseWriter, r *http.Request) {
	b.callbacks.Add(1)
	ctx := r.Context()
	b.mu.Lock()
	defer b.mu.Unlock()
	si := b.storeIn[r.PathValue("id")]
	if si == nil {
		http.NotFound(w, r)
		return
	}
	if si.bolt11 != "" {
		if inv, err := b.node.LookupInvoice(ctx, si.hash); err == nil && inv.State == backend.StateSettled {
			si.paid = true
		}
	}
	if si.paid || time.Now().After(si.expires) {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]any{"status": "ERROR", "reason": "Invoice not in a valid payable state"})
		return
	}
	amount, err := strconv.ParseInt(r.URL.Query().Get("amount"), 10, 64)
	if err != nil || amount < 1000 || amount > 612_000_000_000 {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]any{"status": "ERROR", "reason": "Amount is out of bounds."})
		return
	}
	if si.bolt11 == "" || si.amount != backend.MilliSat(amount) {
		if si.bolt11 != "" {
			_ = b.node.CancelInvoice(ctx, si.hash)
		}
		h := sha256Of(si.metadata)
		inv, err := b.node.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.MilliSat(amount), DescriptionHash: &h,
			Expiry: time.Until(si.expires)})
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			writeJSON(w, map[string]any{"status": "ERROR", "reason": "Lightning node could not generate invoice with description hash: " + err.Error()})
			return
		}
		si.bolt11, si.hash, si.amount = inv.PaymentRequest, inv.PaymentHash, backend.MilliSat(amount)
	}
	writeJSON(w, map[string]any{"disposable": true, "routes": []any{}, "pr": si.bolt11})
}

// payStoreInvoiceElsewhere has another wallet pay every store invoice made
// so far, through its callback, as a customer at the store's checkout
// would.
func (b *btcpay) payStoreInvoicesElsewhere(t *testing.T) {
	b.mu.Lock()
	var ids []string
	for id := range b.storeIn {
		ids = append(ids, id)
	}
	b.mu.Unlock()
	for _, id := range ids {
		resp, err := http.Get(b.srv.URL + "/BTC/UILNURL/pay/i/" + id + "?amount=7000")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ PR string }
		err = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if err != nil || doc.PR == "" {
			t.Fatalf("store invoice %s: %v %+v", id, err, doc)
		}
		if _, err := b.node.PayInvoice(context.Background(), doc.PR, backend.PayOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// newLNURLClient opens a client, closed when the test ends.
func newLNURLClient(t *testing.T, cfg lnurl.Config) *backend.Backend {
	t.Helper()
	c, err := lnurl.New(ctx10(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Concurrent invoices through a BTCPay lightning address: each has a
// payment hash of its own and stays payable (no invoice canceled under
// another caller by a callback asked for another amount), and all are paid.
func TestBTCPayConcurrentInvoices(t *testing.T) {
	node := newMemoryNode(t)
	b := newBTCPay(t, node)
	c := newLNURLClient(t, lnurl.Config{Address: b.address()})
	const n = 8
	invs := make([]*backend.Invoice, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			inv, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: backend.Sat(int64(10 + i%3))})
			if err != nil {
				t.Error(err)
				return
			}
			invs[i] = inv
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// And sequentially after them, with the same amount each time.
	for range 3 {
		inv, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: backend.Sat(10)})
		if err != nil {
			t.Fatal(err)
		}
		invs = append(invs, inv)
	}
	seen := map[backend.PaymentHash]bool{}
	for i, inv := range invs {
		if seen[inv.PaymentHash] {
			t.Fatalf("invoice %d repeats payment hash %s", i, inv.PaymentHash)
		}
		seen[inv.PaymentHash] = true
		if _, err := node.PayInvoice(ctx10(t), inv.PaymentRequest, backend.PayOptions{}); err != nil {
			t.Fatalf("invoice %d: %v", i, err)
		}
	}
	t.Logf("%d invoices: %d pay-parameter fetches, %d callbacks", len(invs), b.fetches.Load(), b.callbacks.Load())
}

// Parameters fetched before their store invoice was paid by someone else:
// the callback refuses, and the client fetches them again and succeeds.
func TestBTCPayStaleParameters(t *testing.T) {
	node := newMemoryNode(t)
	b := newBTCPay(t, node)
	c := newLNURLClient(t, lnurl.Config{Address: b.address()})
	b.payStoreInvoicesElsewhere(t)
	inv, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: backend.Sat(21)})
	if err != nil {
		t.Fatalf("after the store invoice was paid elsewhere: %v", err)
	}
	if f := b.fetches.Load(); f != 2 {
		t.Errorf("%d pay-parameter fetches, want 2 (New's, then a fresh one after the refusal)", f)
	}
	if _, err := node.PayInvoice(ctx10(t), inv.PaymentRequest, backend.PayOptions{}); err != nil {
		t.Fatal(err)
	}
}

// lnbits serves what LNbits' lnurlp extension does for a pay link with a
// username: /.well-known/lnurlp/{user} names the static callback
// /lnurlp/api/v1/lnurl/cb/{link}, and metadata written by Python's
// json.dumps (spaces after separators). The callback answers an amount out
// of range with {"status":"ERROR"} and HTTP 200, and 520 {"detail":...,
// "status":"pending"} when the funding source cannot make an invoice.
type lnbits struct {
	node     *backend.Backend
	srv      *httptest.Server
	down     atomic.Bool
	fetches  atomic.Int32
	minSat   int64
	maxSat   int64
	linkID   string
	username string
}

func newLNbits(t *testing.T, node *backend.Backend) *lnbits {
	l := &lnbits{node: node, minSat: 1, maxSat: 500_000, linkID: "Xy7kQ2", username: "alice"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/lnurlp/{user}", func(w http.ResponseWriter, r *http.Request) {
		l.fetches.Add(1)
		if r.PathValue("user") != l.username {
			w.WriteHeader(http.StatusNotFound)
			writeJSON(w, map[string]any{"detail": "Lightning address not found."})
			return
		}
		writeJSON(w, map[string]any{
			"tag": "payRequest", "callback": l.srv.URL + "/lnurlp/api/v1/lnurl/cb/" + l.linkID,
			"minSendable": l.minSat * 1000, "maxSendable": l.maxSat * 1000, "metadata": l.metadata(r.Host),
		})
	})
	mux.HandleFunc("GET /lnurlp/api/v1/lnurl/cb/{link}", func(w http.ResponseWriter, r *http.Request) {
		amount, err := strconv.ParseInt(r.URL.Query().Get("amount"), 10, 64)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			writeJSON(w, map[string]any{"detail": "amount: field required"})
			return
		}
		switch {
		case amount < l.minSat*1000:
			writeJSON(w, map[string]any{"status": "ERROR", "reason": fmt.Sprintf("Amount %d is smaller than minimum %d.", amount, l.minSat*1000)})
			return
		case amount > l.maxSat*1000:
			writeJSON(w, map[string]any{"status": "ERROR", "reason": fmt.Sprintf("Amount %d is greater than maximum %d.", amount, l.maxSat*1000)})
			return
		case l.down.Load():
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(520)
			fmt.Fprint(w, `{"detail": "Unable to connect to http://127.0.0.1:8080.", "status": "pending"}`)
			return
		}
		h := sha256Of(l.metadata(r.Host))
		inv, err := l.node.CreateInvoice(r.Context(), backend.InvoiceRequest{Amount: backend.MilliSat(amount), DescriptionHash: &h})
		if err != nil {
			w.WriteHeader(520)
			writeJSON(w, map[string]any{"detail": err.Error(), "status": "pending"})
			return
		}
		writeJSON(w, map[string]any{"pr": inv.PaymentRequest, "routes": []any{}, "disposable": nil})
	})
	l.srv = httptest.NewServer(mux)
	t.Cleanup(l.srv.Close)
	return l
}

// metadata is what the lnurlp extension sends, identifier naming the host
// the request came to.
func (l *lnbits) metadata(host string) string {
	return `[["text/plain", "Payment to ` + l.username + `"], ["text/identifier", "` + l.username + "@" + host + `"]]`
}

func (l *lnbits) address() string { return l.username + "@" + strings.TrimPrefix(l.srv.URL, "http://") }

// LNbits: the static callback lets parameters be reused; a funding source
// that is down (520) reads as unavailable, so a proxy in front answers 503
// with Retry-After, and invoices come again once it is back.
func TestLNbits(t *testing.T) {
	node := newMemoryNode(t)
	l := newLNbits(t, node)
	c := newLNURLClient(t, lnurl.Config{Address: l.address(), ParamsTTL: time.Hour})
	for range 4 {
		inv, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: backend.Sat(3)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := node.PayInvoice(ctx10(t), inv.PaymentRequest, backend.PayOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if f := l.fetches.Load(); f != 2 {
		t.Errorf("4 invoices fetched pay parameters %d times, want 2", f)
	}
	_, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: backend.Sat(500_001)})
	wantRefused(t, err, backend.ErrInvalid, "outside the service's range")

	l.down.Store(true)
	_, err = c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: backend.Sat(3)})
	wantRefused(t, err, backend.ErrUnavailable, "HTTP 520")

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "paid content") }))
	defer upstream.Close()
	p, err := proxy.New(proxy.Config{Backend: c, Routes: []proxy.Route{{Name: "paid", PathPrefix: "/paid/", Price: backend.Sat(3), Upstream: mustParse(t, upstream.URL)}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "http://proxy.test/paid/x", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("proxy over a down LNbits answered %d (Retry-After %q), want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}

	l.down.Store(false)
	rec = httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "http://proxy.test/paid/x", nil))
	if rec.Code != http.StatusPaymentRequired {
		t.Fatalf("proxy after LNbits came back answered %d, want 402", rec.Code)
	}
}

// A lightning address on a custom domain whose /.well-known/lnurlp/ entry
// redirects to the provider's, or serves a copy of it: the metadata names
// the provider's address, which wallets accept, and the invoice is still
// checked against that metadata's hash and the amount.
func TestCustomDomainAlias(t *testing.T) {
	node := newMemoryNode(t)
	provider := newLNbits(t, node)
	for _, mode := range []string{"redirect", "copy"} {
		t.Run(mode, func(t *testing.T) {
			alias := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/.well-known/lnurlp/me" {
					http.NotFound(w, r)
					return
				}
				target := provider.srv.URL + "/.well-known/lnurlp/" + provider.username
				if mode == "redirect" {
					http.Redirect(w, r, target, http.StatusFound)
					return
				}
				resp, err := http.Get(target)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				defer resp.Body.Close()
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.Copy(w, resp.Body)
			}))
			defer alias.Close()
			c := newLNURLClient(t, lnurl.Config{Address: "me@" + strings.TrimPrefix(alias.URL, "http://")})
			inv, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: backend.Sat(2)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := node.PayInvoice(ctx10(t), inv.PaymentRequest, backend.PayOptions{}); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("redirect to plain http", func(t *testing.T) {
		alias := httptest.NewServer(http.RedirectHandler("http://provider.example/.well-known/lnurlp/alice", http.StatusFound))
		defer alias.Close()
		_, err := lnurl.New(ctx10(t), lnurl.Config{Address: "me@" + strings.TrimPrefix(alias.URL, "http://")})
		wantRefused(t, err, backend.ErrInvalid, "redirect", "plain http")
	})
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
