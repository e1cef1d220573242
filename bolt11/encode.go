package bolt11

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil/bech32"
)

// Encode writes inv as a lower-case payment request signed by key. It
// refuses what a writer must not write: a missing or zero payment secret,
// both or neither of a description and its hash (an empty Description with
// no DescriptionHash is an empty d field, which is allowed), a description
// over MaxDescriptionLen bytes or not UTF-8, a negative amount or expiry,
// unknown required feature bits, malformed fallbacks or route hints, a field
// over 1023 groups. Payee and Signature are ignored: the payee is key's
// public key, written in an n field when ExplicitPayee is set.
func Encode(inv *Invoice, key *btcec.PrivateKey) (string, error) {
	prefix, err := Prefix(inv.Network)
	if err != nil {
		return "", err
	}
	amount, err := formatAmount(inv.Amount)
	if err != nil {
		return "", err
	}
	hrp := prefix + amount
	ts := inv.Timestamp.Unix()
	if ts < 0 || ts >= 1<<35 {
		return "", fail(ErrField, "timestamp %d does not fit in 35 bits", ts)
	}
	if inv.PaymentSecret == ([32]byte{}) {
		return "", fail(ErrField, "payment secret is zero")
	}
	if inv.Expiry < 0 {
		return "", fail(ErrField, "negative expiry %s", inv.Expiry)
	}

	w := &writer{groups: uintGroups(uint64(ts), timestampGroups)}
	w.bytes(tagPaymentHash, inv.PaymentHash[:])
	w.bytes(tagPaymentSecret, inv.PaymentSecret[:])
	switch {
	case inv.DescriptionHash != nil && inv.Description != "":
		return "", fail(ErrField, "description and description hash are exclusive")
	case inv.DescriptionHash != nil:
		w.bytes(tagDescriptionHash, inv.DescriptionHash[:])
	default:
		if len(inv.Description) > MaxDescriptionLen {
			return "", fail(ErrField, "description is %d bytes, at most %d fit", len(inv.Description), MaxDescriptionLen)
		}
		if !utf8.ValidString(inv.Description) {
			return "", fail(ErrField, "description is not UTF-8")
		}
		w.bytes(tagDescription, []byte(inv.Description))
	}
	if inv.ExplicitPayee {
		w.bytes(tagPayee, key.PubKey().SerializeCompressed())
	}
	if inv.Expiry != DefaultExpiry {
		w.field(tagExpiry, uintGroups(uint64(inv.Expiry/time.Second), 0))
	}
	w.field(tagMinFinalCLTV, uintGroups(inv.MinFinalCLTV, 0))
	for _, f := range inv.Fallbacks {
		if err := checkFallback(f); err != nil {
			return "", err
		}
		w.field(tagFallback, append([]byte{f.Version}, toGroups(f.Program)...))
	}
	for _, route := range inv.Routes {
		b, err := routeBytes(route)
		if err != nil {
			return "", err
		}
		w.bytes(tagRoute, b)
	}
	if len(inv.Features) > 0 {
		g, err := featureGroups(inv.Features)
		if err != nil {
			return "", err
		}
		w.field(tagFeatures, g)
	}
	if inv.Metadata != nil {
		w.bytes(tagMetadata, inv.Metadata)
	}
	if w.err != nil {
		return "", w.err
	}

	compact := ecdsa.SignCompact(key, signingHash(hrp, w.groups), true)
	// SignCompact writes the recovery id first (27 + 4 for a compressed
	// key + id); BOLT11 puts it last.
	sig := append(compact[1:65:65], compact[0]-27-4)
	s, err := bech32.Encode(hrp, append(w.groups, toGroups(sig)...))
	if err != nil {
		return "", fail(ErrBech32, "%v", err)
	}
	return s, nil
}

// EncodePayable writes inv as an invoice today's payers take, signed by key:
// a random payment secret, the features var_onion_optin and payment_secret
// (both required), a final CLTV delta of 80 blocks when MinFinalCLTV is
// zero, the timestamp and expiry in whole seconds. The expiry must be at
// least one second. Nodes whose RPC signs or stores an invoice they are
// handed (Core Lightning's signinvoice and createinvoice) take such a string
// signed with any key; the memory node signs with its own.
func EncodePayable(inv Invoice, key *btcec.PrivateKey) (string, error) {
	if inv.Expiry < time.Second {
		return "", fail(ErrField, "expiry under one second")
	}
	inv.Timestamp = inv.Timestamp.Truncate(time.Second)
	inv.Expiry = inv.Expiry.Truncate(time.Second)
	inv.Features = []int{8, 14}
	if inv.MinFinalCLTV == 0 {
		inv.MinFinalCLTV = 80
	}
	if _, err := rand.Read(inv.PaymentSecret[:]); err != nil {
		return "", fmt.Errorf("bolt11: payment secret: %w", err)
	}
	return Encode(&inv, key)
}

