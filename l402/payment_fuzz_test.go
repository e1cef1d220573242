package l402

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// fuzzCharge is a charge challenge and its credential, made by an issuer
// with a fixed secret, on an invoice signed by a throwaway key.
func fuzzCharge(f *testing.F) (*ChargeIssuer, PaymentChallenge, backend.Preimage) {
	pre, err := backend.NewPreimage()
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1764000000, 0)
	iss := &ChargeIssuer{Secret: []byte("fuzz secret, thirty-two bytes..."), Realm: "fuzz", Network: "regtest"}
	ch, err := iss.Challenge(ChargeOffer{
		Invoice: testInvoice(f, pre.Hash(), backend.Sat(5), now), PaymentHash: pre.Hash(), Amount: backend.Sat(5),
		Expires: now.Add(time.Hour), Opaque: map[string]string{"route": "r"},
	})
	if err != nil {
		f.Fatal(err)
	}
	return iss, ch, pre
}

// FuzzParsePaymentAuthorization: "Authorization: Payment ..." as clients
// (or attackers) send it. Parsing never panics; what parses verifies only
// when it echoes a challenge the issuer made and pays it; an accepted
// credential written back reads the same.
func FuzzParsePaymentAuthorization(f *testing.F) {
	iss, ch, pre := fuzzCharge(f)
	// A proof for another challenge of the same issuer must not verify.
	_, other, _ := fuzzCharge(f)
	if c := NewChargeCredential(other, pre); func() bool { _, err := iss.Verify(&c, time.Unix(1764000000, 0)); return err == nil }() {
		f.Fatal("a preimage verified for another challenge")
	}
	good, err := NewChargeCredential(ch, pre).Authorization()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		good, "payment " + good[len("Payment "):], good + "==", "Payment ", "Payment !!!",
		"Payment e30", "Payment eyJjaGFsbGVuZ2UiOnt9fQ", "L402 abc:00", "",
	} {
		f.Add(s)
	}
	now := time.Unix(1764000000, 0)
	f.Fuzz(func(t *testing.T, v string) {
		cred, err := ParsePaymentAuthorization(v)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%q: error %v matches no sentinel", v, err)
			}
			return
		}
		// Seeds come from the process that made them, with its own
		// preimage; what must hold is that whatever verifies was issued
		// under the secret and is paid by its preimage.
		if vc, err := iss.Verify(cred, now); err == nil {
			req, _ := cred.Challenge.ChargeRequest()
			if !cred.Challenge.VerifyID(iss.Secret) || !vc.Preimage.Matches(vc.PaymentHash) ||
				req.MethodDetails.PaymentHash != vc.PaymentHash.String() {
				t.Fatalf("%q verified without binding or payment", v)
			}
		}
		back, err := cred.Authorization()
		if err != nil {
			return // a payload that is not canonical JSON (duplicate keys, ...)
		}
		again, err := ParsePaymentAuthorization(back)
		if err != nil || again.Challenge != cred.Challenge {
			t.Fatalf("%q: written back as %q, read %+v %v", v, back, again, err)
		}
	})
}

// FuzzParsePaymentChallenges: WWW-Authenticate values carrying Payment
// challenges, as servers (or attackers posing as them) send them. Every
// challenge read has its required parameters, and writing one and reading
// it back gives it unchanged.
func FuzzParsePaymentChallenges(f *testing.F) {
	_, ch, _ := fuzzCharge(f)
	for _, s := range []string{
		ch.Header(), `L402 macaroon="AgE", invoice="lnbc1", ` + ch.Header(),
		`Payment id="a,b", realm="Payment id=c", method="lightning", intent="charge", request="cQ"`,
		`payment ID=a, Realm=r, METHOD=lightning, intent=charge, ReQuEsT=cQ, id=b`,
		`Payment id="a", realm="r", Payment id="b"`, `Payment "`, ",,,", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		chs, err := ParsePaymentChallenges(http.Header{HeaderWWWAuthenticate: {v}})
		if err == nil && len(chs) == 0 {
			t.Fatal("no error and no challenge")
		}
		for _, c := range chs {
			if c.ID == "" && c.Realm == "" && c.Request == "" && c.Method == "" && c.Intent == "" {
				continue // present but empty: a server's mistake, read as sent
			}
			back, err := ParsePaymentChallenges(http.Header{HeaderWWWAuthenticate: {c.Header()}})
			if headerSafe(c.ID+c.Realm+c.Method+c.Intent+c.Request+c.Expires+c.Digest+c.Description+c.Opaque) !=
				c.ID+c.Realm+c.Method+c.Intent+c.Request+c.Expires+c.Digest+c.Description+c.Opaque {
				continue // control characters are dropped on writing
			}
			if err != nil || len(back) != 1 || back[0] != c {
				t.Fatalf("%q: %+v written as %q, read %+v %v", v, c, c.Header(), back, err)
			}
		}
		if _, _, err := func() (ChargeRequest, *backend.DecodedInvoice, error) {
			if len(chs) == 0 {
				return ChargeRequest{}, nil, nil
			}
			return chs[0].Charge()
		}(); err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrPaymentUnsupported) {
			t.Fatalf("%q: Charge error %v matches no sentinel", v, err)
		}
	})
}
