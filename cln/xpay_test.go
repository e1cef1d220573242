package cln_test

import (
	"errors"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/fakes/clnfake"
)

// TestPayMethodFollowsTheNode pays through the adapter on fakes of three
// releases and checks which method the node was asked: pay before v24.11,
// xpay from v24.11 (pay still there, handled by xpay), xpay alone on v27.03.
func TestPayMethodFollowsTheNode(t *testing.T) {
	for _, c := range []struct{ version, method, other string }{
		{"v24.08", "pay", "xpay"},
		{"v24.11", "xpay", "pay"},
		{"v26.06.6", "xpay", "pay"},
		{"v27.03", "xpay", "pay"},
	} {
		t.Run(c.version, func(t *testing.T) {
			h := newFakeHarnessTB(t, "socket", false, c.version)
			inv, err := h.b.CreateInvoice(ctxT(t), backend.InvoiceRequest{Amount: 4000, Memo: "method"})
			if err != nil {
				t.Fatal(err)
			}
			payerFake := h.payerF
			p, err := h.payer.PayInvoice(ctxT(t), inv.PaymentRequest, backend.PayOptions{MaxFee: 100})
			if err != nil {
				t.Fatalf("pay on %s: %v", c.version, err)
			}
			if !p.Preimage.Matches(inv.PaymentHash) || p.Amount != 4000 || p.PaymentHash != inv.PaymentHash {
				t.Errorf("payment %+v", p)
			}
			if payerFake.Calls(c.method) != 1 || payerFake.Calls(c.other) != 0 {
				t.Errorf("%s: %s called %d times, %s %d times; want %s once", c.version, c.method, payerFake.Calls(c.method), c.other, payerFake.Calls(c.other), c.method)
			}
			_, err = h.payer.PayInvoice(ctxT(t), inv.PaymentRequest, backend.PayOptions{})
			if !errors.Is(err, backend.ErrPaymentFailed) {
				t.Errorf("second payment: %v, want ErrPaymentFailed", err)
			}
		})
	}
}

// TestUncertainOutcomesAreLookedUp makes xpay (and pay on an old node)
// answer an error, or drop the connection, with the payment left complete,
// pending, failed or unrecorded, and checks that the adapter reports what
// listpays says instead of guessing.
func TestUncertainOutcomesAreLookedUp(t *testing.T) {
	for _, c := range []struct {
		name    string
		version string
		fault   clnfake.PayFault
		want    error // nil: the payment succeeded
	}{
		{"xpay timed out with a part in flight", "", clnfake.PayFault{Code: 209, Message: "Timed out after after 3 attempts.", Status: "pending"}, backend.ErrPaymentUnknown},
		{"xpay catch-all after the payment completed", "", clnfake.PayFault{Code: -1, Message: "internal error", Status: "complete"}, nil},
		{"xpay gave up, nothing in flight", "", clnfake.PayFault{Code: 209, Message: "Failed after 2 attempts.", Status: "failed"}, backend.ErrPaymentFailed},
		{"xpay other error, nothing recorded", "", clnfake.PayFault{Code: 209, Message: "Timed out waiting for blockheight 900.", Status: ""}, backend.ErrPaymentFailed},
		{"xpay plugin error with a group in flight", "", clnfake.PayFault{Code: -3, Message: "Unexpected injectpaymentonion error 200", Status: "pending"}, backend.ErrPaymentUnknown},
		{"xpay connection lost, nothing recorded", "", clnfake.PayFault{Drop: true}, backend.ErrPaymentUnknown},
		{"xpay connection lost after the payment completed", "", clnfake.PayFault{Drop: true, Status: "complete"}, nil},
		{"xpay connection lost with a part in flight", "", clnfake.PayFault{Drop: true, Status: "pending"}, backend.ErrPaymentUnknown},
		{"xpay no route", "", clnfake.PayFault{Code: 205, Message: "Failed: could not route", Status: "failed"}, backend.ErrPaymentFailed},
		{"pay in progress", "v24.08", clnfake.PayFault{Code: 200, Message: "Already have parallel payment in progress", Status: "pending"}, backend.ErrPaymentUnknown},
		{"pay connection lost after the payment completed", "v24.08", clnfake.PayFault{Drop: true, Status: "complete"}, nil},
	} {
		for _, tr := range transports {
			t.Run(c.name+"/"+tr, func(t *testing.T) {
				h := newFakeHarnessTB(t, tr, false, c.version)
				inv, err := h.b.CreateInvoice(ctxT(t), backend.InvoiceRequest{Amount: 3000, Memo: "uncertain"})
				if err != nil {
					t.Fatal(err)
				}
				h.payerF.FailNextPay(c.fault)
				p, err := h.payer.PayInvoice(ctxT(t), inv.PaymentRequest, backend.PayOptions{})
				if c.want == nil {
					if err != nil || !p.Preimage.Matches(inv.PaymentHash) {
						t.Fatalf("got %+v, %v; want the completed payment's preimage", p, err)
					}
					return
				}
				if !errors.Is(err, c.want) {
					t.Fatalf("got %v, want %v", err, c.want)
				}
				if errors.Is(c.want, backend.ErrPaymentUnknown) && c.fault.Status == "pending" {
					// The next attempt must not send again while
					// the first may still arrive.
					_, err := h.payer.PayInvoice(ctxT(t), inv.PaymentRequest, backend.PayOptions{})
					if !errors.Is(err, backend.ErrPaymentUnknown) {
						t.Errorf("paying again while a part is in flight: %v, want ErrPaymentUnknown", err)
					}
					if got, _ := h.b.LookupInvoice(ctxT(t), inv.PaymentHash); got == nil || got.State != backend.StateOpen {
						t.Errorf("invoice after the refused second attempt: %+v", got)
					}
				}
			})
		}
	}
}
