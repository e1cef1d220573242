package lnd

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/l402kit/l402kit/backend"
)

// loadSecretBytes resolves a macaroon or certificate setting: env:NAME and
// file:PATH first (backend.ReadSecret's forms), then hex, then a file path.
// A file is read raw because macaroons are binary; a file holding hex text is
// decoded, since some tools store macaroons that way.
func loadSecretBytes(what, v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, fmt.Errorf("%w: %s is empty", backend.ErrInvalid, what)
	}
	if strings.HasPrefix(v, "file:") {
		return readSecretFile(what, strings.TrimPrefix(v, "file:"))
	}
	if strings.HasPrefix(v, "env:") {
		s, err := backend.ReadSecret(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		v = strings.TrimSpace(s)
	}
	if strings.HasPrefix(v, "-----BEGIN") {
		return []byte(v), nil
	}
	if b, ok := decodeHex(v); ok {
		return b, nil
	}
	return readSecretFile(what, v)
}

func readSecretFile(what, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s: %s is neither hex nor an existing file", backend.ErrInvalid, what, path)
		}
		return nil, fmt.Errorf("%w: %s: %v", backend.ErrInvalid, what, err)
	}
	if h, ok := decodeHex(strings.TrimSpace(string(b))); ok {
		return h, nil
	}
	return b, nil
}

// decodeHex accepts only long, even-length, all-hex strings, so a short
// relative path made of hex digits (say "cafe") is still read as a path.
func decodeHex(s string) ([]byte, bool) {
	if len(s) < 32 || len(s)%2 != 0 {
		return nil, false
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, false
	}
	return b, true
}
