package importcheck

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// program imports every adapter and opens each by URL: memory must work;
// the others point at a loopback port nobody listens on, and each must
// either refuse at Open with ErrUnavailable or open lazily and answer its
// first call with ErrUnavailable. It prints one line per URL for the test
// to compare with what each adapter is known to do.
const program = `package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
	_ "github.com/l402kit/l402kit/cln"
	_ "github.com/l402kit/l402kit/eclair"
	_ "github.com/l402kit/l402kit/lnd"
	_ "github.com/l402kit/l402kit/lnurl"
	_ "github.com/l402kit/l402kit/memory"
	_ "github.com/l402kit/l402kit/nwc"
	_ "github.com/l402kit/l402kit/phoenixd"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	mem, err := backend.Open(ctx, "memory://")
	if err != nil {
		fail("memory: open: %v", err)
	}
	inv, err := mem.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(21), Memo: "importer"})
	if err != nil {
		fail("memory: create invoice: %v", err)
	}
	if got, err := mem.LookupInvoice(ctx, inv.PaymentHash); err != nil || got.PaymentRequest != inv.PaymentRequest {
		fail("memory: lookup: %v", err)
	}
	mem.Close()
	fmt.Println("memory: works")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	closed := l.Addr().String()
	l.Close()
	const mac = "0201036c6e6402f801030a1000000000000000000000000000000000"
	for _, u := range []string{
		"lnd://" + closed + "?macaroon=" + mac,
		"cln:///nonexistent/lightning-rpc",
		"clnrest://" + closed + "?rune=importcheck",
		"eclair://:password@" + closed,
		"phoenixd://:password@" + closed,
		"lnurl://someone@" + closed + "?tls=0",
		"nostr+walletconnect://b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4?relay=ws%3A%2F%2F" + closed + "&secret=71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c",
	} {
		scheme := u[:strings.Index(u, ":")]
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		b, err := backend.Open(cctx, u)
		stage := "open"
		if err == nil {
			stage = "first call"
			_, err = b.LookupInvoice(cctx, backend.PaymentHash{1})
			b.Close()
		}
		cancel()
		if !errors.Is(err, backend.ErrUnavailable) {
			fail("%s: %s: %v, want ErrUnavailable", scheme, stage, err)
		}
		fmt.Printf("%s: unavailable at %s\n", scheme, stage)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "importer: "+format+"\n", args...)
	os.Exit(1)
}
`

// want is what each adapter does in program: where a node nobody listens
// on shows, at Open or at the first call.
const want = `memory: works
lnd: unavailable at first call
cln: unavailable at open
clnrest: unavailable at open
eclair: unavailable at first call
phoenixd: unavailable at first call
lnurl: unavailable at open
nostr+walletconnect: unavailable at open
`

func TestImporterNeedsNoReplace(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds a module with every adapter, which takes a while")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("no go command: %v", err)
	}
	_, here, _, _ := runtime.Caller(0)
	checkout := filepath.Clean(filepath.Join(filepath.Dir(here), "..", "..", ".."))
	gomod, err := os.ReadFile(filepath.Join(checkout, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := "1.26"
	for _, line := range strings.Split(string(gomod), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			goVersion = strings.TrimSpace(v)
		}
	}

	dir := t.TempDir()
	mod := "module example.com/importer\n\ngo " + goVersion + "\n\n" +
		"require github.com/l402kit/l402kit v0.0.0\n\n" +
		"replace github.com/l402kit/l402kit => " + checkout + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	gocmd := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = dir
		// The throwaway module stands alone: no workspace, no vendor
		// directory, modules from the proxy (or the cache).
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = &out
		start := time.Now()
		err := cmd.Run()
		t.Logf("go %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
		return out.String(), err
	}

	if out, err := gocmd("mod", "tidy"); err != nil {
		t.Fatalf("go mod tidy in a module importing l402kit: %v\n%s", err, out)
	}
	tidied, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(tidied), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "replace") && !strings.Contains(line, "github.com/l402kit/l402kit =>") {
			t.Errorf("importer's go.mod gained a replace line: %s", line)
		}
	}
	out, err := gocmd("run", ".")
	if err != nil {
		t.Fatalf("go run: %v\n%s", err, out)
	}
	if out != want {
		t.Errorf("program printed\n%s\nwant\n%s", out, want)
	}

	// The protobuf module, if the build needs it at all, is the stock one.
	out, err = gocmd("list", "-m", "google.golang.org/protobuf")
	switch {
	case err != nil && strings.Contains(out, "not a known dependency"):
		t.Log("google.golang.org/protobuf is not in the importer's module graph")
	case err != nil:
		t.Fatalf("go list -m google.golang.org/protobuf: %v\n%s", err, out)
	case strings.Contains(out, "=>"):
		t.Errorf("google.golang.org/protobuf is replaced in the importer: %s", out)
	default:
		t.Logf("importer builds with stock %s", strings.TrimSpace(out))
	}
	// Nor does the program compile lnd's generated gRPC code.
	out, err = gocmd("list", "-deps", ".")
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(out) {
		if strings.HasPrefix(p, "github.com/lightningnetwork/lnd/lnrpc") || strings.HasPrefix(p, "google.golang.org/grpc") {
			t.Errorf("the importer compiles %s", p)
		}
		// go-nostr's module requires sqlite and libsql drivers (for its
		// event stores); the nwc adapter must compile none of them.
		if strings.Contains(p, "sqlite") || strings.Contains(p, "libsql") {
			t.Errorf("the importer compiles %s", p)
		}
	}
	t.Logf("the importer's program compiles %d packages", len(strings.Fields(out)))
}
