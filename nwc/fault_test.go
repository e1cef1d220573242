package nwc

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	nostr "github.com/nbd-wtf/go-nostr"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/internal/testenv/nostrrelay"
	"github.com/l402kit/l402kit/memory"
)

func relay(t *testing.T) *nostrrelay.Relay {
	t.Helper()
	r, err := nostrrelay.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// scripted is a wallet written for one test: it publishes an info event,
// takes each request and hands it to answer, which publishes what the test
// wants (nothing, twice, signed by another key, ...).
type scripted struct {
	t      *testing.T
	sk     string
	pub    string
	client string // client secret
	pool   *pool
	answer func(w *scripted, req *nostr.Event, r request)
}

func newScripted(t *testing.T, r *nostrrelay.Relay, infoTags nostr.Tags, content string, answer func(*scripted, *nostr.Event, request)) (*scripted, Config) {
	t.Helper()
	w := &scripted{t: t, sk: nostr.GeneratePrivateKey(), client: nostr.GeneratePrivateKey(), answer: answer}
	w.pub, _ = nostr.GetPublicKey(w.sk)
	w.pool = newPool([]string{r.URL()}, 5*time.Second, slog.Default(), nostr.Filters{{Kinds: []int{KindRequest}, Tags: nostr.TagMap{"p": {w.pub}}}}, func(ev *nostr.Event) {
		ciph := w.cipherFor(ev)
		plain, err := ciph.decrypt(ev.Content)
		if err != nil {
			t.Errorf("scripted wallet: request does not decrypt: %v", err)
			return
		}
		var rq request
		json.Unmarshal([]byte(plain), &rq)
		go w.answer(w, ev, rq)
	}, nil)
	t.Cleanup(w.pool.close)
	if err := w.pool.waitConnected(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	info := &nostr.Event{Kind: KindInfo, CreatedAt: nostr.Now(), Tags: infoTags, Content: content}
	info.Sign(w.sk)
	if _, err := w.pool.publish(ctxT(t, 10*time.Second), info); err != nil {
		t.Fatal(err)
	}
	return w, Config{WalletPubKey: w.pub, Relays: []string{r.URL()}, Secret: w.client, CallTimeout: 5 * time.Second}
}

func (w *scripted) cipherFor(req *nostr.Event) cipher {
	c, err := newCipher(tagValue(req, "encryption"), req.PubKey, w.sk)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// reply publishes an answer to req signed by sk (the wallet's, or another).
func (w *scripted) reply(req *nostr.Event, sk string, body map[string]any) {
	b, _ := json.Marshal(body)
	content, _ := w.cipherFor(req).encrypt(string(b))
	ev := &nostr.Event{Kind: KindResponse, CreatedAt: nostr.Now(), Tags: nostr.Tags{{"p", req.PubKey}, {"e", req.ID}}, Content: content}
	ev.Sign(sk)
	w.pool.publish(context.Background(), ev)
}

func (w *scripted) replyTo(req *nostr.Event, e string, body map[string]any) {
	b, _ := json.Marshal(body)
	content, _ := w.cipherFor(req).encrypt(string(b))
	ev := &nostr.Event{Kind: KindResponse, CreatedAt: nostr.Now(), Tags: nostr.Tags{{"p", req.PubKey}, {"e", e}}, Content: content}
	ev.Sign(w.sk)
	w.pool.publish(context.Background(), ev)
}

func errBody(method, code string) map[string]any {
	return map[string]any{"result_type": method, "error": map[string]any{"code": code, "message": "scripted " + code}, "result": nil}
}

var nip44Info = nostr.Tags{{"encryption", "nip44_v2"}}

// TestErrorCodes sends every NIP-47 error code over the wire and checks the
// Backend's error matches exactly the one sentinel it maps to.
func TestErrorCodes(t *testing.T) {
	want := map[string]error{
		CodeRateLimited: backend.ErrUnavailable, CodeNotImplemented: backend.ErrUnsupported,
		CodeInsufficientBalance: backend.ErrPaymentFailed, CodeQuotaExceeded: backend.ErrPaymentFailed,
		CodeRestricted: backend.ErrUnsupported, CodeUnauthorized: backend.ErrInvalid,
		CodeInternal: backend.ErrUnavailable, CodeUnsupportedEncryption: backend.ErrUnsupported,
		CodePaymentFailed: backend.ErrPaymentFailed, CodeNotFound: backend.ErrNotFound,
		CodeOther: backend.ErrUnavailable,
	}
	var code atomic.Value
	r := relay(t)
	_, cfg := newScripted(t, r, nip44Info, "make_invoice lookup_invoice", func(w *scripted, req *nostr.Event, rq request) {
		w.reply(req, w.sk, errBody(rq.Method, code.Load().(string)))
	})
	b, err := New(ctxT(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for c, s := range want {
		code.Store(c)
		_, err := b.LookupInvoice(ctxT(t, 10*time.Second), backend.PaymentHash{1})
		if backend.Kind(err) != s {
			t.Errorf("%s: error %v is %v, want %v", c, err, backend.Kind(err), s)
		}
		n := 0
		for _, x := range backend.Sentinels() {
			if errors.Is(err, x) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: error matches %d sentinels", c, n)
		}
	}
}

// TestNIP04WithoutEncryptionTag: a wallet whose info event has no
// encryption tag is spoken to in NIP-04, and requests carry no encryption
// tag; a wallet that lists only an unknown scheme is refused.
func TestNIP04WithoutEncryptionTag(t *testing.T) {
	r := relay(t)
	var sawTag atomic.Bool
	_, cfg := newScripted(t, r, nil, "make_invoice lookup_invoice", func(w *scripted, req *nostr.Event, rq request) {
		if tagValue(req, "encryption") != "" {
			sawTag.Store(true)
		}
		w.reply(req, w.sk, errBody(rq.Method, CodeNotFound))
	})
	b, err := New(ctxT(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.LookupInvoice(ctxT(t, 10*time.Second), backend.PaymentHash{2}); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("over NIP-04: %v", err)
	}
	if sawTag.Load() {
		t.Error("a NIP-04 request carried an encryption tag")
	}
	var d *driver
	if !b.As(&d) || d.enc.tag() != "" {
		t.Errorf("cipher is %T, want NIP-04", d.enc)
	}

	_, cfg = newScripted(t, r, nostr.Tags{{"encryption", "nip99"}}, "make_invoice lookup_invoice", nil)
	if _, err := New(ctxT(t, 10*time.Second), cfg); !errors.Is(err, backend.ErrUnsupported) {
		t.Fatalf("a wallet offering only an unknown encryption: %v, want ErrUnsupported", err)
	}
}

// TestAnswersIgnored: an answer to a request never sent, an answer signed
// by another key and a second answer are all ignored; the call gets the
// wallet's one true answer.
func TestAnswersIgnored(t *testing.T) {
	r := relay(t)
	mallory := nostr.GeneratePrivateKey()
	_, cfg := newScripted(t, r, nip44Info, "make_invoice lookup_invoice", func(w *scripted, req *nostr.Event, rq request) {
		w.replyTo(req, strings.Repeat("ab", 32), errBody(rq.Method, CodeRateLimited)) // unknown request
		w.reply(req, mallory, errBody(rq.Method, CodeUnauthorized))                   // another key
		w.reply(req, w.sk, errBody(rq.Method, CodeNotFound))                          // the answer
		w.reply(req, w.sk, errBody(rq.Method, CodeInternal))                          // twice
	})
	b, err := New(ctxT(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for range 3 {
		if _, err := b.LookupInvoice(ctxT(t, 10*time.Second), backend.PaymentHash{3}); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("got %v, want the wallet's NOT_FOUND", err)
		}
	}

	// The relay filters authors, so check the client's own guard too: an
	// answer signed by another key never reaches a pending request.
	var d *driver
	b.As(&d)
	ch := make(chan *nostr.Event, 1)
	d.mu.Lock()
	d.pending["feed"] = ch
	d.mu.Unlock()
	forged := &nostr.Event{Kind: KindResponse, CreatedAt: nostr.Now(), Tags: nostr.Tags{{"e", "feed"}}, Content: "x"}
	forged.Sign(mallory)
	d.onEvent(forged)
	select {
	case <-ch:
		t.Fatal("an answer signed by another key was delivered")
	default:
	}
}

// payHarness is the client on a wallet service on a memory node, with the
// relay's faults at the test's hand.
func payHarness(t *testing.T) (*nostrrelay.Relay, *backend.Backend, *memnode.Node, Config) {
	t.Helper()
	r := relay(t)
	node, err := memory.New(context.Background(), memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	svc, err := NewService(ctxT(t, 10*time.Second), ServiceConfig{Backend: node, Relays: []string{r.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	uri, err := svc.Connect(ctxT(t, 10*time.Second), Permissions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctxT(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	n, _ := memnode.From(node)
	return r, b, n, cfg
}

// payRequests counts the pay_invoice requests the relay saw, decrypting
// them with the connection's keys.
func payRequests(t *testing.T, r *nostrrelay.Relay, cfg Config) int {
	c, err := newCipher(encNIP44, cfg.WalletPubKey, cfg.Secret)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range r.Seen() {
		if ev.Kind != KindRequest {
			continue
		}
		plain, err := c.decrypt(ev.Content)
		if err == nil && strings.Contains(plain, `"pay_invoice"`) {
			n++
		}
	}
	return n
}

// once returns a fault that applies f to the first pay request only.
func oncePay(t *testing.T, cfg Config, f nostrrelay.Fault) func(*nostr.Event) nostrrelay.Fault {
	c, _ := newCipher(encNIP44, cfg.WalletPubKey, cfg.Secret)
	var mu sync.Mutex
	done := false
	return func(ev *nostr.Event) nostrrelay.Fault {
		mu.Lock()
		defer mu.Unlock()
		if done || ev.Kind != KindRequest {
			return nostrrelay.Fault{}
		}
		if plain, err := c.decrypt(ev.Content); err == nil && strings.Contains(plain, `"pay_invoice"`) {
			done = true
			return f
		}
		return nostrrelay.Fault{}
	}
}

// TestPayRequestDropped: a relay that acknowledges pay_invoice and drops
// it leaves the payment unknown to the client: ErrPaymentUnknown, after
// lookup_invoice found it unpaid, and the request is never sent again.
func TestPayRequestDropped(t *testing.T) {
	r, b, _, cfg := payHarness(t)
	inv, err := b.CreateInvoice(ctxT(t, 10*time.Second), backend.InvoiceRequest{Amount: backend.Sat(10), Memo: "dropped"})
	if err != nil {
		t.Fatal(err)
	}
	r.SetFault(oncePay(t, cfg, nostrrelay.Fault{Drop: true}))
	_, err = b.PayInvoice(ctxT(t, 30*time.Second), inv.PaymentRequest, backend.PayOptions{Timeout: 2 * time.Second})
	if backend.Kind(err) != backend.ErrPaymentUnknown {
		t.Fatalf("dropped pay_invoice: %v, want ErrPaymentUnknown", err)
	}
	if got, _ := b.LookupInvoice(ctxT(t, 10*time.Second), inv.PaymentHash); got.State != backend.StateOpen {
		t.Errorf("invoice is %s after a dropped payment", got.State)
	}
	if n := payRequests(t, r, cfg); n != 1 {
		t.Errorf("relay saw %d pay_invoice requests, want exactly 1 (never retried)", n)
	}
}

// TestPayRelayDisconnects: the relay drops every connection right after
// taking pay_invoice, so the wallet pays but its answer is lost. The
// client, never resending, learns the outcome from lookup_invoice: paid,
// with the preimage.
func TestPayRelayDisconnects(t *testing.T) {
	r, b, _, cfg := payHarness(t)
	inv, err := b.CreateInvoice(ctxT(t, 10*time.Second), backend.InvoiceRequest{Amount: backend.Sat(10), Memo: "disconnect"})
	if err != nil {
		t.Fatal(err)
	}
	r.SetFault(oncePay(t, cfg, nostrrelay.Fault{Disconnect: true}))
	p, err := b.PayInvoice(ctxT(t, 30*time.Second), inv.PaymentRequest, backend.PayOptions{Timeout: 3 * time.Second})
	switch {
	case err == nil:
		if !p.Preimage.Matches(inv.PaymentHash) {
			t.Fatalf("payment returned a preimage that is not the invoice's")
		}
	case backend.Kind(err) == backend.ErrPaymentUnknown:
		t.Logf("outcome unknown (the wallet's answer and the lookup both missed): %v", err)
	default:
		t.Fatalf("payment across a relay disconnect: %v", err)
	}
	if n := payRequests(t, r, cfg); n != 1 {
		t.Errorf("relay saw %d pay_invoice requests, want exactly 1 (never retried)", n)
	}
	// Once the client has redialled, the wallet answers again.
	ctx := ctxT(t, 30*time.Second)
	for {
		got, err := b.LookupInvoice(ctx, inv.PaymentHash)
		if err == nil {
			if got.State != backend.StateSettled {
				t.Errorf("invoice is %s after the payment", got.State)
			}
			break
		}
		if !errors.Is(err, backend.ErrUnavailable) || ctx.Err() != nil {
			t.Fatalf("lookup after the disconnect: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPermissionsAndBudget: methods withheld from a connection are
// abilities its client does not have, and the budget refuses payments.
func TestPermissionsAndBudget(t *testing.T) {
	r := relay(t)
	node, _ := memory.New(context.Background(), memory.Config{})
	defer node.Close()
	svc, err := NewService(ctxT(t, 10*time.Second), ServiceConfig{Backend: node, Relays: []string{r.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()

	uri, err := svc.Connect(ctxT(t, 10*time.Second), Permissions{Methods: []string{MethodMakeInvoice, MethodLookupInvoice}})
	if err != nil {
		t.Fatal(err)
	}
	ro, err := backend.Open(ctxT(t, 10*time.Second), uri)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if ro.Supports(backend.AbilityPay) || ro.Supports(backend.AbilityHold) {
		t.Errorf("a receive-only connection claims %v", backend.Abilities(ro))
	}

	uri, err = svc.Connect(ctxT(t, 10*time.Second), Permissions{MaxPayment: backend.Sat(100), Budget: backend.Sat(150), BudgetPeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b, err := backend.Open(ctxT(t, 10*time.Second), uri)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, a := range []backend.Ability{backend.AbilityPay, backend.AbilityHold, backend.AbilityWait, backend.AbilityInfo} {
		if !b.Supports(a) {
			t.Errorf("a full connection lacks %s", a)
		}
	}
	pay := func(sat int64) error {
		inv, err := ro.CreateInvoice(ctxT(t, 10*time.Second), backend.InvoiceRequest{Amount: backend.Sat(sat)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.PayInvoice(ctxT(t, 20*time.Second), inv.PaymentRequest, backend.PayOptions{})
		return err
	}
	if err := pay(200); backend.Kind(err) != backend.ErrPaymentFailed || !strings.Contains(err.Error(), CodeQuotaExceeded) {
		t.Errorf("over the per-payment cap: %v, want QUOTA_EXCEEDED", err)
	}
	if err := pay(100); err != nil {
		t.Fatalf("within limits: %v", err)
	}
	if err := pay(100); backend.Kind(err) != backend.ErrPaymentFailed || !strings.Contains(err.Error(), CodeQuotaExceeded) {
		t.Errorf("over the period's budget: %v, want QUOTA_EXCEEDED", err)
	}
	if err := pay(50); err != nil {
		t.Errorf("what is left of the budget: %v", err)
	}
}

// TestParseURI reads the URI as wallets print it.
func TestParseURI(t *testing.T) {
	const pub = "b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4"
	const sec = "71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c"
	cfg, err := ParseURI("nostr+walletconnect://" + pub + "?relay=wss%3A%2F%2Frelay.damus.io&relay=wss://nos.lol&secret=" + sec + "&lud16=alice%40example.com")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WalletPubKey != pub || cfg.Secret != sec || len(cfg.Relays) != 2 || cfg.Relays[0] != "wss://relay.damus.io" || cfg.LUD16 != "alice@example.com" {
		t.Errorf("parsed %+v", cfg)
	}
	for _, bad := range []string{
		"nostr+walletconnect://" + pub + "?secret=" + sec,                                  // no relay
		"nostr+walletconnect://" + pub + "?relay=wss://r&secret=zz",                        // bad secret
		"nostr+walletconnect://abc?relay=wss://r&secret=" + sec,                            // bad key
		"nostr+walletconnect://" + pub + "?relay=https://r&secret=" + sec,                  // not a websocket
		"nostr+walletconnect://" + pub + "?relay=wss://r&secret=" + sec + "&budget=1",      // unknown parameter
		"nostr+walletconnect://" + pub + "?relay=wss://r&secret=" + sec + "&secret=" + sec, // two secrets
	} {
		if _, err := ParseURI(bad); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", bad, err)
		}
	}
}
