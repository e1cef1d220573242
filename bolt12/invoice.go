package bolt12

import (
	"bytes"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
)

// The invoice request's and invoice's own TLV types.
const (
	typeInvreqMetadata  = 0
	typeInvreqChain     = 80
	typeInvreqAmount    = 82
	typeInvreqFeatures  = 84
	typeInvreqQuantity  = 86
	typeInvreqPayerID   = 88
	typeInvreqPayerNote = 89
	typeInvreqPaths     = 90
	typeInvreqBIP353    = 91

	typeInvoicePaths          = 160
	typeInvoiceBlindedPay     = 162
	typeInvoiceCreatedAt      = 164
	typeInvoiceRelativeExpiry = 166
	typeInvoicePaymentHash    = 168
	typeInvoiceAmount         = 170
	typeInvoiceFallbacks      = 172
	typeInvoiceFeatures       = 174
	typeInvoiceNodeID         = 176

	typeSignature = 240
)

// Where non-signature fields may be.
var (
	invreqRanges  = [][2]uint64{{0, 159}, {1_000_000_000, 2_999_999_999}}
	invoiceRanges = [][2]uint64{{0, 239}, {1_000_000_000, 3_999_999_999}}
)

// featureMPP is the invoice feature basic_mpp (16 compulsory, 17 optional).
const featureMPP = 16

// PayInfo is one blinded_payinfo: what paying through a blinded path costs.
type PayInfo struct {
	FeeBaseMsat               uint32
	FeeProportionalMillionths uint32
	CLTVExpiryDelta           uint16
	HTLCMinimumMsat           uint64
	HTLCMaximumMsat           uint64
	Features                  []byte
}

// Fallback is one fallback_address.
type Fallback struct {
	Version byte
	Address []byte
}

// Invoice is what a BOLT12 invoice says: the invoice request it answers
// (its fields copied) and the invoice's own fields.
type Invoice struct {
	InvoiceRequest
	// Paths (invoice_paths) lead to the payee, with one PayInfo each.
	Paths      []BlindedPath
	BlindedPay []PayInfo
	// CreatedAt (invoice_created_at).
	CreatedAt time.Time
	// RelativeExpiry (invoice_relative_expiry); DefaultRelativeExpiry
	// seconds when absent.
	RelativeExpiry time.Duration
	// PaymentHash (invoice_payment_hash).
	PaymentHash [32]byte
	// Amount (invoice_amount) in millisatoshis.
	Amount uint64
	// Fallbacks (invoice_fallbacks).
	Fallbacks []Fallback
	// InvoiceFeatures (invoice_features).
	InvoiceFeatures []byte
	// NodeID (invoice_node_id) signs the invoice, 33 bytes.
	NodeID []byte
	// Signature (signature) by NodeID.
	Signature []byte
}

// ExpiresAt is when the invoice may no longer be paid.
func (inv *Invoice) ExpiresAt() time.Time { return inv.CreatedAt.Add(inv.RelativeExpiry) }

// Expired reports whether now is past the invoice's expiry.
func (inv *Invoice) Expired(now time.Time) bool { return now.After(inv.ExpiresAt()) }

// Matches reports whether the invoice answers req: every field of req in
// the ranges an invoice copies (0 to 159, 1000000000 to 2999999999) is in
// the invoice unchanged and the invoice adds none there, and the invoice
// is signed by the offer's issuer where the offer names one.
func (inv *Invoice) Matches(req *InvoiceRequest) bool {
	pick := func(rs []Record) []Record {
		var out []Record
		for _, r := range rs {
			if inRanges(r.Type, invreqRanges...) {
				out = append(out, r)
			}
		}
		return out
	}
	a, b := pick(inv.Records), pick(req.Records)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return req.IssuerID == nil || bytes.Equal(req.IssuerID, inv.NodeID)
}

// read sets the invoice field r holds, after the request's.
func (inv *Invoice) read(r Record) (bool, error) {
	if known, err := inv.InvoiceRequest.read(r); known || err != nil {
		return known, err
	}
	var err error
	switch r.Type {
	case typeInvoicePaths:
		inv.Paths, err = readPaths("invoice_paths", r.Value)
	case typeInvoiceBlindedPay:
		rd := &reader{b: r.Value, ok: true}
		for rd.ok && len(rd.b) > 0 {
			p := PayInfo{FeeBaseMsat: rd.u32(), FeeProportionalMillionths: rd.u32(), CLTVExpiryDelta: rd.u16(),
				HTLCMinimumMsat: rd.u64(), HTLCMaximumMsat: rd.u64()}
			p.Features = rd.take(int(rd.u16()))
			inv.BlindedPay = append(inv.BlindedPay, p)
		}
		if !rd.ok {
			err = fail(ErrField, "invoice_blindedpay is truncated")
		}
	case typeInvoiceCreatedAt:
		var v uint64
		if v, err = tu64(r); err == nil {
			inv.CreatedAt = unixTime(v)
		}
	case typeInvoiceRelativeExpiry:
		var v uint64
		if v, err = tu64(r); err == nil && v > 0xffffffff {
			err = fail(ErrField, "invoice_relative_expiry is not a tu32")
		}
		inv.RelativeExpiry = time.Duration(v) * time.Second
	case typeInvoicePaymentHash:
		if len(r.Value) != 32 {
			return true, fail(ErrField, "invoice_payment_hash of %d bytes", len(r.Value))
		}
		inv.PaymentHash = [32]byte(r.Value)
	case typeInvoiceAmount:
		inv.Amount, err = tu64(r)
	case typeInvoiceFallbacks:
		rd := &reader{b: r.Value, ok: true}
		for rd.ok && len(rd.b) > 0 {
			f := Fallback{Version: rd.u8()}
			f.Address = rd.take(int(rd.u16()))
			inv.Fallbacks = append(inv.Fallbacks, f)
		}
		if !rd.ok {
			err = fail(ErrField, "invoice_fallbacks is truncated")
		}
	case typeInvoiceFeatures:
		inv.InvoiceFeatures = r.Value
		err = checkFeatures("invoice_features", r.Value, featureMPP)
	case typeInvoiceNodeID:
		inv.NodeID, err = point("invoice_node_id", r.Value)
	default:
		return false, nil
	}
	return true, err
}

