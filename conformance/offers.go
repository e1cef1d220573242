package conformance

import (
	"context"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt12"
)

// The offer cases run before the Close and restart cases, which disturb the
// node.
func init() {
	offers := []testCase{
		{"Offer/CreateFixedAndAny", testOfferCreate},
		{"Offer/PayFromPayer", testOfferPay},
		{"Offer/AmountRules", testOfferAmounts},
		{"Offer/DisabledRefused", testOfferDisabled},
	}
	for i, c := range cases {
		if c.name == "Close/LaterCallsFailNothingLeftRunning" {
			cases = append(cases[:i], append(offers, cases[i:]...)...)
			return
		}
	}
	cases = append(cases, offers...)
}

// offerPayer is what the offer cases ask of the harness's payer.
type offerPayer interface {
	PayOffer(ctx context.Context, offer string, opts backend.OfferPayOptions) (*backend.Payment, error)
	Supports(backend.Ability) bool
}

func (s *suite) needOffers(t *testing.T) {
	t.Helper()
	if !s.b.Supports(backend.AbilityOffer) {
		t.Skipf("the backend has no offer ability (abilities: %v)", backend.Abilities(s.b))
	}
}

func (s *suite) offerPayer(t *testing.T) offerPayer {
	t.Helper()
	p, ok := s.p.(offerPayer)
	if !ok || !p.Supports(backend.AbilityPayOffer) {
		t.Skipf("the harness's payer %T cannot pay offers (no %q ability)", s.p, backend.AbilityPayOffer)
	}
	return p
}

func (s *suite) createOffer(t *testing.T, req backend.OfferRequest) *backend.Offer {
	t.Helper()
	o, err := s.b.CreateOffer(callCtx(t), req)
	if err != nil {
		t.Fatalf("CreateOffer(%+v): %v", req, err)
	}
	return o
}

func (s *suite) listed(t *testing.T, id string) *backend.Offer {
	t.Helper()
	offs, err := s.b.ListOffers(callCtx(t))
	if err != nil {
		t.Fatalf("ListOffers: %v", err)
	}
	for _, o := range offs {
		if o.ID == id {
			return o
		}
	}
	t.Fatalf("ListOffers has no offer %s (%d offers)", id, len(offs))
	return nil
}

// testOfferCreate makes a fixed-amount offer with issuer and expiry and an
// any-amount one, and checks each against its own BOLT12 encoding and the
// node's list.
func testOfferCreate(t *testing.T, s *suite) {
	s.needOffers(t)
	expiry := time.Hour
	fixed := s.createOffer(t, backend.OfferRequest{Amount: amount, Description: uniqueMemo(t), Expiry: expiry, Issuer: "l402kit.example"})
	anyAmt := s.createOffer(t, backend.OfferRequest{Description: uniqueMemo(t)})
	for _, c := range []struct {
		o      *backend.Offer
		amount backend.MilliSat
		expiry bool
	}{{fixed, amount, true}, {anyAmt, 0, false}} {
		d, err := bolt12.DecodeOffer(c.o.Bolt12)
		if err != nil {
			t.Fatalf("offer %s does not decode: %v", c.o.Bolt12, err)
		}
		id := d.ID()
		switch {
		case c.o.ID != hex.EncodeToString(id[:]):
			t.Errorf("offer id %s, its encoding's Merkle root is %x", c.o.ID, id)
		case backend.MilliSat(d.Amount) != c.amount || c.o.Amount != c.amount:
			t.Errorf("offer amount %d (reported %s), want %s", d.Amount, c.o.Amount, c.amount)
		case !c.o.Active:
			t.Errorf("a new offer is not active")
		case c.expiry && (d.AbsoluteExpiry.IsZero() || d.AbsoluteExpiry.Before(time.Now().Add(expiry-time.Minute)) || d.AbsoluteExpiry.After(time.Now().Add(expiry+time.Minute))):
			t.Errorf("offer expiry %s, asked about %s from now", d.AbsoluteExpiry, expiry)
		case !c.expiry && !d.AbsoluteExpiry.IsZero():
			t.Errorf("offer without expiry expires at %s", d.AbsoluteExpiry)
		}
		if l := s.listed(t, c.o.ID); l.Bolt12 != c.o.Bolt12 || !l.Active {
			t.Errorf("listed offer %+v, made %+v", l, c.o)
		}
	}
	if d, _ := bolt12.DecodeOffer(fixed.Bolt12); d == nil || d.Issuer != "l402kit.example" || fixed.Issuer != "l402kit.example" {
		t.Errorf("offer issuer: %+v", fixed)
	}
}

