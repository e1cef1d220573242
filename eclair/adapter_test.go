package eclair

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/fakes/eclairfake"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
)

const password = "21satoshi"

type env struct {
	node *memnode.Node
	fake *eclairfake.Server
	d    *driver
	b    *backend.Backend
}

// newTestBackend is New as tests call it, keeping the driver for the
// white-box checks.
func newTestBackend(cfg Config) (*driver, *backend.Backend, error) {
	d, err := newDriver(cfg)
	if err != nil {
		return nil, nil, err
	}
	return d, backend.New(d, backend.Options{CallTimeout: cfg.CallTimeout}), nil
}

func newEnv(t testing.TB, poll time.Duration) *env {
	t.Helper()
	return newEnvConfig(t, Config{PollInterval: poll})
}

// newEnvConfig is newEnv with the adapter's Config (URL and Password are
// filled in).
func newEnvConfig(t testing.TB, cfg Config) *env {
	t.Helper()
	node, err := memnode.New(memnode.Config{Alias: "eclairfake"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	fake, err := eclairfake.New(eclairfake.Config{Node: node, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	cfg.URL, cfg.Password = fake.URL(), password
	d, b, err := newTestBackend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return &env{node: node, fake: fake, d: d, b: b}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func (e *env) invoice(t *testing.T) *backend.Invoice {
	t.Helper()
	inv, err := e.b.CreateInvoice(ctxT(t, 10*time.Second), backend.InvoiceRequest{Amount: backend.Sat(1000), Memo: t.Name(), Expiry: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestNoHoldInvoices(t *testing.T) {
	e := newEnv(t, time.Second)
	b := e.b
	if b.Supports(backend.AbilityHold) {
		t.Fatal("the eclair backend claims hold invoices; Eclair has none")
	}
	got := backend.Abilities(b)
	want := []backend.Ability{backend.AbilityWait, backend.AbilityPay, backend.AbilityFeeLimit, backend.AbilityInfo, backend.AbilityPing, backend.AbilityOffer, backend.AbilityPayOffer}
	if len(got) != len(want) {
		t.Fatalf("abilities %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("abilities %v, want %v", got, want)
		}
	}
}

func TestWrongPassword(t *testing.T) {
	e := newEnv(t, time.Second)
	inv := e.invoice(t)
	_, bad, err := newTestBackend(Config{URL: e.fake.URL(), Password: "not-the-password", PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	ctx := ctxT(t, 10*time.Second)
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("%s with a wrong password: %v, want ErrInvalid", what, err)
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Message != "The supplied authentication is invalid" {
			t.Errorf("%s: want an *APIError with HTTP 401 and Eclair's text, got %#v", what, err)
		}
	}
	_, err = bad.LookupInvoice(ctx, inv.PaymentHash)
	check("LookupInvoice", err)
	_, err = bad.CreateInvoice(ctx, backend.InvoiceRequest{Amount: 1000, Memo: "x"})
	check("CreateInvoice", err)
	_, err = bad.Info(ctx)
	check("Info", err)
	_, err = bad.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{})
	check("PayInvoice", err)
	// A wait must not spin on a refused password either.
	_, err = bad.WaitInvoice(ctx, inv.PaymentHash)
	check("WaitInvoice", err)
}

func TestUnknownInvoice(t *testing.T) {
	e := newEnv(t, time.Second)
	p, _ := backend.NewPreimage()
	ctx := ctxT(t, 10*time.Second)
	_, err := e.b.LookupInvoice(ctx, p.Hash())
	if !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("LookupInvoice of an unknown hash: %v, want ErrNotFound", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || ae.Message != "Not found" {
		t.Errorf("want Eclair's 404 {\"error\":\"Not found\"}, got %#v", err)
	}
	if _, err := e.b.WaitInvoice(ctx, p.Hash()); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("WaitInvoice of an unknown hash: %v, want ErrNotFound", err)
	}
}

// A stopped node refuses connections; every call fails with ErrUnavailable
// at once rather than waiting for its timeout, and the same Backend works
// again once the node is back.
//
// The client keeps no connection alive, so every call after the stop dials
// and is refused: a POST written onto the connection left from before the
// stop (which the server closed, and the client may not have noticed yet) is
// not retried by Go, and for payinvoice that is honestly ErrPaymentUnknown.
// The test passed only because LookupInvoice ran first and used up the one
// connection in the pool.
func TestNodeDown(t *testing.T) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	e := newEnvConfig(t, Config{PollInterval: 50 * time.Millisecond, HTTPClient: &http.Client{Transport: tr}})
	inv := e.invoice(t)
	if err := e.fake.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 20*time.Second)
	start := time.Now()
	_, err := e.b.LookupInvoice(ctx, inv.PaymentHash)
	t.Logf("LookupInvoice on a stopped node failed after %s: %v", time.Since(start).Round(time.Microsecond), err)
	if !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("LookupInvoice: %v, want ErrUnavailable", err)
	}
	for what, f := range map[string]func() error{
		"CreateInvoice": func() error {
			_, err := e.b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: 1000, Memo: "down"})
			return err
		},
		"Info": func() error { _, err := e.b.Info(ctx); return err },
		"PayInvoice": func() error {
			_, err := e.b.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{Timeout: 5 * time.Second})
			return err
		},
	} {
		if err := f(); !errors.Is(err, backend.ErrUnavailable) {
			t.Errorf("%s on a stopped node: %v, want ErrUnavailable", what, err)
		}
	}
	// A wait on a stopped node keeps waiting, and honours its context.
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = e.b.WaitInvoice(wctx, inv.PaymentHash)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitInvoice on a stopped node until its deadline: %v, want context.DeadlineExceeded", err)
	}

	if err := e.fake.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.LookupInvoice(ctx, inv.PaymentHash); err != nil {
		t.Errorf("LookupInvoice after restart: %v", err)
	}
}

// A port where nothing ever listened: the same as a node that is down.
func TestNothingListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, b, err := newTestBackend(Config{URL: "http://" + addr, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Info(ctxT(t, 10*time.Second)); !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("Info with nothing listening: %v, want ErrUnavailable", err)
	}
}

// A node that accepts connections but never answers: the call ends at the
// caller's deadline, as ErrUnavailable that also wraps the deadline.
func TestNodeHangs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	_, b, err := newTestBackend(Config{URL: "http://" + ln.Addr().String(), Password: password})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.Info(ctxT(t, 200*time.Millisecond))
	if !errors.Is(err, backend.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Info on a hung node: %v, want ErrUnavailable wrapping context.DeadlineExceeded", err)
	}
}

