package l402

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Caveat conditions this package mints and verifies. The first three are
// Aperture's; the others restrict where and how a token may be used.
const (
	// CondServices: "services=name:tier,name2:tier"; the request's service
	// must be listed.
	CondServices = "services"
	// CondCapabilitiesSuffix: "<service>_capabilities=a,b"; a request to
	// that service must ask for one of the listed capabilities.
	CondCapabilitiesSuffix = "_capabilities"
	// CondValidUntilSuffix: "<service>_valid_until=<unix seconds>"; requests
	// to that service are refused from that second on.
	CondValidUntilSuffix = "_valid_until"
	// CondClientIP: "client_ip=<address or prefix>"; the client's address
	// must be that address or within that prefix.
	CondClientIP = "client_ip"
	// CondPathPrefix: "path_prefix=/some/path"; the request path must be
	// that path or below it, on a whole segment ("/paid" covers "/paid/x",
	// not "/paidx").
	CondPathPrefix = "path_prefix"
	// CondMethod: "method=GET,HEAD"; the request method must be listed.
	CondMethod = "method"
	// CondOrigin: "origin=https://host[:port]"; the request must be
	// addressed to that origin (scheme and host, lower case, the port
	// only when not the scheme's default). One of the token-binding
	// predicates of bLIP-26: a token lifted from one site is refused on
	// another that shares the root keys.
	CondOrigin = "origin"
	// CondClientCert: "tls_client_cert=<hex sha256 of the certificate>";
	// the request must come over TLS with that client certificate (where
	// TLS ends at the server that verifies). bLIP-26's TLS binding: a
	// token stolen without the client's key is useless.
	CondClientCert = "tls_client_cert"
)

// Caveat is a first-party macaroon caveat in the "condition=value" form.
type Caveat struct {
	Condition, Value string
}

// String returns "condition=value", the bytes stored in the macaroon.
func (c Caveat) String() string { return c.Condition + "=" + c.Value }

// ParseCaveat splits "condition=value" at the first "=". The condition must
// be non-empty and free of spaces; the value may hold anything, "=" included.
func ParseCaveat(s string) (Caveat, error) {
	cond, value, ok := strings.Cut(s, "=")
	if !ok {
		return Caveat{}, fmt.Errorf("%w: caveat %q is not of the form condition=value", ErrMalformed, s)
	}
	if cond == "" {
		return Caveat{}, fmt.Errorf("%w: caveat %q has an empty condition", ErrMalformed, s)
	}
	if strings.ContainsAny(cond, " \t\r\n") {
		return Caveat{}, fmt.Errorf("%w: caveat condition %q contains white space", ErrMalformed, cond)
	}
	return Caveat{Condition: cond, Value: value}, nil
}

// Service is one entry of a services caveat. Tier is Aperture's service
// tier; this package records it but grants the same access at every tier.
type Service struct {
	Name string
	Tier int
}

// ServicesCaveat restricts a token to the listed services.
func ServicesCaveat(services ...Service) Caveat {
	var b strings.Builder
	for i, s := range services {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s.Name)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(s.Tier))
	}
	return Caveat{Condition: CondServices, Value: b.String()}
}

// ParseServices reads the value of a services caveat.
func ParseServices(v string) ([]Service, error) {
	var out []Service
	err := eachService([]byte(v), func(name []byte, tier int) bool {
		out = append(out, Service{Name: string(name), Tier: tier})
		return true
	})
	return out, err
}

// CapabilitiesCaveat restricts what a token may do on service to caps.
func CapabilitiesCaveat(service string, caps ...string) Caveat {
	return Caveat{Condition: service + CondCapabilitiesSuffix, Value: strings.Join(caps, ",")}
}

// ValidUntilCaveat makes a token unusable for service from t on (to the
// second, as Aperture encodes it).
func ValidUntilCaveat(service string, t time.Time) Caveat {
	return Caveat{Condition: service + CondValidUntilSuffix, Value: strconv.FormatInt(t.Unix(), 10)}
}

// ClientIPCaveat binds a token to one client address.
func ClientIPCaveat(ip netip.Addr) Caveat {
	return Caveat{Condition: CondClientIP, Value: ip.Unmap().String()}
}

// ClientPrefixCaveat binds a token to a network, such as an office's /24.
func ClientPrefixCaveat(p netip.Prefix) Caveat {
	return Caveat{Condition: CondClientIP, Value: p.Masked().String()}
}

