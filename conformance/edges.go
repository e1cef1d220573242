package conformance

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// The cases in this file hold the edges every Backend shares, whatever its
// driver: health, the shape of invoices handed to a payer, how fast a
// refusal comes, fee limits, the one-sentinel rule and Close.

func testPing(t *testing.T, s *suite) {
	if !s.b.Supports(backend.AbilityPing) {
		t.Skipf("the backend has no ping ability (abilities: %v)", backend.Abilities(s.b))
	}
	if err := s.b.Ping(callCtx(t)); err != nil {
		t.Fatalf("Ping of a node that answers: %v", err)
	}
}

// testPayTrimmed pays an invoice as wallets and QR codes carry it: with a
// "lightning:" prefix in any case and surrounding whitespace.
func testPayTrimmed(t *testing.T, s *suite) {
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	p := s.pay(t, " \tLIGHTNING:"+inv.PaymentRequest+"\r\n", backend.PayOptions{})
	if !p.Preimage.Matches(inv.PaymentHash) {
		t.Fatalf("payer got preimage %s whose sha256 is not %s", p.Preimage, inv.PaymentHash)
	}
	s.settled(t, inv.PaymentHash)
}

// refusalTimeout is the payment timeout of the refusal cases: a refusal
// must come well before it. It is long against any node's answer, and no
// case asserts a timing finer than "before the timeout".
const refusalTimeout = 20 * time.Second

// payRefused pays bolt11 and wants ErrPaymentFailed before refusalTimeout:
// a payment the node refuses without recording it fails at once.
func (s *suite) payRefused(t *testing.T, bolt11, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*refusalTimeout)
	defer cancel()
	start := time.Now()
	_, err := s.p.PayInvoice(ctx, bolt11, backend.PayOptions{Timeout: refusalTimeout})
	took := time.Since(start)
	t.Logf("%s: refused after %s", what, took.Round(time.Millisecond))
	wantErr(t, err, backend.ErrPaymentFailed, what)
	if took >= refusalTimeout {
		t.Errorf("%s: the refusal took %s, the whole PayOptions.Timeout (%s)", what, took.Round(time.Millisecond), refusalTimeout)
	}
}

func testPayRefusedFast(t *testing.T, s *suite) {
	t.Run("AlreadyPaid", func(t *testing.T) {
		inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
		s.pay(t, inv.PaymentRequest, backend.PayOptions{})
		s.settled(t, inv.PaymentHash)
		s.payRefused(t, inv.PaymentRequest, "paying a paid invoice again")
	})
	t.Run("Expired", func(t *testing.T) {
		if s.sup.FixedExpiry {
			t.Skip("Support.FixedExpiry is true: a short-lived invoice cannot be asked for")
		}
		inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t), Expiry: time.Second})
		time.Sleep(time.Until(inv.ExpiresAt) + 500*time.Millisecond)
		s.payRefused(t, inv.PaymentRequest, "paying an expired invoice")
	})
	t.Run("Canceled", func(t *testing.T) {
		hi := s.holder(t)
		pre, err := backend.NewPreimage()
		if err != nil {
			t.Fatal(err)
		}
		inv, err := hi.CreateHoldInvoice(callCtx(t), pre.Hash(), backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t), Expiry: caseExpiry})
		if err != nil {
			t.Fatalf("CreateHoldInvoice: %v", err)
		}
		if err := hi.CancelInvoice(callCtx(t), inv.PaymentHash); err != nil {
			t.Fatalf("CancelInvoice: %v", err)
		}
		s.until(t, inv.PaymentHash, backend.StateCanceled)
		s.payRefused(t, inv.PaymentRequest, "paying a canceled invoice")
	})
}

// supporter is what the cases ask of a payer that is a *backend.Backend.
type supporter interface {
	Supports(backend.Ability) bool
}

