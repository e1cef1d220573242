package l402

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestApertureChallenge reads a challenge minted by Aperture (see
// testdata/README.md) and checks the identifier layout and caveat format
// agree with this package's.
func TestApertureChallenge(t *testing.T) {
	raw, err := os.ReadFile("testdata/aperture-challenge.txt")
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		h.Add("WWW-Authenticate", line)
	}
	chs, err := ParseChallenges(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(chs) != 2 || chs[0].Scheme != SchemeLSAT || chs[1].Scheme != SchemeL402 {
		t.Fatalf("challenges %+v", chs)
	}
	mac := chs[1].Macaroon
	id, err := DecodeIdentifier(mac.Id())
	if err != nil {
		t.Fatal(err)
	}
	const wantHash = "5a1a1560f2682235df0381d9e6120ca36ccf2437209038e1cd4943640e63073c"
	if id.Version != 0 || id.PaymentHash.String() != wantHash {
		t.Fatalf("identifier %+v, want version 0 and hash %s", id, wantHash)
	}
	if mac.Location() != "lsat" {
		t.Fatalf("location %q", mac.Location())
	}
	cavs := mac.Caveats()
	if len(cavs) != 1 {
		t.Fatalf("%d caveats", len(cavs))
	}
	c, err := ParseCaveat(string(cavs[0].Id))
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := ParseServices(c.Value)
	if err != nil || c.Condition != CondServices || len(svcs) != 1 || svcs[0] != (Service{"configured-service", 0}) {
		t.Fatalf("caveat %+v services %+v err %v", c, svcs, err)
	}
	if c != ServicesCaveat(Service{"configured-service", 0}) {
		t.Fatalf("ServicesCaveat writes %q, Aperture wrote %q", ServicesCaveat(Service{"configured-service", 0}), c)
	}
	// Our verifier has no root key for it: refused as unknown, after the
	// preimage check, which a wrong preimage fails first.
	err = NewVerifier(NewMemoryRootKeyStore()).Verify(context.Background(), &Token{Macaroon: mac}, Request{})
	if !errors.Is(err, ErrWrongPreimage) {
		t.Fatalf("err = %v", err)
	}
}
