package l402_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/l402"
)

// paywall is a minimal L402 server for the client tests: it mints with
// l402.Minter, charges through a memory node and serves paid requests an
// echo of what it received.
type paywall struct {
	t        *testing.T
	node     *memnode.Node
	store    *l402.MemoryRootKeyStore
	minter   *l402.Minter
	verifier *l402.Verifier
	price    backend.MilliSat

	// challenge, when set, writes the challenge headers instead of the
	// usual pair, for servers that misbehave.
	challenge func(h http.Header, mac l402.Challenge)
	// optional serves a free variant to clients that do not ask for L402.
	optional bool
	// singleUse charges with hold invoices settled after one request is
	// served (canceled instead when failUpstream), as the proxy's
	// single-use routes do.
	singleUse    bool
	failUpstream bool
	holds        map[backend.PaymentHash]backend.Preimage
	pendingSeen  atomic.Int32

	mu       sync.Mutex
	invoices []backend.PaymentHash
	served   atomic.Int32
}

func newPaywall(t *testing.T, price backend.MilliSat) (*paywall, *httptest.Server) {
	t.Helper()
	node, err := memnode.New(memnode.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	store := l402.NewMemoryRootKeyStore()
	p := &paywall{
		t: t, node: node, store: store, price: price,
		minter: l402.NewMinter(store, "test"), verifier: l402.NewVerifier(store),
		holds: make(map[backend.PaymentHash]backend.Preimage),
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv
}

func (p *paywall) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if mac, ok := l402.PendingFromHeader(r.Header); ok {
		p.pendingSeen.Add(1)
		if p.singleUse {
			p.servePending(w, r, mac)
			return
		}
		p.t.Errorf("%s %s: in-flight form sent to a route whose challenge did not advertise it", r.Method, r.URL.Path)
		// Fall through to a fresh challenge: this route wants preimages.
	} else if tok, err := l402.FromHeader(r.Header); err == nil {
		err = p.verifier.Verify(ctx, tok, l402.Request{Service: "echo", Path: r.URL.Path, Method: r.Method})
		if err == nil {
			body, _ := io.ReadAll(r.Body)
			p.served.Add(1)
			fmt.Fprintf(w, "paid %s %s %s", r.Method, r.URL.Path, body)
			return
		}
	}
	if p.optional && r.Header.Get(l402.HeaderAcceptAuthenticate) == "" {
		fmt.Fprint(w, "free with ads")
		return
	}
	var inv *backend.Invoice
	var err error
	if p.singleUse {
		var pre backend.Preimage
		if pre, err = backend.NewPreimage(); err == nil {
			inv, err = backend.New(p.node, backend.Options{}).CreateHoldInvoice(ctx, pre.Hash(), backend.InvoiceRequest{Amount: p.price, Memo: "test"})
			p.mu.Lock()
			p.holds[pre.Hash()] = pre
			p.mu.Unlock()
		}
	} else {
		inv, err = backend.New(p.node, backend.Options{}).CreateInvoice(ctx, backend.InvoiceRequest{Amount: p.price, Memo: "test"})
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	mac, _, err := p.minter.Mint(ctx, inv.PaymentHash,
		l402.ServicesCaveat(l402.Service{Name: "echo"}), l402.PathPrefixCaveat(routeOf(r.URL.Path)))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	p.mu.Lock()
	p.invoices = append(p.invoices, inv.PaymentHash)
	p.mu.Unlock()
	ch := l402.Challenge{Macaroon: mac, Invoice: inv.PaymentRequest, InFlight: p.singleUse}
	if p.challenge != nil {
		p.challenge(w.Header(), ch)
	} else {
		l402.AddChallenges(w.Header(), ch)
	}
	w.WriteHeader(http.StatusPaymentRequired)
	fmt.Fprint(w, "payment required")
}

// servePending serves a macaroon presented without its preimage once its
// hold invoice is paid, then settles (or cancels) the invoice.
func (p *paywall) servePending(w http.ResponseWriter, r *http.Request, mac *macaroon.Macaroon) {
	ctx := r.Context()
	id, err := p.verifier.VerifyPending(ctx, mac, l402.Request{Service: "echo", Path: r.URL.Path, Method: r.Method})
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	inv, err := p.node.LookupInvoice(ctx, id.PaymentHash)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if inv.State == backend.StateOpen {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "payment_pending", http.StatusPaymentRequired)
		return
	}
	if inv.State != backend.StateHeld {
		http.Error(w, "used", http.StatusUnauthorized)
		return
	}
	p.mu.Lock()
	pre := p.holds[id.PaymentHash]
	p.mu.Unlock()
	if p.failUpstream {
		http.Error(w, "upstream failed", http.StatusInternalServerError)
		if err := p.node.CancelInvoice(context.WithoutCancel(ctx), id.PaymentHash); err != nil {
			p.t.Error(err)
		}
		return
	}
	p.served.Add(1)
	fmt.Fprintf(w, "paid once %s", r.URL.Path)
	if err := p.node.SettleInvoice(context.WithoutCancel(ctx), pre); err != nil {
		p.t.Error(err)
	}
}

// settled counts the paywall's invoices that were paid.
func (p *paywall) settled() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, h := range p.invoices {
		inv, err := p.node.LookupInvoice(context.Background(), h)
		if err != nil {
			p.t.Fatal(err)
		}
		if inv.State == backend.StateSettled {
			n++
		}
	}
	return n
}

