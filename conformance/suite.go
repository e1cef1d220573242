package conformance

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
)

type suite struct {
	h   Harness
	b   *backend.Backend
	p   backend.Payer
	sup Support
}

func (s *suite) create(t *testing.T, req backend.InvoiceRequest) *backend.Invoice {
	t.Helper()
	if req.Expiry == 0 {
		req.Expiry = caseExpiry
	}
	inv, err := s.b.CreateInvoice(callCtx(t), req)
	if err != nil {
		t.Fatalf("CreateInvoice(%+v): %v", req, err)
	}
	return inv
}

func (s *suite) lookup(t *testing.T, hash backend.PaymentHash) *backend.Invoice {
	t.Helper()
	inv, err := s.b.LookupInvoice(callCtx(t), hash)
	if err != nil {
		t.Fatalf("LookupInvoice(%s): %v", hash, err)
	}
	return inv
}

func (s *suite) pay(t *testing.T, bolt11 string, opts backend.PayOptions) *backend.Payment {
	t.Helper()
	p, err := s.p.PayInvoice(callCtx(t), bolt11, opts)
	if err != nil {
		t.Fatalf("PayInvoice: %v", err)
	}
	return p
}

// settled waits until the backend reports the invoice settled: a payer's
// success can reach the caller a moment before the payee's node records it.
func (s *suite) settled(t *testing.T, hash backend.PaymentHash) *backend.Invoice {
	t.Helper()
	return s.until(t, hash, backend.StateSettled)
}

// until polls LookupInvoice until the invoice reaches want or callTimeout
// passes; it is used only where the contract allows the state to trail an
// event on another node.
func (s *suite) until(t *testing.T, hash backend.PaymentHash, want backend.State) *backend.Invoice {
	t.Helper()
	deadline := time.Now().Add(callTimeout)
	for {
		inv := s.lookup(t, hash)
		if inv.State == want {
			return inv
		}
		if time.Now().After(deadline) {
			t.Fatalf("invoice %s is %s after %s, want %s", hash, inv.State, callTimeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func uniqueMemo(t *testing.T) string {
	p, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("l402kit conformance %s %x", t.Name(), p[:4])
}

func decode(t *testing.T, inv *backend.Invoice) *backend.DecodedInvoice {
	t.Helper()
	d, err := backend.DecodeInvoice(inv.PaymentRequest)
	if err != nil {
		t.Fatalf("the backend's BOLT11 does not decode: %v\n%s", err, inv.PaymentRequest)
	}
	return d
}

func near(a, b time.Time) bool {
	d := a.Sub(b)
	// Nodes stamp invoices in whole seconds and may read the clock once for
	// the string and once for their record.
	return d > -2*time.Second && d < 2*time.Second
}

// wantErr checks that err matches sentinel and no other sentinel of
// package backend.
func wantErr(t *testing.T, err, sentinel error, what string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("%s: got error %v, want one wrapping %q", what, err, sentinel)
	}
	oneSentinel(t, err, what)
}

// oneSentinel checks that a non-nil err matches exactly one sentinel of
// package backend.
func oneSentinel(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		return
	}
	var m []string
	for _, s := range backend.Sentinels() {
		if errors.Is(err, s) {
			m = append(m, fmt.Sprintf("%q", s))
		}
	}
	if len(m) != 1 {
		t.Errorf("%s: error %q matches %d sentinels %v, want exactly one", what, err, len(m), m)
	}
}

func randomHash(t *testing.T) backend.PaymentHash {
	p, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	return p.Hash()
}
