package clientstore

import (
	"context"
	"errors"
	"os"
	"syscall"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

// PaymentFinder is a payer that can say what became of a payment it made,
// by payment hash: the payment with its preimage when it completed, an
// error matching backend.ErrPaymentFailed or backend.ErrNotFound when it
// did not (and never will), any other error when that is not known yet.
type PaymentFinder interface {
	FindPayment(ctx context.Context, hash backend.PaymentHash) (*backend.Payment, error)
}

// Recover resolves the pending payments no live process is paying: those
// of a process on this host that is gone, past their deadline, or given
// up with their fate unknown. With a finder it asks what became of each:
// paid ones get their token stored (outcome "recovered"), failed ones
// release their reservation; the rest stay pending, counting against the
// budgets. It returns how many it resolved.
func (s *Store) Recover(ctx context.Context, finder PaymentFinder) (int, error) {
	if finder == nil {
		return 0, nil
	}
	pend, err := s.Pending()
	if err != nil {
		return 0, err
	}
	hostname, _ := os.Hostname()
	now := s.now()
	n := 0
	var errs []error
	for _, rec := range pend {
		if !rec.Unknown && now.Before(rec.Deadline) && (rec.Hostname != hostname || processAlive(rec.PID)) {
			continue // still being paid
		}
		p, ferr := finder.FindPayment(ctx, rec.PaymentHash)
		switch {
		case ferr == nil && p != nil && p.Preimage.Matches(rec.PaymentHash):
			var tok *l402.Token
			var err error
			if rec.Scheme != l402.SchemePayment { // a charge bought no token
				tok, err = rec.TokenFor(p.Preimage)
			}
			if err == nil {
				err = s.complete(rec.PaymentHash, tok, &p.Preimage, p.Amount, p.Fee, OutcomeRecovered)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		case ferr != nil && (errors.Is(ferr, backend.ErrPaymentFailed) || errors.Is(ferr, backend.ErrNotFound)):
			if err := s.fail(rec.PaymentHash, ferr); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}

// processAlive reports whether a process with this id runs on this host.
// A reused id reads as alive: the payment then waits for its deadline.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || !errors.Is(err, os.ErrProcessDone) && !errors.Is(err, syscall.ESRCH)
}
