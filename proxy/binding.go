package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/l402kit/l402kit/l402"
)

// Token binding (bLIP-26's origin and TLS client certificate predicates):
// a route can mint tokens valid only at the origin the challenge was asked
// at (Route.BindOrigin) or only with the TLS client certificate presented
// then (Route.BindClientCert). The gate fills every request's origin and
// certificate digest, so origin= and tls_client_cert= caveats, minted by
// the route or added by a holder attenuating its token, are checked.
//
// The origin is what the client addressed: Config.PublicOrigin when set;
// in forward auth, the front's X-Forwarded-Proto and X-Forwarded-Host;
// otherwise "https" when TLS ends at the gate (or when a trusted forwarder
// says X-Forwarded-Proto: https), "http" else, and the Host header. The
// certificate is the one of the TLS connection when TLS ends at the gate;
// behind a front that ends TLS, the one a trusted forwarder puts in
// Config.ClientCertHeader; never a forward-auth caller's own.

// ReasonClientCert is the reason of the 403 a route that binds tokens to
// the client certificate answers a challenge request made without one.
const ReasonClientCert = "client_certificate_required"

// ctxKey keys the forward-auth request's origin in its context.
type ctxKey int

const forwardedOriginKey ctxKey = iota

// originOf is the origin "scheme://host[:port]" of a request to rawHost
// (a Host header, already accepted by CanonicalHost) over scheme: the
// host in canonical form, the port only when not the scheme's default.
// Empty when the host is.
func originOf(scheme, rawHost string) string {
	name, err := CanonicalHost(rawHost)
	if err != nil || name == "" {
		return ""
	}
	port := ""
	if strings.HasPrefix(rawHost, "[") {
		if i := strings.Index(rawHost, "]:"); i >= 0 {
			port = rawHost[i+2:]
		}
	} else if i := strings.IndexByte(rawHost, ':'); i >= 0 {
		port = rawHost[i+1:]
	}
	scheme = strings.ToLower(scheme)
	if port == "" || scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		return scheme + "://" + name
	}
	return scheme + "://" + name + ":" + port
}

// ParseOrigin checks an origin as Config.PublicOrigin takes it,
// "http(s)://host[:port]" with nothing after the authority, and returns
// it in the form requests are compared in (lower case, no default port).
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("proxy: origin %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil ||
		u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("proxy: origin %q: want http(s)://host[:port] and nothing more", s)
	}
	if _, err := CanonicalHost(u.Host); err != nil {
		return "", fmt.Errorf("proxy: origin %q: %w", s, err)
	}
	return originOf(u.Scheme, u.Host), nil
}

// requestOrigin is the origin r was addressed to (see above); empty when
// unknown (a request without a host).
func (p *Proxy) requestOrigin(r *http.Request) string {
	if p.cfg.PublicOrigin != "" {
		return p.cfg.PublicOrigin
	}
	if o, ok := r.Context().Value(forwardedOriginKey).(string); ok {
		return o
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p.forwarders.trusted(PeerAddr(r)) {
		if v := r.Header.Values(HeaderForwardedProto); len(v) == 1 {
			if s := strings.ToLower(strings.TrimSpace(v[0])); s == "http" || s == "https" {
				scheme = s
			}
		}
	}
	return originOf(scheme, r.Host)
}

// withForwardedOrigin marks a forward-auth request with the origin the
// front says its client addressed.
func withForwardedOrigin(r *http.Request, scheme, rawHost string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), forwardedOriginKey, originOf(scheme, rawHost)))
}

