package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// meteredUpstream is an inference-like API: /fixed/ answers plainly;
// /metered/ reports ?use=N units in the usage header, /trailer/ in a
// trailer after the body, /sse/ in server-sent events as it streams (the
// last usage event counts); ?fail=1 answers 500.
func meteredUpstream(t *testing.T) (*httptest.Server, *streamGate) {
	gate := &streamGate{started: make(chan struct{}, 16), release: make(chan struct{})}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		use := r.URL.Query().Get("use")
		if r.URL.Query().Get("fail") == "1" {
			w.Header().Set(proxy.DefaultUsageHeader, use)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/trailer/"):
			w.Header().Set("Trailer", proxy.DefaultUsageHeader+", X-Other")
			io.WriteString(w, "generated text")
			w.Header().Set(proxy.DefaultUsageHeader, use)
			w.Header().Set("X-Other", "kept")
		case strings.HasPrefix(r.URL.Path, "/sse/"):
			w.Header().Set("Content-Type", "text/event-stream")
			fl := http.NewResponseController(w)
			n, _ := strconv.Atoi(use)
			for i := 1; i <= n; i++ {
				fmt.Fprintf(w, "data: token %d\n\n", i)
				fmt.Fprintf(w, "event: %s\ndata: %d\n\n", proxy.DefaultUsageEvent, i)
				fl.Flush()
			}
			if r.URL.Query().Get("hang") == "1" {
				gate.started <- struct{}{}
				select {
				case <-gate.release:
				case <-r.Context().Done():
				}
			}
		default:
			if use != "" {
				w.Header().Set(proxy.DefaultUsageHeader, use)
			}
			io.WriteString(w, "ok "+r.URL.Path)
		}
	}))
	t.Cleanup(up.Close)
	t.Cleanup(func() { gate.once.Do(func() { close(gate.release) }) })
	return up, gate
}

type streamGate struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

type prepaidEnv struct {
	n      *backend.Backend
	p      *proxy.Proxy
	srv    *httptest.Server
	store  proxy.Store
	reg    *prometheus.Registry
	stream *streamGate
}

