package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/fakes/l402fake"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/l402/clientstore"
	"github.com/l402kit/l402kit/memory"
)

// shop is a paid service on a memory node with the dev pay endpoint, as
// the demo proxy serves them: /paid/ sells plain invoices, /hold/ sells its
// first token on a hold invoice that the test settles or cancels, /file/
// serves a large body with ranges.
type shop struct {
	srv        *httptest.Server
	node       *memnode.Node
	payURL     string
	file       []byte
	challenges atomic.Int64
	held       chan backend.Preimage
	holdOnce   atomic.Bool

	mu     sync.Mutex
	ranges []string
}

func newShop(t *testing.T, price backend.MilliSat) *shop {
	t.Helper()
	b, err := memory.New(context.Background(), memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	handle, _ := memory.AsNode(b)
	node, _ := memnode.From(b)
	keys := l402.NewMemoryRootKeyStore()
	minter, verifier := l402.NewMinter(keys, ""), l402.NewVerifier(keys)
	s := &shop{node: node, held: make(chan backend.Preimage, 1), file: bytes.Repeat([]byte("0123456789abcdef"), 64<<10)}
	mux := http.NewServeMux()
	mux.Handle(memory.DevPayPath, memory.DevPayHandler(handle))
	paid := func(w http.ResponseWriter, r *http.Request) {
		if tok, err := l402.FromHeader(r.Header); err == nil {
			if verifier.Verify(r.Context(), tok, l402.Request{Path: r.URL.Path, Method: r.Method}) == nil {
				if strings.HasPrefix(r.URL.Path, "/file/") {
					s.mu.Lock()
					s.ranges = append(s.ranges, r.Header.Get("Range"))
					s.mu.Unlock()
					http.ServeContent(w, r, "file", time.Time{}, bytes.NewReader(s.file))
					return
				}
				fmt.Fprint(w, "the paid body\n")
				return
			}
		}
		var inv *backend.Invoice
		var err error
		if strings.HasPrefix(r.URL.Path, "/hold/") && s.holdOnce.CompareAndSwap(false, true) {
			var pre backend.Preimage
			rand.Read(pre[:])
			inv, err = b.CreateHoldInvoice(r.Context(), pre.Hash(), backend.InvoiceRequest{Amount: price})
			s.held <- pre
		} else {
			inv, err = b.CreateInvoice(r.Context(), backend.InvoiceRequest{Amount: price})
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		prefix := "/" + strings.SplitN(r.URL.Path, "/", 3)[1] + "/"
		mac, _, err := minter.Mint(r.Context(), inv.PaymentHash, l402.PathPrefixCaveat(prefix))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.challenges.Add(1)
		l402.AddChallenges(w.Header(), l402.Challenge{Macaroon: mac, Invoice: inv.PaymentRequest})
		http.Error(w, "payment required", http.StatusPaymentRequired)
	}
	mux.HandleFunc("/paid/", paid)
	for i := range 5 {
		mux.HandleFunc(fmt.Sprintf("/paid%d/", i), paid)
	}
	mux.HandleFunc("/hold/", paid)
	mux.HandleFunc("/file/", paid)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.payURL = "memory+dev://" + strings.TrimPrefix(s.srv.URL, "http://")
	return s
}

func openStore(t *testing.T, path string) *clientstore.Store {
	t.Helper()
	st, err := clientstore.Open(path, clientstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestGetBudgetsTokensAndSpendAcrossRuns(t *testing.T) {
	s := newShop(t, backend.Sat(10))
	store := filepath.Join(t.TempDir(), "l402.db")
	get := func(path string, extra ...string) (int, string, string) {
		return runCLI(append([]string{"get", s.srv.URL + path, "--backend", s.payURL, "--max-price", "10", "--store", store, "--budget", "life=15"}, extra...)...)
	}
	if code, out, errOut := get("/paid/a"); code != 0 || out != "the paid body\n" || !strings.Contains(errOut, "paid 10 sat") {
		t.Fatalf("first run: exit %d stdout %q stderr %q", code, out, errOut)
	}
	// A second run reuses the stored token: nothing paid.
	if code, _, errOut := get("/paid/b"); code != 0 || !strings.Contains(errOut, "nothing paid") {
		t.Fatalf("second run: exit %d stderr %q", code, errOut)
	}
	if n := s.challenges.Load(); n != 1 {
		t.Fatalf("%d challenges, want 1", n)
	}
	code, out, _ := runCLI("tokens", "list", "--json", "--store", store)
	var tv tokenView
	if code != 0 || json.Unmarshal([]byte(out), &tv) != nil || tv.State != "paid" || tv.Key != s.srv.URL+"/paid/" || tv.Amount != backend.Sat(10) {
		t.Fatalf("tokens list: exit %d %q", code, out)
	}
	if strings.Contains(out, "authorization") || strings.Contains(out, "preimage") {
		t.Fatalf("tokens list shows the credential: %s", out)
	}
	if code, out, _ := runCLI("tokens", "show", tv.PaymentHash.String(), "--store", store); code != 0 || !strings.Contains(out, tv.Key) {
		t.Fatalf("tokens show: exit %d %q", code, out)
	}
	if code, _, errOut := runCLI("tokens", "rm", tv.Key, "--store", store); code != 0 {
		t.Fatalf("tokens rm: exit %d %s", code, errOut)
	}
	// Without the token another 10 sat is needed; 5 are left.
	code, out, errOut := get("/paid/c")
	if code != exitOverBudget || out != "" || !strings.Contains(errOut, "total life budget 15 sat") || !strings.Contains(errOut, "5 sat left") || !strings.Contains(errOut, "nothing paid") {
		t.Fatalf("over budget: exit %d stdout %q stderr %q", code, out, errOut)
	}
	// A dry run says the same without paying; with room it says it would pay.
	if code, _, errOut := get("/paid/c", "--dry-run"); code != exitOverBudget || !strings.Contains(errOut, "would pay 10 sat") || !strings.Contains(errOut, "5 sat left") {
		t.Fatalf("dry run over budget: exit %d stderr %q", code, errOut)
	}
	if code, _, errOut := runCLI("get", s.srv.URL+"/paid/c", "--max-price", "10", "--store", store, "--dry-run"); code != 0 || !strings.Contains(errOut, "would pay 10 sat") || !strings.Contains(errOut, "the budgets allow it") {
		t.Fatalf("dry run without budgets or backend: exit %d stderr %q", code, errOut)
	}
	// A price above --max-price is over budget too.
	if code, _, errOut := get("/paid/c", "--max-price", "9"); code != exitOverBudget || !strings.Contains(errOut, "limit is 9 sat") {
		t.Fatalf("over max price: exit %d stderr %q", code, errOut)
	}
	code, out, _ = runCLI("spend", "--json", "--store", store)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var rec clientstore.SpendRecord
	var sum spendSum
	if code != 0 || len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &rec) != nil || json.Unmarshal([]byte(lines[1]), &sum) != nil {
		t.Fatalf("spend --json: exit %d %q", code, out)
	}
	if rec.Outcome != "paid" || rec.Amount != backend.Sat(10) || rec.Preimage == "" || rec.Host != strings.TrimPrefix(s.srv.URL, "http://") || rec.Scheme != "L402" {
		t.Fatalf("spend record %+v", rec)
	}
	if sum.Group != rec.Host || sum.Count != 1 || sum.Amount != backend.Sat(10) {
		t.Fatalf("spend sum %+v", sum)
	}
	if code, out, _ := runCLI("budget", "--store", store, "--budget", "life=15"); code != 0 || !strings.Contains(out, "total/life=15") || !strings.Contains(out, "left        5 sat") {
		t.Fatalf("budget: exit %d %q", code, out)
	}
}

func TestGetExitCodes(t *testing.T) {
	s := newShop(t, backend.Sat(10))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/"
	ln.Close()
	if code, _, errOut := runCLI("get", closed, "--backend", s.payURL, "--max-price", "10"); code != exitNetworkFail {
		t.Errorf("closed port: exit %d stderr %q, want %d", code, errOut, exitNetworkFail)
	}
	// Another memory node cannot pay the shop's invoices: no route.
	code, _, errOut := runCLI("get", s.srv.URL+"/paid/x", "--backend", "memory://", "--max-price", "10")
	if code != exitPayment || !strings.Contains(errOut, "no route") {
		t.Errorf("payment failed: exit %d stderr %q, want %d", code, errOut, exitPayment)
	}
}

func TestSettingsFromEnvironmentAndConfig(t *testing.T) {
	s := newShop(t, backend.Sat(10))
	dir := t.TempDir()
	conf := filepath.Join(dir, "config.yaml")
	os.WriteFile(conf, []byte("backend: "+s.payURL+"\nmax-price: 5\nbudget: [day=100, \"*/hour=50\"]\n"), 0o600)
	t.Setenv("L402_CONFIG", conf)
	store := filepath.Join(dir, "l402.db")
	// max-price 5 from the file: refused.
	if code, _, errOut := runCLI("get", s.srv.URL+"/paid/x", "--store", store); code != exitOverBudget || !strings.Contains(errOut, "limit is 5 sat") {
		t.Fatalf("config max-price: exit %d stderr %q", code, errOut)
	}
	// The environment wins over the file, the command line over both.
	t.Setenv("L402_MAX_PRICE", "10")
	t.Setenv("L402_STORE", store)
	if code, _, errOut := runCLI("get", s.srv.URL+"/paid/x"); code != 0 {
		t.Fatalf("env max-price: exit %d stderr %q", code, errOut)
	}
	if code, out, _ := runCLI("budget"); code != 0 || !strings.Contains(out, "total/day=100") || !strings.Contains(out, "*/hour=50 ("+strings.TrimPrefix(s.srv.URL, "http://")+")") || !strings.Contains(out, "left       40 sat") {
		t.Fatalf("budget from config: exit %d %q", code, out)
	}
	os.WriteFile(conf, []byte("max-prise: 5\n"), 0o600)
	if code, _, errOut := runCLI("get", s.srv.URL+"/paid/x"); code != exitUsage || !strings.Contains(errOut, `unknown setting "max-prise"`) {
		t.Fatalf("unknown setting: exit %d stderr %q", code, errOut)
	}
}

func TestGetResumesDownload(t *testing.T) {
	s := newShop(t, backend.Sat(1))
	dir := t.TempDir()
	out := filepath.Join(dir, "file.bin")
	// An earlier run stopped after the first third.
	os.WriteFile(out+".part", s.file[:len(s.file)/3], 0o644)
	code, stdout, errOut := runCLI("get", s.srv.URL+"/file/x", "--backend", s.payURL, "--max-price", "1", "-o", out, "--progress", "on")
	if code != 0 || stdout != "" {
		t.Fatalf("exit %d stdout %q stderr %q", code, stdout, errOut)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, s.file) {
		t.Fatalf("downloaded %d bytes (%v), want %d", len(got), err, len(s.file))
	}
	if _, err := os.Stat(out + ".part"); !os.IsNotExist(err) {
		t.Fatalf("part file left: %v", err)
	}
	s.mu.Lock()
	ranges := append([]string(nil), s.ranges...)
	s.mu.Unlock()
	if want := fmt.Sprintf("bytes=%d-", len(s.file)/3); len(ranges) != 1 || ranges[0] != want {
		t.Fatalf("server saw ranges %q, want [%q]", ranges, want)
	}
	if !strings.Contains(errOut, fmt.Sprintf("progress: %d/%d bytes (100%%)", len(s.file), len(s.file))) || strings.Count(errOut, "progress: ") < 3 {
		t.Fatalf("no progress on stderr: %q", errOut)
	}
}

// childArgsEnv makes the test binary run the command with these
// arguments (separated by U+001F): a separate process the test can kill.
const childArgsEnv = "L402_CMD_TEST_CHILD_ARGS"

// TestCrashMidPayment kills an l402 get process while its payment is in
// flight (held by the server's hold invoice), then runs again: the
// payment stays pending and counted meanwhile, and is never paid twice;
// once the server settles it, the next run recovers the paid token from
// the payer and uses it, paying nothing more; once canceled, the next
// run releases its budget and pays afresh.
func TestCrashMidPayment(t *testing.T) {
	for _, settle := range []bool{true, false} {
		t.Run(map[bool]string{true: "settled", false: "canceled"}[settle], func(t *testing.T) {
			s := newShop(t, backend.Sat(10))
			store := filepath.Join(t.TempDir(), "l402.db")
			args := []string{"get", s.srv.URL + "/hold/a", "--backend", s.payURL, "--max-price", "10", "--store", store, "--budget", "life=25"}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			child := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			child.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, "\x1f"))
			var childErr bytes.Buffer
			child.Stderr = &childErr
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			var pre backend.Preimage
			select {
			case pre = <-s.held:
			case <-ctx.Done():
				t.Fatal("the child never asked for the hold challenge")
			}
			// Wait until its payment is held at the node: mid-payment.
			for {
				inv, err := s.node.WaitInvoice(ctx, pre.Hash())
				if err != nil {
					t.Fatalf("waiting for the payment: %v (child: %s)", err, childErr.String())
				}
				if inv.State == backend.StateHeld {
					break
				}
			}
			if err := child.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			child.Wait()

			st := openStore(t, store)
			pend, err := st.Pending()
			if err != nil || len(pend) != 1 || pend[0].PaymentHash != pre.Hash() {
				t.Fatalf("after the kill: pending %+v %v, want the held payment", pend, err)
			}
			if toks, _ := st.Tokens(); len(toks) != 0 {
				t.Fatalf("tokens after the kill: %+v", toks)
			}
			// While it is unresolved it counts: 10 pending + 10 more + fee
			// room fit 25, a third would not.
			if code, out, _ := runCLI("budget", "--store", store, "--budget", "life=25"); code != 0 || !strings.Contains(out, "left       15 sat") {
				t.Fatalf("budget with a pending payment: %q", out)
			}

			if settle {
				if err := s.node.SettleInvoice(ctx, pre); err != nil {
					t.Fatal(err)
				}
			} else if err := s.node.CancelInvoice(ctx, pre.Hash()); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCLI(args...)
			if code != 0 || out != "the paid body\n" || !strings.Contains(errOut, "resolved 1 payment(s) left pending") {
				t.Fatalf("run after the crash: exit %d stdout %q stderr %q", code, out, errOut)
			}
			spends, err := st.Spends(time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			var outcomes []string
			for _, r := range spends {
				outcomes = append(outcomes, r.Outcome)
			}
			if settle {
				// Recovered, used, nothing paid again: one challenge only.
				if !strings.Contains(errOut, "nothing paid") || s.challenges.Load() != 1 || strings.Join(outcomes, ",") != "recovered" {
					t.Fatalf("settled: challenges %d, outcomes %v, stderr %q", s.challenges.Load(), outcomes, errOut)
				}
				if spends[0].Preimage != pre.String() {
					t.Fatalf("recovered entry %+v", spends[0])
				}
			} else {
				if !strings.Contains(errOut, "paid 10 sat") || s.challenges.Load() != 2 || strings.Join(outcomes, ",") != "failed,paid" {
					t.Fatalf("canceled: challenges %d, outcomes %v, stderr %q", s.challenges.Load(), outcomes, errOut)
				}
			}
			if pend, _ := st.Pending(); len(pend) != 0 {
				t.Fatalf("still pending: %+v", pend)
			}
		})
	}
}

// A Payment charge (Aperture's second scheme) is held to the budgets and
// logged like a token purchase; it leaves no token.
func TestChargeWithinBudget(t *testing.T) {
	nodeURL := "memory://" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	b, err := backend.Open(context.Background(), nodeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fake := l402fake.NewAperture(t, l402fake.ApertureConfig{Node: b, Price: backend.Sat(5), Payment: true})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	store := filepath.Join(t.TempDir(), "l402.db")
	args := []string{"get", srv.URL + "/service/x", "--backend", nodeURL, "--max-price", "5", "--schemes", "Payment,L402", "--store", store}
	if code, _, errOut := runCLI(append(args, "--budget", "day=4")...); code != exitOverBudget || !strings.Contains(errOut, "4 sat left") {
		t.Fatalf("charge over budget: exit %d stderr %q", code, errOut)
	}
	if code, out, errOut := runCLI(append(args, "--budget", "day=10")...); code != 0 || out != "aperture content for GET /service/x\n" {
		t.Fatalf("charge: exit %d stdout %q stderr %q", code, out, errOut)
	}
	st := openStore(t, store)
	spends, _ := st.Spends(time.Time{})
	if len(spends) != 1 || spends[0].Scheme != l402.SchemePayment || spends[0].Outcome != clientstore.OutcomePaid || spends[0].Preimage == "" || spends[0].Amount != backend.Sat(5) {
		t.Fatalf("spend log %+v", spends)
	}
	if toks, _ := st.Tokens(); len(toks) != 0 {
		t.Fatalf("a charge left tokens %+v", toks)
	}
}

// Several l402 get processes sharing one store and budget at once: however
// they interleave, together they never pay past it; each either pays,
// reuses a token another stored, or is refused with exit status 3.
func TestConcurrentProcessesHoldTheBudget(t *testing.T) {
	s := newShop(t, backend.Sat(10))
	store := filepath.Join(t.TempDir(), "l402.db")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 5
	var kids []*exec.Cmd
	var errs []*bytes.Buffer
	for i := range n {
		// Different routes need different tokens: every one must pay.
		args := []string{"get", fmt.Sprintf("%s/paid%d/x", s.srv.URL, i), "--backend", s.payURL, "--max-price", "10", "--store", store, "--budget", "life=25"}
		c := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		c.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, "\x1f"))
		var e bytes.Buffer
		c.Stderr = &e
		kids, errs = append(kids, c), append(errs, &e)
	}
	for _, c := range kids {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	paid, refused := 0, 0
	for i, c := range kids {
		err := c.Wait()
		switch code := c.ProcessState.ExitCode(); code {
		case 0:
			paid++
		case exitOverBudget:
			refused++
		default:
			t.Errorf("child %d: exit %d (%v): %s", i, code, err, errs[i])
		}
	}
	// 25 sat at 10 a token: exactly two pay, three are refused.
	if paid != 2 || refused != 3 {
		t.Fatalf("%d paid, %d refused; want 2 and 3", paid, refused)
	}
	spends, err := openStore(t, store).Spends(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var sum backend.MilliSat
	for _, r := range spends {
		sum += r.Spent()
	}
	if len(spends) != 2 || sum != backend.Sat(20) {
		t.Fatalf("spend log: %d entries, %s", len(spends), sum)
	}
}
