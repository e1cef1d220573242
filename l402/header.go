package l402

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"gopkg.in/macaroon.v2"

	"github.com/l402kit/l402kit/backend"
)

// Header names and schemes of the protocol.
const (
	// HeaderAcceptAuthenticate is sent by clients that can pay, so routes
	// where payment is optional challenge them (value "L402" or "LSAT").
	HeaderAcceptAuthenticate = "Accept-Authenticate"
	// HeaderWWWAuthenticate carries the challenges of a 402 response.
	HeaderWWWAuthenticate = "WWW-Authenticate"
	// HeaderAuthorization carries the token of a paid request.
	HeaderAuthorization = "Authorization"

	// SchemeL402 is the protocol's authentication scheme.
	SchemeL402 = "L402"
	// SchemeLSAT is the protocol's former name, still sent by older
	// clients (Loop, Pool, early Aperture).
	SchemeLSAT = "LSAT"

	// ParamInFlight is this project's extension to the challenge: a server
	// whose challenge carries inflight="1" accepts the macaroon alone,
	// "L402 <macaroon>:" (see PendingAuthorization), while its payment is
	// in flight. Its single-use routes on hold invoices need it: the
	// server settles the invoice, releasing the preimage, only after
	// serving the request. RFC 7235 has clients ignore auth-params they do
	// not know, and it is written last, after macaroon and invoice, where
	// the regular-expression readers of Aperture's client and ngx_l402
	// pass over it.
	ParamInFlight = "inflight"
)

// maxAuthorizationLen bounds what ParseAuthorization reads; a macaroon with
// a few dozen caveats stays far below it.
const maxAuthorizationLen = 16 << 10

// ErrNoCredentials: a request carries no L402 or LSAT Authorization header,
// as opposed to carrying a malformed one.
var ErrNoCredentials = errors.New("l402: no L402 or LSAT authorization")

// ErrNoChallenge: a response carries no L402 or LSAT challenge at all (it
// may carry challenges of other schemes), as opposed to a malformed one.
var ErrNoChallenge = errors.New("l402: no L402 or LSAT challenge")

// Challenge is what a server offers in a 402 response: a macaroon and the
// invoice whose preimage completes it.
type Challenge struct {
	// Scheme is the scheme the challenge was read under ("L402" or
	// "LSAT"); writers ignore it.
	Scheme   string
	Macaroon *macaroon.Macaroon
	Invoice  string
	// InFlight says the server accepts the macaroon alone while the
	// payment is in flight (ParamInFlight); only single-use routes on
	// hold invoices set it.
	InFlight bool
	// TokenForm says the challenge was read in bLIP-26's form,
	// version="0", token="...", rather than macaroon="..."; writers
	// ignore it (see TokenHeader).
	TokenForm bool

	// encoded is the macaroon as the server sent it, so that a token is
	// presented in the very encoding its server reads.
	encoded string
}

// Header returns the WWW-Authenticate value for scheme:
// `L402 macaroon="<base64>", invoice="<bolt11>"`, followed by
// `, inflight="1"` when c.InFlight.
func (c Challenge) Header(scheme string) string {
	v := scheme + ` macaroon="` + encodeMacaroon(c.Macaroon) + `", invoice=` + quote(c.Invoice)
	if c.InFlight {
		v += ", " + ParamInFlight + `="1"`
	}
	return v
}

// TokenVersion is the version parameter of bLIP-26's challenge form.
const TokenVersion = "0"

// TokenHeader returns the WWW-Authenticate value for scheme in bLIP-26's
// token-agnostic form: `L402 version="0", token="<base64>",
// invoice="<bolt11>"`, followed by `, inflight="1"` when c.InFlight. The
// specification has servers and clients keep accepting macaroon=, but
// clients written before it read only macaroon=: Header's form stays the
// default, this one is sent beside it.
func (c Challenge) TokenHeader(scheme string) string {
	v := scheme + ` version="` + TokenVersion + `", token="` + encodeMacaroon(c.Macaroon) + `", invoice=` + quote(c.Invoice)
	if c.InFlight {
		v += ", " + ParamInFlight + `="1"`
	}
	return v
}

