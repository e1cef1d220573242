package proxy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// The canonical-request rule: the request the gate authorizes is exactly the
// request the upstream receives. Front servers, frameworks and file servers
// disagree on how to read a path (nginx decodes %2e and resolves dot
// segments; Go's ServeMux cleans and redirects; Tomcat drops ";params";
// IIS reads "\" as "/" and strips trailing dots; some apply Unicode
// compatibility mapping, so "／" becomes "/"). A gate that routes on one
// reading while the upstream applies another gives paid content away. So
// instead of cleaning a path and forwarding the original, the gate refuses,
// with 400 and a reason, every path that any of those readings could take
// to a different resource. Both the reverse proxy (and middleware) and the
// forward-auth endpoint apply the same checks, CanonicalPath and
// CanonicalHost.

// MaxPathLen bounds the escaped path CanonicalPath accepts.
const MaxPathLen = 8 << 10

// Reasons in the JSON body of a 400 answer.
const (
	// ReasonPath: the path could be read differently by some server.
	ReasonPath = "noncanonical_path"
	// ReasonHost: the host is malformed or ambiguous.
	ReasonHost = "noncanonical_host"
	// ReasonForwardAuth: the forward-auth headers describing the original
	// request are missing, repeated or ambiguous.
	ReasonForwardAuth = "bad_forward_auth_request"
	// ReasonCredentials: several different L402/LSAT credentials, or one
	// hidden inside another scheme's Authorization value.
	ReasonCredentials = "ambiguous_credentials"
	// ReasonHeader: a header the gate owns (X-L402-*) or one that
	// frameworks read as the request path (X-Original-URL, X-Rewrite-URL)
	// was sent by the client where it cannot be dropped.
	ReasonHeader = "forbidden_header"
)

// RequestError is a request the gate refuses with 400 because it is not
// canonical. Reason is one of the Reason* constants, Msg says what exactly.
type RequestError struct {
	Reason string
	Msg    string
}

func (e *RequestError) Error() string { return e.Msg }

func pathErr(format string, args ...any) *RequestError {
	return &RequestError{Reason: ReasonPath, Msg: "path refused: " + fmt.Sprintf(format, args...)}
}

