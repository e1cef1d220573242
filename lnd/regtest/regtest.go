package regtest

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/conformance"
	"github.com/l402kit/l402kit/internal/plumbing/lndrest"
	"github.com/l402kit/l402kit/internal/testenv/images"
	"github.com/l402kit/l402kit/lnd"
)

// ErrNoDocker is wrapped by StartLND's error when no Docker engine can be
// reached; Require turns it into a skip.
var ErrNoDocker = errors.New("no Docker engine reachable")

// ErrNoImages is wrapped by StartLND's error when the images are missing
// and building them was not asked for; Require turns it into a skip.
var ErrNoImages = errors.New("regtest images not built")

// EnvRequire, set to 1, makes Require fail instead of skip.
const EnvRequire = "L402KIT_REQUIRE_REGTEST"

// EnvBuild, set to 1, lets StartLND build missing images itself (as
// WithBuild does). Off by default: building lnd takes minutes, more than go
// test's default timeout allows on a small machine.
const EnvBuild = "L402KIT_REGTEST_BUILD"

// BuildCommand is what builds the images (make images runs it).
const BuildCommand = "go run ./internal/testenv/images/cmd/images"

// Require ends the test when err is not nil: a skip naming the reason when
// Docker is unreachable or the images are not built (a failure instead when
// L402KIT_REQUIRE_REGTEST=1), a failure for any other error.
func Require(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if (errors.Is(err, ErrNoDocker) || errors.Is(err, ErrNoImages)) && os.Getenv(EnvRequire) != "1" {
		t.Skipf("regtest harness skipped: %v (set %s=1 to make this a failure)", err, EnvRequire)
	}
	t.Fatalf("regtest harness: %v", err)
}

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

type node struct {
	name     string
	c        testcontainers.Container
	hostPort string // 127.0.0.1:port of its REST listener
	grpcPort string // 127.0.0.1:port of its gRPC listener
	b        *backend.Backend
	rest     *lndrest.Client // for the calls the adapter does not make
	pubkey   string
	certPath string
	macPath  string
}

var (
	_ conformance.Harness   = (*LNDNet)(nil)
	_ conformance.Restarter = (*LNDNet)(nil)
	_ conformance.Reopener  = (*LNDNet)(nil)
)

// setTestcontainersEnv sets the two variables this machine kind needs,
// unless the user set them; testcontainers reads them once, on first use.
func setTestcontainersEnv() {
	for k, v := range map[string]string{
		"TESTCONTAINERS_RYUK_DISABLED": "true",
		"TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
	} {
		if _, ok := os.LookupEnv(k); !ok {
			os.Setenv(k, v)
		}
	}
}

// CheckDocker returns an error wrapping ErrNoDocker when no Docker engine
// answers.
func CheckDocker(ctx context.Context) error {
	setTestcontainersEnv()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	defer cli.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	return nil
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

// printfLogger sends testcontainers' per-container messages to the
// harness's log (t.Logf in tests) instead of the process's stderr.
type printfLogger func(string, ...any)

func (l printfLogger) Printf(format string, args ...any) { l(format, args...) }

func labels() map[string]string {
	// org.l402kit.test=true is what .ci/run removes after a run, whatever
	// happened.
	return map[string]string{"org.l402kit.test": "true", "org.l402kit.regtest": "lnd"}
}

// publish binds each container port to its host port on 127.0.0.1 only.
// A host port "" lets the engine choose; LND nodes get fixed ones so a
// restart keeps their addresses.
func publish(ports map[string]string) func(*container.HostConfig) {
	return func(hc *container.HostConfig) {
		hc.PortBindings = network.PortMap{}
		for port, hostPort := range ports {
			p := network.MustParsePort(port)
			hc.PortBindings[p] = []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hostPort}}
		}
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// create starts a container and, when testcontainers returns one together
// with an error, still hands it back so it is removed.
func (n *LNDNet) create(ctx context.Context, req testcontainers.ContainerRequest) (testcontainers.Container, error) {
	req.Labels = labels()
	req.Networks = []string{n.net.Name}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: req, Started: true, Logger: printfLogger(n.logf),
	})
	if err != nil {
		return c, fmt.Errorf("start %s: %w", req.Hostname, err)
	}
	return c, nil
}

