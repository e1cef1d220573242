package l402

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt11"
)

// canonicalText canonicalizes JSON text through Canonical.
func canonicalText(t *testing.T, in string) (string, error) {
	t.Helper()
	b, err := Canonical(json.RawMessage(in))
	return string(b), err
}

// TestCanonicalRFC8785 checks Canonical against RFC 8785's own examples:
// the sample of section 3.2.2, the sorting sample of section 3.2.3 and
// the number samples of Appendix B (IEEE 754 bits and the expected text).
func TestCanonicalRFC8785(t *testing.T) {
	in := `{
  "numbers": [333333333.33333329, 1E30, 4.50,
              2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`
	want := `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`
	if got, err := canonicalText(t, in); err != nil || got != want {
		t.Errorf("3.2.2: %s %v\nwant %s", got, err, want)
	}
	sortIn := `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`
	sortWant := "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\"," +
		"\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"
	if got, err := canonicalText(t, sortIn); err != nil || got != sortWant {
		t.Errorf("3.2.3: %s %v\nwant %s", got, err, sortWant)
	}
	for _, n := range [][2]string{
		{"0000000000000000", "0"}, {"8000000000000000", "0"}, {"0000000000000001", "5e-324"},
		{"8000000000000001", "-5e-324"}, {"7fefffffffffffff", "1.7976931348623157e+308"},
		{"ffefffffffffffff", "-1.7976931348623157e+308"}, {"4340000000000000", "9007199254740992"},
		{"c340000000000000", "-9007199254740992"}, {"4430000000000000", "295147905179352830000"},
		{"44b52d02c7e14af5", "9.999999999999997e+22"}, {"44b52d02c7e14af6", "1e+23"},
		{"44b52d02c7e14af7", "1.0000000000000001e+23"}, {"444b1ae4d6e2ef4e", "999999999999999700000"},
		{"444b1ae4d6e2ef4f", "999999999999999900000"}, {"444b1ae4d6e2ef50", "1e+21"},
		{"3eb0c6f7a0b5ed8c", "9.999999999999997e-7"}, {"3eb0c6f7a0b5ed8d", "0.000001"},
		{"41b3de4355555553", "333333333.3333332"}, {"41b3de4355555554", "333333333.33333325"},
		{"41b3de4355555555", "333333333.3333333"}, {"41b3de4355555556", "333333333.3333334"},
		{"41b3de4355555557", "333333333.33333343"}, {"becbf647612f3696", "-0.0000033333333333333333"},
		{"43143ff3c1cb0959", "1424953923781206.2"},
	} {
		b, _ := hex.DecodeString(n[0])
		lit := strconv.FormatFloat(math.Float64frombits(binary.BigEndian.Uint64(b)), 'g', -1, 64)
		if got, err := canonicalText(t, "["+lit+"]"); err != nil || got != "["+n[1]+"]" {
			t.Errorf("Appendix B %s (%s): %s %v, want [%s]", n[0], lit, got, err, n[1])
		}
	}
	// NaN and Infinity have no JSON form: Appendix B's two error rows.
	for _, v := range []float64{math.NaN(), math.Inf(1)} {
		if _, err := Canonical(v); err == nil {
			t.Errorf("Canonical(%v) succeeded", v)
		}
	}
}

// TestCanonicalNotEncodingJSON: the four ways encoding/json alone writes
// other bytes than RFC 8785, which a challenge's HMAC and a peer's request
// would then disagree on.
func TestCanonicalNotEncodingJSON(t *testing.T) {
	v := struct {
		Z string  `json:"z"`
		A string  `json:"a"`
		N float64 `json:"n"`
	}{Z: "Q&A <b> \u2028", A: "x", N: 1e21}
	plain, _ := json.Marshal(v)
	got, err := Canonical(v)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\"a\":\"x\",\"n\":1e+21,\"z\":\"Q&A <b> \u2028\"}"
	if string(got) != want || string(plain) == want {
		t.Fatalf("Canonical %s, encoding/json %s, want %s", got, plain, want)
	}
}