// CanonicalPath checks a request path in its escaped form, as sent on the
// wire (the request target up to "?"), and returns it decoded. It refuses
// a path that some server could map to another resource than the decoded
// path names:
//
//   - it must start with "/" and be at most MaxPathLen bytes;
//   - dot segments "." and "..", literal or encoded, and segments ending in
//     "." or a space (Windows servers drop those);
//   - empty segments ("//"), except the trailing slash;
//   - "\" and ";" (segment parameters), literal or encoded;
//   - percent-encodings of "/", "%" (double encoding), "?", "#", control
//     characters, and of any unreserved character (A-Z a-z 0-9 - . _ ~),
//     which no canonical URI encodes, so "/p%61id" is not "/paid" here;
//   - malformed percent-encodings ("%2", "%u002e", "%zz");
//   - raw control characters, raw bytes above 0x7e, and other characters
//     RFC 3986 does not allow in a path (space, " < > [ ] ^ ` { | });
//   - encoded bytes that are not valid UTF-8 (overlong forms such as
//     %c0%ae, surrogates, truncated sequences), non-ASCII control, format
//     and space characters, and characters that Unicode compatibility
//     normalization (NFKC) turns into ASCII ("／" U+FF0F, "．" U+FF0E,
//     "‥" U+2025, ...).
//
// Percent-encoded UTF-8 text and encodings of other reserved characters
// ("%20", "%2B", "%40") are accepted: they decode to one reading everywhere.
func CanonicalPath(escaped string) (string, error) {
	if escaped == "" || escaped[0] != '/' {
		return "", pathErr("the path must start with /")
	}
	if len(escaped) > MaxPathLen {
		return "", pathErr("the path is longer than %d bytes", MaxPathLen)
	}
	var (
		dec        []byte // decoded path, built only when an escape occurs
		segStart   = 1    // start of the current segment in escaped
		decSegFrom = 1    // start of the current segment in the decoded path
		nonASCII   = false
	)
	if strings.IndexByte(escaped, '%') >= 0 {
		dec = make([]byte, 0, len(escaped))
		dec = append(dec, '/')
	}
	endSegment := func(i int) error {
		seg := escaped[segStart:i]
		dseg := seg
		if dec != nil {
			dseg = string(dec[decSegFrom:])
		}
		last := i == len(escaped)
		switch {
		case dseg == "" && !last:
			return pathErr("empty path segment (//)")
		case dseg == "." || dseg == "..":
			if seg != dseg {
				return pathErr("percent-encoded dot segment %q", seg)
			}
			return pathErr("dot segment %q", seg)
		case strings.HasSuffix(dseg, ".") || strings.HasSuffix(dseg, " "):
			return pathErr("segment %q ends in a dot or a space, which some servers drop", seg)
		}
		if nonASCII {
			if err := checkUnicodeSegment(seg, dseg); err != nil {
				return err
			}
		}
		return nil
	}
	for i := 1; i < len(escaped); i++ {
		c := escaped[i]
		switch {
		case c == '/':
			if err := endSegment(i); err != nil {
				return "", err
			}
			segStart, nonASCII = i+1, false
			if dec != nil {
				dec = append(dec, '/')
				decSegFrom = len(dec)
			}
			continue
		case c == '%':
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return "", pathErr("malformed percent-encoding at byte %d", i)
			}
			b := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			enc := escaped[i : i+3]
			switch {
			case b == '.':
				return "", pathErr("percent-encoded dot %s", enc)
			case b == '/':
				return "", pathErr("percent-encoded slash %s", enc)
			case b == '\\':
				return "", pathErr("percent-encoded backslash %s", enc)
			case b == '%':
				return "", pathErr("percent-encoded percent sign %s (double encoding)", enc)
			case b == ';':
				return "", pathErr("percent-encoded segment parameter %s", enc)
			case b == '?' || b == '#':
				return "", pathErr("percent-encoded %q, which a server that re-encodes the path would read as a delimiter", b)
			case b < 0x20 || b == 0x7f:
				return "", pathErr("percent-encoded control character %s", enc)
			case isUnreserved(b):
				return "", pathErr("percent-encoded %q, which a canonical path does not encode", b)
			case b >= 0x80:
				nonASCII = true
			}
			dec = append(dec, b)
			i += 2
			continue
		case c < 0x20 || c == 0x7f:
			return "", pathErr("control character 0x%02x", c)
		case c >= 0x80:
			return "", pathErr("raw byte 0x%02x: non-ASCII must be percent-encoded", c)
		case c == '\\':
			return "", pathErr("backslash")
		case c == ';':
			return "", pathErr("segment parameter (;)")
		case !isPchar(c):
			return "", pathErr("character %q must be percent-encoded", c)
		}
		if dec != nil {
			dec = append(dec, c)
		}
	}
	if err := endSegment(len(escaped)); err != nil {
		return "", err
	}
	if dec != nil {
		return string(dec), nil
	}
	return escaped, nil
}

// checkUnicodeSegment checks the decoded non-ASCII text of one segment.
func checkUnicodeSegment(seg, dseg string) error {
	if !utf8.ValidString(dseg) {
		return pathErr("segment %q is not valid UTF-8 (overlong, surrogate or truncated)", seg)
	}
	for _, r := range dseg {
		if r < utf8.RuneSelf {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) {
			return pathErr("segment %q holds the invisible character %U", seg, r)
		}
		if lookalike[r] {
			return pathErr("segment %q holds %U, which some servers read as a slash or a dot", seg, r)
		}
		var buf [utf8.UTFMax]byte
		n := utf8.EncodeRune(buf[:], r)
		for _, b := range norm.NFKC.Bytes(buf[:n]) {
			if b < utf8.RuneSelf {
				return pathErr("segment %q holds %U, which Unicode normalization reads as %q", seg, r, b)
			}
		}
	}
	return nil
}

