package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
)

func testInfo(t *testing.T, s *suite) {
	if !s.b.Supports(backend.AbilityInfo) {
		t.Skipf("the backend has no info ability (abilities: %v)", backend.Abilities(s.b))
	}
	info, err := s.b.Info(callCtx(t))
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	d := decode(t, inv)
	if info.Network != d.Network {
		t.Errorf("Info says network %q, its invoices are for %q", info.Network, d.Network)
	}
	if info.NodeID != "" && d.Payee != "" && info.NodeID != d.Payee {
		t.Errorf("Info says node %s, its invoices name payee %s", info.NodeID, d.Payee)
	}
	if info.NodeID == "" && info.Alias == "" {
		t.Errorf("Info names neither node id nor alias")
	}
}

func testUnavailable(t *testing.T, s *suite) {
	r, ok := s.h.(Restarter)
	if !ok {
		t.Skipf("harness %T is not a conformance.Restarter: cannot stop the node", s.h)
	}
	before := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	if err := r.StopNode(callCtx(t)); err != nil {
		t.Fatalf("StopNode: %v", err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			if err := r.StartNode(context.Background()); err != nil {
				t.Errorf("StartNode in cleanup: %v", err)
			}
		}
	})
	start := time.Now()
	_, err := s.b.LookupInvoice(callCtx(t), before.PaymentHash)
	t.Logf("LookupInvoice on the stopped node failed after %s", time.Since(start).Round(time.Millisecond))
	wantErr(t, err, backend.ErrUnavailable, "LookupInvoice on a stopped node")
	_, err = s.b.CreateInvoice(callCtx(t), backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t), Expiry: caseExpiry})
	wantErr(t, err, backend.ErrUnavailable, "CreateInvoice on a stopped node")
	if s.b.Supports(backend.AbilityPing) {
		wantErr(t, s.b.Ping(callCtx(t)), backend.ErrUnavailable, "Ping of a stopped node")
	}

	start = time.Now()
	if err := r.StartNode(restartCtx(t)); err != nil {
		t.Fatalf("StartNode: %v", err)
	}
	restarted = true
	t.Logf("node answered again %s after StartNode was called", time.Since(start).Round(time.Millisecond))
	// The same backend value, not reopened, must work again at once.
	if s.b.Supports(backend.AbilityPing) {
		if err := s.b.Ping(callCtx(t)); err != nil {
			t.Errorf("Ping after the restart: %v", err)
		}
	}
	got := s.lookup(t, before.PaymentHash)
	if got.PaymentRequest != before.PaymentRequest {
		t.Errorf("invoice made before the restart changed: %s", got.PaymentRequest)
	}
	after := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	s.pay(t, after.PaymentRequest, backend.PayOptions{})
	s.settled(t, after.PaymentHash)
}

// testRestartHeld restarts the node while a payment to a hold invoice is in
// flight: the payment must survive (still Held after the restart) and
// settling it then must complete the payer's payment, so a proxy that
// restarts its node mid-payment loses nothing.
func testRestartHeld(t *testing.T, s *suite) {
	r, ok := s.h.(Restarter)
	if !ok {
		t.Skipf("harness %T is not a conformance.Restarter: cannot stop the node", s.h)
	}
	hi := s.holder(t)
	inv, pre, res := s.heldPayment(t, hi)
	if err := r.StopNode(callCtx(t)); err != nil {
		t.Fatalf("StopNode: %v", err)
	}
	_, err := s.b.LookupInvoice(callCtx(t), inv.PaymentHash)
	wantErr(t, err, backend.ErrUnavailable, "LookupInvoice on a stopped node")
	if err := r.StartNode(restartCtx(t)); err != nil {
		t.Fatalf("StartNode: %v", err)
	}
	if got := s.lookup(t, inv.PaymentHash); got.State != backend.StateHeld {
		t.Fatalf("held payment after the node restarted: invoice is %s, want held", got.State)
	}
	select {
	case r := <-res:
		t.Fatalf("payer returned across the restart, before settlement: %v %v", r.p, r.err)
	default:
	}
	if err := hi.SettleInvoice(callCtx(t), pre); err != nil {
		t.Fatalf("SettleInvoice after restart: %v", err)
	}
	pr := <-res
	if pr.err != nil {
		t.Fatalf("payer of a hold invoice settled after a restart: %v", pr.err)
	}
	if pr.p.Preimage != pre {
		t.Errorf("payer got preimage %s, want %s", pr.p.Preimage, pre)
	}
	s.settled(t, inv.PaymentHash)
}
