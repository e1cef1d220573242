package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/testenv/fronttest"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// readmePrepaidYAML is the yaml block of the README section whose heading
// says "Prepaid".
func readmePrepaidYAML(t *testing.T) string {
	t.Helper()
	readme := fronttest.RepoFile(t, "README.md")
	sec := regexp.MustCompile(`(?m)^#+ .*Prepaid.*$`).FindStringIndex(readme)
	if sec == nil {
		t.Fatal("README.md has no section whose heading says Prepaid")
	}
	rest := readme[sec[1]:]
	if next := regexp.MustCompile(`(?m)^## `).FindStringIndex(rest); next != nil {
		rest = rest[:next[0]]
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```\n").FindStringSubmatch(rest)
	if m == nil {
		t.Fatal("README.md's Prepaid section has no ```yaml block")
	}
	return m[1]
}

// TestREADMEPrepaidConfig loads the README's prepaid configuration as
// written (only the upstream address is replaced by a test server's) on
// the memory backend it names, and runs the section's worked example
// through it: pay once, then draw by reported usage and by fixed cost.
func TestREADMEPrepaidConfig(t *testing.T) {
	fc, err := parseConfig([]byte(readmePrepaidYAML(t)))
	if err != nil {
		t.Fatal(err)
	}
	if fc.Backend != "memory://" {
		t.Fatalf("the README's prepaid example runs on %q, want memory://", fc.Backend)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			w.Header().Set(proxy.DefaultUsageHeader, "612") // the model's answer took 612 tokens
		}
		io.WriteString(w, "answer")
	}))
	defer up.Close()
	upURL, _ := url.Parse(up.URL)
	ctx := context.Background()
	b, err := backend.Open(ctx, fc.Backend)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var routes []proxy.Route
	for _, rc := range fc.Routes {
		r, err := rc.route()
		if err != nil {
			t.Fatal(err)
		}
		if r.Bundle == nil {
			t.Fatalf("route %s of the prepaid example sells no bundle", r.Name)
		}
		r.Upstream = upURL
		routes = append(routes, r)
	}
	p, err := proxy.New(proxy.Config{Backend: b, Routes: routes, CollectEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(p)
	defer srv.Close()

	do := func(method, path, auth, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	buy := func(path string) string {
		t.Helper()
		resp := do(http.MethodGet, path, "", "")
		chs, err := l402.ParseChallenges(resp.Header)
		if resp.StatusCode != http.StatusPaymentRequired || err != nil {
			t.Fatalf("%s without a token: %d %v", path, resp.StatusCode, err)
		}
		pay, err := b.PayInvoice(ctx, chs[0].Invoice, backend.PayOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := l402.NewToken(chs[0].Macaroon, pay.Preimage)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Authorization()
	}
	infer := buy("/v1/chat")
	resp := do(http.MethodPost, "/v1/chat", infer, `{"prompt": "hello", "max_tokens": 800}`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get(proxy.HeaderBalance) != "99388" {
		t.Fatalf("inference request: %d, balance %q, want 200 and 99388", resp.StatusCode, resp.Header.Get(proxy.HeaderBalance))
	}
	search := buy("/search/q")
	for want := 49; want >= 47; want-- {
		resp := do(http.MethodGet, "/search/q", search, "")
		if resp.StatusCode != http.StatusOK || resp.Header.Get(proxy.HeaderBalance) != strconv.Itoa(want) {
			t.Fatalf("search: %d, balance %q, want 200 and %d", resp.StatusCode, resp.Header.Get(proxy.HeaderBalance), want)
		}
	}
}