// apertureVectors is the cross-implementation vector file Aperture
// publishes (see testdata/README.md).
type apertureVectors struct {
	HMACSecretHex    string `json:"hmacSecretHex"`
	Canonicalization []struct {
		Name, Input, Canonical string
		Error                  bool
	} `json:"canonicalization"`
	Base64URL []struct {
		Name, Encoded, DecodedHex string
		Error                     bool
	} `json:"base64url"`
	ChallengeHeaders []struct {
		Name   string
		Params PaymentChallenge `json:"params"`
		Header string
		Parsed PaymentChallenge `json:"parsed"`
	} `json:"challengeHeaders"`
	ChallengeLists []struct {
		Name       string
		Header     string
		Challenges []PaymentChallenge
		Error      bool
	} `json:"challengeLists"`
	ChallengeIDs []struct {
		Name   string
		Params PaymentChallenge
	} `json:"challengeIds"`
	Credentials []struct {
		Name           string
		CredentialJSON string `json:"credentialJson"`
		Header         string
		Error          bool
	} `json:"credentials"`
	Receipts []struct {
		Name        string
		ReceiptJSON string `json:"receiptJson"`
		Header      string
	} `json:"receipts"`
}

func readApertureVectors(t *testing.T) apertureVectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/aperture-mpp-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v apertureVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Canonicalization) == 0 || len(v.Credentials) == 0 || len(v.ChallengeIDs) == 0 {
		t.Fatal("vector file has no vectors")
	}
	return v
}