// DecodeInvoice reads a BOLT12 invoice ("lni1...") and checks what a
// reader must on the invoice alone, its signature by invoice_node_id
// included; Expired and Matches do the checks that need the time and the
// request.
func DecodeInvoice(s string) (*Invoice, error) {
	prefix, data, err := DecodeString(s)
	if err != nil {
		return nil, err
	}
	if prefix != PrefixInvoice {
		return nil, fail(ErrString, "prefix %q is not %q", prefix, PrefixInvoice)
	}
	records, err := ParseTLV(data)
	if err != nil {
		return nil, err
	}
	inv := &Invoice{RelativeExpiry: DefaultRelativeExpiry * time.Second}
	inv.Records = records
	sig, err := decodeStream(records, invoiceRanges, inv.read)
	if err != nil {
		return nil, err
	}
	has := map[uint64]bool{}
	for _, r := range records {
		has[r.Type] = true
	}
	for _, need := range []struct {
		t    uint64
		name string
	}{{typeInvoiceAmount, "invoice_amount"}, {typeInvoiceCreatedAt, "invoice_created_at"},
		{typeInvoicePaymentHash, "invoice_payment_hash"}, {typeInvoiceNodeID, "invoice_node_id"},
		{typeInvoicePaths, "invoice_paths"}, {typeInvoiceBlindedPay, "invoice_blindedpay"}} {
		if !has[need.t] {
			return nil, fail(ErrField, "no %s", need.name)
		}
	}
	if len(inv.BlindedPay) != len(inv.Paths) {
		return nil, fail(ErrField, "%d invoice_blindedpay entries for %d invoice_paths", len(inv.BlindedPay), len(inv.Paths))
	}
	usable := false
	for _, p := range inv.BlindedPay {
		usable = usable || checkFeatures("blinded_payinfo", p.Features) == nil
	}
	if !usable {
		return nil, fail(ErrFeature, "every invoice path requires an unknown feature")
	}
	if inv.RequestAmount != 0 && inv.Amount != inv.RequestAmount {
		return nil, fail(ErrField, "invoice_amount %d differs from invreq_amount %d", inv.Amount, inv.RequestAmount)
	}
	if sig == nil {
		return nil, fail(ErrSignature, "no signature")
	}
	if err := verify("invoice", records, sig, inv.NodeID); err != nil {
		return nil, err
	}
	inv.Signature = sig
	inv.InvoiceRequest.Signature = nil
	return inv, nil
}

// Encode writes the invoice, with the request's records copied (Records of
// the embedded InvoiceRequest, as received), signed with nodeKey, whose
// public key must be NodeID, as an "lni1..." string.
func (inv *Invoice) Encode(nodeKey *btcec.PrivateKey) (string, error) {
	if !bytes.Equal(nodeKey.PubKey().SerializeCompressed(), inv.NodeID) {
		return "", fail(ErrField, "the signing key is not invoice_node_id")
	}
	var out []Record
	for _, r := range inv.InvoiceRequest.Records {
		if inRanges(r.Type, invreqRanges...) {
			out = append(out, r)
		}
	}
	add := func(t uint64, v []byte) { out = append(out, Record{Type: t, Value: v}) }
	add(typeInvoicePaths, appendPaths(nil, inv.Paths))
	var pay []byte
	for _, p := range inv.BlindedPay {
		pay = append(pay, be32(p.FeeBaseMsat)...)
		pay = append(pay, be32(p.FeeProportionalMillionths)...)
		pay = append(pay, byte(p.CLTVExpiryDelta>>8), byte(p.CLTVExpiryDelta))
		pay = append(pay, be64(p.HTLCMinimumMsat)...)
		pay = append(pay, be64(p.HTLCMaximumMsat)...)
		pay = append(pay, byte(len(p.Features)>>8), byte(len(p.Features)))
		pay = append(pay, p.Features...)
	}
	add(typeInvoiceBlindedPay, pay)
	add(typeInvoiceCreatedAt, tu64Bytes(uint64(inv.CreatedAt.Unix())))
	if inv.RelativeExpiry != DefaultRelativeExpiry*time.Second {
		add(typeInvoiceRelativeExpiry, tu64Bytes(uint64(inv.RelativeExpiry/time.Second)))
	}
	add(typeInvoicePaymentHash, inv.PaymentHash[:])
	add(typeInvoiceAmount, tu64Bytes(inv.Amount))
	if len(inv.Fallbacks) > 0 {
		var v []byte
		for _, f := range inv.Fallbacks {
			v = append(v, f.Version, byte(len(f.Address)>>8), byte(len(f.Address)))
			v = append(v, f.Address...)
		}
		add(typeInvoiceFallbacks, v)
	}
	if len(inv.InvoiceFeatures) > 0 {
		add(typeInvoiceFeatures, inv.InvoiceFeatures)
	}
	add(typeInvoiceNodeID, inv.NodeID)
	recs, err := sign("invoice", sortRecords(out), nodeKey)
	if err != nil {
		return "", err
	}
	s := EncodeString(PrefixInvoice, EncodeTLV(recs))
	if _, err := DecodeInvoice(s); err != nil {
		return "", err
	}
	return s, nil
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

func be64(v uint64) []byte { return append(be32(uint32(v>>32)), be32(uint32(v))...) }
