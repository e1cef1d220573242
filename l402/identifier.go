package l402

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/l402kit/l402kit/backend"
)

// IdentifierVersion is the only identifier version this package mints and
// reads.
const IdentifierVersion uint16 = 0

// identifierLen is the encoded size of a version 0 identifier: a big-endian
// uint16 version, the payment hash and the token id.
const identifierLen = 2 + 32 + 32

// TokenID names one token; its root key is stored under it.
type TokenID [32]byte

// String returns the token id as lowercase hex.
func (t TokenID) String() string { return hex.EncodeToString(t[:]) }

// ParseTokenID parses 64 hex characters.
func ParseTokenID(s string) (TokenID, error) {
	var t TokenID
	if len(s) != 64 {
		return t, fmt.Errorf("%w: token id: want 64 hex characters, got %d", ErrMalformed, len(s))
	}
	if _, err := hex.Decode(t[:], []byte(s)); err != nil {
		return t, fmt.Errorf("%w: token id: %v", ErrMalformed, err)
	}
	return t, nil
}

// Identifier is what a token's macaroon identifier says: which invoice pays
// for the token and which root key signs it.
type Identifier struct {
	Version     uint16
	PaymentHash backend.PaymentHash
	TokenID     TokenID
}

// NewIdentifier returns a version 0 identifier for hash with a random token
// id from crypto/rand.
func NewIdentifier(hash backend.PaymentHash) (Identifier, error) {
	id := Identifier{Version: IdentifierVersion, PaymentHash: hash}
	if _, err := rand.Read(id.TokenID[:]); err != nil {
		return Identifier{}, fmt.Errorf("l402: token id: %w", err)
	}
	return id, nil
}

// Encode returns the identifier as Aperture lays it out: version (uint16 big
// endian), payment hash, token id.
func (id Identifier) Encode() []byte {
	b := make([]byte, identifierLen)
	id.put(b)
	return b
}

func (id Identifier) put(b []byte) {
	binary.BigEndian.PutUint16(b, id.Version)
	copy(b[2:34], id.PaymentHash[:])
	copy(b[34:66], id.TokenID[:])
}

// DecodeIdentifier reads an identifier written by Encode. Other versions and
// other lengths are ErrMalformed: a version this package does not know may
// carry fields it would misread.
func DecodeIdentifier(b []byte) (Identifier, error) {
	if len(b) < 2 {
		return Identifier{}, fmt.Errorf("%w: identifier is %d bytes, too short for a version", ErrMalformed, len(b))
	}
	v := binary.BigEndian.Uint16(b)
	if v != IdentifierVersion {
		return Identifier{}, fmt.Errorf("%w: unknown identifier version %d", ErrMalformed, v)
	}
	if len(b) != identifierLen {
		return Identifier{}, fmt.Errorf("%w: version 0 identifier is %d bytes, want %d", ErrMalformed, len(b), identifierLen)
	}
	id := Identifier{Version: v}
	copy(id.PaymentHash[:], b[2:34])
	copy(id.TokenID[:], b[34:66])
	return id, nil
}

// PaymentHashOf returns the payment hash a macaroon identifier commits to,
// in each layout L402 servers are known to mint:
//
//   - Aperture's version 0 (66 bytes: uint16 version, hash, token id), which
//     this package mints;
//   - the bare 32-byte payment hash of ngx_l402 (the nginx module) and the
//     l402_middleware crate it mints with;
//   - 33 bytes, 0xff followed by the hash, which ngx_l402's own reader also
//     accepts.
//
// A paying client needs the hash only to check that the macaroon and the
// invoice agree; an identifier in another layout is ErrMalformed, and a
// client may still pay by the invoice's own hash.
func PaymentHashOf(id []byte) (backend.PaymentHash, error) {
	var h backend.PaymentHash
	switch {
	case len(id) == identifierLen && binary.BigEndian.Uint16(id) == IdentifierVersion:
		copy(h[:], id[2:34])
	case len(id) == len(h):
		copy(h[:], id)
	case len(id) == len(h)+1 && id[0] == 0xff:
		copy(h[:], id[1:])
	default:
		return h, fmt.Errorf("%w: identifier of %d bytes is in no known layout (Aperture version 0, bare payment hash, 0xff and hash)",
			ErrMalformed, len(id))
	}
	return h, nil
}