// With the websocket up and polling set to an hour, only the
// payment-received event can end the wait: this shows the push path works.
func TestWaitByEvent(t *testing.T) {
	e := newEnv(t, time.Hour)
	inv := e.invoice(t)
	done := make(chan error, 1)
	go func() {
		got, err := e.b.WaitInvoice(ctxT(t, 20*time.Second), inv.PaymentHash)
		if err == nil && got.State != backend.StateSettled {
			err = errors.New("returned " + got.State.String())
		}
		done <- err
	}()
	waitConnected(t, e.d, true)
	// The connect rang every waiter once; give that lookup time to finish
	// so the payment below is seen through its event.
	time.Sleep(100 * time.Millisecond)
	if _, err := e.node.PayInvoice(ctxT(t, 10*time.Second), inv.PaymentRequest, backend.PayOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("WaitInvoice: %v", err)
	}
}

// With the websocket refused, waits fall back to polling.
func TestWaitFallsBackToPolling(t *testing.T) {
	e := newEnv(t, 50*time.Millisecond)
	inv := e.invoice(t)
	done := make(chan error, 1)
	go func() {
		got, err := e.b.WaitInvoice(ctxT(t, 20*time.Second), inv.PaymentHash)
		if err == nil && got.State != backend.StateSettled {
			err = errors.New("returned " + got.State.String())
		}
		done <- err
	}()
	waitConnected(t, e.d, true)
	e.fake.SetEvents(false)
	waitConnected(t, e.d, false)
	if _, err := e.node.PayInvoice(ctxT(t, 10*time.Second), inv.PaymentRequest, backend.PayOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("WaitInvoice with the websocket down: %v", err)
	}
	if e.d.events.Connected() {
		t.Errorf("hub reports a connected socket while /ws is refused")
	}
}

// The socket comes back after a drop, and the last waiter out closes it.
func TestWaitReconnects(t *testing.T) {
	e := newEnv(t, time.Hour)
	inv := e.invoice(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := e.b.WaitInvoice(ctx, inv.PaymentHash)
		done <- err
	}()
	waitConnected(t, e.d, true)
	e.fake.SetEvents(false)
	waitConnected(t, e.d, false)
	e.fake.SetEvents(true)
	waitConnected(t, e.d, true)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("canceled wait: %v, want context.Canceled", err)
	}
	waitConnected(t, e.d, false)
}

func TestCloseEndsWait(t *testing.T) {
	e := newEnv(t, time.Hour)
	inv := e.invoice(t)
	done := make(chan error, 1)
	go func() {
		_, err := e.b.WaitInvoice(ctxT(t, 20*time.Second), inv.PaymentHash)
		done <- err
	}()
	waitConnected(t, e.d, true)
	e.b.Close()
	if err := <-done; !errors.Is(err, backend.ErrClosed) {
		t.Errorf("wait after Close: %v, want ErrClosed", err)
	}
	if _, err := e.b.LookupInvoice(ctxT(t, time.Second), inv.PaymentHash); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("call after Close: %v, want ErrClosed", err)
	}
}

