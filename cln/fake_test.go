package cln_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	_ "github.com/l402kit/l402kit/cln"
	"github.com/l402kit/l402kit/conformance"
	"github.com/l402kit/l402kit/internal/fakes/clnfake"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/proxy/proxytest"
)

// fakeHarness is the adapter against clnfake over one transport. The payer
// is the adapter too, on a second fake of the same release whose payments
// go into the first one's memory node, as a payer node with a channel into
// the node under test: so the contract's payments go through the adapter's
// xpay or pay.
type fakeHarness struct {
	fake   *clnfake.Fake
	b      *backend.Backend
	payer  *backend.Backend
	payerF *clnfake.Fake // the fake behind payer
	url    string
}

func (h *fakeHarness) Backend() *backend.Backend { return h.b }

func (h *fakeHarness) Payer() backend.Payer { return h.payer }

// OpenBackend implements conformance.Reopener: another adapter on the fake.
func (h *fakeHarness) OpenBackend(ctx context.Context) (*backend.Backend, error) {
	return backend.Open(ctx, h.url)
}

func (h *fakeHarness) Support() conformance.Support {
	return conformance.Support{ZeroAmount: true, CallerPreimage: true, HashedDescription: true}
}

func (h *fakeHarness) StopNode(context.Context) error  { return h.fake.Stop() }
func (h *fakeHarness) StartNode(context.Context) error { return h.fake.Start() }

var _ conformance.Restarter = (*fakeHarness)(nil)

// socketDir returns a short directory for a unix socket: t.TempDir() paths
// can pass the ~108-byte limit of sun_path.
func socketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "clnfake")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func startFake(t testing.TB, plugin bool) *clnfake.Fake {
	t.Helper()
	return startFakeAs(t, plugin, "", nil)
}

// startFakeAs starts a fake playing version (default clnfake.DefaultVersion)
// whose payments go to route (default its own node).
func startFakeAs(t testing.TB, plugin bool, version string, route *memnode.Node) *clnfake.Fake {
	t.Helper()
	node, err := memnode.New(memnode.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	f, err := clnfake.New(clnfake.Config{
		Node:       node,
		SocketPath: filepath.Join(socketDir(t), "lightning-rpc"),
		Rune:       "test-rune",
		HoldPlugin: plugin,
		Version:    version,
		Route:      route,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// openURL is the backend URL for f over transport "socket" or "rest"; the
// REST rune comes from an environment variable, as an operator would pass it.
func openURL(t testing.TB, f *clnfake.Fake, transport string) string {
	t.Helper()
	switch transport {
	case "socket":
		return "cln://" + f.SocketPath()
	case "rest":
		t.Setenv("L402KIT_TEST_CLN_RUNE", f.Rune())
		return fmt.Sprintf("clnrest://%s?rune=%s&tls=0", f.RESTAddr(), url.QueryEscape("env:L402KIT_TEST_CLN_RUNE"))
	}
	t.Fatalf("unknown transport %q", transport)
	return ""
}

func newFakeHarness(t *testing.T, transport string, plugin bool) *fakeHarness {
	t.Helper()
	return newFakeHarnessTB(t, transport, plugin, "")
}

func newFakeHarnessTB(t testing.TB, transport string, plugin bool, version string) *fakeHarness {
	t.Helper()
	f := startFakeAs(t, plugin, version, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := openURL(t, f, transport)
	b, err := backend.Open(ctx, u)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	isHold := b.Supports(backend.AbilityHold)
	if isHold != plugin {
		t.Fatalf("hold plugin %v, but the backend is a HoldInvoicer: %v (%T)", plugin, isHold, b)
	}
	pf := startFakeAs(t, false, version, f.Node())
	payer, err := backend.Open(ctx, openURL(t, pf, transport))
	if err != nil {
		t.Fatalf("open the payer: %v", err)
	}
	t.Cleanup(func() { payer.Close() })
	return &fakeHarness{fake: f, b: b, payer: payer, payerF: pf, url: u}
}

var transports = []string{"socket", "rest"}

func TestConformance(t *testing.T) {
	for _, tr := range transports {
		for _, plugin := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/holdplugin=%v", tr, plugin), func(t *testing.T) {
				conformance.Run(t, newFakeHarness(t, tr, plugin))
			})
		}
	}
}

// TestConformanceReleases runs the contract on the fake playing a node
// that pays only with pay (v24.08, before xpay) and one that pays only with
// xpay (v27.03, which removes pay), the payer on the same release.
func TestConformanceReleases(t *testing.T) {
	for _, v := range []string{"v24.08", "v27.03"} {
		t.Run(v, func(t *testing.T) {
			conformance.Run(t, newFakeHarnessTB(t, "socket", true, v))
		})
	}
}

func TestProxyFlow(t *testing.T) {
	for _, tr := range transports {
		for _, plugin := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/holdplugin=%v", tr, plugin), func(t *testing.T) {
				proxytest.RunFlow(t, newFakeHarness(t, tr, plugin))
			})
		}
	}
}
