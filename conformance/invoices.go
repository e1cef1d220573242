package conformance

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
)

func testFieldsRoundTrip(t *testing.T, s *suite) {
	memo := uniqueMemo(t)
	before := time.Now().Truncate(time.Second)
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: memo, Expiry: caseExpiry})
	d := decode(t, inv)
	if d.PaymentHash != inv.PaymentHash {
		t.Errorf("payment hash: BOLT11 says %s, Invoice says %s", d.PaymentHash, inv.PaymentHash)
	}
	if d.Amount != amount || inv.Amount != amount {
		t.Errorf("amount: BOLT11 %s, Invoice %s, want %s", d.Amount, inv.Amount, amount)
	}
	if s.sup.FixedMemo {
		t.Log("memo not compared: Support.FixedMemo, the node writes its own description")
	} else if d.Memo != memo || inv.Memo != memo {
		t.Errorf("memo: BOLT11 %q, Invoice %q, want %q", d.Memo, inv.Memo, memo)
	}
	if s.sup.FixedExpiry {
		t.Log("expiry not compared with the asked one: Support.FixedExpiry, the node chooses it")
	} else if d.Expiry != caseExpiry {
		t.Errorf("BOLT11 expiry %s, want %s", d.Expiry, caseExpiry)
	}
	if !near(inv.ExpiresAt, d.ExpiresAt()) {
		t.Errorf("ExpiresAt %s, BOLT11 says %s", inv.ExpiresAt, d.ExpiresAt())
	}
	if d.CreatedAt.Before(before.Add(-2*time.Second)) || d.CreatedAt.After(time.Now().Add(2*time.Second)) {
		t.Errorf("BOLT11 timestamp %s is not around now", d.CreatedAt)
	}
	if inv.State != backend.StateOpen {
		t.Errorf("new invoice is %s, want open", inv.State)
	}
	if inv.AmountReceived != 0 {
		t.Errorf("new invoice received %s", inv.AmountReceived)
	}
	if inv.Preimage != nil && !inv.Preimage.Matches(inv.PaymentHash) {
		t.Errorf("preimage %s does not hash to %s", inv.Preimage, inv.PaymentHash)
	}
	if !inv.Payable(time.Now()) {
		t.Errorf("new invoice is not payable")
	}
}

func testDefaultExpiry(t *testing.T, s *suite) {
	if s.sup.FixedExpiry {
		t.Skip("Support.FixedExpiry is true: the node chooses every invoice's expiry")
	}
	inv, err := s.b.CreateInvoice(callCtx(t), backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)})
	if err != nil {
		t.Fatalf("CreateInvoice with zero Expiry: %v", err)
	}
	if d := decode(t, inv); d.Expiry != backend.DefaultExpiry {
		t.Errorf("zero Expiry gave a BOLT11 expiry of %s, want backend.DefaultExpiry (%s)", d.Expiry, backend.DefaultExpiry)
	}
}

func testDescriptionHash(t *testing.T, s *suite) {
	h := [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	req := backend.InvoiceRequest{Amount: amount, DescriptionHash: &h}
	if !s.sup.DescriptionHash {
		_, err := s.b.CreateInvoice(callCtx(t), req)
		wantErr(t, err, backend.ErrUnsupported, "CreateInvoice with a description hash the node cannot take alone (Support.DescriptionHash false)")
		return
	}
	inv := s.create(t, req)
	d := decode(t, inv)
	if d.DescriptionHash == nil || *d.DescriptionHash != h {
		t.Fatalf("BOLT11 description hash %x, want %x", d.DescriptionHash, h)
	}
	if d.Memo != "" {
		t.Errorf("BOLT11 has memo %q beside the description hash", d.Memo)
	}
}

// hashedDescription is longer than a memo may be and holds what JSON
// encoders like to escape, as LNURL-pay metadata does.
var hashedDescription = `[["text/plain","Pay <Alice> & \"Bob\"\nナンセンス 1杯"],["text/long-desc","` +
	strings.Repeat("a long description; ", 40) + `"]]`

func testHashedDescription(t *testing.T, s *suite) {
	if !s.sup.HashedDescription {
		t.Skip("Support.HashedDescription is false: this backend cannot commit to a description's hash")
	}
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, HashedDescription: hashedDescription})
	d := decode(t, inv)
	if want := sha256.Sum256([]byte(hashedDescription)); d.DescriptionHash == nil || *d.DescriptionHash != want {
		t.Fatalf("BOLT11 description hash %x, want %x (SHA-256 of the text)", d.DescriptionHash, want)
	}
	if d.Memo != "" || inv.Memo != "" {
		t.Errorf("BOLT11 memo %q, invoice memo %q; want none beside the description hash", d.Memo, inv.Memo)
	}
}

