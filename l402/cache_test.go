package l402

import "testing"

func TestTransportCachedLookup(t *testing.T) {
	tr := &Transport{}
	tr.init()
	const o = "http://h"
	root, paid, paidNoSlash, deep := &Token{}, &Token{}, &Token{}, &Token{}
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
		got, key := tr.cached(o, c.path)
		if got != c.want || key != c.key {
			t.Errorf("cached(%q) = key %q, want %q", c.path, key, c.key)
		}
	}
	tr.cache.Delete(o + "/")
	if got, _ := tr.cached(o, "/free"); got != nil {
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
