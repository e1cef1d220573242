package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/memory"
	"github.com/l402kit/l402kit/proxy"
)

// TestGetPrepaidBundle runs `l402 get` again and again, with one token
// store, against a route that sells bundles of 3 requests: it keeps using
// its token until the balance is dry, then pays the top-up (within
// --max-price) and goes on.
func TestGetPrepaidBundle(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "answer\n")
	}))
	defer up.Close()
	upURL, _ := url.Parse(up.URL)
	b, err := backend.Open(context.Background(), "memory://")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	node, _ := memory.AsNode(b)
	p, err := proxy.New(proxy.Config{Backend: b, Logger: slog.New(slog.DiscardHandler), Routes: []proxy.Route{
		{Name: "bundle", PathPrefix: "/bundle/", Upstream: upURL, Price: backend.Sat(10), Bundle: &proxy.Bundle{Units: 3}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	mux := http.NewServeMux()
	mux.Handle(memory.DevPayPath, memory.DevPayHandler(node))
	mux.Handle("/", p)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	payer := "memory+dev://" + strings.TrimPrefix(srv.URL, "http://")
	store := filepath.Join(t.TempDir(), "l402.db")

	var paid []int
	for i := 1; i <= 7; i++ {
		code, out, errOut := runCLI("get", srv.URL+"/bundle/q", "--backend", payer, "--max-price", "10", "--store", store)
		if code != 0 || out != "answer\n" {
			t.Fatalf("run %d: exit %d stdout %q stderr %q", i, code, out, errOut)
		}
		if strings.Contains(errOut, "paid 10 sat") {
			paid = append(paid, i)
		}
	}
	if len(paid) != 3 || paid[0] != 1 || paid[1] != 4 || paid[2] != 7 {
		t.Fatalf("paid on runs %v, want 1, 4 and 7 (a bundle of 3, topped up when dry)", paid)
	}
	// Above the spending limit the dry balance is not topped up.
	for range 2 {
		runCLI("get", srv.URL+"/bundle/q", "--backend", payer, "--max-price", "10", "--store", store)
	}
	if code, _, errOut := runCLI("get", srv.URL+"/bundle/q", "--backend", payer, "--max-price", "9", "--store", store); code == 0 {
		t.Fatalf("a 10 sat top-up paid under --max-price 9: %s", errOut)
	}
}
