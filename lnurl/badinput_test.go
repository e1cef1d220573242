package lnurl_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/lnurl"
)

// rogue is a LNURL-pay service that misbehaves on purpose, each test
// choosing how. Its invoices are real ones from a memory node, so only the
// misbehaviour under test is wrong with them.
type rogue struct {
	t        *testing.T
	srv      *httptest.Server
	node     *backend.Backend
	metadata string
	min, max int64
	// params, callback and verify answer their endpoint; nil means the
	// well-behaved answer.
	params   func(w http.ResponseWriter, r *http.Request)
	callback func(w http.ResponseWriter, r *http.Request, amount backend.MilliSat)
	verify   func(w http.ResponseWriter, r *http.Request, pr string)
	mu       sync.Mutex
	made     map[string]string // invoices made, by payment hash
}

func sha256Of(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func newRogue(t *testing.T) *rogue {
	t.Helper()
	ro := &rogue{t: t, node: newMemoryNode(t), min: 1000, max: 10_000_000, made: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/lnurlp/alice", func(w http.ResponseWriter, r *http.Request) {
		if ro.params != nil {
			ro.params(w, r)
			return
		}
		writeJSON(w, map[string]any{
			"tag": "payRequest", "callback": ro.srv.URL + "/cb?user=alice",
			"minSendable": ro.min, "maxSendable": ro.max, "metadata": ro.metadata,
		})
	})
	mux.HandleFunc("/cb", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("user") != "alice" {
			t.Errorf("callback lost its own query: %s", r.URL.RawQuery)
		}
		var amount int64
		if _, err := fmt.Sscan(r.URL.Query().Get("amount"), &amount); err != nil {
			t.Errorf("callback got amount %q", r.URL.Query().Get("amount"))
		}
		if ro.callback != nil {
			ro.callback(w, r, backend.MilliSat(amount))
			return
		}
		pr := ro.invoice(backend.MilliSat(amount), ro.metadata)
		writeJSON(w, map[string]any{"pr": pr, "routes": []any{}, "verify": ro.srv.URL + "/verify/" + hashOf(t, pr)})
	})
	mux.HandleFunc("/verify/{hash}", func(w http.ResponseWriter, r *http.Request) {
		ro.mu.Lock()
		pr := ro.made[r.PathValue("hash")]
		ro.mu.Unlock()
		if ro.verify != nil {
			ro.verify(w, r, pr)
			return
		}
		writeJSON(w, map[string]any{"status": "OK", "settled": false, "preimage": nil, "pr": pr})
	})
	ro.srv = httptest.NewServer(mux)
	t.Cleanup(ro.srv.Close)
	ro.metadata = `[["text/plain","rogue test service"],["text/identifier","` + ro.address() + `"]]`
	return ro
}

// invoice makes a real invoice for amount committing to sha256(metadata).
func (ro *rogue) invoice(amount backend.MilliSat, metadata string) string {
	h := sha256Of(metadata)
	inv, err := ro.node.CreateInvoice(context.Background(), backend.InvoiceRequest{Amount: amount, DescriptionHash: &h})
	if err != nil {
		ro.t.Fatal(err)
	}
	ro.mu.Lock()
	ro.made[inv.PaymentHash.String()] = inv.PaymentRequest
	ro.mu.Unlock()
	return inv.PaymentRequest
}

// address is the rogue's lightning address; the host is loopback, so the
// client uses http.
func (ro *rogue) address() string { return "alice@" + strings.TrimPrefix(ro.srv.URL, "http://") }

