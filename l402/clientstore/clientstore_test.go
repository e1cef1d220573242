package clientstore

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/fakes/l402fake"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/l402"
	_ "github.com/l402kit/l402kit/memory" // registers memory://
)

// intent makes a payment intent with a real macaroon over a fresh hash,
// and the preimage that pays it.
func intent(t testing.TB, host string, amount backend.MilliSat) (l402.PaymentIntent, backend.Preimage) {
	t.Helper()
	var pre backend.Preimage
	if _, err := rand.Read(pre[:]); err != nil {
		t.Fatal(err)
	}
	mac, _, err := l402.NewMinter(l402.NewMemoryRootKeyStore(), "").Mint(context.Background(), pre.Hash())
	if err != nil {
		t.Fatal(err)
	}
	auth := (&l402.Token{Macaroon: mac, Preimage: pre}).Authorization()
	enc := strings.TrimPrefix(auth[:strings.LastIndexByte(auth, ':')], l402.SchemeL402+" ")
	origin := "https://" + host
	return l402.PaymentIntent{
		Origin: origin, Host: host, URL: origin + "/paid/x", Scheme: l402.SchemeL402,
		Key: origin + "/", Macaroon: enc, Invoice: "lnbcrt1...", PaymentHash: pre.Hash(),
		Amount: amount, Deadline: time.Now().Add(time.Minute),
	}, pre
}

func mustBudgets(t testing.TB, specs ...string) []l402.Budget {
	t.Helper()
	var out []l402.Budget
	for _, s := range specs {
		b, err := l402.ParseBudget(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func payThrough(t testing.TB, s *Store, p l402.PaymentIntent, pre backend.Preimage) error {
	t.Helper()
	e, err := s.Begin(context.Background(), p)
	if err != nil {
		return err
	}
	tok, err := p.TokenFor(pre)
	if err != nil {
		t.Fatal(err)
	}
	return e.Paid(context.Background(), tok, l402.Receipt{Origin: p.Origin, Amount: p.Amount, PaymentHash: p.PaymentHash, Preimage: pre})
}

func TestBudgetsRefuseNameTheBudgetAndRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l402.db")
	s, err := Open(path, Options{Budgets: mustBudgets(t, "day=100", "*/hour=60", "b.example/life=5")})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("store file mode: %v %v, want 0600", fi.Mode(), err)
	}
	p, pre := intent(t, "a.example", backend.Sat(50))
	if err := payThrough(t, s, p, pre); err != nil {
		t.Fatal(err)
	}
	// 50 paid to a.example this hour: the per-host hour budget has 10 left.
	p2, _ := intent(t, "a.example", backend.Sat(20))
	_, err = s.Begin(context.Background(), p2)
	var be *l402.BudgetError
	if !errors.As(err, &be) || !errors.Is(err, l402.ErrOverBudget) {
		t.Fatalf("Begin over the host budget: %v, want a BudgetError", err)
	}
	if be.Budget.Host != "*" || be.Budget.Period != l402.PeriodHour || be.Left != backend.Sat(10) || be.Spent != backend.Sat(50) || be.Host != "a.example" {
		t.Fatalf("BudgetError %+v: want the */hour budget with 10 sat left", be)
	}
	if !strings.Contains(err.Error(), "10 sat left") {
		t.Errorf("error %q does not say what is left", err)
	}
	// Another host has its own hour budget but shares the day's.
	p3, _ := intent(t, "c.example", backend.Sat(60))
	_, err = s.Begin(context.Background(), p3)
	if !errors.As(err, &be) || be.Budget.Period != l402.PeriodDay || be.Left != backend.Sat(50) {
		t.Fatalf("Begin over the day budget: %v, want the day budget with 50 sat left", err)
	}
	// A failed payment releases its reservation; an unknown one keeps it.
	p4, _ := intent(t, "c.example", backend.Sat(40))
	e, err := s.Begin(context.Background(), p4)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Failed(context.Background(), fmt.Errorf("x: %w", backend.ErrPaymentFailed)); err != nil {
		t.Fatal(err)
	}
	p5, _ := intent(t, "c.example", backend.Sat(40))
	e, err = s.Begin(context.Background(), p5)
	if err != nil {
		t.Fatalf("after a failed payment released its 40 sat: %v", err)
	}
	if err := e.Failed(context.Background(), fmt.Errorf("x: %w", backend.ErrPaymentUnknown)); err != nil {
		t.Fatal(err)
	}
	p6, _ := intent(t, "c.example", backend.Sat(20))
	if _, err := s.Begin(context.Background(), p6); !errors.Is(err, l402.ErrOverBudget) {
		t.Fatalf("after an unknown payment of 40 kept counting: %v, want over budget", err)
	}
	// A budget for one host.
	p7, _ := intent(t, "b.example", backend.Sat(6))
	if _, err := s.Begin(context.Background(), p7); !errors.As(err, &be) || be.Budget.Host != "b.example" {
		t.Fatalf("Begin over b.example's budget: %v", err)
	}

	spends, err := s.Spends(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, r := range spends {
		outcomes = append(outcomes, r.Outcome)
	}
	if got := strings.Join(outcomes, ","); got != "paid,failed,unknown" {
		t.Errorf("spend log outcomes %s, want paid,failed,unknown", got)
	}
	if spends[0].Preimage != pre.String() || spends[0].Host != "a.example" || spends[0].Amount != backend.Sat(50) {
		t.Errorf("paid entry %+v", spends[0])
	}
	st, err := s.Remaining("")
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]backend.MilliSat{}
	for _, b := range st {
		left[b.Spec+"@"+b.Host] = b.Left
	}
	want := map[string]backend.MilliSat{
		"total/day=100@": backend.Sat(10), "*/hour=60@a.example": backend.Sat(10),
		"*/hour=60@c.example": backend.Sat(20), "b.example/life=5@b.example": backend.Sat(5),
	}
	if fmt.Sprint(left) != fmt.Sprint(want) {
		t.Errorf("remaining %v, want %v", left, want)
	}
}

func TestParseBudget(t *testing.T) {
	for in, want := range map[string]string{
		"day=5": "total/day=5", "total/HOUR=1": "total/hour=1", "*/month=7": "*/month=7",
		"API.example.com:8443/life=9": "api.example.com:8443/life=9",
	} {
		b, err := l402.ParseBudget(in)
		if err != nil || b.String() != want {
			t.Errorf("ParseBudget(%q) = %v, %v; want %s", in, b, err, want)
		}
	}
	for _, bad := range []string{"day", "week=5", "day=-1", "day=1.5", "a b/day=1"} {
		if _, err := l402.ParseBudget(bad); err == nil {
			t.Errorf("ParseBudget(%q) accepted", bad)
		}
	}
}

// The concurrent-process test re-executes the test binary: each child
// opens the same store and tries payments until the budget refuses one.
const childEnv = "CLIENTSTORE_TEST_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(childPays(path))
	}
	os.Exit(m.Run())
}

