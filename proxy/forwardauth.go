package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/l402kit/l402kit/l402"
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
	// HeaderAccelExpires tells nginx's proxy_cache how long it may keep an
	// answer: "0" (never) or "@<unix seconds>" (until then), see
	// Config.ForwardAuthCacheMax.
	HeaderAccelExpires = "X-Accel-Expires"
)

// ForwardAuthNginxParam is the query parameter of the forward-auth URL that
// selects the nginx mode: ?nginx=1.
const ForwardAuthNginxParam = "nginx"

// ForwardAuth returns the gate as a forward-auth endpoint for a front server
// that asks before each request: nginx auth_request, Traefik ForwardAuth,
// Caddy forward_auth. The endpoint reads the original request from exactly
// one each of X-Forwarded-Method, X-Forwarded-Proto, X-Forwarded-Host and
// X-Forwarded-Uri (the raw request target, as nginx's $request_uri), see
// ForwardedRequest, together with the client's own headers
// (Authorization, Accept-Authenticate), which all three servers pass on.
// Traefik and Caddy send these four headers themselves; nginx must be
// configured to (proxy_set_header in the auth location; other names such
// as X-Original-URI are not read).
//
// The original request passes the same canonical-request checks as in the
// reverse proxy (CanonicalPath, CanonicalHost): the front server forwards
// the raw URI, so a path it or the upstream could read differently is
// answered 400 with a reason, never cleaned. A client-sent header that the
// upstream could take for the gate's own (X-L402-Paid, X_L402_Paid, ...) or
// for the request path (X-Original-URL, X-Rewrite-URL) is also refused
// with 400: the endpoint cannot remove it from what the front server
// forwards.
//
// It answers 200 with X-L402-Paid ("true" or "false") and, when paid,
// X-L402-Token-Id when the request may go on: the front server copies these
// to the upstream request (nginx auth_request_set, Traefik
// authResponseHeaders, Caddy copy_headers), and must not forward the
// client's L402/LSAT Authorization (see the README's configurations).
// Otherwise it answers what the gate answers: 402 with the WWW-Authenticate
// challenges and a JSON body, 429 or 503 with Retry-After, 400 with a
// reason. A request no route matches is answered 403: the front server sent
// it to be priced, and letting it through unpaid because of a host or path
// typo would give the resource away; add a free route for what should pass.
//
// nginx's auth_request accepts only 2xx, 401 and 403 from the endpoint and
// turns anything else into 500. With ?nginx=1 the endpoint answers 400,
// 402, 429 and 503 as 401 with the same headers and body plus X-L402-Status
// naming the real status, for an error_page 401 location that answers it
// (see the README).
//
// The client address (client_ip caveats, per-client challenge limits and
// quotas) is read as in reverse-proxy mode: from a trusted forwarder (see
// Config.TrustedForwarders; loopback by default), the right-most
// X-Forwarded-For address that is not one, else X-Real-IP; from any other
// caller, the caller's own address.
//
// Every answer carries X-Accel-Expires: "0" unless Config.ForwardAuthCacheMax
// allows a front server to cache this grant, then "@<unix seconds>", the last
// second it may be served from a cache (nginx proxy_cache honours it; the
// README's nginx configuration keys the cache on everything the decision
// reads).
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
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set(HeaderAccelExpires, "0")
	gw := w
	if nginx {
		gw = &nginxWriter{ResponseWriter: w}
	}
	orig, rerr := p.originalRequest(r)
	if rerr != nil {
		p.badRequest(gw, rerr)
		return
	}
	route, cred, ok := p.admit(gw, orig)
	if !ok {
		return
	}
	if route == nil {
		writeError(w, http.StatusForbidden, "no L402 route matches this host and path", "no_route")
		return
	}
	g := p.gate(gw, orig, route, cred)
	if g == nil {
		return
	}
	// Nothing downstream reports back to us: the grant is final now.
	g.resolve(http.StatusOK)
	if last, ok := p.cacheableUntil(cred, route, g, time.Now()); ok {
		// nginx 1.22 lets a Cache-Control: no-store read before
		// X-Accel-Expires veto caching, and Go sends headers sorted.
		w.Header().Del("Cache-Control")
		w.Header().Set(HeaderAccelExpires, "@"+strconv.FormatInt(last, 10))
	}
	if g.meter != nil {
		w.Header().Set(HeaderBalance, strconv.FormatInt(g.meter.granted(), 10))
	}
	if g.paid {
		w.Header().Set(HeaderPaid, "true")
		w.Header().Set(HeaderTokenID, g.tokenID)
	} else {
		w.Header().Set(HeaderPaid, "false")
	}
	if g.receipt != "" {
		// For the front server to add to its answer (nginx:
		// auth_request_set and add_header, see the README).
		w.Header().Set(l402.HeaderPaymentReceipt, g.receipt)
	}
	w.WriteHeader(http.StatusOK)
}

