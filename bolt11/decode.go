package bolt11

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil/bech32"
)

// Decode reads a payment request and checks everything the specification
// says a reader must: see the package comment. s is the bare request, in
// lower or upper case; strip a "lightning:" URI scheme before calling.
func Decode(s string) (*Invoice, error) {
	hrp, groups, err := bech32.DecodeNoLimit(s)
	if err != nil {
		return nil, fail(ErrBech32, "%v", err)
	}
	// DecodeNoLimit accepts bech32m checksums too; BOLT11 uses bech32.
	if again, err := bech32.Encode(hrp, groups); err != nil || again != strings.ToLower(s) {
		return nil, fail(ErrBech32, "checksum is not bech32")
	}
	inv := &Invoice{}
	if inv.Network, inv.Amount, err = parseHRP(hrp); err != nil {
		return nil, err
	}
	if len(groups) < timestampGroups+signatureGroups {
		return nil, fail(ErrData, "%d five-bit groups, too short for a timestamp and a signature", len(groups))
	}
	signed := groups[:len(groups)-signatureGroups]
	ts, _ := readUint(signed[:timestampGroups])
	inv.Timestamp = time.Unix(int64(ts), 0)
	if err := inv.readFields(signed[timestampGroups:]); err != nil {
		return nil, err
	}
	if err := inv.checkSignature(hrp, signed, groups[len(signed):]); err != nil {
		return nil, err
	}
	return inv, nil
}

// parseHRP splits "ln" + currency + optional amount + optional multiplier.
func parseHRP(hrp string) (network string, msat int64, err error) {
	rest, ok := strings.CutPrefix(hrp, "ln")
	if !ok {
		return "", 0, fail(ErrHRP, "%q does not start with ln", hrp)
	}
	i := 0
	for i < len(rest) && rest[i] >= 'a' && rest[i] <= 'z' {
		i++
	}
	currency, amount := rest[:i], rest[i:]
	for _, n := range networks {
		if n.currency == currency {
			network = n.name
		}
	}
	if network == "" {
		return "", 0, fail(ErrHRP, "unknown currency prefix %q", "ln"+currency)
	}
	if amount == "" {
		return network, 0, nil
	}
	msat, err = parseAmount(amount)
	return network, msat, err
}

// msatPer is the number of millisatoshis in one unit of each multiplier,
// times ten so that pico-bitcoin (a tenth of a millisatoshi) is whole.
var msatPer = map[byte]int64{
	0:   100_000_000_000 * 10,
	'm': 100_000_000 * 10,
	'u': 100_000 * 10,
	'n': 100 * 10,
	'p': 1,
}

func parseAmount(amount string) (int64, error) {
	digits, mult := amount, byte(0)
	if last := amount[len(amount)-1]; last < '0' || last > '9' {
		digits, mult = amount[:len(amount)-1], last
	}
	per, ok := msatPer[mult]
	if !ok {
		return 0, fail(ErrHRP, "amount %q: unknown multiplier %q", amount, mult)
	}
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, fail(ErrHRP, "amount %q is not a decimal number and a multiplier", amount)
	}
	v, err := strconv.ParseUint(digits, 10, 63)
	if err != nil || v > uint64(math.MaxInt64/per) {
		return 0, fail(ErrHRP, "amount %q is too large", amount)
	}
	if v == 0 {
		// A zero amount would read as "any amount"; writers must write a
		// positive number or none.
		return 0, fail(ErrHRP, "amount %q is zero", amount)
	}
	tenths := int64(v) * per
	if tenths%10 != 0 {
		return 0, fail(ErrHRP, "amount %q is not a whole number of millisatoshis", amount)
	}
	return tenths / 10, nil
}

// readFields reads the tagged fields. Where a field that may appear once
// appears again, the first one counts, as the specification tells payers to
// use the first p field.
func (inv *Invoice) readFields(g []byte) error {
	seen := map[byte]bool{}
	for len(g) > 0 {
		if len(g) < 3 {
			return fail(ErrData, "%d five-bit groups left, too few for a field header", len(g))
		}
		tag, n := g[0], int(g[1])<<5|int(g[2])
		if len(g) < 3+n {
			return fail(ErrData, "field %s claims %d groups, %d are left", tagName(tag), n, len(g)-3)
		}
		data := g[3 : 3+n]
		g = g[3+n:]
		if err := inv.readField(tag, data, seen[tag]); err != nil {
			return err
		}
		seen[tag] = true
	}
	if !seen[tagPaymentHash] {
		return fail(ErrField, "no payment hash (p)")
	}
	if !seen[tagPaymentSecret] {
		return fail(ErrField, "no payment secret (s)")
	}
	if seen[tagDescription] == seen[tagDescriptionHash] {
		return fail(ErrField, "an invoice carries exactly one of a description (d) and a description hash (h)")
	}
	if !seen[tagExpiry] {
		inv.Expiry = DefaultExpiry
	}
	if !seen[tagMinFinalCLTV] {
		inv.MinFinalCLTV = DefaultMinFinalCLTV
	}
	return nil
}

