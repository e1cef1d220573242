package bolt12

import (
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
)

// The offer's TLV types, which invoice requests and invoices mirror.
const (
	typeOfferChains         = 2
	typeOfferMetadata       = 4
	typeOfferCurrency       = 6
	typeOfferAmount         = 8
	typeOfferDescription    = 10
	typeOfferFeatures       = 12
	typeOfferAbsoluteExpiry = 14
	typeOfferPaths          = 16
	typeOfferIssuer         = 18
	typeOfferQuantityMax    = 20
	typeOfferIssuerID       = 22
)

// offerRanges are where an offer's fields may be.
var offerRanges = [][2]uint64{{1, 79}, {1_000_000_000, 1_999_999_999}}

// BlindedPath is a route blinding path (BOLT 4 blinded_path).
type BlindedPath struct {
	// FirstNodeID is the introduction node: a 33-byte public key, or a
	// 9-byte sciddir (direction byte 0 or 1, then a short channel id).
	FirstNodeID []byte
	// FirstPathKey is the first path key, a 33-byte point.
	FirstPathKey []byte
	// Hops are the blinded hops, at least one.
	Hops []BlindedHop
}

// BlindedHop is one blinded_path_hop.
type BlindedHop struct {
	BlindedNodeID []byte // 33-byte point
	EncryptedData []byte
}

// Offer is what an offer says. Fields absent from the offer are zero.
type Offer struct {
	// Chains (offer_chains) lists the chains it is for; empty means
	// bitcoin only.
	Chains [][32]byte
	// Metadata (offer_metadata) is for the issuer's own use.
	Metadata []byte
	// Currency (offer_currency) is the ISO 4217 code Amount is in; empty
	// means the chain's millisatoshis.
	Currency string
	// Amount (offer_amount) per item; zero when the payer chooses.
	Amount uint64
	// Description (offer_description), and whether it is present.
	Description    string
	HasDescription bool
	// Features (offer_features), as sent.
	Features []byte
	// AbsoluteExpiry (offer_absolute_expiry); zero when it never expires.
	AbsoluteExpiry time.Time
	// Paths (offer_paths) reach the issuer.
	Paths []BlindedPath
	// Issuer (offer_issuer) names the issuer for people.
	Issuer string
	// QuantityMax (offer_quantity_max): nil when one item per invoice, 0
	// when unlimited.
	QuantityMax *uint64
	// IssuerID (offer_issuer_id) is the issuer's key (33 bytes), nil when
	// only Paths lead to it.
	IssuerID []byte

	// Records are the TLV fields as read (or written), unknown odd ones
	// included, for copying into an invoice request. Set only on the
	// message decoded, not on an Offer embedded in a longer message.
	Records []Record
}

// Expired reports whether now is after the offer's absolute expiry.
func (o *Offer) Expired(now time.Time) bool {
	return !o.AbsoluteExpiry.IsZero() && now.After(o.AbsoluteExpiry)
}