// AddChallenges adds both challenges to h: L402 first, then LSAT with the
// same values for older clients.
func AddChallenges(h http.Header, c Challenge) {
	h.Add(HeaderWWWAuthenticate, c.Header(SchemeL402))
	h.Add(HeaderWWWAuthenticate, c.Header(SchemeLSAT))
}

// ParseChallenges reads the L402 and LSAT challenges of a response, in the
// order sent; challenges of other schemes (Basic, Bearer, Aperture's newer
// Payment, ...) are skipped, whether on their own header line or in a list
// with ours, and so are auth-params it does not know. Both forms are read:
// macaroon="..." and bLIP-26's version="0", token="..." (TokenForm). It
// fails only when no
// L402 or LSAT challenge can be read, saying why (ErrMalformed, or
// ErrNoChallenge when there is none).
//
// The macaroon's identifier is not read here: servers lay it out
// differently (see PaymentHashOf), and a client needs only the invoice to
// pay.
func ParseChallenges(h http.Header) ([]Challenge, error) {
	var (
		out      []Challenge
		firstErr error
	)
	for _, line := range h.Values(HeaderWWWAuthenticate) {
		chs, err := parseChallengeList(line)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		for _, ch := range chs {
			if !isL402Scheme(ch.scheme) {
				continue
			}
			c, err := challengeFrom(ch)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, fmt.Errorf("%w in %s", ErrNoChallenge, HeaderWWWAuthenticate)
	}
	return out, nil
}

func challengeFrom(ch rawChallenge) (Challenge, error) {
	c := Challenge{Scheme: strings.ToUpper(ch.scheme)}
	macB64, ok := ch.param("macaroon")
	if !ok {
		// bLIP-26's token-agnostic form: version="0", token="<base64>".
		if macB64, ok = ch.param("token"); !ok {
			return c, fmt.Errorf("%w: %s challenge has no macaroon (nor a bLIP-26 token)", ErrMalformed, c.Scheme)
		}
		c.TokenForm = true
	}
	if v, ok := ch.param("version"); ok && v != TokenVersion {
		return c, fmt.Errorf("%w: %s challenge has version %q, want %q", ErrMalformed, c.Scheme, v, TokenVersion)
	}
	inv, ok := ch.param("invoice")
	if !ok || inv == "" {
		return c, fmt.Errorf("%w: %s challenge has no invoice", ErrMalformed, c.Scheme)
	}
	mac, err := decodeMacaroon(macB64)
	if err != nil {
		return c, err
	}
	c.Macaroon, c.Invoice = mac, inv
	if isBase64Text(macB64) {
		// base64 decoders skip line breaks; only clean text is echoed.
		c.encoded = macB64
	}
	if v, ok := ch.param(ParamInFlight); ok && v == "1" {
		c.InFlight = true
	}
	return c, nil
}

// Authorization returns the header value presenting t:
// "L402 <base64 macaroon>:<hex preimage>". A token bought with a parsed
// challenge presents the macaroon as its server wrote it (servers differ
// in which base64 they read).
func (t *Token) Authorization() string {
	mac := t.encoded
	if mac == "" {
		mac = encodeMacaroon(t.Macaroon)
	}
	return SchemeL402 + " " + mac + ":" + t.Preimage.String()
}

// FromHeader reads the token of a request: the first Authorization value
// with scheme L402 or LSAT (clients of Aperture send both). It returns
// ErrNoCredentials when there is none, and the first value's parse error
// when none can be read.
func FromHeader(h http.Header) (*Token, error) {
	var firstErr error
	for _, v := range h.Values(HeaderAuthorization) {
		scheme, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !isL402Scheme(scheme) {
			continue
		}
		tok, err := ParseAuthorization(v)
		if err == nil {
			return tok, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, ErrNoCredentials
}

// ParseAuthorization reads one Authorization value in any form clients send:
//
//	L402 <macaroon>:<preimage hex>
//	LSAT <macaroon>:<preimage hex>
//	LSAT macaroon="<macaroon>", preimage="<preimage hex>"
//
// with the macaroon in standard or URL-safe base64, padded or not. Errors
// match ErrMalformed and say what was wrong, never quoting the preimage.
func ParseAuthorization(value string) (*Token, error) {
	if len(value) > maxAuthorizationLen {
		return nil, fmt.Errorf("%w: authorization is %d bytes, more than %d", ErrMalformed, len(value), maxAuthorizationLen)
	}
	value = strings.TrimSpace(value)
	scheme, rest, _ := strings.Cut(value, " ")
	if !isL402Scheme(scheme) {
		return nil, fmt.Errorf("%w: authorization scheme is not L402 or LSAT", ErrMalformed)
	}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return nil, fmt.Errorf("%w: authorization has no credentials", ErrMalformed)
	}
	var macB64, preHex string
	if looksLikeParams(rest) {
		chs, err := parseChallengeList(scheme + " " + rest)
		if err != nil {
			return nil, err
		}
		if len(chs) != 1 {
			return nil, fmt.Errorf("%w: authorization holds more than one credential", ErrMalformed)
		}
		var ok bool
		if macB64, ok = chs[0].param("macaroon"); !ok {
			return nil, fmt.Errorf("%w: authorization has no macaroon parameter", ErrMalformed)
		}
		if preHex, ok = chs[0].param("preimage"); !ok {
			return nil, fmt.Errorf("%w: authorization has no preimage parameter", ErrMalformed)
		}
	} else {
		i := strings.LastIndexByte(rest, ':')
		if i < 0 {
			return nil, fmt.Errorf("%w: authorization is not <macaroon>:<preimage>", ErrMalformed)
		}
		macB64, preHex = rest[:i], rest[i+1:]
		if strings.ContainsRune(macB64, ',') {
			return nil, fmt.Errorf("%w: several macaroons in one authorization are not supported", ErrMalformed)
		}
	}
	if macB64 == "" {
		return nil, fmt.Errorf("%w: empty macaroon", ErrMalformed)
	}
	if len(preHex) != 64 {
		return nil, fmt.Errorf("%w: preimage is %d characters, want 64 hex", ErrMalformed, len(preHex))
	}
	var pre backend.Preimage
	if _, err := hex.Decode(pre[:], []byte(preHex)); err != nil {
		// hex's error quotes the offending byte only, never the value.
		return nil, fmt.Errorf("%w: preimage is not hex", ErrMalformed)
	}
	mac, err := decodeMacaroon(macB64)
	if err != nil {
		return nil, err
	}
	return NewToken(mac, pre)
}

// looksLikeParams tells the legacy `macaroon="...", preimage="..."` form
// from `<base64>:<hex>`: base64 never contains a quote.
func looksLikeParams(s string) bool {
	return strings.Contains(s, `"`) || strings.HasPrefix(strings.ToLower(s), "macaroon=")
}

func isL402Scheme(s string) bool {
	return strings.EqualFold(s, SchemeL402) || strings.EqualFold(s, SchemeLSAT)
}

func encodeMacaroon(m *macaroon.Macaroon) string {
	if m == nil {
		return ""
	}
	b, err := m.MarshalBinary()
	if err != nil {
		// macaroon.v2 fails only for a macaroon of unknown version,
		// which New never makes.
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}

// decodeMacaroon accepts standard and URL-safe base64, padded or not, since
// clients differ.
func decodeMacaroon(s string) (*macaroon.Macaroon, error) {
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		if strings.ContainsAny(s, "+/") {
			return nil, fmt.Errorf("%w: macaroon mixes standard and URL-safe base64", ErrMalformed)
		}
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: macaroon is not base64: %v", ErrMalformed, err)
	}
	var mac macaroon.Macaroon
	if err := mac.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: macaroon: %v", ErrMalformed, err)
	}
	return &mac, nil
}

// isBase64Text reports whether s holds nothing but base64 characters of
// either alphabet and padding.
func isBase64Text(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("+/-_=", c) >= 0) {
			return false
		}
	}
	return s != ""
}

