package bolt12

import (
	"bytes"
	"crypto/sha256"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
)

// isSignatureType reports whether t is a signature TLV element (240 to
// 1000 inclusive), which the Merkle tree leaves out.
func isSignatureType(t uint64) bool { return t >= 240 && t <= 1000 }

// taggedHash is H(tag, msg) = SHA256(SHA256(tag) || SHA256(tag) || msg).
func taggedHash(tag []byte, msg ...[]byte) [32]byte {
	th := sha256.Sum256(tag)
	h := sha256.New()
	h.Write(th[:])
	h.Write(th[:])
	for _, m := range msg {
		h.Write(m)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// branch is H("LnBranch", lesser || greater).
func branch(a, b [32]byte) [32]byte {
	if bytes.Compare(a[:], b[:]) > 0 {
		a, b = b, a
	}
	return taggedHash([]byte("LnBranch"), a[:], b[:])
}

// MerkleRoot is the root of the specification's Merkle tree over the
// non-signature records: each record's leaf H("LnLeaf", tlv) paired with
// its nonce H("LnNonce"||first-tlv, type), then adjacent nodes paired level
// by level, an odd last node carried up, so the deepest part of the tree is
// on the lowest-order leaves.
func MerkleRoot(records []Record) [32]byte {
	var first []byte
	var level [][32]byte
	for _, r := range records {
		if isSignatureType(r.Type) {
			continue
		}
		tlv := appendRecord(nil, r)
		if first == nil {
			first = tlv
		}
		leaf := taggedHash([]byte("LnLeaf"), tlv)
		nonce := taggedHash(append([]byte("LnNonce"), first...), appendBigSize(nil, r.Type))
		level = append(level, branch(leaf, nonce))
	}
	if len(level) == 0 {
		return [32]byte{}
	}
	for len(level) > 1 {
		next := level[:0:0]
		for i := 0; i+1 < len(level); i += 2 {
			next = append(next, branch(level[i], level[i+1]))
		}
		if len(level)%2 == 1 {
			next = append(next, level[len(level)-1])
		}
		level = next
	}
	return level[0]
}

// SignatureHash is what a signature TLV signs: H("lightning" || message ||
// field, merkle root), message "invoice_request" or "invoice", field
// "signature".
func SignatureHash(message, field string, root [32]byte) [32]byte {
	return taggedHash([]byte("lightning"+message+field), root[:])
}

// verify checks a BIP-340 signature over records by the key (33-byte
// compressed point).
func verify(message string, records []Record, sig, key []byte) error {
	if len(sig) != 64 {
		return fail(ErrSignature, "%s signature is %d bytes, want 64", message, len(sig))
	}
	pk, err := btcec.ParsePubKey(key)
	if err != nil {
		return fail(ErrField, "signing key: %v", err)
	}
	s, err := schnorr.ParseSignature(sig)
	if err != nil {
		return fail(ErrSignature, "%v", err)
	}
	h := SignatureHash(message, "signature", MerkleRoot(records))
	if !s.Verify(h[:], pk) {
		return fail(ErrSignature, "%s signature does not verify", message)
	}
	return nil
}

// sign appends the signature record (type 240) over records with key.
func sign(message string, records []Record, key *btcec.PrivateKey) ([]Record, error) {
	h := SignatureHash(message, "signature", MerkleRoot(records))
	s, err := schnorr.Sign(key, h[:])
	if err != nil {
		return nil, fail(ErrSignature, "%v", err)
	}
	out := make([]Record, 0, len(records)+1)
	sig := Record{Type: 240, Value: s.Serialize()}
	for _, r := range records {
		if r.Type > sig.Type && sig.Value != nil {
			out = append(out, sig)
			sig.Value = nil
		}
		out = append(out, r)
	}
	if sig.Value != nil {
		out = append(out, sig)
	}
	return out, nil
}
