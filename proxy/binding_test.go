package proxy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// bindEnv is a gate whose routes bind their tokens, over a real listener
// (TLS with client certificates when tlsServer), in front of upstreamLog.
type bindEnv struct {
	p   *proxy.Proxy
	n   *backend.Backend
	up  *upstreamLog
	url string
	srv *httptest.Server
}

func newBindEnv(t *testing.T, cfg proxy.Config, tlsServer bool) *bindEnv {
	t.Helper()
	e := &bindEnv{n: newNode(t), up: &upstreamLog{}}
	ups := httptest.NewServer(e.up)
	t.Cleanup(ups.Close)
	u, _ := url.Parse(ups.URL)
	both := []string{proxy.SchemeL402, proxy.SchemePayment}
	cfg.Backend, cfg.Logger, cfg.ChallengesPerMinute = e.n, quietLogger(), -1
	cfg.Routes = []proxy.Route{
		{Name: "origin", PathPrefix: "/origin/", Price: backend.Sat(1), BindOrigin: true, Schemes: both, Upstream: u},
		{Name: "cert", PathPrefix: "/cert/", Price: backend.Sat(1), BindClientCert: true, Schemes: both, Upstream: u},
	}
	p, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	e.srv = httptest.NewUnstartedServer(p)
	if tlsServer {
		e.srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
		e.srv.StartTLS()
	} else {
		e.srv.Start()
	}
	t.Cleanup(e.srv.Close)
	e.url = e.srv.URL
	return e
}

// client is an HTTP client of the gate presenting cert (none when nil).
func (e *bindEnv) client(cert *tls.Certificate) *http.Client {
	c := e.srv.Client()
	if cert != nil {
		tr := c.Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		c = &http.Client{Transport: tr}
	}
	return c
}

