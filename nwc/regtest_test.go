package nwc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/conformance"
	"github.com/l402kit/l402kit/lnd/regtest"
	"github.com/l402kit/l402kit/nwc"
	"github.com/l402kit/l402kit/proxy"
	"github.com/l402kit/l402kit/proxy/proxytest"
)

// TestRegtestLND runs the contract and the proxy flow over NWC in front of
// real LND: the nwc adapter -> a relay -> this package's wallet service ->
// Alice's LND on a btcd regtest chain; the payer is Bob's LND served as a
// second NWC wallet, so payments travel pay_invoice -> LND -> the channel.
// Without a Docker engine it skips, saying so, unless
// L402KIT_REQUIRE_REGTEST=1 makes that a failure (as in CI).
func TestRegtestLND(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	net, err := regtest.StartLND(ctx, regtest.WithLogf(t.Logf))
	regtest.Require(t, err)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := net.Close(cctx); err != nil {
			t.Errorf("closing the regtest net: %v", err)
		}
	})
	bob, ok := net.Payer().(*backend.Backend)
	if !ok {
		t.Fatalf("regtest payer is a %T, want a *backend.Backend to serve", net.Payer())
	}
	relay := startRelay(t)
	_, aliceURI := serve(t, relay, net.Backend(), nwc.Permissions{})
	_, bobURI := serve(t, relay, bob, nwc.Permissions{})
	h := &harness{relay: relay, uri: aliceURI, b: open(t, aliceURI), payer: open(t, bobURI), sup: nwcSupport(net.Support()), served: []*backend.Backend{net.Backend(), bob}}
	t.Run("Run", func(t *testing.T) { conformance.Run(t, h) })
	t.Run("ProxyFlow", func(t *testing.T) { proxytest.RunFlow(t, h) })
	t.Run("ChallengeTime", func(t *testing.T) {
		// Interleaved, one request at a time, so both see the same load.
		direct, over := challengeServer(t, net.Backend()), challengeServer(t, h.b)
		var dt, ot []time.Duration
		for i := range 100 {
			d, o := challenge(t, direct), challenge(t, over)
			if i >= 10 { // warm connections and caches first
				dt, ot = append(dt, d), append(ot, o)
			}
		}
		slices.Sort(dt)
		slices.Sort(ot)
		t.Logf("proxy challenge path, %d interleaved requests each: LND direct median %s p90 %s mean %s; NWC over LND median %s p90 %s mean %s",
			len(dt), dt[len(dt)/2], dt[len(dt)*9/10], mean(dt), ot[len(ot)/2], ot[len(ot)*9/10], mean(ot))
	})
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

// challengeServer is a proxy on b with one paid route.
func challengeServer(t *testing.T, b *backend.Backend) string {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(up.Close)
	upURL, _ := url.Parse(up.URL)
	p, err := proxy.New(proxy.Config{Backend: b, Routes: []proxy.Route{{Name: "paid", PathPrefix: "/", Price: backend.Sat(10), Upstream: upURL}}, ChallengesPerMinute: -1, NodeTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL
}

// challenge times one unauthenticated request answered 402 with a fresh
// invoice: the proxy's challenge path.
func challenge(t *testing.T, base string) time.Duration {
	start := time.Now()
	resp, err := http.Get(base + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("challenge: status %d", resp.StatusCode)
	}
	return time.Since(start)
}
