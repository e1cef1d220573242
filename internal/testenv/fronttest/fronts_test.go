package fronttest_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/internal/testenv/fronttest"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// Markers in the upstream's bodies: a response carrying paidMark came from
// a handler that sells something.
const (
	paidMark = "PAID-CONTENT"
	freeMark = "free content"
)

// seen is what the upstream received.
type seen struct {
	uri, paid, tokenID, auth string
	smuggled                 []string // client-sent spellings of X-L402-* that reached it
	header                   http.Header
}

// upstream is a Go http.ServeMux: /paid/ and /once/ sell, / is free. It
// records what reached it, and every request a selling handler ran without
// X-L402-Paid: true.
type upstream struct {
	srv   *httptest.Server
	mu    sync.Mutex
	last  *seen
	leaks []string
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	record := func(r *http.Request) {
		s := &seen{uri: r.RequestURI, paid: r.Header.Get(proxy.HeaderPaid), tokenID: r.Header.Get(proxy.HeaderTokenID), auth: r.Header.Get("Authorization"),
			header: r.Header.Clone()}
		for k := range r.Header {
			if k != proxy.HeaderPaid && k != proxy.HeaderTokenID && strings.Contains(strings.ToLower(strings.NewReplacer("_", "-").Replace(k)), "x-l402") {
				s.smuggled = append(s.smuggled, k)
			}
		}
		u.mu.Lock()
		u.last = s
		u.mu.Unlock()
	}
	sell := func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(proxy.HeaderPaid) != "true" {
			u.mu.Lock()
			u.leaks = append(u.leaks, r.RequestURI)
			u.mu.Unlock()
		}
		io.WriteString(w, paidMark+" "+r.URL.Path)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/paid/", sell)
	mux.HandleFunc("/once/", sell)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, freeMark+" "+r.URL.Path)
	})
	// Recorded before the mux, which may answer a redirect itself.
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(r)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// take returns what reached the upstream since the last call, nil if
// nothing did.
func (u *upstream) take() *seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.last
	u.last = nil
	return s
}

func (u *upstream) takeLeaks() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	l := u.leaks
	u.leaks = nil
	return l
}

func (u *upstream) addr() string { return strings.TrimPrefix(u.srv.URL, "http://") }

// noHold is the memory node as a driver without hold invoices, so
// single-use tokens are consumed through the spent-hash store, as on nodes
// without them, and paying for one does not wait for the proxy to settle.
type noHold struct{ backend.Driver }

// over returns a Backend over n, with hold invoices or without them.
func over(t *testing.T, n *memnode.Node, hold bool) *backend.Backend {
	var d backend.Driver = n
	if !hold {
		d = noHold{n}
	}
	b := backend.New(d, backend.Options{})
	t.Cleanup(func() { b.Close() })
	return b
}

// authServer serves p's forward-auth endpoint at /l402/auth and counts the
// requests it answers.
type authServer struct {
	srv   *httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	uri   string // X-Forwarded-Uri of the last request
}

// lastURI returns the X-Forwarded-Uri the endpoint was last asked about
// and forgets it.
func (a *authServer) lastURI() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.uri
	a.uri = ""
	return u
}

func newAuthServer(t *testing.T, p *proxy.Proxy) *authServer {
	a := &authServer{}
	fa := p.ForwardAuth()
	mux := http.NewServeMux()
	mux.Handle("/l402/auth", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		a.mu.Lock()
		a.uri = strings.Join(r.Header.Values(proxy.HeaderForwardedURI), ", ")
		a.mu.Unlock()
		fa.ServeHTTP(w, r)
	}))
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	return a
}

func (a *authServer) addr() string { return strings.TrimPrefix(a.srv.URL, "http://") }

