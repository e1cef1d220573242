package lnd_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/conformance"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/lnd"
	"github.com/l402kit/l402kit/lnd/regtest"
	"github.com/l402kit/l402kit/proxy"
	"github.com/l402kit/l402kit/proxy/proxytest"
)

// TestRegtest runs the contract and the proxy flow against real LND nodes
// on a regtest chain in containers, started once for all subtests. Without
// a Docker engine or without the images (make images) it skips, saying so;
// with L402KIT_REQUIRE_REGTEST=1 that is a failure.
func TestRegtest(t *testing.T) {
	if testing.Short() && os.Getenv(regtest.EnvRequire) != "1" {
		t.Skip("-short: the regtest suite starts three containers")
	}
	ctx := context.Background()
	start := time.Now()
	net, err := regtest.StartLND(ctx, regtest.WithLogf(t.Logf))
	regtest.Require(t, err)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := net.Close(cctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	tm := net.Timings()
	t.Logf("timing: images %s (compiled now: %v), harness start %s, total %s",
		tm.Images.Round(time.Millisecond), tm.Compile, tm.Start.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	t.Run("OpenURL", func(t *testing.T) {
		b, err := backend.Open(ctx, net.AliceURL())
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		info, err := b.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want, err := net.Backend().Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NodeID != want.NodeID || info.Network != "regtest" || info.Alias != "alice" {
			t.Fatalf("Info through AliceURL = %+v, through the harness = %+v", info, want)
		}
		if err := b.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		// The REST client As hands out reaches what the adapter does not
		// cover: Alice's channel from Bob.
		var hc *http.Client
		var base url.URL
		if !b.As(&hc) || !b.As(&base) {
			t.Fatal("As(**http.Client) or As(*url.URL) failed")
		}
		resp, err := hc.Get(base.JoinPath("/v1/channels").String() + "?active_only=true")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var chans struct {
			Channels []struct {
				Active bool `json:"active"`
			} `json:"channels"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&chans); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/channels through As: %s, %v", resp.Status, err)
		}
		if len(chans.Channels) != 1 || !chans.Channels[0].Active {
			t.Fatalf("Alice's channels through As: %+v, want one active", chans.Channels)
		}
	})
	t.Run("WrongSecretsAreInvalid", func(t *testing.T) {
		alice, _ := url.Parse(net.AliceURL())
		bob, _ := url.Parse(net.BobURL())
		for _, c := range []struct{ name, mac, cert string }{
			{"bob's macaroon", bob.Query().Get("macaroon"), alice.Query().Get("tlscert")},
			{"bob's certificate", alice.Query().Get("macaroon"), bob.Query().Get("tlscert")},
		} {
			b, err := lnd.New(ctx, lnd.Config{Address: alice.Host, Macaroon: c.mac, TLSCert: c.cert})
			if err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = b.LookupInvoice(cctx, backend.PaymentHash{1})
			cancel()
			b.Close()
			if !errors.Is(err, backend.ErrInvalid) {
				t.Errorf("Alice with %s: %v, want ErrInvalid (a configuration mistake, not worth retrying)", c.name, err)
			}
			t.Logf("Alice with %s: %v", c.name, err)
		}
	})
	t.Run("GRPCPortNamed", func(t *testing.T) {
		// A URL naming LND's gRPC port instead of its REST port is a
		// configuration mistake, and the error says which port to use.
		alice, _ := url.Parse(net.AliceURL())
		b, err := lnd.New(ctx, lnd.Config{Address: net.AliceGRPCAddr(), Macaroon: alice.Query().Get("macaroon"), TLSCert: alice.Query().Get("tlscert")})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = b.Info(cctx)
		if !errors.Is(err, backend.ErrInvalid) || !strings.Contains(err.Error(), "restlisten") {
			t.Fatalf("Info through Alice's gRPC port: %v, want ErrInvalid naming restlisten", err)
		}
		t.Logf("Alice's gRPC port: %v", err)
	})
	timed(t, "Conformance", func(t *testing.T) { conformance.Run(t, net) })
	timed(t, "ProxyFlow", func(t *testing.T) { proxytest.RunFlow(t, net) })
	timed(t, "StopAliceMidSuite", func(t *testing.T) { stopAliceMidSuite(t, net) })
	timed(t, "ChallengeOverhead", func(t *testing.T) { challengeOverhead(t, net) })
	timed(t, "ValidTokenSpeed", func(t *testing.T) { validTokenSpeed(t, net) })
}

// challengeOverhead measures what the proxy adds to LND's own invoice
// creation on the challenge path: AddInvoice called directly and through
// the proxy's 402, one of each in turn (which goes first alternates) so the
// node's state affects both alike, compared by median, which one slow call
// does not move. The figure is logged, never asserted.
func challengeOverhead(t *testing.T, net *regtest.LNDNet) {
	const n = 200
	b := net.Backend()
	p, err := proxy.New(proxy.Config{Backend: b, ChallengesPerMinute: -1,
		Routes: []proxy.Route{{PathPrefix: "/", Price: backend.Sat(10)}}})
	if err != nil {
		t.Fatal(err)
	}
	h := p.Middleware(http.NotFoundHandler())
	direct := func() {
		if _, err := b.CreateInvoice(context.Background(), backend.InvoiceRequest{Amount: backend.Sat(10), Memo: "l402kit: root"}); err != nil {
			t.Fatal(err)
		}
	}
	proxied := func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
		if w.Code != http.StatusPaymentRequired {
			t.Fatalf("challenge: %d %s", w.Code, w.Body.String())
		}
	}
	var d, pr []time.Duration
	for i := range n {
		steps := []func(){direct, proxied}
		times := []*[]time.Duration{&d, &pr}
		if i%2 == 1 {
			steps[0], steps[1], times[0], times[1] = steps[1], steps[0], times[1], times[0]
		}
		for j, f := range steps {
			start := time.Now()
			f()
			*times[j] = append(*times[j], time.Since(start))
		}
	}
	md, mp := median(d), median(pr)
	t.Logf("timing: challenge on LND: median %s per 402 through the proxy vs %s per AddInvoice directly (%+.1f%%), %d each alternated",
		mp.Round(time.Microsecond), md.Round(time.Microsecond), 100*(float64(mp)/float64(md)-1), n)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// validTokenSpeed measures the proxy's valid-token path in front of LND: one
// challenge paid over the channel, then requests with that token. The
// figure is logged, never asserted.
func validTokenSpeed(t *testing.T, net *regtest.LNDNet) {
	const n = 2000
	p, err := proxy.New(proxy.Config{Backend: net.Backend(), ChallengesPerMinute: -1,
		Routes: []proxy.Route{{PathPrefix: "/", Price: backend.Sat(10)}}})
	if err != nil {
		t.Fatal(err)
	}
	h := p.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
	chs, err := l402.ParseChallenges(w.Header())
	if err != nil || w.Code != http.StatusPaymentRequired {
		t.Fatalf("challenge: %d %v", w.Code, err)
	}
	paid, err := net.Payer().PayInvoice(context.Background(), chs[0].Invoice, backend.PayOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mac, err := chs[0].Macaroon.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	authz := "L402 " + base64.StdEncoding.EncodeToString(mac) + ":" + paid.Preimage.String()
	start := time.Now()
	for range n {
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		r.Header.Set("Authorization", authz)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusNoContent {
			t.Fatalf("valid token: %d %s", w.Code, w.Body.String())
		}
	}
	t.Logf("timing: valid token on LND: %s per request through the proxy, %d requests",
		(time.Since(start) / n).Round(100*time.Nanosecond), n)
}

func timed(t *testing.T, name string, f func(t *testing.T)) {
	start := time.Now()
	t.Run(name, f)
	t.Logf("timing: %s took %s", name, time.Since(start).Round(time.Millisecond))
}

// stopAliceMidSuite checks the adapter's own promise: with the node down a
// call answers ErrUnavailable within 2 s, and the same Backend value works
// again after the node restarts, without being reopened.
func stopAliceMidSuite(t *testing.T, net *regtest.LNDNet) {
	ctx := context.Background()
	b := net.Backend()
	inv, err := b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(1000), Memo: "before the stop"})
	if err != nil {
		t.Fatal(err)
	}
	// Work in flight when the node goes away must end, not hang.
	waitErr := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err := b.WaitInvoice(wctx, inv.PaymentHash)
		waitErr <- err
	}()
	time.Sleep(200 * time.Millisecond) // let the subscription reach the node

	if err := net.StopNode(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			if err := net.StartNode(context.Background()); err != nil {
				t.Errorf("StartNode in cleanup: %v", err)
			}
		}
	})
	if err := <-waitErr; !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("WaitInvoice in flight when the node stopped: %v, want ErrUnavailable", err)
	}
	// The caller allows 2 s; a context error instead of ErrUnavailable
	// would mean the adapter let the call hang.
	for _, call := range []struct {
		name string
		f    func(context.Context) error
	}{
		{"LookupInvoice", func(ctx context.Context) error { _, err := b.LookupInvoice(ctx, inv.PaymentHash); return err }},
		{"CreateInvoice", func(ctx context.Context) error {
			_, err := b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(1)})
			return err
		}},
		{"Info", func(ctx context.Context) error { _, err := b.Info(ctx); return err }},
	} {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		start := time.Now()
		err := call.f(cctx)
		cancel()
		if !errors.Is(err, backend.ErrUnavailable) {
			t.Errorf("%s with Alice stopped: %v, want ErrUnavailable within 2s", call.name, err)
		}
		t.Logf("%s with Alice stopped: ErrUnavailable after %s", call.name, time.Since(start).Round(time.Millisecond))
	}

	start := time.Now()
	if err := net.StartNode(ctx); err != nil {
		t.Fatalf("StartNode: %v", err)
	}
	restarted = true
	t.Logf("timing: StartNode returned after %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	got, err := b.LookupInvoice(ctx, inv.PaymentHash)
	if err != nil {
		t.Fatalf("first call after StartNode: %v", err)
	}
	t.Logf("timing: first call after StartNode succeeded in %s", time.Since(start).Round(time.Millisecond))
	if got.PaymentRequest != inv.PaymentRequest || got.State != backend.StateOpen {
		t.Errorf("invoice after restart: %s %s, want the same, open", got.PaymentRequest, got.State)
	}
	p, err := net.Payer().PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("paying after restart: %v", err)
	}
	if !p.Preimage.Matches(inv.PaymentHash) {
		t.Fatalf("preimage %s does not match %s", p.Preimage, inv.PaymentHash)
	}
}
