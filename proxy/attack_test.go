package proxy_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// The attack table: every way this project knows to get paid content for
// free, or to hurt other clients, tried against the gate in both forms
// (reverse proxy over a real listener, and forward auth as Traefik or
// Caddy ask it), each with the status and reason it must get. Cases that
// need more than one request (replays, aborts, floods) are in the table
// too, as run functions.

// upstreamLog records what the upstream received.
type upstreamLog struct {
	mu    sync.Mutex
	n     int
	last  *http.Request
	block chan struct{} // when set, requests to /once/slow wait for it
	got   chan struct{}
}

func (u *upstreamLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.n++
	u.last = r.Clone(context.Background())
	block, got := u.block, u.got
	u.mu.Unlock()
	switch {
	case strings.HasPrefix(r.URL.Path, "/once/fail"):
		http.Error(w, "upstream broke", http.StatusInternalServerError)
		return
	case strings.HasPrefix(r.URL.Path, "/once/slow") && block != nil:
		got <- struct{}{}
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}
	io.WriteString(w, "upstream "+r.URL.Path)
}

func (u *upstreamLog) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n
}

func (u *upstreamLog) lastReq() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

// payer pays invoices: the memory node or its portable Backend.
type payer interface {
	PayInvoice(ctx context.Context, bolt11 string, opts backend.PayOptions) (*backend.Payment, error)
}

type attackEnv struct {
	b    *backend.Backend
	n    payer
	p    *proxy.Proxy
	addr string // the reverse proxy's listener
	fa   http.Handler
	up   *upstreamLog
}

func newAttackEnv(t *testing.T, b *backend.Backend, n payer, cfg proxy.Config) *attackEnv {
	t.Helper()
	e := &attackEnv{b: b, n: n, up: &upstreamLog{}}
	ups := httptest.NewServer(e.up)
	t.Cleanup(ups.Close)
	u, _ := url.Parse(ups.URL)
	cfg.Backend = b
	cfg.Logger = quietLogger()
	if cfg.Routes == nil {
		cfg.Routes = []proxy.Route{
			{Name: "free", PathPrefix: "/", Mode: proxy.ModeFree},
			{Name: "paid", PathPrefix: "/paid/", Price: backend.Sat(1)},
			{Name: "get", PathPrefix: "/get/", Price: backend.Sat(1), Caveats: []l402.Caveat{l402.MethodCaveat("GET", "HEAD")}},
			{Name: "vhost", Host: "shop.example", PathPrefix: "/", Price: backend.Sat(2)},
			{Name: "opt", PathPrefix: "/opt/", Price: backend.Sat(1), Mode: proxy.ModeOptional},
			{Name: "once", PathPrefix: "/once/", Price: backend.Sat(1), SingleUse: true},
		}
	}
	for i := range cfg.Routes {
		cfg.Routes[i].Upstream = u
	}
	p, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	srv := httptest.NewUnstartedServer(p)
	srv.Config.MaxHeaderBytes = 64 << 10
	srv.Start()
	t.Cleanup(srv.Close)
	e.addr = strings.TrimPrefix(srv.URL, "http://")
	e.fa = p.ForwardAuth()
	return e
}

// raw sends one request with the target and headers exactly as given.
func (e *attackEnv) raw(method, target string, hdr ...string) (int, string) {
	st, _, body := e.rawResp(method, target, hdr...)
	return st, body
}

// rawResp is raw, with the answer's headers.
func (e *attackEnv) rawResp(method, target string, hdr ...string) (int, http.Header, string) {
	c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	host := "api.example"
	for _, h := range hdr {
		if strings.HasPrefix(strings.ToLower(h), "host:") {
			host = ""
		}
	}
	w := bufio.NewWriter(c)
	fmt.Fprintf(w, "%s %s HTTP/1.1\r\n", method, target)
	if host != "" {
		fmt.Fprintf(w, "Host: %s\r\n", host)
	}
	for _, h := range hdr {
		fmt.Fprintf(w, "%s\r\n", h)
	}
	io.WriteString(w, "Connection: close\r\n\r\n")
	w.Flush()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (e *attackEnv) get(target string, hdr ...string) (int, string) {
	return e.raw("GET", target, hdr...)
}

// fwd asks the forward-auth endpoint as Traefik does for the client's
// request method host uri with the client's headers hdr.
func (e *attackEnv) fwd(method, host, uri string, hdr ...string) (int, string) {
	m := map[string]string{}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ":")
		m[k] = strings.TrimSpace(v)
	}
	w := serve(e.fa, traefik(method, host, uri, m))
	return w.Code, w.Body.String()
}

