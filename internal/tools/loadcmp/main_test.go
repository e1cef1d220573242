package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRunSmall(t *testing.T) {
	o := options{N: 50, C: 4, Rounds: 2, Warmup: 10, VerifyN: 100, MaxTime: time.Minute}
	rep, err := run(context.Background(), o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"direct (reference)":             http.StatusOK,
		"baseline httputil.ReverseProxy": http.StatusOK,
		"l402 proxy, valid token":        http.StatusOK,
		"l402 challenge (no token, 402)": http.StatusPaymentRequired,
	}
	if len(rep.Targets) != len(want) {
		t.Fatalf("%d targets, want %d", len(rep.Targets), len(want))
	}
	for _, s := range rep.Targets {
		if st, ok := want[s.Name]; !ok || st != s.Status {
			t.Errorf("target %q status %d, want one of %v", s.Name, s.Status, want)
		}
		if s.Requests != o.N*o.Rounds {
			t.Errorf("%s: %d requests counted, want exactly %d", s.Name, s.Requests, o.N*o.Rounds)
		}
	}
	if len(rep.PerRound) != o.Rounds || rep.VerifyN != o.VerifyN {
		t.Errorf("%d rounds reported, verify n %d; want %d and %d", len(rep.PerRound), rep.VerifyN, o.Rounds, o.VerifyN)
	}

	var buf bytes.Buffer
	printTable(&buf, rep)
	for name := range want {
		if !strings.Contains(buf.String(), name) {
			t.Errorf("table lacks %q:\n%s", name, buf.String())
		}
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"targets", "rounds", "l402_over_baseline_throughput", "added_p50_us", "verify_ns_per_op"} {
		if _, ok := back[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, js)
		}
	}
}

func TestLoadWrongStatus(t *testing.T) {
	u, stop, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	_, _, err = load(context.Background(), &http.Client{Transport: &http.Transport{}}, u.String(), "", http.StatusOK, 100, 4)
	if err == nil || !strings.Contains(err.Error(), "status 500") {
		t.Fatalf("load = %v, want a status 500 error", err)
	}
}

func TestLoadStopsAtDeadline(t *testing.T) {
	u, stop, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers on its own
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	limit := errors.New("test limit")
	ctx, cancel := context.WithTimeoutCause(context.Background(), 100*time.Millisecond, limit)
	defer cancel()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	_, _, err = load(ctx, &http.Client{Transport: tr}, u.String(), "", http.StatusOK, 10, 2)
	if !errors.Is(err, limit) {
		t.Fatalf("load = %v, want the deadline's cause", err)
	}
}
