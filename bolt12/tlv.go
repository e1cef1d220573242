package bolt12

import (
	"encoding/binary"
	"unicode/utf8"
)

// Record is one TLV field: its type and value.
type Record struct {
	Type  uint64
	Value []byte
}

// bigSize reads a BOLT 1 BigSize, which must be minimally encoded.
func bigSize(b []byte) (v uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch b[0] {
	case 0xfd:
		if len(b) < 3 {
			return 0, 0, false
		}
		v = uint64(binary.BigEndian.Uint16(b[1:3]))
		return v, 3, v >= 0xfd
	case 0xfe:
		if len(b) < 5 {
			return 0, 0, false
		}
		v = uint64(binary.BigEndian.Uint32(b[1:5]))
		return v, 5, v > 0xffff
	case 0xff:
		if len(b) < 9 {
			return 0, 0, false
		}
		v = binary.BigEndian.Uint64(b[1:9])
		return v, 9, v > 0xffffffff
	}
	return uint64(b[0]), 1, true
}

// appendBigSize writes v as a BigSize.
func appendBigSize(b []byte, v uint64) []byte {
	switch {
	case v < 0xfd:
		return append(b, byte(v))
	case v <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 0xfd), uint16(v))
	case v <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, 0xfe), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xff), v)
}

// ParseTLV reads a TLV stream: types strictly ascending, BigSizes minimal,
// every value within the stream. It does not judge the types.
func ParseTLV(b []byte) ([]Record, error) {
	var out []Record
	for len(b) > 0 {
		t, n, ok := bigSize(b)
		if !ok {
			return nil, fail(ErrTLV, "truncated or non-minimal type")
		}
		b = b[n:]
		l, n, ok := bigSize(b)
		if !ok {
			return nil, fail(ErrTLV, "truncated or non-minimal length of type %d", t)
		}
		b = b[n:]
		if l > uint64(len(b)) {
			return nil, fail(ErrTLV, "type %d: length %d past the end", t, l)
		}
		if len(out) > 0 && t <= out[len(out)-1].Type {
			return nil, fail(ErrTLV, "type %d after type %d", t, out[len(out)-1].Type)
		}
		out = append(out, Record{Type: t, Value: b[:l:l]})
		b = b[l:]
	}
	return out, nil
}

// EncodeTLV writes records, which must be in ascending type order.
func EncodeTLV(records []Record) []byte {
	var b []byte
	for _, r := range records {
		b = appendRecord(b, r)
	}
	return b
}

func appendRecord(b []byte, r Record) []byte {
	b = appendBigSize(b, r.Type)
	b = appendBigSize(b, uint64(len(r.Value)))
	return append(b, r.Value...)
}

// tu64 reads a truncated u64: at most 8 bytes, no leading zero byte.
func tu64(r Record) (uint64, error) {
	if len(r.Value) > 8 || (len(r.Value) > 0 && r.Value[0] == 0) {
		return 0, fail(ErrField, "type %d: not a minimal tu64", r.Type)
	}
	var v uint64
	for _, c := range r.Value {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// appendTU64 writes v as a truncated u64.
func appendTU64(b []byte, v uint64) []byte {
	for i := 7; i >= 0; i-- {
		if c := byte(v >> (8 * i)); c != 0 || len(b) > 0 {
			b = append(b, c)
		}
	}
	return b
}

func tu64Bytes(v uint64) []byte { return appendTU64(nil, v) }

// text reads a UTF-8 field.
func text(r Record) (string, error) {
	if !utf8.Valid(r.Value) {
		return "", fail(ErrField, "type %d: not UTF-8", r.Type)
	}
	return string(r.Value), nil
}

// inRanges reports whether t is in one of the inclusive ranges.
func inRanges(t uint64, ranges ...[2]uint64) bool {
	for _, r := range ranges {
		if t >= r[0] && t <= r[1] {
			return true
		}
	}
	return false
}

// reader walks a value of a subtype (blinded paths, payinfo, fallbacks).
type reader struct {
	b  []byte
	ok bool
}

func (r *reader) take(n int) []byte {
	if !r.ok || n > len(r.b) {
		r.ok = false
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte {
	v := r.take(1)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *reader) u16() uint16 {
	v := r.take(2)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint16(v)
}

func (r *reader) u32() uint32 {
	v := r.take(4)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func (r *reader) u64() uint64 {
	v := r.take(8)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// features reports the bits set in a BOLT 9 feature field (big-endian: bit
// 0 is the lowest bit of the last byte), ascending.
func features(b []byte) []int {
	var out []int
	for i := len(b) - 1; i >= 0; i-- {
		for bit := 0; bit < 8; bit++ {
			if b[i]&(1<<bit) != 0 {
				out = append(out, (len(b)-1-i)*8+bit)
			}
		}
	}
	return out
}

// checkFeatures refuses a required (even) bit not in known.
func checkFeatures(field string, b []byte, known ...int) error {
	for _, f := range features(b) {
		if f%2 != 0 {
			continue
		}
		ok := false
		for _, k := range known {
			ok = ok || k == f
		}
		if !ok {
			return fail(ErrFeature, "%s requires unknown feature %d", field, f)
		}
	}
	return nil
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