func quote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// rawChallenge is one challenge (or credentials) of RFC 7235 syntax.
type rawChallenge struct {
	scheme  string
	token68 string
	params  [][2]string // lower-cased names, in order
}

func (c rawChallenge) param(name string) (string, bool) {
	for _, p := range c.params {
		if p[0] == name {
			return p[1], true
		}
	}
	return "", false
}

// parseChallengeList reads a WWW-Authenticate (or Authorization) value as
// RFC 7235 lays it out: challenges separated by commas, each a scheme
// followed by a token68 or by comma-separated name=value parameters, values
// plain or quoted. A comma followed by a word that is not followed by "="
// starts the next challenge. What it could read before an error is
// returned with the error, so one odd challenge does not hide ours.
func parseChallengeList(s string) ([]rawChallenge, error) {
	p := &challengeParser{s: s}
	var out []rawChallenge
	for {
		p.skip(" \t,")
		if p.eof() {
			return out, nil
		}
		scheme := p.token()
		if scheme == "" {
			return out, fmt.Errorf("%w: bad character at offset %d of an authentication header", ErrMalformed, p.i)
		}
		ch := rawChallenge{scheme: scheme}
		p.skip(" \t")
		for !p.eof() && p.s[p.i] != ',' {
			start := p.i
			name := p.token()
			p.skip(" \t")
			if name == "" || p.eof() || p.s[p.i] != '=' || p.token68End(start) {
				// token68 credentials: "Bearer abc+/=="
				p.i = start
				ch.token68 = p.until(" \t,")
				p.skip(" \t")
				break
			}
			p.i++ // '='
			p.skip(" \t")
			val, err := p.value()
			if err != nil {
				return out, err
			}
			ch.params = append(ch.params, [2]string{strings.ToLower(name), val})
			p.skip(" \t")
			if p.eof() || p.s[p.i] != ',' {
				if !p.eof() {
					return out, fmt.Errorf("%w: expected a comma at offset %d of an authentication header", ErrMalformed, p.i)
				}
				break
			}
			// Another parameter, or the next challenge?
			save := p.i
			p.skip(" \t,")
			look := p.i
			p.token()
			p.skip(" \t")
			isParam := !p.eof() && p.s[p.i] == '=' && !p.token68End(look)
			if isParam {
				p.i = look
				continue
			}
			p.i = save
			break
		}
		out = append(out, ch)
	}
}

