package conformance

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// Amounts stay whole satoshis and small, so sat-denominated nodes (phoenixd)
// take them and a regtest channel carries the whole suite many times over.
const (
	amount     = backend.MilliSat(2_100_000) // 2100 sat
	caseExpiry = 10 * time.Minute
	// callTimeout bounds every single call the suite makes; a real node on
	// regtest answers well within it, and a hung adapter fails instead of
	// hanging the suite.
	callTimeout = 30 * time.Second
)

// NewHarness returns a Harness over a backend and payer that already exist,
// for users who want to check their own backend in a few lines.
func NewHarness(b *backend.Backend, p backend.Payer, s Support) Harness {
	return fixed{b, p, s}
}

type fixed struct {
	b *backend.Backend
	p backend.Payer
	s Support
}

func (f fixed) Backend() *backend.Backend { return f.b }
func (f fixed) Payer() backend.Payer      { return f.p }
func (f fixed) Support() Support          { return f.s }

// Run runs the backend contract against h as subtests of t. Cases whose
// ability the backend lacks are skipped with the ability's name. The
// node-restart case runs last, since it disturbs the node.
func Run(t *testing.T, h Harness) {
	t.Helper()
	s := &suite{h: h, b: h.Backend(), p: h.Payer(), sup: h.Support()}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, s) })
	}
}

type suite struct {
	h   Harness
	b   *backend.Backend
	p   backend.Payer
	sup Support
}

type testCase struct {
	name string
	fn   func(t *testing.T, s *suite)
}

var cases = []testCase{
	{"Create/FieldsRoundTrip", testFieldsRoundTrip},
	{"Create/DefaultExpiry", testDefaultExpiry},
	{"Create/DescriptionHash", testDescriptionHash},
	{"Create/HashedDescription", testHashedDescription},
	{"Create/InvalidAmount", testInvalidAmount},
	{"Create/UniqueHashes", testUniqueHashes},
	{"Lookup/MatchesCreate", testLookupMatches},
	{"Lookup/NotFound", testLookupNotFound},
	{"Pay/SettlesWithPreimage", testPaySettles},
	{"Pay/SecondPaymentFails", testSecondPaymentFails},
	{"Wait/ReturnsOnSettlement", testWaitSettlement},
	{"Wait/AlreadySettled", testWaitAlreadySettled},
	{"Wait/HonoursContextCancel", testWaitContextCancel},
	{"Wait/NotFound", testWaitNotFound},
	{"Hold/PaymentLeavesHeld", testHoldHeld},
	{"Hold/SettleCompletesPayment", testHoldSettle},
	{"Hold/CancelReturnsPayment", testHoldCancel},
	{"Hold/UnknownHash", testHoldUnknown},
	{"Hold/DuplicateHashRefused", testHoldDuplicate},
	{"Expiry/ExpiredInvoiceNotPayable", testExpiry},
	{"ZeroAmount/PayerChoosesAmount", testZeroAmount},
	{"CallerPreimage/Honoured", testCallerPreimage},
	{"CallerPreimage/DuplicateHashRefused", testDuplicatePreimage},
	{"Concurrency/FiftyInvoices", testFifty},
	{"Info/DescribesNode", testInfo},
	{"Ping/Answers", testPing},
	{"Pay/TrimmedInvoice", testPayTrimmed},
	{"Pay/RefusedFailsFast", testPayRefusedFast},
	{"Pay/FeeLimitHonouredOrRefused", testFeeLimit},
	{"Errors/OneSentinelEach", testOneSentinel},
	{"Close/LaterCallsFailNothingLeftRunning", testClose},
	{"Unavailable/StopAndRestart", testUnavailable},
	{"Unavailable/RestartWithPaymentHeld", testRestartHeld},
}

// restartCtx bounds a harness's StartNode: a real node on a busy machine can
// take well over callTimeout to start and sync, and how long it takes is no
// part of the contract (the case logs it).
func restartCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
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

