// Command loadcmp measures the L402 gate against a plain
// httputil.ReverseProxy in front of the same upstream, in one process and
// one run. It is a profiling aid (-cpuprofile covers gate, proxies and load
// alike); the figures users should compare come from make bench, which runs
// the built l402proxy binary against separate processes with wrk.
// Everything listens on 127.0.0.1; the backend is the in-process memory
// node, which also pays for the one token the run buys.
//
//	go run ./internal/tools/loadcmp -n 20000 -c 16 -rounds 3 [-json]
//
// Each target gets exactly -n requests per round from -c workers; rounds
// alternate which of baseline and L402 goes first, so noise from other
// processes on the machine falls on both alike. Any response other than
// the expected status, or reaching -max-time, ends the run with an error.
// It asserts no timings: it reports them.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/memory"
	"github.com/l402kit/l402kit/proxy"
)

type options struct {
	N, C, Rounds, Warmup, VerifyN int
	MaxTime                       time.Duration
}

// stats of one target over all rounds; latencies in microseconds.
type stats struct {
	Name     string  `json:"name"`
	Status   int     `json:"status"`
	Requests int     `json:"requests"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50      float64 `json:"p50_us"`
	P90      float64 `json:"p90_us"`
	P99      float64 `json:"p99_us"`
}

type round struct {
	Round          int     `json:"round"`
	BaselineRPS    float64 `json:"baseline_rps"`
	L402RPS        float64 `json:"l402_rps"`
	Ratio          float64 `json:"l402_over_baseline"`
	AddedP50Micros float64 `json:"added_p50_us"`
}

type report struct {
	N, C, Rounds, Warmup int
	NumCPU, GOMAXPROCS   int
	LoadAvg              string  `json:",omitempty"`
	Targets              []stats `json:"targets"`
	PerRound             []round `json:"rounds"`
	// ThroughputRatio is L402 requests/s over baseline requests/s.
	ThroughputRatio float64 `json:"l402_over_baseline_throughput"`
	// AddedP50Micros is L402 p50 minus baseline p50.
	AddedP50Micros float64 `json:"added_p50_us"`
	VerifyN        int     `json:"verify_n"`
	VerifyNsPerOp  float64 `json:"verify_ns_per_op"`
	VerifyAllocs   float64 `json:"verify_allocs_per_op"`
}

func main() {
	var o options
	jsonOut := flag.Bool("json", false, "print one JSON object instead of the table")
	flag.IntVar(&o.N, "n", 20000, "requests per target per round")
	flag.IntVar(&o.C, "c", 16, "concurrent workers")
	flag.IntVar(&o.Rounds, "rounds", 3, "rounds; baseline and L402 alternate which goes first")
	flag.IntVar(&o.Warmup, "warmup", 1000, "warm-up requests per target, not counted")
	flag.IntVar(&o.VerifyN, "verify-n", 200000, "l402.Verifier.Verify calls to time")
	flag.DurationVar(&o.MaxTime, "max-time", 60*time.Second, "the whole run stops with an error after this")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if o.N < 1 || o.C < 1 || o.Rounds < 1 || o.Warmup < 0 || o.VerifyN < 1 || o.MaxTime <= 0 {
		fmt.Fprintln(os.Stderr, "loadcmp: -n, -c, -rounds, -verify-n and -max-time must be positive, -warmup not negative")
		os.Exit(2)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadcmp:", err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, o, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "loadcmp:", err)
		os.Exit(1)
	}
	if *jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(os.Stderr, "loadcmp:", err)
		}
		return
	}
	printTable(os.Stdout, rep)
}

// serve runs h on a fresh 127.0.0.1 port until the returned func is called.
func serve(h http.Handler) (*url.URL, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}, func() { srv.Close() }, nil
}

// baselineTransport gives the plain proxy the pool the L402 proxy has by
// default (proxy.NewTransport): http.DefaultTransport keeps 2 idle
// connections per host, which under -c workers churns through loopback
// ports and measures connection setup instead of the proxies.
func baselineTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0
	t.MaxIdleConnsPerHost = proxy.DefaultMaxIdleConnsPerHost
	return t
}

func run(ctx context.Context, o options, log *slog.Logger) (*report, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, o.MaxTime, fmt.Errorf("time limit -max-time %s reached", o.MaxTime))
	defer cancel()

	body := []byte("hello from upstream\n")
	up, closeUp, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	if err != nil {
		return nil, err
	}
	defer closeUp()
	plain := httputil.NewSingleHostReverseProxy(up)
	plain.Transport = baselineTransport()
	base, closeBase, err := serve(plain)
	if err != nil {
		return nil, err
	}
	defer closeBase()

	node, err := memory.New(context.Background(), memory.Config{})
	if err != nil {
		return nil, err
	}
	defer node.Close()
	store := proxy.NewMemoryStore()
	const service = "bench"
	p, err := proxy.New(proxy.Config{
		Backend: node, Store: store, ChallengesPerMinute: -1, Logger: log, // default upstream transport, as shipped
		Routes: []proxy.Route{{Name: service, PathPrefix: "/", Price: backend.Sat(1), Upstream: up}},
	})
	if err != nil {
		return nil, err
	}
	gated, closeGated, err := serve(p)
	if err != nil {
		return nil, err
	}
	defer closeGated()

	// Buy one token through the real flow; the memory node pays its own invoice.
	buyer := &http.Client{Transport: &l402.Transport{Base: &http.Transport{}, Payer: node, MaxPrice: backend.Sat(1)}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, gated.String()+"/x", nil)
	resp, err := buyer.Do(req)
	if err != nil {
		return nil, fmt.Errorf("buying a token: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	auth := resp.Request.Header.Get("Authorization")
	if resp.StatusCode != http.StatusOK || auth == "" {
		return nil, fmt.Errorf("buying a token: status %d, Authorization %q", resp.StatusCode, auth)
	}

	type target struct {
		name, url, auth string
		status          int
		client          *http.Client
		lat             []time.Duration
		took            time.Duration
	}
	mk := func(name string, u *url.URL, auth string, status int) *target {
		return &target{name: name, url: u.String() + "/x", auth: auth, status: status,
			client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.C, DisableCompression: true}}}
	}
	direct := mk("direct (reference)", up, "", http.StatusOK)
	baseline := mk("baseline httputil.ReverseProxy", base, "", http.StatusOK)
	paid := mk("l402 proxy, valid token", gated, auth, http.StatusOK)
	chall := mk("l402 challenge (no token, 402)", gated, "", http.StatusPaymentRequired)
	all := []*target{direct, baseline, paid, chall}
	for _, t := range all {
		defer t.client.Transport.(*http.Transport).CloseIdleConnections()
		if o.Warmup > 0 {
			if _, _, err := load(ctx, t.client, t.url, t.auth, t.status, o.Warmup, o.C); err != nil {
				return nil, fmt.Errorf("%s warm-up: %w", t.name, err)
			}
		}
	}

	rep := &report{N: o.N, C: o.C, Rounds: o.Rounds, Warmup: o.Warmup, NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	for r := range o.Rounds {
		order := []*target{direct, baseline, paid, chall}
		if r%2 == 1 {
			order = []*target{direct, paid, baseline, chall}
		}
		got := map[*target][]time.Duration{}
		took := map[*target]time.Duration{}
		for _, t := range order {
			lat, d, err := load(ctx, t.client, t.url, t.auth, t.status, o.N, o.C)
			if err != nil {
				return nil, fmt.Errorf("%s, round %d: %w", t.name, r+1, err)
			}
			got[t], took[t] = lat, d
			t.lat = append(t.lat, lat...)
			t.took += d
		}
		bs, ps := summarize("", got[baseline], took[baseline], 0), summarize("", got[paid], took[paid], 0)
		rep.PerRound = append(rep.PerRound, round{Round: r + 1, BaselineRPS: bs.RPS, L402RPS: ps.RPS, Ratio: ps.RPS / bs.RPS, AddedP50Micros: ps.P50 - bs.P50})
	}
	for _, t := range all {
		rep.Targets = append(rep.Targets, summarize(t.name, t.lat, t.took, t.status))
	}
	bs, ps := rep.Targets[1], rep.Targets[2]
	rep.ThroughputRatio, rep.AddedP50Micros = ps.RPS/bs.RPS, ps.P50-bs.P50

	// Verification alone, on the token bought above, as the proxy checks it.
	tok, err := l402.ParseAuthorization(auth)
	if err != nil {
		return nil, err
	}
	key, err := rootKey(ctx, store, tok.ID.TokenID)
	if err != nil {
		return nil, err
	}
	v := l402.NewVerifier(oneKey{id: tok.ID.TokenID, key: key})
	vr := l402.Request{Service: service, Now: time.Now(), ClientIP: netip.MustParseAddr("127.0.0.1"), Path: "/x", Method: http.MethodGet}
	if err := v.Verify(ctx, tok, vr); err != nil {
		return nil, fmt.Errorf("verifying the bought token: %w", err)
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	for i := range o.VerifyN {
		if i%4096 == 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("verify loop: %w", context.Cause(ctx))
		}
		if err := v.Verify(ctx, tok, vr); err != nil {
			return nil, fmt.Errorf("verify loop: %w", err)
		}
	}
	el := time.Since(start)
	runtime.ReadMemStats(&m1)
	rep.VerifyN = o.VerifyN
	rep.VerifyNsPerOp = float64(el.Nanoseconds()) / float64(o.VerifyN)
	rep.VerifyAllocs = float64(m1.Mallocs-m0.Mallocs) / float64(o.VerifyN)
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		rep.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return rep, nil
}

// rootKey is the root key the proxy minted token id under: its record's
// when the store keeps one (Config.StoredRootKeys), else derived from the
// store's master secret, as proxy/keys.go's deriveRootKey does (HMAC-SHA256
// under the master of a label and the id; a change there makes the
// verification below fail, not pass wrongly).
func rootKey(ctx context.Context, store *proxy.MemoryStore, id l402.TokenID) ([]byte, error) {
	rec, err := store.Token(ctx, id)
	if err == nil {
		return rec.RootKey, nil
	}
	if !errors.Is(err, proxy.ErrNoRecord) {
		return nil, err
	}
	master, err := store.MasterKey(ctx)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, master)
	m.Write([]byte("l402kit root key v1\x00"))
	m.Write(id[:])
	return m.Sum(nil), nil
}

// oneKey holds the root key of the bought token, so the verify loop times
// the verifier alone, as the proxy runs it with the key cached.
type oneKey struct {
	id  l402.TokenID
	key []byte
}

func (o oneKey) RootKey(_ context.Context, id l402.TokenID) ([]byte, error) {
	if id != o.id {
		return nil, l402.ErrUnknownToken
	}
	return o.key, nil
}

// load sends exactly n requests from workers goroutines and returns each
// one's latency and the wall time of the lot. The first unexpected status
// or transport error stops every worker.
func load(ctx context.Context, c *http.Client, target, auth string, want, n, workers int) ([]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				if err := once(ctx, c, target, auth, want); err != nil {
					cancel(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return nil, 0, err
	}
	return lat, took, nil
}

func once(ctx context.Context, c *http.Client, target, auth string, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("status %d, want %d: %q", resp.StatusCode, want, b)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

func summarize(name string, lat []time.Duration, took time.Duration, status int) stats {
	s := slices.Clone(lat)
	slices.Sort(s)
	pct := func(p float64) float64 {
		if len(s) == 0 {
			return 0
		}
		return float64(s[min(len(s)-1, int(p*float64(len(s))))].Nanoseconds()) / 1e3
	}
	st := stats{Name: name, Status: status, Requests: len(s), Seconds: took.Seconds(), P50: pct(0.50), P90: pct(0.90), P99: pct(0.99)}
	if took > 0 {
		st.RPS = float64(len(s)) / took.Seconds()
	}
	return st
}

func printTable(w io.Writer, r *report) {
	fmt.Fprintf(w, "loadcmp: -n %d -c %d -rounds %d -warmup %d; NumCPU %d, GOMAXPROCS %d, loadavg %s\n\n",
		r.N, r.C, r.Rounds, r.Warmup, r.NumCPU, r.GOMAXPROCS, r.LoadAvg)
	fmt.Fprintf(w, "%-32s %9s %10s %9s %9s %9s\n", "target (all rounds)", "requests", "req/s", "p50 µs", "p90 µs", "p99 µs")
	for _, t := range r.Targets {
		fmt.Fprintf(w, "%-32s %9d %10.0f %9.0f %9.0f %9.0f\n", t.Name, t.Requests, t.RPS, t.P50, t.P90, t.P99)
	}
	fmt.Fprintf(w, "\n%-6s %12s %12s %10s %14s\n", "round", "baseline/s", "l402/s", "ratio", "added p50 µs")
	for _, p := range r.PerRound {
		fmt.Fprintf(w, "%-6d %12.0f %12.0f %10.3f %14.0f\n", p.Round, p.BaselineRPS, p.L402RPS, p.Ratio, p.AddedP50Micros)
	}
	fmt.Fprintf(w, "\nL402 throughput / baseline throughput: %.3f (make bench states the targets)\n", r.ThroughputRatio)
	fmt.Fprintf(w, "added p50 latency (L402 - baseline):   %.0f µs \n", r.AddedP50Micros)
	fmt.Fprintf(w, "challenge path on memory:              %.0f 402/s (target: thousands/s)\n", r.Targets[3].RPS)
	fmt.Fprintf(w, "l402.Verifier.Verify, bought token:    %.0f ns/op, %.1f allocs/op over %d calls (target < 10 µs)\n",
		r.VerifyNsPerOp, r.VerifyAllocs, r.VerifyN)
	fmt.Fprintln(w, "  (the Go benchmark: go test -run '^$' -bench 'Verify' -benchmem ./l402/)")
}