type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) eof() bool { return p.i >= len(p.s) }

func (p *challengeParser) skip(set string) {
	for p.i < len(p.s) && strings.IndexByte(set, p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *challengeParser) until(set string) string {
	start := p.i
	for p.i < len(p.s) && strings.IndexByte(set, p.s[p.i]) < 0 {
		p.i++
	}
	return p.s[start:p.i]
}

// token reads an RFC 7230 token.
func (p *challengeParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTchar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// token68End reports whether the "=" at the parser's position, right after
// a word begun at start, is only base64 padding: a run of "=" directly
// after the word and followed by nothing but white space up to a comma or
// the end. "name=value" and "name = value" are parameters.
func (p *challengeParser) token68End(start int) bool {
	if p.i == start || !isTchar(p.s[p.i-1]) {
		return false // white space between the word and "="
	}
	j := p.i
	for j < len(p.s) && p.s[j] == '=' {
		j++
	}
	if j == p.i {
		return false
	}
	for j < len(p.s) && (p.s[j] == ' ' || p.s[j] == '\t') {
		j++
	}
	return j == len(p.s) || p.s[j] == ','
}

// value reads a parameter value: a quoted string (with backslash escapes)
// or a bare word up to a comma or white space.
func (p *challengeParser) value() (string, error) {
	if p.eof() || p.s[p.i] != '"' {
		return p.until(" \t,"), nil
	}
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case '"':
			p.i++
			return b.String(), nil
		case '\\':
			p.i++
			if p.i >= len(p.s) {
				return "", fmt.Errorf("%w: unterminated quoted string in an authentication header", ErrMalformed)
			}
			c = p.s[p.i]
		}
		b.WriteByte(c)
		p.i++
	}
	return "", fmt.Errorf("%w: unterminated quoted string in an authentication header", ErrMalformed)
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
