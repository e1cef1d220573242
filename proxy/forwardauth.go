package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Headers of the forward-auth form.
const (
	// HeaderForwardedMethod, HeaderForwardedProto, HeaderForwardedHost and
	// HeaderForwardedURI describe the client's original request; Traefik
	// ForwardAuth and Caddy forward_auth send them as they are, nginx is
	// configured to (see ForwardAuth).
	HeaderForwardedMethod = "X-Forwarded-Method"
	HeaderForwardedProto  = "X-Forwarded-Proto"
	HeaderForwardedHost   = "X-Forwarded-Host"
	HeaderForwardedURI    = "X-Forwarded-Uri"
	// HeaderStatus carries the gate's real status when the nginx mode has
	// turned it into 401, so the nginx config can answer it to the client.
	HeaderStatus = "X-L402-Status"
)

// ForwardAuthNginxParam is the query parameter of the forward-auth URL that
// selects the nginx mode: ?nginx=1.
const ForwardAuthNginxParam = "nginx"

// ForwardAuth returns the gate as a forward-auth endpoint for a front server
// that asks before each request: nginx auth_request, Traefik ForwardAuth,
// Caddy forward_auth. The endpoint reads the original request from
// X-Forwarded-Method, X-Forwarded-Proto, X-Forwarded-Host (default: the
// Host of the auth request) and X-Forwarded-Uri (path and query, required),
// together with the client's own headers (Authorization,
// Accept-Authenticate), which all three servers pass on.
//
// It answers 200 with X-L402-Paid ("true" or "false") and, when paid,
// X-L402-Token-Id when the request may go on: the front server copies these
// to the upstream request (nginx auth_request_set, Traefik
// authResponseHeaders, Caddy copy_headers). Otherwise it answers what the
// gate answers: 402 with the WWW-Authenticate challenges and a JSON body,
// 429 or 503 with Retry-After. A request no route matches is answered 403:
// the front server sent it to be priced, and letting it through unpaid
// because of a host or path typo would give the resource away; add a free
// route for what should pass.
//
// nginx's auth_request accepts only 2xx, 401 and 403 from the endpoint and
// turns anything else into 500. With ?nginx=1 the endpoint answers 402, 429
// and 503 as 401 with the same headers and body plus X-L402-Status naming
// the real status, for an error_page 401 location that answers it (see the
// README).
//
// The client address (client_ip caveats, per-client challenge limits) is
// the front server's unless Config.TrustForwardedFor is set: then it comes
// from the first X-Forwarded-For address, else X-Real-IP. Set it only when
// the front server overwrites these headers (nginx: proxy_set_header
// X-Forwarded-For $remote_addr), or clients choose their address.
//
// Single-use routes: the endpoint never sees the upstream's answer, so a
// single-use token is consumed when it is granted: a held invoice is
// settled, or the payment hash recorded as spent, before the upstream is
// asked; an upstream failure no longer returns the payment.
func (p *Proxy) ForwardAuth() http.Handler {
	return http.HandlerFunc(p.forwardAuth)
}

func (p *Proxy) forwardAuth(w http.ResponseWriter, r *http.Request) {
	nginx := false
	if v := r.URL.Query().Get(ForwardAuthNginxParam); v != "" {
		nginx, _ = strconv.ParseBool(v)
	}
	orig, err := p.originalRequest(r)
	if err != nil {
		p.log.Warn("forward auth: cannot rebuild the original request", "err", err)
		writeError(w, http.StatusBadRequest, "forward auth: "+err.Error(), "bad_forward_auth_request")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	route := p.routes.match(orig)
	if route == nil {
		writeError(w, http.StatusForbidden, "no L402 route matches this host and path", "no_route")
		return
	}
	gw := w
	if nginx {
		gw = &nginxWriter{ResponseWriter: w}
	}
	g := p.gate(gw, orig, route)
	if g == nil {
		return
	}
	// Nothing downstream reports back to us: the grant is final now.
	g.finish(http.StatusOK)
	if g.paid {
		w.Header().Set(HeaderPaid, "true")
		w.Header().Set(HeaderTokenID, g.tokenID)
	} else {
		w.Header().Set(HeaderPaid, "false")
	}
	w.WriteHeader(http.StatusOK)
}

// originalRequest rebuilds the client's request from the forward-auth
// headers. The path is cleaned: front servers send the raw request URI, and
// the upstream may resolve "/free/../paid" to "/paid" after the gate
// matched it against the free route.
func (p *Proxy) originalRequest(r *http.Request) (*http.Request, error) {
	raw := r.Header.Get(HeaderForwardedURI)
	if raw == "" {
		return nil, fmt.Errorf("missing %s header (the original request's path and query)", HeaderForwardedURI)
	}
	u, err := url.ParseRequestURI(raw)
	if err != nil || !strings.HasPrefix(u.Path, "/") || u.Host != "" {
		return nil, fmt.Errorf("%s %q is not an absolute path", HeaderForwardedURI, raw)
	}
	clean := path.Clean(u.Path)
	if strings.HasSuffix(u.Path, "/") && clean != "/" {
		clean += "/"
	}
	if clean != u.Path {
		u.Path, u.RawPath = clean, ""
	}
	method := r.Header.Get(HeaderForwardedMethod)
	if method == "" {
		method = http.MethodGet
	}
	if !validMethod(method) {
		return nil, fmt.Errorf("%s %q is not a method", HeaderForwardedMethod, method)
	}
	host := r.Header.Get(HeaderForwardedHost)
	if host == "" {
		host = r.Host
	}
	host, _, _ = strings.Cut(host, ",") // a chain of proxies: the first is the client's
	host = strings.TrimSpace(host)
	scheme := "http"
	if proto := strings.ToLower(strings.TrimSpace(r.Header.Get(HeaderForwardedProto))); proto == "https" {
		scheme = proto
	}
	u.Scheme, u.Host = scheme, host

	o := r.Clone(r.Context())
	o.Method = method
	o.URL = u
	o.RequestURI = u.RequestURI()
	o.Host = host
	o.Body = http.NoBody
	o.ContentLength = 0
	if p.cfg.TrustForwardedFor {
		// clientIP reads X-Forwarded-For itself; X-Real-IP is the fallback.
		if a, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-Ip"))); err == nil {
			o.RemoteAddr = net.JoinHostPort(a.String(), "0")
		}
	}
	return o, nil
}

func validMethod(m string) bool {
	if len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !isTchar(m[i]) {
			return false
		}
	}
	return true
}

func isTchar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// nginxWriter turns the gate's 402, 429 and 503 into 401, which nginx's
// auth_request hands to error_page with the response headers intact.
type nginxWriter struct {
	http.ResponseWriter
	wrote bool
}

func (n *nginxWriter) WriteHeader(code int) {
	if !n.wrote {
		n.wrote = true
		switch code {
		case http.StatusPaymentRequired, http.StatusTooManyRequests, http.StatusServiceUnavailable:
			n.Header().Set(HeaderStatus, strconv.Itoa(code))
			code = http.StatusUnauthorized
		}
	}
	n.ResponseWriter.WriteHeader(code)
}

func (n *nginxWriter) Write(b []byte) (int, error) {
	if !n.wrote {
		n.WriteHeader(http.StatusOK)
	}
	return n.ResponseWriter.Write(b)
}

func (n *nginxWriter) Unwrap() http.ResponseWriter { return n.ResponseWriter }
