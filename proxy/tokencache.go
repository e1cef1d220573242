package proxy

import (
	"net/http"
	"sync"

	"github.com/l402kit/l402kit/l402"
)

// parsedTokens remembers parsed Authorization values. A client sends the
// same header on every request, and parsing it (base64, then the macaroon's
// binary form) costs several times what verifying it does, in time and
// allocations. Only the parse is cached: every request is still verified.
type parsedTokens struct {
	mu  sync.RWMutex
	m   map[string]*l402.Token
	max int
}

func newParsedTokens(max int) *parsedTokens {
	return &parsedTokens{m: make(map[string]*l402.Token), max: max}
}

// fromHeader is l402.FromHeader with the cache in front, for the common case
// of a single Authorization header.
func (c *parsedTokens) fromHeader(h http.Header) (*l402.Token, error) {
	vals := h.Values("Authorization")
	if len(vals) != 1 {
		return l402.FromHeader(h)
	}
	c.mu.RLock()
	tok := c.m[vals[0]]
	c.mu.RUnlock()
	if tok != nil {
		return tok, nil
	}
	tok, err := l402.FromHeader(h)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		// Drop an arbitrary eighth: cheap, bounded, and a dropped entry
		// only costs one more parse.
		n := c.max / 8
		for k := range c.m {
			if n <= 0 {
				break
			}
			delete(c.m, k)
			n--
		}
	}
	c.m[vals[0]] = tok
	c.mu.Unlock()
	return tok, nil
}
