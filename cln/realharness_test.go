package cln_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/conformance"
	"github.com/l402kit/l402kit/proxy/proxytest"
)

// The real-daemon harness: Core Lightning's official image for the node
// under test and for a payer node, a bitcoind image, a regtest chain and a
// channel from the payer into the node. It runs the conformance suite over
// the unix socket (bind-mounted out of the container) and over CLNRest.
//
// Images are never pulled by the test; they must be present locally:
//
//	L402KIT_CLN_IMAGE       default elementsproject/lightningd:v26.06
//	L402KIT_BITCOIND_IMAGE  default lncm/bitcoind:v28.0 (any image with bitcoind on PATH)
//	L402KIT_CLN_HOLD_PLUGIN optional path to a BoltzExchange/hold binary for the node under test
//
// Run: docker pull both images, then
//
//	TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 \
//	  go test -run TestRealCLN -v -timeout 20m ./cln/
const (
	defaultCLNImage      = "elementsproject/lightningd:v26.06"
	defaultBitcoindImage = "lncm/bitcoind:v28.0"
	rpcUser, rpcPass     = "l402kit", "l402kit"
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// skipOrFail skips with reason, or fails when L402KIT_REQUIRE_CLN_REGTEST=1
// asks for the harness to run. It is not the general L402KIT_REQUIRE_REGTEST,
// which CI sets for the LND suites: no Core Lightning image can be had where
// CI runs.
func skipOrFail(t *testing.T, format string, a ...any) {
	t.Helper()
	if os.Getenv("L402KIT_REQUIRE_CLN_REGTEST") == "1" {
		t.Fatalf("L402KIT_REQUIRE_CLN_REGTEST=1 but: "+format, a...)
	}
	t.Skipf(format, a...)
}

// requireImages skips unless a Docker engine answers and every image is
// present locally: the harness never pulls.
func requireImages(t *testing.T, images [][2]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		skipOrFail(t, "no Docker engine reachable: %v", err)
	}
	defer cli.Close()
	for _, ei := range images {
		env, img := ei[0], ei[1]
		if _, err := cli.ImageInspect(ctx, img); err != nil {
			if cerrdefs.IsNotFound(err) {
				skipOrFail(t, "image %s is not present locally and cannot be pulled here (no registry); pull or load it, or set %s to a local image", img, env)
			}
			skipOrFail(t, "Docker engine cannot inspect image %s: %v", img, err)
		}
	}
}

// realHarness is the adapter against a containerised Core Lightning.
type realHarness struct {
	node    testcontainers.Container
	b       *backend.Backend
	payer   backend.Payer
	socket  string
	restURL string
}

func (h *realHarness) Backend() *backend.Backend { return h.b }
func (h *realHarness) Payer() backend.Payer      { return h.payer }
func (h *realHarness) Support() conformance.Support {
	return conformance.Support{ZeroAmount: true, CallerPreimage: true, HashedDescription: true}
}

func (h *realHarness) StopNode(ctx context.Context) error {
	d := 10 * time.Second
	return h.node.Stop(ctx, &d)
}