func (n *LNDNet) startBTCD(ctx context.Context, m *miner) error {
	spec := images.BTCD()
	c, err := n.create(ctx, testcontainers.ContainerRequest{
		Image:          spec.Ref,
		Hostname:       "btcd",
		NetworkAliases: map[string][]string{n.net.Name: {"btcd"}},
		Entrypoint:     []string{spec.Entrypoint},
		Env:            map[string]string{"HOME": "/data"},
		Cmd: []string{
			"--regtest", "--txindex",
			"--datadir=/data/chain", "--logdir=/data/logs",
			"--rpccert=/data/rpc.cert", "--rpckey=/data/rpc.key",
			"--rpcuser=" + rpcUser, "--rpcpass=" + rpcPass,
			"--rpclisten=0.0.0.0:18334",
			"--miningaddr=" + m.addr.EncodeAddress(),
		},
		ExposedPorts: []string{"18334/tcp"},
		HostConfigModifier: func(hc *container.HostConfig) {
			publish(map[string]string{"18334/tcp": ""})(hc)
		},
		ConfigModifier: func(cfg *container.Config) { cfg.Hostname = "btcd" },
		WaitingFor:     wait.ForLog("RPC server listening on").WithStartupTimeout(time.Minute),
	})
	n.btcd = c
	if err != nil {
		return err
	}
	port, err := c.MappedPort(ctx, "18334/tcp")
	if err != nil {
		return err
	}
	cert, err := n.copyFrom(ctx, c, "/data/rpc.cert")
	if err != nil {
		return err
	}
	n.chain, err = newChainRPC("127.0.0.1:"+port.Port(), rpcUser, rpcPass, cert)
	return err
}

