package cln_test

import (
	"context"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/cln"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPayThroughAdapter(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newFakeHarness(t, tr, false)
			payer := h.b
			inv, err := h.b.CreateInvoice(ctxT(t), backend.InvoiceRequest{Amount: 5000, Memo: "pay me"})
			if err != nil {
				t.Fatal(err)
			}
			p, err := payer.PayInvoice(ctxT(t), "  "+inv.PaymentRequest+"\n", backend.PayOptions{MaxFee: 10}) // lightningd trims no whitespace; the adapter does
			if err != nil {
				t.Fatal(err)
			}
			if !p.Preimage.Matches(inv.PaymentHash) || p.Amount != 5000 || p.Fee != 0 {
				t.Errorf("payment %+v for invoice %s", p, inv.PaymentHash)
			}
			// pay would answer the earlier payment's success again; the
			// contract makes that a refusal.
			_, err = payer.PayInvoice(ctxT(t), inv.PaymentRequest, backend.PayOptions{})
			if !errors.Is(err, backend.ErrPaymentFailed) || !strings.Contains(err.Error(), "already paid") {
				t.Errorf("second payment: %v, want ErrPaymentFailed saying already paid", err)
			}

			anyAmt, err := h.b.CreateInvoice(ctxT(t), backend.InvoiceRequest{Memo: "any"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = payer.PayInvoice(ctxT(t), anyAmt.PaymentRequest, backend.PayOptions{})
			if !errors.Is(err, backend.ErrInvalid) {
				t.Errorf("any-amount invoice without an amount: %v, want ErrInvalid", err)
			}
			p, err = payer.PayInvoice(ctxT(t), anyAmt.PaymentRequest, backend.PayOptions{Amount: 777})
			if err != nil || p.Amount != 777 {
				t.Errorf("any-amount payment: %+v, %v", p, err)
			}
		})
	}
}

func TestErrorsMapToSentinels(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newFakeHarness(t, tr, false)
			_, err := h.b.CreateInvoice(ctxT(t), backend.InvoiceRequest{Amount: -1})
			if !errors.Is(err, backend.ErrInvalid) {
				t.Errorf("negative amount: %v, want ErrInvalid", err)
			}
			pre, _ := backend.NewPreimage()
			req := backend.InvoiceRequest{Amount: 1000, Memo: "dup", Preimage: &pre}
			if _, err := h.b.CreateInvoice(ctxT(t), req); err != nil {
				t.Fatal(err)
			}
			_, err = h.b.CreateInvoice(ctxT(t), req)
			var rerr *cln.RPCError
			if !errors.Is(err, backend.ErrAlreadyExists) || !errors.As(err, &rerr) || rerr.Code != 901 {
				t.Errorf("reused preimage: %v, want ErrAlreadyExists with code 901", err)
			}
		})
	}
}

// WaitInvoice on an invoice that expires while waited on: lightningd ends
// waitinvoice with error 903, whose data is the expired invoice.
func TestWaitInvoiceExpiry(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newFakeHarness(t, tr, false)
			inv, err := h.b.CreateInvoice(ctxT(t), backend.InvoiceRequest{Amount: 1000, Memo: "short", Expiry: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			got, err := h.b.WaitInvoice(ctxT(t), inv.PaymentHash)
			if err != nil {
				t.Fatalf("WaitInvoice: %v", err)
			}
			if got.State != backend.StateOpen || !got.Expired(time.Now()) || got.Payable(time.Now()) {
				t.Errorf("WaitInvoice returned %s, expired=%v", got.State, got.Expired(time.Now()))
			}
		})
	}
}

