package proxy_test

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/l402kit/l402kit/proxy"
)

// Fuzz targets for the parsers of client input in this package; seed
// corpora in testdata/fuzz/<Name>, where `make fuzz` crashes are kept as
// regression cases.

// FuzzCanonicalPath checks the canonical-request rule's promise: a path it
// accepts reads the same to a server that decodes it, one that cleans it,
// and Go's own URL parser (which gives ReverseProxy what it forwards).
func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{
		"/", "/paid/x", "/a%20b/", "/caf%C3%A9", "/free/%2e%2e/paid", "/a/../b", "//x", "/a;b", "/a\\b",
		"/%c0%ae", "/%EF%BC%8F", "/a%2", "/p%61id", "/a%252e", "/x.", "/a/./b", "/%E2%88%95",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		dec, err := proxy.CanonicalPath(in)
		if err != nil {
			return
		}
		un, uerr := url.PathUnescape(in)
		if uerr != nil || un != dec {
			t.Fatalf("%q: decoded %q, url.PathUnescape %q %v", in, dec, un, uerr)
		}
		cl := path.Clean(dec)
		if strings.HasSuffix(dec, "/") && cl != "/" {
			cl += "/"
		}
		if cl != dec {
			t.Fatalf("%q: decoded %q cleans to %q", in, dec, cl)
		}
		if strings.ContainsAny(dec, "\\;\x00") || strings.Contains(dec, "//") {
			t.Fatalf("%q: decoded %q holds a separator some server splits on", in, dec)
		}
		u, perr := url.ParseRequestURI(in)
		if perr != nil || u.Path != dec || u.EscapedPath() != in {
			t.Fatalf("%q: Go reads path %q, forwards %q (%v)", in, u.Path, u.EscapedPath(), perr)
		}
	})
}

// FuzzCanonicalHost: the normal form is a fixed point, lower case, and
// carries no port.
func FuzzCanonicalHost(f *testing.F) {
	for _, s := range []string{"Example.COM.", "a:80", "[::1]:8402", "xn--bcher-kva.example", "a..b", "b\xc3\xbccher", "h:0", "::1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := proxy.CanonicalHost(in)
		if err != nil {
			return
		}
		again, err := proxy.CanonicalHost(out)
		if err != nil || again != out {
			t.Fatalf("%q -> %q -> %q %v", in, out, again, err)
		}
		if strings.ToLower(out) != out || strings.HasSuffix(out, ".") || strings.Contains(strings.TrimPrefix(out, "["), "]:") {
			t.Fatalf("%q -> %q is not canonical", in, out)
		}
	})
}

// FuzzForwardedRequest: the forward-auth header set as a front server (or
// a client through a careless one) sends it. What it accepts is a
// canonical request.
func FuzzForwardedRequest(f *testing.F) {
	f.Add("GET", "https", "api.example", "/paid/x?y=1", "", "")
	f.Add("POST", "HTTP", "API.example:443", "/a%20b", "X_Forwarded_Uri", "/free/x")
	f.Add("GET", "https", "a, b", "/paid/%2e%2e/free/x", "X-Forwarded-Uri", "/free/x")
	f.Add("G ET", "ftp", "", "http://evil/x", "x-forwarded-host", "evil")
	f.Fuzz(func(t *testing.T, method, proto, host, uri, extraName, extraValue string) {
		h := http.Header{
			proxy.HeaderForwardedMethod: {method},
			proxy.HeaderForwardedProto:  {proto},
			proxy.HeaderForwardedHost:   {host},
			proxy.HeaderForwardedURI:    {uri},
		}
		if extraName != "" {
			h[extraName] = append(h[extraName], extraValue)
		}
		m, s, ch, u, err := proxy.ForwardedRequest(h)
		if err != nil {
			return
		}
		if m == "" || (s != "http" && s != "https") || ch == "" {
			t.Fatalf("accepted %q %q %q", m, s, ch)
		}
		if again, err := proxy.CanonicalHost(ch); err != nil || again != ch {
			t.Fatalf("host %q not canonical", ch)
		}
		if dec, err := proxy.CanonicalPath(u.EscapedPath()); err != nil || dec != u.Path {
			t.Fatalf("uri %q: path %q escaped %q: %v", uri, u.Path, u.EscapedPath(), err)
		}
	})
}
