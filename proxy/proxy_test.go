package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/memory"
	"github.com/l402kit/l402kit/proxy"
	"github.com/l402kit/l402kit/proxy/statetest"
)

func newNode(t testing.TB) *backend.Backend {
	t.Helper()
	n, err := memory.New(context.Background(), memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// nodeOf is the memory node behind b, for taking it down and up.
func nodeOf(b *backend.Backend) *memnode.Node {
	n, _ := memnode.From(b)
	return n
}

func do(t *testing.T, h http.Handler, method, target string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func echo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path+" paid="+r.Header.Get(proxy.HeaderPaid)+" token="+r.Header.Get(proxy.HeaderTokenID))
	})
}

func TestConfigErrors(t *testing.T) {
	n := newNode(t)
	for name, cfg := range map[string]proxy.Config{
		"no backend":      {Routes: []proxy.Route{{PathPrefix: "/", Price: 1000}}},
		"no price":        {Backend: n, Routes: []proxy.Route{{PathPrefix: "/x/"}}},
		"relative prefix": {Backend: n, Routes: []proxy.Route{{PathPrefix: "x/", Price: 1000}}},
		"duplicate name":  {Backend: n, Routes: []proxy.Route{{Name: "a", PathPrefix: "/x/", Price: 1}, {Name: "a", PathPrefix: "/y/", Price: 1}}},
		"bad name":        {Backend: n, Routes: []proxy.Route{{Name: "a,b", PathPrefix: "/x/", Price: 1}}},
		"caveat typo":     {Backend: n, Routes: []proxy.Route{{PathPrefix: "/x/", Price: 1, Caveats: []l402.Caveat{{Condition: "mehtod", Value: "GET"}}}}},
		"caveat value":    {Backend: n, Routes: []proxy.Route{{PathPrefix: "/x/", Price: 1, Caveats: []l402.Caveat{l402.ClientIPCaveat(netip.Addr{})}}}},
		"prefix climbs":   {Backend: n, Routes: []proxy.Route{{PathPrefix: "/x/../y/", Price: 1}}},
		"host with port":  {Backend: n, Routes: []proxy.Route{{Host: "a.example:80", PathPrefix: "/", Price: 1}}},
	} {
		if _, err := proxy.New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestRoutingAndMiddleware(t *testing.T) {
	n := newNode(t)
	p, err := proxy.New(proxy.Config{Backend: n, Routes: []proxy.Route{
		{Name: "api", PathPrefix: "/api", Price: backend.Sat(1)},
		{Name: "apifree", PathPrefix: "/api/free/", Mode: proxy.ModeFree},
		{Name: "vhost", Host: "paid.example", PathPrefix: "/", Price: backend.Sat(2)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	h := p.Middleware(echo())
	cases := []struct {
		target string
		host   string
		status int
		body   string
	}{
		{"/api", "", 402, ""},
		{"/api/x", "", 402, ""},
		{"/apix", "", 200, "/apix paid=false token="},             // not under /api on a segment boundary
		{"/api/free/y", "", 200, "/api/free/y paid=false token="}, // longer prefix wins
		{"/other", "", 200, "/other paid=false token="},           // no route: middleware passes through unpaid
		{"/other", "paid.example:8080", 402, ""},                  // host route beats the rest
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, c.target, nil)
		if c.host != "" {
			r.Host = c.host
		}
		r.Header.Set(proxy.HeaderPaid, "true") // a client's own claim is dropped
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.status || (c.body != "" && w.Body.String() != c.body) {
			t.Errorf("%s %s: %d %q, want %d %q", c.host, c.target, w.Code, w.Body.String(), c.status, c.body)
		}
	}
	// The reverse-proxy form answers 404 where no route matches.
	if w := do(t, p, http.MethodGet, "/nowhere", nil); w.Code != http.StatusNotFound {
		t.Errorf("reverse proxy with no route: %d", w.Code)
	}
}

func TestMalformedAuthorizationGetsReason(t *testing.T) {
	n := newNode(t)
	p, err := proxy.New(proxy.Config{Backend: n, Routes: []proxy.Route{{PathPrefix: "/", Price: backend.Sat(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	h := p.Middleware(echo())
	for _, v := range []string{"L402 notbase64!!:00", "L402 abc", "LSAT macaroon=\"x\"", "L402 " + strings.Repeat("A", 20) + ":" + strings.Repeat("0", 64)} {
		w := do(t, h, http.MethodGet, "/x", http.Header{"Authorization": {v}})
		if w.Code != http.StatusPaymentRequired || !strings.Contains(w.Body.String(), "token refused (malformed)") {
			t.Errorf("Authorization %q: %d %s", v, w.Code, w.Body.String())
		}
	}
}

func TestRateLimitAndNodeDown(t *testing.T) {
	n := newNode(t)
	p, err := proxy.New(proxy.Config{Backend: n, ChallengesPerMinute: 2, Routes: []proxy.Route{{PathPrefix: "/", Price: backend.Sat(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	h := p.Middleware(echo())
	for i, want := range []int{402, 402, 429} {
		if w := do(t, h, http.MethodGet, "/x", nil); w.Code != want {
			t.Fatalf("challenge %d: %d, want %d", i+1, w.Code, want)
		}
	}

	// HealthMaxAge < 0: every /healthz pings, so it follows the node at once.
	p2, err := proxy.New(proxy.Config{Backend: n, HealthMaxAge: -1, Routes: []proxy.Route{{PathPrefix: "/", Price: backend.Sat(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	nodeOf(n).SetAvailable(false)
	defer nodeOf(n).SetAvailable(true)
	w := do(t, p2.Middleware(echo()), http.MethodGet, "/x", nil)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "unavailable") {
		t.Fatalf("node down: %d %q", w.Code, w.Body.String())
	}
	hw := do(t, p2.Healthz(), http.MethodGet, "/healthz", nil)
	if hw.Code != http.StatusServiceUnavailable {
		t.Fatalf("healthz with node down: %d", hw.Code)
	}
	nodeOf(n).SetAvailable(true)
	hw = do(t, p2.Healthz(), http.MethodGet, "/healthz", nil)
	var body map[string]any
	if err := json.Unmarshal(hw.Body.Bytes(), &body); err != nil || hw.Code != 200 || body["status"] != "ok" {
		t.Fatalf("healthz: %d %s", hw.Code, hw.Body.String())
	}
}

func TestMetricsCount(t *testing.T) {
	n := newNode(t)
	reg := prometheus.NewRegistry()
	p, err := proxy.New(proxy.Config{Backend: n, Registerer: reg, Routes: []proxy.Route{{Name: "r", PathPrefix: "/", Price: backend.Sat(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	do(t, p.Middleware(echo()), http.MethodGet, "/x", nil)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "l402_challenges_total" && mf.GetMetric()[0].GetCounter().GetValue() == 1 {
			found = true
		}
	}
	if !found {
		t.Fatalf("l402_challenges_total did not count the challenge")
	}
}

// TestPaidThroughReverseProxy runs the whole flow through the reverse-proxy
// form against a real upstream listener, with the l402 client paying.
func TestPaidThroughReverseProxy(t *testing.T) {
	n := newNode(t)
	var gotAuth string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		echo().ServeHTTP(w, r)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	p, err := proxy.New(proxy.Config{Backend: n, Routes: []proxy.Route{{PathPrefix: "/", Price: backend.Sat(3), Upstream: u}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	c := &http.Client{Transport: &l402.Transport{Payer: n, MaxPrice: backend.Sat(3)}}
	resp, err := c.Get(srv.URL + "/doc")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "/doc paid=true token=") || len(body) < len("/doc paid=true token=")+64 {
		t.Fatalf("%s %q", resp.Status, body)
	}
	if gotAuth != "" {
		t.Fatalf("upstream received the client's credential %q", gotAuth)
	}
	if rc, ok := l402.ReceiptFromResponse(resp); !ok || rc.Amount != backend.Sat(3) {
		t.Fatalf("receipt %+v %v", rc, ok)
	}
}

func TestMemoryStore(t *testing.T) {
	statetest.Run(t, statetest.Harness{
		Open: func(t *testing.T) proxy.Store { return proxy.NewMemoryStore() },
		Node: func(t *testing.T) *backend.Backend {
			b, err := memory.New(t.Context(), memory.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b
		},
	})
}