// requestCert is the SHA-256 of the TLS client certificate r came with, nil
// for none: from a trusted forwarder with Config.ClientCertHeader set, the
// one that header carries (none when it is absent or empty); else, unless
// r came through forward auth, the first certificate of r's own TLS
// connection.
func (p *Proxy) requestCert(r *http.Request) *[32]byte {
	if h := p.cfg.ClientCertHeader; h != "" && p.forwarders.trusted(PeerAddr(r)) {
		v := r.Header.Values(h)
		if len(v) != 1 {
			return nil
		}
		sum, err := ParseClientCertHeader(v[0])
		if err != nil {
			p.log.Warn("unreadable client certificate header from a trusted forwarder", "header", h, "err", err)
			return nil
		}
		return sum
	}
	if _, fwd := r.Context().Value(forwardedOriginKey).(string); fwd {
		return nil // the caller's TLS is the front's, not the client's
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	sum := sha256.Sum256(r.TLS.PeerCertificates[0].Raw)
	return &sum
}

// ParseClientCertHeader reads the client certificate a front server passes
// on in a header, as the common ones can be told to: its SHA-256 in hex,
// with or without colons (Caddy's {http.request.tls.client.fingerprint});
// the URL-escaped PEM (nginx's $ssl_client_escaped_cert); or the base64
// DER, the first of a comma list (Traefik's passTLSClientCert). It returns
// the certificate's SHA-256, nil for an empty value (no certificate).
func ParseClientCertHeader(v string) (*[32]byte, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	if hx := strings.ReplaceAll(v, ":", ""); len(hx) == 64 {
		var sum [32]byte
		if _, err := hex.Decode(sum[:], []byte(strings.ToLower(hx))); err == nil {
			return &sum, nil
		}
	}
	if strings.Contains(v, "%") {
		if u, err := url.PathUnescape(v); err == nil {
			v = u
		}
	}
	var der []byte
	if strings.HasPrefix(v, "-----BEGIN") {
		b, _ := pem.Decode([]byte(v))
		if b == nil || b.Type != "CERTIFICATE" {
			return nil, errors.New("not a PEM certificate")
		}
		der = b.Bytes
	} else {
		first, _, _ := strings.Cut(v, ",")
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(first))
		if err != nil || len(b) == 0 {
			return nil, errors.New("neither a SHA-256 fingerprint, a PEM nor a base64 DER certificate")
		}
		der = b
	}
	sum := sha256.Sum256(der)
	return &sum, nil
}

// bindings are the caveats route binds a token minted for r to, and the
// same as Payment opaque members; an error when r cannot be bound (no
// client certificate on a route that binds to one, no origin).
func (p *Proxy) bindings(r *http.Request, route *Route) ([]l402.Caveat, map[string]string, *RequestError) {
	if !route.BindOrigin && !route.BindClientCert {
		return nil, nil, nil
	}
	var (
		cs     []l402.Caveat
		opaque = map[string]string{}
	)
	if route.BindOrigin {
		o := p.requestOrigin(r)
		if o == "" {
			return nil, nil, &RequestError{Reason: ReasonHost, Msg: "this route binds its tokens to the origin, and the request names no host"}
		}
		cs = append(cs, l402.OriginCaveat(o))
		opaque[l402.CondOrigin] = o
	}
	if route.BindClientCert {
		sum := p.requestCert(r)
		if sum == nil {
			return nil, nil, &RequestError{Reason: ReasonClientCert, Msg: "this route binds its tokens to the TLS client certificate: connect with one to buy a token"}
		}
		c := l402.ClientCertCaveat(*sum)
		cs = append(cs, c)
		opaque[l402.CondClientCert] = c.Value
	}
	return cs, opaque, nil
}

// checkChargeBindings refuses a charge whose challenge was bound (its
// opaque names an origin or a certificate) when r does not match.
func (p *Proxy) checkChargeBindings(r *http.Request, opaque map[string]string) error {
	if o, ok := opaque[l402.CondOrigin]; ok && o != p.requestOrigin(r) {
		return fmt.Errorf("%w: issued for origin %q", l402.ErrPaymentChallengeInvalid, o)
	}
	if c, ok := opaque[l402.CondClientCert]; ok {
		sum := p.requestCert(r)
		if sum == nil || hex.EncodeToString(sum[:]) != c {
			return fmt.Errorf("%w: issued for another TLS client certificate", l402.ErrPaymentChallengeInvalid)
		}
	}
	return nil
}
