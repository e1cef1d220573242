package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSlowBodyFloodLeavesOthersServed: one address opens far more
// connections than the whole listener admits, each sending a request
// whose body never comes; another address is still served, at once rather
// than after the read timeout (checked against a generous deadline, not
// timed).
func TestSlowBodyFloodLeavesOthersServed(t *testing.T) {
	// A free route to an upstream that reads whole bodies, so a slow body
	// holds its request open in the proxy.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	conf := filepath.Join(t.TempDir(), "routes.yml")
	if err := os.WriteFile(conf, []byte("routes:\n  - name: paid\n    path: /paid/\n    upstream: "+up.URL+"\n    price_sat: 1\n  - name: free\n    path: /\n    mode: free\n    upstream: "+up.URL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	startProxy(t, addr, nil, "--backend", "memory://", "--config", conf, "--state", "memory",
		"--max-connections", "40", "--max-connections-per-address", "8", "--max-bodies-per-address", "4",
		"--trusted-forwarders", "127.0.0.1") // the clients below dial from 127.0.0.2 and .3
	var flood []net.Conn
	t.Cleanup(func() {
		for _, c := range flood {
			c.Close()
		}
	})
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	for range 100 {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, c)
		// Dials succeed before the proxy accepts (the kernel's backlog),
		// so the flood is as long as it would be from a real attacker.
		if _, err := io.WriteString(c, "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\nab"); err != nil {
			t.Logf("flood connection closed by the proxy: %v", err)
		}
	}
	victim := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}).DialContext,
	}}
	start := time.Now()
	for i := range 5 {
		resp, err := victim.Get("http://" + addr + fmt.Sprintf("/paid/x%d", i))
		if err != nil {
			t.Fatalf("another client during the flood: %v (after %s)", err, time.Since(start))
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusPaymentRequired {
			t.Fatalf("another client during the flood: %s", resp.Status)
		}
	}
	t.Logf("5 requests of another client served in %s during the flood", time.Since(start))

	// The flooder's own bodies beyond its bound are refused at once: a
	// fresh connection gets 429 (or is closed at accept while it holds
	// all its connections).
	for _, c := range flood {
		c.Close()
	}
	flood = nil
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for ctx.Err() == nil {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		io.WriteString(c, "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\nab")
		c.SetReadDeadline(time.Now().Add(time.Second))
		b := make([]byte, 12)
		if n, _ := io.ReadFull(c, b); n == 12 && string(b) == "HTTP/1.1 429" {
			t.Logf("body %d of one address refused 429", len(held))
			return
		}
		if len(held) > 20 {
			break
		}
	}
	t.Fatalf("no 429 for one address's unfinished bodies after %d of them", len(held))
}
