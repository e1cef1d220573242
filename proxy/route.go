package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

// Mode says who must pay on a route.
type Mode int

const (
	// ModeRequired challenges every request without a valid token. It is
	// the zero value, so a route someone forgot to give a mode is paid.
	ModeRequired Mode = iota
	// ModeOptional challenges only clients that ask for it with
	// Accept-Authenticate; others get the free variant.
	ModeOptional
	// ModeFree lets everything through, marked unpaid.
	ModeFree
)

func (m Mode) String() string {
	switch m {
	case ModeRequired:
		return "required"
	case ModeOptional:
		return "optional"
	case ModeFree:
		return "free"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// ParseMode reads "required", "optional" or "free".
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "required":
		return ModeRequired, nil
	case "optional":
		return ModeOptional, nil
	case "free":
		return ModeFree, nil
	}
	return 0, fmt.Errorf("proxy: unknown mode %q (want required, optional or free)", s)
}

// Route prices the requests whose host and path it matches.
type Route struct {
	// Name is the service name in the tokens' services caveat; tokens
	// bought for one route are refused on another. Default: the path prefix.
	Name string
	// Host matches the request's host (without port); empty matches any.
	Host string
	// PathPrefix matches the start of the request path; default "/".
	PathPrefix string
	// Upstream receives the route's requests in the reverse-proxy form;
	// the middleware form ignores it.
	Upstream *url.URL
	// Price of a token. PriceFunc, when set, decides per request instead.
	Price     backend.MilliSat
	PriceFunc func(*http.Request) (backend.MilliSat, error)
	// Memo is the invoice description; default "l402kit: <Name>".
	Memo string
	// TokenLifetime, when set, adds a <Name>_valid_until caveat.
	TokenLifetime time.Duration
	// InvoiceExpiry is how long a challenge's invoice can be paid; default
	// 10 minutes.
	InvoiceExpiry time.Duration
	// Caveats are added to every token of the route, after the route's own
	// services and path caveats.
	Caveats []l402.Caveat
	Mode    Mode
	// SingleUse serves each token once (see the package doc).
	SingleUse bool
	// Bundle, when set, makes the route prepaid: a payment buys units
	// that requests draw from (see Bundle).
	Bundle *Bundle
	// Schemes the route offers: SchemeL402, SchemePayment or both; empty
	// means Config.Schemes. A Payment charge buys one request whatever
	// SingleUse says; its invoice asks the price rounded up to a whole
	// satoshi, the unit of a charge request. A prepaid route (Bundle)
	// sells its bundles with L402 only.
	Schemes []string
	// BindOrigin binds the route's tokens to the origin the challenge was
	// asked at (an origin= caveat, bLIP-26): a token is refused at any
	// other origin, such as another host sharing the root keys. A Payment
	// charge is bound the same way. See Config.PublicOrigin for how the
	// origin is read.
	BindOrigin bool
	// BindClientCert binds the route's tokens (and charges) to the TLS
	// client certificate the challenge request came with (a
	// tls_client_cert= caveat, bLIP-26): a token stolen without the
	// client's key is refused. A challenge request without a certificate
	// is answered 403 (ReasonClientCert). It needs TLS to end at the gate,
	// or a front that passes the certificate on (Config.ClientCertHeader).
	BindClientCert bool
}