// cacheableUntil says whether a front server may cache the grant g of the
// credential cred, and until which unix second it may still serve it:
// nginx serves an entry through the whole second its validity names, so
// the last second that ends within ForwardAuthCacheMax from now, and the
// second before the one in which the token's earliest valid_until caveat
// (of any service) expires it.
func (p *Proxy) cacheableUntil(cred string, route *Route, g *grant, now time.Time) (int64, bool) {
	limit := p.cfg.ForwardAuthCacheMax
	if limit < time.Second {
		return 0, false
	}
	until := now.Add(limit).Unix() - 1
	switch {
	case l402.IsPaymentAuthorization(cred):
		return 0, false // a charge serves one request
	case route.Mode == ModeFree:
	case route.Mode == ModeRequired && !route.SingleUse && route.Bundle == nil && g.paid:
		// (A prepaid grant draws from a balance: every request must ask.)
		tok, err := p.parsed.parse(cred)
		if err != nil {
			return 0, false
		}
		for _, c := range tok.Macaroon.Caveats() {
			cond, val, ok := strings.Cut(string(c.Id), "=")
			if cond == l402.CondOrigin || cond == l402.CondClientCert {
				// A front's cache key need not hold what binds the
				// token: another client must not be served its grant.
				return 0, false
			}
			if !ok || !strings.HasSuffix(cond, l402.CondValidUntilSuffix) {
				continue
			}
			t, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return 0, false
			}
			until = min(until, t-1)
		}
	default:
		return 0, false
	}
	return until, until > now.Unix()
}

// forwardedHeaders are the headers a front server describes the original
// request with, in canonical spelling.
var forwardedHeaders = [...]string{HeaderForwardedMethod, HeaderForwardedProto, HeaderForwardedHost, HeaderForwardedURI}

// ForwardedRequest reads the original request a front server describes in
// the forward-auth headers h: exactly one value each of X-Forwarded-Method
// (an HTTP method token), X-Forwarded-Proto ("http" or "https"),
// X-Forwarded-Host (CanonicalHost) and X-Forwarded-Uri (the raw request
// target: an absolute path, checked with CanonicalPath, and a query). It
// refuses, rather than assumes a default for, a header that is missing,
// repeated, a comma list, or also present under another spelling that some
// server folds into the same name (X_Forwarded_Uri). It returns the method,
// scheme, canonical host and the URL of the original request.
func ForwardedRequest(h http.Header) (method, scheme, host string, u *url.URL, err error) {
	bad := func(format string, args ...any) (string, string, string, *url.URL, error) {
		return "", "", "", nil, &RequestError{Reason: ReasonForwardAuth, Msg: "forward auth: " + fmt.Sprintf(format, args...)}
	}
	var vals [len(forwardedHeaders)]string
	for i, name := range forwardedHeaders {
		v := h[name]
		switch {
		case len(v) == 0:
			return bad("missing %s header (the front server must send %s)", name, strings.Join(forwardedHeaders[:], ", "))
		case len(v) > 1:
			return bad("%s header sent %d times", name, len(v))
		}
		vals[i] = v[0]
	}
	for k := range h {
		for _, name := range forwardedHeaders {
			if k != name && foldedEqual(k, strings.ToLower(name)) {
				return bad("header %s could be read as %s", k, name)
			}
		}
	}
	method = vals[0]
	if !validMethod(method) {
		return bad("%s %q is not a method", HeaderForwardedMethod, truncate(method, 32))
	}
	switch strings.ToLower(vals[1]) {
	case "http":
		scheme = "http"
	case "https":
		scheme = "https"
	default:
		return bad("%s %q is not http or https", HeaderForwardedProto, truncate(vals[1], 16))
	}
	if strings.IndexByte(vals[2], ',') >= 0 {
		return bad("%s %q is a list", HeaderForwardedHost, truncate(vals[2], 64))
	}
	if host, err = CanonicalHost(vals[2]); err != nil {
		return "", "", "", nil, err
	}
	if host == "" {
		return bad("empty %s", HeaderForwardedHost)
	}
	raw := vals[3]
	if raw == "" || raw[0] != '/' {
		return bad("%s %q is not an absolute path", HeaderForwardedURI, truncate(raw, 64))
	}
	escPath, _, _ := strings.Cut(raw, "?")
	if _, err := CanonicalPath(escPath); err != nil {
		return "", "", "", nil, err
	}
	if u, err = url.ParseRequestURI(raw); err != nil || u.Host != "" || u.EscapedPath() != escPath {
		return bad("%s %q is not a request target", HeaderForwardedURI, truncate(raw, 64))
	}
	return method, scheme, host, u, nil
}

