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

// BIP353Name is invreq_bip_353_name: the name the offer was found by.
type BIP353Name struct {
	Name, Domain string
}

// InvoiceRequest is what an invoice request says: the offer it answers
// (its fields copied) and the payer's fields.
type InvoiceRequest struct {
	Offer
	// PayerMetadata (invreq_metadata) is required.
	PayerMetadata []byte
	// Chain (invreq_chain); nil means bitcoin.
	Chain *[32]byte
	// RequestAmount (invreq_amount) in millisatoshis; zero when absent.
	RequestAmount uint64
	// RequestFeatures (invreq_features).
	RequestFeatures []byte
	// Quantity (invreq_quantity); nil when absent.
	Quantity *uint64
	// PayerID (invreq_payer_id) is the payer's transient key, 33 bytes.
	PayerID []byte
	// PayerNote (invreq_payer_note).
	PayerNote string
	// PayerPaths (invreq_paths) reach the payer.
	PayerPaths []BlindedPath
	// BIP353 (invreq_bip_353_name); nil when absent.
	BIP353 *BIP353Name
	// Signature (signature) by PayerID; only for a decoded request.
	Signature []byte
}

// The embedded Offer's Records are the whole message's records: those of
// the request (or invoice) decoded. Encoding a request copies the ones in
// the offer's ranges from there, so an InvoiceRequest built around a
// decoded Offer copies the offer as received, unknown fields included; an
// invoice copies those in the request's ranges.

// read sets the invoice request field r holds, after the offer's.
func (q *InvoiceRequest) read(r Record) (bool, error) {
	if known, err := q.Offer.read(r); known || err != nil {
		return known, err
	}
	var err error
	switch r.Type {
	case typeInvreqMetadata:
		q.PayerMetadata = r.Value
	case typeInvreqChain:
		if len(r.Value) != 32 {
			return true, fail(ErrField, "invreq_chain of %d bytes", len(r.Value))
		}
		c := [32]byte(r.Value)
		q.Chain = &c
	case typeInvreqAmount:
		q.RequestAmount, err = tu64(r)
	case typeInvreqFeatures:
		q.RequestFeatures = r.Value
		err = checkFeatures("invreq_features", r.Value)
	case typeInvreqQuantity:
		var v uint64
		if v, err = tu64(r); err == nil {
			q.Quantity = &v
		}
	case typeInvreqPayerID:
		q.PayerID, err = point("invreq_payer_id", r.Value)
	case typeInvreqPayerNote:
		q.PayerNote, err = text(r)
	case typeInvreqPaths:
		q.PayerPaths, err = readPaths("invreq_paths", r.Value)
	case typeInvreqBIP353:
		q.BIP353, err = readBIP353(r.Value)
	default:
		return false, nil
	}
	return true, err
}

func readBIP353(b []byte) (*BIP353Name, error) {
	rd := &reader{b: b, ok: true}
	name := rd.take(int(rd.u8()))
	domain := rd.take(int(rd.u8()))
	if !rd.ok || len(rd.b) != 0 {
		return nil, fail(ErrField, "invreq_bip_353_name is malformed")
	}
	for _, s := range [][]byte{name, domain} {
		for _, c := range s {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || c == '.') {
				return nil, fail(ErrField, "invreq_bip_353_name has byte %#x", c)
			}
		}
	}
	return &BIP353Name{Name: string(name), Domain: string(domain)}, nil
}

// decodeStream reads a message's records, refusing types outside ranges
// (signature elements aside) and unknown even types, and returns the
// signature record's value.
func decodeStream(records []Record, ranges [][2]uint64, read func(Record) (bool, error)) ([]byte, error) {
	var sig []byte
	for _, r := range records {
		if isSignatureType(r.Type) {
			if r.Type == typeSignature {
				sig = r.Value
			} else if r.Type%2 == 0 {
				return nil, fail(ErrTLV, "unknown even signature type %d", r.Type)
			}
			continue
		}
		if !inRanges(r.Type, ranges...) {
			return nil, fail(ErrTLV, "type %d is outside the message's ranges", r.Type)
		}
		known, err := read(r)
		if err != nil {
			return nil, err
		}
		if !known && r.Type%2 == 0 {
			return nil, fail(ErrTLV, "unknown even type %d", r.Type)
		}
	}
	return sig, nil
}

