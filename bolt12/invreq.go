package bolt12

import (
	"bytes"

	"github.com/btcsuite/btcd/btcec/v2"
)

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
