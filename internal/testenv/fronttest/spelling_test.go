package fronttest_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/proxy"
)

// spelling is one way a client may write its request's headers: lines
// sent exactly as given (CRLF added), with {AUTH} replaced by the token's
// credential (macaroon:preimage, no scheme).
type spelling struct {
	name  string
	lines []string
	// legal: RFC 9110/9112 allow it, so a paid request in this spelling
	// must be served (200) and its credential still never reach the
	// upstream. Otherwise the front or the endpoint may refuse it (400),
	// or not see a credential (402), but never forward the credential.
	legal bool
}

var credentialSpellings = []spelling{
	{"canonical", []string{"Authorization: L402 {AUTH}"}, true},
	{"lower-case name and scheme", []string{"authorization: l402 {AUTH}"}, true},
	{"upper-case name", []string{"AUTHORIZATION: L402 {AUTH}"}, true},
	{"mixed-case scheme", []string{"Authorization: l402 {AUTH}"}, true},
	{"LSAT scheme", []string{"Authorization: LSAT {AUTH}"}, true},
	{"lower-case LSAT", []string{"Authorization: lsat {AUTH}"}, true},
	{"no space after the colon", []string{"Authorization:L402 {AUTH}"}, true},
	{"spaces before the value", []string{"Authorization:    L402 {AUTH}"}, true},
	{"tab before the value", []string{"Authorization:\tL402 {AUTH}"}, true},
	{"tab and space before the value", []string{"Authorization: \t L402 {AUTH}"}, true},
	{"trailing spaces and tab", []string{"Authorization: L402 {AUTH} \t "}, true},
	{"several spaces after the scheme", []string{"Authorization: L402   {AUTH}"}, true},
	{"vertical tab before the value", []string{"Authorization: \vL402 {AUTH}"}, false},
	{"form feed before the value", []string{"Authorization: \fL402 {AUTH}"}, false},
	{"no-break space before the value", []string{"Authorization: \u00a0L402 {AUTH}"}, false},
	{"ideographic space before the value", []string{"Authorization: \u3000L402 {AUTH}"}, false},
	{"tab after the scheme", []string{"Authorization: L402\t{AUTH}"}, false},
	{"folded after the scheme", []string{"Authorization: L402", " {AUTH}"}, false},
	{"folded before the value", []string{"Authorization:", " L402 {AUTH}"}, false},
	{"folded with a tab", []string{"Authorization: L402", "\t{AUTH}"}, false},
	{"space before the colon", []string{"Authorization : L402 {AUTH}"}, false},
	{"after another Authorization", []string{"Authorization: Bearer abc", "Authorization: L402 {AUTH}"}, false},
	{"before another Authorization", []string{"Authorization: L402 {AUTH}", "Authorization: Bearer abc"}, false},
	{"in a list with another scheme", []string{"Authorization: Bearer abc, L402 {AUTH}"}, false},
	{"twice", []string{"Authorization: L402 {AUTH}", "authorization: LSAT {AUTH}"}, false},
}

// rawRequest sends GET target with the header lines exactly as given.
func rawRequest(addr, target string, lines []string) (*http.Response, string, error) {
	return rawRequestFrom("", addr, target, lines)
}