// childPays pays 7 sat at a time until the budget refuses, printing
// "paid" per payment.
func childPays(path string) int {
	s, err := Open(path, Options{Budgets: mustBudgets(nopTB{}, "day=100")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Wait for the parent's go, so the children run together.
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return 1
	}
	for {
		p, pre := intent(nopTB{}, "a.example", backend.Sat(7))
		if err := payThrough(nopTB{}, s, p, pre); err != nil {
			if errors.Is(err, l402.ErrOverBudget) {
				return 0
			}
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("paid")
	}
}

// nopTB lets the helpers run in a child, where a failure is a panic.
type nopTB struct{ testing.TB }

func (nopTB) Helper()               {}
func (nopTB) Fatal(args ...any)     { panic(fmt.Sprint(args...)) }
func (nopTB) Fatalf(string, ...any) { panic("fatal") }

func TestConcurrentProcessesShareTheBudget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l402.db")
	if _, err := Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	const children = 4
	type child struct {
		cmd   *exec.Cmd
		in    io.WriteCloser
		out   *strings.Builder
		errBf *strings.Builder
	}
	var kids []child
	for range children {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		c := child{cmd: cmd, in: in, out: &strings.Builder{}, errBf: &strings.Builder{}}
		cmd.Stdout, cmd.Stderr = c.out, c.errBf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		kids = append(kids, c)
	}
	for _, c := range kids {
		fmt.Fprintln(c.in, "go")
	}
	paid := 0
	for i, c := range kids {
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v: %s", i, err, c.errBf)
		}
		paid += strings.Count(c.out.String(), "paid")
	}
	// 100 sat a day at 7 sat each: 14 payments between them, never 15.
	if paid != 14 {
		t.Fatalf("%d children paid %d times 7 sat under a 100 sat budget, want 14", children, paid)
	}
	s, err := Open(path, Options{Budgets: mustBudgets(t, "day=100")})
	if err != nil {
		t.Fatal(err)
	}
	spends, err := s.Spends(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var sum backend.MilliSat
	for _, r := range spends {
		sum += r.Spent()
	}
	if len(spends) != 14 || sum != backend.Sat(98) {
		t.Fatalf("spend log has %d entries summing %s, want 14 summing 98 sat", len(spends), sum)
	}
}

// server is a paid resource on a memory node, counting the challenges it
// issued.
type server struct {
	*httptest.Server
	node       *memnode.Node
	challenges atomic.Int64
}

func newServer(t *testing.T, price backend.MilliSat) *server {
	t.Helper()
	b, err := backend.Open(context.Background(), "memory://"+strings.ReplaceAll(t.Name(), "/", "-"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	node, _ := memnode.From(b)
	keys := l402.NewMemoryRootKeyStore()
	minter, verifier := l402.NewMinter(keys, ""), l402.NewVerifier(keys)
	s := &server{node: node}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, err := l402.FromHeader(r.Header); err == nil {
			if verifier.Verify(r.Context(), tok, l402.Request{Path: r.URL.Path, Method: r.Method}) == nil {
				fmt.Fprint(w, "paid body")
				return
			}
		}
		inv, err := b.CreateInvoice(r.Context(), backend.InvoiceRequest{Amount: price})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		mac, _, err := minter.Mint(r.Context(), inv.PaymentHash, l402.PathPrefixCaveat("/paid/"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.challenges.Add(1)
		l402.AddChallenges(w.Header(), l402.Challenge{Macaroon: mac, Invoice: inv.PaymentRequest})
		http.Error(w, "payment required", http.StatusPaymentRequired)
	}))
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, tr *l402.Transport, url string) (string, error) {
	t.Helper()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func TestTransportReusesTokensAcrossRunsAndHoldsBudgets(t *testing.T) {
	srv := newServer(t, backend.Sat(30))
	path := filepath.Join(t.TempDir(), "l402.db")
	run := func() *l402.Transport { // a fresh process: a new Store handle and Transport
		s, err := Open(path, Options{Budgets: mustBudgets(t, "life=50")})
		if err != nil {
			t.Fatal(err)
		}
		return &l402.Transport{Payer: srv.node, MaxPrice: backend.Sat(100), Tokens: s, Ledger: s}
	}
	if body, err := get(t, run(), srv.URL+"/paid/a"); err != nil || body != "paid body" {
		t.Fatalf("first run: %q %v", body, err)
	}
	if body, err := get(t, run(), srv.URL+"/paid/b"); err != nil || body != "paid body" {
		t.Fatalf("second run: %q %v", body, err)
	}
	if n := srv.challenges.Load(); n != 1 {
		t.Fatalf("server issued %d challenges, want 1: the second run reuses the stored token", n)
	}
	// Another route needs another token: 30 more would pass the life budget.
	_, err := get(t, run(), srv.URL+"/other")
	var be *l402.BudgetError
	var ce *l402.ChallengeError
	if !errors.As(err, &ce) || !errors.As(err, &be) || be.Left != backend.Sat(20) || be.Budget.Period != l402.PeriodLife {
		t.Fatalf("over budget: %v, want a ChallengeError holding a BudgetError with 20 sat left", err)
	}
	s, _ := Open(path, Options{})
	spends, _ := s.Spends(time.Time{})
	if len(spends) != 1 || spends[0].Outcome != OutcomePaid {
		t.Fatalf("spend log %+v, want one paid entry (nothing paid over budget)", spends)
	}
	toks, err := s.Tokens()
	if err != nil || len(toks) != 1 || toks[0].Key != strings.ToLower(srv.URL)+"/paid/" {
		t.Fatalf("tokens %+v %v", toks, err)
	}
	// A refused token is dropped: the server forgets its keys.
	if ok, err := s.RemoveToken(toks[0].PaymentHash.String()); !ok || err != nil {
		t.Fatalf("RemoveToken by hash: %v %v", ok, err)
	}
	if toks, _ := s.Tokens(); len(toks) != 0 {
		t.Fatalf("tokens after rm: %+v", toks)
	}
}

func TestRecoverCompletesAPaymentLeftPending(t *testing.T) {
	srv := newServer(t, backend.Sat(5))
	path := filepath.Join(t.TempDir(), "l402.db")
	s, err := Open(path, Options{Budgets: mustBudgets(t, "life=6")})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := backend.New(srv.node, backend.Options{}).CreateInvoice(context.Background(), backend.InvoiceRequest{Amount: backend.Sat(5)})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := intent(t, "x.example", backend.Sat(5))
	p.PaymentHash, p.Invoice, p.Deadline = inv.PaymentHash, inv.PaymentRequest, time.Now().Add(-time.Second)
	if _, err := s.Begin(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	// The process "died" here: the entry is pending; the payment runs on.
	if n, err := s.Recover(context.Background(), srv.node); n != 0 || err != nil {
		t.Fatalf("Recover while in flight: %d %v, want nothing resolved", n, err)
	}
	// The same challenge is never paid twice.
	if _, err := s.Begin(context.Background(), p); !errors.Is(err, l402.ErrBadChallenge) {
		t.Fatalf("Begin of a pending payment again: %v", err)
	}
	if _, err := srv.node.PayInvoice(context.Background(), inv.PaymentRequest, backend.PayOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Recover(context.Background(), srv.node); n != 1 || err != nil {
		t.Fatalf("Recover after the payment completed: %d %v", n, err)
	}
	if tok, ok := s.Get(p.Key); !ok || tok.Preimage.Hash() != inv.PaymentHash {
		t.Fatalf("recovered token %v %v", tok, ok)
	}
	spends, _ := s.Spends(time.Time{})
	if len(spends) != 1 || spends[0].Outcome != OutcomeRecovered {
		t.Fatalf("spend log %+v", spends)
	}
	if pend, _ := s.Pending(); len(pend) != 0 {
		t.Fatalf("still pending: %+v", pend)
	}
}

// TestChargesUnderBudget: Payment charges (here Aperture's, through its
// stand-in) count against the budgets like L402 payments, are logged, and
// leave no token behind, since a charge buys one request.
func TestChargesUnderBudget(t *testing.T) {
	b, err := backend.Open(context.Background(), "memory://"+strings.ReplaceAll(t.Name(), "/", "-"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := httptest.NewServer(l402fake.NewAperture(t, l402fake.ApertureConfig{Node: b, Price: backend.Sat(3), Payment: true}))
	defer srv.Close()
	s, err := Open(filepath.Join(t.TempDir(), "l402.db"), Options{Budgets: mustBudgets(t, "life=5")})
	if err != nil {
		t.Fatal(err)
	}
	tr := &l402.Transport{Payer: b, MaxPrice: backend.Sat(10), Tokens: s, Ledger: s, Schemes: []string{l402.SchemePayment}}
	if body, err := get(t, tr, srv.URL+"/a"); err != nil || body != "aperture content for GET /a\n" {
		t.Fatalf("first charge: %q %v", body, err)
	}
	_, err = get(t, tr, srv.URL+"/a")
	var be *l402.BudgetError
	var ce *l402.ChallengeError
	if !errors.As(err, &ce) || ce.Scheme != l402.SchemePayment || !errors.As(err, &be) || be.Left != backend.Sat(2) {
		t.Fatalf("second charge: %v, want a Payment ChallengeError holding a BudgetError with 2 sat left", err)
	}
	spends, _ := s.Spends(time.Time{})
	if len(spends) != 1 || spends[0].Outcome != OutcomePaid || spends[0].Scheme != l402.SchemePayment || spends[0].Amount != backend.Sat(3) {
		t.Fatalf("spend log %+v", spends)
	}
	if toks, err := s.Tokens(); err != nil || len(toks) != 0 {
		t.Fatalf("tokens %+v %v, want none", toks, err)
	}
	if pend, _ := s.Pending(); len(pend) != 0 {
		t.Fatalf("pending %+v", pend)
	}
}

// A token the server refuses is dropped from the store (and a new one
// bought); a token past its validity is dropped when the store is listed
// and never sent.
func TestRefusedAndExpiredTokensAreDropped(t *testing.T) {
	srv := newServer(t, backend.Sat(3))
	path := filepath.Join(t.TempDir(), "l402.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := &l402.Transport{Payer: srv.node, MaxPrice: backend.Sat(3), Tokens: s, Ledger: s}
	if body, err := get(t, tr, srv.URL+"/paid/a"); err != nil || body != "paid body" {
		t.Fatalf("%q %v", body, err)
	}
	key := strings.ToLower(srv.URL) + "/paid/"
	good, ok := s.Get(key)
	if !ok {
		t.Fatal("no token stored")
	}
	// The same macaroon with a wrong preimage: the server refuses it.
	var wrong backend.Preimage
	wrong[0] = 1
	bad := &l402.Token{Macaroon: good.Macaroon, Preimage: wrong}
	s.Put(key, bad)
	tr2 := &l402.Transport{Payer: srv.node, MaxPrice: backend.Sat(3), Tokens: s, Ledger: s}
	if body, err := get(t, tr2, srv.URL+"/paid/b"); err != nil || body != "paid body" {
		t.Fatalf("after the refusal: %q %v", body, err)
	}
	if n := srv.challenges.Load(); n != 2 {
		t.Fatalf("%d challenges, want 2: the refused token is replaced", n)
	}
	toks, err := s.Tokens()
	if err != nil || len(toks) != 1 || toks[0].PaymentHash == good.ID.PaymentHash || toks[0].Authorization == bad.Authorization() {
		t.Fatalf("tokens after a refusal: %+v %v", toks, err)
	}
	// A token whose validity ended is dropped.
	expired, err := l402.Attenuate(good.Macaroon.Clone(), l402.ValidUntilCaveat("svc", time.Now().Add(-time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	s.Put("https://other.example/", &l402.Token{Macaroon: expired, Preimage: good.Preimage})
	if toks, err := s.Tokens(); err != nil || len(toks) != 1 || toks[0].Key != key {
		t.Fatalf("tokens with an expired one: %+v %v", toks, err)
	}
	if _, ok := s.Get("https://other.example/"); ok {
		t.Fatal("the expired token was kept")
	}
}
