// Command demolnd shows the whole L402 flow on real Lightning nodes, in one
// command (make demo-lnd): it starts a regtest chain and two LND nodes from
// the locally built images (make images), runs the l402proxy binary on the
// receiving node (alice) in front of its built-in demo upstream, buys the
// paid article with the l402 binary through the paying node (bob), and
// prints each step: the challenge, the invoice's amount, the payment, the
// preimage and the paid body. Everything it starts (containers, network,
// processes, files) is removed when it ends, fails or is interrupted.
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/tools/childproc"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/lnd/regtest"
)

// priceSat is what the demo article costs; maxPriceSat what the buyer
// accepts.
const priceSat, maxPriceSat = 10, 100

func main() {
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Starting the net takes seconds to a minute; the rest, seconds.
	ctx, cancel := context.WithTimeout(sig, 10*time.Minute)
	err := run(ctx, os.Stdout)
	cancel()
	if err != nil {
		if sig.Err() != nil {
			err = fmt.Errorf("interrupted (%w)", err)
		}
		if errors.Is(err, regtest.ErrNoImages) || errors.Is(err, regtest.ErrNoDocker) {
			fmt.Fprintln(os.Stderr, "demo-lnd needs Docker and the images from `make images`:")
		}
		fmt.Fprintln(os.Stderr, "demo-lnd:", err)
		os.Exit(1)
	}
}

func step(out io.Writer, n int, format string, args ...any) {
	fmt.Fprintf(out, "\n%d. %s\n", n, fmt.Sprintf(format, args...))
}

