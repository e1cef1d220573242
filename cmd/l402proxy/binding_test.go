package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/testenv/fronttest"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/memory"
)

// startInProcess runs l402proxy with args on the memory backend and returns
// its base URL, read from the walk-through it prints.
func startInProcess(t *testing.T, args ...string) string {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--listen", "127.0.0.1:0", "--state", "memory"}, args...), out)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("l402proxy: %v", err)
		}
	})
	up := regexp.MustCompile(`l402proxy is up on (http://\S+)\.`)
	for deadline := time.Now().Add(30 * time.Second); ; {
		b, _ := os.ReadFile(out.Name())
		if m := up.FindSubmatch(b); m != nil {
			return string(m[1])
		}
		select {
		case err := <-done:
			t.Fatalf("l402proxy stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("l402proxy did not start:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bindingProxy writes a configuration whose route /api/ binds its tokens
// as bind says, in front of a counting upstream, and starts l402proxy on
// it.
func bindingProxy(t *testing.T, bind string, args ...string) (base string, asked func() int) {
	t.Helper()
	var n atomic.Int32
	ups := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	t.Cleanup(ups.Close)
	cfg := fmt.Sprintf("backend: memory://\nroutes:\n  - name: api\n    path: /api/\n    upstream: %s\n    price_sat: 1\n    schemes: [L402, Payment]\n    %s: true\n", ups.URL, bind)
	path := filepath.Join(t.TempDir(), "l402proxy.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return startInProcess(t, append([]string{"--config", path}, args...)...), func() int { return int(n.Load()) }
}

// askProxy sends GET base+path with the Host host and extra headers.
func askProxy(t *testing.T, base, host, path string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	if host != "" {
		req.Host = host
	}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// buyDev pays the L402 challenge h through the memory backend's dev
// endpoint and returns the token's Authorization value and its caveats.
func buyDev(t *testing.T, base string, h http.Header) (string, []string) {
	t.Helper()
	chs, err := l402.ParseChallenges(h)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(base+memory.DevPayPath, url.Values{"invoice": {chs[0].Invoice}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var paid struct {
		Preimage string `json:"preimage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&paid); err != nil {
		t.Fatal(err)
	}
	pre, err := backend.ParsePreimage(paid.Preimage)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := l402.NewToken(chs[0].Macaroon, pre)
	var cs []string
	for _, c := range chs[0].Macaroon.Caveats() {
		cs = append(cs, string(c.Id))
	}
	return "Authorization: " + tok.Authorization(), cs
}

// TestBindOriginThroughL402proxy: a route with bind_origin in the YAML
// configuration mints tokens bound to the origin the client addressed;
// they are refused at another, with or without --public-origin.
func TestBindOriginThroughL402proxy(t *testing.T) {
	base, asked := bindingProxy(t, "bind_origin")
	st, h, body := askProxy(t, base, "api.example:8080", "/api/x")
	if st != 402 {
		t.Fatalf("challenge: %d %s", st, body)
	}
	tok, cs := buyDev(t, base, h)
	if !slices.Contains(cs, "origin=http://api.example:8080") {
		t.Fatalf("minted caveats %q", cs)
	}
	if st, _, body := askProxy(t, base, "api.example:8080", "/api/x", tok); st != 200 || asked() != 1 {
		t.Fatalf("at its origin: %d %s (upstream asked %d)", st, body, asked())
	}
	if st, _, body := askProxy(t, base, "shop.example:8080", "/api/x", tok); st != 402 || !strings.Contains(body, "token refused (caveat)") || asked() != 1 {
		t.Fatalf("at another origin: %d %s (upstream asked %d)", st, body, asked())
	}

	// Behind a front, the configured public origin is the origin,
	// whatever Host the front sends.
	base, asked = bindingProxy(t, "bind_origin", "--public-origin", "https://api.example")
	_, h, _ = askProxy(t, base, "127.0.0.1", "/api/x")
	tok, cs = buyDev(t, base, h)
	if !slices.Contains(cs, "origin=https://api.example") {
		t.Fatalf("minted caveats with --public-origin %q", cs)
	}
	if st, _, body := askProxy(t, base, "backend.internal", "/api/x", tok); st != 200 || asked() != 1 {
		t.Fatalf("with --public-origin: %d %s", st, body)
	}
}

// TestBindClientCertThroughL402proxy: l402proxy does not end TLS, so a
// bind_client_cert route needs the front's certificate header; with it,
// a token bought with certificate A is refused with B and without one.
func TestBindClientCertThroughL402proxy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("backend: memory://\nroutes:\n  - name: api\n    path: /api/\n    price_sat: 1\n    bind_client_cert: true\n"), 0o600)
	err := run(context.Background(), []string{"--config", path, "--listen", "127.0.0.1:0", "--state", "memory"}, nil)
	if err == nil || !strings.Contains(err.Error(), "--client-cert-header") {
		t.Fatalf("bind_client_cert without a certificate header: %v", err)
	}

	base, asked := bindingProxy(t, "bind_client_cert", "--client-cert-header", "X-Client-Cert")
	a, b := sha256.Sum256([]byte("certificate A")), sha256.Sum256([]byte("certificate B"))
	certA, certB := "X-Client-Cert: "+hex.EncodeToString(a[:]), "X-Client-Cert: "+hex.EncodeToString(b[:])
	if st, _, body := askProxy(t, base, "", "/api/x"); st != 403 || !strings.Contains(body, "client_certificate_required") {
		t.Fatalf("challenge without a certificate: %d %s", st, body)
	}
	_, h, _ := askProxy(t, base, "", "/api/x", certA)
	tok, _ := buyDev(t, base, h)
	if st, _, body := askProxy(t, base, "", "/api/x", tok, certB); st != 402 || asked() != 0 {
		t.Fatalf("certificate B: %d %s", st, body)
	}
	if st, _, body := askProxy(t, base, "", "/api/x", tok); st != 403 || asked() != 0 {
		t.Fatalf("no certificate: %d %s", st, body)
	}
	if st, _, body := askProxy(t, base, "", "/api/x", tok, certA); st != 200 || asked() != 1 {
		t.Fatalf("certificate A: %d %s", st, body)
	}
}

// TestREADMEConfigParses reads the README's example configuration (the
// YAML block after "A YAML file gives several routes") as l402proxy does:
// every key known, every route valid, the binding keys set where shown.
func TestREADMEConfigParses(t *testing.T) {
	readme := fronttest.RepoFile(t, "README.md")
	i := strings.Index(readme, "A YAML file gives several routes")
	if i < 0 {
		t.Fatal("README.md lost its example configuration")
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```\n").FindStringSubmatch(readme[i:])
	if m == nil {
		t.Fatal("no yaml block after the example's sentence")
	}
	fc, err := parseConfig([]byte(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	bound := false
	for _, rc := range fc.Routes {
		r, err := rc.route()
		if err != nil {
			t.Fatalf("route %s: %v", rc.Name, err)
		}
		bound = bound || r.BindOrigin && r.BindClientCert
	}
	if !bound || fc.PublicOrigin == "" || fc.ClientCertHeader == "" {
		t.Fatalf("the example no longer shows token binding: %+v", fc)
	}
}
