package backend

import (
	"fmt"
	"os"
	"strings"
)

// ReadSecret resolves a secret named in a backend URL or flag, so secrets
// need not sit on a command line where every user of the machine can read
// them:
//
//	env:NAME   the value of environment variable NAME
//	file:PATH  the contents of PATH (surrounding whitespace trimmed)
//	anything else is the secret itself
//
// A missing variable or unreadable file is ErrInvalid, naming the variable or
// path but never the value.
func ReadSecret(v string) (string, error) {
	switch {
	case strings.HasPrefix(v, "env:"):
		name := strings.TrimPrefix(v, "env:")
		s, ok := os.LookupEnv(name)
		if !ok || s == "" {
			return "", fmt.Errorf("%w: environment variable %s is not set", ErrInvalid, name)
		}
		return s, nil
	case strings.HasPrefix(v, "file:"):
		path := strings.TrimPrefix(v, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%w: read secret file: %v", ErrInvalid, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return v, nil
}
