package proxy

import (
	"net/http"
	"strings"

	"github.com/l402kit/l402kit/l402"
)

// Admission: the canonical-request rule, the route and the one credential a
// request carries, and the client address it is counted under.

// admit applies the canonical-request rule to r and finds its route (nil
// when none matches) and credential; false when it has answered 400.
func (p *Proxy) admit(w http.ResponseWriter, r *http.Request) (*Route, string, bool) {
	host, cred, rerr := p.canonical(r)
	if rerr == nil {
		var route *Route
		if route, rerr = p.routes.match(host, r.URL.Path); rerr == nil {
			return route, cred, true
		}
	}
	p.badRequest(w, rerr)
	return nil, "", false
}

// canonical applies the canonical-request rule to r as the upstream will
// receive it (its path as r.URL.EscapedPath gives it, which is what
// ReverseProxy forwards): the path and host must have one reading
// (CanonicalPath, CanonicalHost), no header may override the path, and the
// request may carry at most one L402/LSAT or Payment credential. It
// returns the host in canonical form (r.Host stays as sent, for the
// upstream's X-Forwarded-Host) and that credential, after removing every
// L402/LSAT/Payment Authorization value from r.Header, so none reaches an
// upstream.
func (p *Proxy) canonical(r *http.Request) (string, string, *RequestError) {
	path, err := CanonicalPath(r.URL.EscapedPath())
	if err != nil {
		return "", "", err.(*RequestError)
	}
	if path != r.URL.Path {
		// The path the upstream gets decodes to something else than the
		// one routing would see: refuse rather than guess which counts.
		return "", "", pathErr("escaped and decoded paths disagree")
	}
	host, err := CanonicalHost(r.Host)
	if err != nil {
		return "", "", err.(*RequestError)
	}
	for k := range r.Header {
		if pathOverrideHeader(k) {
			return "", "", &RequestError{Reason: ReasonHeader, Msg: "header " + k + " refused: frameworks read it as the request path"}
		}
	}
	cred, rerr := takeCredential(r.Header)
	return host, cred, rerr
}

func (p *Proxy) badRequest(w http.ResponseWriter, e *RequestError) {
	p.m.badRequests.WithLabelValues(e.Reason).Inc()
	p.log.Info("request refused", "reason", e.Reason, "err", e.Msg)
	writeError(w, http.StatusBadRequest, e.Msg, e.Reason)
}

// dropOwnHeaders removes client-sent headers that some server would read
// as the gate's own X-L402-* headers (see ownHeader).
func dropOwnHeaders(h http.Header) {
	for k := range h {
		if ownHeader(k) {
			delete(h, k)
		}
	}
}

// takeCredential removes every L402, LSAT and Payment Authorization value
// from h, keeping other schemes' values for the upstream, and returns the
// one credential the request carries ("" for none). A request may repeat
// its credential (some clients send an L402 one under both L402 and LSAT)
// but not carry two different ones, which would leave open which one paid;
// nor hide one in a list inside another scheme's value, where a server
// splitting on commas would find it.
func takeCredential(h http.Header) (string, *RequestError) {
	vals := h.Values(l402.HeaderAuthorization)
	if len(vals) == 0 {
		return "", nil
	}
	if len(vals) == 1 && !isCredential(vals[0]) && strings.IndexByte(vals[0], ',') < 0 {
		return "", nil // the common case of another scheme: nothing to do
	}
	var (
		cred, credRest string
		keep           []string
	)
	for _, v := range vals {
		if !isCredential(v) {
			for _, part := range strings.Split(v, ",") {
				if isCredential(part) {
					return "", &RequestError{Reason: ReasonCredentials, Msg: "an L402/LSAT/Payment credential inside another scheme's Authorization value"}
				}
			}
			keep = append(keep, v)
			continue
		}
		_, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
		rest = strings.TrimSpace(rest)
		if l402.IsPaymentAuthorization(v) {
			rest = "Payment " + rest // never the same credential as an L402 one
		}
		if cred != "" && rest != credRest {
			return "", &RequestError{Reason: ReasonCredentials, Msg: "several different L402/LSAT/Payment credentials in one request"}
		}
		if cred == "" {
			cred, credRest = v, rest
		}
	}
	if len(keep) == 0 {
		delete(h, l402.HeaderAuthorization)
	} else {
		h[l402.HeaderAuthorization] = keep
	}
	return cred, nil
}

// isCredential reports whether an Authorization value is one the gate
// reads (and removes): L402, LSAT or Payment.
func isCredential(v string) bool {
	return l402.IsAuthorization(v) || l402.IsPaymentAuthorization(v)
}

// wantsChallenge reports whether the client said it can pay, with
// Accept-Authenticate: L402 (or LSAT, or Payment), possibly among other
// schemes.
func wantsChallenge(r *http.Request) bool {
	for _, v := range r.Header.Values(l402.HeaderAcceptAuthenticate) {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if i := strings.IndexAny(s, " ;"); i >= 0 {
				s = s[:i]
			}
			if strings.EqualFold(s, "L402") || strings.EqualFold(s, "LSAT") || strings.EqualFold(s, l402.SchemePayment) {
				return true
			}
		}
	}
	return false
}
