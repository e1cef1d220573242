package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/testenv/nostrrelay"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/memory"
	"github.com/l402kit/l402kit/nwc"
)

// TestNWCBackend runs l402proxy with --backend nostr+walletconnect://...:
// the proxy's node is a memory node served by nwc's wallet service over a
// loopback relay, and a client paying through another connection to the
// same wallet gets through.
func TestNWCBackend(t *testing.T) {
	relay, err := nostrrelay.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node, err := memory.New(ctx, memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	svc, err := nwc.NewService(ctx, nwc.ServiceConfig{Backend: node, Relays: []string{relay.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	proxyURI, err := svc.Connect(ctx, nwc.Permissions{Methods: []string{nwc.MethodMakeInvoice, nwc.MethodLookupInvoice}})
	if err != nil {
		t.Fatal(err)
	}
	payerURI, err := svc.Connect(ctx, nwc.Permissions{})
	if err != nil {
		t.Fatal(err)
	}

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "paid content") }))
	defer up.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(pctx, []string{"--backend", proxyURI, "--listen", addr, "--upstream", up.URL, "--price", "10", "--state", "memory", "--forward-auth", "off"}, nil)
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("l402proxy: %v", err)
		}
	}()

	payer, err := backend.Open(ctx, payerURI)
	if err != nil {
		t.Fatal(err)
	}
	defer payer.Close()
	client := &http.Client{Transport: &l402.Transport{Payer: payer, MaxPrice: backend.Sat(10)}}
	var resp *http.Response
	for {
		resp, err = client.Get("http://" + addr + "/")
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("proxy never answered: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "paid content" {
		t.Fatalf("through l402proxy on NWC: %d %q", resp.StatusCode, body)
	}
}
