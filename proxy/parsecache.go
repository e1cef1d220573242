package proxy

import (
	"sync"

	"github.com/l402kit/l402kit/l402"
)

// parseCache remembers parsed Authorization values. A client sends the
// same header on every request, and parsing it (base64, then the macaroon's
// binary form) costs several times what verifying it does, in time and
// allocations. Only the parse is cached: every request is still verified.
type parseCache struct {
	mu  sync.RWMutex
	m   map[string]*l402.Token
	max int
}

func newParseCache(max int) *parseCache {
	return &parseCache{m: make(map[string]*l402.Token), max: max}
}

// parse is l402.ParseAuthorization with the cache in front.
func (c *parseCache) parse(v string) (*l402.Token, error) {
	c.mu.RLock()
	tok := c.m[v]
	c.mu.RUnlock()
	if tok != nil {
		return tok, nil
	}
	tok, err := l402.ParseAuthorization(v)
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
	c.m[v] = tok
	c.mu.Unlock()
	return tok, nil
}