func (r *Route) normalize() error {
	if r.PathPrefix == "" {
		r.PathPrefix = "/"
	}
	if !strings.HasPrefix(r.PathPrefix, "/") {
		return fmt.Errorf("proxy: route path prefix %q must start with /", r.PathPrefix)
	}
	if r.Name == "" {
		r.Name = strings.Trim(r.PathPrefix, "/")
		if r.Name == "" {
			r.Name = "root"
		}
		r.Name = strings.ReplaceAll(r.Name, "/", "-")
	}
	if strings.ContainsAny(r.Name, ",:= ") {
		return fmt.Errorf("proxy: route name %q may not contain , : = or spaces (it goes into a services caveat)", r.Name)
	}
	if r.Mode != ModeFree && r.Price <= 0 && r.PriceFunc == nil {
		return fmt.Errorf("proxy: route %s is %s but has no price", r.Name, r.Mode)
	}
	if r.Price < 0 {
		return fmt.Errorf("proxy: route %s has a negative price", r.Name)
	}
	if r.InvoiceExpiry == 0 {
		r.InvoiceExpiry = 10 * time.Minute
	}
	if r.Bundle != nil {
		if r.SingleUse || r.Mode != ModeRequired {
			return fmt.Errorf("proxy: route %s: a bundle route is required and not single-use", r.Name)
		}
		b := *r.Bundle // the caller's copy stays as it was
		if err := b.normalize(r.Name); err != nil {
			return err
		}
		r.Bundle = &b
	}
	if r.Memo == "" {
		r.Memo = "l402kit: " + r.Name
	}
	if _, err := CanonicalPath(r.PathPrefix); err != nil {
		return fmt.Errorf("proxy: route %s: prefix %q: %w", r.Name, r.PathPrefix, err)
	}
	h, err := routeHost(r.Host)
	if err != nil {
		return err
	}
	r.Host = h
	for _, c := range r.Caveats {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("proxy: route %s: caveat %q: %w", r.Name, c.Condition, err)
		}
	}
	return nil
}

func (r *Route) price(req *http.Request) (backend.MilliSat, error) {
	if r.PriceFunc != nil {
		p, err := r.PriceFunc(req)
		if err == nil && p <= 0 {
			err = fmt.Errorf("price function gave %s", p)
		}
		return p, err
	}
	return r.Price, nil
}

// pathMatches reports whether path is under prefix, on a segment boundary
// when the prefix does not end in a slash ("/api" matches "/api/x" and
// "/api", not "/apix").
func pathMatches(prefix, path string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return strings.HasSuffix(prefix, "/") || len(path) == len(prefix) || path[len(prefix)] == '/'
}

// router finds the route for a request: exact host before any host, then the
// longest prefix.
type router struct {
	routes    []*Route
	mixedCase bool // some prefix has an upper-case letter
}

func newRouter(routes []Route) (router, error) {
	rt := make([]*Route, 0, len(routes))
	names := map[string]bool{}
	for i := range routes {
		r := routes[i]
		if err := r.normalize(); err != nil {
			return router{}, err
		}
		if names[r.Name] {
			return router{}, fmt.Errorf("proxy: two routes named %q", r.Name)
		}
		names[r.Name] = true
		rt = append(rt, &r)
	}
	sort.SliceStable(rt, func(i, j int) bool {
		if (rt[i].Host != "") != (rt[j].Host != "") {
			return rt[i].Host != ""
		}
		return len(rt[i].PathPrefix) > len(rt[j].PathPrefix)
	})
	out := router{routes: rt}
	for _, r := range rt {
		out.mixedCase = out.mixedCase || hasUpper(r.PathPrefix)
	}
	return out, nil
}

// match finds the route for a canonical host (CanonicalHost) and decoded
// path (CanonicalPath). A path that reaches a different route when letter
// case is ignored is refused: on a case-insensitive upstream (Windows and
// macOS file systems, many routers) "/PAID/x" is "/paid/x", and routing it
// to another route's price would give it away.
func (rt router) match(host, path string) (*Route, *RequestError) {
	var found *Route
	for _, route := range rt.routes {
		if route.Host != "" && route.Host != host {
			continue
		}
		if pathMatches(route.PathPrefix, path) {
			found = route
			break
		}
	}
	if !rt.mixedCase && !hasUpper(path) {
		return found, nil
	}
	for _, route := range rt.routes {
		if route.Host != "" && route.Host != host {
			continue
		}
		if route == found {
			break // later routes are less specific than the one found
		}
		n := len(route.PathPrefix)
		if len(path) >= n && strings.EqualFold(path[:n], route.PathPrefix) &&
			(strings.HasSuffix(route.PathPrefix, "/") || len(path) == n || path[n] == '/') {
			return nil, &RequestError{Reason: ReasonPath, Msg: fmt.Sprintf("path refused: it differs only in letter case from the prefix %q of route %s", route.PathPrefix, route.Name)}
		}
	}
	return found, nil
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}