func testInvalidAmount(t *testing.T, s *suite) {
	_, err := s.b.CreateInvoice(callCtx(t), backend.InvoiceRequest{Amount: -1000, Memo: uniqueMemo(t)})
	wantErr(t, err, backend.ErrInvalid, "CreateInvoice with a negative amount")
}

func testUniqueHashes(t *testing.T, s *suite) {
	req := backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t)}
	a, b := s.create(t, req), s.create(t, req)
	if a.PaymentHash == b.PaymentHash || a.PaymentRequest == b.PaymentRequest {
		t.Fatalf("two identical requests gave the same invoice %s", a.PaymentHash)
	}
}

func testLookupMatches(t *testing.T, s *suite) {
	memo := uniqueMemo(t)
	c := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: memo})
	l := s.lookup(t, c.PaymentHash)
	if s.sup.FixedMemo {
		memo = c.Memo // the node's own; what matters is that lookup agrees with create
	}
	if l.PaymentHash != c.PaymentHash || l.PaymentRequest != c.PaymentRequest {
		t.Errorf("lookup gave %s / %s, want %s / %s", l.PaymentHash, l.PaymentRequest, c.PaymentHash, c.PaymentRequest)
	}
	if l.Amount != amount || l.Memo != memo || l.State != backend.StateOpen {
		t.Errorf("lookup gave amount %s memo %q state %s, want %s %q open", l.Amount, l.Memo, l.State, amount, memo)
	}
	if !near(l.ExpiresAt, c.ExpiresAt) {
		t.Errorf("lookup ExpiresAt %s, create said %s", l.ExpiresAt, c.ExpiresAt)
	}
}

func testLookupNotFound(t *testing.T, s *suite) {
	_, err := s.b.LookupInvoice(callCtx(t), randomHash(t))
	wantErr(t, err, backend.ErrNotFound, "LookupInvoice of an unknown hash")
}

func testCallerPreimage(t *testing.T, s *suite) {
	if !s.sup.CallerPreimage {
		t.Skip("Support.CallerPreimage is false: this backend cannot take a caller-chosen preimage")
	}
	pre, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	inv := s.create(t, backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t), Preimage: &pre})
	if inv.PaymentHash != pre.Hash() || decode(t, inv).PaymentHash != pre.Hash() {
		t.Fatalf("invoice hash %s, want sha256 of the chosen preimage %s", inv.PaymentHash, pre.Hash())
	}
	if p := s.pay(t, inv.PaymentRequest, backend.PayOptions{}); p.Preimage != pre {
		t.Errorf("payer got preimage %s, want the chosen %s", p.Preimage, pre)
	}
}

func testDuplicatePreimage(t *testing.T, s *suite) {
	if !s.sup.CallerPreimage {
		t.Skip("Support.CallerPreimage is false: duplicate hashes cannot be asked for")
	}
	pre, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	req := backend.InvoiceRequest{Amount: amount, Memo: uniqueMemo(t), Preimage: &pre}
	s.create(t, req)
	_, err = s.b.CreateInvoice(callCtx(t), req)
	wantErr(t, err, backend.ErrAlreadyExists, "a second invoice with the same preimage")
}
