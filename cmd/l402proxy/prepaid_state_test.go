package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/l402kit/l402kit/internal/testenv/pgtest"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
	"github.com/l402kit/l402kit/proxy/pgstore"
)

// prepaidUpstream answers /fixed/ plainly, /metered/ reporting 2 units of
// usage (twice what the route reserves), and /stream/ as a server-sent
// event stream that reports ?use=N and then, with ?hang=1, stays open
// until the client or the proxy goes away.
func prepaidUpstream(t *testing.T) (string, chan struct{}) {
	hanging := make(chan struct{}, 4)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/metered/"):
			w.Header().Set(proxy.DefaultUsageHeader, "2")
		case strings.HasPrefix(r.URL.Path, "/stream/"):
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "data: hello\n\nevent: %s\ndata: %s\n\n", proxy.DefaultUsageEvent, r.URL.Query().Get("use"))
			http.NewResponseController(w).Flush()
			if r.URL.Query().Get("hang") == "1" {
				hanging <- struct{}{}
				<-r.Context().Done()
			}
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	return up.URL, hanging
}

// balanceOf reads the balance of the token auth in the shared database.
func balanceOf(t *testing.T, st *pgstore.Store, auth string) proxy.Balance {
	t.Helper()
	tok, err := l402.ParseAuthorization(auth)
	if err != nil {
		t.Fatal(err)
	}
	id, err := l402.DecodeIdentifier(tok.Macaroon.Id())
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.Balance(context.Background(), proxy.AccountID(id.TokenID))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// settled waits until nothing is reserved on the balance of auth (fixed
// costs are written after their responses) and returns it.
func settled(t *testing.T, db *pgstore.Store, auth string) proxy.Balance {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		bal := balanceOf(t, db, auth)
		if bal.Reserved == 0 || time.Now().After(deadline) {
			return bal
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metric sums a prepaid counter for route over the processes' /metrics.
func metric(t *testing.T, name, route string, ps ...*proc) float64 {
	t.Helper()
	var sum float64
	for _, p := range ps {
		resp, err := httpc.Get("http://" + p.addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		prefix := name + `{route="` + route + `"} `
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatal(err)
				}
				sum += f
			}
		}
		resp.Body.Close()
	}
	return sum
}

// hammer sends n concurrent GETs of path with auth, alternating between
// the bases, and counts the answers by status. They come from client (an
// address the proxies believe from X-Forwarded-For), so the dry ones'
// challenges draw on that client's per-minute challenge allowance, not on
// the test's own (buy's).
func hammer(bases []string, path, auth, client string, n int) map[int]int {
	var (
		mu   sync.Mutex
		seen = map[int]int{}
		wg   sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range n {
		base := bases[i%len(bases)]
		wg.Go(func() {
			<-start
			st, _, _ := tryFrom(base+path, auth, client)
			mu.Lock()
			seen[st]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return seen
}

// TestPrepaidTwoInstancesOnePostgres runs two l402proxy processes on one
// PostgreSQL, with a third process as their Lightning node (as
// TestTwoInstancesOnePostgres does), selling bundles.
func TestPrepaidTwoInstancesOnePostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	env := []string{"L402_STATE_SCHEMA=" + schema}
	up, hanging := prepaidUpstream(t)
	db, err := pgstore.Open(context.Background(), pgstore.Config{DSN: dsn, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	nodeAddr := freeAddr(t)
	nodeBase := "http://" + nodeAddr
	startProxy(t, nodeAddr, nil, "--backend", "memory://", "--lnurl-name", "shop", "--state", "memory", "--forward-auth", "off")
	conf := filepath.Join(t.TempDir(), "l402proxy.yaml")
	yaml := fmt.Sprintf(`backend: lnurl://shop@%s?tls=0
routes:
  - name: fixed
    path: /fixed/
    upstream: %s
    price_sat: 1
    bundle: {units: 100, cost: 1}
  - name: metered
    path: /metered/
    upstream: %s
    price_sat: 1
    bundle: {units: 100, metered: true, reserve: 1}
  - name: stream
    path: /stream/
    upstream: %s
    price_sat: 1
    bundle: {units: 1000, metered: true, reserve: 50}
`, nodeAddr, up, up, up)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	aArgs := []string{"--config", conf, "--state", dsn, "--forward-auth", "off", "--instance", "a", "--trusted-forwarders", "127.0.0.1"}
	a := startProxy(t, aAddr, env, aArgs...)
	b := startProxy(t, bAddr, env, "--config", conf, "--state", dsn, "--forward-auth", "off", "--instance", "b", "--trusted-forwarders", "127.0.0.1")
	aBase, bBase := "http://"+aAddr, "http://"+bAddr

	t.Run("Fixed200Concurrent", func(t *testing.T) {
		auth := buy(t, aBase, "/fixed/x", nodeBase)
		seen := hammer([]string{aBase, bBase}, "/fixed/x", auth, "192.0.2.1", 200)
		bal := settled(t, db, auth)
		t.Logf("statuses %v, balance %+v", seen, bal)
		// A fixed cost is reserved in full before the request: no
		// overdraft at all, and every debit is kept. A store too busy to
		// answer in time (a loaded machine) makes a request 503, which
		// serves nothing and costs nothing: so each unit is either served
		// and debited once, or left on the balance for a 503.
		served := int64(seen[http.StatusOK])
		if bal.Credited != 100 || bal.Debited != served || bal.Reserved != 0 ||
			served != 100 && served+int64(seen[http.StatusServiceUnavailable]) < 100 {
			t.Fatalf("200 requests on 100 units over two proxies: statuses %v, balance %+v; want 100 served and 100 debited (fewer only for 503s, with the rest still available)\n%s", seen, bal, warnings(a, b))
		}
		for code := range seen {
			switch code {
			case http.StatusOK, http.StatusPaymentRequired, http.StatusTooManyRequests, http.StatusServiceUnavailable:
			default:
				t.Fatalf("an answer neither served nor refused: %v\n%s", seen, warnings(a, b))
			}
		}
	})
	t.Run("Metered200Concurrent", func(t *testing.T) {
		auth := buy(t, bBase, "/metered/x", nodeBase)
		seen := hammer([]string{aBase, bBase}, "/metered/x", auth, "192.0.2.2", 200)
		bal := settled(t, db, auth) // a settlement the store took too long for is made again
		served := float64(seen[http.StatusOK])
		// A proxy counts a settlement just after the store took it.
		var debited, forgiven float64
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			debited = metric(t, "l402_prepaid_debited_units_total", "metered", a, b)
			forgiven = metric(t, "l402_prepaid_forgiven_units_total", "metered", a, b)
			if float64(bal.Debited) == debited || time.Now().After(deadline) {
				break
			}
		}
		t.Logf("statuses %v, balance %+v, debited %v forgiven %v by the proxies' metrics", seen, bal, debited, forgiven)
		// Each request reserves 1 and reports 2: the balance may end
		// below zero by at most one reservation, and what the proxies
		// debited is exactly what the database holds: no debit lost.
		if bal.Reserved != 0 || bal.Available() < -1 || float64(bal.Debited) != debited || debited+forgiven != 2*served || served == 0 {
			t.Fatalf("metered: statuses %v, balance %+v, metrics debited %v forgiven %v\n%s", seen, bal, debited, forgiven, warnings(a, b))
		}
	})
	t.Run("SIGKILLMidStreamAndRestart", func(t *testing.T) {
		auth := buy(t, aBase, "/stream/x", nodeBase)
		if st, _ := get(t, bBase+"/stream/x?use=30", auth); st != http.StatusOK {
			t.Fatalf("stream on B: %d", st)
		}
		if bal := balanceOf(t, db, auth); bal.Available() != 970 {
			t.Fatalf("after a stream reporting 30: %+v", bal)
		}
		// A stream on A that reports 5 and stays open; A dies mid-stream.
		req, _ := http.NewRequest(http.MethodGet, aBase+"/stream/x?use=5&hang=1", nil)
		req.Header.Set("Authorization", auth)
		resp, err := httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		select {
		case <-hanging:
		case <-time.After(30 * time.Second):
			t.Fatal("the stream did not start")
		}
		if bal := balanceOf(t, db, auth); bal.Reserved != 50 {
			t.Fatalf("mid-stream: %+v, want its 50 reserved", bal)
		}
		a.kill()
		// B goes on drawing from the balance; A's reservation stays held.
		if st, h := get(t, bBase+"/stream/x?use=10", auth); st != http.StatusOK || h.Get(proxy.HeaderBalance) != "870" {
			t.Fatalf("B after A died: %d, balance %q, want 870 (970, less A's 50 held, less this stream's own 50 reserved)", st, h.Get(proxy.HeaderBalance))
		}
		// A restarted under its name charges its dead stream's reservation
		// (no more): the balance is kept and nothing is lost.
		a = startProxy(t, aAddr, env, aArgs...)
		deadline := time.Now().Add(30 * time.Second)
		for {
			bal := balanceOf(t, db, auth)
			if bal.Reserved == 0 {
				if bal.Credited != 1000 || bal.Debited != 30+10+50 {
					t.Fatalf("after A's restart: %+v, want 1000 credited and 90 debited (30, 10, and the dead stream's reservation of 50)", bal)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("A's dead reservation still held 30 s after its restart: %+v\n%s", bal, warnings(a))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if st, h := get(t, aBase+"/stream/x?use=10", auth); st != http.StatusOK || h.Get(proxy.HeaderBalance) != "860" {
			t.Fatalf("A after its restart: %d, balance %q, want 860", st, h.Get(proxy.HeaderBalance))
		}
	})
}