func (n *LNDNet) copyFrom(ctx context.Context, c testcontainers.Container, path string) ([]byte, error) {
	rc, err := c.CopyFileFromContainer(ctx, path)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (n *LNDNet) startLND(ctx context.Context, name string, btcdCert []byte) (*node, error) {
	spec := images.LND()
	// Fixed host ports, so a restarted node keeps its addresses.
	hostPort, err := freePort()
	if err != nil {
		return nil, err
	}
	grpcPort, err := freePort()
	if err != nil {
		return nil, err
	}
	c, err := n.create(ctx, testcontainers.ContainerRequest{
		Image:          spec.Ref,
		Hostname:       name,
		NetworkAliases: map[string][]string{n.net.Name: {name}},
		Entrypoint:     []string{spec.Entrypoint},
		Env:            map[string]string{"HOME": lndDir},
		Cmd: []string{
			"--lnddir=" + lndDir,
			"--noseedbackup",
			"--alias=" + name,
			"--bitcoin.regtest", "--bitcoin.node=btcd",
			"--btcd.rpchost=btcd:18334",
			"--btcd.rpcuser=" + rpcUser, "--btcd.rpcpass=" + rpcPass,
			"--btcd.rpccert=/btcd/rpc.cert",
			// The adapter speaks REST; LND's REST gateway calls its own
			// gRPC listener, published too for tests of a URL naming it.
			"--restlisten=0.0.0.0:8080", "--rpclisten=0.0.0.0:10009", "--listen=0.0.0.0:9735",
			"--tlsextradomain=" + name,
			"--trickledelay=50",
			// Reconnect to a restarted peer within seconds, not minutes.
			"--minbackoff=1s", "--maxbackoff=2s",
		},
		Files: []testcontainers.ContainerFile{{
			Reader: bytes.NewReader(btcdCert), ContainerFilePath: "/btcd/rpc.cert", FileMode: 0o644,
		}},
		ExposedPorts:   []string{"8080/tcp", "10009/tcp"},
		ConfigModifier: func(cfg *container.Config) { cfg.Hostname = name },
		HostConfigModifier: func(hc *container.HostConfig) {
			publish(map[string]string{"8080/tcp": hostPort, "10009/tcp": grpcPort})(hc)
		},
		WaitingFor: wait.ForLog("RPC server listening on").WithStartupTimeout(time.Minute),
	})
	nd := &node{name: name, c: c, hostPort: "127.0.0.1:" + hostPort, grpcPort: "127.0.0.1:" + grpcPort}
	if err != nil {
		if c == nil {
			return nil, err
		}
		return nd, err
	}
	if err := n.connectNode(ctx, nd); err != nil {
		return nd, err
	}
	return nd, nil
}

// connectNode copies the node's TLS certificate and admin macaroon out (the
// macaroon appears once the wallet exists), opens the adapter and waits for
// the node to answer, synced.
func (n *LNDNet) connectNode(ctx context.Context, nd *node) error {
	macIn := lndDir + "/data/chain/bitcoin/regtest/admin.macaroon"
	var cert, mac []byte
	err := poll(ctx, time.Minute, func() error {
		var err error
		if cert, err = n.copyFrom(ctx, nd.c, lndDir+"/tls.cert"); err != nil {
			return err
		}
		mac, err = n.copyFrom(ctx, nd.c, macIn)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: waiting for tls.cert and admin.macaroon: %w", nd.name, err)
	}
	nd.certPath = filepath.Join(n.dir, nd.name+"-tls.cert")
	nd.macPath = filepath.Join(n.dir, nd.name+"-admin.macaroon")
	if err := os.WriteFile(nd.certPath, cert, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(nd.macPath, mac, 0o600); err != nil {
		return err
	}
	nd.b, err = lnd.New(ctx, lnd.Config{Address: nd.hostPort, TLSCert: nd.certPath, Macaroon: nd.macPath})
	if err != nil {
		return err
	}
	if nd.rest, err = lndrest.New(lndrest.Config{Address: nd.hostPort, TLSCert: cert, Macaroon: mac}); err != nil {
		return err
	}
	return n.waitSynced(ctx, nd)
}

func (n *LNDNet) waitSynced(ctx context.Context, nd *node) error {
	return poll(ctx, 3*time.Minute, func() error {
		info, err := nd.b.Info(ctx)
		if err != nil {
			return err
		}
		nd.pubkey = info.NodeID
		if info.Synced {
			return nil
		}
		best, err := n.chain.height(ctx)
		if err != nil {
			return err
		}
		if int64(info.BlockHeight) < best {
			// Still catching up: a block mined now would only move the
			// target. Mining one per poll for both nodes once kept a loaded
			// node behind for two minutes (440 blocks became 907).
			return fmt.Errorf("%s catching up: at height %d of %d", nd.name, info.BlockHeight, best)
		}
		// At the tip but not synced: LND calls itself synced only when the
		// tip is recent, so a fresh block settles it; at most one every few
		// seconds for the whole net.
		if err := n.nudgeChain(ctx); err != nil {
			return err
		}
		return fmt.Errorf("%s at the tip (height %d) but not synced to chain", nd.name, info.BlockHeight)
	})
}

// nudgeChain mines one block unless one was mined by a nudge in the last
// few seconds.
func (n *LNDNet) nudgeChain(ctx context.Context) error {
	n.nudgeMu.Lock()
	defer n.nudgeMu.Unlock()
	if time.Since(n.nudged) < 5*time.Second {
		return nil
	}
	n.nudged = time.Now()
	return n.chain.generate(ctx, 1)
}

// fundBob sends the reward of block 1 to Bob's wallet and confirms it.
func (n *LNDNet) fundBob(ctx context.Context, m *miner) error {
	var addr lndrest.NewAddressResponse
	if err := n.bob.rest.Call(ctx, http.MethodGet, "/v1/newaddress?type=WITNESS_PUBKEY_HASH", nil, &addr); err != nil {
		return fmt.Errorf("bob new address: %w", err)
	}
	cb, err := n.chain.coinbase(ctx, 1)
	if err != nil {
		return err
	}
	tx, err := m.spendCoinbase(cb, addr.Address, 10_000)
	if err != nil {
		return err
	}
	if _, err := n.chain.sendRaw(ctx, tx); err != nil {
		return err
	}
	if err := n.chain.generate(ctx, 1); err != nil {
		return err
	}
	return poll(ctx, time.Minute, func() error {
		var bal lndrest.WalletBalanceResponse
		if err := n.bob.rest.Call(ctx, http.MethodGet, "/v1/balance/blockchain", nil, &bal); err != nil {
			return err
		}
		if bal.ConfirmedBalance < ChannelSats*2 {
			return fmt.Errorf("bob's confirmed balance is %d sat", bal.ConfirmedBalance)
		}
		return nil
	})
}

func (n *LNDNet) connectPeer(ctx context.Context) error {
	err := n.bob.rest.Call(ctx, http.MethodPost, "/v1/peers", &lndrest.ConnectPeerRequest{
		Addr:    lndrest.LightningAddress{Pubkey: n.alice.pubkey, Host: "alice:9735"},
		Timeout: 10,
	}, nil)
	if err != nil && !strings.Contains(err.Error(), "already connected") {
		return fmt.Errorf("bob connect to alice: %w", err)
	}
	return nil
}

func (n *LNDNet) openChannel(ctx context.Context) error {
	// Synced to chain is not yet "server started": ConnectPeer can still
	// answer "server is still in the process of starting" for a moment.
	if err := poll(ctx, time.Minute, func() error { return n.connectPeer(ctx) }); err != nil {
		return err
	}
	var cp lndrest.ChannelPoint
	pubkey, err := hex.DecodeString(n.alice.pubkey)
	if err != nil {
		return fmt.Errorf("alice's pubkey %q: %w", n.alice.pubkey, err)
	}
	// Right after connecting, LND may still be syncing the peer's
	// features; a short retry covers it.
	err = poll(ctx, 30*time.Second, func() error {
		return n.bob.rest.Call(ctx, http.MethodPost, "/v1/channels", &lndrest.OpenChannelRequest{
			NodePubkey:         pubkey,
			LocalFundingAmount: ChannelSats,
			PushSat:            PushSats,
			SatPerVbyte:        2,
		}, &cp)
	})
	if err != nil {
		return fmt.Errorf("open channel bob→alice: %w", err)
	}
	txid, err := fundingTxid(cp)
	if err != nil {
		return err
	}
	n.chanPt = fmt.Sprintf("%s:%d", txid, cp.OutputIndex)
	if err := n.chain.generate(ctx, 6); err != nil {
		return err
	}
	if err := n.waitChannelActive(ctx); err != nil {
		return err
	}
	return n.probe(ctx)
}

// probe pays Alice one satoshi until it works. "Active" in ListChannels
// comes a moment before Bob's link will carry a payment: until then LND
// refuses with FAILURE_REASON_INSUFFICIENT_BALANCE.
func (n *LNDNet) probe(ctx context.Context) error {
	tries := 0
	err := poll(ctx, time.Minute, func() error {
		tries++
		inv, err := n.alice.b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(1), Memo: "l402kit regtest probe"})
		if err != nil {
			return err
		}
		_, err = n.bob.b.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{Timeout: 10 * time.Second})
		return err
	})
	if err != nil {
		return fmt.Errorf("probe payment bob→alice: %w", err)
	}
	if tries > 1 {
		n.logf("regtest: probe payment bob→alice went through at attempt %d", tries)
	}
	return nil
}