func run(ctx context.Context, out io.Writer) (err error) {
	dir, err := os.MkdirTemp("", "l402kit-demo-lnd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	procs := &childproc.Group{}
	defer procs.StopAll()

	fmt.Fprintln(out, "building l402proxy and l402 ...")
	bin := filepath.Join(dir, "bin")
	if b, err := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "./cmd/l402proxy", "./cmd/l402").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, b)
	}

	fmt.Fprintln(out, "starting btcd, alice and bob (regtest), mining, opening a channel bob → alice ...")
	t0 := time.Now()
	// testcontainers' own banner says nothing a demo viewer needs.
	tclog.SetDefault(tclog.NewNoopLogger())
	net, err := regtest.StartLND(ctx, regtest.WithLogf(func(format string, args ...any) {
		// The harness's own progress, not the container lifecycle lines
		// testcontainers sends through the same function.
		if line := fmt.Sprintf(format, args...); strings.HasPrefix(line, "regtest:") {
			fmt.Fprintf(out, "   %s\n", line)
		}
	}))
	if err != nil {
		return err
	}
	defer func() {
		// The run's context may be gone (Ctrl-C): clean up on a fresh one.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		procs.StopAll() // the proxy holds alice's files open
		if cerr := net.Close(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("removing the regtest net: %w", cerr))
		} else {
			fmt.Fprintln(out, "\nremoved the containers, the network and the demo's files.")
		}
	}()
	fmt.Fprintf(out, "regtest net ready in %s: alice sells, bob pays over a %d sat channel\n", time.Since(t0).Round(100*time.Millisecond), regtest.ChannelSats)

	addr, err := childproc.FreeAddr()
	if err != nil {
		return err
	}
	// The backend URL names file paths, not secrets; a real deployment
	// would pass it through L402_BACKEND or --backend env:NAME.
	// Its state file goes with the demo's other files.
	proxyArgs := []string{"--listen", addr, "--backend", net.AliceURL(), "--price", fmt.Sprint(priceSat), "--state", filepath.Join(dir, "l402proxy-state.db")}
	p, err := procs.Start("l402proxy", filepath.Join(bin, "l402proxy"), proxyArgs...)
	if err != nil {
		return err
	}
	if err := p.WaitListen(ctx, addr); err != nil {
		return err
	}
	url := "http://" + addr + "/paid/article"
	fmt.Fprintf(out, "l402proxy on alice's node: l402proxy --listen %s --backend lnd://… --price %d (built-in demo upstream)\n", addr, priceSat)

	step(out, 1, "a client without a token asks: GET %s", url)
	header, inv, err := challenge(ctx, url)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   402 Payment Required\n   WWW-Authenticate: %s\n", shorten(header))

	step(out, 2, "the invoice: %s on %s, payment hash %s, payee alice (%s), expires in %s",
		inv.Amount, inv.Network, inv.PaymentHash, abbrev(inv.Payee, 12), inv.Expiry)

	step(out, 3, "bob buys it with the l402 client, which asks, pays the challenge it gets through bob's node and retries with the token:\n   l402 get %s --backend lnd://bob… --max-price %d -v", url, maxPriceSat)
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "l402"), "get", url, "--backend", net.BobURL(), "--max-price", fmt.Sprint(maxPriceSat), "-v")
	cmd.SysProcAttr = childproc.Attr()
	var body, report strings.Builder
	cmd.Stdout, cmd.Stderr = &body, &report
	t1 := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("l402 get: %w\n%s", err, report.String())
	}
	took := time.Since(t1)
	for _, line := range strings.Split(strings.TrimSpace(report.String()), "\n") {
		fmt.Fprintf(out, "   %s\n", untime(line))
	}
	hash, err := paidHash(report.String())
	if err != nil {
		return err
	}
	status := "(status not logged)"
	if i := strings.LastIndex(report.String(), `token=true status="`); i >= 0 {
		status, _, _ = strings.Cut(report.String()[i+len(`token=true status="`):], `"`)
	}

	step(out, 4, "alice's node settled the invoice; its preimage is the proof of payment")
	b, err := backend.Open(ctx, net.AliceURL())
	if err != nil {
		return err
	}
	defer b.Close()
	got, err := b.LookupInvoice(ctx, hash)
	if err != nil {
		return fmt.Errorf("looking up the paid invoice on alice: %w", err)
	}
	if got.State != backend.StateSettled || got.Preimage == nil {
		return fmt.Errorf("invoice %s on alice: state %s, preimage known %v", hash, got.State, got.Preimage != nil)
	}
	check := "does not match"
	if sha256.Sum256(got.Preimage[:]) == [32]byte(hash) {
		check = "matches"
	}
	fmt.Fprintf(out, "   state %s, received %s, preimage %s\n   sha256(preimage) %s the payment hash\n", got.State, got.AmountReceived, got.Preimage, check)

	step(out, 5, "with the token the proxy answered %s (challenge, payment and retry took %s):", status, took.Round(time.Millisecond))
	fmt.Fprintf(out, "   %s", indent(body.String()))

	step(out, 6, "what l402proxy adds to alice's own invoice creation: %d challenges on each of two routes through it, %d invoices created on alice directly and %d requests to a free route, interleaved", overheadN, overheadN, overheadN)
	return challengeOverhead(ctx, out, b, url)
}

// Twice overheadN challenges (two routes), and the walk-through's, stay
// under l402proxy's default limit of 120 a minute per client address (the
// demo's requests all come from 127.0.0.1).
const overheadN = 50