type payments struct {
	mu sync.Mutex
	r  []l402.Receipt
}

func (p *payments) record(_ context.Context, r l402.Receipt) {
	p.mu.Lock()
	p.r = append(p.r, r)
	p.mu.Unlock()
}

func (p *payments) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.r)
}

func newClient(pw *paywall, maxPrice backend.MilliSat) (*http.Client, *l402.Transport, *payments) {
	paid := &payments{}
	tr := &l402.Transport{Payer: pw.node, MaxPrice: maxPrice, OnPayment: paid.record}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, tr, paid
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	return do(t, c, http.MethodGet, url)
}

func TestTransportPaysAndReusesToken(t *testing.T) {
	pw, srv := newPaywall(t, backend.Sat(10))
	c, _, paid := newClient(pw, backend.Sat(10))

	resp, body := get(t, c, srv.URL+"/paid/one")
	if resp.StatusCode != http.StatusOK || body != "paid GET /paid/one " {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	r, ok := l402.ReceiptFromResponse(resp)
	if !ok {
		t.Fatal("no receipt on the paid response")
	}
	if r.Amount != backend.Sat(10) || r.Scheme != "L402" || r.Origin != l402.Origin(resp.Request.URL) {
		t.Fatalf("receipt %+v", r)
	}
	if pw.settled() != 1 || paid.count() != 1 || paid.r[0].PaymentHash != r.PaymentHash {
		t.Fatalf("settled %d, reported %d", pw.settled(), paid.count())
	}

	// The cached token serves the next request without a new payment.
	resp, body = get(t, c, srv.URL+"/paid/two")
	if resp.StatusCode != http.StatusOK || body != "paid GET /paid/two " {
		t.Fatalf("second request: status %d body %q", resp.StatusCode, body)
	}
	if _, ok := l402.ReceiptFromResponse(resp); ok {
		t.Fatal("a request served with the cached token has a receipt")
	}
	if len(pw.invoices) != 1 || paid.count() != 1 {
		t.Fatalf("second request made %d invoices, %d payments", len(pw.invoices), paid.count())
	}
}

func TestTransportRefusesBeforePaying(t *testing.T) {
	cases := []struct {
		name      string
		maxPrice  backend.MilliSat
		challenge func(h http.Header, ch l402.Challenge)
		now       func() time.Time
		want      error
		why       string
	}{
		{name: "over the limit", maxPrice: backend.Sat(9), want: l402.ErrPriceTooHigh, why: "asks 10 sat, limit is 9 sat"},
		{name: "no limit set", maxPrice: 0, want: l402.ErrPriceTooHigh, why: "limit is 0 sat"},
		{name: "invoice for another hash", maxPrice: backend.Sat(10), want: l402.ErrBadChallenge, why: "macaroon commits to",
			challenge: func(h http.Header, ch l402.Challenge) {
				other, _, err := l402.NewMinter(l402.NewMemoryRootKeyStore(), "").Mint(context.Background(), backend.PaymentHash{1})
				if err != nil {
					panic(err)
				}
				ch.Macaroon = other
				l402.AddChallenges(h, ch)
			}},
		{name: "invoice expired", maxPrice: backend.Sat(10), want: l402.ErrBadChallenge, why: "expired",
			now: func() time.Time { return time.Now().Add(2 * time.Hour) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pw, srv := newPaywall(t, backend.Sat(10))
			pw.challenge = c.challenge
			client, tr, paid := newClient(pw, c.maxPrice)
			tr.Now = c.now
			resp, err := client.Get(srv.URL + "/paid/x")
			if err == nil {
				resp.Body.Close()
				t.Fatalf("status %d, want an error", resp.StatusCode)
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("err = %v, want %v saying %q", err, c.want, c.why)
			}
			if pw.settled() != 0 || paid.count() != 0 {
				t.Fatal("paid although refused")
			}
		})
	}
}

func TestTransportReplaysBody(t *testing.T) {
	pw, srv := newPaywall(t, backend.Sat(1))
	c, _, _ := newClient(pw, backend.Sat(1))
	resp, err := c.Post(srv.URL+"/paid/upload", "text/plain", bytes.NewReader([]byte("hello body")))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "paid POST /paid/upload hello body" {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
}

func TestTransportRefusesUnreplayableBody(t *testing.T) {
	pw, srv := newPaywall(t, backend.Sat(1))
	c, _, paid := newClient(pw, backend.Sat(1))
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/paid/upload", io.NopCloser(strings.NewReader("stream")))
	if err != nil {
		t.Fatal(err)
	}
	if req.GetBody != nil {
		t.Fatal("test needs a request without GetBody")
	}
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, l402.ErrNotReplayable) {
		t.Fatalf("err = %v, want ErrNotReplayable", err)
	}
	if pw.settled() != 0 || paid.count() != 0 {
		t.Fatal("paid for a request it cannot retry")
	}
}

func TestTransportPrefersL402(t *testing.T) {
	pw, srv := newPaywall(t, backend.Sat(2))
	pw.challenge = func(h http.Header, ch l402.Challenge) {
		// An LSAT challenge first whose invoice is unusable: a client
		// that took it instead of the L402 one would fail.
		h.Add("WWW-Authenticate", l402.Challenge{Macaroon: ch.Macaroon, Invoice: "lnbcrt1garbage"}.Header("LSAT"))
		h.Add("WWW-Authenticate", ch.Header("L402"))
	}
	c, _, paid := newClient(pw, backend.Sat(2))
	resp, body := get(t, c, srv.URL+"/paid/x")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if paid.count() != 1 || paid.r[0].Scheme != "L402" {
		t.Fatalf("payments %+v", paid.r)
	}
}

func TestTransportLSATOnlyServer(t *testing.T) {
	pw, srv := newPaywall(t, backend.Sat(2))
	pw.challenge = func(h http.Header, ch l402.Challenge) { h.Set("WWW-Authenticate", ch.Header("LSAT")) }
	c, _, paid := newClient(pw, backend.Sat(2))
	resp, body := get(t, c, srv.URL+"/paid/x")
	if resp.StatusCode != http.StatusOK || paid.count() != 1 || paid.r[0].Scheme != "LSAT" {
		t.Fatalf("status %d body %q payments %+v", resp.StatusCode, body, paid.r)
	}
}

func TestTransportOptionalRoute(t *testing.T) {
	pw, srv := newPaywall(t, backend.Sat(3))
	pw.optional = true
	_, plain := get(t, srv.Client(), srv.URL+"/paid/episode")
	if plain != "free with ads" {
		t.Fatalf("plain client got %q", plain)
	}
	c, _, paid := newClient(pw, backend.Sat(3))
	resp, body := get(t, c, srv.URL+"/paid/episode")
	if resp.StatusCode != http.StatusOK || body != "paid GET /paid/episode " || paid.count() != 1 {
		t.Fatalf("L402 client: status %d body %q, %d payments", resp.StatusCode, body, paid.count())
	}
}

func TestTransportConcurrentRequestsPayOnce(t *testing.T) {
	pw, srv := newPaywall(t, backend.Sat(1))
	c, _, paid := newClient(pw, backend.Sat(1))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			resp, err := c.Get(fmt.Sprintf("%s/paid/%d", srv.URL, i))
			if err != nil {
				errs <- err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("request %d: status %d", i, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if paid.count() != 1 || pw.settled() != 1 {
		t.Fatalf("8 concurrent requests made %d payments (%d settled)", paid.count(), pw.settled())
	}
	if n := pw.served.Load(); n != 8 {
		t.Fatalf("served %d paid requests, want 8", n)
	}
}

func TestTransportPaysAgainWhenTokenRefused(t *testing.T) {
	pw, srv := newPaywall(t, backend.Sat(1))
	c, tr, paid := newClient(pw, backend.Sat(1))
	tr.Tokens = l402.NewMemoryTokenCache()
	if resp, _ := get(t, c, srv.URL+"/paid/a"); resp.StatusCode != http.StatusOK {
		t.Fatal("first request not served")
	}
	// The server revokes the token the client holds.
	tok, ok := tr.Tokens.Get(l402.Origin(mustURL(t, srv.URL)) + "/paid/")
	if !ok {
		t.Fatal("token not in the configured cache")
	}
	if err := pw.store.Revoke(context.Background(), tok.ID.TokenID); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, c, srv.URL+"/paid/b")
	if resp.StatusCode != http.StatusOK || body != "paid GET /paid/b " {
		t.Fatalf("after revocation: status %d body %q", resp.StatusCode, body)
	}
	if paid.count() != 2 || pw.settled() != 2 {
		t.Fatalf("%d payments, %d settled; want 2", paid.count(), pw.settled())
	}
}

func TestTransportPassesOtherResponses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(l402.HeaderAcceptAuthenticate) != "L402" {
			t.Errorf("Accept-Authenticate = %q", r.Header.Get(l402.HeaderAcceptAuthenticate))
		}
		if r.URL.Path == "/402" {
			w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
			w.WriteHeader(http.StatusPaymentRequired)
			fmt.Fprint(w, "pay some other way")
			return
		}
		fmt.Fprint(w, "free")
	}))
	defer srv.Close()
	paid := &payments{}
	c := &http.Client{Transport: &l402.Transport{MaxPrice: backend.Sat(100), OnPayment: paid.record}}
	if resp, body := get(t, c, srv.URL+"/free"); resp.StatusCode != 200 || body != "free" {
		t.Fatalf("free: %d %q", resp.StatusCode, body)
	}
	if resp, body := get(t, c, srv.URL+"/402"); resp.StatusCode != 402 || body != "pay some other way" {
		t.Fatalf("402 without L402 challenge: %d %q", resp.StatusCode, body)
	}
	if paid.count() != 0 {
		t.Fatal("paid something")
	}
}