func (inv *Invoice) readField(tag byte, data []byte, again bool) error {
	switch tag {
	case tagPaymentHash, tagPaymentSecret, tagDescriptionHash:
		if len(data) != hash256Groups {
			return fail(ErrField, "%s is %d groups long, want %d", tagName(tag), len(data), hash256Groups)
		}
		b, err := toBytes(tag, data)
		if err != nil || again {
			return err
		}
		switch tag {
		case tagPaymentHash:
			copy(inv.PaymentHash[:], b)
		case tagPaymentSecret:
			copy(inv.PaymentSecret[:], b)
		default:
			inv.DescriptionHash = (*[32]byte)(b)
		}
	case tagPayee:
		if len(data) != pubkeyGroups {
			return fail(ErrField, "n is %d groups long, want %d", len(data), pubkeyGroups)
		}
		b, err := toBytes(tag, data)
		if err != nil {
			return err
		}
		if _, err := btcec.ParsePubKey(b); err != nil {
			return fail(ErrField, "n is not a public key: %v", err)
		}
		if !again {
			copy(inv.Payee[:], b)
			inv.ExplicitPayee = true
		}
	case tagDescription:
		b, err := toBytes(tag, data)
		if err != nil {
			return err
		}
		if !utf8.Valid(b) {
			return fail(ErrField, "d is not UTF-8")
		}
		if !again {
			inv.Description = string(b)
		}
	case tagMetadata:
		b, err := toBytes(tag, data)
		if err != nil || again {
			return err
		}
		inv.Metadata = b
	case tagExpiry:
		if err := minimal(tag, data); err != nil || again {
			return err
		}
		secs, overflow := readUint(data)
		if maxSecs := uint64(math.MaxInt64 / int64(time.Second)); overflow || secs > maxSecs {
			// Some 292 years: the longest whole-second time.Duration.
			inv.Expiry = time.Duration(maxSecs) * time.Second
		} else {
			inv.Expiry = time.Duration(secs) * time.Second
		}
	case tagMinFinalCLTV:
		if err := minimal(tag, data); err != nil {
			return err
		}
		v, overflow := readUint(data)
		if overflow {
			return fail(ErrField, "c does not fit in 64 bits")
		}
		if !again {
			inv.MinFinalCLTV = v
		}
	case tagFeatures:
		if err := minimal(tag, data); err != nil {
			return err
		}
		bits, err := readFeatures(data)
		if err != nil || again {
			return err
		}
		inv.Features = bits
	case tagFallback:
		f, known, err := readFallback(data)
		if err != nil {
			return err
		}
		if known {
			inv.Fallbacks = append(inv.Fallbacks, f)
		}
	case tagRoute:
		hops, err := readRoute(data)
		if err != nil {
			return err
		}
		inv.Routes = append(inv.Routes, hops)
	}
	// Unknown fields are skipped: the format lets writers add them.
	return nil
}

// toBytes regroups five-bit groups into bytes; the bits left over must be
// fewer than five and zero, as a writer pads.
func toBytes(tag byte, data []byte) ([]byte, error) {
	b, err := bech32.ConvertBits(data, 5, 8, false)
	if err != nil {
		return nil, fail(ErrField, "%s: %v", tagName(tag), err)
	}
	return b, nil
}

// minimal refuses an integer field that starts with a zero group, which the
// specification says a reader should treat as invalid.
func minimal(tag byte, data []byte) error {
	if len(data) > 0 && data[0] == 0 {
		return fail(ErrField, "%s has a leading zero group", tagName(tag))
	}
	return nil
}

// readUint reads big-endian five-bit groups; overflow reports a value that
// needs more than 64 bits.
func readUint(data []byte) (v uint64, overflow bool) {
	for _, d := range data {
		if v>>59 != 0 {
			overflow = true
		}
		v = v<<5 | uint64(d)
	}
	return v, overflow
}

func readFeatures(data []byte) ([]int, error) {
	var bits []int
	for i := len(data) - 1; i >= 0; i-- {
		base := (len(data) - 1 - i) * 5
		for b := 0; b < 5; b++ {
			if data[i]&(1<<b) != 0 {
				bits = append(bits, base+b)
			}
		}
	}
	for _, bit := range bits {
		if bit%2 == 0 && !knownEvenFeatures[bit] {
			return nil, fail(ErrFeature, "requires unknown feature bit %d", bit)
		}
	}
	return bits, nil
}