// testFeeLimit pays with a fee limit: a payer that can limit fees pays
// within it; one that cannot refuses the payment before it starts, and the
// invoice stays unpaid. The backend under test, when it can pay but not
// limit fees, must refuse too.
func testFeeLimit(t *testing.T, s *suite) {
	const maxFee = backend.MilliSat(1000)
	if s.b.Supports(backend.AbilityPay) && !s.b.Supports(backend.AbilityFeeLimit) {
		other := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
		_, err := s.b.PayInvoice(callCtx(t), other.PaymentRequest, backend.PayOptions{MaxFee: maxFee})
		wantErr(t, err, backend.ErrUnsupported, "PayInvoice with a fee limit on a backend that cannot limit fees")
	}
	sp, ok := s.p.(supporter)
	if !ok {
		t.Skipf("the harness's payer %T does not say whether it limits fees (not a *backend.Backend)", s.p)
	}
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	p, err := s.p.PayInvoice(callCtx(t), inv.PaymentRequest, backend.PayOptions{MaxFee: maxFee})
	if !sp.Supports(backend.AbilityFeeLimit) {
		wantErr(t, err, backend.ErrUnsupported, "a fee limit on a payer that cannot limit fees")
		if got := s.lookup(t, inv.PaymentHash); got.State != backend.StateOpen {
			t.Errorf("refused payment left the invoice %s", got.State)
		}
		return
	}
	if err != nil {
		t.Fatalf("PayInvoice with MaxFee %s: %v", maxFee, err)
	}
	if p.Fee > maxFee {
		t.Errorf("paid a fee of %s over the limit of %s", p.Fee, maxFee)
	}
	s.settled(t, inv.PaymentHash)
}

// testOneSentinel provokes the errors of every method and checks that each
// matches exactly one sentinel, the one the contract names.
func testOneSentinel(t *testing.T, s *suite) {
	h := randomHash(t)
	pre, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	dh := [32]byte{7}
	check := func(what string, err, want error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error, want %q", what, want)
			return
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %q", what, err, want)
		}
		oneSentinel(t, err, what)
	}
	_, err = s.b.LookupInvoice(callCtx(t), h)
	check("LookupInvoice of an unknown hash", err, backend.ErrNotFound)
	_, err = s.b.WaitInvoice(callCtx(t), h)
	check("WaitInvoice of an unknown hash", err, backend.ErrNotFound)
	_, err = s.b.CreateInvoice(callCtx(t), backend.InvoiceRequest{Amount: -1})
	check("CreateInvoice with a negative amount", err, backend.ErrInvalid)
	_, err = s.b.CreateInvoice(callCtx(t), backend.InvoiceRequest{Amount: amount, Memo: "x", DescriptionHash: &dh})
	check("CreateInvoice with memo and description hash", err, backend.ErrInvalid)
	_, err = s.b.CreateInvoice(callCtx(t), backend.InvoiceRequest{Amount: amount, Expiry: time.Millisecond})
	check("CreateInvoice with an expiry under a second", err, backend.ErrInvalid)

	wantOr := func(a backend.Ability, want error) error {
		if s.b.Supports(a) {
			return want
		}
		return backend.ErrUnsupported
	}
	_, err = s.b.PayInvoice(callCtx(t), "lnbcrt1notaninvoice", backend.PayOptions{})
	check("PayInvoice of garbage", err, wantOr(backend.AbilityPay, backend.ErrInvalid))
	_, err = s.b.CreateHoldInvoice(callCtx(t), backend.PaymentHash{}, backend.InvoiceRequest{Amount: amount})
	check("CreateHoldInvoice of the zero hash", err, wantOr(backend.AbilityHold, backend.ErrInvalid))
	check("SettleInvoice of an unknown preimage", s.b.SettleInvoice(callCtx(t), pre), wantOr(backend.AbilityHold, backend.ErrNotFound))
	check("CancelInvoice of an unknown hash", s.b.CancelInvoice(callCtx(t), h), wantOr(backend.AbilityHold, backend.ErrNotFound))
	if !s.b.Supports(backend.AbilityInfo) {
		_, err = s.b.Info(callCtx(t))
		check("Info without the ability", err, backend.ErrUnsupported)
	}

	// A context that ended before the call: nothing was sent.
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.b.CreateInvoice(ended, backend.InvoiceRequest{Amount: amount})
	check("CreateInvoice with an ended context", err, backend.ErrUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("CreateInvoice with an ended context: %v does not say the context was canceled", err)
	}
	_, err = s.p.PayInvoice(ended, s.create(t, backend.InvoiceRequest{Amount: amount}).PaymentRequest, backend.PayOptions{})
	check("PayInvoice with an ended context (did not start)", err, backend.ErrUnavailable)
}

