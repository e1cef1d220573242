// Command bench measures what users run: the built l402proxy binary with
// default flags and a valid token, nginx asking l402proxy's forward-auth
// endpoint, and a plain httputil.ReverseProxy (its own binary, 256 idle
// upstream connections per host) in front of the same 100-byte upstream,
// each driven by wrk from a separate process, rounds interleaved so noise
// from the machine falls on all alike. It also measures the challenge path
// and the memory each issued and each cached token costs the proxy.
//
//	go run ./internal/tools/bench            (make bench)
//
// Everything listens on 127.0.0.1 and every process it starts is stopped
// when it returns, fails or is interrupted; the whole run is bounded by
// -max-time. It asserts no timings: it reports them, with the targets.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/l402kit/l402kit/internal/tools/childproc"
)

type options struct {
	rounds           int
	duration, warmup time.Duration
	threads, conns   int
	maxTime          time.Duration
	tokens           int
	l402proxy        string
	nginx, mem       bool
	profile          string
	state            string
	dir              string // the run's scratch directory, set by run
	plainPool        bool
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 5, "rounds; each round drives every target once, in a rotated order")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "wrk run length per target per round (whole seconds)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "uncounted wrk run per target before the rounds")
	flag.IntVar(&o.threads, "t", 1, "wrk threads")
	flag.IntVar(&o.conns, "c", 32, "wrk connections")
	flag.IntVar(&o.tokens, "tokens", 10000, "tokens issued and presented for the memory figures")
	flag.DurationVar(&o.maxTime, "max-time", 170*time.Second, "the run stops with an error this long after the build (a cold build of l402proxy takes minutes)")
	flag.StringVar(&o.l402proxy, "l402proxy", "", "measure this l402proxy binary instead of building ./cmd/l402proxy")
	flag.BoolVar(&o.nginx, "nginx", true, "measure forward auth behind nginx")
	flag.StringVar(&o.state, "state", "", "l402proxy --state for the measured proxies: a postgres:// DSN or memory; default a fresh embedded store file per proxy in the run's directory")
	flag.BoolVar(&o.mem, "memory", true, "measure the challenge path and memory per token (needs l402proxy --pprof)")
	flag.BoolVar(&o.plainPool, "plain-buffer-pool", false, "give the plain ReverseProxy a copy-buffer pool as l402proxy has")
	flag.StringVar(&o.profile, "profile", "", "start l402proxy with --pprof too and write a CPU profile of it, taken during its first round, to this file")
	flag.Parse()
	if o.rounds < 1 || o.duration < time.Second || o.threads < 1 || o.conns < o.threads || o.tokens < 1 || o.maxTime <= 0 {
		fmt.Fprintln(os.Stderr, "bench: -rounds, -t, -tokens must be positive, -c at least -t, -duration at least 1s")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

type binaries struct{ l402proxy, upstream, plain string }

// build compiles the three programs the run starts, as users build them.
func build(ctx context.Context, dir string, o options) (binaries, error) {
	bin := filepath.Join(dir, "bin")
	pkgs := []string{"./internal/tools/bench/upstream", "./internal/tools/bench/plainproxy"}
	if o.l402proxy == "" {
		pkgs = append(pkgs, "./cmd/l402proxy")
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", bin + "/"}, pkgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return binaries{}, fmt.Errorf("go build: %w\n%s", err, out)
	}
	b := binaries{l402proxy: o.l402proxy, upstream: filepath.Join(bin, "upstream"), plain: filepath.Join(bin, "plainproxy")}
	if b.l402proxy == "" {
		b.l402proxy = filepath.Join(bin, "l402proxy")
	}
	return b, nil
}

type target struct {
	name, url string
	metered   bool // a prepaid route, compared with the plain paid route
	headers   []string
	pids      []int // the processes serving it (nginx: with its workers)
	runs      []wrkResult
	cpu       []float64 // seconds of CPU its processes used, per round
}

func run(ctx context.Context, o options, out io.Writer) (err error) {
	dir, err := os.MkdirTemp("", "l402kit-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	o.dir = dir
	ps := &childproc.Group{}
	defer ps.StopAll()
	// The signal or the time limit may come while a child is starting:
	// stop everything at once rather than after the current step.
	go func() { <-ctx.Done(); ps.StopAll() }()

	fmt.Fprintln(out, machine())
	t0 := time.Now()
	bins, err := build(ctx, dir, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "built l402proxy, upstream and plainproxy in %s\n", time.Since(t0).Round(100*time.Millisecond))
	ctx, cancel := context.WithTimeoutCause(ctx, o.maxTime, fmt.Errorf("time limit -max-time %s reached", o.maxTime))
	defer cancel()
	go func() { <-ctx.Done(); ps.StopAll() }()
	t0 = time.Now()
	w, err := newWrkRunner(dir, o.threads, o.conns)
	if err != nil {
		return err
	}

	start := func(name, bin, addr string, args ...string) (*childproc.Proc, error) {
		p, err := ps.Start(name, bin, args...)
		if err != nil {
			return nil, err
		}
		return p, p.WaitListen(ctx, addr)
	}
	var upAddr, plainAddr, gateAddr string
	for _, a := range []*string{&upAddr, &plainAddr, &gateAddr} {
		if *a, err = childproc.FreeAddr(); err != nil {
			return err
		}
	}
	if _, err := start("upstream", bins.upstream, upAddr, "-listen", upAddr, "-size", "100"); err != nil {
		return err
	}
	plainProc, err := start("plainproxy", bins.plain, plainAddr, "-listen", plainAddr, "-upstream", "http://"+upAddr, fmt.Sprintf("-buffer-pool=%v", o.plainPool))
	if err != nil {
		return err
	}
	// Default flags: only where to listen and what to sell.
	gateArgs := []string{"--listen", gateAddr, "--upstream", "http://" + upAddr, "--state", stateFor(dir, o.state, "gate")}
	var pprofAddr string
	if o.profile != "" {
		if pprofAddr, err = childproc.FreeAddr(); err != nil {
			return err
		}
		gateArgs = append(gateArgs, "--pprof", pprofAddr)
	}
	gateProc, err := start("l402proxy", bins.l402proxy, gateAddr, gateArgs...)
	if err != nil {
		return err
	}
	auth, err := buyToken(ctx, "http://"+gateAddr)
	if err != nil {
		return err
	}
	targets := []*target{
		{name: "plain httputil.ReverseProxy", url: "http://" + plainAddr + "/", pids: []int{plainProc.PID()}},
		{name: "l402proxy, valid token", url: "http://" + gateAddr + "/", headers: []string{"Authorization: " + auth}, pids: []int{gateProc.PID()}},
	}
	// A prepaid route beside it: the same upstream sold as a bundle, each
	// request reserving and settling one unit in the same kind of state
	// store, on a proxy of its own (so both have the CPU of one process).
	meteredAddr, err := childproc.FreeAddr()
	if err != nil {
		return err
	}
	meteredConfig := filepath.Join(dir, "metered.yaml")
	if err := os.WriteFile(meteredConfig, []byte(meteredYAML(meteredAddr, upAddr)), 0o600); err != nil {
		return err
	}
	meteredArgs := []string{"--config", meteredConfig, "--state", stateFor(dir, o.state, "metered")}
	meteredProc, err := start("l402proxy, metered route", bins.l402proxy, meteredAddr, meteredArgs...)
	if err != nil {
		return err
	}
	meteredAuth, err := buyToken(ctx, "http://"+meteredAddr)
	if err != nil {
		return err
	}
	targets = append(targets, &target{name: "l402proxy, metered route", url: "http://" + meteredAddr + "/", metered: true,
		headers: []string{"Authorization: " + meteredAuth}, pids: []int{meteredProc.PID()}})
	var cacheArgs []string
	var cacheAddr string
	if o.nginx {
		// nginx with the repository's configuration, asking the
		// l402proxy above (default flags: it marks no grant cacheable) ...
		nginxAddr, err := childproc.FreeAddr()
		if err != nil {
			return err
		}
		nginxProc, err := startNginx(ps, dir, "nginx", nginxAddr, upAddr, gateAddr)
		if err != nil {
			return err
		}
		if err := nginxProc.WaitListen(ctx, nginxAddr); err != nil {
			return err
		}
		// ... and asking a second l402proxy that lets nginx cache grants.
		if cacheAddr, err = childproc.FreeAddr(); err != nil {
			return err
		}
		cacheArgs = []string{"--listen", cacheAddr, "--upstream", "http://" + upAddr, "--forward-auth-cache", "1m", "--state", stateFor(dir, o.state, "cache")}
		cacheProc, err := start("l402proxy --forward-auth-cache", bins.l402proxy, cacheAddr, cacheArgs...)
		if err != nil {
			return err
		}
		cacheAuth, err := buyToken(ctx, "http://"+cacheAddr)
		if err != nil {
			return err
		}
		nginxCacheAddr, err := childproc.FreeAddr()
		if err != nil {
			return err
		}
		nginxCacheProc, err := startNginx(ps, dir, "nginx-cache", nginxCacheAddr, upAddr, cacheAddr)
		if err != nil {
			return err
		}
		if err := nginxCacheProc.WaitListen(ctx, nginxCacheAddr); err != nil {
			return err
		}
		targets = append(targets,
			&target{name: "nginx forward auth", url: "http://" + nginxAddr + "/", headers: []string{"Authorization: " + auth},
				pids: []int{nginxProc.PID(), gateProc.PID()}},
			&target{name: "nginx forward auth, auth cache", url: "http://" + nginxCacheAddr + "/", headers: []string{"Authorization: " + cacheAuth},
				pids: []int{nginxCacheProc.PID(), cacheProc.PID()}})
	}

	fmt.Fprintf(out, "wrk -t%d -c%d -d%s --latency, %d rounds interleaved after a %s warm-up each; 100-byte upstream body; loopback\n",
		o.threads, o.conns, o.duration, o.rounds, o.warmup)
	fmt.Fprintf(out, "l402proxy %s\n", strings.Join(gateArgs, " "))
	fmt.Fprintf(out, "metered route: l402proxy %s, a bundle of %d units at cost 1 per request\n", strings.Join(meteredArgs, " "), meteredUnits)
	if o.nginx {
		fmt.Fprintf(out, "nginx forward auth: %s as it is, asking that l402proxy; auth cache: the same asking l402proxy %s\n", nginxSite, strings.Join(cacheArgs, " "))
	}
	fmt.Fprintln(out)
	if o.warmup >= time.Second {
		for _, t := range targets {
			if _, err := w.run(ctx, t.url, o.warmup, 200, t.headers...); err != nil {
				return fmt.Errorf("%s warm-up: %w", t.name, err)
			}
		}
	}
	var seen0 int64
	if o.nginx {
		if seen0, err = requestsSeen(ctx, cacheAddr); err != nil {
			return err
		}
	}
	for r := range o.rounds {
		for i := range targets {
			t := targets[(i+r)%len(targets)]
			var prof chan error
			if r == 0 && t == targets[1] && o.profile != "" {
				prof = make(chan error, 1)
				go func() { prof <- cpuProfile(ctx, pprofAddr, o.duration-time.Second, o.profile) }()
			}
			cpu0, err := cpuSeconds(t.pids)
			if err != nil {
				return err
			}
			res, err := w.run(ctx, t.url, o.duration, 200, t.headers...)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", t.name, r+1, err)
			}
			cpu1, err := cpuSeconds(t.pids)
			if err != nil {
				return err
			}
			t.cpu = append(t.cpu, cpu1-cpu0)
			if prof != nil {
				if err := <-prof; err != nil {
					return fmt.Errorf("CPU profile: %w", err)
				}
				fmt.Fprintf(out, "wrote a CPU profile of l402proxy's first round to %s (go tool pprof -top %s)\n", o.profile, o.profile)
			}
			t.runs = append(t.runs, res)
		}
	}
	printThroughput(out, targets)
	if o.nginx {
		seen, err := requestsSeen(ctx, cacheAddr)
		if err != nil {
			return err
		}
		var sent int64
		for _, r := range targets[len(targets)-1].runs {
			sent += r.Requests
		}
		fmt.Fprintf(out, "auth cache: l402proxy decided %d of the %d requests nginx served with it (the rest were cached grants)\n", seen-seen0, sent)
	}

	if o.mem {
		if err := challengeAndMemory(ctx, out, ps, w, bins, upAddr, o); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "\nmeasured in %s after the build; load average now %s\n", time.Since(t0).Round(time.Second), loadavg())
	return nil
}