// waitChannelActive waits until both ends list the channel as active.
func (n *LNDNet) waitChannelActive(ctx context.Context) error {
	return poll(ctx, 2*time.Minute, func() error {
		for _, nd := range []*node{n.bob, n.alice} {
			var r lndrest.ListChannelsResponse
			if err := nd.rest.Call(ctx, http.MethodGet, "/v1/channels?active_only=true", nil, &r); err != nil {
				return err
			}
			found := false
			for _, ch := range r.Channels {
				if ch.ChannelPoint == n.chanPt && ch.Active {
					found = true
				}
			}
			if !found {
				return fmt.Errorf("channel %s not active on %s yet", n.chanPt, nd.name)
			}
		}
		return nil
	})
}

// fundingTxid is the channel point's transaction id in the usual
// (reversed, display) hex form.
func fundingTxid(cp lndrest.ChannelPoint) (string, error) {
	switch {
	case cp.FundingTxidStr != "":
		return cp.FundingTxidStr, nil
	case len(cp.FundingTxidBytes) == 32:
		// Bytes are in internal order; the string form is reversed.
		b := make([]byte, 32)
		for i, x := range cp.FundingTxidBytes {
			b[31-i] = x
		}
		return hex.EncodeToString(b), nil
	}
	return "", fmt.Errorf("channel point without txid")
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

// terminate removes the container; testcontainers removes its anonymous
// volumes with it.
func terminate(ctx context.Context, c testcontainers.Container) error {
	if err := c.Terminate(ctx, testcontainers.StopTimeout(2*time.Second)); err != nil {
		return fmt.Errorf("remove container %s: %w", c.GetContainerID(), err)
	}
	return nil
}