func newPrepaidEnv(t *testing.T, store proxy.Store) *prepaidEnv {
	t.Helper()
	up, gate := meteredUpstream(t)
	u, _ := url.Parse(up.URL)
	n := newNode(t)
	reg := prometheus.NewRegistry()
	if store == nil {
		store = proxy.NewMemoryStore()
	}
	p, err := proxy.New(proxy.Config{Backend: n, Store: store, Registerer: reg, Instance: "a", Routes: []proxy.Route{
		{Name: "fixed", PathPrefix: "/fixed/", Upstream: u, Price: backend.Sat(10), Bundle: &proxy.Bundle{Units: 3}},
		{Name: "metered", PathPrefix: "/metered/", Upstream: u, Price: backend.Sat(100),
			Bundle: &proxy.Bundle{Units: 100, Metered: true, Reserve: 10, ReserveField: "max_tokens", MaxReserve: 50}},
		{Name: "trailer", PathPrefix: "/trailer/", Upstream: u, Price: backend.Sat(100), Bundle: &proxy.Bundle{Units: 100, Metered: true, Reserve: 10}},
		{Name: "sse", PathPrefix: "/sse/", Upstream: u, Price: backend.Sat(100), Bundle: &proxy.Bundle{Units: 100, Metered: true, Reserve: 10}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return &prepaidEnv{n: n, p: p, srv: srv, store: store, reg: reg, stream: gate}
}

func (e *prepaidEnv) get(t *testing.T, target, auth string) *http.Response {
	t.Helper()
	return e.send(t, http.MethodGet, target, auth, "")
}

func (e *prepaidEnv) send(t *testing.T, method, target, auth, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// pay pays the challenge of a 402 and returns the token's Authorization.
func (e *prepaidEnv) pay(t *testing.T, resp *http.Response) string {
	t.Helper()
	if resp.StatusCode != http.StatusPaymentRequired {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("want 402, got %d %s", resp.StatusCode, b)
	}
	chs, err := l402.ParseChallenges(resp.Header)
	if err != nil {
		t.Fatal(err)
	}
	pay, err := e.n.PayInvoice(context.Background(), chs[0].Invoice, backend.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := l402.NewToken(chs[0].Macaroon, pay.Preimage)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Authorization()
}

func wantServed(t *testing.T, resp *http.Response, balance int64) string {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %s, want 200", resp.StatusCode, body)
	}
	if got := resp.Header.Get(proxy.HeaderBalance); got != strconv.FormatInt(balance, 10) {
		t.Fatalf("%s: %q, want %d", proxy.HeaderBalance, got, balance)
	}
	if v := resp.Header.Get(proxy.DefaultUsageHeader); v != "" {
		t.Fatalf("the usage header reached the client: %q", v)
	}
	if v := resp.Trailer.Get(proxy.DefaultUsageHeader); v != "" {
		t.Fatalf("the usage trailer reached the client: %q", v)
	}
	return string(body)
}

func TestPrepaidFixedCostAndTopUp(t *testing.T) {
	e := newPrepaidEnv(t, nil)
	first := e.pay(t, e.get(t, "/fixed/a", ""))
	for left := int64(2); left >= 0; left-- {
		wantServed(t, e.get(t, "/fixed/a", first), left)
	}
	// Dry: 402 with a challenge, never 200 on credit.
	dry := e.get(t, "/fixed/a", first)
	if dry.Header.Get(proxy.HeaderBalance) != "0" {
		t.Fatalf("dry answer: balance %q", dry.Header.Get(proxy.HeaderBalance))
	}
	topup := e.pay(t, dry)
	// The top-up credits the same balance: both tokens draw from it.
	wantServed(t, e.get(t, "/fixed/a", topup), 2)
	wantServed(t, e.get(t, "/fixed/a", first), 1)
	wantServed(t, e.get(t, "/fixed/a", topup), 0)
	if r := e.get(t, "/fixed/a", first); r.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("dry again: %d", r.StatusCode)
	}
	// An upstream failure costs nothing.
	third := e.pay(t, e.get(t, "/fixed/a", first))
	if r := e.get(t, "/fixed/a?fail=1", third); r.StatusCode != http.StatusInternalServerError || r.Header.Get(proxy.HeaderBalance) != "3" {
		t.Fatalf("upstream 500: %d, balance %q, want 500 and 3 left", r.StatusCode, r.Header.Get(proxy.HeaderBalance))
	}
	// Fixed costs are written to the store after the response; Drain
	// waits for those writes.
	if err := e.p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := gathered(t, e.reg, "l402_prepaid_credited_units_total", "fixed"); got != 9 {
		t.Fatalf("credited metric %v, want 9", got)
	}
	if got := gathered(t, e.reg, "l402_prepaid_debited_units_total", "fixed"); got != 6 {
		t.Fatalf("debited metric %v, want 6", got)
	}
	if got := gathered(t, e.reg, "l402_prepaid_outstanding_units", "fixed"); got != 3 {
		t.Fatalf("outstanding metric %v, want 3", got)
	}
	// A bundle token is for its route only.
	if r := e.get(t, "/metered/x", first); r.StatusCode == http.StatusOK {
		t.Fatal("a token of one bundle route served on another")
	}
}

func TestPrepaidUsageHeader(t *testing.T) {
	e := newPrepaidEnv(t, nil)
	tok := e.pay(t, e.get(t, "/metered/gen", ""))
	wantServed(t, e.get(t, "/metered/gen?use=7", tok), 93)
	// More than the reservation: debited while the balance covers it.
	wantServed(t, e.get(t, "/metered/gen?use=30", tok), 63)
	// Nothing reported: charged the reservation.
	wantServed(t, e.get(t, "/metered/gen", tok), 53)
	// The reservation from the request's body, bounded by MaxReserve: 50
	// available, max_tokens 60 asks for 50.
	r := e.send(t, http.MethodPost, "/metered/gen?use=45", tok, `{"max_tokens": 60, "prompt": "hi"}`)
	wantServed(t, r, 8)
	// 8 left, a request naming 9 is refused before it runs.
	if r := e.send(t, http.MethodPost, "/metered/gen?use=1", tok, `{"max_tokens": 9}`); r.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("reservation above the balance: %d, want 402", r.StatusCode)
	}
	// Usage far above the reservation: the balance goes negative by at
	// most the reservation (8), the rest is forgiven.
	r = e.send(t, http.MethodPost, "/metered/gen?use=500", tok, `{"max_tokens": 8}`)
	wantServed(t, r, -8)
	if got := gathered(t, e.reg, "l402_prepaid_forgiven_units_total", "metered"); got != 484 {
		t.Fatalf("forgiven %v, want 484", got)
	}
	// A top-up pays the debt first.
	top := e.pay(t, e.get(t, "/metered/gen", tok))
	wantServed(t, e.get(t, "/metered/gen?use=2", top), 90)
}

func TestPrepaidTrailer(t *testing.T) {
	e := newPrepaidEnv(t, nil)
	tok := e.pay(t, e.get(t, "/trailer/gen", ""))
	r := e.get(t, "/trailer/gen?use=42", tok)
	// The header shows the balance after the reservation; the trailer
	// settles it.
	body := wantServed(t, r, 90)
	if body != "generated text" || r.Trailer.Get("X-Other") != "kept" {
		t.Fatalf("body %q, trailer %v", body, r.Trailer)
	}
	wantServed(t, e.get(t, "/trailer/gen?use=1", tok), 48)
}

func TestPrepaidStream(t *testing.T) {
	e := newPrepaidEnv(t, nil)
	tok := e.pay(t, e.get(t, "/sse/gen", ""))
	r := e.get(t, "/sse/gen?use=25", tok)
	body := wantServed(t, r, 90)
	if strings.Count(body, "data: token") != 25 {
		t.Fatalf("stream body %q", body)
	}
	wantServed(t, e.get(t, "/sse/gen?use=5", tok), 65)
	// The client reads the first events while the upstream still streams:
	// nothing is held back. Then it leaves: charged the reservation (10 of
	// the 70 left after the two streams above),
	// or what was reported if more.
	r = e.get(t, "/sse/gen?use=3&hang=1", tok)
	br := bufio.NewReader(r.Body)
	for i := 0; i < 3; i++ {
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "data: token") {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(l, "data: ") && !strings.HasPrefix(l, "data: token") {
				br.ReadString('\n')
				break
			}
		}
	}
	<-e.stream.started
	r.Body.Close()
	waitBalance(t, e, tok, 70-10)
}

// waitBalance polls the balance of tok's account until it reaches want
// (a settlement after the client left runs when the proxy notices).
func waitBalance(t *testing.T, e *prepaidEnv, auth string, want int64) {
	t.Helper()
	tok, err := l402.ParseAuthorization(auth)
	if err != nil {
		t.Fatal(err)
	}
	id, err := l402.DecodeIdentifier(tok.Macaroon.Id())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := e.store.Balance(context.Background(), proxy.AccountID(id.TokenID))
		if err == nil && b.Reserved == 0 && b.Available() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("balance %+v (%v), want %d available and nothing reserved", b, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPrepaidTransportTopsUp: l402.Transport (what `l402 get` uses) keeps
// using its token until the balance is dry, then pays the top-up within
// its spending limit and goes on; above the limit it stops.
func TestPrepaidTransportTopsUp(t *testing.T) {
	e := newPrepaidEnv(t, nil)
	var paid []int64
	c := &http.Client{Transport: &l402.Transport{Base: e.srv.Client().Transport, Payer: e.n, MaxPrice: backend.Sat(10),
		OnPayment: func(_ context.Context, r l402.Receipt) { paid = append(paid, int64(r.Amount)) }}}
	var balances []string
	for range 7 {
		resp, err := c.Get(e.srv.URL + "/fixed/a")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		balances = append(balances, resp.Header.Get(proxy.HeaderBalance))
	}
	// 3 units a payment: paid at the first request, then when dry.
	if strings.Join(balances, " ") != "2 1 0 2 1 0 2" || len(paid) != 3 {
		t.Fatalf("balances %v after %d payments %v; want 2 1 0 2 1 0 2 after 3", balances, len(paid), paid)
	}
	// A spending limit below the price: the dry balance is not topped up.
	stingy := &http.Client{Transport: &l402.Transport{Base: e.srv.Client().Transport, Payer: e.n, MaxPrice: backend.Sat(9)}}
	if resp, err := stingy.Get(e.srv.URL + "/fixed/a"); err == nil {
		resp.Body.Close()
		t.Fatalf("a 10 sat top-up paid under a 9 sat limit: %d", resp.StatusCode)
	}
}

// gathered is the value of the metric name with route label route in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name, route string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && l.GetValue() == route {
					if c := m.GetCounter(); c != nil {
						return c.GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

// timingOutStore is a store that times out on demand: the next
// reserveLost Reserve calls write the reservation and then fail (the
// answer, not the write, was lost), the next settleFail Settle calls fail
// without writing (too busy to write in time).
type timingOutStore struct {
	*proxy.MemoryStore
	mu                      sync.Mutex
	reserveLost, settleFail int
}

func (s *timingOutStore) lose(reserve, settle int) {
	s.mu.Lock()
	s.reserveLost, s.settleFail = reserve, settle
	s.mu.Unlock()
}

func (s *timingOutStore) take(n *int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *n > 0 {
		*n--
		return true
	}
	return false
}

func (s *timingOutStore) Reserve(ctx context.Context, r proxy.Reservation) (proxy.Balance, error) {
	b, err := s.MemoryStore.Reserve(ctx, r)
	if err == nil && s.take(&s.reserveLost) {
		return proxy.Balance{}, fmt.Errorf("store: timeout: %w", context.DeadlineExceeded)
	}
	return b, err
}

func (s *timingOutStore) Settle(ctx context.Context, id proxy.ReservationID, used int64) (proxy.Settlement, error) {
	if s.take(&s.settleFail) {
		return proxy.Settlement{}, fmt.Errorf("store: timeout: %w", context.DeadlineExceeded)
	}
	return s.MemoryStore.Settle(ctx, id, used)
}

// TestPrepaidStoreTimeoutLosesNothing: a store that times out neither
// keeps what a user paid for nor gives content away. A reservation written
// though its answer was lost is given back (the request was answered 503);
// a settlement the store did not take in time is asked for again, so the
// request costs what it cost and not the collector's full charge.
func TestPrepaidStoreTimeoutLosesNothing(t *testing.T) {
	st := &timingOutStore{MemoryStore: proxy.NewMemoryStore()}
	e := newPrepaidEnv(t, st)
	auth := e.pay(t, e.get(t, "/metered/a", ""))

	st.lose(1, 0)
	if r := e.get(t, "/metered/a?use=3", auth); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("reserve timed out: status %d, want 503", r.StatusCode)
	}
	waitBalance(t, e, auth, 100) // the 503 cost nothing

	st.lose(0, 2)
	wantServed(t, e.get(t, "/metered/a?use=3", auth), 90) // usage not yet settled: the balance after the reservation
	if err := e.p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitBalance(t, e, auth, 97) // charged its usage, once
	if got := gathered(t, e.reg, "l402_prepaid_debited_units_total", "metered"); got != 3 {
		t.Fatalf("debited metric %v, want 3", got)
	}
}
