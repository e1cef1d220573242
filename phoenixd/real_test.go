package phoenixd_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/fakes/phoenixdfake"
	"github.com/l402kit/l402kit/phoenixd"
)

// TestRealPhoenixd runs against a phoenixd you run, given by PHOENIXD_URL
// (e.g. http://127.0.0.1:9740) and PHOENIXD_PASSWORD (http-password, or
// env:NAME / file:PATH). phoenixd has no regtest mode, so this is the only
// check against the real daemon; it creates invoices but pays nothing, since
// paying needs a second funded node on the same chain. Nothing it creates
// is paid, and its invoices expire after ten minutes.
func TestRealPhoenixd(t *testing.T) {
	rawURL, rawPW := os.Getenv("PHOENIXD_URL"), os.Getenv("PHOENIXD_PASSWORD")
	if rawURL == "" || rawPW == "" {
		t.Skip("PHOENIXD_URL and PHOENIXD_PASSWORD are not both set: phoenixd has no regtest mode, so the real-node test needs a phoenixd you run (testnet or mainnet); set both to run it")
	}
	pw, err := backend.ReadSecret(rawPW)
	if err != nil {
		t.Fatal(err)
	}
	c, err := phoenixd.New(context.Background(), phoenixd.Config{URL: rawURL, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	t.Logf("phoenixd node %s on %q at height %d", info.NodeID, info.Network, info.BlockHeight)

	memo := "l402kit real-node test " + time.Now().UTC().Format(time.RFC3339)
	inv, err := c.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(21), Memo: memo, Expiry: 10 * time.Minute})
	if err != nil {
		t.Fatalf("CreateInvoice: %v", err)
	}
	d, err := backend.DecodeInvoice(inv.PaymentRequest)
	if err != nil {
		t.Fatalf("phoenixd's invoice does not decode: %v", err)
	}
	if d.PaymentHash != inv.PaymentHash || d.Amount != backend.Sat(21) || d.Memo != memo || d.Expiry != 10*time.Minute {
		t.Errorf("invoice decodes to %s %s %q %s", d.PaymentHash, d.Amount, d.Memo, d.Expiry)
	}
	if info.Network != "" && d.Network != info.Network {
		t.Errorf("getinfo says %q, invoice is for %q", info.Network, d.Network)
	}
	if info.NodeID != "" && d.Payee != info.NodeID {
		t.Errorf("getinfo says node %s, invoice names payee %s", info.NodeID, d.Payee)
	}

	got, err := c.LookupInvoice(ctx, inv.PaymentHash)
	if err != nil {
		t.Fatalf("LookupInvoice: %v", err)
	}
	if got.State != backend.StateOpen || got.PaymentRequest != inv.PaymentRequest || got.Amount != backend.Sat(21) || got.Memo != memo {
		t.Errorf("lookup gave %s %s %q", got.State, got.Amount, got.Memo)
	}
	if got.Preimage == nil || !got.Preimage.Matches(inv.PaymentHash) {
		t.Errorf("lookup preimage %v does not hash to %s", got.Preimage, inv.PaymentHash)
	}

	any, err := c.CreateInvoice(ctx, backend.InvoiceRequest{Memo: memo + " any amount"})
	if err != nil {
		t.Fatalf("CreateInvoice any amount: %v", err)
	}
	if d, _ := backend.DecodeInvoice(any.PaymentRequest); d == nil || d.Amount != 0 {
		t.Errorf("any-amount invoice decodes to %v", d)
	}

	unknown, _ := backend.NewPreimage()
	if _, err := c.LookupInvoice(ctx, unknown.Hash()); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("LookupInvoice of an unknown hash: %v, want ErrNotFound", err)
	}

	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	defer wcancel()
	if _, err := c.WaitInvoice(wctx, inv.PaymentHash); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitInvoice on an unpaid invoice: %v, want the context's deadline", err)
	}

	bad, err := phoenixd.New(context.Background(), phoenixd.Config{URL: rawURL, Password: pw + "-wrong"})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := bad.Info(ctx); !errors.Is(err, backend.ErrInvalid) {
		t.Errorf("Info with a wrong password: %v, want ErrInvalid", err)
	}
}

// TestRealPhoenixdAgainstFake runs the opt-in real-node test against the
// fake, so the test itself is known to work before anyone points it at a
// real phoenixd. It is skipped when the real variables are set: then the
// real run is the one that matters.
func TestRealPhoenixdAgainstFake(t *testing.T) {
	if os.Getenv("PHOENIXD_URL") != "" {
		t.Skip("PHOENIXD_URL is set: TestRealPhoenixd runs against the real node instead")
	}
	h := newHarness(t, phoenixdfake.Config{}, phoenixd.Config{})
	t.Setenv("PHOENIXD_URL", h.fake.URL())
	t.Setenv("L402KIT_TEST_PHOENIXD_PW", password)
	t.Setenv("PHOENIXD_PASSWORD", "env:L402KIT_TEST_PHOENIXD_PW")
	TestRealPhoenixd(t)
}
