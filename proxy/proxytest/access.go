package proxytest

import (
	"testing"
	"time"

	"gopkg.in/macaroon.v2"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

func flowChallengeThenAccess(t *testing.T, f *flow) {
	mac, pre := f.paidToken(t, "/paid/a")
	f.ok(t, "/paid/a", auth(t, mac, pre), "true")
	// The same token in the legacy forms, and again: it is not single-use.
	f.ok(t, "/paid/b", map[string]string{"Authorization": "LSAT " + encode(t, mac) + ":" + pre.String()}, "true")
	f.ok(t, "/paid/c", map[string]string{"Authorization": `LSAT macaroon="` + encode(t, mac) + `", preimage="` + pre.String() + `"`}, "true")
}

func flowForged(t *testing.T, f *flow) {
	mac, pre := f.paidToken(t, "/paid/f")
	// Same identifier, different root key: the signature cannot verify.
	forged, err := macaroon.New([]byte("not the root key at all, forged!"), mac.Id(), mac.Location(), macaroon.V2)
	if err != nil {
		t.Fatal(err)
	}
	f.refused(t, "/paid/f", auth(t, forged, pre), "bad_signature")
	// A genuine macaroon whose signature was altered in transit.
	raw, _ := mac.MarshalBinary()
	raw[len(raw)-1] ^= 0xff // flip a bit of the signature
	var flipped macaroon.Macaroon
	if err := flipped.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	f.refused(t, "/paid/f", auth(t, &flipped, pre), "bad_signature")
}

func flowWrongPreimage(t *testing.T, f *flow) {
	ch := f.challenge(t, "/paid/w", nil)
	wrong, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	f.refused(t, "/paid/w", auth(t, ch.Macaroon, wrong), "wrong_preimage")
}

func flowExpired(t *testing.T, f *flow) {
	mac, pre := f.paidToken(t, "/short/x")
	// valid_until is in whole seconds; wait until it has surely passed.
	time.Sleep(2100 * time.Millisecond)
	f.refused(t, "/short/x", auth(t, mac, pre), "expired")
}

func flowWrongPath(t *testing.T, f *flow) {
	mac, pre := f.paidToken(t, "/paid/p")
	f.ok(t, "/paid/p", auth(t, mac, pre), "true")
	f.refused(t, "/other/p", auth(t, mac, pre), "caveat")
}

func flowOptionalFree(t *testing.T, f *flow) {
	f.ok(t, "/podcast/ep1", nil, "false")
}

func flowOptionalPaid(t *testing.T, f *flow) {
	ch := f.challenge(t, "/podcast/ep2", map[string]string{l402.HeaderAcceptAuthenticate: "L402"})
	f.challenge(t, "/podcast/ep2", map[string]string{l402.HeaderAcceptAuthenticate: "LSAT"})
	pre := f.pay(t, ch.Invoice)
	f.ok(t, "/podcast/ep2", auth(t, ch.Macaroon, pre), "true")
}