func (h *realHarness) StartNode(ctx context.Context) error {
	if err := h.node.Start(ctx); err != nil {
		return err
	}
	for {
		if _, err := h.b.Info(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node did not answer after restart: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// execJSON runs a command in c and decodes its JSON output into out.
func execJSON(ctx context.Context, t *testing.T, c testcontainers.Container, out any, cmd ...string) {
	t.Helper()
	code, r, err := c.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	b, _ := io.ReadAll(r)
	if code != 0 {
		t.Fatalf("exec %v: exit %d: %s", cmd, code, b)
	}
	if out != nil {
		if err := json.Unmarshal(bytes.TrimSpace(b), out); err != nil {
			t.Fatalf("exec %v: %v in %s", cmd, err, b)
		}
	}
}

func lightningCLI(args ...string) []string {
	return append([]string{"lightning-cli", "--network=regtest"}, args...)
}

func bitcoinCLI(args ...string) []string {
	return append([]string{"bitcoin-cli", "-regtest", "-rpcconnect=bitcoind", "-rpcuser=" + rpcUser, "-rpcpassword=" + rpcPass}, args...)
}

// eventually retries check every half second until it reports true.
func eventually(ctx context.Context, t *testing.T, what string, check func() bool) {
	t.Helper()
	for !check() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func startCLN(ctx context.Context, t *testing.T, image string, nw *testcontainers.DockerNetwork, alias, dataDir string, extra []string, ports []string, plugin string) testcontainers.Container {
	t.Helper()
	cmd := append([]string{
		"--alias=" + alias,
		"--bitcoin-rpcconnect=bitcoind", "--bitcoin-rpcport=18443",
		"--bitcoin-rpcuser=" + rpcUser, "--bitcoin-rpcpassword=" + rpcPass,
		"--addr=0.0.0.0:9735", "--log-level=debug",
	}, extra...)
	binds := []string{dataDir + ":/root/.lightning"}
	if plugin != "" {
		binds = append(binds, plugin+":/opt/hold:ro")
		cmd = append(cmd, "--plugin=/opt/hold")
	}
	req := testcontainers.ContainerRequest{
		Image:          image,
		Env:            map[string]string{"LIGHTNINGD_NETWORK": "regtest"},
		Cmd:            cmd,
		ExposedPorts:   ports,
		Networks:       []string{nw.Name},
		NetworkAliases: map[string][]string{nw.Name: {alias}},
		WaitingFor:     wait.ForLog("Server started with public key").WithStartupTimeout(2 * time.Minute),
	}
	req.HostConfigModifier = func(hc *container.HostConfig) { hc.Binds = append(hc.Binds, binds...) }
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("start %s: %v", alias, err)
	}
	return c
}

func newRealHarness(t *testing.T) *realHarness {
	clnImage := envOr("L402KIT_CLN_IMAGE", defaultCLNImage)
	btcImage := envOr("L402KIT_BITCOIND_IMAGE", defaultBitcoindImage)
	requireImages(t, [][2]string{{"L402KIT_CLN_IMAGE", clnImage}, {"L402KIT_BITCOIND_IMAGE", btcImage}})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	nw, err := network.New(ctx)
	testcontainers.CleanupNetwork(t, nw)
	if err != nil {
		t.Fatalf("network: %v", err)
	}
	btc, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:      btcImage,
			Entrypoint: []string{"bitcoind"},
			Cmd: []string{"-regtest", "-server", "-printtoconsole", "-fallbackfee=0.0002",
				"-rpcuser=" + rpcUser, "-rpcpassword=" + rpcPass, "-rpcbind=0.0.0.0", "-rpcallowip=0.0.0.0/0"},
			Networks:       []string{nw.Name},
			NetworkAliases: map[string][]string{nw.Name: {"bitcoind"}},
			WaitingFor:     wait.ForLog("init message: Done loading").WithStartupTimeout(time.Minute),
		},
		Started: true,
	})
	testcontainers.CleanupContainer(t, btc)
	if err != nil {
		t.Fatalf("bitcoind: %v", err)
	}

	// Short host directories: the unix socket path must stay under ~108 bytes.
	nodeDir, payerDir := socketDir(t), socketDir(t)
	for _, d := range []string{nodeDir, payerDir} {
		// The image's entrypoint watches <dir>/regtest for the socket.
		if err := os.MkdirAll(filepath.Join(d, "regtest"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	restPort := freePort(t)
	node := startCLN(ctx, t, clnImage, nw, "cln-node", nodeDir,
		[]string{"--clnrest-port=3010", "--clnrest-protocol=http", "--clnrest-host=0.0.0.0"},
		[]string{fmt.Sprintf("127.0.0.1:%d:3010/tcp", restPort)}, os.Getenv("L402KIT_CLN_HOLD_PLUGIN"))
	payerC := startCLN(ctx, t, clnImage, nw, "cln-payer", payerDir, nil, nil, "")

	// Fund the payer, open a channel into the node, confirm it.
	var addr struct {
		Bech32 string `json:"bech32"`
		P2TR   string `json:"p2tr"`
	}
	execJSON(ctx, t, payerC, &addr, lightningCLI("newaddr")...)
	to := addr.Bech32
	if to == "" {
		to = addr.P2TR
	}
	execJSON(ctx, t, payerC, nil, bitcoinCLI("generatetoaddress", "101", to)...)
	eventually(ctx, t, "payer sees its coinbase", func() bool {
		var funds struct {
			Outputs []struct {
				Status string `json:"status"`
			} `json:"outputs"`
		}
		execJSON(ctx, t, payerC, &funds, lightningCLI("listfunds")...)
		return len(funds.Outputs) > 0 && funds.Outputs[0].Status == "confirmed"
	})
	var info struct {
		ID string `json:"id"`
	}
	execJSON(ctx, t, node, &info, lightningCLI("getinfo")...)
	execJSON(ctx, t, payerC, nil, lightningCLI("connect", info.ID+"@cln-node:9735")...)
	execJSON(ctx, t, payerC, nil, lightningCLI("fundchannel", info.ID, "2000000")...)
	execJSON(ctx, t, payerC, nil, bitcoinCLI("generatetoaddress", "6", to)...)
	eventually(ctx, t, "channel is normal", func() bool {
		var pc struct {
			Channels []struct {
				State string `json:"state"`
			} `json:"channels"`
		}
		execJSON(ctx, t, payerC, &pc, lightningCLI("listpeerchannels", info.ID)...)
		return len(pc.Channels) > 0 && pc.Channels[0].State == "CHANNELD_NORMAL"
	})

	h := &realHarness{
		node:   node,
		socket: filepath.Join(nodeDir, "regtest", "lightning-rpc"),
	}
	var rn struct {
		Rune string `json:"rune"`
	}
	execJSON(ctx, t, node, &rn, lightningCLI("createrune")...)
	t.Setenv("L402KIT_TEST_REAL_CLN_RUNE", rn.Rune)
	h.restURL = fmt.Sprintf("clnrest://127.0.0.1:%d?rune=env:L402KIT_TEST_REAL_CLN_RUNE&tls=0", restPort)

	payer, err := backend.Open(ctx, "cln://"+filepath.Join(payerDir, "regtest", "lightning-rpc"))
	if err != nil {
		t.Fatalf("open payer: %v", err)
	}
	t.Cleanup(func() { payer.Close() })
	h.payer = payer
	return h
}

func TestRealCLN(t *testing.T) {
	h := newRealHarness(t)
	for _, tr := range []struct{ name, url string }{
		{"socket", "cln://" + h.socket},
		{"rest", h.restURL},
	} {
		t.Run(tr.name, func(t *testing.T) {
			b, err := backend.Open(context.Background(), tr.url)
			if err != nil {
				t.Fatalf("open %s: %v", strings.SplitN(tr.url, "?", 2)[0], err)
			}
			defer b.Close()
			hh := *h
			hh.b = b
			conformance.Run(t, &hh)
			t.Run("ProxyFlow", func(t *testing.T) { proxytest.RunFlow(t, &hh) })
		})
	}
}
