package proxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/proxy"
)

func TestCanonicalPath(t *testing.T) {
	ok := map[string]string{
		"/":                     "/",
		"/paid/":                "/paid/",
		"/paid/doc.txt":         "/paid/doc.txt",
		"/a%20b":                "/a b",
		"/a%2Bb/%40x":           "/a+b/@x",
		"/caf%C3%A9":            "/café",
		"/x:y@z!$&'()*+,=":      "/x:y@z!$&'()*+,=",
		"/v1.2/a.b/.well-known": "/v1.2/a.b/.well-known",
		"/a/...b":               "/a/...b",
	}
	for in, want := range ok {
		got, err := proxy.CanonicalPath(in)
		if err != nil || got != want {
			t.Errorf("CanonicalPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	refused := []string{
		"", "paid", "*",
		"/free/%2e%2e/paid", "/free/%2E%2E/paid", "/free/.%2e/paid", "/free/%2e./paid", "/free/%2e/x",
		"/free/../paid", "/free/./paid", "/free/..", "/..", "/.",
		"/free/..%2fpaid", "/free%2Fpaid", "/free/..%5cpaid", "/free%5C..", "/free\\..\\paid", "/free\\x",
		"/free/..;/paid", "/paid;x/y", "/paid/x;jsessionid=1", "/free/%3b/x",
		"//paid/x", "/free//paid", "/free///",
		"/a%00b", "/a\x00b", "/a\tb", "/a%0d%0ab", "/a\x7fb", "/a%7f",
		"/a%2", "/a%", "/a%zz", "/a%u002e%u002e/paid", "/a%%32%65",
		"/a%252e%252e/paid", "/a%25",
		"/p%61id/x", "/%7Euser", "/a%2Db", "/a%5F",
		"/a%3Fb", "/a%23b",
		"/a b", "/a\"b", "/a<b>", "/a{b}", "/a|b", "/a^b", "/a`b", "/a[0]", "/a#b",
		"/caf\xc3\xa9",
		"/%c0%ae%c0%ae/paid", "/%e0%80%ae", "/%ed%a0%80", "/%c3", "/%ff",
		"/free/%EF%BC%8E%EF%BC%8E/paid", // fullwidth full stops
		"/free%EF%BC%8Fpaid",            // fullwidth solidus
		"/free/%E2%80%A5/paid",          // two dot leader
		"/free%E2%88%95paid",            // division slash
		"/a%E2%80%8Bb",                  // zero-width space
		"/a%C2%A0b",                     // no-break space
		"/a%C2%85",                      // NEL
		"/paid./x", "/paid%20/x", "/x/file.",
		"/" + strings.Repeat("a", proxy.MaxPathLen),
	}
	for _, in := range refused {
		got, err := proxy.CanonicalPath(in)
		var re *proxy.RequestError
		if !errors.As(err, &re) || re.Reason != proxy.ReasonPath {
			t.Errorf("CanonicalPath(%q) = %q, %v; want a %s refusal", in, got, err, proxy.ReasonPath)
		}
	}
}

// TestCanonicalPathAgreesWithCleaners checks the property the rule is for:
// whatever it accepts, path.Clean and url.PathUnescape leave as it is, so a
// server that decodes and cleans reads the same path the gate routed on.
func TestCanonicalPathAgreesWithCleaners(t *testing.T) {
	for _, in := range []string{"/", "/a/", "/a/b.c", "/a%20b/", "/%C3%A9t%C3%A9/x"} {
		dec, err := proxy.CanonicalPath(in)
		if err != nil {
			t.Fatal(in, err)
		}
		un, _ := url.PathUnescape(in)
		cl := path.Clean(un)
		if strings.HasSuffix(un, "/") && cl != "/" {
			cl += "/"
		}
		if dec != un || cl != un {
			t.Errorf("%q: decoded %q, unescaped %q, cleaned %q", in, dec, un, cl)
		}
	}
}

func TestCanonicalHost(t *testing.T) {
	ok := map[string]string{
		"":                      "",
		"Example.COM":           "example.com",
		"example.com.":          "example.com",
		"example.com:8080":      "example.com",
		"example.com.:443":      "example.com",
		"example.com:":          "example.com",
		"xn--bcher-kva.example": "xn--bcher-kva.example",
		"127.0.0.1:80":          "127.0.0.1",
		"[::1]:8402":            "[::1]",
		"[0:0::1]":              "[::1]",
		"my_host.internal":      "my_host.internal",
	}
	for in, want := range ok {
		got, err := proxy.CanonicalHost(in)
		if err != nil || got != want {
			t.Errorf("CanonicalHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"bücher.example", "a..b", ".a", "example.com..", "a,b", "a b", "u@h", "h:99999", "h:0", "h:x", "h:+1", "h:080",
		"::1", "[::1", "[::1]x", "[fe80::1%25eth0]", "[1.2.3.4]", "h/x", "h\\x", "h%2ex",
	} {
		if got, err := proxy.CanonicalHost(in); err == nil {
			t.Errorf("CanonicalHost(%q) = %q, want a refusal", in, got)
		}
	}
}

// rawGet sends a request line exactly as given (Go's client would
// normalize some of these) and returns the status and body.
func rawGet(t *testing.T, addr, target string, hdr ...string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", target, addr)
	for _, h := range hdr {
		fmt.Fprintf(c, "%s\r\n", h)
	}
	io.WriteString(c, "\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReproReverseProxyDotSegments is the first reproduction: free
// route "/", paid route "/paid/", an upstream that resolves dot segments
// itself (as nginx serving files does). The encoded climb is refused, not
// forwarded.
func TestReproReverseProxyDotSegments(t *testing.T) {
	n := newNode(t)
	var asked atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		// Resolve the raw path the way a file server does.
		raw, _ := url.PathUnescape(r.URL.EscapedPath())
		if path.Clean(raw) == "/paid/secret.txt" {
			io.WriteString(w, "the paid file")
			return
		}
		io.WriteString(w, "free "+raw)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	p, err := proxy.New(proxy.Config{Backend: n, Routes: []proxy.Route{
		{Name: "free", PathPrefix: "/", Mode: proxy.ModeFree, Upstream: u},
		{Name: "paid", PathPrefix: "/paid/", Price: backend.Sat(1), Upstream: u},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, target := range []string{
		"/free/%2e%2e/paid/secret.txt", "/free/%2E%2E/paid/secret.txt", "/free/../paid/secret.txt",
		"/free/..%2fpaid/secret.txt", "/free/..\\paid/secret.txt", "/free/..;/paid/secret.txt", "//paid/secret.txt",
		"/PAID/secret.txt", "/paid./secret.txt", "/p%61id/secret.txt",
	} {
		status, body := rawGet(t, addr, target)
		if status != http.StatusBadRequest || !strings.Contains(body, `"reason":"`+proxy.ReasonPath+`"`) {
			t.Errorf("%s: %d %q, want 400 %s", target, status, body, proxy.ReasonPath)
		}
	}
	if asked.Load() != 0 {
		t.Fatalf("the upstream was asked %d times", asked.Load())
	}
	if status, body := rawGet(t, addr, "/free/x"); status != 200 || body != "free /free/x" {
		t.Fatalf("/free/x: %d %q", status, body)
	}
	if status, _ := rawGet(t, addr, "/paid/secret.txt"); status != http.StatusPaymentRequired {
		t.Fatalf("/paid/secret.txt: %d", status)
	}
}

// TestReproForwardAuthDotSegments is the second reproduction: the
// front server forwards the raw URI, which the upstream's router resolves
// to /paid/; the auth endpoint must refuse, not clean it to /free/x.
func TestReproForwardAuthDotSegments(t *testing.T) {
	n := newNode(t)
	p, err := proxy.New(proxy.Config{Backend: n, Routes: []proxy.Route{
		{Name: "free", PathPrefix: "/free/", Mode: proxy.ModeFree},
		{Name: "paid", PathPrefix: "/paid/", Price: backend.Sat(1)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	w := serve(p.ForwardAuth(), traefik("GET", "api.example", "/paid/%2e%2e/free/x", nil))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), proxy.ReasonPath) || w.Header().Get(proxy.HeaderPaid) != "" {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
}

func TestForwardedRequestHeaders(t *testing.T) {
	good := func() http.Header {
		return http.Header{
			proxy.HeaderForwardedMethod: {"GET"},
			proxy.HeaderForwardedProto:  {"https"},
			proxy.HeaderForwardedHost:   {"API.example:443"},
			proxy.HeaderForwardedURI:    {"/paid/doc?x=1&y=%2F"},
		}
	}
	m, s, h, u, err := proxy.ForwardedRequest(good())
	if err != nil || m != "GET" || s != "https" || h != "api.example" || u.Path != "/paid/doc" || u.RawQuery != "x=1&y=%2F" {
		t.Fatalf("%q %q %q %v %v", m, s, h, u, err)
	}
	for name, mod := range map[string]func(http.Header){
		"method missing":     func(h http.Header) { h.Del(proxy.HeaderForwardedMethod) },
		"proto missing":      func(h http.Header) { h.Del(proxy.HeaderForwardedProto) },
		"host missing":       func(h http.Header) { h.Del(proxy.HeaderForwardedHost) },
		"uri missing":        func(h http.Header) { h.Del(proxy.HeaderForwardedURI) },
		"uri repeated":       func(h http.Header) { h.Add(proxy.HeaderForwardedURI, "/free/x") },
		"host repeated":      func(h http.Header) { h.Add(proxy.HeaderForwardedHost, "other.example") },
		"method repeated":    func(h http.Header) { h.Add(proxy.HeaderForwardedMethod, "POST") },
		"host list":          func(h http.Header) { h.Set(proxy.HeaderForwardedHost, "a.example, b.example") },
		"host empty":         func(h http.Header) { h.Set(proxy.HeaderForwardedHost, "") },
		"proto odd":          func(h http.Header) { h.Set(proxy.HeaderForwardedProto, "https, http") },
		"method bad":         func(h http.Header) { h.Set(proxy.HeaderForwardedMethod, "GET /") },
		"uri absolute":       func(h http.Header) { h.Set(proxy.HeaderForwardedURI, "http://evil/paid/doc") },
		"uri relative":       func(h http.Header) { h.Set(proxy.HeaderForwardedURI, "paid/doc") },
		"uri dot segments":   func(h http.Header) { h.Set(proxy.HeaderForwardedURI, "/paid/%2e%2e/free/x") },
		"underscore variant": func(h http.Header) { h["X_forwarded_uri"] = []string{"/free/x"} },
	} {
		h := good()
		mod(h)
		if _, _, _, _, err := proxy.ForwardedRequest(h); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
