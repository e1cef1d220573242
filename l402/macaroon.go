package l402

import (
	"encoding/base64"
	"fmt"
	"strings"

	"gopkg.in/macaroon.v2"
)

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
