package l402

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/l402kit/l402kit/backend"
)

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