// send asks path with host as the Host header and the Authorization auth
// (none when empty); it returns the status, headers and body.
func (e *bindEnv) send(t *testing.T, c *http.Client, host, path, auth string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.url+path, nil)
	if host != "" {
		req.Host = host
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// buy pays the challenge the gate answers path with and returns the L402
// token's and the Payment charge's Authorization values.
func (e *bindEnv) buy(t *testing.T, c *http.Client, host, path string, hdr ...string) (l402Auth, chargeAuth string, mac []string) {
	t.Helper()
	st, h, body := e.send(t, c, host, path, "", hdr...)
	if st != http.StatusPaymentRequired {
		t.Fatalf("challenge for %s%s: %d %s", host, path, st, body)
	}
	chs, err := l402.ParseChallenges(h)
	if err != nil {
		t.Fatal(err)
	}
	pay, err := e.n.PayInvoice(context.Background(), chs[0].Invoice, backend.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := l402.NewToken(chs[0].Macaroon, pay.Preimage)
	for _, cv := range chs[0].Macaroon.Caveats() {
		mac = append(mac, string(cv.Id))
	}
	pcs, err := l402.ParsePaymentChallenges(h)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := pcs[0].ChargeRequest()
	cp, err := e.n.PayInvoice(context.Background(), req.MethodDetails.Invoice, backend.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	chargeAuth, err = l402.NewChargeCredential(pcs[0], cp.Preimage).Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return tok.Authorization(), chargeAuth, mac
}

// expect checks one answer: its status, a body part, and that a refusal
// never reached the upstream.
func (e *bindEnv) expect(t *testing.T, what string, status int, part string, f func() (int, http.Header, string)) {
	t.Helper()
	before := e.up.count()
	st, _, body := f()
	if st != status || !strings.Contains(body, part) {
		t.Fatalf("%s: %d %s, want %d with %q", what, st, truncateBody(body), status, part)
	}
	if asked := e.up.count() - before; st != 200 && asked != 0 || st == 200 && asked != 1 {
		t.Fatalf("%s: %d, upstream asked %d times", what, st, asked)
	}
}

func TestBindOrigin(t *testing.T) {
	e := newBindEnv(t, proxy.Config{}, false)
	c := e.client(nil)
	tok, charge, mac := e.buy(t, c, "API.example:8080", "/origin/x")
	if !containsString(mac, "origin=http://api.example:8080") {
		t.Fatalf("minted caveats %q, want origin=http://api.example:8080", mac)
	}
	e.expect(t, "token at its origin (Host in another case)", 200, "upstream /origin/x", func() (int, http.Header, string) { return e.send(t, c, "api.EXAMPLE:8080", "/origin/x", tok) })
	e.expect(t, "token at the same host without the port", 402, "token refused (caveat)", func() (int, http.Header, string) { return e.send(t, c, "api.example", "/origin/x", tok) })
	e.expect(t, "token at another host", 402, "token refused (caveat)", func() (int, http.Header, string) { return e.send(t, c, "shop.example:8080", "/origin/x", tok) })
	// The gate's peer here is loopback, a trusted forwarder by default:
	// its X-Forwarded-Proto is believed.
	e.expect(t, "token at https of the same host", 402, "token refused (caveat)", func() (int, http.Header, string) {
		return e.send(t, c, "api.example:8080", "/origin/x", tok, "X-Forwarded-Proto: https")
	})
	e.expect(t, "charge at another host", 402, l402.ProblemInvalidChallenge, func() (int, http.Header, string) { return e.send(t, c, "shop.example:8080", "/origin/x", charge) })
	e.expect(t, "charge at its origin (the refusal did not spend it)", 200, "upstream /origin/x", func() (int, http.Header, string) { return e.send(t, c, "api.example:8080", "/origin/x", charge) })

	// Behind a front that says https, the origin is https with the
	// default port dropped.
	tok2, _, mac2 := e.buy(t, c, "api.example:443", "/origin/x", "X-Forwarded-Proto: https")
	if !containsString(mac2, "origin=https://api.example") {
		t.Fatalf("minted caveats %q, want origin=https://api.example", mac2)
	}
	e.expect(t, "https token with the front's header", 200, "upstream", func() (int, http.Header, string) {
		return e.send(t, c, "api.example", "/origin/x", tok2, "X-Forwarded-Proto: https")
	})
	e.expect(t, "https token without it", 402, "token refused (caveat)", func() (int, http.Header, string) { return e.send(t, c, "api.example", "/origin/x", tok2) })
}

// TestBindOriginUntrustedProto: a peer that is not a trusted forwarder
// cannot choose the scheme of its origin.
func TestBindOriginUntrustedProto(t *testing.T) {
	e := newBindEnv(t, proxy.Config{TrustedForwarders: []netip.Prefix{}}, false)
	c := e.client(nil)
	_, _, mac := e.buy(t, c, "api.example", "/origin/x", "X-Forwarded-Proto: https")
	if !containsString(mac, "origin=http://api.example") {
		t.Fatalf("minted caveats %q, want the peer's own http origin", mac)
	}
}

func TestBindPublicOrigin(t *testing.T) {
	if _, err := proxy.New(proxy.Config{Backend: newNode(t), PublicOrigin: "https://api.example/path"}); err == nil {
		t.Fatal("a public origin with a path was accepted")
	}
	e := newBindEnv(t, proxy.Config{PublicOrigin: "HTTPS://API.example:443"}, false)
	c := e.client(nil)
	tok, _, mac := e.buy(t, c, "10.0.0.7:8402", "/origin/x")
	if !containsString(mac, "origin=https://api.example") {
		t.Fatalf("minted caveats %q, want the public origin", mac)
	}
	// Whatever the front sends as Host, the origin is the public one; a
	// token bound elsewhere is refused.
	e.expect(t, "token at the public origin", 200, "upstream", func() (int, http.Header, string) { return e.send(t, c, "backend.internal", "/origin/x", tok) })
	// A token its holder bound to another origin is refused here.
	ptok, _ := l402.ParseAuthorization(tok)
	att, err := l402.Attenuate(ptok.Macaroon, l402.OriginCaveat("https://shop.example"))
	if err != nil {
		t.Fatal(err)
	}
	atok, _ := l402.NewToken(att, ptok.Preimage)
	e.expect(t, "token also bound to another origin", 402, "token refused (caveat)", func() (int, http.Header, string) {
		return e.send(t, c, "api.example", "/origin/x", atok.Authorization())
	})
}

func TestBindOriginForwardAuth(t *testing.T) {
	e := newBindEnv(t, proxy.Config{ForwardAuthCacheMax: time.Minute}, false)
	fa := e.p.ForwardAuth()
	ask := func(host, auth string) *httptest.ResponseRecorder {
		hdr := map[string]string{}
		if auth != "" {
			hdr["Authorization"] = auth
		}
		return serve(fa, traefik("GET", host, "/origin/x", hdr))
	}
	w := ask("api.example:8443", "")
	chs, err := l402.ParseChallenges(w.Header())
	if err != nil {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var mac []string
	for _, cv := range chs[0].Macaroon.Caveats() {
		mac = append(mac, string(cv.Id))
	}
	if !containsString(mac, "origin=https://api.example:8443") {
		t.Fatalf("forward auth minted %q, want the front's origin https://api.example:8443", mac)
	}
	pay, err := e.n.PayInvoice(context.Background(), chs[0].Invoice, backend.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := l402.NewToken(chs[0].Macaroon, pay.Preimage)
	if w := ask("api.example:8443", tok.Authorization()); w.Code != 200 || w.Header().Get(proxy.HeaderAccelExpires) != "0" {
		// A front's cache key does not hold the origin's port or scheme:
		// a bound token's grant is never cacheable.
		t.Fatalf("at its origin: %d %s, X-Accel-Expires %q", w.Code, w.Body, w.Header().Get(proxy.HeaderAccelExpires))
	}
	if w := ask("shop.example:8443", tok.Authorization()); w.Code != 402 || !strings.Contains(w.Body.String(), "token refused (caveat)") {
		t.Fatalf("at another origin: %d %s", w.Code, w.Body)
	}
}

// testCert makes a self-signed client certificate.
func testCert(t *testing.T, cn string) (tls.Certificate, [32]byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, sha256.Sum256(der)
}

// TestBindClientCert runs the gate with TLS ending at it, on loopback:
// tokens and charges bought with certificate A are refused with B and
// without a certificate, and a challenge without one is refused.
func TestBindClientCert(t *testing.T) {
	e := newBindEnv(t, proxy.Config{}, true)
	certA, sumA := testCert(t, "a")
	certB, _ := testCert(t, "b")
	a, b, none := e.client(&certA), e.client(&certB), e.client(nil)

	e.expect(t, "challenge without a certificate", 403, proxy.ReasonClientCert, func() (int, http.Header, string) { return e.send(t, none, "", "/cert/x", "") })
	tok, charge, mac := e.buy(t, a, "", "/cert/x")
	if want := "tls_client_cert=" + hex.EncodeToString(sumA[:]); !containsString(mac, want) {
		t.Fatalf("minted caveats %q, want %s", mac, want)
	}
	e.expect(t, "token with certificate A", 200, "upstream /cert/x", func() (int, http.Header, string) { return e.send(t, a, "", "/cert/x", tok) })
	e.expect(t, "token with certificate B", 402, "token refused (caveat)", func() (int, http.Header, string) { return e.send(t, b, "", "/cert/x", tok) })
	e.expect(t, "token without a certificate", 403, proxy.ReasonClientCert, func() (int, http.Header, string) { return e.send(t, none, "", "/cert/x", tok) })
	e.expect(t, "charge with certificate B", 402, l402.ProblemInvalidChallenge, func() (int, http.Header, string) { return e.send(t, b, "", "/cert/x", charge) })
	e.expect(t, "charge with certificate A", 200, "upstream /cert/x", func() (int, http.Header, string) { return e.send(t, a, "", "/cert/x", charge) })
	// A holder can bind its token itself: an attenuated tls_client_cert
	// caveat on a route that does not bind is checked too.
	plain, _, _ := e.buy(t, a, "", "/origin/x")
	ptok, _ := l402.ParseAuthorization(plain)
	att, err := l402.Attenuate(ptok.Macaroon, l402.ClientCertCaveat(sumA))
	if err != nil {
		t.Fatal(err)
	}
	atok, _ := l402.NewToken(att, ptok.Preimage)
	e.expect(t, "self-bound token with certificate B", 402, "token refused (caveat)", func() (int, http.Header, string) { return e.send(t, b, "", "/origin/x", atok.Authorization()) })
	e.expect(t, "self-bound token with certificate A", 200, "upstream", func() (int, http.Header, string) { return e.send(t, a, "", "/origin/x", atok.Authorization()) })
}

// TestBindClientCertHeader: behind a front ending TLS, the certificate
// comes in Config.ClientCertHeader from a trusted forwarder only, in any of
// the forms fronts send.
func TestBindClientCertHeader(t *testing.T) {
	e := newBindEnv(t, proxy.Config{ClientCertHeader: "X-Client-Cert", TrustedForwarders: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, false)
	certA, sumA := testCert(t, "a")
	certB, _ := testCert(t, "b")
	caddy := strings.ToUpper(hex.EncodeToString(sumA[:]))
	pemA := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certA.Certificate[0]}))
	nginx := url.PathEscape(pemA)
	traefikB := base64.StdEncoding.EncodeToString(certB.Certificate[0])
	fa := e.p.ForwardAuth()
	ask := func(peer, cert, auth string) *httptest.ResponseRecorder {
		hdr := map[string]string{}
		if cert != "" {
			hdr["X-Client-Cert"] = cert
		}
		if auth != "" {
			hdr["Authorization"] = auth
		}
		r := traefik("GET", "api.example", "/cert/x", hdr)
		r.RemoteAddr = peer + ":40000"
		return serve(fa, r)
	}
	if w := ask("192.0.2.9", caddy, ""); w.Code != 403 {
		t.Fatalf("certificate header from an untrusted caller: %d %s", w.Code, w.Body)
	}
	w := ask("10.0.0.2", caddy, "")
	chs, err := l402.ParseChallenges(w.Header())
	if err != nil {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	pay, err := e.n.PayInvoice(context.Background(), chs[0].Invoice, backend.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := l402.NewToken(chs[0].Macaroon, pay.Preimage)
	for _, c := range []struct {
		what, peer, cert string
		status           int
	}{
		{"A as nginx's escaped PEM", "10.0.0.2", nginx, 200},
		{"A as a colon fingerprint", "10.0.0.3", strings.Join(splitN(hex.EncodeToString(sumA[:]), 2), ":"), 200},
		{"B as Traefik's base64 DER", "10.0.0.2", traefikB, 402},
		{"A's fingerprint claimed by an untrusted caller", "192.0.2.9", caddy, 403},
		{"no certificate", "10.0.0.2", "", 403},
	} {
		if w := ask(c.peer, c.cert, tok.Authorization()); w.Code != c.status {
			t.Errorf("%s: %d %s, want %d", c.what, w.Code, w.Body, c.status)
		}
	}
	if _, err := proxy.ParseClientCertHeader("not a certificate"); err == nil {
		t.Error("garbage read as a certificate")
	}
}

func splitN(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
