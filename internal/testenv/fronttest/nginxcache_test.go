package fronttest_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/testenv/fronttest"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// TestNginxAuthCache checks the auth-decision cache of deploy/nginx/l402.conf
// against a real nginx: grants are reused, a cached grant ends with its
// token, and single-use grants and refusals are never reused.
func TestNginxAuthCache(t *testing.T) {
	n := newNode(t)
	up := newUpstream(t)
	rs := append([]proxy.Route{{Name: "short", PathPrefix: "/paid/short/", Price: backend.Sat(3), TokenLifetime: 4 * time.Second}}, routes()...)
	p, err := proxy.New(proxy.Config{Backend: over(t, n, false), Routes: rs, ForwardAuthCacheMax: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	auth := newAuthServer(t, p)
	f := fronttest.Nginx(t, fronttest.Addrs{Upstream: up.addr(), Auth: auth.addr()}, fronttest.NginxOptions{})

	// asked sends target and returns how many times nginx asked the
	// endpoint for it (0: the cached grant answered).
	asked := func(target string, hdr map[string]string, want int) int64 {
		t.Helper()
		before := auth.calls.Load()
		resp, body := get(t, f.Addr, target, hdr)
		if resp.StatusCode != want {
			t.Fatalf("%s: %s %q, want %d", target, resp.Status, body, want)
		}
		if want == http.StatusOK {
			if s := up.take(); s == nil || (strings.HasPrefix(target, "/paid/") && s.paid != "true") {
				t.Fatalf("%s: upstream saw %+v", target, s)
			}
		} else if s := up.take(); s != nil {
			t.Fatalf("%s refused, yet the upstream saw %+v", target, s)
		}
		return auth.calls.Load() - before
	}

	// A multi-use token: the second request is answered from the cache,
	// with the same headers for the upstream.
	tok := buy(t, n, f.Addr, "/paid/doc")
	authz := map[string]string{"Authorization": tok.Authorization()}
	if got := asked("/paid/doc", authz, http.StatusOK); got != 1 {
		t.Fatalf("first paid request: endpoint asked %d times, want 1", got)
	}
	if got := asked("/paid/doc", authz, http.StatusOK); got != 0 {
		t.Errorf("second paid request: endpoint asked %d times, want 0 (cached grant)", got)
	}
	// The key holds the URI: another path is a new decision.
	if got := asked("/paid/other", authz, http.StatusOK); got != 1 {
		t.Errorf("another path: endpoint asked %d times, want 1", got)
	}
	// ... and the credential: a forged one is refused, every time.
	forged := *tok
	forged.Preimage[0] ^= 1
	for i := 0; i < 2; i++ {
		if got := asked("/paid/doc", map[string]string{"Authorization": forged.Authorization()}, http.StatusPaymentRequired); got != 1 {
			t.Errorf("forged token, try %d: endpoint asked %d times, want 1 (refusals are never cached)", i+1, got)
		}
	}
	// No token: a fresh challenge each time, never a cached one.
	for i := 0; i < 2; i++ {
		if got := asked("/paid/doc", nil, http.StatusPaymentRequired); got != 1 {
			t.Errorf("no token, try %d: endpoint asked %d times, want 1", i+1, got)
		}
	}
	// Free route: cached too.
	asked("/free/z", nil, http.StatusOK)
	if got := asked("/free/z", nil, http.StatusOK); got != 0 {
		t.Errorf("free route, second request: endpoint asked %d times, want 0", got)
	}

	// Single-use: never cached; the second use is refused through nginx.
	once := buy(t, n, f.Addr, "/once/x")
	onceAuthz := map[string]string{"Authorization": once.Authorization()}
	if got := asked("/once/x", onceAuthz, http.StatusOK); got != 1 {
		t.Fatalf("single-use: endpoint asked %d times, want 1", got)
	}
	if got := asked("/once/x", onceAuthz, http.StatusPaymentRequired); got != 1 {
		t.Errorf("single-use, second use: endpoint asked %d times, want 1", got)
	}

	// A token valid for a few seconds: its cached grant ends with it. No
	// request sent in or after the second the token expires may pass.
	short := buy(t, n, f.Addr, "/paid/short/x")
	var validUntil int64
	for _, c := range short.Macaroon.Caveats() {
		if v, ok := strings.CutPrefix(string(c.Id), "short"+l402.CondValidUntilSuffix+"="); ok {
			validUntil, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if validUntil == 0 {
		t.Fatal("the short route's token has no valid_until caveat")
	}
	shortAuthz := map[string]string{"Authorization": short.Authorization()}
	var served, fromCache int
	for {
		sent := time.Now()
		before := auth.calls.Load()
		resp, body := get(t, f.Addr, "/paid/short/x", shortAuthz)
		up.take()
		if resp.StatusCode == http.StatusPaymentRequired {
			break
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("short-lived token: %s %q", resp.Status, body)
		}
		if sent.Unix() >= validUntil {
			t.Fatalf("short-lived token valid until %d served at %s", validUntil, sent.Format(time.RFC3339Nano))
		}
		served++
		if auth.calls.Load() == before {
			fromCache++
		}
		if time.Since(sent) > time.Minute || sent.Unix() > validUntil+30 {
			t.Fatal("short-lived token still served 30 s after it expired")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("short-lived token: %d requests served before it expired, %d of them from nginx's cache", served, fromCache)
	if l := up.takeLeaks(); len(l) > 0 {
		t.Fatalf("selling handlers ran unpaid for %q", l)
	}
}