func testFieldsRoundTrip(t *testing.T, s *suite) {
	memo := uniqueMemo(t)
	before := time.Now().Truncate(time.Second)
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: memo, Expiry: caseExpiry})
	d := decode(t, inv)
	if d.PaymentHash != inv.PaymentHash {
		t.Errorf("payment hash: BOLT11 says %s, Invoice says %s", d.PaymentHash, inv.PaymentHash)
	}
	if d.Amount != amount || inv.Amount != amount {
		t.Errorf("amount: BOLT11 %s, Invoice %s, want %s", d.Amount, inv.Amount, amount)
	}
	if s.sup.FixedMemo {
		t.Log("memo not compared: Support.FixedMemo, the node writes its own description")
	} else if d.Memo != memo || inv.Memo != memo {
		t.Errorf("memo: BOLT11 %q, Invoice %q, want %q", d.Memo, inv.Memo, memo)
	}
	if s.sup.FixedExpiry {
		t.Log("expiry not compared with the asked one: Support.FixedExpiry, the node chooses it")
	} else if d.Expiry != caseExpiry {
		t.Errorf("BOLT11 expiry %s, want %s", d.Expiry, caseExpiry)
	}
	if !near(inv.ExpiresAt, d.ExpiresAt()) {
		t.Errorf("ExpiresAt %s, BOLT11 says %s", inv.ExpiresAt, d.ExpiresAt())
	}
	if d.CreatedAt.Before(before.Add(-2*time.Second)) || d.CreatedAt.After(time.Now().Add(2*time.Second)) {
		t.Errorf("BOLT11 timestamp %s is not around now", d.CreatedAt)
	}
	if inv.State != backend.StateOpen {
		t.Errorf("new invoice is %s, want open", inv.State)
	}
	if inv.AmountReceived != 0 {
		t.Errorf("new invoice received %s", inv.AmountReceived)
	}
	if inv.Preimage != nil && !inv.Preimage.Matches(inv.PaymentHash) {
		t.Errorf("preimage %s does not hash to %s", inv.Preimage, inv.PaymentHash)
	}
	if !inv.Payable(time.Now()) {
		t.Errorf("new invoice is not payable")
	}
}

func testDefaultExpiry(t *testing.T, s *suite) {
	if s.sup.FixedExpiry {
		t.Skip("Support.FixedExpiry is true: the node chooses every invoice's expiry")
	}
	inv, err := s.b.CreateInvoice(callCtx(t), backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	if err != nil {
		t.Fatalf("CreateInvoice with zero Expiry: %v", err)
	}
	if d := decode(t, inv); d.Expiry != backend.DefaultExpiry {
		t.Errorf("zero Expiry gave a BOLT11 expiry of %s, want backend.DefaultExpiry (%s)", d.Expiry, backend.DefaultExpiry)
	}
}

func testDescriptionHash(t *testing.T, s *suite) {
	h := [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	req := backend.InvoiceRequest{Amount: amount, DescriptionHash: &h}
	if !s.sup.DescriptionHash {
		_, err := s.b.CreateInvoice(callCtx(t), req)
		wantErr(t, err, backend.ErrUnsupported, "CreateInvoice with a description hash the node cannot take alone (Support.DescriptionHash false)")
		return
	}
	inv := s.create(t, req)
	d := decode(t, inv)
	if d.DescriptionHash == nil || *d.DescriptionHash != h {
		t.Fatalf("BOLT11 description hash %x, want %x", d.DescriptionHash, h)
	}
	if d.Memo != "" {
		t.Errorf("BOLT11 has memo %q beside the description hash", d.Memo)
	}
}

// hashedDescription is longer than a memo may be and holds what JSON
// encoders like to escape, as LNURL-pay metadata does.
var hashedDescription = `[["text/plain","Pay <Alice> & \"Bob\"\nナンセンス 1杯"],["text/long-desc","` +
	strings.Repeat("a long description; ", 40) + `"]]`

func testHashedDescription(t *testing.T, s *suite) {
	if !s.sup.HashedDescription {
		t.Skip("Support.HashedDescription is false: this backend cannot commit to a description's hash")
	}
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, HashedDescription: hashedDescription})
	d := decode(t, inv)
	if want := sha256.Sum256([]byte(hashedDescription)); d.DescriptionHash == nil || *d.DescriptionHash != want {
		t.Fatalf("BOLT11 description hash %x, want %x (SHA-256 of the text)", d.DescriptionHash, want)
	}
	if d.Memo != "" || inv.Memo != "" {
		t.Errorf("BOLT11 memo %q, invoice memo %q; want none beside the description hash", d.Memo, inv.Memo)
	}
}

