package l402

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"gopkg.in/macaroon.v2"
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
