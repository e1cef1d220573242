package l402

import (
	"strings"
	"sync"
)

// TokenCache keeps paid tokens so they are reused for later requests. Keys
// are URL prefixes: the origin ("https://host:port") followed by the
// token's path prefix caveat (ngx_l402's exact RequestPath for its tokens),
// or by "/" for a token without one, so a server whose routes sell
// separate tokens ("/paid/", "/podcast/") gets one token per route rather
// than one that keeps being replaced. A Transport sends a cached token only
// to requests its readable caveats allow (see Transport).
type TokenCache interface {
	Get(key string) (*Token, bool)
	Put(key string, t *Token)
	Delete(key string)
}

// MemoryTokenCache is a TokenCache in process memory, safe for concurrent
// use.
type MemoryTokenCache struct {
	mu sync.Mutex
	m  map[string]*Token
}

// NewMemoryTokenCache returns an empty cache.
func NewMemoryTokenCache() *MemoryTokenCache {
	return &MemoryTokenCache{m: make(map[string]*Token)}
}

// Get implements TokenCache.
func (c *MemoryTokenCache) Get(key string) (*Token, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[key]
	return t, ok
}

// Put implements TokenCache.
func (c *MemoryTokenCache) Put(key string, t *Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*Token)
	}
	c.m[key] = t
}

// Delete implements TokenCache.
func (c *MemoryTokenCache) Delete(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}

// CacheKey is the TokenCache key of tok for origin: origin plus the path
// the token is restricted to (the exact path of an ngx_l402 RequestPath
// caveat, else the longest path prefix caveat), or plus "/".
func CacheKey(origin string, tok *Token) string {
	if tok == nil {
		return origin + "/"
	}
	return origin + scopeOf(tok.Macaroon)
}

// cached finds the token for a request: the one stored under the longest
// prefix of path among the path itself, its ancestors (with and without
// trailing slash) and "/", whose readable caveats allow method and path.
// Tokens found expired are dropped.
func (t *Transport) cached(origin, method, path string) (*Token, string) {
	if path == "" {
		path = "/"
	}
	now := t.now()
	for p := path; ; {
		if tok, ok := t.cache.Get(origin + p); ok && tok != nil {
			ok, expired := usable(tok.Macaroon, method, path, now)
			if expired {
				t.drop(origin+p, tok)
			}
			if ok {
				return tok, origin + p
			}
		}
		if p == "/" {
			return nil, ""
		}
		if strings.HasSuffix(p, "/") {
			p = p[:len(p)-1] // "/a/b/" -> "/a/b"
		} else {
			p = p[:strings.LastIndexByte(p, '/')+1] // "/a/b" -> "/a/"
		}
		if p == "" {
			p = "/"
		}
	}
}

// drop removes tok from the cache under key, unless another request
// replaced it there meanwhile.
func (t *Transport) drop(key string, tok *Token) {
	if cur, ok := t.cache.Get(key); ok && sameCredential(cur, tok) {
		t.cache.Delete(key)
	}
}
