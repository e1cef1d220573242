package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/internal/plumbing/version"
	"github.com/l402kit/l402kit/proxy"
)

func TestForwardAuthFlags(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil || o.forwardAuth != "/l402/auth" || !slices.Equal(o.trustedForwarders, proxy.DefaultTrustedForwarders) {
		t.Fatalf("defaults: %+v %v", o, err)
	}
	if o, err := parseFlags([]string{"--forward-auth", "off", "--trusted-forwarders", "10.0.0.0/8, 192.0.2.7"}); err != nil || o.forwardAuth != "" ||
		!slices.Equal(o.trustedForwarders, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}) {
		t.Fatalf("--forward-auth off --trusted-forwarders: %+v %v", o, err)
	}
	if o, err := parseFlags([]string{"--trusted-forwarders", "none"}); err != nil || o.trustedForwarders == nil || len(o.trustedForwarders) != 0 {
		t.Fatalf("--trusted-forwarders none: %+v %v", o, err)
	}
	if _, err := parseFlags([]string{"--trusted-forwarders", "10.0.0.0/40"}); err == nil {
		t.Error("--trusted-forwarders 10.0.0.0/40 accepted")
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
