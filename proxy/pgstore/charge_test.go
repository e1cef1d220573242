package pgstore_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/testenv/pgtest"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/memory"
	"github.com/l402kit/l402kit/proxy"
	"github.com/l402kit/l402kit/proxy/pgstore"
)

// TestChargeSpendsOnceAcrossProxies: two proxies on one PostgreSQL
// database, sharing the Payment secret and the node, are sent one paid
// charge credential 200 times at once, half each: exactly one request is
// served, the others are refused as used.
func TestChargeSpendsOnceAcrossProxies(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	ctx := context.Background()
	node, err := memory.New(ctx, memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	var served sync.Mutex
	n := 0
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Lock()
		n++
		served.Unlock()
		io.WriteString(w, "content")
	}))
	defer up.Close()
	upURL, _ := url.Parse(up.URL)
	secret := []byte("a Payment secret both proxies share")
	var fronts [2]*httptest.Server
	for i := range fronts {
		st, err := pgstore.Open(ctx, pgstore.Config{DSN: dsn, Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		p, err := proxy.New(proxy.Config{
			Backend: node, Store: st, PaymentSecret: secret, Instance: string(rune('a' + i)),
			CollectEvery: -1, ChallengesPerMinute: -1, Logger: slog.New(slog.DiscardHandler),
			// 200 requests at once on a loaded machine queue for the
			// database pool: the bound is for a node or store that is
			// gone, not for this wait.
			NodeTimeout: time.Minute,
			Routes:      []proxy.Route{{PathPrefix: "/paid/", Price: backend.Sat(5), Upstream: upURL, Schemes: []string{proxy.SchemePayment}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		fronts[i] = httptest.NewServer(p)
		defer fronts[i].Close()
	}
	resp, err := http.Get(fronts[0].URL + "/paid/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	chs, err := l402.ParsePaymentChallenges(resp.Header)
	if err != nil || len(chs) != 1 {
		t.Fatalf("status %d challenges %+v %v", resp.StatusCode, chs, err)
	}
	_, inv, err := chs[0].Charge()
	if err != nil {
		t.Fatal(err)
	}
	pay, err := node.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := l402.NewChargeCredential(chs[0], pay.Preimage).Authorization()
	if err != nil {
		t.Fatal(err)
	}
	const k = 200
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: k}}
	statuses := make(chan int, k)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < k; i++ {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodGet, fronts[i%2].URL+"/paid/x", nil)
			req.Header.Set("Authorization", auth)
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPaymentRequired {
				t.Errorf("status %d: %s", resp.StatusCode, body)
			}
			statuses <- resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	served.Lock()
	defer served.Unlock()
	if count[http.StatusOK] != 1 || count[http.StatusPaymentRequired] != k-1 || n != 1 {
		t.Fatalf("statuses %v, upstream served %d: want exactly one 200 and %d refusals", count, n, k-1)
	}
}
