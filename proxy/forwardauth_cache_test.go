package proxy_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// TestForwardAuthCacheHeader checks what the endpoint lets a front server
// cache: grants on free routes and for multi-use tokens, bounded by
// ForwardAuthCacheMax and by the token's validity; never refusals,
// single-use or optional routes.
func TestForwardAuthCacheHeader(t *testing.T) {
	// Without hold invoices (noHold), so paying a single-use route's
	// invoice does not wait for the proxy to settle it.
	n, err := memnode.New(memnode.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b := backend.New(noHold{n}, backend.Options{})
	t.Cleanup(func() { b.Close() })
	routes := []proxy.Route{
		{Name: "paid", PathPrefix: "/paid/", Price: backend.Sat(2)},
		{Name: "short", PathPrefix: "/short/", Price: backend.Sat(2), TokenLifetime: 10 * time.Second},
		{Name: "once", PathPrefix: "/once/", Price: backend.Sat(2), SingleUse: true},
		{Name: "pod", PathPrefix: "/pod/", Price: backend.Sat(1), Mode: proxy.ModeOptional},
		{Name: "free", PathPrefix: "/free/", Mode: proxy.ModeFree},
	}
	p, err := proxy.New(proxy.Config{Backend: b, Routes: routes, ForwardAuthCacheMax: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	fa := p.ForwardAuth()
	buy := func(uri string) string {
		t.Helper()
		w := serve(fa, traefik("GET", "api.example", uri, nil))
		if w.Code != http.StatusPaymentRequired || w.Header().Get(proxy.HeaderAccelExpires) != "0" {
			t.Fatalf("%s without token: %d, %s %q", uri, w.Code, proxy.HeaderAccelExpires, w.Header().Get(proxy.HeaderAccelExpires))
		}
		chs, err := l402.ParseChallenges(w.Header())
		if err != nil {
			t.Fatal(err)
		}
		pay, err := n.PayInvoice(context.Background(), chs[0].Invoice, backend.PayOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := l402.NewToken(chs[0].Macaroon, pay.Preimage)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Authorization()
	}
	// until asks for uri and returns the unix second the answer may be
	// cached through, or 0 when it may not be cached.
	until := func(fa http.Handler, uri string, hdr map[string]string, want int) int64 {
		t.Helper()
		w := serve(fa, traefik("GET", "api.example", uri, hdr))
		if w.Code != want {
			t.Fatalf("%s: %d %s, want %d", uri, w.Code, w.Body, want)
		}
		v := w.Header().Get(proxy.HeaderAccelExpires)
		if v == "0" {
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("%s: uncacheable answer with Cache-Control %q", uri, cc)
			}
			return 0
		}
		s, ok := strings.CutPrefix(v, "@")
		n, err := strconv.ParseInt(s, 10, 64)
		if !ok || err != nil {
			t.Fatalf("%s: %s %q", uri, proxy.HeaderAccelExpires, v)
		}
		if cc := w.Header().Get("Cache-Control"); cc != "" {
			t.Errorf("%s: cacheable grant with Cache-Control %q (nginx 1.22 would not cache it)", uri, cc)
		}
		return n
	}
	within := func(what string, got int64, lo, hi time.Time) {
		t.Helper()
		if got < lo.Unix()-1 || got > hi.Unix()-1 {
			t.Errorf("%s: cacheable through %d, want within [%d, %d]", what, got, lo.Unix()-1, hi.Unix()-1)
		}
	}

	before := time.Now()
	free := until(fa, "/free/x", nil, http.StatusOK)
	within("free route", free, before.Add(time.Minute), time.Now().Add(time.Minute))

	paid := buy("/paid/doc")
	before = time.Now()
	got := until(fa, "/paid/doc", map[string]string{"Authorization": paid}, http.StatusOK)
	within("token without expiry", got, before.Add(time.Minute), time.Now().Add(time.Minute))

	// A token valid for 10 s: cached until the second before it expires.
	short := buy("/short/doc")
	mac, err := l402.FromHeader(http.Header{"Authorization": {short}})
	if err != nil {
		t.Fatal(err)
	}
	var validUntil int64
	for _, c := range mac.Macaroon.Caveats() {
		if v, ok := strings.CutPrefix(string(c.Id), "short"+l402.CondValidUntilSuffix+"="); ok {
			validUntil, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if validUntil == 0 {
		t.Fatal("the short route's token has no valid_until caveat")
	}
	if got := until(fa, "/short/doc", map[string]string{"Authorization": short}, http.StatusOK); got != validUntil-1 {
		t.Errorf("token valid until %d: cacheable through %d, want %d", validUntil, got, validUntil-1)
	}

	// Refusals: a forged token, a token for another route.
	forged := []byte(paid)
	forged[len(forged)-1] ^= 1
	if got := until(fa, "/paid/doc", map[string]string{"Authorization": string(forged)}, http.StatusPaymentRequired); got != 0 {
		t.Errorf("forged token: cacheable through %d", got)
	}
	if got := until(fa, "/short/doc", map[string]string{"Authorization": paid}, http.StatusPaymentRequired); got != 0 {
		t.Errorf("token of another route: cacheable through %d", got)
	}
	// No route: 403, never cached.
	if got := until(fa, "/nowhere", nil, http.StatusForbidden); got != 0 {
		t.Errorf("no route: cacheable through %d", got)
	}

	// Single-use: granted once, never cached.
	once := buy("/once/doc")
	if got := until(fa, "/once/doc", map[string]string{"Authorization": once}, http.StatusOK); got != 0 {
		t.Errorf("single-use grant: cacheable through %d", got)
	}
	// Optional route: the answer depends on Accept-Authenticate; never cached.
	if got := until(fa, "/pod/ep1", nil, http.StatusOK); got != 0 {
		t.Errorf("optional route, free variant: cacheable through %d", got)
	}

	// Without ForwardAuthCacheMax nothing is cacheable.
	p0, err := proxy.New(proxy.Config{Backend: b, Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	if got := until(p0.ForwardAuth(), "/free/x", nil, http.StatusOK); got != 0 {
		t.Errorf("ForwardAuthCacheMax 0: free grant cacheable through %d", got)
	}
}
