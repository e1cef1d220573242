package regtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"

	"github.com/l402kit/l402kit/internal/testenv/images"
)

// Sizes of the Bob→Alice channel: the largest non-wumbo channel, with some
// pushed to Alice so she can pay too. Bob's side is the inbound capacity
// the suite's payments use.
const (
	ChannelSats = 16_000_000
	PushSats    = 1_000_000
)

const (
	rpcUser = "l402kit"
	rpcPass = "l402kit"
	lndDir  = "/lnd"
	// segwitHeight: btcd regtest activates segwit only around block 432;
	// before it LND's funding transaction is refused.
	segwitHeight = 440
	stopTimeout  = 10 * time.Second
)

// Option tunes StartLND.
type Option func(*options)

type options struct {
	logf  func(string, ...any)
	build bool
}

// WithBuild lets StartLND build missing images (see internal/testenv/images)
// instead of failing with ErrNoImages.
func WithBuild() Option {
	return func(o *options) { o.build = true }
}

// WithLogf sends progress and timings to logf (t.Logf in tests).
func WithLogf(logf func(format string, args ...any)) Option {
	return func(o *options) { o.logf = logf }
}

// Timings are what starting the net took.
type Timings struct {
	Images  time.Duration // ensuring (building when missing) the images
	Start   time.Duration // containers, chain, funding and channel, images excluded
	Compile bool          // whether binaries were compiled in Images
}

// LNDNet is a running regtest network: btcd, Alice (the node under test) and
// Bob (the payer), with an active channel Bob→Alice. It implements
// conformance.Harness and conformance.Restarter.
type LNDNet struct {
	logf    func(string, ...any)
	dir     string // secrets written for AliceURL
	net     *testcontainers.DockerNetwork
	btcd    testcontainers.Container
	chain   *chainRPC
	alice   *node
	bob     *node
	timings Timings
	chanPt  string

	mu sync.Mutex // serializes StopNode and StartNode

	nudgeMu sync.Mutex // guards nudged
	nudged  time.Time  // when waitSynced last mined a block
}

// StartLND builds missing images and starts the network. On error every
// container and network made so far is removed.
func StartLND(ctx context.Context, opts ...Option) (_ *LNDNet, err error) {
	o := options{logf: func(string, ...any) {}}
	for _, f := range opts {
		f(&o)
	}
	if err := CheckDocker(ctx); err != nil {
		return nil, err
	}
	n := &LNDNet{logf: o.logf}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if cerr := n.Close(cctx); cerr != nil {
				err = fmt.Errorf("%w (and cleaning up: %v)", err, cerr)
			}
		}
	}()

	t0 := time.Now()
	if !o.build && os.Getenv(EnvBuild) != "1" {
		missing, err := images.Missing(ctx)
		if err != nil {
			return nil, err
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%w: %s missing; build with %q (make images; minutes when cold), set %s=1 to let the harness build, or name other images with %s / %s",
				ErrNoImages, strings.Join(missing, ", "), BuildCommand, EnvBuild, images.EnvLNDImage, images.EnvBTCDImage)
		}
	}
	res, err := images.Ensure(ctx, images.Options{Logf: o.logf})
	if err != nil {
		return nil, err
	}
	n.timings.Images = time.Since(t0)
	for _, r := range res {
		n.timings.Compile = n.timings.Compile || r.Compiled
		if r.Built {
			o.logf("regtest: image %s built in %s (compiled: %v)", r.Ref, r.Took.Round(time.Second), r.Compiled)
		} else {
			o.logf("regtest: image %s: %s", r.Ref, r.Note)
		}
	}
	o.logf("regtest: images ready in %s", n.timings.Images.Round(time.Millisecond))

	t1 := time.Now()
	if err := n.start(ctx); err != nil {
		return nil, err
	}
	n.timings.Start = time.Since(t1)
	o.logf("regtest: btcd, alice, bob and an active %d sat channel bob→alice ready in %s", ChannelSats, n.timings.Start.Round(time.Millisecond))
	return n, nil
}

func (n *LNDNet) start(ctx context.Context) error {
	var err error
	if n.dir, err = os.MkdirTemp("", "l402kit-regtest-"); err != nil {
		return err
	}
	if n.net, err = tcnetwork.New(ctx, tcnetwork.WithLabels(labels())); err != nil {
		return fmt.Errorf("create network: %w", err)
	}
	m, err := newMiner()
	if err != nil {
		return err
	}

	t := time.Now()
	if err := n.startBTCD(ctx, m); err != nil {
		return err
	}
	if err := n.chain.generate(ctx, segwitHeight); err != nil {
		return err
	}
	n.logf("regtest: btcd up, %d blocks mined in %s", segwitHeight, time.Since(t).Round(time.Millisecond))

	t = time.Now()
	certPEM, err := n.copyFrom(ctx, n.btcd, "/data/rpc.cert")
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var aliceErr, bobErr error
	wg.Add(2)
	go func() { defer wg.Done(); n.alice, aliceErr = n.startLND(ctx, "alice", certPEM) }()
	go func() { defer wg.Done(); n.bob, bobErr = n.startLND(ctx, "bob", certPEM) }()
	wg.Wait()
	// Keep whatever started so Close removes it, even if the other failed.
	if err := errors.Join(aliceErr, bobErr); err != nil {
		return err
	}
	n.logf("regtest: alice and bob answer and are synced after %s", time.Since(t).Round(time.Millisecond))

	t = time.Now()
	if err := n.fundBob(ctx, m); err != nil {
		return err
	}
	if err := n.openChannel(ctx); err != nil {
		return err
	}
	n.logf("regtest: bob funded and channel %s active after %s", n.chanPt, time.Since(t).Round(time.Millisecond))
	return nil
}

// poll calls f until it succeeds, ctx ends or limit passes, and returns
// f's last error then.
func poll(ctx context.Context, limit time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", limit, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Close removes every container and the network, and the secrets written
// for AliceURL. It is safe to call on a half-started net and more than once.
func (n *LNDNet) Close(ctx context.Context) error {
	var errs []error
	for _, nd := range []*node{n.alice, n.bob} {
		if nd == nil {
			continue
		}
		if nd.b != nil {
			nd.b.Close()
		}
		if nd.c != nil {
			errs = append(errs, terminate(ctx, nd.c))
			nd.c = nil
		}
	}
	if n.btcd != nil {
		errs = append(errs, terminate(ctx, n.btcd))
		n.btcd = nil
	}
	if n.net != nil {
		if err := n.net.Remove(ctx); err != nil {
			errs = append(errs, fmt.Errorf("remove network: %w", err))
		}
		n.net = nil
	}
	if n.dir != "" {
		os.RemoveAll(n.dir)
		n.dir = ""
	}
	return errors.Join(errs...)
}
