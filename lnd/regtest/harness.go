package regtest

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/conformance"
)

var (
	_ conformance.Harness   = (*LNDNet)(nil)
	_ conformance.Restarter = (*LNDNet)(nil)
	_ conformance.Reopener  = (*LNDNet)(nil)
)

// Backend is the adapter to Alice, the node under test.
func (n *LNDNet) Backend() *backend.Backend { return n.alice.b }

// Payer is the adapter to Bob, who pays Alice over the channel.
func (n *LNDNet) Payer() backend.Payer { return n.bob.b }

// Support: LND honours every optional field, and cancels plain invoices.
func (n *LNDNet) Support() conformance.Support {
	return conformance.Support{ZeroAmount: true, CallerPreimage: true, DescriptionHash: true, HashedDescription: true, CancelPlain: true}
}

// OpenBackend opens another adapter to Alice through AliceURL
// (conformance.Reopener).
func (n *LNDNet) OpenBackend(ctx context.Context) (*backend.Backend, error) {
	return backend.Open(ctx, n.AliceURL())
}

// Timings reports how long StartLND took.
func (n *LNDNet) Timings() Timings { return n.timings }

// AliceURL is an lnd:// URL for Alice, usable with backend.Open while the
// net runs (its macaroon and certificate are files removed by Close).
func (n *LNDNet) AliceURL() string {
	q := url.Values{"macaroon": {n.alice.macPath}, "tlscert": {n.alice.certPath}}
	return "lnd://" + n.alice.hostPort + "?" + q.Encode()
}

// AliceGRPCAddr is 127.0.0.1:port of Alice's gRPC listener, which the
// adapter does not use: for tests of what a URL naming it gets.
func (n *LNDNet) AliceGRPCAddr() string { return n.alice.grpcPort }

// BobURL is an lnd:// URL for Bob, the payer.
func (n *LNDNet) BobURL() string {
	q := url.Values{"macaroon": {n.bob.macPath}, "tlscert": {n.bob.certPath}}
	return "lnd://" + n.bob.hostPort + "?" + q.Encode()
}

// Mine mines blocks, for tests that need the chain to move.
func (n *LNDNet) Mine(ctx context.Context, blocks int) error { return n.chain.generate(ctx, blocks) }

// StopNode stops Alice's container; her adapter then answers ErrUnavailable.
func (n *LNDNet) StopNode(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := stopTimeout
	if err := n.alice.c.Stop(ctx, &d); err != nil {
		return fmt.Errorf("stop alice: %w", err)
	}
	return nil
}

// StartNode starts Alice again and returns once she answers, synced, with
// the channel from Bob active again.
func (n *LNDNet) StartNode(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := time.Now()
	if err := n.alice.c.Start(ctx); err != nil {
		return fmt.Errorf("start alice: %w", err)
	}
	if err := n.waitSynced(ctx, n.alice); err != nil {
		return err
	}
	// Bob would reconnect by himself, but to the address he resolved
	// before; Alice's may have changed, so connect by name.
	if err := poll(ctx, time.Minute, func() error { return n.connectPeer(ctx) }); err != nil {
		return err
	}
	if err := n.waitChannelActive(ctx); err != nil {
		return err
	}
	if err := n.probe(ctx); err != nil {
		return err
	}
	n.logf("regtest: alice restarted, answering with the channel active in %s", time.Since(t).Round(time.Millisecond))
	return nil
}