func waitConnected(t *testing.T, b *driver, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.events.Connected() != want {
		if time.Now().After(deadline) {
			t.Fatalf("websocket connected=%v after 10 s, want %v", !want, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPayThroughAdapter(t *testing.T) {
	e := newEnv(t, 50*time.Millisecond)
	ctx := ctxT(t, 20*time.Second)
	inv := e.invoice(t)
	// Eclair reads the bare invoice only; the adapter sends it so.
	p, err := e.b.PayInvoice(ctx, " lightning:"+inv.PaymentRequest+"\n", backend.PayOptions{MaxFee: backend.Sat(10)})
	if err != nil {
		t.Fatalf("PayInvoice: %v", err)
	}
	if !p.Preimage.Matches(inv.PaymentHash) || p.PaymentHash != inv.PaymentHash || p.Amount != inv.Amount {
		t.Errorf("payment %+v for invoice %s of %s", p, inv.PaymentHash, inv.Amount)
	}
	got, err := e.b.LookupInvoice(ctx, inv.PaymentHash)
	if err != nil || got.State != backend.StateSettled || got.Preimage == nil || *got.Preimage != p.Preimage {
		t.Errorf("after payment: %+v, %v", got, err)
	}

	// Paying it again fails: the memory node refuses a settled invoice,
	// and the fake records the attempt as Eclair would, as failed.
	if _, err := e.b.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{}); !errors.Is(err, backend.ErrPaymentFailed) {
		t.Errorf("second payment: %v, want ErrPaymentFailed", err)
	}

	// An invoice of another node: the memory node has no route to it.
	other, err := memnode.New(memnode.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	foreign, err := backend.New(other, backend.Options{}).CreateInvoice(ctx, backend.InvoiceRequest{Amount: 5000, Memo: "elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.PayInvoice(ctx, foreign.PaymentRequest, backend.PayOptions{}); !errors.Is(err, backend.ErrPaymentFailed) {
		t.Errorf("paying an unroutable invoice: %v, want ErrPaymentFailed", err)
	}

	// Any-amount invoice: the amount goes as amountMsat.
	open, err := e.b.CreateInvoice(ctx, backend.InvoiceRequest{Memo: "any"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.PayInvoice(ctx, open.PaymentRequest, backend.PayOptions{}); !errors.Is(err, backend.ErrInvalid) {
		t.Errorf("any-amount invoice without an amount: %v, want ErrInvalid", err)
	}
	p, err = e.b.PayInvoice(ctx, open.PaymentRequest, backend.PayOptions{Amount: 7777})
	if err != nil || p.Amount != 7777 {
		t.Errorf("any-amount invoice paid with 7777 msat: %+v, %v", p, err)
	}
	if _, err := e.b.PayInvoice(ctx, "lnbcrt1garbage", backend.PayOptions{}); !errors.Is(err, backend.ErrInvalid) {
		t.Errorf("garbage invoice: %v, want ErrInvalid", err)
	}
}

func TestCreateChecks(t *testing.T) {
	e := newEnv(t, time.Second)
	ctx := ctxT(t, 10*time.Second)
	for name, req := range map[string]backend.InvoiceRequest{
		"sub-second expiry": {Amount: 1000, Memo: "x", Expiry: 500 * time.Millisecond},
		"negative amount":   {Amount: -1, Memo: "x"},
		"memo and hash":     {Amount: 1000, Memo: "x", DescriptionHash: &[32]byte{1}},
	} {
		if _, err := e.b.CreateInvoice(ctx, req); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	// An empty memo is a valid (empty) description.
	inv, err := e.b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: 1000})
	if err != nil {
		t.Fatalf("empty memo: %v", err)
	}
	if d, err := backend.DecodeInvoice(inv.PaymentRequest); err != nil || d.Memo != "" || d.DescriptionHash != nil {
		t.Errorf("empty memo gave %+v, %v", d, err)
	}
}

func TestOpenURL(t *testing.T) {
	e := newEnv(t, time.Second)
	host := e.fake.Addr()
	ctx := ctxT(t, 10*time.Second)
	t.Setenv("L402KIT_TEST_ECLAIR_PW", password)
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{
		"eclair://:" + password + "@" + host,
		"eclair://:env:L402KIT_TEST_ECLAIR_PW@" + host,
		"eclair://:file:" + url.PathEscape(file) + "@" + host,
		"eclair://" + host + "?password=file:" + url.QueryEscape(file),
	} {
		b, err := backend.Open(ctx, raw)
		if err != nil {
			t.Errorf("Open(%q): %v", raw, err)
			continue
		}
		info, err := b.Info(ctx)
		if err != nil || info.NodeID != e.node.NodeID() || info.Network != "regtest" || info.Alias != "eclairfake" {
			t.Errorf("Open(%q).Info() = %+v, %v", raw, info, err)
		}
		b.Close()
	}
	for _, raw := range []string{
		"eclair://" + host, // no password
		"eclair://:env:L402KIT_TEST_ECLAIR_UNSET@" + host, // unset variable
		"eclair://:pw@" + host + "?tls=maybe",
		"eclair://:pw@",
	} {
		if b, err := backend.Open(ctx, raw); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("Open(%q): %v, want ErrInvalid", raw, err)
			if b != nil {
				b.Close()
			}
		}
	}
	b, err := backend.Open(ctx, "eclair://:pw@"+host+"?tls=1")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var d *driver
	if !b.As(&d) || d.api.Base.Scheme != "https" {
		t.Errorf("tls=1 did not give https")
	}
	if s := d.api.Base.Scheme; s != "https" {
		t.Errorf("tls=1 gave scheme %q", s)
	}
}