// challengeOverhead times 402s through the running proxy, on an L402-only
// route (one invoice) and on /paid/ (L402 and Payment: two invoices),
// against the same node's invoice creation called directly, and against a
// free route of the same proxy (the HTTP round trip alone, no node call),
// one of each in turn, in a shuffled order each round, and prints the
// medians.
func challengeOverhead(ctx context.Context, out io.Writer, b *backend.Backend, url string) error {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	get := func(url string, want int, header ...string) func() error {
		return func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				return fmt.Errorf("GET %s: %s, want %d", url, resp.Status, want)
			}
			return nil
		}
	}
	create := func() error {
		_, err := b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(priceSat), Memo: "l402kit: paid"})
		return err
	}
	free := strings.Replace(url, "/paid/", "/free/", 1)
	// /paid/ offers L402 and the Payment scheme, so its 402 carries two
	// invoices, made side by side; /podcast/ asked for a challenge offers
	// L402 alone: one invoice, the like of one AddInvoice.
	podcast := strings.Replace(url, "/paid/", "/podcast/", 1)
	calls := []func() error{create, get(url, http.StatusPaymentRequired), get(free, http.StatusOK),
		get(podcast, http.StatusPaymentRequired, l402.HeaderAcceptAuthenticate, "L402")}
	times := make([][]time.Duration, len(calls))
	// Each round in a fresh order: a fixed cycle would always put the
	// same call right after an invoice creation (which leaves the node
	// busy for a moment) and another after the free route's pause.
	order := make([]int, len(calls))
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range overheadN {
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, k := range order {
			t := time.Now()
			if err := calls[k](); err != nil {
				return err
			}
			times[k] = append(times[k], time.Since(t))
		}
	}
	direct, proxied, hop, single := medianOf(times[0]), medianOf(times[1]), medianOf(times[2]), medianOf(times[3])
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	fmt.Fprintf(out, "   medians: %s per L402-only 402 (one invoice) through l402proxy, %s per invoice created on alice directly (%+.1f%%);\n", r(single), r(direct), 100*(float64(single)/float64(direct)-1))
	fmt.Fprintf(out, "   the L402-only 402 less the HTTP round trip to l402proxy (its free route, no node call, %s): %+.1f%% over the invoice alone;\n", r(hop), 100*(float64(single-hop)/float64(direct)-1))
	fmt.Fprintf(out, "   %s per 402 on /paid/, which offers L402 and Payment: two invoices, made side by side (%+.1f%%);\n", r(proxied), 100*(float64(proxied)/float64(direct)-1))
	fmt.Fprintf(out, "   l402proxy's own work (minting under a root key derived from its state's master secret; nothing written on these routes) is what is left: target under +5%% for the L402-only 402\n")
	return nil
}

func medianOf(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// challenge asks url without a token and returns the L402 challenge's
// header and its invoice, decoded.
func challenge(ctx context.Context, url string) (string, *backend.DecodedInvoice, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return "", nil, fmt.Errorf("GET %s: %s, want 402: %s", url, resp.Status, b)
	}
	chs, err := l402.ParseChallenges(resp.Header)
	if err != nil {
		return "", nil, err
	}
	inv, err := backend.DecodeInvoice(chs[0].Invoice)
	if err != nil {
		return "", nil, err
	}
	return resp.Header.Get(l402.HeaderWWWAuthenticate), inv, nil
}

// shorten cuts each quoted value of a challenge to its first characters.
func shorten(header string) string {
	parts := strings.Split(header, `"`)
	for i := 1; i < len(parts); i += 2 {
		parts[i] = abbrev(parts[i], 32)
	}
	return strings.Join(parts, `"`)
}

// paidHash reads the payment hash from l402 get's "paid ..." line.
func paidHash(report string) (backend.PaymentHash, error) {
	for _, line := range strings.Split(report, "\n") {
		if !strings.HasPrefix(line, "paid ") {
			continue
		}
		if _, h, ok := strings.Cut(line, "payment hash "); ok {
			return backend.ParsePaymentHash(strings.TrimSpace(h))
		}
	}
	return backend.PaymentHash{}, fmt.Errorf("l402 get reported no payment:\n%s", report)
}

// untime drops slog's time= field from a log line.
func untime(line string) string {
	if rest, ok := strings.CutPrefix(line, "time="); ok {
		if _, after, ok := strings.Cut(rest, " "); ok {
			return after
		}
	}
	return line
}

func abbrev(v any, n int) string {
	s := fmt.Sprint(v)
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func indent(s string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n   ") + "\n"
}