// PathPrefixCaveat restricts a token to request paths starting with prefix.
func PathPrefixCaveat(prefix string) Caveat {
	return Caveat{Condition: CondPathPrefix, Value: prefix}
}

// MethodCaveat restricts a token to the listed HTTP methods.
func MethodCaveat(methods ...string) Caveat {
	return Caveat{Condition: CondMethod, Value: strings.Join(methods, ",")}
}

// OriginCaveat binds a token to one origin, "https://host[:port]".
func OriginCaveat(origin string) Caveat {
	return Caveat{Condition: CondOrigin, Value: strings.ToLower(origin)}
}

// ClientCertCaveat binds a token to the TLS client certificate whose
// SHA-256 (of its DER bytes) is sum.
func ClientCertCaveat(sum [32]byte) Caveat {
	return Caveat{Condition: CondClientCert, Value: hex.EncodeToString(sum[:])}
}

// Validate reports whether the verifier understands c and its value is well
// formed, so a mistake shows when a token is minted rather than when every
// request with it is refused.
func (c Caveat) Validate() error {
	if _, err := ParseCaveat(c.String()); err != nil {
		return err
	}
	// An empty request satisfies nothing, so only format errors and
	// unknown conditions come back as malformed here.
	var r Request
	err := checkCaveat([]byte(c.String()), &r, time.Unix(0, 0))
	if ce, ok := err.(*CaveatError); ok && ce.malformed {
		return fmt.Errorf("%w: %s", ErrMalformed, ce.Error())
	}
	return nil
}

// CaveatError says which caveat refused a request and why. It matches
// ErrCaveat with errors.Is, and ErrExpired too when a validity caveat has
// passed.
type CaveatError struct {
	// Caveat is the caveat as stored in the token ("condition=value").
	Caveat string
	// Reason says what did not hold.
	Reason string

	expired   bool
	malformed bool
}

func (e *CaveatError) Error() string {
	return "l402: caveat " + strconv.Quote(e.Caveat) + " not satisfied: " + e.Reason
}

// Is makes errors.Is(err, ErrCaveat) hold for every caveat failure and
// errors.Is(err, ErrExpired) for an expiry.
func (e *CaveatError) Is(target error) bool {
	return target == ErrCaveat || (e.expired && target == ErrExpired)
}

func caveatErr(raw []byte, reason string) *CaveatError {
	return &CaveatError{Caveat: string(raw), Reason: reason}
}

func malformedCaveat(raw []byte, reason string) *CaveatError {
	return &CaveatError{Caveat: string(raw), Reason: reason, malformed: true}
}