// readFallback returns known=false for a version the specification leaves
// undefined (19 to 31): readers skip those.
func readFallback(data []byte) (f Fallback, known bool, err error) {
	if len(data) == 0 {
		return f, false, fail(ErrField, "f is empty")
	}
	f.Version = data[0]
	if f.Version > 18 {
		return f, false, nil
	}
	if f.Program, err = toBytes(tagFallback, data[1:]); err != nil {
		return f, false, err
	}
	if err := checkFallback(f); err != nil {
		return f, false, err
	}
	return f, true, nil
}

func readRoute(data []byte) ([]Hop, error) {
	b, err := toBytes(tagRoute, data)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 || len(b)%hopLen != 0 {
		return nil, fail(ErrField, "r is %d bytes, want a positive multiple of %d", len(b), hopLen)
	}
	hops := make([]Hop, 0, len(b)/hopLen)
	for ; len(b) > 0; b = b[hopLen:] {
		var h Hop
		copy(h.NodeID[:], b[:33])
		if _, err := btcec.ParsePubKey(h.NodeID[:]); err != nil {
			return nil, fail(ErrField, "r node id is not a public key: %v", err)
		}
		h.ShortChannelID = binary.BigEndian.Uint64(b[33:41])
		h.FeeBaseMsat = binary.BigEndian.Uint32(b[41:45])
		h.FeeProportionalMillionths = binary.BigEndian.Uint32(b[45:49])
		h.CLTVExpiryDelta = binary.BigEndian.Uint16(b[49:51])
		hops = append(hops, h)
	}
	return hops, nil
}

// signingHash is the SHA-256 of the human-readable part's bytes and the
// data part without the signature, zero-padded to whole bytes.
func signingHash(hrp string, signed []byte) []byte {
	data, _ := bech32.ConvertBits(signed, 5, 8, true) // cannot fail: 5 to 8 with padding
	h := sha256.New()
	h.Write([]byte(hrp))
	h.Write(data)
	return h.Sum(nil)
}

// checkSignature verifies the signature against the n field when there is
// one (and then refuses a high-S signature, as the specification requires),
// otherwise recovers the payee's key from it (accepting high S).
func (inv *Invoice) checkSignature(hrp string, signed, sigGroups []byte) error {
	sig, err := bech32.ConvertBits(sigGroups, 5, 8, false)
	if err != nil || len(sig) != len(inv.Signature) {
		return fail(ErrSignature, "malformed")
	}
	copy(inv.Signature[:], sig)
	recid := sig[64]
	if recid > 3 {
		return fail(ErrSignature, "recovery id %d is not 0 to 3", recid)
	}
	hash := signingHash(hrp, signed)
	if inv.ExplicitPayee {
		var r, s btcec.ModNScalar
		if r.SetByteSlice(sig[:32]) || s.SetByteSlice(sig[32:64]) {
			return fail(ErrSignature, "r or s is not below the group order")
		}
		if s.IsOverHalfOrder() {
			return fail(ErrSignature, "high-S signature with an explicit payee (n)")
		}
		pub, err := btcec.ParsePubKey(inv.Payee[:])
		if err != nil {
			return fail(ErrSignature, "payee: %v", err)
		}
		if !ecdsa.NewSignature(&r, &s).Verify(hash, pub) {
			return fail(ErrSignature, "does not verify against the payee (n)")
		}
		return nil
	}
	// RecoverCompact takes the recovery id first, offset by 27 and flagged
	// (+4) for a compressed key.
	compact := make([]byte, 65)
	compact[0] = 27 + 4 + recid
	copy(compact[1:], sig[:64])
	// A high-S signature is read as its low-S twin with the same recovery
	// id: the specification's "public-key recovery with high-S signature"
	// example negates s and keeps the id, and expects the signer's key.
	var s btcec.ModNScalar
	if !s.SetByteSlice(sig[32:64]) && s.IsOverHalfOrder() {
		s.Negate()
		s.PutBytesUnchecked(compact[33:65])
	}
	pub, _, err := ecdsa.RecoverCompact(compact, hash)
	if err != nil {
		return fail(ErrSignature, "no public key recovers from it: %v", err)
	}
	copy(inv.Payee[:], pub.SerializeCompressed())
	return nil
}

func tagName(tag byte) string {
	if tag < 32 {
		return "field " + string("qpzry9x8gf2tvdw0s3jn54khce6mua7l"[tag])
	}
	return "field ?"
}
