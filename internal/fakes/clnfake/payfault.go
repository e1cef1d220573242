package clnfake

import (
	"context"
	"errors"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// PayFault makes the next xpay or pay answer an error instead of its
// outcome, with the payment left in Status as listpays then reports it, for
// tests of the cases a real node reaches only under load or failure: xpay
// giving up with parts still in flight (209 "Timed out after ..." while
// listpays says pending), a catch-all error (-1) after the payment
// completed, or a connection lost mid-call (Drop).
type PayFault struct {
	// Code and Message are the error answered; ignored with Drop.
	Code    int
	Message string
	// Status is what the payment becomes: "complete" (the fake pays it
	// first), "pending" or "failed" (nothing is paid), or "" (nothing is
	// recorded: the node refused before sending).
	Status string
	// Drop closes the connection instead of answering, as a lightningd
	// that dies mid-call would.
	Drop bool
}

// FailNextPay arms fault for the next xpay or pay call.
func (f *Fake) FailNextPay(fault PayFault) {
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	f.state.fault = &fault
}

// errDrop tells the transport to close the connection without replying.
var errDrop = errors.New("clnfake: drop the connection")

// takeFault returns and disarms the armed fault, if any.
func (f *Fake) takeFault() *PayFault {
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	pf := f.state.fault
	f.state.fault = nil
	return pf
}

// applyFault records (and, for "complete", makes) the payment as the fault
// says and returns the error to answer.
func (f *Fake) applyFault(ctx context.Context, pf *PayFault, bolt11 string, d *backend.DecodedInvoice, amount int64) *rpcError {
	rec := &payRecord{hash: d.PaymentHash, bolt11: bolt11, destination: d.Payee, status: pf.Status, amount: amount, sent: amount, createdAt: time.Now()}
	if rec.amount == 0 {
		rec.amount = int64(d.Amount)
		rec.sent = rec.amount
	}
	if pf.Status == "complete" {
		pay, err := f.payThrough(ctx, bolt11, backend.PayOptions{Amount: backend.MilliSat(amount), Timeout: time.Minute})
		if err != nil {
			return nodeError(err)
		}
		rec.preimage = pay.Preimage.String()
		rec.completedAt = time.Now()
	}
	if pf.Status != "" {
		f.record(rec)
	}
	if pf.Drop {
		return &rpcError{Code: codeLightningd, Message: errDrop.Error(), Data: errDrop}
	}
	return errorf(pf.Code, "%s", pf.Message)
}