// DecodeOffer reads an offer ("lno1...") and checks what a reader of an
// offer must before responding to it, except the time and the chains.
func DecodeOffer(s string) (*Offer, error) {
	prefix, data, err := DecodeString(s)
	if err != nil {
		return nil, err
	}
	if prefix != PrefixOffer {
		return nil, fail(ErrString, "prefix %q is not %q", prefix, PrefixOffer)
	}
	records, err := ParseTLV(data)
	if err != nil {
		return nil, err
	}
	o := &Offer{Records: records}
	for _, r := range records {
		if !inRanges(r.Type, offerRanges...) {
			return nil, fail(ErrTLV, "type %d is outside an offer's ranges", r.Type)
		}
		known, err := o.read(r)
		if err != nil {
			return nil, err
		}
		if !known && r.Type%2 == 0 {
			return nil, fail(ErrTLV, "unknown even type %d", r.Type)
		}
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	return o, nil
}

// read sets the offer field r holds, reporting whether r is one.
func (o *Offer) read(r Record) (bool, error) {
	var err error
	switch r.Type {
	case typeOfferChains:
		if len(r.Value) == 0 || len(r.Value)%32 != 0 {
			return true, fail(ErrField, "offer_chains of %d bytes", len(r.Value))
		}
		for i := 0; i < len(r.Value); i += 32 {
			o.Chains = append(o.Chains, [32]byte(r.Value[i:i+32]))
		}
	case typeOfferMetadata:
		o.Metadata = r.Value
	case typeOfferCurrency:
		o.Currency, err = text(r)
	case typeOfferAmount:
		o.Amount, err = tu64(r)
		if err == nil && o.Amount == 0 {
			err = fail(ErrField, "offer_amount is zero")
		}
	case typeOfferDescription:
		o.Description, err = text(r)
		o.HasDescription = true
	case typeOfferFeatures:
		o.Features = r.Value
		err = checkFeatures("offer_features", r.Value)
	case typeOfferAbsoluteExpiry:
		var v uint64
		if v, err = tu64(r); err == nil {
			o.AbsoluteExpiry = unixTime(v)
		}
	case typeOfferPaths:
		o.Paths, err = readPaths("offer_paths", r.Value)
	case typeOfferIssuer:
		o.Issuer, err = text(r)
	case typeOfferQuantityMax:
		var v uint64
		if v, err = tu64(r); err == nil {
			o.QuantityMax = &v
		}
	case typeOfferIssuerID:
		o.IssuerID, err = point("offer_issuer_id", r.Value)
	default:
		return false, nil
	}
	return true, err
}

// check applies the rules between an offer's fields.
func (o *Offer) check() error {
	switch {
	case o.Amount != 0 && !o.HasDescription:
		return fail(ErrField, "offer_amount without offer_description")
	case o.Currency != "" && o.Amount == 0:
		return fail(ErrField, "offer_currency without offer_amount")
	case o.IssuerID == nil && len(o.Paths) == 0:
		return fail(ErrField, "neither offer_issuer_id nor offer_paths")
	}
	return nil
}

// unixTime converts seconds since the epoch, capping what time.Time cannot
// hold.
func unixTime(v uint64) time.Time {
	const max = 1 << 62
	if v > max {
		v = max
	}
	return time.Unix(int64(v), 0)
}

// point checks a 33-byte compressed secp256k1 point.
func point(field string, b []byte) ([]byte, error) {
	if len(b) != 33 {
		return nil, fail(ErrField, "%s of %d bytes, want 33", field, len(b))
	}
	if _, err := btcec.ParsePubKey(b); err != nil {
		return nil, fail(ErrField, "%s: %v", field, err)
	}
	return b, nil
}

// readPaths reads one or more blinded_path entries filling the value.
func readPaths(field string, b []byte) ([]BlindedPath, error) {
	if len(b) == 0 {
		return nil, fail(ErrField, "%s is empty", field)
	}
	rd := &reader{b: b, ok: true}
	var out []BlindedPath
	for len(rd.b) > 0 {
		var p BlindedPath
		switch kind := rd.take(1); {
		case kind == nil:
		case kind[0] == 0 || kind[0] == 1:
			p.FirstNodeID = append(kind, rd.take(8)...)
		default:
			p.FirstNodeID = append(kind, rd.take(32)...)
		}
		p.FirstPathKey = rd.take(33)
		n := int(rd.u8())
		if !rd.ok {
			return nil, fail(ErrField, "%s: truncated blinded path", field)
		}
		if n == 0 {
			return nil, fail(ErrField, "%s: a blinded path with no hops", field)
		}
		for i := 0; i < n; i++ {
			id := rd.take(33)
			enc := rd.take(int(rd.u16()))
			if !rd.ok {
				return nil, fail(ErrField, "%s: truncated blinded hop", field)
			}
			if _, err := point(field+" blinded_node_id", id); err != nil {
				return nil, err
			}
			p.Hops = append(p.Hops, BlindedHop{BlindedNodeID: id, EncryptedData: enc})
		}
		if len(p.FirstNodeID) == 33 {
			if _, err := point(field+" first_node_id", p.FirstNodeID); err != nil {
				return nil, err
			}
		}
		if _, err := point(field+" first_path_key", p.FirstPathKey); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// appendPaths writes blinded paths.
func appendPaths(b []byte, paths []BlindedPath) []byte {
	for _, p := range paths {
		b = append(b, p.FirstNodeID...)
		b = append(b, p.FirstPathKey...)
		b = append(b, byte(len(p.Hops)))
		for _, h := range p.Hops {
			b = append(b, h.BlindedNodeID...)
			b = append(b, byte(len(h.EncryptedData)>>8), byte(len(h.EncryptedData)))
			b = append(b, h.EncryptedData...)
		}
	}
	return b
}

// records writes the offer's fields in type order.
func (o *Offer) records() []Record {
	var out []Record
	add := func(t uint64, v []byte) { out = append(out, Record{Type: t, Value: v}) }
	if len(o.Chains) > 0 {
		var v []byte
		for _, c := range o.Chains {
			v = append(v, c[:]...)
		}
		add(typeOfferChains, v)
	}
	if o.Metadata != nil {
		add(typeOfferMetadata, o.Metadata)
	}
	if o.Currency != "" {
		add(typeOfferCurrency, []byte(o.Currency))
	}
	if o.Amount != 0 {
		add(typeOfferAmount, tu64Bytes(o.Amount))
	}
	if o.HasDescription || o.Description != "" {
		add(typeOfferDescription, []byte(o.Description))
	}
	if len(o.Features) > 0 {
		add(typeOfferFeatures, o.Features)
	}
	if !o.AbsoluteExpiry.IsZero() {
		add(typeOfferAbsoluteExpiry, tu64Bytes(uint64(o.AbsoluteExpiry.Unix())))
	}
	if len(o.Paths) > 0 {
		add(typeOfferPaths, appendPaths(nil, o.Paths))
	}
	if o.Issuer != "" {
		add(typeOfferIssuer, []byte(o.Issuer))
	}
	if o.QuantityMax != nil {
		add(typeOfferQuantityMax, tu64Bytes(*o.QuantityMax))
	}
	if o.IssuerID != nil {
		add(typeOfferIssuerID, o.IssuerID)
	}
	return out
}

// Encode writes the offer's fields (Records is ignored) as an "lno1..."
// string, after checking it as DecodeOffer would.
func (o *Offer) Encode() (string, error) {
	s := EncodeString(PrefixOffer, EncodeTLV(o.records()))
	if _, err := DecodeOffer(s); err != nil {
		return "", err
	}
	return s, nil
}

// ID is the offer id Core Lightning and Eclair name an offer by: the
// Merkle root of its TLV stream.
func (o *Offer) ID() [32]byte {
	if o.Records != nil {
		return MerkleRoot(o.Records)
	}
	return MerkleRoot(o.records())
}