// lookalike holds characters that NFKC leaves alone but that other
// mappings (Windows best-fit code pages, IDNA, confusable folding) turn into
// "/", "\" or ".".
var lookalike = map[rune]bool{
	'\u2215': true, // division slash
	'\u2044': true, // fraction slash
	'\u29F8': true, // big solidus
	'\u29F9': true, // big reverse solidus
	'\u2216': true, // set minus
	'\u3002': true, // ideographic full stop
	'\uFF61': true, // halfwidth ideographic full stop
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// isPchar: RFC 3986 pchar without "%" (handled apart) and ";" (refused).
func isPchar(c byte) bool {
	return isUnreserved(c) || strings.IndexByte("!$&'()*+,=:@", c) >= 0
}

// CanonicalHost returns the one form in which the gate compares hosts, the
// request's Host (or X-Forwarded-Host) as sent: lower case, without the
// port and without one trailing dot; IPv6 literals keep their brackets. It
// refuses hosts some server could read as another name: non-ASCII names
// (send the IDNA A-label, xn--...), characters outside letters, digits,
// "-", "_" and ".", empty labels ("a..b"), lists ("a, b"), user info
// ("u@h"), a bad port, and unbracketed IPv6. The empty host (an HTTP/1.0
// request without one) stays empty and matches only routes without a host.
func CanonicalHost(host string) (string, error) {
	if host == "" {
		return "", nil
	}
	bad := func(why string) (string, error) {
		return "", &RequestError{Reason: ReasonHost, Msg: fmt.Sprintf("host %q refused: %s", truncate(host, 64), why)}
	}
	if len(host) > 261 {
		return bad("longer than a DNS name and port")
	}
	name, port := host, ""
	if host[0] == '[' {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return bad("unterminated IPv6 literal")
		}
		a, err := netip.ParseAddr(host[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return bad("not an IPv6 literal")
		}
		rest := host[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return bad("text after the IPv6 literal")
			}
			port = rest[1:]
			if err := checkPort(port); err != nil {
				return bad(err.Error())
			}
		}
		return "[" + a.String() + "]", nil
	}
	if i := strings.IndexByte(host, ':'); i >= 0 {
		name, port = host[:i], host[i+1:]
		if strings.IndexByte(port, ':') >= 0 {
			return bad("IPv6 literals need brackets")
		}
		if err := checkPort(port); err != nil {
			return bad(err.Error())
		}
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" || strings.HasSuffix(name, ".") {
		return bad("empty name or label")
	}
	lower := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		case c == '.':
			if i == 0 || name[i-1] == '.' {
				return bad("empty label")
			}
		case 'A' <= c && c <= 'Z':
			lower = false
		case c >= utf8.RuneSelf:
			return bad("non-ASCII name: send the IDNA A-label (xn--...)")
		default:
			return bad(fmt.Sprintf("character %q", c))
		}
	}
	if !lower {
		name = strings.ToLower(name)
	}
	return name, nil
}

func checkPort(p string) error {
	if p == "" {
		return nil // "host:" means the default port (RFC 3986 6.2.3)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || p[0] == '0' || p[0] == '+' {
		return fmt.Errorf("bad port %q", truncate(p, 8))
	}
	return nil
}

// routeHost brings a configured route host to the form CanonicalHost gives
// requests; a Unicode name becomes its IDNA A-label.
func routeHost(h string) (string, error) {
	if h == "" {
		return "", nil
	}
	ascii := h
	for i := 0; i < len(h); i++ {
		if h[i] >= utf8.RuneSelf {
			var err error
			if ascii, err = idna.Lookup.ToASCII(strings.TrimSuffix(h, ".")); err != nil {
				return "", fmt.Errorf("proxy: route host %q: %w", h, err)
			}
			break
		}
	}
	hasPort := strings.Contains(ascii, "]:") || !strings.HasPrefix(ascii, "[") && strings.Contains(ascii, ":")
	if hasPort {
		return "", fmt.Errorf("proxy: route host %q: give the host without a port", h)
	}
	c, err := CanonicalHost(ascii)
	if err != nil {
		return "", fmt.Errorf("proxy: route host %q: %w", h, err)
	}
	return c, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// ownHeader reports whether a header name reads as one of the gate's own
// X-L402-* headers on some server: CGI, PHP and servers that hand headers
// to them fold case and turn "-" into "_" (X_L402_Paid and X-L402-Paid
// become the same HTTP_X_L402_PAID), so every non-alphanumeric byte counts
// as "-" here.
func ownHeader(name string) bool {
	return foldedHasPrefix(name, "x-l402-")
}

// pathOverrideHeader reports whether a header name is one that frameworks
// take as the request path (Symfony and Zend read X-Original-URL and
// X-Rewrite-URL; IIS URL Rewrite sets them), in any folding.
func pathOverrideHeader(name string) bool {
	return foldedEqual(name, "x-original-url") || foldedEqual(name, "x-rewrite-url")
}

func fold(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return c
	}
	return '-'
}

func foldedHasPrefix(name, lowerPrefix string) bool {
	if len(name) < len(lowerPrefix) {
		return false
	}
	for i := 0; i < len(lowerPrefix); i++ {
		if fold(name[i]) != lowerPrefix[i] {
			return false
		}
	}
	return true
}

func foldedEqual(name, lower string) bool {
	return len(name) == len(lower) && foldedHasPrefix(name, lower)
}
