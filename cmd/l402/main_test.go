package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/memory"
)

// demo is a small paid service on a named memory node, with the memory
// dev pay endpoint beside it, as the demo proxy serves them.
type demo struct {
	srv      *httptest.Server
	node     *memnode.Node
	nodeURL  string
	invoices []backend.PaymentHash
}

func newDemo(t *testing.T, price backend.MilliSat) *demo {
	t.Helper()
	ctx := context.Background()
	d := &demo{nodeURL: "memory://" + strings.ReplaceAll(t.Name(), "/", "-")}
	b, err := backend.Open(ctx, d.nodeURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	handle, ok := memory.AsNode(b)
	if !ok {
		t.Fatal("memory:// did not open a memory node")
	}
	d.node, _ = memnode.From(b)
	store := l402.NewMemoryRootKeyStore()
	minter, verifier := l402.NewMinter(store, ""), l402.NewVerifier(store)
	mux := http.NewServeMux()
	mux.Handle(memory.DevPayPath, memory.DevPayHandler(handle))
	mux.HandleFunc("/paid/", func(w http.ResponseWriter, r *http.Request) {
		if tok, err := l402.FromHeader(r.Header); err == nil {
			if err := verifier.Verify(r.Context(), tok, l402.Request{Path: r.URL.Path, Method: r.Method}); err == nil {
				fmt.Fprint(w, "the paid body\n")
				return
			}
		}
		inv, err := backend.New(d.node, backend.Options{}).CreateInvoice(r.Context(), backend.InvoiceRequest{Amount: price})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		mac, _, err := minter.Mint(r.Context(), inv.PaymentHash, l402.PathPrefixCaveat("/paid/"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		d.invoices = append(d.invoices, inv.PaymentHash)
		l402.AddChallenges(w.Header(), l402.Challenge{Macaroon: mac, Invoice: inv.PaymentRequest})
		http.Error(w, "payment required", http.StatusPaymentRequired)
	})
	mux.HandleFunc("/missing", http.NotFound)
	d.srv = httptest.NewServer(mux)
	t.Cleanup(d.srv.Close)
	return d
}

func (d *demo) settled(t *testing.T) int {
	n := 0
	for _, h := range d.invoices {
		inv, err := d.node.LookupInvoice(context.Background(), h)
		if err != nil {
			t.Fatal(err)
		}
		if inv.State == backend.StateSettled {
			n++
		}
	}
	return n
}

// testState holds the store files of the tests, so that no test touches
// the user's own store and config.
var testState string

func TestMain(m *testing.M) {
	if args := os.Getenv(childArgsEnv); args != "" {
		// A child process of a test: the command itself.
		os.Exit(run(context.Background(), strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
	}
	dir, err := os.MkdirTemp("", "l402-cmd-test-")
	if err != nil {
		panic(err)
	}
	testState = dir
	os.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var storeSeq atomic.Int64

// runCLI runs the command as a fresh process would: with a store of its
// own unless the arguments name one (--store) or L402_STORE does.
func runCLI(args ...string) (code int, stdout, stderr string) {
	if len(args) > 0 && slices.Contains([]string{"get", "tokens", "spend", "budget", "mcp"}, args[0]) &&
		!slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(strings.TrimLeft(a, "-"), "store") }) && os.Getenv("L402_STORE") == "" {
		args = append(args, "--store", filepath.Join(testState, fmt.Sprintf("run%d.db", storeSeq.Add(1))))
	}
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestGetPays(t *testing.T) {
	d := newDemo(t, backend.Sat(10))
	for _, c := range []struct{ name, backendURL string }{
		{"shared memory node", d.nodeURL},
		{"demo dev endpoint", "memory+dev://" + strings.TrimPrefix(d.srv.URL, "http://")},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := d.settled(t)
			code, out, errOut := runCLI("get", d.srv.URL+"/paid/x", "--backend", c.backendURL, "--max-price", "10")
			if code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, errOut)
			}
			if out != "the paid body\n" {
				t.Fatalf("stdout %q", out)
			}
			last := d.invoices[len(d.invoices)-1]
			want := fmt.Sprintf("paid 10 sat (fee 0 sat) to %s, payment hash %s", d.srv.URL, last)
			if !strings.Contains(errOut, want) {
				t.Fatalf("stderr %q, want it to contain %q", errOut, want)
			}
			if d.settled(t) != before+1 {
				t.Fatal("invoice not settled")
			}
		})
	}
}

// TestGetVerbose: -v logs each request's status, the challenge and the
// retry with the token, and never the token.
func TestGetVerbose(t *testing.T) {
	d := newDemo(t, backend.Sat(10))
	code, _, errOut := runCLI("get", d.srv.URL+"/paid/x", "--backend", d.nodeURL, "--max-price", "10", "-v")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{`token=false status="402 Payment Required"`, `token=true status="200 OK"`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "L402 ") {
		t.Errorf("stderr shows a credential:\n%s", errOut)
	}
}

func TestGetBackendFromEnvironment(t *testing.T) {
	d := newDemo(t, backend.Sat(1))
	t.Setenv("L402_TEST_BACKEND", d.nodeURL)
	code, out, errOut := runCLI("get", "--max-price=1", "--backend", "env:L402_TEST_BACKEND", d.srv.URL+"/paid/")
	if code != 0 || out != "the paid body\n" {
		t.Fatalf("exit %d stdout %q stderr %s", code, out, errOut)
	}
	t.Setenv("L402_BACKEND", d.nodeURL)
	if code, _, errOut := runCLI("get", d.srv.URL+"/paid/", "--max-price", "1"); code != 0 {
		t.Fatalf("L402_BACKEND: exit %d stderr %s", code, errOut)
	}
}

func TestGetRefusesOverPrice(t *testing.T) {
	d := newDemo(t, backend.Sat(10))
	code, out, errOut := runCLI("get", d.srv.URL+"/paid/x", "--backend", d.nodeURL, "--max-price", "9")
	if code != exitOverBudget || out != "" {
		t.Fatalf("exit %d stdout %q", code, out)
	}
	for _, want := range []string{"asks 10 sat, limit is 9 sat", "nothing paid"} {
		if !strings.Contains(errOut, want) {
			t.Fatalf("stderr %q lacks %q", errOut, want)
		}
	}
	if d.settled(t) != 0 {
		t.Fatal("paid although over the limit")
	}
}

func TestGetHTTPError(t *testing.T) {
	d := newDemo(t, backend.Sat(1))
	code, out, errOut := runCLI("get", d.srv.URL+"/missing", "--backend", d.nodeURL)
	if code != exitHTTPStatus || !strings.Contains(out, "404") || !strings.Contains(errOut, "404 Not Found") || !strings.Contains(errOut, "nothing paid") {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errOut)
	}
}