func testInvalidAmount(t *testing.T, s *suite) {
	_, err := s.b.CreateInvoice(callCtx(t), backend.InvoiceRequest{Amount: -1000, Memo: uniqueMemo(t)})
	wantErr(t, err, backend.ErrInvalid, "CreateInvoice with a negative amount")
}

func testUniqueHashes(t *testing.T, s *suite) {
	req := backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)}
	a, b := s.create(t, req), s.create(t, req)
	if a.PaymentHash == b.PaymentHash || a.PaymentRequest == b.PaymentRequest {
		t.Fatalf("two identical requests gave the same invoice %s", a.PaymentHash)
	}
}

func testLookupMatches(t *testing.T, s *suite) {
	memo := uniqueMemo(t)
	c := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: memo})
	l := s.lookup(t, c.PaymentHash)
	if s.sup.FixedMemo {
		memo = c.Memo // the node's own; what matters is that lookup agrees with create
	}
	if l.PaymentHash != c.PaymentHash || l.PaymentRequest != c.PaymentRequest {
		t.Errorf("lookup gave %s / %s, want %s / %s", l.PaymentHash, l.PaymentRequest, c.PaymentHash, c.PaymentRequest)
	}
	if l.Amount != amount || l.Memo != memo || l.State != backend.StateOpen {
		t.Errorf("lookup gave amount %s memo %q state %s, want %s %q open", l.Amount, l.Memo, l.State, amount, memo)
	}
	if !near(l.ExpiresAt, c.ExpiresAt) {
		t.Errorf("lookup ExpiresAt %s, create said %s", l.ExpiresAt, c.ExpiresAt)
	}
}

func randomHash(t *testing.T) backend.PaymentHash {
	p, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	return p.Hash()
}

func testLookupNotFound(t *testing.T, s *suite) {
	_, err := s.b.LookupInvoice(callCtx(t), randomHash(t))
	wantErr(t, err, backend.ErrNotFound, "LookupInvoice of an unknown hash")
}

func testPaySettles(t *testing.T, s *suite) {
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	p := s.pay(t, inv.PaymentRequest, backend.PayOptions{})
	if p.PaymentHash != inv.PaymentHash {
		t.Errorf("payment hash %s, invoice %s", p.PaymentHash, inv.PaymentHash)
	}
	if !p.Preimage.Matches(inv.PaymentHash) {
		t.Fatalf("payer got preimage %s whose sha256 is not %s", p.Preimage, inv.PaymentHash)
	}
	got := s.settled(t, inv.PaymentHash)
	if got.Preimage == nil || *got.Preimage != p.Preimage {
		t.Errorf("settled invoice has preimage %v, payer got %s", got.Preimage, p.Preimage)
	}
	if got.AmountReceived < amount {
		t.Errorf("settled invoice received %s, want at least %s", got.AmountReceived, amount)
	}
	if got.SettledAt.IsZero() {
		t.Errorf("settled invoice has no SettledAt")
	}
}

func testSecondPaymentFails(t *testing.T, s *suite) {
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	s.pay(t, inv.PaymentRequest, backend.PayOptions{})
	_, err := s.p.PayInvoice(callCtx(t), inv.PaymentRequest, backend.PayOptions{})
	wantErr(t, err, backend.ErrPaymentFailed, "paying a settled invoice again")
}

// waiter is the backend: every Backend waits, by the node's own push or by
// polling, so the wait cases run everywhere.
func (s *suite) waiter(*testing.T) backend.Waiter { return s.b }

