package fronttest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/testenv/fronttest"
	"github.com/l402kit/l402kit/proxy"
)

// TestNginxForwardAuthLoad compares, in one run with rounds interleaved,
// the requests per second of nginx asking the forward-auth endpoint with
// and without the auth-decision cache, and of a plain Go
// httputil.ReverseProxy, all in front of the same 100-byte upstream and
// driven by wrk with a valid token. Bounded (rounds x targets x duration),
// loopback only; it reports figures and asserts none. Opt-in:
//
//	L402KIT_FRONT_LOAD=1 go test -run TestNginxForwardAuthLoad -v ./internal/testenv/fronttest/
func TestNginxForwardAuthLoad(t *testing.T) {
	if os.Getenv("L402KIT_FRONT_LOAD") != "1" {
		t.Skip("load run; set L402KIT_FRONT_LOAD=1 to run it")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk not found (apt-get install wrk, or scripts/ci-deps.sh)")
	}
	rounds, dur := 3, 5*time.Second
	if v, err := strconv.Atoi(os.Getenv("L402KIT_FRONT_LOAD_ROUNDS")); err == nil && v > 0 && v <= 10 {
		rounds = v
	}

	body := strings.Repeat("x", 100)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(body))
	}))
	defer up.Close()
	upAddr := strings.TrimPrefix(up.URL, "http://")

	n := newNode(t)
	p, err := proxy.New(proxy.Config{Backend: over(t, n, true), Routes: []proxy.Route{{Name: "paid", PathPrefix: "/", Price: backend.Sat(1)}}, ForwardAuthCacheMax: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	auth := newAuthServer(t, p)
	a := fronttest.Addrs{Upstream: upAddr, Auth: auth.addr()}
	cached := fronttest.Nginx(t, a, fronttest.NginxOptions{})
	plainNginx := fronttest.Nginx(t, a, fronttest.NginxOptions{NoCache: true})

	target, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
	plain := httptest.NewServer(rp)
	defer plain.Close()

	tok := buy(t, n, cached.Addr, "/doc")
	authz := tok.Authorization()
	for _, u := range []string{cached.URL, plainNginx.URL} {
		resp, _ := get(t, strings.TrimPrefix(u, "http://"), "/doc", map[string]string{"Authorization": authz})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s with the token: %s", u, resp.Status)
		}
	}

	targets := []struct{ name, url string }{
		{"plain Go ReverseProxy", plain.URL},
		{"nginx + forward auth, no cache", plainNginx.URL},
		{"nginx + forward auth + cache", cached.URL},
	}
	type figure struct{ rps, p50, p99 []float64 }
	figs := make([]figure, len(targets))
	run := func(u string, d time.Duration) (rps, p50, p99 float64) {
		ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, wrk, "-t1", "-c32", "-d"+strconv.Itoa(int(d/time.Second))+"s", "--latency",
			"-H", "Authorization: "+authz, u+"/doc").CombinedOutput()
		if err != nil {
			t.Fatalf("wrk: %v\n%s", err, out)
		}
		if m := regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`).FindSubmatch(out); m != nil {
			t.Fatalf("wrk %s: %s non-2xx responses\n%s", u, m[1], out)
		}
		return wrkFloat(t, out, `Requests/sec:\s+([\d.]+)`), wrkLatency(t, out, "50%"), wrkLatency(t, out, "99%")
	}
	for _, tg := range targets {
		run(tg.url, time.Second) // warm-up
	}
	for r := 0; r < rounds; r++ {
		for i := range targets {
			j := (i + r) % len(targets) // rotate the order each round
			rps, p50, p99 := run(targets[j].url, dur)
			figs[j].rps = append(figs[j].rps, rps)
			figs[j].p50 = append(figs[j].p50, p50)
			figs[j].p99 = append(figs[j].p99, p99)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "wrk -t1 -c32 -d%s, %d rounds interleaved, 100-byte upstream, valid token:\n", dur, rounds)
	base := mean(figs[0].rps)
	for i, tg := range targets {
		fmt.Fprintf(&b, "  %-32s %8.0f req/s (rounds %v)  p50 %6.0f µs  p99 %6.0f µs  ratio to plain %.2f\n",
			tg.name, mean(figs[i].rps), rounded(figs[i].rps), mean(figs[i].p50), mean(figs[i].p99), mean(figs[i].rps)/base)
	}
	fmt.Fprintf(&b, "  forward-auth endpoint asked %d times in all", auth.calls.Load())
	t.Log(b.String())
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func rounded(v []float64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x + 0.5)
	}
	return out
}

func wrkFloat(t *testing.T, out []byte, re string) float64 {
	t.Helper()
	m := regexp.MustCompile(re).FindSubmatch(out)
	if m == nil {
		t.Fatalf("wrk output lacks %s:\n%s", re, out)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wrkLatency reads a percentile line of wrk --latency ("50%  1.23ms") in µs.
func wrkLatency(t *testing.T, out []byte, pct string) float64 {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(pct) + `\s+([\d.]+)(us|ms|s)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("wrk output lacks the %s latency:\n%s", pct, out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	switch string(m[2]) {
	case "ms":
		v *= 1e3
	case "s":
		v *= 1e6
	}
	return v
}
