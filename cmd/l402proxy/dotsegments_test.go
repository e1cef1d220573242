package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDotSegmentsRefused: the binary answers a path with literal dot
// segments or doubled slashes 400, as the gate does for every path some
// server could read differently, never a redirect to a cleaned path.
func TestDotSegmentsRefused(t *testing.T) {
	addr := freeAddr(t)
	startProxy(t, addr, nil, "--backend", "memory://", "--state", "memory")
	for _, target := range []string{"/free/../paid/article", "/./paid/article", "/paid/./article", "//paid/article", "/paid/article/..", "/metrics/../paid/article", "/healthz/.."} {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(15 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, addr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %s (Location %q), want 400", target, resp.Status, resp.Header.Get("Location"))
		}
	}
	// Clean paths of the proxy's own endpoints still reach them.
	if st, _ := get(t, "http://"+addr+"/healthz", ""); st != http.StatusOK {
		t.Fatalf("/healthz: %d", st)
	}
	if st, h := get(t, "http://"+addr+"/paid/article", ""); st != http.StatusPaymentRequired || !strings.HasPrefix(h.Get("Www-Authenticate"), "L402") {
		t.Fatalf("/paid/article: %d", st)
	}
}

// TestAdminListener: with --admin-listen, /metrics and the node's identity
// are served there only; the public /healthz shows no node.
func TestAdminListener(t *testing.T) {
	addr, admin := freeAddr(t), freeAddr(t)
	startProxy(t, addr, nil, "--backend", "memory://", "--state", "memory", "--admin-listen", admin)
	body := func(url string) (int, string) {
		resp, err := httpc.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp.StatusCode, b.String()
	}
	if st, b := body("http://" + addr + "/healthz"); st != http.StatusOK || strings.Contains(b, `"node"`) {
		t.Fatalf("public /healthz: %d %s", st, b)
	}
	if st, b := body("http://" + admin + "/healthz"); st != http.StatusOK || !strings.Contains(b, `"node"`) {
		t.Fatalf("admin /healthz: %d %s", st, b)
	}
	if st, b := body("http://" + admin + "/metrics"); st != http.StatusOK || !strings.Contains(b, "l402_") {
		t.Fatalf("admin /metrics: %d", st)
	}
	if st, _ := body("http://" + addr + "/metrics"); st == http.StatusOK {
		t.Fatal("/metrics still on the public listener")
	}
}