// testClose opens a second Backend, uses it (a wait in progress included),
// closes it and checks that the wait ended, that every later call fails
// with ErrClosed alone, and that no goroutine of the backend is left.
func testClose(t *testing.T, s *suite) {
	r, ok := s.h.(Reopener)
	if !ok {
		t.Skipf("harness %T is not a conformance.Reopener: cannot open a Backend to close", s.h)
	}
	before := goroutines()
	b, err := r.OpenBackend(callCtx(t))
	if err != nil {
		t.Fatalf("OpenBackend: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			b.Close()
		}
	})
	inv, err := b.CreateInvoice(callCtx(t), backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t), Expiry: caseExpiry})
	if err != nil {
		t.Fatalf("CreateInvoice: %v", err)
	}
	if _, err := b.LookupInvoice(callCtx(t), inv.PaymentHash); err != nil {
		t.Fatalf("LookupInvoice: %v", err)
	}
	if b.Supports(backend.AbilityPing) {
		if err := b.Ping(callCtx(t)); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}
	waited := make(chan error, 1)
	waitStarted := time.Now()
	go func() {
		_, err := b.WaitInvoice(callCtx(t), inv.PaymentHash)
		waited <- err
	}()
	time.Sleep(200 * time.Millisecond) // let the wait reach the node
	closed = true
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	err = <-waited
	wantErr(t, err, backend.ErrClosed, "a wait in progress when Close was called")
	if took := time.Since(waitStarted); took >= callTimeout {
		t.Errorf("the wait ended only at its own deadline (%s), not at Close", took.Round(time.Millisecond))
	}

	after := map[string]func() error{
		"CreateInvoice": func() error {
			_, err := b.CreateInvoice(callCtx(t), backend.InvoiceRequest{Amount: amount})
			return err
		},
		"LookupInvoice": func() error { _, err := b.LookupInvoice(callCtx(t), inv.PaymentHash); return err },
		"WaitInvoice":   func() error { _, err := b.WaitInvoice(callCtx(t), inv.PaymentHash); return err },
		"PayInvoice": func() error {
			_, err := b.PayInvoice(callCtx(t), inv.PaymentRequest, backend.PayOptions{})
			return err
		},
		"CreateHoldInvoice": func() error {
			_, err := b.CreateHoldInvoice(callCtx(t), randomHash(t), backend.InvoiceRequest{Amount: amount})
			return err
		},
		"SettleInvoice": func() error { p, _ := backend.NewPreimage(); return b.SettleInvoice(callCtx(t), p) },
		"CancelInvoice": func() error { return b.CancelInvoice(callCtx(t), inv.PaymentHash) },
		"Info":          func() error { _, err := b.Info(callCtx(t)); return err },
		"Ping":          func() error { return b.Ping(callCtx(t)) },
	}
	for name, call := range after {
		wantErr(t, call(), backend.ErrClosed, name+" after Close")
	}
	if err := b.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}

	counted := time.Now()
	left := leaked(before, s.h, leakWait)
	if took := time.Since(counted); took > time.Second {
		t.Logf("the goroutines started with the Backend took %s to end after Close", took.Round(time.Millisecond))
	}
	if len(left) > 0 {
		t.Errorf("%d goroutines started with the Backend still run after Close:\n%s", len(left), strings.Join(left, "\n\n"))
	}
}

// goroutines returns the stacks of all goroutines by their id.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		id, _, _ := strings.Cut(strings.TrimPrefix(g, "goroutine "), " ")
		out[id] = g
	}
	return out
}

// harnessSide reports whether a goroutine belongs to the node side of a
// harness rather than to the Backend under test: an HTTP server's
// connection, or code of a fake node.
func harnessSide(stack string) bool {
	return strings.Contains(stack, "created by net/http.(*Server).Serve") ||
		strings.Contains(stack, "fake.") || strings.Contains(stack, "fake/")
}

// leakWait is how long leaked waits for goroutines to end.
const leakWait = 10 * time.Second

// quietPause is how long leaked lets a Quiescer's side settle before a count.
const quietPause = 100 * time.Millisecond

// leaked waits (up to wait) until every goroutine that is not in before and
// not on the harness's side has ended, and returns the stacks of those
// still running. When h is a Quiescer, its Quiesce runs before each count.
func leaked(before map[string]string, h any, wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	q, _ := h.(Quiescer)
	for {
		if q != nil {
			// Connections just closed take a moment to end their
			// goroutines; the harness's side may open another meanwhile
			// (a wallet service polls its node), so a count only needs
			// one quiet moment, which a Backend's own leak never has.
			q.Quiesce()
			time.Sleep(quietPause)
		}
		var out []string
		for id, g := range goroutines() {
			if _, old := before[id]; !old && !harnessSide(g) {
				out = append(out, g)
			}
		}
		if len(out) == 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}
