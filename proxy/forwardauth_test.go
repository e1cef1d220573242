package proxy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// traefik builds the request Traefik's ForwardAuth (and Caddy's
// forward_auth) sends for a client's request: the client's headers plus
// X-Forwarded-*, to the auth server's own URL.
func traefik(method, host, uri string, hdr map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://auth.internal/l402/auth", nil)
	r.RemoteAddr = "10.0.0.2:40000" // the front server
	r.Header.Set(proxy.HeaderForwardedMethod, method)
	r.Header.Set(proxy.HeaderForwardedProto, "https")
	r.Header.Set(proxy.HeaderForwardedHost, host)
	r.Header.Set(proxy.HeaderForwardedURI, uri)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestForwardAuthTraefikHeaders(t *testing.T) {
	n := newNode(t)
	p, err := proxy.New(proxy.Config{Backend: n, Routes: []proxy.Route{
		{Name: "paid", PathPrefix: "/paid/", Price: backend.Sat(2), Caveats: []l402.Caveat{l402.MethodCaveat("GET")}},
		{Name: "vhost", Host: "shop.example", PathPrefix: "/", Price: backend.Sat(3)},
		{Name: "free", PathPrefix: "/free/", Mode: proxy.ModeFree},
		{Name: "pod", PathPrefix: "/pod/", Price: backend.Sat(1), Mode: proxy.ModeOptional},
	}})
	if err != nil {
		t.Fatal(err)
	}
	fa := p.ForwardAuth()

	// The original request is priced, not the auth request itself.
	w := serve(fa, traefik("GET", "api.example", "/paid/doc?x=1", nil))
	if w.Code != http.StatusPaymentRequired {
		t.Fatalf("no token: %d %s", w.Code, w.Body)
	}
	chs, err := l402.ParseChallenges(w.Header())
	if err != nil || len(chs) != 2 || chs[0].Scheme != l402.SchemeL402 || chs[1].Scheme != l402.SchemeLSAT {
		t.Fatalf("challenges %v %v", chs, err)
	}
	var cb struct {
		Invoice    string `json:"invoice"`
		AmountMsat int64  `json:"amount_msat"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &cb); err != nil || cb.Invoice != chs[0].Invoice || cb.AmountMsat != int64(backend.Sat(2)) {
		t.Fatalf("challenge body %s (%v)", w.Body, err)
	}
	pay, err := n.PayInvoice(context.Background(), chs[0].Invoice, backend.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := l402.NewToken(chs[0].Macaroon, pay.Preimage)
	if err != nil {
		t.Fatal(err)
	}
	authz := map[string]string{"Authorization": tok.Authorization()}
	w = serve(fa, traefik("GET", "api.example", "/paid/doc", authz))
	if w.Code != http.StatusOK || w.Header().Get(proxy.HeaderPaid) != "true" || w.Header().Get(proxy.HeaderTokenID) != tok.ID.TokenID.String() {
		t.Fatalf("paid: %d %v %s", w.Code, w.Header(), w.Body)
	}
	// The method caveat is checked against X-Forwarded-Method, and the
	// path caveat against X-Forwarded-Uri.
	if w = serve(fa, traefik("POST", "api.example", "/paid/doc", authz)); w.Code != http.StatusPaymentRequired || !strings.Contains(w.Body.String(), "token refused (caveat)") {
		t.Fatalf("POST with a GET-only token: %d %s", w.Code, w.Body)
	}
	if w = serve(fa, traefik("GET", "shop.example:443", "/paid/doc", authz)); w.Code != http.StatusPaymentRequired || !strings.Contains(w.Body.String(), "token refused") {
		t.Fatalf("token of route paid on host route vhost: %d %s", w.Code, w.Body)
	}
	// A path climbing out of one route into another is refused, never
	// cleaned: the upstream gets the raw path from the front server.
	for _, uri := range []string{"/free/../paid/doc", "/free/%2e%2e/paid/doc", "/paid/%2e%2e/free/x"} {
		if w = serve(fa, traefik("GET", "api.example", uri, nil)); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), proxy.ReasonPath) {
			t.Fatalf("%s: %d %s", uri, w.Code, w.Body)
		}
	}

	// Free and optional routes pass unpaid; a client's own claim of
	// payment is refused, since the front server would forward it.
	w = serve(fa, traefik("GET", "api.example", "/free/x", nil))
	if w.Code != http.StatusOK || w.Header().Get(proxy.HeaderPaid) != "false" || w.Header().Get(proxy.HeaderTokenID) != "" {
		t.Fatalf("free: %d %v", w.Code, w.Header())
	}
	if w = serve(fa, traefik("GET", "api.example", "/free/x", map[string]string{proxy.HeaderPaid: "true"})); w.Code != http.StatusBadRequest {
		t.Fatalf("free with a client-sent %s: %d %v", proxy.HeaderPaid, w.Code, w.Header())
	}
	if w = serve(fa, traefik("GET", "api.example", "/pod/ep1", nil)); w.Code != http.StatusOK || w.Header().Get(proxy.HeaderPaid) != "false" {
		t.Fatalf("optional, plain client: %d %v", w.Code, w.Header())
	}
	if w = serve(fa, traefik("GET", "api.example", "/pod/ep1", map[string]string{l402.HeaderAcceptAuthenticate: "L402"})); w.Code != http.StatusPaymentRequired {
		t.Fatalf("optional, L402 client: %d %s", w.Code, w.Body)
	}

	// What the front server must not get wrong.
	if w = serve(fa, traefik("GET", "api.example", "/elsewhere", nil)); w.Code != http.StatusForbidden {
		t.Fatalf("no route: %d %s", w.Code, w.Body)
	}
	r := traefik("GET", "api.example", "/paid/doc", nil)
	r.Header.Del(proxy.HeaderForwardedURI)
	if w = serve(fa, r); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), proxy.HeaderForwardedURI) {
		t.Fatalf("no X-Forwarded-Uri: %d %s", w.Code, w.Body)
	}
	for _, bad := range [][2]string{{"GET", "http://evil/paid/doc"}, {"GET", "paid/doc"}, {"G ET", "/paid/doc"}} {
		if w = serve(fa, traefik(bad[0], "api.example", bad[1], nil)); w.Code != http.StatusBadRequest {
			t.Errorf("method %q uri %q: %d %s", bad[0], bad[1], w.Code, w.Body)
		}
	}
}

func TestForwardAuthNginxMode(t *testing.T) {
	n := newNode(t)
	p, err := proxy.New(proxy.Config{Backend: n, ChallengesPerMinute: 1, Routes: []proxy.Route{{Name: "paid", PathPrefix: "/", Price: backend.Sat(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	fa := p.ForwardAuth()
	nginx := func(uri string) *http.Request {
		r := traefik("GET", "h", uri, nil)
		r.URL.RawQuery = "nginx=1"
		return r
	}
	// 402 becomes 401 with the same challenges and body, and the real
	// status beside them.
	w := serve(fa, nginx("/a"))
	if w.Code != http.StatusUnauthorized || w.Header().Get(proxy.HeaderStatus) != "402" || len(w.Header().Values("WWW-Authenticate")) != 2 || !strings.Contains(w.Body.String(), `"invoice":"lnbcrt`) {
		t.Fatalf("challenge in nginx mode: %d %v %s", w.Code, w.Header(), w.Body)
	}
	// 429 too (the limit is one challenge a minute).
	w = serve(fa, nginx("/b"))
	if w.Code != http.StatusUnauthorized || w.Header().Get(proxy.HeaderStatus) != "429" || w.Header().Get("Retry-After") == "" {
		t.Fatalf("rate limit in nginx mode: %d %v %s", w.Code, w.Header(), w.Body)
	}
	// 400 too, which nginx would otherwise turn into 500.
	if w = serve(fa, nginx("")); w.Code != http.StatusUnauthorized || w.Header().Get(proxy.HeaderStatus) != "400" {
		t.Fatalf("bad request in nginx mode: %d %v", w.Code, w.Header())
	}
	// Without ?nginx=1 the gate's own status.
	if w = serve(fa, traefik("GET", "h", "/c", nil)); w.Code != http.StatusTooManyRequests {
		t.Fatalf("rate limit: %d %s", w.Code, w.Body)
	}

	p2, err := proxy.New(proxy.Config{Backend: n, Routes: []proxy.Route{{Name: "paid", PathPrefix: "/", Price: backend.Sat(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	nodeOf(n).SetAvailable(false)
	defer nodeOf(n).SetAvailable(true)
	if w = serve(p2.ForwardAuth(), nginx("/d")); w.Code != http.StatusUnauthorized || w.Header().Get(proxy.HeaderStatus) != "503" || w.Header().Get("Retry-After") == "" {
		t.Fatalf("node down in nginx mode: %d %v %s", w.Code, w.Header(), w.Body)
	}
}

// TestForwardAuthClientAddress: the client address is the caller's unless
// the caller is a trusted forwarder; then X-Forwarded-For, else X-Real-IP.
// The requests come from the front 10.0.0.2, which the default (loopback)
// does not trust.
func TestForwardAuthClientAddress(t *testing.T) {
	n := newNode(t)
	front := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, c := range []struct {
		name    string
		trusted []netip.Prefix
		hdr     string
		// whether two requests with different client addresses in hdr
		// get separate challenge budgets
		separate bool
	}{
		{"default, X-Forwarded-For", nil, "X-Forwarded-For", false},
		{"default, X-Real-Ip", nil, "X-Real-Ip", false},
		{"none, X-Forwarded-For", []netip.Prefix{}, "X-Forwarded-For", false},
		{"front trusted, X-Forwarded-For", front, "X-Forwarded-For", true},
		{"front trusted, X-Real-Ip", front, "X-Real-Ip", true},
	} {
		p, err := proxy.New(proxy.Config{Backend: n, ChallengesPerMinute: 1, TrustedForwarders: c.trusted, Routes: []proxy.Route{{PathPrefix: "/", Price: backend.Sat(1)}}})
		if err != nil {
			t.Fatal(err)
		}
		fa := p.ForwardAuth()
		first := serve(fa, traefik("GET", "h", "/x", map[string]string{c.hdr: "192.0.2.10"}))
		second := serve(fa, traefik("GET", "h", "/x", map[string]string{c.hdr: "192.0.2.11"}))
		if first.Code != http.StatusPaymentRequired {
			t.Fatalf("%s: first challenge %d", c.name, first.Code)
		}
		if got := second.Code == http.StatusPaymentRequired; got != c.separate {
			t.Errorf("%s: second client got %d, want separate budgets=%v", c.name, second.Code, c.separate)
		}
	}

	// The client_ip caveat sees the trusted address.
	// A second front, 10.0.0.2, added its hop after the client's.
	p, err := proxy.New(proxy.Config{Backend: n, TrustedForwarders: front, Routes: []proxy.Route{{Name: "ip", PathPrefix: "/", Price: backend.Sat(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	fa := p.ForwardAuth()
	w := serve(fa, traefik("GET", "h", "/x", map[string]string{"X-Forwarded-For": "192.0.2.10"}))
	chs, err := l402.ParseChallenges(w.Header())
	if err != nil {
		t.Fatal(err)
	}
	pay, err := n.PayInvoice(context.Background(), chs[0].Invoice, backend.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mac := chs[0].Macaroon.Clone()
	if err := mac.AddFirstPartyCaveat([]byte(l402.ClientIPCaveat(netip.MustParseAddr("192.0.2.10")).String())); err != nil {
		t.Fatal(err)
	}
	tok, err := l402.NewToken(mac, pay.Preimage)
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]int{"192.0.2.10": http.StatusOK, "192.0.2.99": http.StatusPaymentRequired} {
		w := serve(fa, traefik("GET", "h", "/x", map[string]string{"X-Forwarded-For": ip + ", 10.0.0.2", "Authorization": tok.Authorization()}))
		if w.Code != want {
			t.Errorf("client_ip caveat, client %s: %d %s, want %d", ip, w.Code, w.Body, want)
		}
	}
}

// TestForwardAuthSingleUse: forward auth cannot see the upstream's answer,
// so a single-use token is consumed when granted: the held invoice is
// settled before the 200 goes back to the front server.
func TestForwardAuthSingleUse(t *testing.T) {
	n := newNode(t)
	p, err := proxy.New(proxy.Config{Backend: n, Routes: []proxy.Route{{Name: "once", PathPrefix: "/", Price: backend.Sat(1), SingleUse: true}}})
	if err != nil {
		t.Fatal(err)
	}
	fa := p.ForwardAuth()
	w := serve(fa, traefik("GET", "h", "/x", nil))
	chs, err := l402.ParseChallenges(w.Header())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		p   *backend.Payment
		err error
	}
	paid := make(chan result, 1)
	go func() {
		pay, err := n.PayInvoice(ctx, chs[0].Invoice, backend.PayOptions{})
		paid <- result{pay, err}
	}()
	pending := map[string]string{"Authorization": l402.PendingAuthorization(chs[0].Macaroon)}
	for {
		w = serve(fa, traefik("GET", "h", "/x", pending))
		if w.Code == http.StatusOK {
			break
		}
		if w.Code != http.StatusPaymentRequired || !strings.Contains(w.Body.String(), "payment_pending") || ctx.Err() != nil {
			t.Fatalf("pending token: %d %s", w.Code, w.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	id, _ := l402.DecodeIdentifier(chs[0].Macaroon.Id())
	inv, err := n.LookupInvoice(ctx, id.PaymentHash)
	if err != nil || inv.State != backend.StateSettled {
		t.Fatalf("invoice when the grant was answered: %+v %v, want settled", inv, err)
	}
	r := <-paid
	if r.err != nil {
		t.Fatalf("payment: %v", r.err)
	}
	tok, _ := l402.NewToken(chs[0].Macaroon, r.p.Preimage)
	if w = serve(fa, traefik("GET", "h", "/x", map[string]string{"Authorization": tok.Authorization()})); w.Code != http.StatusPaymentRequired || !strings.Contains(w.Body.String(), "(used)") {
		t.Fatalf("replay: %d %s", w.Code, w.Body)
	}
}