func testWaitSettlement(t *testing.T, s *suite) {
	w := s.waiter(t)
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	type result struct {
		inv *backend.Invoice
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := w.WaitInvoice(callCtx(t), inv.PaymentHash)
		done <- result{got, err}
	}()
	p := s.pay(t, inv.PaymentRequest, backend.PayOptions{})
	r := <-done
	if r.err != nil {
		t.Fatalf("WaitInvoice: %v", r.err)
	}
	if r.inv.State != backend.StateSettled {
		t.Fatalf("WaitInvoice returned a %s invoice, want settled", r.inv.State)
	}
	if r.inv.Preimage == nil || *r.inv.Preimage != p.Preimage {
		t.Errorf("WaitInvoice preimage %v, payer got %s", r.inv.Preimage, p.Preimage)
	}
}

func testWaitAlreadySettled(t *testing.T, s *suite) {
	w := s.waiter(t)
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	s.pay(t, inv.PaymentRequest, backend.PayOptions{})
	s.settled(t, inv.PaymentHash)
	got, err := w.WaitInvoice(callCtx(t), inv.PaymentHash)
	if err != nil {
		t.Fatalf("WaitInvoice on a settled invoice: %v", err)
	}
	if got.State != backend.StateSettled {
		t.Fatalf("WaitInvoice on a settled invoice gave %s", got.State)
	}
}

func testWaitContextCancel(t *testing.T, s *suite) {
	w := s.waiter(t)
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	got, err := w.WaitInvoice(ctx, inv.PaymentHash)
	if err == nil {
		t.Fatalf("WaitInvoice on an unpaid invoice returned %s without error", got.State)
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitInvoice after its context ended: %v, want a context error", err)
	}
	t.Logf("WaitInvoice returned %s after its 300ms context ended", time.Since(start).Round(time.Millisecond))
}

func testWaitNotFound(t *testing.T, s *suite) {
	w := s.waiter(t)
	_, err := w.WaitInvoice(callCtx(t), randomHash(t))
	wantErr(t, err, backend.ErrNotFound, "WaitInvoice of an unknown hash")
}

func (s *suite) holder(t *testing.T) backend.HoldInvoicer {
	if !s.b.Supports(backend.AbilityHold) {
		t.Skipf("the backend has no hold ability (abilities: %v)", backend.Abilities(s.b))
	}
	return s.b
}

type payResult struct {
	p   *backend.Payment
	err error
}

// heldPayment creates a hold invoice, pays it in the background and returns
// once the backend reports it Held, with the payer still waiting.
func (s *suite) heldPayment(t *testing.T, hi backend.HoldInvoicer) (*backend.Invoice, backend.Preimage, <-chan payResult) {
	t.Helper()
	pre, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	inv, err := hi.CreateHoldInvoice(callCtx(t), pre.Hash(), backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t), Expiry: caseExpiry})
	if err != nil {
		t.Fatalf("CreateHoldInvoice: %v", err)
	}
	if inv.PaymentHash != pre.Hash() || decode(t, inv).PaymentHash != pre.Hash() {
		t.Fatalf("hold invoice hash %s, asked for %s", inv.PaymentHash, pre.Hash())
	}
	if inv.State != backend.StateOpen {
		t.Fatalf("new hold invoice is %s", inv.State)
	}
	res := make(chan payResult, 1)
	payCtx, cancel := context.WithTimeout(context.Background(), 2*callTimeout)
	t.Cleanup(cancel)
	go func() {
		p, err := s.p.PayInvoice(payCtx, inv.PaymentRequest, backend.PayOptions{Timeout: 2 * callTimeout})
		res <- payResult{p, err}
	}()
	{
		got, err := s.b.WaitInvoice(callCtx(t), inv.PaymentHash)
		if err != nil {
			t.Fatalf("WaitInvoice on a hold invoice being paid: %v", err)
		}
		if got.State != backend.StateHeld {
			t.Fatalf("WaitInvoice on a hold invoice being paid returned %s, want held", got.State)
		}
	}
	held := s.until(t, inv.PaymentHash, backend.StateHeld)
	if held.AmountReceived < amount {
		t.Errorf("held invoice shows %s received, want at least %s", held.AmountReceived, amount)
	}
	select {
	case r := <-res:
		t.Fatalf("payer returned while the invoice is held: payment %v, error %v", r.p, r.err)
	default:
	}
	return inv, pre, res
}