// A wait in progress when the node goes away ends with ErrUnavailable, not
// a hang.
func TestWaitEndsWhenNodeStops(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newFakeHarness(t, tr, false)
			inv, err := h.b.CreateInvoice(ctxT(t), backend.InvoiceRequest{Amount: 1000, Memo: "wait"})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := h.b.WaitInvoice(ctxT(t), inv.PaymentHash)
				done <- err
			}()
			// Stop only once the fake serves the wait: stopped earlier, the
			// call would meet a node that is already down, which is another
			// case.
			eventually(ctxT(t), t, "the fake serving the wait", func() bool { return h.fake.Waiting() == 1 })
			if err := h.fake.Stop(); err != nil {
				t.Fatal(err)
			}
			defer h.fake.Start()
			if err := <-done; !errors.Is(err, backend.ErrUnavailable) {
				t.Errorf("wait when the node stopped: %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	f := startFake(t, false)
	dir := socketDir(t)
	for _, c := range []struct {
		url  string
		want error
	}{
		{"cln://" + filepath.Join(dir, "no-such-socket"), backend.ErrUnavailable},
		{"cln://host/path", backend.ErrInvalid},
		{"clnrest://" + f.RESTAddr(), backend.ErrInvalid}, // no rune
		{"clnrest://" + f.RESTAddr() + "?rune=env:L402KIT_TEST_UNSET_RUNE", backend.ErrInvalid},
		{"clnrest://" + f.RESTAddr() + "?rune=wrong&tls=0", backend.ErrInvalid},
		{"clnrest://" + f.RESTAddr() + "?rune=x&tls=maybe", backend.ErrInvalid},
		{"clnrest://127.0.0.1:1?rune=x&tls=0", backend.ErrUnavailable},
	} {
		b, err := backend.Open(ctxT(t), c.url)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v (%T), want %v", c.url, err, b, c.want)
		}
	}
}

// CLNRest over TLS: a TLS front (CLNRest's own protocol is HTTPS) before
// the fake, trusted through tlscert=PATH, and refused without it.
func TestRESTOverTLS(t *testing.T) {
	f := startFake(t, true)
	target, _ := url.Parse("http://" + f.RESTAddr())
	front := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	t.Cleanup(front.Close)
	certPath := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw})
	if err := os.WriteFile(certPath, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	host := front.Listener.Addr().String()
	t.Setenv("L402KIT_TEST_CLN_RUNE", f.Rune())

	b, err := backend.Open(ctxT(t), fmt.Sprintf("clnrest://%s?rune=env:L402KIT_TEST_CLN_RUNE&tlscert=%s", host, url.QueryEscape(certPath)))
	if err != nil {
		t.Fatalf("open over TLS with tlscert: %v", err)
	}
	if !b.Supports(backend.AbilityHold) {
		t.Errorf("hold plugin present but the backend has no hold ability: %v", backend.Abilities(b))
	}
	info, err := b.Info(ctxT(t))
	if err != nil || info.NodeID != f.Node().NodeID() || info.Network != "regtest" || !info.Synced {
		t.Errorf("Info over TLS: %+v, %v", info, err)
	}

	_, err = backend.Open(ctxT(t), fmt.Sprintf("clnrest://%s?rune=env:L402KIT_TEST_CLN_RUNE", host))
	if !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("open over TLS without trusting the certificate: %v, want ErrUnavailable", err)
	}
	if _, err := backend.Open(ctxT(t), fmt.Sprintf("clnrest://%s?rune=env:L402KIT_TEST_CLN_RUNE&insecure=1", host)); err != nil {
		t.Errorf("open with insecure=1: %v", err)
	}
	_ = http.StatusOK
}

// Hold invoices keep the caller's memo and expiry, through signinvoice and
// injectholdinvoice, and read back through listholdinvoices.
func TestHoldInvoiceFields(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newFakeHarness(t, tr, true)
			hi := h.b
			pre, _ := backend.NewPreimage()
			inv, err := hi.CreateHoldInvoice(ctxT(t), pre.Hash(), backend.InvoiceRequest{Amount: 4242, Memo: "held memo", Expiry: 7 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			d, err := backend.DecodeInvoice(inv.PaymentRequest)
			if err != nil {
				t.Fatal(err)
			}
			if d.Memo != "held memo" || d.Expiry != 7*time.Minute || d.Amount != 4242 || d.PaymentHash != pre.Hash() || d.Payee != h.fake.Node().NodeID() {
				t.Errorf("hold invoice decodes to %+v", d)
			}
			got, err := h.b.LookupInvoice(ctxT(t), pre.Hash())
			if err != nil || got.Memo != "held memo" || got.State != backend.StateOpen || got.PaymentRequest != inv.PaymentRequest {
				t.Errorf("lookup: %+v, %v", got, err)
			}
			dh := [32]byte{9, 9, 9}
			pre2, _ := backend.NewPreimage()
			inv2, err := hi.CreateHoldInvoice(ctxT(t), pre2.Hash(), backend.InvoiceRequest{Amount: 1000, DescriptionHash: &dh})
			if err != nil {
				t.Fatalf("hold invoice with a description hash: %v", err)
			}
			if d2, _ := backend.DecodeInvoice(inv2.PaymentRequest); d2 == nil || d2.DescriptionHash == nil || *d2.DescriptionHash != dh {
				t.Errorf("hold invoice description hash lost: %+v", d2)
			}
			// Settling before any payment arrived is refused, not a no-op.
			if err := hi.SettleInvoice(ctxT(t), pre); !errors.Is(err, backend.ErrInvalid) {
				t.Errorf("settle without a payment: %v, want ErrInvalid", err)
			}
		})
	}
}