func TestUsage(t *testing.T) {
	t.Setenv("L402_BACKEND", "")
	cases := []struct {
		args []string
		code int
		why  string
	}{
		{nil, 2, "usage"},
		{[]string{"--help"}, 0, "usage"},
		{[]string{"post", "http://x"}, 2, "unknown command"},
		{[]string{"get"}, 2, "exactly one URL"},
		{[]string{"get", "http://a", "http://b", "--backend", "memory://"}, 2, "exactly one URL"},
		{[]string{"get", "http://a"}, 2, "no backend"},
		{[]string{"get", "http://a", "--max-price", "ten"}, 2, "invalid value"},
		{[]string{"get", "http://a", "--max-price", "-1", "--backend", "memory://"}, 2, "negative"},
		{[]string{"get", "http://a", "--backend", "nosuch://x"}, 1, "no backend registered"},
		{[]string{"get", "http://a", "--backend", "env:L402_UNSET_VARIABLE"}, 1, "L402_UNSET_VARIABLE is not set"},
		{[]string{"get", "http://a", "-H", "novalue", "--backend", "memory://"}, 2, "not Name: value"},
	}
	for _, c := range cases {
		code, _, errOut := runCLI(c.args...)
		if code != c.code || !strings.Contains(errOut, c.why) {
			t.Errorf("l402 %q: exit %d stderr %q; want exit %d saying %q", c.args, code, errOut, c.code, c.why)
		}
	}
}

// l402 --version prints the build: version, commit, toolchain.
func TestVersion(t *testing.T) {
	var o, e bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, &o, &e); code != 0 {
		t.Fatalf("l402 --version: exit %d, %s", code, e.String())
	}
	lines := strings.Split(o.String(), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "l402 ") || !strings.HasPrefix(lines[1], "commit ") || !strings.HasPrefix(lines[2], "built with go") {
		t.Errorf("l402 --version printed:\n%s", o.String())
	}
}
