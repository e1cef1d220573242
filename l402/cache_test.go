package l402

import (
	"testing"
	"time"

	"gopkg.in/macaroon.v2"
)

func TestTransportCachedLookup(t *testing.T) {
	f := newFixture(t)
	tr := &Transport{}
	tr.init()
	const o = "http://h"
	root, paid, paidNoSlash, deep := f.mint(t), f.mint(t), f.mint(t), f.mint(t)
	tr.cache.Put(o+"/", root)
	tr.cache.Put(o+"/paid/", paid)
	tr.cache.Put(o+"/api", paidNoSlash)
	tr.cache.Put(o+"/paid/x/y", deep)
	cases := []struct {
		path string
		want *Token
		key  string
	}{
		{"", root, o + "/"},
		{"/", root, o + "/"},
		{"/free", root, o + "/"},
		{"/paid/", paid, o + "/paid/"},
		{"/paid/a/b", paid, o + "/paid/"},
		{"/paid", root, o + "/"},
		{"/api/v1", paidNoSlash, o + "/api"},
		{"/paid/x/y", deep, o + "/paid/x/y"},
		{"/paid/x/y/z", deep, o + "/paid/x/y"},
	}
	for _, c := range cases {
		got, key := tr.cached(o, "GET", c.path)
		if got != c.want || key != c.key {
			t.Errorf("cached(%q) = key %q, want %q", c.path, key, c.key)
		}
	}
	tr.cache.Delete(o + "/")
	if got, _ := tr.cached(o, "GET", "/free"); got != nil {
		t.Error("found a token after deleting the only match")
	}
}

func TestCacheKey(t *testing.T) {
	f := newFixture(t)
	if k := CacheKey("http://h", f.mint(t)); k != "http://h/" {
		t.Errorf("no path caveat: %q", k)
	}
	tok := f.mint(t, PathPrefixCaveat("/a/"), MethodCaveat("GET"), PathPrefixCaveat("/a/b/"))
	if k := CacheKey("http://h", tok); k != "http://h/a/b/" {
		t.Errorf("two path caveats: %q", k)
	}
}

// ngxMacaroon is a macaroon with ngx_l402's caveats, as its module writes
// them: a bare payment hash for identifier, spaces around "=".
func ngxMacaroon(t *testing.T, caveats ...string) *macaroon.Macaroon {
	t.Helper()
	m, err := macaroon.New([]byte("root"), make([]byte, 32), "L402", macaroon.V2)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range caveats {
		if err := m.AddFirstPartyCaveat([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestTransportCacheRespectsCaveats(t *testing.T) {
	f := newFixture(t)
	now := time.Unix(1_800_000_000, 0)
	tr := &Transport{Now: func() time.Time { return now }}
	tr.init()
	const o = "http://h"
	exact := &Token{Macaroon: ngxMacaroon(t, "RequestPath = /doc/a", "RequestMethod = GET", "ExpiresAt = 1800000060")}
	tr.cache.Put(CacheKey(o, exact), exact)
	if k := CacheKey(o, exact); k != o+"/doc/a" {
		t.Fatalf("ngx token key %q", k)
	}
	posts := f.mint(t, PathPrefixCaveat("/api/"), MethodCaveat("POST", "PUT"))
	tr.cache.Put(CacheKey(o, posts), posts)
	cases := []struct {
		method, path string
		want         *Token
	}{
		{"GET", "/doc/a", exact},
		{"POST", "/doc/a", nil},  // RequestMethod
		{"GET", "/doc/a/b", nil}, // RequestPath is exact
		{"GET", "/doc/ab", nil},
		{"GET", "/doc/", nil},
		{"POST", "/api/x", posts},
		{"GET", "/api/x", nil}, // method caveat
	}
	for _, c := range cases {
		if got, _ := tr.cached(o, c.method, c.path); got != c.want {
			t.Errorf("%s %s: got %v, want %v", c.method, c.path, got, c.want)
		}
	}

	// Past ExpiresAt the token is dropped, not only skipped.
	now = now.Add(2 * time.Minute)
	if got, _ := tr.cached(o, "GET", "/doc/a"); got != nil {
		t.Fatal("expired ngx token sent")
	}
	if _, ok := tr.cache.Get(o + "/doc/a"); ok {
		t.Fatal("expired ngx token kept in the cache")
	}
}

func TestUsableValidUntil(t *testing.T) {
	f := newFixture(t)
	now := time.Unix(1_800_000_000, 0)
	cases := []struct {
		name    string
		caveats []Caveat
		expired bool
	}{
		{"one service, passed", []Caveat{ServicesCaveat(Service{Name: "a"}), ValidUntilCaveat("a", now)}, true},
		{"one service, ahead", []Caveat{ServicesCaveat(Service{Name: "a"}), ValidUntilCaveat("a", now.Add(time.Second))}, false},
		{"no services caveat", []Caveat{ValidUntilCaveat("a", now.Add(-time.Second))}, true},
		{"two services, one passed", []Caveat{ServicesCaveat(Service{Name: "a"}, Service{Name: "b"}), ValidUntilCaveat("a", now)}, false},
		{"repeated, earlier wins", []Caveat{ServicesCaveat(Service{Name: "a"}), ValidUntilCaveat("a", now.Add(time.Hour)), ValidUntilCaveat("a", now)}, true},
		{"other service's", []Caveat{ServicesCaveat(Service{Name: "a"}), ValidUntilCaveat("b", now)}, false},
	}
	for _, c := range cases {
		tok := f.mint(t, c.caveats...)
		ok, expired := usable(tok.Macaroon, "GET", "/", now)
		if expired != c.expired || ok == c.expired {
			t.Errorf("%s: ok %v expired %v, want expired %v", c.name, ok, expired, c.expired)
		}
	}
}
