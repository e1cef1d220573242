package conformance

import (
	"context"
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