// buy gets a challenge for target (on host), pays it and returns the token.
func (e *attackEnv) buy(t *testing.T, host, target string) *l402.Token {
	t.Helper()
	r := httptest.NewRequest("GET", target, nil)
	r.Host = host
	w := httptest.NewRecorder()
	e.p.ServeHTTP(w, r)
	chs, err := l402.ParseChallenges(w.Header())
	if err != nil {
		t.Fatalf("challenge for %s%s: %d %s", host, target, w.Code, w.Body)
	}
	pay, err := e.n.PayInvoice(context.Background(), chs[0].Invoice, backend.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := l402.NewToken(chs[0].Macaroon, pay.Preimage)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func authz(v string) string { return "Authorization: " + v }

func withMac(t *testing.T, tok *l402.Token, mac *macaroon.Macaroon) string {
	t.Helper()
	nt, err := l402.NewToken(mac, tok.Preimage)
	if err != nil {
		t.Fatal(err)
	}
	return nt.Authorization()
}

func attenuated(t *testing.T, tok *l402.Token, cs ...l402.Caveat) string {
	t.Helper()
	mac, err := l402.Attenuate(tok.Macaroon, cs...)
	if err != nil {
		t.Fatal(err)
	}
	return withMac(t, tok, mac)
}

type attackCase struct {
	name    string
	request string // what the attacker sends, for the report
	status  int
	reason  string // must appear in the body
	// reached: the upstream must have received the request (true) or
	// must not have (false, checked for every refusal).
	run func(t *testing.T, e *attackEnv) (int, string)
}

// TestAttacks runs the attack table.
func TestAttacks(t *testing.T) {
	n := newNode(t)
	e := newAttackEnv(t, n, n, proxy.Config{ChallengesPerMinute: -1, MaxPendingPerClient: -1})
	paid := e.buy(t, "api.example", "/paid/x")
	other := e.buy(t, "api.example", "/paid/y")
	get := e.buy(t, "api.example", "/get/x")
	shop := e.buy(t, "shop.example", "/x")

	forgedPre := *paid
	forgedPre.Preimage[0] ^= 1
	foreignPre := *paid
	foreignPre.Preimage = other.Preimage
	zeroPre := *paid
	zeroPre.Preimage = backend.Preimage{}

	badSig := func(t *testing.T) string {
		b, _ := paid.Macaroon.MarshalBinary()
		b[len(b)-1] ^= 1
		var m macaroon.Macaroon
		if err := m.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		return withMac(t, paid, &m)
	}
	unknownID := func(t *testing.T) string {
		id, _ := l402.NewIdentifier(paid.Preimage.Hash())
		key := make([]byte, 32)
		rand.Read(key)
		m, err := macaroon.New(key, id.Encode(), "l402kit", macaroon.V2)
		if err != nil {
			t.Fatal(err)
		}
		m.AddFirstPartyCaveat([]byte("services=paid:0"))
		return withMac(t, paid, m)
	}
	stripped := func(t *testing.T) string {
		// Same identifier, caveats dropped: needs the root key to sign.
		key := make([]byte, 32)
		rand.Read(key)
		m, err := macaroon.New(key, paid.Macaroon.Id(), "l402kit", macaroon.V2)
		if err != nil {
			t.Fatal(err)
		}
		return withMac(t, paid, m)
	}
	widened := func(t *testing.T) string {
		// Rewrite the services caveat in place: the signature breaks.
		b, _ := paid.Macaroon.MarshalBinary()
		s := strings.Replace(string(b), "services=paid:0", "services=vhos:0", 1)
		var m macaroon.Macaroon
		if err := m.UnmarshalBinary([]byte(s)); err != nil {
			t.Fatal(err)
		}
		return withMac(t, paid, &m)
	}
	v := func(tok *l402.Token) string { return authz(tok.Authorization()) }
	mac64 := func(tok *l402.Token) string {
		a := tok.Authorization()
		return a[len("L402 "):strings.LastIndexByte(a, ':')]
	}

	type rc = attackCase
	simple := func(name, request string, status int, reason string, f func(e *attackEnv) (int, string)) rc {
		return rc{name: name, request: request, status: status, reason: reason, run: func(_ *testing.T, e *attackEnv) (int, string) { return f(e) }}
	}
	cases := []rc{
		// Tokens.
		simple("no_token", "GET /paid/x", 402, "payment required", func(e *attackEnv) (int, string) { return e.get("/paid/x") }),
		simple("valid_token", "GET /paid/x, Authorization: L402 <valid>", 200, "upstream /paid/x", func(e *attackEnv) (int, string) { return e.get("/paid/x", v(paid)) }),
		simple("forged_preimage", "valid macaroon, preimage with one bit flipped", 402, "token refused (wrong_preimage)", func(e *attackEnv) (int, string) { return e.get("/paid/x", v(&forgedPre)) }),
		simple("foreign_preimage", "valid macaroon, preimage of another paid invoice", 402, "token refused (wrong_preimage)", func(e *attackEnv) (int, string) { return e.get("/paid/x", v(&foreignPre)) }),
		simple("zero_preimage", "valid macaroon, preimage 00…00", 402, "token refused (wrong_preimage)", func(e *attackEnv) (int, string) { return e.get("/paid/x", v(&zeroPre)) }),
		{name: "forged_signature", request: "macaroon with its signature altered", status: 402, reason: "token refused (bad_signature)", run: func(t *testing.T, e *attackEnv) (int, string) { return e.get("/paid/x", authz(badSig(t))) }},
		{name: "unknown_token_id", request: "macaroon minted with a made-up key and token id (every id has a derived key: its signature fails)", status: 402, reason: "token refused (bad_signature)", run: func(t *testing.T, e *attackEnv) (int, string) { return e.get("/paid/x", authz(unknownID(t))) }},
		{name: "stripped_caveats", request: "the token's identifier re-signed without caveats", status: 402, reason: "token refused (bad_signature)", run: func(t *testing.T, e *attackEnv) (int, string) { return e.get("/paid/x", authz(stripped(t))) }},
		{name: "widened_caveat", request: "services caveat rewritten in the macaroon bytes", status: 402, reason: "token refused (bad_signature)", run: func(t *testing.T, e *attackEnv) (int, string) { return e.get("/paid/x", authz(widened(t))) }},
		simple("swapped_route", "token of route paid on route get", 402, "token refused (caveat)", func(e *attackEnv) (int, string) { return e.get("/get/x", v(paid)) }),
		simple("wrong_host", "token of route paid with Host: shop.example", 402, "token refused (caveat)", func(e *attackEnv) (int, string) { return e.get("/paid/x", v(paid), "Host: shop.example") }),
		simple("swapped_host", "token of host route shop.example on api.example/paid/", 402, "token refused (caveat)", func(e *attackEnv) (int, string) { return e.get("/paid/x", v(shop)) }),
		simple("wrong_method", "POST /get/x with a GET,HEAD token", 402, "token refused (caveat)", func(e *attackEnv) (int, string) { return e.raw("POST", "/get/x", v(get), "Content-Length: 0") }),
		{name: "narrowed_method", request: "token attenuated by its holder to method=POST, used with GET", status: 402, reason: "token refused (caveat)", run: func(t *testing.T, e *attackEnv) (int, string) {
			return e.get("/paid/x", authz(attenuated(t, paid, l402.MethodCaveat("POST"))))
		}},
		{name: "expired", request: "token with paid_valid_until in the past", status: 402, reason: "token refused (expired)", run: func(t *testing.T, e *attackEnv) (int, string) {
			return e.get("/paid/x", authz(attenuated(t, paid, l402.ValidUntilCaveat("paid", time.Now().Add(-time.Minute)))))
		}},
		{name: "wrong_client_ip", request: "token bound to client_ip=192.0.2.1, sent from 127.0.0.1", status: 402, reason: "token refused (caveat)", run: func(t *testing.T, e *attackEnv) (int, string) {
			return e.get("/paid/x", authz(attenuated(t, paid, l402.ClientIPCaveat(mustAddr("192.0.2.1")))))
		}},
		{name: "path_prefix_sibling", request: "token with path_prefix=/paid/x used for /paid/xy", status: 402, reason: "token refused (caveat)", run: func(t *testing.T, e *attackEnv) (int, string) {
			return e.get("/paid/xy", authz(attenuated(t, paid, l402.PathPrefixCaveat("/paid/x"))))
		}},
		simple("malformed_base64", "Authorization: L402 !!!:<64 hex>", 402, "token refused (malformed)", func(e *attackEnv) (int, string) {
			return e.get("/paid/x", authz("L402 !!!:"+strings.Repeat("0", 64)))
		}),
		simple("oversize_authorization", "Authorization: L402 <20 KiB>:<64 hex>", 402, "token refused (malformed)", func(e *attackEnv) (int, string) {
			return e.get("/paid/x", authz("L402 "+strings.Repeat("A", 20<<10)+":"+strings.Repeat("0", 64)))
		}),
		simple("oversize_inflight_form", "Authorization: L402 <20 KiB>: (in-flight form)", 402, "token refused (malformed)", func(e *attackEnv) (int, string) {
			return e.get("/once/x", authz("L402 "+strings.Repeat("A", 20<<10)+":"))
		}),
		simple("inflight_form_on_multi_use_route", "Authorization: L402 <macaroon>: on a route that is not single-use", 402, "token refused (no_preimage)", func(e *attackEnv) (int, string) {
			return e.get("/paid/x", authz("L402 "+mac64(paid)+":"))
		}),
		simple("two_credentials", "two Authorization values with different L402 tokens", 400, proxy.ReasonCredentials, func(e *attackEnv) (int, string) { return e.get("/paid/x", v(paid), v(other)) }),
		simple("credential_in_other_scheme", "Authorization: Basic eDp5, L402 <valid>", 400, proxy.ReasonCredentials, func(e *attackEnv) (int, string) {
			return e.get("/paid/x", authz("Basic eDp5, "+paid.Authorization()))
		}),
		simple("same_credential_twice", "the token under L402 and under LSAT", 200, "upstream /paid/x", func(e *attackEnv) (int, string) {
			return e.get("/paid/x", v(paid), authz("LSAT "+strings.TrimPrefix(paid.Authorization(), "L402 ")))
		}),
		{name: "credential_not_forwarded", request: "free route with Authorization: L402 <valid> and Authorization: Basic eDp5", status: 200, reason: "upstream /free/x", run: func(t *testing.T, e *attackEnv) (int, string) {
			st, body := e.get("/free/x", v(paid), authz("Basic eDp5"))
			if got := e.up.lastReq().Header.Values("Authorization"); len(got) != 1 || got[0] != "Basic eDp5" {
				t.Errorf("upstream got Authorization %q, want only the Basic value", got)
			}
			return st, body
		}},
		{name: "credential_not_forwarded_paid", request: "lsat scheme in lower case on a paid route", status: 200, reason: "upstream /paid/x", run: func(t *testing.T, e *attackEnv) (int, string) {
			st, body := e.get("/paid/x", authz("lsat "+strings.TrimPrefix(paid.Authorization(), "L402 ")))
			if got := e.up.lastReq().Header.Values("Authorization"); len(got) != 0 {
				t.Errorf("upstream got Authorization %q", got)
			}
			return st, body
		}},
		// Header smuggling.
		{name: "forged_paid_header", request: "free route, X-L402-Paid: true", status: 200, reason: "upstream /free/x", run: func(t *testing.T, e *attackEnv) (int, string) {
			st, body := e.get("/free/x", "X-L402-Paid: true", "X-L402-Token-Id: ab")
			if h := e.up.lastReq().Header; h.Get("X-L402-Paid") != "false" || h.Get("X-L402-Token-Id") != "" {
				t.Errorf("upstream saw %v", h)
			}
			return st, body
		}},
		{name: "folded_paid_header", request: "free route, X_L402_Paid: true and x-l402.token-id: ab (CGI/PHP fold these)", status: 200, reason: "upstream /free/x", run: func(t *testing.T, e *attackEnv) (int, string) {
			st, body := e.get("/free/x", "X_L402_Paid: true", "x-l402.token-id: ab")
			for k := range e.up.lastReq().Header {
				if k != "X-L402-Paid" && strings.Contains(strings.ToLower(k), "l402") {
					t.Errorf("upstream saw %s", k)
				}
			}
			return st, body
		}},
		simple("path_override_header", "GET /free/x, X-Original-URL: /paid/x", 400, proxy.ReasonHeader, func(e *attackEnv) (int, string) { return e.get("/free/x", "X-Original-URL: /paid/x") }),
		simple("rewrite_url_header", "GET /free/x, X-Rewrite-Url: /paid/x", 400, proxy.ReasonHeader, func(e *attackEnv) (int, string) { return e.get("/free/x", "X-Rewrite-Url: /paid/x") }),
		simple("oversize_headers", "GET /free/x with 100 KiB of headers (server bound 64 KiB)", 431, "", func(e *attackEnv) (int, string) {
			return e.get("/free/x", "X-Pad: "+strings.Repeat("a", 100<<10))
		}),
		simple("repeated_host", "two Host headers (Go's server refuses them itself)", 400, "Bad Request", func(e *attackEnv) (int, string) { return e.get("/paid/x", "Host: api.example", "Host: shop.example") }),
		simple("non_ascii_host", "Host: shöp.example (Go's server refuses it itself)", 400, "malformed Host header", func(e *attackEnv) (int, string) { return e.get("/x", "Host: sh\xc3\xb6p.example") }),
		simple("host_case_and_dot", "Host: SHOP.Example. (same route as shop.example)", 402, "payment required", func(e *attackEnv) (int, string) { return e.get("/x", "Host: SHOP.Example.") }),
		{name: "host_port_kept_for_upstream", request: "free route, Host: API.example:8080 (routed as api.example)", status: 200, reason: "upstream /free/x", run: func(t *testing.T, e *attackEnv) (int, string) {
			st, body := e.get("/free/x", "Host: API.example:8080")
			if got := e.up.lastReq().Header.Get("X-Forwarded-Host"); got != "API.example:8080" {
				t.Errorf("upstream X-Forwarded-Host %q", got)
			}
			return st, body
		}},
		simple("host_bad_port", "Host: api.example:99999", 400, proxy.ReasonHost, func(e *attackEnv) (int, string) { return e.get("/x", "Host: api.example:99999") }),
		simple("host_empty_label", "Host: shop..example", 400, proxy.ReasonHost, func(e *attackEnv) (int, string) { return e.get("/x", "Host: shop..example") }),
		{name: "raw_path_forwarded_exactly", request: "GET /free/a%20b%2Bc/@x:y", status: 200, reason: "upstream /free/a b+c/@x:y", run: func(t *testing.T, e *attackEnv) (int, string) {
			st, body := e.get("/free/a%20b%2Bc/@x:y")
			if got := e.up.lastReq().RequestURI; got != "/free/a%20b%2Bc/@x:y" {
				t.Errorf("upstream request target %q", got)
			}
			return st, body
		}},
		// Path confusion, reverse proxy.
		simple("repro_encoded_dots", "GET /free/%2e%2e/paid/secret.txt", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.get("/free/%2e%2e/paid/secret.txt") }),
		simple("encoded_dots_upper_mixed", "GET /free/%2E./paid/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.get("/free/%2E./paid/x") }),
		simple("literal_dots", "GET /free/../paid/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.get("/free/../paid/x") }),
		simple("encoded_slash", "GET /free/..%2fpaid/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.get("/free/..%2fpaid/x") }),
		simple("backslash", "GET /free\\..\\paid\\x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.get("/free\\..\\paid\\x") }),
		simple("encoded_backslash", "GET /free/..%5cpaid/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.get("/free/..%5cpaid/x") }),
		simple("segment_parameter", "GET /free/..;/paid/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.get("/free/..;/paid/x") }),
		simple("double_slash", "GET //paid/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.get("//paid/x") }),
		simple("double_encoding", "GET /free/%252e%252e/paid/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.get("/free/%252e%252e/paid/x") }),
		simple("overlong_utf8_dot", "GET /free/%c0%ae%c0%ae/paid/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.get("/free/%c0%ae%c0%ae/paid/x") }),
		simple("fullwidth_dots", "GET /free/%EF%BC%8E%EF%BC%8E/paid/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.get("/free/%EF%BC%8E%EF%BC%8E/paid/x") }),
		simple("nul_byte", "GET /paid%00/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.get("/paid%00/x") }),
		simple("letter_case", "GET /PAID/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.get("/PAID/x") }),
		simple("trailing_dot_segment", "GET /paid./x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.get("/paid./x") }),
		simple("needless_encoding", "GET /p%61id/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.get("/p%61id/x") }),
		simple("absolute_form_target", "GET http://api.example/free/%2e%2e/paid/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) {
			return e.get("http://api.example/free/%2e%2e/paid/x")
		}),
		// Forward auth.
		simple("fa_repro_encoded_dots", "forward auth, X-Forwarded-Uri: /paid/%2e%2e/free/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.fwd("GET", "api.example", "/paid/%2e%2e/free/x") }),
		simple("fa_literal_dots", "forward auth, X-Forwarded-Uri: /free/../paid/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.fwd("GET", "api.example", "/free/../paid/x") }),
		simple("fa_encoded_slash", "forward auth, X-Forwarded-Uri: /free/..%2Fpaid/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.fwd("GET", "api.example", "/free/..%2Fpaid/x") }),
		simple("fa_segment_parameter", "forward auth, X-Forwarded-Uri: /paid;/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.fwd("GET", "api.example", "/paid;/x") }),
		simple("fa_letter_case", "forward auth, X-Forwarded-Uri: /Paid/x", 400, proxy.ReasonPath, func(e *attackEnv) (int, string) { return e.fwd("GET", "api.example", "/Paid/x") }),
		simple("fa_valid", "forward auth, valid token", 200, "", func(e *attackEnv) (int, string) { return e.fwd("GET", "api.example", "/paid/x", v(paid)) }),
		simple("fa_forged_preimage", "forward auth, forged preimage", 402, "token refused (wrong_preimage)", func(e *attackEnv) (int, string) {
			return e.fwd("GET", "api.example", "/paid/x", v(&forgedPre))
		}),
		simple("fa_wrong_host", "forward auth, token of route paid, X-Forwarded-Host: shop.example", 402, "token refused (caveat)", func(e *attackEnv) (int, string) {
			return e.fwd("GET", "shop.example", "/paid/x", v(paid))
		}),
		simple("fa_wrong_method", "forward auth, X-Forwarded-Method: DELETE with a GET,HEAD token", 402, "token refused (caveat)", func(e *attackEnv) (int, string) {
			return e.fwd("DELETE", "api.example", "/get/x", v(get))
		}),
		{name: "fa_missing_uri", request: "forward auth without X-Forwarded-Uri", status: 400, reason: proxy.ReasonForwardAuth, run: func(t *testing.T, e *attackEnv) (int, string) {
			r := traefik("GET", "api.example", "/paid/x", nil)
			r.Header.Del(proxy.HeaderForwardedURI)
			w := serve(e.fa, r)
			return w.Code, w.Body.String()
		}},
		{name: "fa_repeated_uri", request: "forward auth, X-Forwarded-Uri twice (/paid/x, /free/x)", status: 400, reason: proxy.ReasonForwardAuth, run: func(t *testing.T, e *attackEnv) (int, string) {
			r := traefik("GET", "api.example", "/paid/x", nil)
			r.Header.Add(proxy.HeaderForwardedURI, "/free/x")
			w := serve(e.fa, r)
			return w.Code, w.Body.String()
		}},
		simple("fa_host_list", "forward auth, X-Forwarded-Host: api.example, shop.example", 400, proxy.ReasonForwardAuth, func(e *attackEnv) (int, string) {
			return e.fwd("GET", "api.example, shop.example", "/x")
		}),
		simple("fa_underscore_uri", "forward auth, client adds X_Forwarded_Uri: /free/x", 400, proxy.ReasonForwardAuth, func(e *attackEnv) (int, string) {
			return e.fwd("GET", "api.example", "/paid/x", "X_Forwarded_Uri: /free/x")
		}),
		simple("fa_client_paid_header", "forward auth, client sends X-L402-Paid: true", 400, proxy.ReasonHeader, func(e *attackEnv) (int, string) {
			return e.fwd("GET", "api.example", "/free/x", "X-L402-Paid: true")
		}),
		simple("fa_client_folded_header", "forward auth, client sends X_L402_Token_Id: ab", 400, proxy.ReasonHeader, func(e *attackEnv) (int, string) {
			return e.fwd("GET", "api.example", "/free/x", "X_L402_Token_Id: ab")
		}),
		// Replays and single use.
		simple("multi_use_replay", "a multi-use token a second time", 200, "upstream /paid/x", func(e *attackEnv) (int, string) { return e.get("/paid/x", v(paid)) }),
		{name: "replay_200_concurrent_hold", request: "200 concurrent requests with one held single-use token (in-flight form)", status: 200, reason: "exactly one of 200", run: replayHold},
		{name: "replay_200_concurrent_spent", request: "200 concurrent requests with one single-use token on a backend without hold invoices", status: 200, reason: "exactly one of 200", run: replaySpent},
		{name: "single_use_client_abort", request: "single-use request; the client hangs up while the upstream works", status: 200, reason: "settled", run: clientAbort},
		{name: "single_use_upstream_5xx", request: "single-use request; the upstream answers 500", status: 500, reason: "canceled", run: upstreamFails},
		{name: "single_use_handler_panic", request: "single-use request through the middleware; the next handler panics", status: 500, reason: "canceled", run: handlerPanics},
		{name: "challenge_flood", request: "one address asks for 50 single-use challenges (20/min, 16 unpaid per client); another address then asks once", status: 429, reason: "other client still served", run: challengeFlood},
		{name: "challenge_flood_many_addresses", request: "40 addresses ask for 4 single-use challenges each (bound 8 pending holds); a paid client's held token and a new client", status: 402, reason: "evicted", run: challengeFloodMany},
	}

	if len(cases) < 40 {
		t.Fatalf("only %d attack cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.up.count()
			status, body := c.run(t, e)
			if status != c.status || !strings.Contains(body, c.reason) {
				t.Fatalf("%s: got %d %q, want %d with %q", c.request, status, truncateBody(body), c.status, c.reason)
			}
			if status >= 400 && status != 500 && e.up.count() != before {
				t.Fatalf("%s: refused with %d, yet the upstream was asked", c.request, status)
			}
			t.Logf("PASS %s: %s -> %d %s", c.name, c.request, status, c.reason)
		})
	}
}

func truncateBody(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// challengeOnce gets a single-use challenge from the middleware form.
func challengeOnce(t *testing.T, h http.Handler, path string) l402.Challenge {
	t.Helper()
	w := serve(h, httptest.NewRequest("GET", path, nil))
	chs, err := l402.ParseChallenges(w.Header())
	if err != nil {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	return chs[0]
}

// payInBackground pays a (hold) invoice and returns the outcome channel.
func payInBackground(n payer, inv string) <-chan error {
	out := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err := n.PayInvoice(ctx, inv, backend.PayOptions{})
		out <- err
	}()
	return out
}

// waitHeld polls until the invoice is held.
func waitHeld(t *testing.T, n *backend.Backend, mac *macaroon.Macaroon) backend.PaymentHash {
	t.Helper()
	id, _ := l402.DecodeIdentifier(mac.Id())
	deadline := time.Now().Add(30 * time.Second)
	for {
		inv, err := n.LookupInvoice(context.Background(), id.PaymentHash)
		if err == nil && inv.State == backend.StateHeld {
			return id.PaymentHash
		}
		if time.Now().After(deadline) {
			t.Fatalf("invoice not held: %+v %v", inv, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func invoiceState(t *testing.T, n *backend.Backend, hash backend.PaymentHash) backend.State {
	t.Helper()
	inv, err := n.LookupInvoice(context.Background(), hash)
	if err != nil {
		t.Fatal(err)
	}
	return inv.State
}

// concurrently sends k copies of a request and counts the 200s.
func concurrently(e *attackEnv, k int, target string, hdr ...string) (ok int, statuses map[int]int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses = map[int]int{}
	start := make(chan struct{})
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			st, _ := e.get(target, hdr...)
			mu.Lock()
			statuses[st]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return statuses[200], statuses
}

func replayHold(t *testing.T, e *attackEnv) (int, string) {
	ch := challengeOnce(t, e.p, "/once/x")
	paid := payInBackground(e.n, ch.Invoice)
	hash := waitHeld(t, e.b, ch.Macaroon)
	before := e.up.count()
	ok, st := concurrently(e, 200, "/once/x", authz(l402.PendingAuthorization(ch.Macaroon)))
	if err := <-paid; err != nil {
		t.Fatalf("payment: %v", err)
	}
	if s := invoiceState(t, e.b, hash); s != backend.StateSettled || e.up.count()-before != 1 {
		t.Fatalf("invoice %v, upstream asked %d times", s, e.up.count()-before)
	}
	if ok != 1 {
		return 0, fmt.Sprintf("%d successes: %v", ok, st)
	}
	return 200, "exactly one of 200"
}

// noHold is a driver that hides the memory node's hold invoices, so the
// proxy keeps a spent store instead.
type noHold struct{ n *memnode.Node }

func (d noHold) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	return d.n.CreateInvoice(ctx, req)
}

func (d noHold) LookupInvoice(ctx context.Context, h backend.PaymentHash) (*backend.Invoice, error) {
	return d.n.LookupInvoice(ctx, h)
}

func (d noHold) Close() error { return d.n.Close() }

func replaySpent(t *testing.T, _ *attackEnv) (int, string) {
	n, err := memnode.New(memnode.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b := backend.New(noHold{n}, backend.Options{})
	t.Cleanup(func() { b.Close() })
	e := newAttackEnv(t, b, n, proxy.Config{ChallengesPerMinute: -1})
	tok := e.buy(t, "api.example", "/once/x")
	before := e.up.count()
	ok, st := concurrently(e, 200, "/once/x", authz(tok.Authorization()))
	if e.up.count()-before != 1 {
		t.Fatalf("upstream asked %d times", e.up.count()-before)
	}
	if ok != 1 {
		return 0, fmt.Sprintf("%d successes: %v", ok, st)
	}
	return 200, "exactly one of 200"
}

func clientAbort(t *testing.T, e *attackEnv) (int, string) {
	e.up.mu.Lock()
	e.up.block, e.up.got = make(chan struct{}), make(chan struct{}, 1)
	e.up.mu.Unlock()
	defer func() {
		e.up.mu.Lock()
		e.up.block, e.up.got = nil, nil
		e.up.mu.Unlock()
	}()
	ch := challengeOnce(t, e.p, "/once/slow")
	paid := payInBackground(e.n, ch.Invoice)
	hash := waitHeld(t, e.b, ch.Macaroon)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /once/slow HTTP/1.1\r\nHost: api.example\r\nAuthorization: %s\r\n\r\n", l402.PendingAuthorization(ch.Macaroon))
	<-e.up.got
	c.Close() // the client goes away while the upstream works
	if err := <-paid; err != nil {
		return 0, "payment returned to the client: " + err.Error()
	}
	if s := invoiceState(t, e.b, hash); s != backend.StateSettled {
		return 0, fmt.Sprintf("invoice %v", s)
	}
	// The token is used: a retry is refused.
	if st, body := e.get("/once/slow", authz(l402.PendingAuthorization(ch.Macaroon))); st != 402 || !strings.Contains(body, "(used)") {
		return 0, fmt.Sprintf("retry after abort: %d %s", st, body)
	}
	return 200, "settled"
}

func upstreamFails(t *testing.T, e *attackEnv) (int, string) {
	ch := challengeOnce(t, e.p, "/once/fail")
	paid := payInBackground(e.n, ch.Invoice)
	hash := waitHeld(t, e.b, ch.Macaroon)
	st, _ := e.get("/once/fail", authz(l402.PendingAuthorization(ch.Macaroon)))
	if err := <-paid; err == nil {
		return 0, "the payment completed although the upstream failed"
	}
	if s := invoiceState(t, e.b, hash); s != backend.StateCanceled {
		return 0, fmt.Sprintf("invoice %v", s)
	}
	return st, "canceled"
}

func handlerPanics(t *testing.T, e *attackEnv) (int, string) {
	srv := httptest.NewUnstartedServer(e.p.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("handler bug")
	})))
	srv.Config.ErrorLog = quietStdLogger()
	srv.Start()
	defer srv.Close()
	ch := challengeOnce(t, e.p, "/once/panic")
	paid := payInBackground(e.n, ch.Invoice)
	hash := waitHeld(t, e.b, ch.Macaroon)
	req, _ := http.NewRequest("GET", srv.URL+"/once/panic", nil)
	req.Header.Set("Authorization", l402.PendingAuthorization(ch.Macaroon))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close() // the server drops the connection on a panic
	}
	if err := <-paid; err == nil {
		return 0, "the payment completed although the handler panicked"
	}
	if s := invoiceState(t, e.b, hash); s != backend.StateCanceled {
		return 0, fmt.Sprintf("invoice %v", s)
	}
	return 500, "canceled"
}

func challengeFlood(t *testing.T, _ *attackEnv) (int, string) {
	b := newNode(t)
	e := newAttackEnv(t, b, b, proxy.Config{ChallengesPerMinute: 20, MaxPendingPerClient: 16})
	h := e.p.Middleware(e.up)
	ask := func(ip string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/once/x", nil)
		r.RemoteAddr = ip + ":1234"
		return serve(h, r)
	}
	last := 0
	counts := map[int]int{}
	for range 50 {
		last = ask("198.51.100.7").Code
		counts[last]++
	}
	if counts[402] != 16 || counts[429] != 34 {
		return 0, fmt.Sprintf("flood statuses %v", counts)
	}
	// Another address in the same IPv6 /64 counts as the same client.
	for range 16 {
		ask("2001:db8::1")
	}
	if w := ask("2001:db8::2"); w.Code != 429 || !strings.Contains(w.Body.String(), "pending_quota") {
		return 0, fmt.Sprintf("same /64: %d %s", w.Code, w.Body)
	}
	if w := ask("198.51.100.8"); w.Code != 402 {
		return 0, fmt.Sprintf("another client got %d", w.Code)
	}
	return last, "other client still served"
}

// challengeFloodMany fills the pending-hold bound from many addresses: the
// oldest unpaid invoices of the biggest clients are canceled to make room,
// a held (paid) one never is, and a new client still gets a challenge.
func challengeFloodMany(t *testing.T, _ *attackEnv) (int, string) {
	b := newNode(t)
	e := newAttackEnv(t, b, b, proxy.Config{ChallengesPerMinute: -1, MaxPendingHolds: 8, MaxPendingPerClient: 4})
	h := e.p.Middleware(e.up)
	ask := func(ip string, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/once/x", nil)
		r.RemoteAddr = ip + ":1234"
		for _, x := range hdr {
			k, v, _ := strings.Cut(x, ": ")
			r.Header.Set(k, v)
		}
		return serve(h, r)
	}
	// A client pays first; its payment is held until it uses the token.
	w := ask("203.0.113.1")
	chs, err := l402.ParseChallenges(w.Header())
	if err != nil {
		t.Fatal(err)
	}
	paid := payInBackground(e.n, chs[0].Invoice)
	waitHeld(t, e.b, chs[0].Macaroon)
	var first backend.PaymentHash
	for i := range 40 {
		for j := range 4 {
			w := ask(fmt.Sprintf("198.51.100.%d", i+10))
			if w.Code != 402 {
				return 0, fmt.Sprintf("flooder %d request %d: %d %s", i, j, w.Code, w.Body)
			}
			if i == 0 && j == 0 {
				c, _ := l402.ParseChallenges(w.Header())
				id, _ := l402.DecodeIdentifier(c[0].Macaroon.Id())
				first = id.PaymentHash
			}
		}
	}
	if s := invoiceState(t, e.b, first); s != backend.StateCanceled {
		return 0, fmt.Sprintf("the first flooder's oldest invoice is %v, want canceled", s)
	}
	if w := ask("192.0.2.77"); w.Code != 402 {
		return 0, fmt.Sprintf("new client after the flood: %d %s", w.Code, w.Body)
	}
	// The held payment survived the flood: its token is served.
	if w := ask("203.0.113.1", "Authorization: "+l402.PendingAuthorization(chs[0].Macaroon)); w.Code != 200 {
		return 0, fmt.Sprintf("held token after the flood: %d %s", w.Code, w.Body)
	}
	if err := <-paid; err != nil {
		return 0, "held payment: " + err.Error()
	}
	return 402, "evicted"
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func quietStdLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