// checkCaveat checks one raw caveat against r. Every caveat of a token must
// hold, so a later caveat of the same condition can only narrow what an
// earlier one allowed (two validity caveats: the earlier time wins; two path
// prefixes: both apply). It works on bytes and allocates only on failure,
// since it runs for every caveat of every request.
func checkCaveat(raw []byte, r *Request, now time.Time) error {
	cond, value, ok := bytes.Cut(raw, []byte{'='})
	if !ok || len(cond) == 0 {
		return malformedCaveat(raw, "not of the form condition=value")
	}
	switch string(cond) {
	case CondServices:
		found := false
		err := eachService(value, func(name []byte, _ int) bool {
			if string(name) == r.Service {
				found = true
				return false
			}
			return true
		})
		if err != nil {
			return malformedCaveat(raw, err.Error())
		}
		if !found {
			if r.Service == "" {
				return caveatErr(raw, "request names no service")
			}
			return caveatErr(raw, "service "+strconv.Quote(r.Service)+" not allowed")
		}
		return nil
	case CondClientIP:
		return checkClientIP(raw, value, r.ClientIP)
	case CondPathPrefix:
		if len(value) == 0 || value[0] != '/' {
			return malformedCaveat(raw, "prefix must start with /")
		}
		if !underPrefix(r.Path, value) {
			return caveatErr(raw, "path outside the allowed prefix")
		}
		if hasDotSegment(r.Path) {
			// A path like /paid/../admin matches /paid/ but names
			// something else; the caller must pass the cleaned path.
			return caveatErr(raw, "path has dot segments")
		}
		return nil
	case CondOrigin:
		if bytes.Index(value, []byte("://")) <= 0 {
			return malformedCaveat(raw, "not an origin (scheme://host)")
		}
		if r.Origin == "" {
			return caveatErr(raw, "request origin unknown")
		}
		if !strings.EqualFold(string(value), r.Origin) {
			return caveatErr(raw, "origin "+strconv.Quote(r.Origin)+" not allowed")
		}
		return nil
	case CondClientCert:
		if len(value) != 64 || !isLowerHex(value) {
			return malformedCaveat(raw, "not a lower-case hex SHA-256")
		}
		if r.ClientCert == nil {
			return caveatErr(raw, "no TLS client certificate")
		}
		if hex.EncodeToString(r.ClientCert[:]) != string(value) {
			return caveatErr(raw, "another TLS client certificate")
		}
		return nil
	case CondMethod:
		if len(value) == 0 {
			return malformedCaveat(raw, "empty method list")
		}
		if !inList(value, r.Method) {
			return caveatErr(raw, "method "+strconv.Quote(r.Method)+" not allowed")
		}
		return nil
	}
	if svc, ok := bytes.CutSuffix(cond, []byte(CondValidUntilSuffix)); ok && len(svc) > 0 {
		until, ok := parseUnix(value)
		if !ok {
			return malformedCaveat(raw, "value is not a unix time")
		}
		if string(svc) != r.Service {
			return nil // restricts another service
		}
		if now.Unix() >= until {
			return &CaveatError{Caveat: string(raw), Reason: "token expired", expired: true}
		}
		return nil
	}
	if svc, ok := bytes.CutSuffix(cond, []byte(CondCapabilitiesSuffix)); ok && len(svc) > 0 {
		if len(value) == 0 {
			return malformedCaveat(raw, "empty capability list")
		}
		if string(svc) != r.Service {
			return nil
		}
		if r.Capability == "" {
			// Fail closed: a token limited to some capabilities is not
			// valid where the request's capability is unknown.
			return caveatErr(raw, "request names no capability")
		}
		if !inList(value, r.Capability) {
			return caveatErr(raw, "capability "+strconv.Quote(r.Capability)+" not allowed")
		}
		return nil
	}
	return malformedCaveat(raw, "unknown condition")
}

func checkClientIP(raw, value []byte, ip netip.Addr) error {
	var (
		p   netip.Prefix
		err error
	)
	if bytes.IndexByte(value, '/') >= 0 {
		p, err = netip.ParsePrefix(string(value))
	} else {
		var a netip.Addr
		a, err = netip.ParseAddr(string(value))
		if err == nil {
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
	}
	if err != nil {
		return malformedCaveat(raw, "not an IP address or prefix")
	}
	if !ip.IsValid() {
		return caveatErr(raw, "client address unknown")
	}
	if !p.Contains(ip.Unmap()) {
		return caveatErr(raw, "client address not allowed")
	}
	return nil
}

// eachService calls f for each name:tier of a services value until f
// returns false. The rest of the list is still checked: a malformed caveat
// must fail closed even when an entry before the flaw matches.
func eachService(v []byte, f func(name []byte, tier int) bool) error {
	if len(v) == 0 {
		return fmt.Errorf("no services listed")
	}
	more := true
	for len(v) > 0 {
		var item []byte
		item, v, _ = bytes.Cut(v, []byte{','})
		name, tierB, ok := bytes.Cut(item, []byte{':'})
		if !ok || len(name) == 0 {
			return fmt.Errorf("service entry %q is not name:tier", item)
		}
		tier, ok := parseUnix(tierB)
		if !ok || tier < 0 || tier > 1<<16 {
			return fmt.Errorf("service entry %q has a bad tier", item)
		}
		if more {
			more = f(name, int(tier))
		}
	}
	return nil
}

// parseUnix parses a decimal integer without allocating.
func parseUnix(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func inList(list []byte, s string) bool {
	for len(list) > 0 {
		var item []byte
		item, list, _ = bytes.Cut(list, []byte{','})
		if string(item) == s {
			return true
		}
	}
	return false
}

// underPrefix reports whether path is prefix or below it, on a whole
// segment: "/paid" covers "/paid" and "/paid/x", not "/paidx".
func underPrefix(path string, prefix []byte) bool {
	if len(path) < len(prefix) || path[:len(prefix)] != string(prefix) {
		return false
	}
	return prefix[len(prefix)-1] == '/' || len(path) == len(prefix) || path[len(prefix)] == '/'
}

func hasDotSegment(p string) bool {
	for len(p) > 0 {
		var seg string
		seg, p, _ = strings.Cut(p, "/")
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