// DecodeInvoiceRequest reads an invoice request ("lnr1...") and checks what
// a reader must on the request alone, its signature by invreq_payer_id
// included.
func DecodeInvoiceRequest(s string) (*InvoiceRequest, error) {
	prefix, data, err := DecodeString(s)
	if err != nil {
		return nil, err
	}
	if prefix != PrefixInvoiceRequest {
		return nil, fail(ErrString, "prefix %q is not %q", prefix, PrefixInvoiceRequest)
	}
	return parseInvoiceRequest(data)
}

func parseInvoiceRequest(data []byte) (*InvoiceRequest, error) {
	records, err := ParseTLV(data)
	if err != nil {
		return nil, err
	}
	q := &InvoiceRequest{}
	q.Records = records
	sig, err := decodeStream(records, invreqRanges, q.read)
	if err != nil {
		return nil, err
	}
	switch {
	case q.PayerMetadata == nil:
		return nil, fail(ErrField, "no invreq_metadata")
	case q.PayerID == nil:
		return nil, fail(ErrField, "no invreq_payer_id")
	case sig == nil:
		return nil, fail(ErrSignature, "no signature")
	}
	if err := verify("invoice_request", records, sig, q.PayerID); err != nil {
		return nil, err
	}
	q.Signature = sig
	return q, nil
}

// records writes the request's fields, the offer's first, in type order.
func (q *InvoiceRequest) records() []Record {
	var out []Record
	add := func(t uint64, v []byte) { out = append(out, Record{Type: t, Value: v}) }
	add(typeInvreqMetadata, q.PayerMetadata)
	if q.Offer.Records != nil {
		// The offer's fields as received, unknown ones too.
		for _, r := range q.Offer.Records {
			if inRanges(r.Type, offerRanges...) {
				out = append(out, r)
			}
		}
	} else {
		out = append(out, q.Offer.records()...)
	}
	if q.Chain != nil {
		add(typeInvreqChain, q.Chain[:])
	}
	if q.RequestAmount != 0 {
		add(typeInvreqAmount, tu64Bytes(q.RequestAmount))
	}
	if len(q.RequestFeatures) > 0 {
		add(typeInvreqFeatures, q.RequestFeatures)
	}
	if q.Quantity != nil {
		add(typeInvreqQuantity, tu64Bytes(*q.Quantity))
	}
	add(typeInvreqPayerID, q.PayerID)
	if q.PayerNote != "" {
		add(typeInvreqPayerNote, []byte(q.PayerNote))
	}
	if len(q.PayerPaths) > 0 {
		add(typeInvreqPaths, appendPaths(nil, q.PayerPaths))
	}
	if q.BIP353 != nil {
		v := append([]byte{byte(len(q.BIP353.Name))}, q.BIP353.Name...)
		v = append(append(v, byte(len(q.BIP353.Domain))), q.BIP353.Domain...)
		add(typeInvreqBIP353, v)
	}
	return sortRecords(out)
}

// sortRecords orders records by type (the offer's copied records sit
// between invreq_metadata and the payer's own).
func sortRecords(rs []Record) []Record {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Type < rs[j-1].Type; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
	return rs
}

// Encode writes the request signed with payerKey, whose public key must be
// PayerID, as an "lnr1..." string.
func (q *InvoiceRequest) Encode(payerKey *btcec.PrivateKey) (string, error) {
	if !bytes.Equal(payerKey.PubKey().SerializeCompressed(), q.PayerID) {
		return "", fail(ErrField, "the signing key is not invreq_payer_id")
	}
	recs, err := sign("invoice_request", q.records(), payerKey)
	if err != nil {
		return "", err
	}
	s := EncodeString(PrefixInvoiceRequest, EncodeTLV(recs))
	if _, err := DecodeInvoiceRequest(s); err != nil {
		return "", err
	}
	return s, nil
}

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
