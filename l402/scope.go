package l402

import (
	"strconv"
	"strings"
	"time"

	"gopkg.in/macaroon.v2"
)

// Caveats of other servers that a paying client reads to know where a token
// may be sent. ngx_l402 writes them with spaces around "=".
const (
	// ngxRequestPath binds an ngx_l402 token to one exact request path.
	ngxRequestPath = "RequestPath"
	// ngxRequestMethod binds an ngx_l402 token to one method.
	ngxRequestMethod = "RequestMethod"
	// ngxExpiresAt ends an ngx_l402 token after that unix second.
	ngxExpiresAt = "ExpiresAt"
)

// clientCaveat splits a first-party caveat as a client reads it: condition
// and value around the first "=", spaces trimmed, so that both this
// package's "path_prefix=/a/" and ngx_l402's "RequestPath = /a" read.
func clientCaveat(c macaroon.Caveat) (cond, value string, ok bool) {
	if c.Location != "" || len(c.VerificationId) > 0 {
		return "", "", false // third-party caveats say nothing a client can check
	}
	cond, value, ok = strings.Cut(string(c.Id), "=")
	return strings.TrimSpace(cond), strings.TrimSpace(value), ok
}

// scopeOf is the path a token is restricted to, as a cache key suffix: the
// exact path of ngx_l402's RequestPath, else the longest path_prefix, else
// "/".
func scopeOf(mac *macaroon.Macaroon) string {
	scope := "/"
	if mac == nil {
		return scope
	}
	for _, c := range mac.Caveats() {
		cond, value, ok := clientCaveat(c)
		switch {
		case !ok || !strings.HasPrefix(value, "/"):
		case cond == ngxRequestPath:
			return value
		case cond == CondPathPrefix && len(value) > len(scope):
			scope = value
		}
	}
	return scope
}

// usable reports whether a client may present mac for method and path at
// now, judged by the caveats it can read: this package's path_prefix,
// method and <service>_valid_until, ngx_l402's RequestPath, RequestMethod
// and ExpiresAt. expired says the token is past its validity for good, so
// it can be dropped. Caveats a client cannot judge (services, client
// address, capabilities, unknown ones) are left to the server.
//
// A <service>_valid_until caveat is judged only when the token names no
// other service: a client does not know which service a URL belongs to.
func usable(mac *macaroon.Macaroon, method, path string, now time.Time) (ok, expired bool) {
	if mac == nil {
		return false, false
	}
	ok = true
	services := map[string]bool{}
	until := map[string]int64{}
	for _, c := range mac.Caveats() {
		cond, value, isCond := clientCaveat(c)
		if !isCond {
			continue
		}
		switch cond {
		case CondPathPrefix:
			ok = ok && strings.HasPrefix(value, "/") && underPrefix(path, []byte(value))
		case CondMethod:
			ok = ok && inList([]byte(value), method)
		case ngxRequestPath:
			ok = ok && path == value
		case ngxRequestMethod:
			ok = ok && method == value
		case ngxExpiresAt:
			// ngx_l402 accepts the token while now <= ExpiresAt.
			if t, err := strconv.ParseInt(value, 10, 64); err == nil && now.Unix() > t {
				expired = true
			}
		case CondServices:
			for _, s := range strings.Split(value, ",") {
				name, _, _ := strings.Cut(s, ":")
				services[name] = true
			}
		default:
			if svc, found := strings.CutSuffix(cond, CondValidUntilSuffix); found && svc != "" {
				if t, err := strconv.ParseInt(value, 10, 64); err == nil {
					if prev, seen := until[svc]; !seen || t < prev {
						until[svc] = t // repeated caveats only narrow
					}
				}
			}
		}
	}
	for svc, t := range until {
		only := len(services) == 0 || len(services) == 1 && services[svc]
		if only && now.Unix() >= t {
			expired = true
		}
	}
	return ok && !expired, expired
}
