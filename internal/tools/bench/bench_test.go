package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	ok := []byte("Running 1s test\nBENCH {\"requests\":100,\"duration_us\":1000000,\"non2xx\":0,\"connect\":0,\"read\":0,\"write\":0,\"timeout\":0,\"p50_us\":120,\"p99_us\":900}\n")
	res, err := parseWrk("u", ok, 200)
	if err != nil || res.Requests != 100 || res.rps() != 100 || res.P50 != 120 || res.P99 != 900 {
		t.Fatalf("%+v %v", res, err)
	}
	for name, out := range map[string]string{
		"no figures":    "Running 1s test\n",
		"no requests":   `BENCH {"requests":0,"duration_us":1000000}`,
		"socket errors": `BENCH {"requests":10,"duration_us":1000000,"read":3}`,
		"non-2xx":       `BENCH {"requests":10,"duration_us":1000000,"non2xx":1}`,
	} {
		if _, err := parseWrk("u", []byte(out), 200); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := parseWrk("u", []byte(`BENCH {"requests":10,"duration_us":1000000,"non2xx":10,"unexpected":1}`), 402); err == nil {
		t.Error("challenge run with a non-402 answer accepted")
	}
	if _, err := parseWrk("u", []byte(`BENCH {"requests":10,"duration_us":1000000,"non2xx":10}`), 402); err != nil {
		t.Errorf("challenge run of 402s refused: %v", err)
	}
}

func TestMetricAndMedian(t *testing.T) {
	v, err := metric(strings.NewReader("# HELP x\ngo_memstats_heap_alloc_bytes_total 1\ngo_memstats_heap_alloc_bytes 1.2345e+06\n"), "go_memstats_heap_alloc_bytes")
	if err != nil || v != 1234500 {
		t.Fatalf("%d %v", v, err)
	}
	v, err = metric(strings.NewReader("l402_requests_total{route=\"a\",outcome=\"paid\"} 3\nl402_requests_total_other 9\nl402_requests_total{route=\"b\",outcome=\"free\"} 4\n"), "l402_requests_total")
	if err != nil || v != 7 {
		t.Fatalf("labelled sum %d %v", v, err)
	}
	if _, err := metric(strings.NewReader("other 1\n"), "go_memstats_heap_alloc_bytes"); err == nil {
		t.Fatal("missing metric found")
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Fatalf("median %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Fatalf("median %v", m)
	}
}

func TestClientAddrsDistinct(t *testing.T) {
	seen := map[string]bool{}
	for i := range 1000 {
		seen[clientAddr(i)] = true
	}
	if len(seen) != 1000 || clientAddr(1000) != clientAddr(0) {
		t.Fatalf("%d distinct addresses", len(seen))
	}
}

// TestWrkScripts runs the real wrk with both scripts against a local
// server: the headers reach it, the figures come back, and a status other
// than the one wanted fails the run.
func TestWrkScripts(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk not installed (scripts/ci-deps.sh installs it)")
	}
	var mu sync.Mutex
	var auth, xff []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth, xff = append(auth, r.Header.Get("Authorization")), append(xff, r.Header.Get("X-Forwarded-For"))
		mu.Unlock()
		if r.URL.Path == "/pay" {
			w.WriteHeader(http.StatusPaymentRequired)
		}
	}))
	defer srv.Close()
	w, err := newWrkRunner(t.TempDir(), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := w.run(ctx, srv.URL+"/", time.Second, 200, "Authorization: L402 abc:def")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if res.Requests == 0 || len(auth) == 0 || auth[0] != "L402 abc:def" {
		t.Fatalf("%+v; server saw Authorization %q", res, auth[:min(1, len(auth))])
	}
	mu.Unlock()
	if _, err := w.run(ctx, srv.URL+"/pay", time.Second, 200); err == nil {
		t.Fatal("402s accepted as 2xx")
	}
	mu.Lock()
	xff = nil
	mu.Unlock()
	res, err = w.run(ctx, srv.URL+"/pay", time.Second, 402)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	// A request of the previous run may still arrive after the reset.
	distinct, empty := map[string]bool{}, 0
	for _, a := range xff {
		if a == "" {
			empty++
		}
		distinct[a] = true
	}
	if len(distinct) < min(len(xff)/2, 100) || empty > 2 {
		t.Fatalf("challenge script: %d requests from %d addresses, %d without X-Forwarded-For", len(xff), len(distinct), empty)
	}
	mu.Unlock()
	if _, err := w.run(ctx, srv.URL+"/", time.Second, 402); err == nil {
		t.Fatal("200s accepted as 402")
	}
}
