package regtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/lndrest"
	"github.com/l402kit/l402kit/internal/testenv/images"
	"github.com/l402kit/l402kit/lnd"
)

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
	// DialTimeout also bounds the TLS handshake: the default 2 s is too
	// short for fifty handshakes at once on a loaded 2-core machine (the
	// conformance's FiftyInvoices through lnurl failed on "TLS handshake
	// timeout"). A stopped node still refuses at once.
	nd.b, err = lnd.New(ctx, lnd.Config{Address: nd.hostPort, TLSCert: nd.certPath, Macaroon: nd.macPath, DialTimeout: 15 * time.Second})
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
