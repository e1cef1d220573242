package proxy

import (
	"bytes"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

func TestDerivedIDCarriesExpiry(t *testing.T) {
	now := time.Now()
	for _, exp := range []time.Time{{}, now, now.Add(time.Hour).Add(300 * time.Millisecond), time.Unix(1, 0)} {
		id, err := newDerivedID(backend.PaymentHash{1}, exp)
		if err != nil {
			t.Fatal(err)
		}
		got := derivedExpiry(id.TokenID)
		switch {
		case exp.IsZero() && !got.IsZero():
			t.Fatalf("no expiry read as %v", got)
		case !exp.IsZero() && (got.Before(exp) || got.Sub(exp) >= time.Second):
			t.Fatalf("expiry %v read as %v", exp, got)
		}
	}
	// A random id (a stored-key token's) never reads as a time past the
	// year 9999.
	if got := derivedExpiry(l402.TokenID(bytes.Repeat([]byte{0xff}, 32))); !got.IsZero() {
		t.Fatalf("all-ones id read as %v", got)
	}
}

func TestDerivedKeyDependsOnMasterAndID(t *testing.T) {
	m1, m2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	a, b := l402.TokenID{1}, l402.TokenID{2}
	k := deriveRootKey(m1, a)
	if len(k) != l402.RootKeySize || !bytes.Equal(k, deriveRootKey(m1, a)) {
		t.Fatal("derivation not stable or not RootKeySize")
	}
	if bytes.Equal(k, deriveRootKey(m2, a)) || bytes.Equal(k, deriveRootKey(m1, b)) {
		t.Fatal("derived key does not depend on master and id")
	}
}
