package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/tools/childproc"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/memory"
)

// clientAddr is the i-th of 1,000 client addresses, as the challenge wrk
// script makes them.
func clientAddr(i int) string {
	i %= 1000
	return fmt.Sprintf("10.%d.%d.1", 1+i%7, (i/7)%250)
}

// footprint is the proxy's memory at one moment: live heap right after a
// forced GC, and resident set size.
type footprint struct{ heap, rss int64 }

// challengeAndMemory starts a second l402proxy (memory backend, client
// address from X-Forwarded-For so 1,000 addresses stay under the per-client
// challenge limit, pprof on for a forced GC before each reading), issues
// and pays -tokens tokens, presents each once, then drives the challenge
// path with wrk.
func challengeAndMemory(ctx context.Context, out io.Writer, ps *childproc.Group, w *wrkRunner, bins binaries, upAddr string, o options) error {
	addr, err := childproc.FreeAddr()
	if err != nil {
		return err
	}
	pprofAddr, err := childproc.FreeAddr()
	if err != nil {
		return err
	}
	args := []string{"--listen", addr, "--upstream", "http://" + upAddr, "--pprof", pprofAddr, "--state", stateFor(o.dir, o.state, "memory")}
	p, err := ps.Start("l402proxy (challenge and memory)", bins.l402proxy, args...)
	if err != nil {
		return err
	}
	if err := p.WaitListen(ctx, addr); err != nil {
		return err
	}
	if err := p.WaitListen(ctx, pprofAddr); err != nil {
		return err
	}
	base := "http://" + addr
	const workers = 8
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	measure := func() (footprint, error) {
		if err := get(ctx, client, "http://"+pprofAddr+"/debug/pprof/heap?gc=1", nil, http.StatusOK, nil); err != nil {
			return footprint{}, fmt.Errorf("forcing a GC: %w", err)
		}
		var f footprint
		err := get(ctx, client, base+"/metrics", nil, http.StatusOK, func(r io.Reader) error {
			var err error
			f.heap, err = metric(r, "go_memstats_heap_alloc_bytes")
			return err
		})
		if err != nil {
			return f, err
		}
		f.rss, err = rssBytes(p.PID())
		return f, err
	}

	n := o.tokens
	m0, err := measure()
	if err != nil {
		return err
	}
	chs := make([]l402.Challenge, n)
	err = parallel(ctx, n, workers, func(i int) error {
		return get(ctx, client, base+"/", http.Header{"X-Forwarded-For": {clientAddr(i)}}, http.StatusPaymentRequired, nil, func(h http.Header) error {
			c, err := l402.ParseChallenges(h)
			if err != nil {
				return err
			}
			chs[i] = c[0]
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("issuing %d challenges: %w", n, err)
	}
	m1, err := measure()
	if err != nil {
		return err
	}
	payer := memory.NewDevPayer(base+memory.DevPayPath, client)
	auths := make([]string, n)
	err = parallel(ctx, n, workers, func(i int) error {
		pay, err := payer.PayInvoice(ctx, chs[i].Invoice, backend.PayOptions{})
		if err != nil {
			return err
		}
		tok, err := l402.NewToken(chs[i].Macaroon, pay.Preimage)
		if err != nil {
			return err
		}
		auths[i] = tok.Authorization()
		return nil
	})
	if err != nil {
		return fmt.Errorf("paying %d invoices: %w", n, err)
	}
	chs = nil
	m2, err := measure()
	if err != nil {
		return err
	}
	err = parallel(ctx, n, workers, func(i int) error {
		return get(ctx, client, base+"/", http.Header{"Authorization": {auths[i]}, "X-Forwarded-For": {clientAddr(i)}}, http.StatusOK, nil)
	})
	if err != nil {
		return fmt.Errorf("presenting %d tokens: %w", n, err)
	}
	m3, err := measure()
	if err != nil {
		return err
	}

	res, err := w.run(ctx, base+"/", o.duration, http.StatusPaymentRequired)
	if err != nil {
		return fmt.Errorf("challenge path: %w", err)
	}
	fmt.Fprintf(out, "\nchallenge path on memory (l402proxy %s; 1,000 client addresses):\n", strings.Join(args, " "))
	fmt.Fprintf(out, "  %.0f 402/s, p50 %d µs, p99 %d µs (wrk, %s)  target: thousands/s %s\n", res.rps(), int(res.P50), int(res.P99), o.duration, verdict(res.rps() >= 1000))
	per := func(a, b footprint) string {
		return fmt.Sprintf("%6.0f B heap  %6.0f B RSS", float64(b.heap-a.heap)/float64(n), float64(b.rss-a.rss)/float64(n))
	}
	fmt.Fprintf(out, "\nmemory of that l402proxy, per token over %d tokens (live heap after a forced GC; RSS):\n", n)
	fmt.Fprintf(out, "  %-66s %s\n", "issued (root key; invoice on the in-process memory node)", per(m0, m1))
	fmt.Fprintf(out, "  %-66s %s\n", "paid (the memory node's own payment record)", per(m1, m2))
	fmt.Fprintf(out, "  %-66s %s\n", "presented once (signature cache; parse cache holds 4,096)", per(m2, m3))
	fmt.Fprintf(out, "  (heap %d → %d → %d → %d KiB, RSS %d → %d → %d → %d KiB)\n",
		m0.heap>>10, m1.heap>>10, m2.heap>>10, m3.heap>>10, m0.rss>>10, m1.rss>>10, m2.rss>>10, m3.rss>>10)
	return nil
}

// get sends one GET and checks its status; body and head, when set, read
// the answer.
func get(ctx context.Context, c *http.Client, url string, h http.Header, want int, body func(io.Reader) error, head ...func(http.Header) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("GET %s: status %d, want %d: %s", url, resp.StatusCode, want, b)
	}
	for _, f := range head {
		if err := f(resp.Header); err != nil {
			return err
		}
	}
	if body != nil {
		return body(resp.Body)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// metric reads a value from a Prometheus text exposition: the sum of all
// its label sets.
func metric(r io.Reader, name string) (int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	var sum float64
	found := false
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if rest[0] == '{' {
			_, rest, _ = strings.Cut(rest, "} ")
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", name, err)
		}
		sum += f
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("metric %s not exposed", name)
	}
	return int64(sum), nil
}

// requestsSeen is how many requests an l402proxy has decided on, from its
// own metrics.
func requestsSeen(ctx context.Context, addr string) (int64, error) {
	var n int64
	err := get(ctx, http.DefaultClient, "http://"+addr+"/metrics", nil, http.StatusOK, func(r io.Reader) error {
		var err error
		n, err = metric(r, "l402_requests_total")
		return err
	})
	return n, err
}

// parallel calls f for 0..n-1 from workers goroutines; the first error
// stops the rest.
func parallel(ctx context.Context, n, workers int, f func(i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}