func (ro *rogue) client(t *testing.T) (*backend.Backend, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := lnurl.New(ctx, lnurl.Config{Address: ro.address(), PollInterval: 20 * time.Millisecond, CallTimeout: 5 * time.Second})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func hashOf(t *testing.T, pr string) string {
	d, err := backend.DecodeInvoice(pr)
	if err != nil {
		t.Fatal(err)
	}
	return d.PaymentHash.String()
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantRefused checks err wraps sentinel and says why, in words.
func wantRefused(t *testing.T, err, sentinel error, why ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want an error wrapping %q", sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %q does not wrap %q", err, sentinel)
	}
	for _, w := range why {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	t.Logf("refused: %v", err)
}

// Each bad input of issue 8 item 4 is refused with its reason, and a
// refused invoice is not handed out.
func TestBadInput(t *testing.T) {
	const amount = backend.MilliSat(21_000)

	t.Run("MalformedLNURL", func(t *testing.T) {
		for _, s := range []string{"LNURL1NOTVALID", "lnurl1dp68gurn8ghj7um9wfmxjcm99e3k7mf0v9cxj0m385ekvcenxc6r2c35xvukxefcv5mkvv34x5ekzd3ev56nyd3hxqurzepexejxxepnxscrvwfnv9nxzcn9xq6xyefhvgcxxcmyxymnserxfq5fnq", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"} {
			_, err := lnurl.New(ctx10(t), lnurl.Config{LNURL: s})
			wantRefused(t, err, backend.ErrInvalid, "malformed LNURL")
		}
		// A well-formed LNURL to plain http on a clearnet host is refused too.
		enc, err := lnurl.Encode("http://example.com/pay")
		if err != nil {
			t.Fatal(err)
		}
		_, err = lnurl.New(ctx10(t), lnurl.Config{LNURL: enc})
		wantRefused(t, err, backend.ErrInvalid, "plain http")
	})

	t.Run("MalformedAddress", func(t *testing.T) {
		for _, s := range []string{"alice", "alice@", "@example.com", "al ice@example.com", "alice@example.com/x", "Alice!@example.com"} {
			_, err := lnurl.New(ctx10(t), lnurl.Config{Address: s})
			wantRefused(t, err, backend.ErrInvalid, "malformed lightning address")
		}
		_, err := backend.Open(ctx10(t), "lnurl://al%20ice@example.com")
		wantRefused(t, err, backend.ErrInvalid, "malformed lightning address")
		_, err = backend.Open(ctx10(t), "lnurl:LNURL1BAD")
		wantRefused(t, err, backend.ErrInvalid, "malformed LNURL")
	})

	t.Run("NotPayRequest", func(t *testing.T) {
		ro := newRogue(t)
		ro.params = func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, map[string]any{"tag": "withdrawRequest", "callback": ro.srv.URL + "/cb", "k1": "x"})
		}
		_, err := ro.client(t)
		wantRefused(t, err, backend.ErrInvalid, `tag "withdrawRequest"`)
	})

	t.Run("ParamsError", func(t *testing.T) {
		ro := newRogue(t)
		ro.params = func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, map[string]any{"status": "ERROR", "reason": "user alice is suspended"})
		}
		_, err := ro.client(t)
		wantRefused(t, err, backend.ErrInvalid, "user alice is suspended")
	})

	t.Run("MetadataNamesAnotherAddress", func(t *testing.T) {
		// LUD-16 checks nothing of this on the wallet's side, and a
		// custom-domain alias serves its provider's metadata: accepted,
		// the invoice still bound to it by its description hash.
		ro := newRogue(t)
		ro.metadata = strings.Replace(ro.metadata, "alice@", "mallory@", 1)
		c, err := ro.client(t)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: amount}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("CallbackError", func(t *testing.T) {
		ro := newRogue(t)
		ro.callback = func(w http.ResponseWriter, r *http.Request, _ backend.MilliSat) {
			writeJSON(w, map[string]any{"status": "ERROR", "reason": "daily limit reached"})
		}
		c, err := ro.client(t)
		if err != nil {
			t.Fatal(err)
		}
		inv, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: amount})
		wantRefused(t, err, backend.ErrInvalid, "callback answered ERROR", "daily limit reached")
		if inv != nil {
			t.Errorf("an invoice came back with the error: %+v", inv)
		}
	})

	t.Run("AmountOutOfRange", func(t *testing.T) {
		ro := newRogue(t)
		var called atomic.Bool
		ro.callback = func(w http.ResponseWriter, r *http.Request, _ backend.MilliSat) { called.Store(true) }
		c, err := ro.client(t)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []backend.MilliSat{999, 10_000_001} {
			_, err = c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: a})
			wantRefused(t, err, backend.ErrInvalid, "outside the service's range 1000..10000000 msat")
		}
		_, err = c.CreateInvoice(ctx10(t), backend.InvoiceRequest{})
		wantRefused(t, err, backend.ErrInvalid, "needs an amount")
		if called.Load() {
			t.Errorf("the callback was asked for an amount out of range")
		}
	})

	t.Run("AmountMismatch", func(t *testing.T) {
		ro := newRogue(t)
		ro.callback = func(w http.ResponseWriter, r *http.Request, a backend.MilliSat) {
			writeJSON(w, map[string]any{"pr": ro.invoice(a+1000, ro.metadata), "routes": []any{}})
		}
		c, err := ro.client(t)
		if err != nil {
			t.Fatal(err)
		}
		inv, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: amount})
		wantRefused(t, err, backend.ErrInvalid, "is for 22000 msat, asked 21000 msat")
		if inv != nil {
			t.Errorf("an invoice came back with the error")
		}
	})

	t.Run("DescriptionHashMismatch", func(t *testing.T) {
		ro := newRogue(t)
		ro.callback = func(w http.ResponseWriter, r *http.Request, a backend.MilliSat) {
			writeJSON(w, map[string]any{"pr": ro.invoice(a, `[["text/plain","something else"]]`), "routes": []any{}})
		}
		c, err := ro.client(t)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: amount})
		wantRefused(t, err, backend.ErrInvalid, "description hash", "is not sha256(metadata)")
	})

	t.Run("MemoInsteadOfDescriptionHash", func(t *testing.T) {
		ro := newRogue(t)
		ro.callback = func(w http.ResponseWriter, r *http.Request, a backend.MilliSat) {
			inv, err := ro.node.CreateInvoice(context.Background(), backend.InvoiceRequest{Amount: a, Memo: "plain memo"})
			if err != nil {
				t.Error(err)
			}
			writeJSON(w, map[string]any{"pr": inv.PaymentRequest, "routes": []any{}})
		}
		c, err := ro.client(t)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: amount})
		wantRefused(t, err, backend.ErrInvalid, "no description hash")
	})

	t.Run("GarbageInvoice", func(t *testing.T) {
		ro := newRogue(t)
		ro.callback = func(w http.ResponseWriter, r *http.Request, a backend.MilliSat) {
			writeJSON(w, map[string]any{"pr": "lnbcrt1notaninvoice", "routes": []any{}})
		}
		c, err := ro.client(t)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: amount})
		wantRefused(t, err, backend.ErrInvalid, "callback's invoice", "bolt11")
	})

	t.Run("NoInvoice", func(t *testing.T) {
		ro := newRogue(t)
		ro.callback = func(w http.ResponseWriter, r *http.Request, a backend.MilliSat) {
			writeJSON(w, map[string]any{"routes": []any{}})
		}
		c, err := ro.client(t)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: amount})
		wantRefused(t, err, backend.ErrInvalid, `no "pr"`)
	})

	t.Run("VerifyGarbage", func(t *testing.T) {
		for name, answer := range map[string]func(pr string) string{
			"html":         func(string) string { return "<html>hello</html>" },
			"empty object": func(string) string { return "{}" },
			"wrong preimage": func(pr string) string {
				return `{"status":"OK","settled":true,"preimage":"` + backend.Preimage{9}.String() + `","pr":"` + pr + `"}`
			},
			"other invoice": func(string) string { return `{"status":"OK","settled":false,"preimage":null,"pr":"lnbcrt1other"}` },
		} {
			t.Run(name, func(t *testing.T) {
				ro := newRogue(t)
				ro.verify = func(w http.ResponseWriter, r *http.Request, pr string) {
					w.Header().Set("Content-Type", "application/json")
					fmt.Fprint(w, answer(pr))
				}
				c, err := ro.client(t)
				if err != nil {
					t.Fatal(err)
				}
				inv, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: amount})
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.LookupInvoice(ctx10(t), inv.PaymentHash)
				wantRefused(t, err, backend.ErrInvalid, "verify URL")
				_, err = c.WaitInvoice(ctx10(t), inv.PaymentHash)
				wantRefused(t, err, backend.ErrInvalid, "verify URL")
			})
		}
	})

	t.Run("VerifyNotFound", func(t *testing.T) {
		ro := newRogue(t)
		ro.verify = func(w http.ResponseWriter, r *http.Request, pr string) {
			writeJSON(w, map[string]any{"status": "ERROR", "reason": "Not found"})
		}
		c, err := ro.client(t)
		if err != nil {
			t.Fatal(err)
		}
		inv, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: amount})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.LookupInvoice(ctx10(t), inv.PaymentHash)
		wantRefused(t, err, backend.ErrNotFound, "Not found")
	})

	t.Run("NoVerifyURL", func(t *testing.T) {
		ro := newRogue(t)
		ro.callback = func(w http.ResponseWriter, r *http.Request, a backend.MilliSat) {
			writeJSON(w, map[string]any{"pr": ro.invoice(a, ro.metadata), "routes": []any{}})
		}
		c, err := ro.client(t)
		if err != nil {
			t.Fatal(err)
		}
		inv, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: amount})
		if err != nil {
			t.Fatalf("an invoice without verify URL is still an invoice: %v", err)
		}
		_, err = c.LookupInvoice(ctx10(t), inv.PaymentHash)
		wantRefused(t, err, backend.ErrUnsupported, "no LUD-21 verify URL")
		_, err = c.WaitInvoice(ctx10(t), inv.PaymentHash)
		wantRefused(t, err, backend.ErrUnsupported, "no LUD-21 verify URL")
	})

	t.Run("BadVerifyURL", func(t *testing.T) {
		ro := newRogue(t)
		ro.callback = func(w http.ResponseWriter, r *http.Request, a backend.MilliSat) {
			writeJSON(w, map[string]any{"pr": ro.invoice(a, ro.metadata), "routes": []any{}, "verify": "http://example.com/verify"})
		}
		c, err := ro.client(t)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: amount})
		wantRefused(t, err, backend.ErrInvalid, "verify URL", "plain http")
	})

	t.Run("UnknownHash", func(t *testing.T) {
		ro := newRogue(t)
		c, err := ro.client(t)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.LookupInvoice(ctx10(t), backend.Preimage{3}.Hash())
		wantRefused(t, err, backend.ErrNotFound, "not created by this client")
		_, err = c.WaitInvoice(ctx10(t), backend.Preimage{3}.Hash())
		wantRefused(t, err, backend.ErrNotFound)
	})

	t.Run("CallerChoices", func(t *testing.T) {
		ro := newRogue(t)
		c, err := ro.client(t)
		if err != nil {
			t.Fatal(err)
		}
		pre := backend.Preimage{4}
		_, err = c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: amount, Preimage: &pre})
		wantRefused(t, err, backend.ErrUnsupported, "chooses the preimage")
		h := [32]byte{5}
		_, err = c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: amount, DescriptionHash: &h})
		wantRefused(t, err, backend.ErrUnsupported, "description hash", "metadata")
		_, err = c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: -5})
		wantRefused(t, err, backend.ErrInvalid, "negative amount")
	})

	t.Run("Unreachable", func(t *testing.T) {
		// A port that was just listened on and closed: nothing answers.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		_, err = lnurl.New(ctx10(t), lnurl.Config{Address: "alice@" + addr})
		wantRefused(t, err, backend.ErrUnavailable, "pay parameters")
		_, err = backend.Open(ctx10(t), "lnurl://alice@"+addr)
		wantRefused(t, err, backend.ErrUnavailable)
	})

	t.Run("ServiceDownBehindProxy", func(t *testing.T) {
		// A reverse proxy in front of a dead service answers 502 with HTML.
		ro := newRogue(t)
		ro.callback = func(w http.ResponseWriter, r *http.Request, _ backend.MilliSat) {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html><h1>502 Bad Gateway</h1></html>")
		}
		c, err := ro.client(t)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: amount})
		wantRefused(t, err, backend.ErrUnavailable, "HTTP 502")
	})

	t.Run("SlowService", func(t *testing.T) {
		ro := newRogue(t)
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ro.callback = func(w http.ResponseWriter, r *http.Request, _ backend.MilliSat) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		c, err := lnurl.New(ctx, lnurl.Config{Address: ro.address(), CallTimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.CreateInvoice(ctx, backend.InvoiceRequest{Amount: amount})
		wantRefused(t, err, backend.ErrUnavailable, "callback")
	})
}