// formatAmount writes the amount with the largest multiplier that keeps it
// whole, as the specification asks writers to.
func formatAmount(msat int64) (string, error) {
	switch {
	case msat < 0:
		return "", fail(ErrHRP, "negative amount %d msat", msat)
	case msat == 0:
		return "", nil
	case msat%100_000_000_000 == 0:
		return strconv.FormatInt(msat/100_000_000_000, 10), nil
	case msat%100_000_000 == 0:
		return strconv.FormatInt(msat/100_000_000, 10) + "m", nil
	case msat%100_000 == 0:
		return strconv.FormatInt(msat/100_000, 10) + "u", nil
	case msat%100 == 0:
		return strconv.FormatInt(msat/100, 10) + "n", nil
	case msat > math.MaxInt64/10:
		return "", fail(ErrHRP, "amount %d msat is too large", msat)
	}
	return strconv.FormatInt(msat*10, 10) + "p", nil
}

type writer struct {
	groups []byte
	err    error
}

func (w *writer) field(tag byte, data []byte) {
	if len(data) > maxFieldGroups {
		if w.err == nil {
			w.err = fail(ErrField, "%s would be %d groups, at most %d fit", tagName(tag), len(data), maxFieldGroups)
		}
		return
	}
	w.groups = append(w.groups, tag, byte(len(data)>>5), byte(len(data)&31))
	w.groups = append(w.groups, data...)
}

func (w *writer) bytes(tag byte, b []byte) { w.field(tag, toGroups(b)) }

func toGroups(b []byte) []byte {
	g, _ := bech32.ConvertBits(b, 8, 5, true) // cannot fail: 8 to 5 with padding
	return g
}

// uintGroups writes v big-endian in n groups, or in as few as it needs when
// n is zero (no groups at all for zero).
func uintGroups(v uint64, n int) []byte {
	var g []byte
	for ; v > 0 || len(g) < n; v >>= 5 {
		g = append(g, byte(v&31))
	}
	for i, j := 0, len(g)-1; i < j; i, j = i+1, j-1 {
		g[i], g[j] = g[j], g[i]
	}
	return g
}

func featureGroups(bits []int) ([]byte, error) {
	top := 0
	for _, b := range bits {
		if b < 0 || b >= maxFieldGroups*5 {
			return nil, fail(ErrFeature, "feature bit %d out of range", b)
		}
		if b%2 == 0 && !knownEvenFeatures[b] {
			return nil, fail(ErrFeature, "unknown required feature bit %d", b)
		}
		top = max(top, b)
	}
	g := make([]byte, top/5+1)
	for _, b := range bits {
		g[len(g)-1-b/5] |= 1 << (b % 5)
	}
	return g, nil
}

func checkFallback(f Fallback) error {
	n := len(f.Program)
	switch {
	case f.Version > 18:
		return fail(ErrField, "fallback version %d is not defined", f.Version)
	case f.Version == 17 || f.Version == 18:
		if n != 20 {
			return fail(ErrField, "fallback version %d needs a 20-byte hash, got %d", f.Version, n)
		}
	case f.Version == 0:
		if n != 20 && n != 32 {
			return fail(ErrField, "fallback witness v0 program is %d bytes, want 20 or 32", n)
		}
	case n < 2 || n > 40:
		return fail(ErrField, "fallback witness v%d program is %d bytes, want 2 to 40", f.Version, n)
	}
	return nil
}

func routeBytes(route []Hop) ([]byte, error) {
	if len(route) == 0 {
		return nil, fail(ErrField, "empty route hint")
	}
	var b bytes.Buffer
	for _, h := range route {
		if _, err := btcec.ParsePubKey(h.NodeID[:]); err != nil {
			return nil, fail(ErrField, "route hint node id: %v", err)
		}
		b.Write(h.NodeID[:])
		b.Write(binary.BigEndian.AppendUint64(nil, h.ShortChannelID))
		b.Write(binary.BigEndian.AppendUint32(nil, h.FeeBaseMsat))
		b.Write(binary.BigEndian.AppendUint32(nil, h.FeeProportionalMillionths))
		b.Write(binary.BigEndian.AppendUint16(nil, h.CLTVExpiryDelta))
	}
	return b.Bytes(), nil
}
