package bolt12

import "strings"

// charset is bech32's alphabet: the value of a character is its index.
const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

// DecodeString reads a BOLT12 string: prefix, "1", and the bech32 data
// without a checksum, all lowercase or all uppercase, where a "+" followed
// by any whitespace may join two characters. It returns the prefix in
// lowercase and the TLV bytes.
func DecodeString(s string) (prefix string, data []byte, err error) {
	joined, err := join(s)
	if err != nil {
		return "", nil, err
	}
	lower := strings.ToLower(joined)
	if joined != lower && joined != strings.ToUpper(joined) {
		return "", nil, fail(ErrString, "mixed case")
	}
	sep := strings.LastIndexByte(lower, '1')
	if sep < 1 {
		return "", nil, fail(ErrString, "no prefix before the separator 1")
	}
	prefix = lower[:sep]
	for _, c := range prefix {
		if c < 'a' || c > 'z' {
			return "", nil, fail(ErrString, "prefix %q is not letters", prefix)
		}
	}
	groups := make([]byte, 0, len(lower)-sep-1)
	for i := sep + 1; i < len(lower); i++ {
		v := strings.IndexByte(charset, lower[i])
		if v < 0 {
			return "", nil, fail(ErrString, "character %q is not bech32", lower[i])
		}
		groups = append(groups, byte(v))
	}
	data, err = fromGroups(groups)
	if err != nil {
		return "", nil, err
	}
	return prefix, data, nil
}

// join removes each "+" and the whitespace after it, refusing a "+" that is
// not between two other characters, and whitespace anywhere else.
func join(s string) (string, error) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if b.Len() == 0 {
				return "", fail(ErrString, `"+" at the start`)
			}
			j := i + 1
			for j < len(s) && isSpace(s[j]) {
				j++
			}
			if j == len(s) || s[j] == '+' {
				return "", fail(ErrString, `"+" not followed by a bech32 character`)
			}
			i = j - 1
		case isSpace(c):
			return "", fail(ErrString, "whitespace not after a +")
		case c < 0x21 || c > 0x7e:
			return "", fail(ErrString, "byte %#x", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// fromGroups turns 5-bit groups into bytes; the padding must be under 5
// bits and zero.
func fromGroups(groups []byte) ([]byte, error) {
	out := make([]byte, 0, len(groups)*5/8)
	var acc uint32
	var bits uint
	for _, g := range groups {
		acc = acc<<5 | uint32(g)
		bits += 5
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
			acc &= 1<<bits - 1
		}
	}
	if bits >= 5 {
		return nil, fail(ErrString, "%d bits of padding", bits)
	}
	if acc != 0 {
		return nil, fail(ErrString, "padding bits are not zero")
	}
	return out, nil
}

// EncodeString writes prefix, "1" and data as lowercase bech32 without a
// checksum or "+".
func EncodeString(prefix string, data []byte) string {
	var b strings.Builder
	b.Grow(len(prefix) + 1 + (len(data)*8+4)/5)
	b.WriteString(prefix)
	b.WriteByte('1')
	var acc uint32
	var bits uint
	for _, d := range data {
		acc = acc<<8 | uint32(d)
		bits += 8
		for bits >= 5 {
			bits -= 5
			b.WriteByte(charset[acc>>bits&31])
		}
		acc &= 1<<bits - 1
	}
	if bits > 0 {
		b.WriteByte(charset[acc<<(5-bits)&31])
	}
	return b.String()
}