// originalRequest rebuilds the client's request from the forward-auth
// headers (ForwardedRequest). Client-sent headers that would reach the
// upstream as the gate's own X-L402-* headers are refused here, since the
// endpoint cannot drop them from what the front server forwards.
func (p *Proxy) originalRequest(r *http.Request) (*http.Request, *RequestError) {
	method, scheme, host, u, err := ForwardedRequest(r.Header)
	if err != nil {
		return nil, err.(*RequestError)
	}
	for k := range r.Header {
		if ownHeader(k) {
			return nil, &RequestError{Reason: ReasonHeader, Msg: "header " + k + " refused: the upstream would read it as the gate's own"}
		}
	}
	u.Scheme, u.Host = scheme, host

	o := r.Clone(r.Context())
	o.Method = method
	o.URL = u
	o.RequestURI = u.RequestURI()
	o.Host = host
	o.Body = http.NoBody
	o.ContentLength = 0
	for _, name := range forwardedHeaders {
		o.Header.Del(name)
	}
	// The client address is read from o as from any request (clientIP):
	// the front is o's peer, and its X-Forwarded-For is believed only when
	// it is a trusted forwarder. The origin is the one the front describes
	// (with the port X-Forwarded-Host names).
	return withForwardedOrigin(o, scheme, r.Header.Get(HeaderForwardedHost)), nil
}

// validMethod refuses an empty method too: Go reads "" as GET, so an empty
// X-Forwarded-Method would be authorized as one method and served as another.
func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
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
		case http.StatusBadRequest, http.StatusPaymentRequired, http.StatusTooManyRequests, http.StatusServiceUnavailable:
			n.Header().Set(HeaderStatus, strconv.Itoa(code))
			code = http.StatusUnauthorized
		}
		foldPaymentChallenges(n.Header())
	}
	n.ResponseWriter.WriteHeader(code)
}

// foldPaymentChallenges joins the challenges of a 402 that offers the
// Payment scheme into one WWW-Authenticate value, as RFC 9110 allows:
// nginx before 1.23 passes on only the first value of the header, which
// would drop every challenge after the L402 one.
func foldPaymentChallenges(h http.Header) {
	vals := h.Values(l402.HeaderWWWAuthenticate)
	if len(vals) < 2 {
		return
	}
	for _, v := range vals {
		if s, _, _ := strings.Cut(v, " "); strings.EqualFold(s, l402.SchemePayment) {
			h.Set(l402.HeaderWWWAuthenticate, strings.Join(vals, ", "))
			return
		}
	}
}

func (n *nginxWriter) Write(b []byte) (int, error) {
	if !n.wrote {
		n.WriteHeader(http.StatusOK)
	}
	return n.ResponseWriter.Write(b)
}

func (n *nginxWriter) Unwrap() http.ResponseWriter { return n.ResponseWriter }
