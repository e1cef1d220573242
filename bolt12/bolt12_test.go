package bolt12

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
)

func key(t testing.TB) *btcec.PrivateKey {
	t.Helper()
	k, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRequestAndInvoiceRoundTrip writes an offer, an invoice request for it
// and an invoice for the request, reads each back, and checks what ties
// them together: the copied fields, the signatures, Matches.
func TestRequestAndInvoiceRoundTrip(t *testing.T) {
	issuer, payer := key(t), key(t)
	offer := &Offer{Description: "coffee", HasDescription: true, Issuer: "example.com",
		AbsoluteExpiry: time.Unix(2_000_000_000, 0), IssuerID: issuer.PubKey().SerializeCompressed()}
	s, err := offer.Encode()
	if err != nil {
		t.Fatal(err)
	}
	o, err := DecodeOffer(s)
	if err != nil {
		t.Fatal(err)
	}
	if o.Amount != 0 || o.Description != "coffee" || o.Issuer != "example.com" || !o.AbsoluteExpiry.Equal(offer.AbsoluteExpiry) {
		t.Fatalf("decoded offer %+v", o)
	}
	if o.Expired(time.Unix(1_999_999_999, 0)) || !o.Expired(time.Unix(2_000_000_001, 0)) {
		t.Error("Expired")
	}
	if o.ID() != offer.ID() {
		t.Error("the offer id of the decoded offer differs from the written one")
	}

	req := &InvoiceRequest{Offer: *o, PayerMetadata: []byte{1, 2, 3, 4, 5, 6, 7, 8}, RequestAmount: 21000,
		PayerID: payer.PubKey().SerializeCompressed(), PayerNote: "for the team"}
	rs, err := req.Encode(payer)
	if err != nil {
		t.Fatal(err)
	}
	q, err := DecodeInvoiceRequest(rs)
	if err != nil {
		t.Fatal(err)
	}
	if q.RequestAmount != 21000 || q.PayerNote != "for the team" || q.Description != "coffee" || len(q.Signature) != 64 {
		t.Fatalf("decoded request %+v", q)
	}
	if _, err := req.Encode(issuer); err == nil {
		t.Error("a request signed by another key than invreq_payer_id was written")
	}

	pre := sha256.Sum256([]byte("preimage"))
	inv := &Invoice{InvoiceRequest: *q, CreatedAt: time.Now().Truncate(time.Second), RelativeExpiry: 10 * time.Minute,
		PaymentHash: sha256.Sum256(pre[:]), Amount: 21000, NodeID: issuer.PubKey().SerializeCompressed(),
		InvoiceFeatures: []byte{0x02, 0x00, 0x00}, // basic_mpp optional (17)
		Paths: []BlindedPath{{FirstNodeID: issuer.PubKey().SerializeCompressed(), FirstPathKey: payer.PubKey().SerializeCompressed(),
			Hops: []BlindedHop{{BlindedNodeID: issuer.PubKey().SerializeCompressed(), EncryptedData: []byte{9, 9}}}}},
		BlindedPay: []PayInfo{{FeeBaseMsat: 1, CLTVExpiryDelta: 40, HTLCMaximumMsat: 1 << 30}},
	}
	is, err := inv.Encode(issuer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeInvoice(is)
	if err != nil {
		t.Fatal(err)
	}
	if got.Amount != 21000 || got.PaymentHash != inv.PaymentHash || got.PayerNote != "for the team" || got.Expired(time.Now()) ||
		len(got.Paths) != 1 || got.BlindedPay[0].CLTVExpiryDelta != 40 {
		t.Fatalf("decoded invoice %+v", got)
	}
	if !got.Matches(q) {
		t.Error("the invoice does not match its request")
	}
	other := *req
	other.PayerNote = "someone else"
	otherStr, err := other.Encode(payer)
	if err != nil {
		t.Fatal(err)
	}
	oq, _ := DecodeInvoiceRequest(otherStr)
	if got.Matches(oq) {
		t.Error("the invoice matches another request")
	}

	// Any changed byte breaks the signature or the encoding.
	_, data, _ := DecodeString(is)
	for _, i := range []int{5, len(data) / 2, len(data) - 70} {
		bad := append([]byte(nil), data...)
		bad[i] ^= 1
		if _, err := DecodeInvoice(EncodeString(PrefixInvoice, bad)); err == nil {
			t.Errorf("flipping byte %d went unnoticed", i)
		}
	}
	// An invreq_amount the invoice does not honour.
	wrong := *inv
	wrong.Amount = 20000
	if _, err := wrong.Encode(issuer); !errors.Is(err, ErrField) {
		t.Errorf("invoice_amount differing from invreq_amount: %v", err)
	}
}

func TestStringForms(t *testing.T) {
	data := []byte{0x16, 0x21, 0x02}
	s := EncodeString("lno", data)
	for _, form := range []string{s, strings.ToUpper(s), s[:5] + "+\n  " + s[5:]} {
		p, d, err := DecodeString(form)
		if err != nil || p != "lno" || string(d) != string(data) {
			t.Errorf("%q: %s %x %v", form, p, d, err)
		}
	}
	for _, bad := range []string{"lno1 " + s[4:], s + "+", "+" + s, s[:5] + "++" + s[5:], "lno1b", "1qq", "lnö1qq"} {
		if _, _, err := DecodeString(bad); !errors.Is(err, ErrString) {
			t.Errorf("%q: %v, want ErrString", bad, err)
		}
	}
}

// FuzzDecode feeds arbitrary strings to every decoder: none may panic, and
// whatever decodes must write back to a string that decodes to the same.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"lno1zcss9mk8y3wkklfvevcrszlmu23kfrxh49px20665dqwmn4p72pksese",
		"lno1pqps7sjqpgt+ yzm3qv4uxzmtsd3jjqer9wd3hy6tsw3+  5k7msjzfpy7nz5yqcn+\nygrfdej82um5wf5k2uckyypwa3eyt44h6txtxquqh7lz5djge4afgfjn7k4rgrkuag0jsd+\r\n 5xvxg",
		"lnr1qqyqqqqqqqqqqqqqqcp4256ypqqkgzshgysy6ct5dpjk6ct5d93kzmpq23ex2ct5d9ek293pqthvwfzadd7jejes8q9lhc4rvjxd022zv5l44g6qah82ru5rdpnpjkppqvjx204vgdzgsqpvcp4mldl3plscny0rt707gvpdh6ndydfacz43euzqhrurageg3n7kafgsek6gz3e9w52parv8gs2hlxzk95tzeswywffxlkeyhml0hh46kndmwf4m6xma3tkq2lu04qz3slje2rfthc89vss",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, data, err := DecodeString(s); err == nil {
			p2, d2, err := DecodeString(EncodeString(p, data))
			if err != nil || p2 != p || string(d2) != string(data) {
				t.Fatalf("%q: written again it reads %q %x %v", s, p2, d2, err)
			}
		}
		if o, err := DecodeOffer(s); err == nil {
			if _, err := DecodeOffer(EncodeString(PrefixOffer, EncodeTLV(o.Records))); err != nil {
				t.Fatalf("%q: its records written again: %v", s, err)
			}
		}
		if q, err := DecodeInvoiceRequest(s); err == nil {
			if _, err := DecodeInvoiceRequest(EncodeString(PrefixInvoiceRequest, EncodeTLV(q.Records))); err != nil {
				t.Fatalf("%q: its records written again: %v", s, err)
			}
		}
		if inv, err := DecodeInvoice(s); err == nil {
			if _, err := DecodeInvoice(EncodeString(PrefixInvoice, EncodeTLV(inv.Records))); err != nil {
				t.Fatalf("%q: its records written again: %v", s, err)
			}
		}
	})
}
