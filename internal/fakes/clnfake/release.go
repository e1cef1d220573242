package clnfake

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultVersion is the Core Lightning release the fake plays when
// Config.Version is empty.
const DefaultVersion = "v26.06.6"

// release is a Core Lightning version as year and month (v26.06.6 is 26, 6).
type release struct{ year, month int }

func (r release) atLeast(year, month int) bool {
	return r.year > year || r.year == year && r.month >= month
}

// parseRelease reads "v26.06", "v26.06.6", "v24.11rc1" or "v26.06-258-g...".
func parseRelease(v string) (release, error) {
	s := strings.TrimPrefix(v, "v")
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return release{}, fmt.Errorf("clnfake: version %q is not vYY.MM", v)
	}
	y, err := strconv.Atoi(parts[0])
	if err != nil {
		return release{}, fmt.Errorf("clnfake: version %q: %w", v, err)
	}
	m := parts[1]
	for i, c := range m {
		if c < '0' || c > '9' {
			m = m[:i]
			break
		}
	}
	mo, err := strconv.Atoi(m)
	if err != nil {
		return release{}, fmt.Errorf("clnfake: version %q: %w", v, err)
	}
	return release{y, mo}, nil
}
