package l402

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/l402kit/l402kit/backend"
)

func TestIdentifierRoundTrip(t *testing.T) {
	var h backend.PaymentHash
	for i := range h {
		h[i] = byte(i)
	}
	id, err := NewIdentifier(h)
	if err != nil {
		t.Fatal(err)
	}
	if id.TokenID == (TokenID{}) {
		t.Fatal("token id is all zero; want random bytes")
	}
	other, err := NewIdentifier(h)
	if err != nil {
		t.Fatal(err)
	}
	if other.TokenID == id.TokenID {
		t.Fatal("two identifiers share a token id")
	}
	b := id.Encode()
	if len(b) != 66 {
		t.Fatalf("encoded length %d, want 66", len(b))
	}
	// Aperture's layout: uint16 version big endian, hash, token id.
	if b[0] != 0 || b[1] != 0 || !bytes.Equal(b[2:34], h[:]) || !bytes.Equal(b[34:], id.TokenID[:]) {
		t.Fatalf("layout: %x", b)
	}
	got, err := DecodeIdentifier(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != id {
		t.Fatalf("decoded %+v, want %+v", got, id)
	}
}

// An identifier as Aperture writes it (version 0, hash, token id), written
// out byte by byte here rather than produced by this package's encoder.
func TestDecodeIdentifierApertureLayout(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	tokenID := strings.Repeat("cd", 32)
	raw, _ := hex.DecodeString("0000" + hash + tokenID)
	id, err := DecodeIdentifier(raw)
	if err != nil {
		t.Fatal(err)
	}
	if id.Version != 0 || id.PaymentHash.String() != hash || id.TokenID.String() != tokenID {
		t.Fatalf("got %+v", id)
	}
}

func TestDecodeIdentifierMalformed(t *testing.T) {
	good := Identifier{}.Encode()
	v1 := append([]byte{0, 1}, good[2:]...)
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"one byte", []byte{0}, "too short"},
		{"version only", []byte{0, 0}, "66"},
		{"short", good[:65], "66"},
		{"long", append(append([]byte{}, good...), 0), "66"},
		{"unknown version", v1, "unknown identifier version 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeIdentifier(c.in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %q, want it to say %q", err, c.want)
			}
		})
	}
}

func TestParseTokenID(t *testing.T) {
	s := strings.Repeat("0f", 32)
	id, err := ParseTokenID(s)
	if err != nil || id.String() != s {
		t.Fatalf("ParseTokenID = %v, %v", id, err)
	}
	for _, bad := range []string{"", "0f", strings.Repeat("zz", 32)} {
		if _, err := ParseTokenID(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseTokenID(%q) err = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestPaymentHashOf(t *testing.T) {
	var h backend.PaymentHash
	for i := range h {
		h[i] = byte(i + 1)
	}
	aperture := Identifier{PaymentHash: h, TokenID: TokenID{9}}.Encode()
	v1 := append([]byte(nil), aperture...)
	v1[1] = 1 // a version this package does not know
	cases := []struct {
		name string
		id   []byte
		ok   bool
	}{
		{"Aperture version 0", aperture, true},
		{"ngx_l402 bare hash", h[:], true},
		{"0xff and hash", append([]byte{0xff}, h[:]...), true},
		{"other prefix byte", append([]byte{0xfe}, h[:]...), false},
		{"unknown version", v1, false},
		{"short", h[:20], false},
		{"empty", nil, false},
	}
	for _, c := range cases {
		got, err := PaymentHashOf(c.id)
		if c.ok && (err != nil || got != h) {
			t.Errorf("%s: %s, %v; want %s", c.name, got, err, h)
		}
		if !c.ok && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", c.name, err)
		}
	}
}
