package lnurl_test

import (
	"context"
	"testing"
	"time"

	"github.com/l402kit/l402kit/conformance"
	"github.com/l402kit/l402kit/lnd/regtest"
	"github.com/l402kit/l402kit/proxy/proxytest"
)

// TestRegtestLND runs the contract and the proxy flow over the lnurl
// client, fetching invoices from this package's server in front of a real
// LND node (Alice) on a regtest chain, paid by a second LND node (Bob) over
// a real channel. Without a Docker engine it skips, saying so, unless
// L402KIT_REQUIRE_REGTEST=1 makes that a failure (as in CI).
func TestRegtestLND(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
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

	// The LNURL service is what the client sees as its node: stopping it
	// (not LND) is the unavailable case; LND's own restart is covered by
	// the lnd adapter's suite.
	h := newLNURLHarness(t, net.Backend(), net.Payer(), 0)
	t.Run("Run", func(t *testing.T) { conformance.Run(t, h) })
	t.Run("ProxyFlow", func(t *testing.T) { proxytest.RunFlow(t, h) })
}