// rawRequestFrom is rawRequest from the local address from (an IP; ""
// for any): loopback has a whole /8, so tests on one host can be several
// clients.
func rawRequestFrom(from, addr, target string, lines []string) (*http.Response, string, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", target, addr)
	for _, l := range lines {
		b.WriteString(l + "\r\n")
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

// carries reports the header names at the upstream whose values hold the
// credential's macaroon.
func carries(h http.Header, mac string) []string {
	var out []string
	for k, vs := range h {
		for _, v := range vs {
			if strings.Contains(v, mac) {
				out = append(out, k)
			}
		}
	}
	return out
}

// TestCredentialSpellings sends a valid token in every spelling of the
// table through each front, to a sold route and to a free one. Whatever the
// spelling, the credential never reaches the upstream; a legal spelling is
// served on the sold route.
func TestCredentialSpellings(t *testing.T) {
	for _, fc := range fronts {
		t.Run(fc.name, func(t *testing.T) {
			n := newNode(t)
			up := newUpstream(t)
			p, err := proxy.New(proxy.Config{Backend: over(t, n, false), Routes: routes()})
			if err != nil {
				t.Fatal(err)
			}
			auth := newAuthServer(t, p)
			f := startFront(t, fc, up, auth)
			tok := buy(t, n, f.Addr, "/paid/doc")
			cred := strings.TrimPrefix(tok.Authorization(), "L402 ")
			mac, _, _ := strings.Cut(cred, ":")
			for _, sp := range credentialSpellings {
				lines := make([]string, len(sp.lines))
				for i, l := range sp.lines {
					lines[i] = strings.ReplaceAll(l, "{AUTH}", cred)
				}
				for _, target := range []string{"/paid/doc", "/free/x"} {
					resp, body, err := rawRequest(f.Addr, target, lines)
					if err != nil {
						t.Errorf("%s, %s: %v", sp.name, target, err)
						continue
					}
					s := up.take()
					outcome := fmt.Sprintf("%d", resp.StatusCode)
					if s != nil {
						if leaked := carries(s.header, mac); len(leaked) > 0 {
							t.Errorf("%s, %s %s: the credential reached the upstream in %v", fc.name, sp.name, target, leaked)
						}
						outcome += " paid=" + s.paid
					}
					t.Logf("%s | %s | %s | %s", fc.name, sp.name, target, outcome)
					if target == "/paid/doc" && sp.legal && (resp.StatusCode != http.StatusOK || s == nil || s.paid != "true") {
						t.Errorf("%s, legal spelling %s: %s %q, want 200 and the upstream told it was paid", fc.name, sp.name, resp.Status, body)
					}
					if target == "/paid/doc" && resp.StatusCode == http.StatusOK && (s == nil || s.paid != "true") {
						t.Errorf("%s, %s: paid content served without the gate's grant: %+v", fc.name, sp.name, s)
					}
				}
			}
			if l := up.takeLeaks(); len(l) > 0 {
				t.Fatalf("selling handlers ran unpaid for %q", l)
			}
		})
	}
}

// forwardedSpellings are client-sent copies of the headers a front tells
// the endpoint the original request with, in every spelling, claiming a
// free path while the request asks for a sold one.
var forwardedSpellings = []spelling{
	{"canonical", []string{"X-Forwarded-Uri: /free/x", "X-Forwarded-Method: GET", "X-Forwarded-Host: free.example", "X-Forwarded-Proto: https"}, false},
	{"lower-case", []string{"x-forwarded-uri: /free/x", "x-forwarded-method: GET"}, false},
	{"upper-case", []string{"X-FORWARDED-URI: /free/x"}, false},
	{"underscores", []string{"X_Forwarded_Uri: /free/x", "X_Forwarded_Method: GET"}, false},
	{"mixed separators", []string{"X-Forwarded_Uri: /free/x"}, false},
	{"tab before the value", []string{"X-Forwarded-Uri:\t/free/x"}, false},
	{"folded", []string{"X-Forwarded-Uri: /free/", " x"}, false},
	{"twice", []string{"X-Forwarded-Uri: /free/x", "X-Forwarded-Uri: /free/y"}, false},
	{"space before the colon", []string{"X-Forwarded-Uri : /free/x"}, false},
	{"original URL headers", []string{"X-Original-URI: /free/x", "X-Original-Url: /free/x", "X-Rewrite-Url: /free/x"}, false},
}

// TestForwardedHeaderSpellings: a client's own forwarded headers, however
// spelled, never make a sold path pass as a free one through any front.
func TestForwardedHeaderSpellings(t *testing.T) {
	for _, fc := range fronts {
		t.Run(fc.name, func(t *testing.T) {
			n := newNode(t)
			up := newUpstream(t)
			p, err := proxy.New(proxy.Config{Backend: over(t, n, false), Routes: routes()})
			if err != nil {
				t.Fatal(err)
			}
			auth := newAuthServer(t, p)
			f := startFront(t, fc, up, auth)
			for _, sp := range forwardedSpellings {
				resp, body, err := rawRequest(f.Addr, "/paid/doc", sp.lines)
				if err != nil {
					t.Errorf("%s: %v", sp.name, err)
					continue
				}
				s := up.take()
				t.Logf("%s | %s | %d | endpoint asked about %q", fc.name, sp.name, resp.StatusCode, auth.lastURI())
				if s != nil || (resp.StatusCode != http.StatusPaymentRequired && resp.StatusCode != http.StatusBadRequest) {
					t.Errorf("%s, client-sent %s: %s %q, upstream saw %+v; want 402 or 400 and the upstream not asked", fc.name, sp.name, resp.Status, body, s)
				}
			}
			if l := up.takeLeaks(); len(l) > 0 {
				t.Fatalf("selling handlers ran unpaid for %q", l)
			}
		})
	}
}
