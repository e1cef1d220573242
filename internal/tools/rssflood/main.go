// Command rssflood measures what a flood of challenges nobody pays does to
// an l402proxy's memory: it starts the given binary on the memory backend,
// sends -n challenges from -clients addresses (X-Forwarded-For, under the
// per-client limit), waits until the invoices have expired and the proxy
// could collect their state, and does it again, reading the process's
// resident set size and Go heap (after a forced GC, through --pprof) at each
// step. Loopback only; bounded in
// count and time.
//
//	go build -o /tmp/l402proxy ./cmd/l402proxy
//	go run ./internal/tools/rssflood -l402proxy /tmp/l402proxy
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l402kit/l402kit/internal/tools/childproc"
)

func main() {
	bin := flag.String("l402proxy", "", "the l402proxy binary to measure (required)")
	n := flag.Int("n", 60000, "challenges per flood")
	clients := flag.Int("clients", 600, "client addresses the challenges come from")
	conc := flag.Int("c", 16, "concurrent requests")
	expiry := flag.Duration("expiry", time.Minute, "invoice expiry of the route")
	wait := flag.Duration("wait", 150*time.Second, "wait after each flood, past expiry and collection")
	floods := flag.Int("floods", 2, "floods, each followed by the wait")
	backendURL := flag.String("backend", "memory://", "the proxy's --backend")
	extra := flag.String("args", "", "more l402proxy arguments, space-separated (e.g. --state memory)")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "rssflood: -l402proxy is required")
		os.Exit(2)
	}
	limit := *wait*time.Duration(*floods) + 10*time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if err := run(ctx, *bin, *backendURL, strings.Fields(*extra), *n, *clients, *conc, *floods, *expiry, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "rssflood:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin, backendURL string, extra []string, n, clients, conc, floods int, expiry, wait time.Duration) error {
	dir, err := os.MkdirTemp("", "l402kit-rssflood-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer up.Close()
	go http.Serve(up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	addr, err := childproc.FreeAddr()
	if err != nil {
		return err
	}
	conf := filepath.Join(dir, "l402proxy.yaml")
	yaml := fmt.Sprintf("listen: %s\nbackend: %s\nroutes:\n  - name: api\n    path: /\n    upstream: http://%s\n    price_sat: 1\n    invoice_expiry: %s\n", addr, backendURL, up.Addr(), expiry)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		return err
	}
	pprofAddr, err := childproc.FreeAddr()
	if err != nil {
		return err
	}
	args := append([]string{"--config", conf, "--forward-auth", "off", "--pprof", pprofAddr}, extra...)
	ps := &childproc.Group{}
	defer ps.StopAll()
	proc, err := ps.Start("l402proxy", bin, args...)
	if err != nil {
		return err
	}
	if err := proc.WaitListen(ctx, addr); err != nil {
		return err
	}
	base := "http://" + addr
	tr := &http.Transport{MaxIdleConnsPerHost: conc}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	fmt.Printf("l402proxy %s\n%d challenges from %d addresses per flood, %d concurrent, invoice expiry %s, wait %s after each flood\n\n",
		strings.Join(args, " "), n, clients, conc, expiry, wait)
	fmt.Printf("%-34s %10s %12s\n", "moment", "RSS MB", "heap in use MB (after GC)")
	if err := proc.WaitListen(ctx, pprofAddr); err != nil {
		return err
	}
	show := func(moment string) error {
		// A forced GC first, so the heap figure is what is live, and the
		// runtime may hand freed memory back.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+pprofAddr+"/debug/pprof/heap?gc=1", nil)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("forcing a GC: %w", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		rss, err := rssBytes(proc.PID())
		if err != nil {
			return err
		}
		heap, err := heapInuse(ctx, client, base+"/metrics")
		if err != nil {
			return err
		}
		fmt.Printf("%-34s %10.1f %12.1f\n", moment, float64(rss)/(1<<20), float64(heap)/(1<<20))
		return nil
	}
	if err := show("started"); err != nil {
		return err
	}
	for f := 1; f <= floods; f++ {
		t0 := time.Now()
		if err := flood(ctx, client, base, n, clients, conc); err != nil {
			return err
		}
		if err := show(fmt.Sprintf("flood %d done (%.0f/s)", f, float64(n)/time.Since(t0).Seconds())); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		if err := show(fmt.Sprintf("flood %d + %s", f, wait)); err != nil {
			return err
		}
	}
	return nil
}

func flood(ctx context.Context, client *http.Client, base string, n, clients, conc int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/x", nil)
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.1", i%clients/250, i%clients%250))
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusPaymentRequired {
					errs <- fmt.Errorf("challenge %d: status %d", i, resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func heapInuse(ctx context.Context, client *http.Client, url string) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int64(f), err
		}
	}
	return 0, errors.New("no go_memstats_heap_inuse_bytes in /metrics")
}

func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("no VmRSS")
}