// Benchmarks of one adapter call through the fake, per transport: the
// adapter's own cost (encode, connect, decode, BOLT11 check) plus the fake's.
func BenchmarkCreateInvoice(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr, func(b *testing.B) {
			h := newFakeHarnessTB(b, tr, false, "")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: 1000, Memo: "bench"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLookupInvoice(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr, func(b *testing.B) {
			h := newFakeHarnessTB(b, tr, false, "")
			ctx := context.Background()
			inv, err := h.b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: 1000, Memo: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.b.LookupInvoice(ctx, inv.PaymentHash); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A description to hash goes through invoice with deschashonly: the invoice
// commits to the text's SHA-256, keeps the caller's preimage, is paid and
// settles like any other, and its lookup has no memo. A hash alone is
// refused, as lightningd refuses to store an invoice without a description.
func TestHashedDescriptionInvoice(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newFakeHarness(t, tr, false)
			text := `[["text/plain","<tea> & \"cake\""]]` + strings.Repeat(" ", 700)
			dh := sha256.Sum256([]byte(text))
			pre, _ := backend.NewPreimage()
			req := backend.InvoiceRequest{Amount: 3000, HashedDescription: text, DescriptionHash: &dh, Preimage: &pre, Expiry: 5 * time.Minute}
			inv, err := h.b.CreateInvoice(ctxT(t), req)
			if err != nil {
				t.Fatal(err)
			}
			d, err := backend.DecodeInvoice(inv.PaymentRequest)
			if err != nil {
				t.Fatal(err)
			}
			if d.DescriptionHash == nil || *d.DescriptionHash != dh || d.Memo != "" || d.PaymentHash != pre.Hash() || d.Amount != 3000 || d.Expiry != 5*time.Minute {
				t.Fatalf("invoice decodes to %+v", d)
			}
			if inv.Preimage == nil || *inv.Preimage != pre || inv.Memo != "" {
				t.Errorf("invoice preimage %v, memo %q; want the caller's, none", inv.Preimage, inv.Memo)
			}
			if _, err := h.Payer().PayInvoice(ctxT(t), inv.PaymentRequest, backend.PayOptions{}); err != nil {
				t.Fatal(err)
			}
			got, err := h.b.LookupInvoice(ctxT(t), pre.Hash())
			if err != nil || got.State != backend.StateSettled || got.Preimage == nil || *got.Preimage != pre || got.Memo != "" {
				t.Fatalf("lookup after payment: %+v, %v", got, err)
			}
			_, err = h.b.CreateInvoice(ctxT(t), req)
			if !errors.Is(err, backend.ErrAlreadyExists) {
				t.Errorf("second invoice with the same preimage: %v, want ErrAlreadyExists", err)
			}

			_, err = h.b.CreateInvoice(ctxT(t), backend.InvoiceRequest{Amount: 3000, DescriptionHash: &dh})
			if !errors.Is(err, backend.ErrUnsupported) {
				t.Errorf("description hash alone: %v, want ErrUnsupported", err)
			}
			_, err = h.b.CreateInvoice(ctxT(t), backend.InvoiceRequest{Amount: 3000, Memo: "bell \a"})
			if !errors.Is(err, backend.ErrInvalid) {
				t.Errorf("memo with a control character lightningd cannot take: %v, want ErrInvalid", err)
			}
		})
	}
}
