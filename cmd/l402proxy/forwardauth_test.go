package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/internal/version"
)

func TestForwardAuthFlags(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil || o.forwardAuth != "/l402/auth" || o.trustForwardedFor {
		t.Fatalf("defaults: %+v %v", o, err)
	}
	if o, err := parseFlags([]string{"--forward-auth", "off", "--trust-forwarded-for"}); err != nil || o.forwardAuth != "" || !o.trustForwardedFor {
		t.Fatalf("--forward-auth off --trust-forwarded-for: %+v %v", o, err)
	}
	for _, bad := range []string{"auth", "/"} {
		if _, err := parseFlags([]string{"--forward-auth", bad}); err == nil {
			t.Errorf("--forward-auth %q accepted", bad)
		}
	}
}

// TestForwardAuthMounted runs the command on the demo routes and asks its
// forward-auth endpoint as Traefik would.
func TestForwardAuthMounted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", addr, "--backend", "memory://", "--state", filepath.Join(t.TempDir(), "state.db")}, devnull)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	ask := func(uri string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/l402/auth", nil)
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Proto", "http")
		req.Header.Set("X-Forwarded-Host", "example.org")
		req.Header.Set("X-Forwarded-Uri", uri)
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp
			}
			if time.Now().After(deadline) {
				t.Fatalf("l402proxy not answering on %s: %v", addr, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if resp := ask("/paid/article"); resp.StatusCode != http.StatusPaymentRequired || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("forward auth for /paid/article: %s %v", resp.Status, resp.Header)
	}
	if resp := ask("/free/x"); resp.StatusCode != http.StatusOK || resp.Header.Get("X-L402-Paid") != "false" {
		t.Fatalf("forward auth for /free/x: %s %v", resp.Status, resp.Header)
	}
	// /metrics says which build this is.
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf("l402proxy_build_info{commit=%q,goversion=%q,version=%q} 1\n", version.Read().Commit, runtime.Version(), version.Read().Version)
	if !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %q", want)
	}
}