// TestApertureVectors replays every vector of Aperture's file that covers
// what this package does: canonicalization, base64url, challenge headers
// written and read, challenge lists, challenge ids, credentials and
// receipts read.
func TestApertureVectors(t *testing.T) {
	v := readApertureVectors(t)
	for _, c := range v.Canonicalization {
		got, err := canonicalText(t, c.Input)
		if c.Error {
			if err == nil {
				t.Errorf("canonicalization %q: accepted", c.Name)
			}
			continue
		}
		if err != nil || got != c.Canonical {
			t.Errorf("canonicalization %q: %q %v, want %q", c.Name, got, err, c.Canonical)
		}
	}
	for _, c := range v.Base64URL {
		got, err := DecodeBase64URL(c.Encoded)
		if c.Error {
			if err == nil {
				t.Errorf("base64url %q: accepted", c.Name)
			}
			continue
		}
		if err != nil || hex.EncodeToString(got) != c.DecodedHex {
			t.Errorf("base64url %q: %x %v, want %s", c.Name, got, err, c.DecodedHex)
		}
	}
	for _, c := range v.ChallengeHeaders {
		if got := c.Params.Header(); got != c.Header {
			t.Errorf("challenge header %q:\n got %s\nwant %s", c.Name, got, c.Header)
		}
		chs, err := ParsePaymentChallenges(http.Header{"Www-Authenticate": {c.Header}})
		if err != nil || len(chs) != 1 || chs[0] != c.Parsed {
			t.Errorf("challenge header %q read as %+v %v", c.Name, chs, err)
		}
	}
	for _, c := range v.ChallengeLists {
		chs, err := ParsePaymentChallenges(http.Header{"Www-Authenticate": {c.Header}})
		if c.Error {
			if err == nil {
				t.Errorf("challenge list %q: read %+v", c.Name, chs)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(chs, c.Challenges) {
			t.Errorf("challenge list %q: %+v %v\nwant %+v", c.Name, chs, err, c.Challenges)
		}
	}
	secret, _ := hex.DecodeString(v.HMACSecretHex)
	for _, c := range v.ChallengeIDs {
		if got := PaymentChallengeID(secret, c.Params); got != c.Params.ID || !c.Params.VerifyID(secret) {
			t.Errorf("challenge id %q: %s, want %s", c.Name, got, c.Params.ID)
		}
	}
	for _, c := range v.Credentials {
		cred, err := ParsePaymentAuthorization(c.Header)
		if c.Error {
			if err == nil || !errors.Is(err, ErrMalformed) {
				t.Errorf("credential %q: %+v %v, want ErrMalformed", c.Name, cred, err)
			}
			continue
		}
		var want PaymentCredential
		if err := json.Unmarshal([]byte(c.CredentialJSON), &want); err != nil {
			t.Fatal(err)
		}
		if err != nil || cred.Challenge != want.Challenge || cred.Source != want.Source || !jsonEqual(cred.Payload, want.Payload) {
			t.Errorf("credential %q: %+v %v, want %+v", c.Name, cred, err, want)
		}
	}
	for _, c := range v.Receipts {
		if !strings.Contains(c.ReceiptJSON, `"status"`) {
			continue // session events, not receipts of a charge
		}
		h := http.Header{}
		h.Set(HeaderPaymentReceipt, c.Header)
		r, ok, err := ParsePaymentReceipt(h)
		var want PaymentReceipt
		_ = json.Unmarshal([]byte(c.ReceiptJSON), &want)
		if !ok || err != nil || r != want {
			t.Errorf("receipt %q: %+v %v %v, want %+v", c.Name, r, ok, err, want)
		}
		if strings.Contains(c.Name, "charge") {
			// Written back, the same JSON value (ours is canonical).
			back, _ := DecodeBase64URL(r.Header())
			if !jsonEqual(back, []byte(c.ReceiptJSON)) {
				t.Errorf("receipt %q written as %s", c.Name, back)
			}
		}
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// testIssuer returns an issuer and a charge offer on a real invoice signed
// by a throwaway key, and the invoice's preimage.
func testCharge(t *testing.T, now time.Time) (*ChargeIssuer, ChargeOffer, backend.Preimage) {
	t.Helper()
	pre, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	inv := testInvoice(t, pre.Hash(), backend.Sat(21), now)
	iss := &ChargeIssuer{Secret: []byte("0123456789abcdef0123456789abcdef"), Realm: "api.example", Network: "regtest"}
	return iss, ChargeOffer{
		Invoice: inv, PaymentHash: pre.Hash(), Amount: backend.Sat(21), Description: "Q&A <b>",
		Expires: now.Add(10 * time.Minute), Opaque: map[string]string{"route": "paid"},
	}, pre
}

func TestChargeRoundTrip(t *testing.T) {
	now := time.Now()
	iss, offer, pre := testCharge(t, now)
	ch, err := iss.Challenge(offer)
	if err != nil {
		t.Fatal(err)
	}
	// The request is base64url of the canonical JSON, members sorted and
	// nothing HTML-escaped.
	raw, err := DecodeBase64URL(ch.Request)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"amount":"21","currency":"sat","description":"Q&A <b>","methodDetails":{"invoice":"` + offer.Invoice +
		`","network":"regtest","paymentHash":"` + offer.PaymentHash.String() + `"}}`
	if string(raw) != want {
		t.Fatalf("request %s\nwant %s", raw, want)
	}
	h := http.Header{}
	h.Add(HeaderWWWAuthenticate, `L402 macaroon="AGIAJEemVQUTEyNCR0exk7ek90Cg==", invoice="lnbc1"`)
	h.Add(HeaderWWWAuthenticate, ch.Header())
	chs, err := ParsePaymentChallenges(h)
	if err != nil || len(chs) != 1 || chs[0] != ch {
		t.Fatalf("read back %+v %v", chs, err)
	}
	if _, inv, err := chs[0].Charge(); err != nil || inv.PaymentHash != offer.PaymentHash {
		t.Fatalf("Charge: %v", err)
	}
	auth, err := NewChargeCredential(chs[0], pre).Authorization()
	if err != nil {
		t.Fatal(err)
	}
	cred, err := PaymentFromHeader(http.Header{"Authorization": {auth}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := iss.Verify(cred, now)
	if err != nil {
		t.Fatal(err)
	}
	if v.PaymentHash != offer.PaymentHash || v.Amount != offer.Amount || v.Opaque["route"] != "paid" {
		t.Fatalf("verified %+v", v)
	}
	rh := http.Header{}
	rh.Set(HeaderPaymentReceipt, v.Receipt(now).Header())
	r, ok, err := ParsePaymentReceipt(rh)
	if !ok || err != nil || r.Reference != offer.PaymentHash.String() || r.ChallengeID != ch.ID || r.Status != "success" {
		t.Fatalf("receipt %+v %v %v", r, ok, err)
	}
}

// TestChargeVerifyRefusals: each way a credential can be wrong, and the
// sentinel (and problem type) it gets.
func TestChargeVerifyRefusals(t *testing.T) {
	now := time.Now()
	iss, offer, pre := testCharge(t, now)
	ch, err := iss.Challenge(offer)
	if err != nil {
		t.Fatal(err)
	}
	other, offer2, pre2 := testCharge(t, now)
	other.Secret = iss.Secret
	ch2, err := other.Challenge(offer2)
	if err != nil {
		t.Fatal(err)
	}
	_ = pre2
	tamperedReq := offer
	tamperedReq.Amount = backend.Sat(1)
	cheap, _ := (&ChargeIssuer{Secret: []byte("another secret, 32 bytes long..."), Realm: iss.Realm, Network: "regtest"}).Challenge(tamperedReq)
	cases := []struct {
		name    string
		mod     func(c *PaymentChallenge) backend.Preimage
		want    error
		problem string
	}{
		{"valid", func(c *PaymentChallenge) backend.Preimage { return pre }, nil, ""},
		{"tampered request", func(c *PaymentChallenge) backend.Preimage { c.Request = cheap.Request; return pre },
			ErrPaymentChallengeInvalid, ProblemInvalidChallenge},
		{"tampered expires", func(c *PaymentChallenge) backend.Preimage {
			c.Expires = now.Add(time.Hour).UTC().Format(time.RFC3339)
			return pre
		}, ErrPaymentChallengeInvalid, ProblemInvalidChallenge},
		{"tampered opaque", func(c *PaymentChallenge) backend.Preimage { c.Opaque = "eyJyb3V0ZSI6ImZyZWUifQ"; return pre },
			ErrPaymentChallengeInvalid, ProblemInvalidChallenge},
		{"another secret's challenge", func(c *PaymentChallenge) backend.Preimage { *c = cheap; return pre },
			ErrPaymentChallengeInvalid, ProblemInvalidChallenge},
		{"proof for another challenge", func(c *PaymentChallenge) backend.Preimage { *c = ch2; return pre },
			ErrPaymentUnverified, ProblemVerificationFailed},
		{"wrong preimage", func(c *PaymentChallenge) backend.Preimage { return pre2 },
			ErrPaymentUnverified, ProblemVerificationFailed},
		{"session intent", func(c *PaymentChallenge) backend.Preimage { c.Intent = IntentSession; return pre },
			ErrPaymentUnsupported, ProblemMethodUnsupported},
		{"other method", func(c *PaymentChallenge) backend.Preimage { c.Method = "tempo"; return pre },
			ErrPaymentUnsupported, ProblemMethodUnsupported},
	}
	for _, tc := range cases {
		c := ch
		p := tc.mod(&c)
		cred := NewChargeCredential(c, p)
		_, err := iss.Verify(&cred, now)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			continue
		}
		if err != nil {
			if typ, _ := ProblemFor(err); typ != tc.problem {
				t.Errorf("%s: problem %s, want %s", tc.name, typ, tc.problem)
			}
		}
	}
	cred := NewChargeCredential(ch, pre)
	if _, err := iss.Verify(&cred, offer.Expires); !errors.Is(err, ErrPaymentExpired) {
		t.Errorf("at expiry: %v", err)
	}
	realm := *iss
	realm.Realm = "elsewhere"
	if _, err := realm.Verify(&cred, now); !errors.Is(err, ErrPaymentChallengeInvalid) {
		t.Errorf("other realm: %v", err)
	}
}

func TestParsePaymentAuthorizationLimits(t *testing.T) {
	for _, v := range []string{
		"Payment " + strings.Repeat("A", maxPaymentCredentialLen),
		"Payment eyJjaGFsbGVuZ2UiOnt9fQ", // {"challenge":{}}
		"Payment eyJhIjoxfXt9",           // {"a":1}{}
		"Payment e30=\n",
		"L402 abc:def",
	} {
		if _, err := ParsePaymentAuthorization(v); !errors.Is(err, ErrMalformed) {
			t.Errorf("%.40q: err = %v", v, err)
		}
	}
	if _, err := PaymentFromHeader(http.Header{"Authorization": {"L402 x:y"}}); !errors.Is(err, ErrNoPaymentCredentials) {
		t.Errorf("no Payment credential: %v", err)
	}
}

// TestChargeChecks: the client's reading of a charge challenge.
func TestChargeChecks(t *testing.T) {
	now := time.Now()
	iss, offer, _ := testCharge(t, now)
	base, err := iss.Challenge(offer)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := base.ChargeRequest()
	enc := func(mod func(r *ChargeRequest)) string {
		r := req
		mod(&r)
		s, err := EncodeChargeRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		name string
		c    func(c *PaymentChallenge)
		want error
	}{
		{"session", func(c *PaymentChallenge) { c.Intent = IntentSession }, ErrPaymentUnsupported},
		{"other method", func(c *PaymentChallenge) { c.Method = "stripe" }, ErrPaymentUnsupported},
		{"other currency", func(c *PaymentChallenge) { c.Request = enc(func(r *ChargeRequest) { r.Currency = "usd" }) }, ErrPaymentUnsupported},
		{"amount disagrees", func(c *PaymentChallenge) { c.Request = enc(func(r *ChargeRequest) { r.Amount = "1" }) }, ErrMalformed},
		{"hash disagrees", func(c *PaymentChallenge) {
			c.Request = enc(func(r *ChargeRequest) { r.MethodDetails.PaymentHash = strings.Repeat("ab", 32) })
		}, ErrMalformed},
		{"not an invoice", func(c *PaymentChallenge) {
			c.Request = enc(func(r *ChargeRequest) { r.MethodDetails.Invoice = "lnbc1" })
		}, ErrMalformed},
		{"request not base64url", func(c *PaymentChallenge) { c.Request = "a+b/" }, ErrMalformed},
	} {
		c := base
		tc.c(&c)
		if _, _, err := c.Charge(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestBLIP26Challenge: the token-agnostic challenge form of bLIP-26 is
// read like the macaroon= form, unknown parameters ignored, and written by
// TokenHeader.
func TestBLIP26Challenge(t *testing.T) {
	tok := testToken(t)
	c := Challenge{Macaroon: tok.Macaroon, Invoice: "lnbcrt1invoice"}
	for _, v := range []string{
		c.TokenHeader(SchemeL402),
		`L402 token="` + encodeMacaroon(tok.Macaroon) + `", invoice="lnbcrt1invoice", version="0", future="x"`,
		`L402 version=0, token=` + encodeMacaroon(tok.Macaroon) + `, invoice="lnbcrt1invoice"`,
	} {
		chs, err := ParseChallenges(http.Header{"Www-Authenticate": {v}})
		if err != nil || len(chs) != 1 || !chs[0].TokenForm || chs[0].Invoice != c.Invoice ||
			string(chs[0].Macaroon.Signature()) != string(tok.Macaroon.Signature()) {
			t.Fatalf("%s: %+v %v", v, chs, err)
		}
	}
	if _, err := ParseChallenges(http.Header{"Www-Authenticate": {strings.Replace(c.TokenHeader(SchemeL402), `version="0"`, `version="1"`, 1)}}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("version 1: %v", err)
	}
	want := `L402 version="0", token="` + encodeMacaroon(tok.Macaroon) + `", invoice="lnbcrt1invoice"`
	if got := c.TokenHeader(SchemeL402); got != want {
		t.Fatalf("TokenHeader %s", got)
	}
}

// testInvoice signs a real BOLT11 invoice for hash with a throwaway key.
func testInvoice(t testing.TB, hash backend.PaymentHash, amount backend.MilliSat, now time.Time) string {
	t.Helper()
	key, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	inv, err := bolt11.EncodePayable(bolt11.Invoice{
		Network: "regtest", PaymentHash: hash, Timestamp: now, Expiry: time.Hour, Amount: int64(amount), Description: "charge",
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// testToken mints a token under a fresh root key.
func testToken(t testing.TB) *Token {
	t.Helper()
	pre, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	mac, _, err := NewMinter(NewMemoryRootKeyStore(), "test").Mint(context.Background(), pre.Hash())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := NewToken(mac, pre)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