// failingPayer refuses every payment, as a node with no route would.
type failingPayer struct{}

func (failingPayer) PayInvoice(context.Context, string, backend.PayOptions) (*backend.Payment, error) {
	return nil, fmt.Errorf("no route: %w", backend.ErrPaymentFailed)
}

func TestTransportPaymentFailure(t *testing.T) {
	pw, srv := newPaywall(t, backend.Sat(1))
	c := &http.Client{Transport: &l402.Transport{Payer: failingPayer{}, MaxPrice: backend.Sat(1)}}
	resp, err := c.Get(srv.URL + "/paid/x")
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, backend.ErrPaymentFailed) {
		t.Fatalf("err = %v, want ErrPaymentFailed", err)
	}
	if pw.settled() != 0 {
		t.Fatal("invoice settled")
	}
	c = &http.Client{Transport: &l402.Transport{MaxPrice: backend.Sat(1)}}
	if _, err := c.Get(srv.URL + "/paid/x"); !errors.Is(err, l402.ErrNoPayer) {
		t.Fatalf("no payer: err = %v", err)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestTransportSingleUseHoldInvoice(t *testing.T) {
	pw, srv := newPaywall(t, backend.Sat(5))
	pw.singleUse = true
	c, tr, paid := newClient(pw, backend.Sat(5))
	tr.InFlightAfter = 50 * time.Millisecond
	for i := 1; i <= 2; i++ {
		resp, body := get(t, c, srv.URL+"/paid/once") // get closes the body
		if resp.StatusCode != http.StatusOK || body != "paid once /paid/once" {
			t.Fatalf("request %d: status %d body %q", i, resp.StatusCode, body)
		}
		// Each use is paid: a single-use token is not reused.
		if paid.count() != i || pw.settled() != i {
			t.Fatalf("request %d: %d payments reported, %d settled", i, paid.count(), pw.settled())
		}
		if paid.r[i-1].Amount != backend.Sat(5) {
			t.Fatalf("receipt %+v", paid.r[i-1])
		}
	}
	if pw.pendingSeen.Load() < 2 {
		t.Fatalf("server saw %d in-flight presentations, want at least 2", pw.pendingSeen.Load())
	}
}

func TestTransportSingleUseHoldUpstreamFails(t *testing.T) {
	pw, srv := newPaywall(t, backend.Sat(5))
	pw.singleUse, pw.failUpstream = true, true
	c, tr, paid := newClient(pw, backend.Sat(5))
	tr.InFlightAfter = 50 * time.Millisecond
	resp, body := get(t, c, srv.URL+"/paid/once")
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "upstream failed") {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	// The server canceled the hold: the payment came back, nothing paid.
	if paid.count() != 0 || pw.settled() != 0 {
		t.Fatalf("%d payments reported, %d settled; want none", paid.count(), pw.settled())
	}
	inv, err := pw.node.LookupInvoice(context.Background(), pw.invoices[0])
	if err != nil || inv.State != backend.StateCanceled {
		t.Fatalf("invoice %v, %v; want canceled", inv, err)
	}
}

// slowPayer pays through the node after a delay, as a payment over several
// hops takes time.
type slowPayer struct {
	node  backend.Payer
	delay time.Duration
}

func (s slowPayer) PayInvoice(ctx context.Context, bolt11 string, o backend.PayOptions) (*backend.Payment, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.node.PayInvoice(ctx, bolt11, o)
}

// A payment slower than InFlightAfter to a route that did not advertise the
// in-flight form: the Transport waits for its payment and presents the
// preimage, never the macaroon alone.
func TestTransportSlowPaymentToPlainRoute(t *testing.T) {
	pw, srv := newPaywall(t, backend.Sat(5))
	paid := &payments{}
	c := &http.Client{Transport: &l402.Transport{
		Payer: slowPayer{pw.node, 300 * time.Millisecond}, MaxPrice: backend.Sat(5),
		OnPayment: paid.record, InFlightAfter: 20 * time.Millisecond,
	}}
	resp, body := get(t, c, srv.URL+"/paid/slow")
	if resp.StatusCode != http.StatusOK || body != "paid GET /paid/slow " {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if pw.pendingSeen.Load() != 0 {
		t.Fatalf("server saw %d in-flight presentations, want none", pw.pendingSeen.Load())
	}
	if paid.count() != 1 || pw.settled() != 1 {
		t.Fatalf("%d payments, %d settled", paid.count(), pw.settled())
	}
	if _, ok := l402.ReceiptFromResponse(resp); !ok {
		t.Fatal("no receipt")
	}
}

// routeOf is the paywall's route for a path: its first segment.
func routeOf(path string) string {
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return "/" + seg + "/"
}

// Tokens are cached per route: alternating between two routes of one
// server pays once for each, not on every switch.
func TestTransportTokenPerRoute(t *testing.T) {
	pw, srv := newPaywall(t, backend.Sat(1))
	c, tr, paid := newClient(pw, backend.Sat(1))
	tr.Tokens = l402.NewMemoryTokenCache()
	for range 3 {
		for _, path := range []string{"/a/1", "/b/2", "/a/deeper/3"} {
			if resp, body := get(t, c, srv.URL+path); resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: status %d body %q", path, resp.StatusCode, body)
			}
		}
	}
	if paid.count() != 2 {
		t.Fatalf("%d payments for two routes, want 2", paid.count())
	}
	origin := l402.Origin(mustURL(t, srv.URL))
	for _, key := range []string{origin + "/a/", origin + "/b/"} {
		tok, ok := tr.Tokens.Get(key)
		if !ok || l402.CacheKey(origin, tok) != key {
			t.Fatalf("no token cached under %s", key)
		}
	}
}

// A request that gives up while its payment is in flight does not lose the
// payment: the token is cached and reported when the payment completes.
func TestTransportCanceledRequestKeepsPayment(t *testing.T) {
	pw, srv := newPaywall(t, backend.Sat(2))
	paid := &payments{}
	c := &http.Client{Transport: &l402.Transport{
		Payer: slowPayer{pw.node, 300 * time.Millisecond}, MaxPrice: backend.Sat(2),
		OnPayment: paid.record, InFlightAfter: time.Minute,
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/paid/x", nil)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("status %d; want the request to give up", resp.StatusCode)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for paid.count() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the abandoned payment was never reported")
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, body := get(t, c, srv.URL+"/paid/y")
	if resp.StatusCode != http.StatusOK || body != "paid GET /paid/y " {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if paid.count() != 1 || pw.settled() != 1 {
		t.Fatalf("%d payments, %d settled; want the first one reused", paid.count(), pw.settled())
	}
}