func testHoldHeld(t *testing.T, s *suite) {
	hi := s.holder(t)
	inv, _, res := s.heldPayment(t, hi)
	if err := hi.CancelInvoice(callCtx(t), inv.PaymentHash); err != nil {
		t.Fatalf("CancelInvoice: %v", err)
	}
	<-res
}

func testHoldSettle(t *testing.T, s *suite) {
	hi := s.holder(t)
	inv, pre, res := s.heldPayment(t, hi)
	if err := hi.SettleInvoice(callCtx(t), pre); err != nil {
		t.Fatalf("SettleInvoice: %v", err)
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("payer of a settled hold invoice failed: %v", r.err)
	}
	if r.p.Preimage != pre {
		t.Errorf("payer got preimage %s, want %s", r.p.Preimage, pre)
	}
	got := s.settled(t, inv.PaymentHash)
	if got.Preimage == nil || *got.Preimage != pre {
		t.Errorf("settled hold invoice shows preimage %v, want %s", got.Preimage, pre)
	}
}

func testHoldCancel(t *testing.T, s *suite) {
	hi := s.holder(t)
	inv, _, res := s.heldPayment(t, hi)
	if err := hi.CancelInvoice(callCtx(t), inv.PaymentHash); err != nil {
		t.Fatalf("CancelInvoice: %v", err)
	}
	r := <-res
	if r.err == nil {
		t.Fatalf("payer of a canceled hold invoice succeeded with preimage %s", r.p.Preimage)
	}
	wantErr(t, r.err, backend.ErrPaymentFailed, "payer of a canceled hold invoice")
	got := s.until(t, inv.PaymentHash, backend.StateCanceled)
	if got.Preimage != nil && got.Preimage.Matches(inv.PaymentHash) {
		t.Errorf("canceled hold invoice reveals its preimage")
	}
}

func testHoldUnknown(t *testing.T, s *suite) {
	hi := s.holder(t)
	pre, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, hi.SettleInvoice(callCtx(t), pre), backend.ErrNotFound, "SettleInvoice with an unknown preimage")
	wantErr(t, hi.CancelInvoice(callCtx(t), pre.Hash()), backend.ErrNotFound, "CancelInvoice of an unknown hash")
}

func testHoldDuplicate(t *testing.T, s *suite) {
	hi := s.holder(t)
	h := randomHash(t)
	req := backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t), Expiry: caseExpiry}
	if _, err := hi.CreateHoldInvoice(callCtx(t), h, req); err != nil {
		t.Fatalf("CreateHoldInvoice: %v", err)
	}
	_, err := hi.CreateHoldInvoice(callCtx(t), h, req)
	wantErr(t, err, backend.ErrAlreadyExists, "a second hold invoice with the same hash")
}

func testExpiry(t *testing.T, s *suite) {
	if s.sup.FixedExpiry {
		t.Skip("Support.FixedExpiry is true: a 2s invoice cannot be asked for, the node chooses every invoice's expiry")
	}
	const short = 2 * time.Second
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t), Expiry: short})
	if d := decode(t, inv); d.Expiry != short {
		t.Errorf("BOLT11 expiry %s, want %s", d.Expiry, short)
	}
	// Wait past the expiry by the BOLT11's own clock, with a margin for
	// nodes that check expiry on a timer.
	time.Sleep(time.Until(inv.ExpiresAt) + 1500*time.Millisecond)
	got := s.lookup(t, inv.PaymentHash)
	if got.Payable(time.Now()) {
		t.Errorf("invoice past its expiry reads %s and payable", got.State)
	}
	{
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := s.b.WaitInvoice(ctx, inv.PaymentHash)
		if err != nil {
			t.Errorf("WaitInvoice on an expired invoice: %v (it should return the invoice, not wait)", err)
		} else if got.Payable(time.Now()) {
			t.Errorf("WaitInvoice on an expired invoice gave a payable %s invoice", got.State)
		}
	}
	_, err := s.p.PayInvoice(callCtx(t), inv.PaymentRequest, backend.PayOptions{})
	wantErr(t, err, backend.ErrPaymentFailed, "paying an expired invoice")
	if got := s.lookup(t, inv.PaymentHash); got.State == backend.StateSettled {
		t.Errorf("expired invoice got settled")
	}
}

