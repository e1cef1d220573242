package l402

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"gopkg.in/macaroon.v2"
)

// A client paying a hold invoice cannot have the preimage yet: the payee
// releases it only when it settles, which a single-use proxy route does
// after serving the request. While its payment is in flight such a client
// presents the macaroon with an empty preimage, "L402 <macaroon>:", and the
// server checks with its node that the payment is held. Nothing else may
// accept that form: without the node's word it proves nothing.

// PendingFromHeader returns the macaroon of an Authorization header in the
// in-flight form "L402 <macaroon>:" (or LSAT), and false for any other
// header, including well-formed tokens with a preimage.
func PendingFromHeader(h http.Header) (*macaroon.Macaroon, bool) {
	return ParsePendingAuthorization(h.Get(HeaderAuthorization))
}

// ParsePendingAuthorization reads one Authorization value in the in-flight
// form, as PendingFromHeader does. Values longer than ParseAuthorization
// reads are refused.
func ParsePendingAuthorization(v string) (*macaroon.Macaroon, bool) {
	if len(v) > maxAuthorizationLen {
		return nil, false
	}
	v = strings.TrimSpace(v)
	scheme, rest, ok := strings.Cut(v, " ")
	if !ok || !isL402Scheme(scheme) {
		return nil, false
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasSuffix(rest, ":") || strings.Count(rest, ":") != 1 {
		return nil, false
	}
	mac, err := decodeMacaroon(strings.TrimSuffix(rest, ":"))
	if err != nil {
		return nil, false
	}
	return mac, true
}

// PendingAuthorization is the in-flight form of an Authorization header for
// mac: "L402 <macaroon>:".
func PendingAuthorization(mac *macaroon.Macaroon) string {
	return SchemeL402 + " " + encodeMacaroon(mac) + ":"
}

// VerifyPending checks a macaroon presented without its preimage: root key,
// signature and every caveat, as Verify does. It returns the identifier,
// whose payment hash the caller must then find held (paid, unsettled) on
// its node before granting anything.
func (v *Verifier) VerifyPending(ctx context.Context, mac *macaroon.Macaroon, r Request) (Identifier, error) {
	if mac == nil {
		return Identifier{}, fmt.Errorf("%w: no macaroon", ErrMalformed)
	}
	rawID := mac.Id()
	id, err := DecodeIdentifier(rawID)
	if err != nil {
		return Identifier{}, err
	}
	if err := v.verifyMacaroon(ctx, mac, rawID, id, r); err != nil {
		return Identifier{}, err
	}
	return id, nil
}

// IsAuthorization reports whether an Authorization header value is an L402
// or LSAT credential (so a proxy can strip it before forwarding).
func IsAuthorization(value string) bool {
	scheme, _, _ := strings.Cut(strings.TrimSpace(value), " ")
	return isL402Scheme(scheme)
}