// routes: /paid/ and /once/ (single-use) are sold, everything else is free.
func routes() []proxy.Route {
	return []proxy.Route{
		{Name: "paid", PathPrefix: "/paid/", Price: backend.Sat(5)},
		{Name: "once", PathPrefix: "/once/", Price: backend.Sat(7), SingleUse: true},
		{Name: "free", PathPrefix: "/", Mode: proxy.ModeFree},
	}
}

// rawGet sends target exactly as written (like curl --path-as-is) and
// returns the response with its body.
func rawGet(addr, target string, hdr map[string]string) (*http.Response, string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	var b strings.Builder
	host := addr
	if h, ok := hdr["Host"]; ok {
		host = h
	}
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", target, host)
	for k, v := range hdr {
		if k != "Host" {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body), err
}

func get(t *testing.T, addr, target string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	resp, body, err := rawGet(addr, target, hdr)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return resp, body
}

// buy asks for target without a token, pays the L402 challenge with n and
// returns the token.
func buy(t *testing.T, n *memnode.Node, addr, target string) *l402.Token {
	t.Helper()
	resp, body := get(t, addr, target, nil)
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("%s without a token: %s %q, want 402", target, resp.Status, body)
	}
	chs, err := l402.ParseChallenges(resp.Header)
	if err != nil || len(chs) == 0 || chs[0].Scheme != l402.SchemeL402 {
		t.Fatalf("%s: challenges %v %v from %q", target, chs, err, resp.Header.Values("WWW-Authenticate"))
	}
	pay, err := n.PayInvoice(context.Background(), chs[0].Invoice, backend.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := l402.NewToken(chs[0].Macaroon, pay.Preimage)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newNode(t *testing.T) *memnode.Node {
	t.Helper()
	n, err := memnode.New(memnode.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

type frontCase struct {
	name  string
	start func(testing.TB, fronttest.Addrs) *fronttest.Front
}

// startFront starts fc in front of up, asking auth, and forgets what its
// readiness probe left behind.
func startFront(t *testing.T, fc frontCase, up *upstream, auth *authServer) *fronttest.Front {
	t.Helper()
	f := fc.start(t, fronttest.Addrs{Upstream: up.addr(), Auth: auth.addr()})
	up.take()
	up.takeLeaks()
	auth.lastURI()
	return f
}

var fronts = []frontCase{
	{"nginx", func(t testing.TB, a fronttest.Addrs) *fronttest.Front {
		return fronttest.Nginx(t, a, fronttest.NginxOptions{})
	}},
	{"caddy", fronttest.Caddy},
	{"traefik", fronttest.Traefik},
}

// TestForwardAuthFronts runs the 402 flow through each real front server
// configured by its file under deploy/, asking the forward-auth endpoint,
// in front of a Go ServeMux.
func TestForwardAuthFronts(t *testing.T) {
	for _, fc := range fronts {
		t.Run(fc.name, func(t *testing.T) {
			n := newNode(t)
			up := newUpstream(t)
			p, err := proxy.New(proxy.Config{Backend: over(t, n, false), Routes: routes(), ForwardAuthCacheMax: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			auth := newAuthServer(t, p)
			f := startFront(t, fc, up, auth)
			flow(t, f, n, up)
		})
	}
}

func flow(t *testing.T, f *fronttest.Front, n *memnode.Node, up *upstream) {
	// No token: 402 with the L402 challenge passed through to the client.
	resp, body := get(t, f.Addr, "/paid/doc", nil)
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("no token: %s %q, want 402", resp.Status, body)
	}
	if _, err := l402.ParseChallenges(resp.Header); err != nil {
		t.Fatalf("no token: %v in %q", err, resp.Header.Values("WWW-Authenticate"))
	}
	t.Logf("%s passes %d WWW-Authenticate value(s) to the client", f.Name, len(resp.Header.Values("WWW-Authenticate")))
	if v := resp.Header.Get(proxy.HeaderStatus); v != "" {
		t.Errorf("the internal %s header reached the client", proxy.HeaderStatus)
	}
	if s := up.take(); s != nil {
		t.Fatalf("upstream asked without payment: %+v", s)
	}

	// Paid: the upstream answers, told it was paid, without the credential.
	tok := buy(t, n, f.Addr, "/paid/doc")
	resp, body = get(t, f.Addr, "/paid/doc", map[string]string{"Authorization": tok.Authorization()})
	if resp.StatusCode != http.StatusOK || body != paidMark+" /paid/doc" {
		t.Fatalf("paid: %s %q", resp.Status, body)
	}
	if s := up.take(); s == nil || s.paid != "true" || s.tokenID != tok.ID.TokenID.String() || s.auth != "" {
		t.Fatalf("paid: upstream saw %+v, want X-L402-Paid true, token %s, no Authorization", s, tok.ID.TokenID)
	}
	// The legacy LSAT scheme is stripped too.
	lsat := "LSAT " + strings.TrimPrefix(tok.Authorization(), "L402 ")
	resp, body = get(t, f.Addr, "/paid/lsat", map[string]string{"Authorization": lsat})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("LSAT: %s %q", resp.Status, body)
	}
	if s := up.take(); s == nil || s.paid != "true" || s.auth != "" {
		t.Fatalf("LSAT: upstream saw %+v", s)
	}

	// A forged preimage: 402, the upstream is not asked.
	forged := *tok
	forged.Preimage[0] ^= 1
	resp, body = get(t, f.Addr, "/paid/doc", map[string]string{"Authorization": forged.Authorization()})
	if resp.StatusCode != http.StatusPaymentRequired || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("forged token: %s %q", resp.Status, body)
	}
	if s := up.take(); s != nil {
		t.Fatalf("upstream asked with a forged token: %+v", s)
	}

	// Free route: through, marked unpaid; a non-L402 Authorization
	// reaches the upstream.
	resp, body = get(t, f.Addr, "/free/x", map[string]string{"Authorization": "Bearer abc"})
	if resp.StatusCode != http.StatusOK || body != freeMark+" /free/x" {
		t.Fatalf("free: %s %q", resp.Status, body)
	}
	if s := up.take(); s == nil || s.paid != "false" || s.tokenID != "" || s.auth != "Bearer abc" {
		t.Fatalf("free: upstream saw %+v, want X-L402-Paid false, no token id, Authorization Bearer abc", s)
	}
	// A client's own X-L402-* headers, in any spelling an upstream could
	// fold into them, never reach the upstream: the front drops them, or
	// the endpoint refuses the request.
	for _, h := range []string{proxy.HeaderPaid, proxy.HeaderTokenID, "X_L402_Paid", "X-L402_Token-Id", "x-l402-paid"} {
		resp, body = get(t, f.Addr, "/free/x", map[string]string{h: "true"})
		s := up.take()
		switch {
		case resp.StatusCode == http.StatusBadRequest && s == nil:
			t.Logf("%s, client-sent %s: refused (400)", f.Name, h)
		case resp.StatusCode == http.StatusOK && s != nil && s.paid == "false" && s.tokenID == "" && len(s.smuggled) == 0:
			t.Logf("%s, client-sent %s: dropped before the upstream", f.Name, h)
		default:
			t.Errorf("%s, client-sent %s: %s %q, upstream saw %+v", f.Name, h, resp.Status, body, s)
		}
	}

	// Single-use via forward auth: granted once, refused the second time
	// (also behind nginx's auth cache: single-use grants are never cached).
	once := buy(t, n, f.Addr, "/once/x")
	resp, body = get(t, f.Addr, "/once/x", map[string]string{"Authorization": once.Authorization()})
	if resp.StatusCode != http.StatusOK || body != paidMark+" /once/x" {
		t.Fatalf("single-use, first: %s %q", resp.Status, body)
	}
	up.take()
	resp, body = get(t, f.Addr, "/once/x", map[string]string{"Authorization": once.Authorization()})
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("single-use, second: %s %q, want 402", resp.Status, body)
	}
	if s := up.take(); s != nil {
		t.Fatalf("single-use token served twice: upstream saw %+v", s)
	}

	// The l402 client pays and retries through the front on its own.
	c := &http.Client{Timeout: 10 * time.Second, Transport: &l402.Transport{Payer: n, MaxPrice: backend.Sat(5)}}
	cr, err := c.Get(f.URL + "/paid/by-client")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(cr.Body)
	cr.Body.Close()
	if cr.StatusCode != http.StatusOK || string(b) != paidMark+" /paid/by-client" {
		t.Fatalf("l402 client: %s %q", cr.Status, b)
	}

	// Node down: new challenges are 503 with Retry-After, valid tokens
	// still pass.
	n.SetAvailable(false)
	defer n.SetAvailable(true)
	resp, body = get(t, f.Addr, "/paid/other", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("node down: %s %q %v", resp.Status, body, resp.Header)
	}
	resp, body = get(t, f.Addr, "/paid/again", map[string]string{"Authorization": tok.Authorization()})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("valid token with node down: %s %q", resp.Status, body)
	}
	if l := up.takeLeaks(); len(l) > 0 {
		t.Fatalf("selling handlers ran unpaid for %q", l)
	}
}

// TestForwardAuthFrontsHold runs a single-use route over hold invoices
// through each front: the client presents the macaroon alone while its
// payment is held, the endpoint grants it once and settles, the payment
// completes, and the token is refused from then on.
func TestForwardAuthFrontsHold(t *testing.T) {
	for _, fc := range fronts {
		t.Run(fc.name, func(t *testing.T) {
			n := newNode(t)
			up := newUpstream(t)
			p, err := proxy.New(proxy.Config{Backend: over(t, n, true), Routes: routes(), ForwardAuthCacheMax: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			auth := newAuthServer(t, p)
			f := startFront(t, fc, up, auth)

			resp, body := get(t, f.Addr, "/once/held", nil)
			chs, err := l402.ParseChallenges(resp.Header)
			if resp.StatusCode != http.StatusPaymentRequired || err != nil || len(chs) == 0 {
				t.Fatalf("no token: %s %q %v", resp.Status, body, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			type result struct {
				p   *backend.Payment
				err error
			}
			paid := make(chan result, 1)
			go func() {
				p, err := n.PayInvoice(ctx, chs[0].Invoice, backend.PayOptions{Timeout: 30 * time.Second})
				paid <- result{p, err}
			}()
			pending := map[string]string{"Authorization": l402.PendingAuthorization(chs[0].Macaroon)}
			deadline := time.Now().Add(20 * time.Second)
			for {
				resp, body = get(t, f.Addr, "/once/held", pending)
				if resp.StatusCode == http.StatusOK {
					break
				}
				if resp.StatusCode != http.StatusPaymentRequired || time.Now().After(deadline) {
					t.Fatalf("in flight: %s %q", resp.Status, body)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if body != paidMark+" /once/held" {
				t.Fatalf("in flight: body %q", body)
			}
			r := <-paid
			if r.err != nil {
				t.Fatalf("the payment of a served single-use token did not complete: %v", r.err)
			}
			tok, err := l402.NewToken(chs[0].Macaroon, r.p.Preimage)
			if err != nil {
				t.Fatal(err)
			}
			up.take()
			for _, a := range []string{l402.PendingAuthorization(chs[0].Macaroon), tok.Authorization()} {
				resp, body = get(t, f.Addr, "/once/held", map[string]string{"Authorization": a})
				if resp.StatusCode != http.StatusPaymentRequired {
					t.Fatalf("second use: %s %q, want 402", resp.Status, body)
				}
				if s := up.take(); s != nil {
					t.Fatalf("single-use token served twice: upstream saw %+v", s)
				}
			}
			if l := up.takeLeaks(); len(l) > 0 {
				t.Fatalf("selling handlers ran unpaid for %q", l)
			}
		})
	}
}