func testZeroAmount(t *testing.T, s *suite) {
	if !s.sup.ZeroAmount {
		t.Skip("Support.ZeroAmount is false: this backend cannot create any-amount invoices")
	}
	inv := s.create(t, backend.InvoiceRequest{Memo: uniqueMemo(t)})
	if d := decode(t, inv); d.Amount != 0 {
		t.Fatalf("any-amount invoice's BOLT11 asks %s", d.Amount)
	}
	const chosen = backend.MilliSat(1_500_000)
	s.pay(t, inv.PaymentRequest, backend.PayOptions{Amount: chosen})
	got := s.settled(t, inv.PaymentHash)
	if got.AmountReceived != chosen {
		t.Errorf("any-amount invoice received %s, payer sent %s", got.AmountReceived, chosen)
	}
}

func testCallerPreimage(t *testing.T, s *suite) {
	if !s.sup.CallerPreimage {
		t.Skip("Support.CallerPreimage is false: this backend cannot take a caller-chosen preimage")
	}
	pre, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t), Preimage: &pre})
	if inv.PaymentHash != pre.Hash() || decode(t, inv).PaymentHash != pre.Hash() {
		t.Fatalf("invoice hash %s, want sha256 of the chosen preimage %s", inv.PaymentHash, pre.Hash())
	}
	if p := s.pay(t, inv.PaymentRequest, backend.PayOptions{}); p.Preimage != pre {
		t.Errorf("payer got preimage %s, want the chosen %s", p.Preimage, pre)
	}
}

func testDuplicatePreimage(t *testing.T, s *suite) {
	if !s.sup.CallerPreimage {
		t.Skip("Support.CallerPreimage is false: duplicate hashes cannot be asked for")
	}
	pre, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	req := backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t), Preimage: &pre}
	s.create(t, req)
	_, err = s.b.CreateInvoice(callCtx(t), req)
	wantErr(t, err, backend.ErrAlreadyExists, "a second invoice with the same preimage")
}

func testFifty(t *testing.T, s *suite) {
	const n, paid = 50, 10
	invs := make([]*backend.Invoice, n)
	errs := make([]error, n)
	// The fifty calls queue behind one another in the node (an NWC wallet
	// service answers one request at a time), so they share the batch's
	// deadline rather than one call's each: under -race on a loaded 2-core
	// machine NWC's fiftieth came after callTimeout (make stress).
	batch, cancel := context.WithTimeout(context.Background(), 4*callTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			invs[i], errs[i] = s.b.CreateInvoice(batch, backend.InvoiceRequest{
				Amount: amount + backend.Sat(int64(i)), Memo: fmt.Sprintf("%s #%d", uniqueMemo(t), i), Expiry: caseExpiry,
			})
		})
	}
	wg.Wait()
	seen := map[backend.PaymentHash]int{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("invoice %d of %d: %v", i, n, err)
		}
		if j, dup := seen[invs[i].PaymentHash]; dup {
			t.Fatalf("invoices %d and %d share hash %s", j, i, invs[i].PaymentHash)
		}
		seen[invs[i].PaymentHash] = i
		if d := decode(t, invs[i]); d.Amount != amount+backend.Sat(int64(i)) {
			t.Errorf("invoice %d asks %s, want %s", i, d.Amount, amount+backend.Sat(int64(i)))
		}
	}
	payErrs := make([]error, paid)
	for i := range paid {
		wg.Go(func() {
			_, payErrs[i] = s.p.PayInvoice(callCtx(t), invs[i].PaymentRequest, backend.PayOptions{})
		})
	}
	wg.Wait()
	for i, err := range payErrs {
		if err != nil {
			t.Errorf("concurrent payment %d: %v", i, err)
		}
	}
	for i, inv := range invs {
		got := s.lookup(t, inv.PaymentHash)
		if i < paid {
			got = s.settled(t, inv.PaymentHash)
		} else if got.State != backend.StateOpen {
			t.Errorf("unpaid invoice %d is %s", i, got.State)
		}
		if got.Amount != inv.Amount {
			t.Errorf("invoice %d: lookup amount %s, created %s", i, got.Amount, inv.Amount)
		}
	}
}

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
