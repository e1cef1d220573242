package backend_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt11"
)

func TestHashAndPreimageParsing(t *testing.T) {
	p, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	back, err := backend.ParsePreimage(p.String())
	if err != nil || back != p {
		t.Fatalf("preimage round trip: %v %v", back, err)
	}
	h, err := backend.ParsePaymentHash(p.Hash().String())
	if err != nil || h != p.Hash() || !p.Matches(h) {
		t.Fatalf("hash round trip: %v %v", h, err)
	}
	var other backend.Preimage
	if other.Matches(h) {
		t.Fatal("zero preimage matches a random hash")
	}
	for _, bad := range []string{"", "00", strings.Repeat("zz", 32), strings.Repeat("00", 33)} {
		if _, err := backend.ParsePaymentHash(bad); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("ParsePaymentHash(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestMilliSat(t *testing.T) {
	if backend.Sat(21).String() != "21 sat" || backend.MilliSat(1500).String() != "1500 msat" || backend.MilliSat(2500).Sats() != 2 {
		t.Fatal("MilliSat formatting")
	}
}

func TestInvoiceRequestValidate(t *testing.T) {
	h := [32]byte{1}
	for name, r := range map[string]backend.InvoiceRequest{
		"negative amount":  {Amount: -1},
		"negative expiry":  {Expiry: -time.Second},
		"memo and hash":    {Memo: "x", DescriptionHash: &h},
		"long memo":        {Memo: strings.Repeat("m", 640)},
		"memo and text":    {Memo: "x", HashedDescription: "y"},
		"hash not of text": {DescriptionHash: &h, HashedDescription: "y"},
	} {
		if err := r.Validate(); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := (backend.InvoiceRequest{Amount: 1000, Memo: "ok"}).Validate(); err != nil {
		t.Errorf("valid request refused: %v", err)
	}
	text := strings.Repeat("metadata ", 100) // longer than a memo may be
	sum := sha256.Sum256([]byte(text))
	both := backend.InvoiceRequest{Amount: 1000, DescriptionHash: &sum, HashedDescription: text}
	if err := both.Validate(); err != nil {
		t.Errorf("hash and its text refused: %v", err)
	}
	for _, r := range []backend.InvoiceRequest{both, {HashedDescription: text}, {DescriptionHash: &sum}} {
		if got := r.CommittedDescriptionHash(); got == nil || *got != sum {
			t.Errorf("CommittedDescriptionHash of %+v = %x", r, got)
		}
	}
	if got := (backend.InvoiceRequest{Memo: "m"}).CommittedDescriptionHash(); got != nil {
		t.Errorf("a memo request commits to hash %x", got)
	}
}

func TestExpired(t *testing.T) {
	now := time.Now()
	inv := &backend.Invoice{State: backend.StateOpen, ExpiresAt: now}
	if !inv.Expired(now) || inv.Payable(now) {
		t.Fatal("invoice at its expiry should read expired")
	}
	if inv.Expired(now.Add(-time.Second)) {
		t.Fatal("invoice before expiry reads expired")
	}
	inv.State = backend.StateSettled
	if inv.Expired(now.Add(time.Hour)) {
		t.Fatal("a settled invoice never reads expired")
	}
}

type fake struct{}

func (fake) CreateInvoice(context.Context, backend.InvoiceRequest) (*backend.Invoice, error) {
	return nil, nil
}
func (fake) LookupInvoice(_ context.Context, h backend.PaymentHash) (*backend.Invoice, error) {
	return &backend.Invoice{PaymentHash: h, State: backend.StateOpen, ExpiresAt: time.Now().Add(time.Hour)}, nil
}
func (fake) Close() error { return nil }

// registrations numbers the scheme TestOpenAndRegistry registers: the
// registry is process-wide and refuses a scheme twice, and the test may run
// more than once in one process (go test -count).
var registrations atomic.Int32

func TestOpenAndRegistry(t *testing.T) {
	scheme := fmt.Sprintf("faketest%d", registrations.Add(1))
	backend.Register(scheme, func(ctx context.Context, u *url.URL) (backend.Driver, error) { return fake{}, nil })
	b, err := backend.Open(context.Background(), scheme+"://x?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	if got := backend.Abilities(b); len(got) != 0 {
		t.Fatalf("fake has abilities %v", got)
	}
	if _, err := backend.Open(context.Background(), scheme+"://x?timeout=soon"); !errors.Is(err, backend.ErrInvalid) {
		t.Fatalf("bad timeout: %v", err)
	}
	if _, err := backend.Open(context.Background(), "nosuch://x"); !errors.Is(err, backend.ErrUnsupported) {
		t.Fatalf("unknown scheme: %v", err)
	}
	_, err = backend.Open(context.Background(), scheme+"://:sec ret@host:%zz")
	if !errors.Is(err, backend.ErrInvalid) || strings.Contains(err.Error(), "sec ret") {
		t.Fatalf("bad URL: %v (must be ErrInvalid and not echo the password)", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("registering a scheme twice did not panic")
		}
	}()
	backend.Register(scheme, func(ctx context.Context, u *url.URL) (backend.Driver, error) { return fake{}, nil })
}

func TestWaitPollsAndHonoursContext(t *testing.T) {
	b := backend.New(fake{}, backend.Options{PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := b.WaitInvoice(ctx, backend.PaymentHash{1})
	if !errors.Is(err, context.DeadlineExceeded) || backend.Kind(err) != backend.ErrUnavailable {
		t.Fatalf("Wait on a never-paid invoice: %v", err)
	}
}

func TestReadSecret(t *testing.T) {
	t.Setenv("L402KIT_TEST_SECRET", "s3cret")
	if v, err := backend.ReadSecret("env:L402KIT_TEST_SECRET"); err != nil || v != "s3cret" {
		t.Fatalf("env: %q %v", v, err)
	}
	if _, err := backend.ReadSecret("env:L402KIT_NOT_SET_ANYWHERE"); !errors.Is(err, backend.ErrInvalid) {
		t.Fatalf("unset env: %v", err)
	}
	if _, err := backend.ReadSecret("file:/nonexistent/secret"); !errors.Is(err, backend.ErrInvalid) {
		t.Fatalf("missing file: %v", err)
	}
	if v, _ := backend.ReadSecret("literal"); v != "literal" {
		t.Fatal("literal secret changed")
	}
}

func TestDecodeInvoiceRejects(t *testing.T) {
	for _, s := range []string{"", "hello", "lnbc1qqqq", "lnbcrt1xyz"} {
		if _, err := backend.DecodeInvoice(s); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("DecodeInvoice(%q) = %v, want ErrInvalid", s, err)
		}
	}
}

func TestNewOfABackendKeepsAbilitiesTruthful(t *testing.T) {
	inner := backend.New(fake{}, backend.Options{})
	if got := backend.Abilities(backend.New(inner, backend.Options{})); len(got) != 0 {
		t.Fatalf("a Backend over a Backend over a driver without abilities claims %v", got)
	}
}

// payFake is a payer whose PayInvoice fails with err.
type payFake struct {
	fake
	err error
}

func (p payFake) PayInvoice(context.Context, string, backend.PayOptions) (*backend.Payment, error) {
	return nil, p.err
}

func TestPayErrorsSayWhatBecameOfTheMoney(t *testing.T) {
	key, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	pre, _ := backend.NewPreimage()
	inv, err := bolt11.EncodePayable(bolt11.Invoice{Network: "regtest", PaymentHash: pre.Hash(),
		Timestamp: time.Now(), Expiry: time.Hour, Amount: 1000}, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		err        error
		want       error
		keepsCause bool
	}{
		{"plain error: fate unknown", errors.New("connection reset"), backend.ErrPaymentUnknown, true},
		{"unavailable before sending", fmt.Errorf("%w: dial refused", backend.ErrUnavailable), backend.ErrUnavailable, false},
		{"unavailable at a deadline", fmt.Errorf("%w: %w", backend.ErrUnavailable, context.DeadlineExceeded), backend.ErrPaymentUnknown, false},
		{"failed", fmt.Errorf("%w: no route", backend.ErrPaymentFailed), backend.ErrPaymentFailed, false},
		{"two sentinels", fmt.Errorf("%w: %w", backend.ErrPaymentFailed, backend.ErrNotFound), backend.ErrPaymentUnknown, false},
	} {
		b := backend.New(payFake{err: c.err}, backend.Options{})
		_, err := b.PayInvoice(context.Background(), inv, backend.PayOptions{})
		n := 0
		for _, s := range backend.Sentinels() {
			if errors.Is(err, s) {
				n++
			}
		}
		if !errors.Is(err, c.want) || n != 1 {
			t.Errorf("%s: %v (%d sentinels), want %q alone", c.name, err, n, c.want)
		}
		if c.keepsCause && !errors.Is(err, c.err) {
			t.Errorf("%s: %v lost the driver's error", c.name, err)
		}
	}
	// MaxFee on a payer that cannot limit fees is refused before anything.
	b := backend.New(payFake{err: errors.New("must not be called")}, backend.Options{})
	if _, err := b.PayInvoice(context.Background(), "  lightning:"+inv+"\n", backend.PayOptions{MaxFee: 1}); backend.Kind(err) != backend.ErrUnsupported {
		t.Errorf("MaxFee without FeeLimiter: %v, want ErrUnsupported", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.LookupInvoice(context.Background(), pre.Hash()); backend.Kind(err) != backend.ErrClosed {
		t.Errorf("lookup after Close: %v, want ErrClosed", err)
	}
}