// testOfferPay pays a fixed offer twice (it is reusable) and an any-amount
// offer with a payer note, from the harness's payer, and finds the payments
// among the offer's.
func testOfferPay(t *testing.T, s *suite) {
	s.needOffers(t)
	p := s.offerPayer(t)
	fixed := s.createOffer(t, backend.OfferRequest{Amount: amount, Description: uniqueMemo(t)})
	var hashes []backend.PaymentHash
	for i := 0; i < 2; i++ {
		pay, err := p.PayOffer(callCtx(t), fixed.Bolt12, backend.OfferPayOptions{})
		if err != nil {
			t.Fatalf("PayOffer (payment %d): %v", i+1, err)
		}
		if !pay.Preimage.Matches(pay.PaymentHash) || pay.Amount != amount {
			t.Fatalf("payment %+v", pay)
		}
		hashes = append(hashes, pay.PaymentHash)
	}
	if hashes[0] == hashes[1] {
		t.Fatal("two payments of an offer share an invoice")
	}
	for _, h := range hashes {
		s.settled(t, h)
	}
	invs, err := s.b.OfferPayments(callCtx(t), fixed.ID)
	if err != nil {
		t.Fatalf("OfferPayments: %v", err)
	}
	found := 0
	for _, inv := range invs {
		for _, h := range hashes {
			if inv.PaymentHash == h && inv.State == backend.StateSettled && inv.Preimage != nil && inv.Preimage.Matches(h) {
				found++
			}
		}
	}
	if found != 2 {
		t.Errorf("OfferPayments lists %d invoices, %d of them the two payments settled", len(invs), found)
	}

	anyAmt := s.createOffer(t, backend.OfferRequest{Description: uniqueMemo(t)})
	opts := backend.OfferPayOptions{PayOptions: backend.PayOptions{Amount: 4_242_000}, PayerNote: "from the conformance suite"}
	pay, err := p.PayOffer(callCtx(t), anyAmt.Bolt12, opts)
	if errors.Is(err, backend.ErrUnsupported) {
		// A payer that cannot send a note must refuse before paying.
		t.Logf("the payer refuses a payer note: %v", err)
		opts.PayerNote = ""
		pay, err = p.PayOffer(callCtx(t), anyAmt.Bolt12, opts)
	}
	if err != nil {
		t.Fatalf("PayOffer of an any-amount offer: %v", err)
	}
	if pay.Amount != 4_242_000 {
		t.Errorf("any-amount offer paid %s, asked 4242000 msat", pay.Amount)
	}
	if inv := s.settled(t, pay.PaymentHash); inv.AmountReceived < 4_242_000 {
		t.Errorf("invoice of the any-amount offer received %s", inv.AmountReceived)
	}
}

// testOfferAmounts checks the amount rules: an any-amount offer needs an
// amount, a fixed one refuses another, and an offer with an amount needs a
// description.
func testOfferAmounts(t *testing.T, s *suite) {
	s.needOffers(t)
	_, err := s.b.CreateOffer(callCtx(t), backend.OfferRequest{Amount: amount})
	wantErr(t, err, backend.ErrInvalid, "CreateOffer with an amount and no description")
	p := s.offerPayer(t)
	fixed := s.createOffer(t, backend.OfferRequest{Amount: amount, Description: uniqueMemo(t)})
	anyAmt := s.createOffer(t, backend.OfferRequest{Description: uniqueMemo(t)})
	_, err = p.PayOffer(callCtx(t), anyAmt.Bolt12, backend.OfferPayOptions{})
	wantErr(t, err, backend.ErrInvalid, "PayOffer of an any-amount offer without an amount")
	_, err = p.PayOffer(callCtx(t), fixed.Bolt12, backend.OfferPayOptions{PayOptions: backend.PayOptions{Amount: amount + 1000}})
	wantErr(t, err, backend.ErrInvalid, "PayOffer of a fixed offer with another amount")
	pay, err := p.PayOffer(callCtx(t), fixed.Bolt12, backend.OfferPayOptions{PayOptions: backend.PayOptions{Amount: amount}})
	if err != nil || pay.Amount != amount {
		t.Fatalf("PayOffer of a fixed offer naming its own amount: %+v, %v", pay, err)
	}
}

// testOfferDisabled disables an offer: it is listed inactive and paying it
// fails at once; an unknown id is not found.
func testOfferDisabled(t *testing.T, s *suite) {
	s.needOffers(t)
	o := s.createOffer(t, backend.OfferRequest{Amount: amount, Description: uniqueMemo(t)})
	if err := s.b.DisableOffer(callCtx(t), o.ID); err != nil {
		t.Fatalf("DisableOffer: %v", err)
	}
	if l := s.listed(t, o.ID); l.Active {
		t.Errorf("disabled offer listed active")
	}
	err := s.b.DisableOffer(callCtx(t), hex.EncodeToString(make([]byte, 32)))
	wantErr(t, err, backend.ErrNotFound, "DisableOffer of an unknown offer")
	p := s.offerPayer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*refusalTimeout)
	defer cancel()
	start := time.Now()
	_, err = p.PayOffer(ctx, o.Bolt12, backend.OfferPayOptions{PayOptions: backend.PayOptions{Timeout: refusalTimeout}})
	wantErr(t, err, backend.ErrPaymentFailed, "paying a disabled offer")
	if took := time.Since(start); took >= refusalTimeout {
		t.Errorf("the refusal took %s, the whole PayOptions.Timeout", took)
	}
}
