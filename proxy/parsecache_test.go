package proxy

import (
	"context"
	"errors"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

func TestParseCacheBoundedAndFaithful(t *testing.T) {
	store := l402.NewMemoryRootKeyStore()
	m := l402.NewMinter(store, "test")
	c := newParseCache(16)
	for i := range 40 {
		pre, _ := backend.NewPreimage()
		mac, id, err := m.Mint(context.Background(), pre.Hash())
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := l402.NewToken(mac, pre)
		h := tok.Authorization()
		got, err := c.parse(h)
		if err != nil || got.ID != id || got.Preimage != pre {
			t.Fatalf("token %d: %+v %v", i, got, err)
		}
		again, _ := c.parse(h)
		if again != got {
			t.Fatalf("token %d parsed twice", i)
		}
		if len(c.m) > 16 {
			t.Fatalf("cache grew to %d entries, bound 16", len(c.m))
		}
	}
	if _, err := c.parse("L402 garbage:00"); !errors.Is(err, l402.ErrMalformed) {
		t.Fatalf("malformed header: %v", err)
	}
	if _, ok := c.m["L402 garbage:00"]; ok {
		t.Fatal("a failed parse was cached")
	}
}
