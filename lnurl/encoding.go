package lnurl

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/btcsuite/btcd/btcutil/bech32"

	"github.com/l402kit/l402kit/backend"
)

// hrp is the human-readable part of every bech32 LNURL (LUD-01).
const hrp = "lnurl"

// Encode returns the bech32 LNURL (LUD-01) for rawURL, in upper case as
// LUD-01 recommends for QR codes. LNURLs are longer than BIP-173's 90
// characters, so no length limit applies.
func Encode(rawURL string) (string, error) {
	s, err := bech32.EncodeFromBase256(hrp, []byte(rawURL))
	if err != nil {
		return "", fmt.Errorf("lnurl: %w: encode: %v", backend.ErrInvalid, err)
	}
	return strings.ToUpper(s), nil
}

// Decode returns the URL a bech32 LNURL encodes. It accepts the
// "lightning:" prefix wallets put in links, either letter case (not mixed),
// and any length; it refuses another human-readable part and bech32m
// checksums.
func Decode(lnurl string) (string, error) {
	s := backend.TrimInvoice(lnurl) // a link carries an LNURL as it carries an invoice
	gotHRP, data, err := bech32.DecodeNoLimit(s)
	if err != nil {
		return "", fmt.Errorf("lnurl: %w: malformed LNURL: %v", backend.ErrInvalid, err)
	}
	if gotHRP != hrp {
		return "", fmt.Errorf("lnurl: %w: malformed LNURL: prefix %q, want %q", backend.ErrInvalid, gotHRP, hrp)
	}
	// DecodeNoLimit also accepts bech32m checksums; LUD-01 is plain
	// bech32, and re-encoding the same data tells the two apart.
	if again, err := bech32.Encode(hrp, data); err != nil || again != strings.ToLower(s) {
		return "", fmt.Errorf("lnurl: %w: malformed LNURL: not a bech32 (BIP-173) checksum", backend.ErrInvalid)
	}
	raw, err := bech32.ConvertBits(data, 5, 8, false)
	if err != nil {
		return "", fmt.Errorf("lnurl: %w: malformed LNURL: %v", backend.ErrInvalid, err)
	}
	return string(raw), nil
}

// Address is a lightning address (LUD-16): user@domain.
type Address struct {
	User   string // limited to a-z 0-9 - _ . by LUD-16
	Domain string // host, with a port when not the default
}

// String returns user@domain.
func (a Address) String() string { return a.User + "@" + a.Domain }

// ParseAddress parses a lightning address. Letters are lowered, since LUD-16
// user names are lower case and domains are case-insensitive.
func ParseAddress(s string) (Address, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	user, domain, ok := strings.Cut(s, "@")
	if !ok || user == "" || domain == "" {
		return Address{}, fmt.Errorf("lnurl: %w: malformed lightning address %q: want user@domain", backend.ErrInvalid, s)
	}
	if err := validUser(user); err != nil {
		return Address{}, fmt.Errorf("lnurl: %w: malformed lightning address %q: %v", backend.ErrInvalid, s, err)
	}
	if err := validDomain(domain); err != nil {
		return Address{}, fmt.Errorf("lnurl: %w: malformed lightning address %q: %v", backend.ErrInvalid, s, err)
	}
	return Address{User: user, Domain: domain}, nil
}

// validUser checks the LUD-16 user-name alphabet.
func validUser(u string) error {
	if u == "" {
		return fmt.Errorf("empty user name")
	}
	for _, c := range u {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("user name may hold only a-z 0-9 - _ . (LUD-16), found %q", c)
		}
	}
	return nil
}

// validDomain accepts a host name or IP literal with an optional port, and
// nothing that would change the URL built from it (paths, user info, ...).
func validDomain(d string) error {
	if strings.ContainsAny(d, "/?#@\\ \t%") {
		return fmt.Errorf("domain %q holds characters a host cannot", d)
	}
	u, err := url.Parse("https://" + d)
	if err != nil || u.Host != d || u.Hostname() == "" {
		return fmt.Errorf("domain %q is not a host[:port]", d)
	}
	if p := u.Port(); p == "" && strings.HasSuffix(d, ":") {
		return fmt.Errorf("domain %q has an empty port", d)
	}
	return nil
}

// wellKnownURL is where LUD-16 puts an address's pay parameters: https, or
// http for onion services (which TLS cannot name) and when allowHTTP says so.
func (a Address) wellKnownURL(allowHTTP bool) string {
	scheme := "https"
	if allowHTTP || isOnion(a.Domain) || isLoopback(a.Domain) {
		scheme = "http"
	}
	return scheme + "://" + a.Domain + "/.well-known/lnurlp/" + a.User
}

// isOnion reports whether hostport names a Tor onion service.
func isOnion(hostport string) bool {
	return strings.HasSuffix(hostOnly(hostport), ".onion")
}

// isLoopback reports whether hostport names this machine, where plain HTTP
// never leaves the host.
func isLoopback(hostport string) bool {
	h := hostOnly(hostport)
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.ToLower(h)
	}
	return strings.ToLower(strings.Trim(hostport, "[]"))
}

// checkURL refuses URLs a wallet must not follow: anything but https, except
// http to onion services (LUD-01), to loopback, or where allowHTTP says so.
// what names the URL in the error ("callback", "verify URL", ...).
func checkURL(raw, what string, allowHTTP bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %q is not a URL: %v", what, raw, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s %q has no host", what, raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP && !isOnion(u.Host) && !isLoopback(u.Host) {
			return nil, fmt.Errorf("%s %q is plain http to a clearnet host; LUD-01 wants https (set AllowHTTP to permit it)", what, raw)
		}
	default:
		return nil, fmt.Errorf("%s %q: scheme %q, want https", what, raw, u.Scheme)
	}
	return u, nil
}
