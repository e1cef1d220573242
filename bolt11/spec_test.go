package bolt11

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/btcutil/bech32"
)

// specVectors is testdata/spec-vectors.json: the examples of BOLT11 itself,
// with the values each example's breakdown states.
type specVectors struct {
	Source struct {
		Repository, Path, Commit string
	}
	PrivateKey string `json:"private_key"`
	Valid      []struct {
		Title           string
		Invoice         string
		Network         string
		AmountMsat      int64  `json:"amount_msat"`
		Timestamp       int64  `json:"timestamp"`
		PaymentHash     string `json:"payment_hash"`
		PaymentSecret   string `json:"payment_secret"`
		Description     *string
		DescriptionHash string `json:"description_hash"`
		DescriptionText string `json:"description_text"`
		ExpirySeconds   int64  `json:"expiry_seconds"`
		MinFinalCLTV    uint64 `json:"min_final_cltv"`
		Fallbacks       []string
		Routes          [][]struct {
			NodeID                    string `json:"node_id"`
			ShortChannelID            string `json:"short_channel_id"`
			FeeBaseMsat               uint32 `json:"fee_base_msat"`
			FeeProportionalMillionths uint32 `json:"fee_proportional_millionths"`
			CLTVExpiryDelta           uint16 `json:"cltv_expiry_delta"`
		}
		Features      []int
		Metadata      string
		Payee         string
		ExplicitPayee bool `json:"explicit_payee"`
		HighS         bool `json:"high_s"`
		Signature     string
		RecoveryID    *byte  `json:"recovery_id"`
		SigningData   string `json:"signing_data"`
		SigningHash   string `json:"signing_hash"`
	}
	Invalid []struct {
		Title   string
		Invoice string
		Error   string
	}
}

func loadVectors(t testing.TB) *specVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/spec-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v specVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Valid) == 0 || len(v.Invalid) == 0 || v.Source.Commit == "" {
		t.Fatal("spec-vectors.json: no vectors or no provenance")
	}
	return &v
}

func specKey(t testing.TB, v *specVectors) *btcec.PrivateKey {
	t.Helper()
	b, err := hex.DecodeString(v.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := btcec.PrivKeyFromBytes(b)
	return key
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// fallbackFromAddress turns the address an example's title names into the
// version and program its f field must carry.
func fallbackFromAddress(t *testing.T, addr string) Fallback {
	t.Helper()
	if strings.HasPrefix(addr, "bc1") || strings.HasPrefix(addr, "tb1") {
		_, data, err := bech32.DecodeNoLimit(addr)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := bech32.ConvertBits(data[1:], 5, 8, false)
		if err != nil {
			t.Fatal(err)
		}
		return Fallback{Version: data[0], Program: prog}
	}
	hash, version, err := base58.CheckDecode(addr)
	if err != nil {
		t.Fatal(err)
	}
	switch version {
	case 0x00, 0x6f: // P2PKH on mainnet, testnet
		return Fallback{Version: 17, Program: hash}
	case 0x05, 0xc4: // P2SH on mainnet, testnet
		return Fallback{Version: 18, Program: hash}
	}
	t.Fatalf("address %s: version %#x", addr, version)
	return Fallback{}
}

func parseSCID(t *testing.T, s string) uint64 {
	t.Helper()
	parts := strings.Split(s, "x")
	if len(parts) != 3 {
		t.Fatalf("short channel id %q", s)
	}
	var n [3]uint64
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		n[i] = v
	}
	return n[0]<<40 | n[1]<<16 | n[2]
}

func TestSpecValid(t *testing.T) {
	v := loadVectors(t)
	key := specKey(t, v)
	for _, tc := range v.Valid {
		t.Run(tc.Title, func(t *testing.T) {
			inv, err := Decode(tc.Invoice)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := &Invoice{
				Network:       tc.Network,
				Amount:        tc.AmountMsat,
				Timestamp:     time.Unix(tc.Timestamp, 0),
				PaymentHash:   [32]byte(unhex(t, tc.PaymentHash)),
				PaymentSecret: [32]byte(unhex(t, tc.PaymentSecret)),
				Expiry:        time.Duration(tc.ExpirySeconds) * time.Second,
				MinFinalCLTV:  tc.MinFinalCLTV,
				Features:      tc.Features,
				Payee:         [33]byte(unhex(t, tc.Payee)),
				ExplicitPayee: tc.ExplicitPayee,
				Signature:     inv.Signature,
			}
			if tc.Description != nil {
				want.Description = *tc.Description
			}
			if tc.DescriptionHash != "" {
				h := [32]byte(unhex(t, tc.DescriptionHash))
				want.DescriptionHash = &h
				if sha256.Sum256([]byte(tc.DescriptionText)) != h {
					t.Errorf("fixture: description hash is not the SHA-256 of its text")
				}
			}
			for _, a := range tc.Fallbacks {
				want.Fallbacks = append(want.Fallbacks, fallbackFromAddress(t, a))
			}
			for _, r := range tc.Routes {
				var hops []Hop
				for _, h := range r {
					hops = append(hops, Hop{
						NodeID:                    [33]byte(unhex(t, h.NodeID)),
						ShortChannelID:            parseSCID(t, h.ShortChannelID),
						FeeBaseMsat:               h.FeeBaseMsat,
						FeeProportionalMillionths: h.FeeProportionalMillionths,
						CLTVExpiryDelta:           h.CLTVExpiryDelta,
					})
				}
				want.Routes = append(want.Routes, hops)
			}
			if tc.Metadata != "" {
				want.Metadata = unhex(t, tc.Metadata)
			}
			if diff := compare(inv, want); diff != "" {
				t.Errorf("decoded differs from the spec's breakdown: %s", diff)
			}

			if tc.Signature != "" {
				if got := hex.EncodeToString(inv.Signature[:64]); got != tc.Signature {
					t.Errorf("signature %s, spec %s", got, tc.Signature)
				}
				if inv.Signature[64] != *tc.RecoveryID {
					t.Errorf("recovery id %d, spec %d", inv.Signature[64], *tc.RecoveryID)
				}
				checkSigningData(t, tc.Invoice, tc.SigningData, tc.SigningHash)
				if !tc.HighS {
					// The examples are signed with RFC6979 nonces, as
					// SignCompact signs: the same key signs the same hash
					// to the same signature.
					compact := ecdsa.SignCompact(key, unhex(t, tc.SigningHash), true)
					if hex.EncodeToString(compact[1:]) != tc.Signature || compact[0]-31 != *tc.RecoveryID {
						t.Errorf("signing the spec's hash gives %x", compact)
					}
				}
			}

			// What Decode read, Encode writes again: same fields, signed
			// by the same key, so the same payee.
			s, err := Encode(inv, key)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			again, err := Decode(s)
			if err != nil {
				t.Fatalf("Decode(Encode): %v\n%s", err, s)
			}
			want.Signature = again.Signature
			if diff := compare(again, want); diff != "" {
				t.Errorf("round trip: %s\n%s", diff, s)
			}
		})
	}
}

// checkSigningData rebuilds the bytes the signature covers and compares them
// with the breakdown's hex.
func checkSigningData(t *testing.T, invoice, dataHex, hashHex string) {
	t.Helper()
	hrp, groups, err := bech32.DecodeNoLimit(invoice)
	if err != nil {
		t.Fatal(err)
	}
	signed, _ := bech32.ConvertBits(groups[:len(groups)-signatureGroups], 5, 8, true)
	if got := hex.EncodeToString(append([]byte(hrp), signed...)); got != dataHex {
		t.Errorf("data for signing\n got %s\nspec %s", got, dataHex)
	}
	if got := hex.EncodeToString(signingHash(hrp, groups[:len(groups)-signatureGroups])); got != hashHex {
		t.Errorf("signing hash %s, spec %s", got, hashHex)
	}
}

func TestSpecInvalid(t *testing.T) {
	kinds := map[string]error{
		"bech32": ErrBech32, "hrp": ErrHRP, "data": ErrData, "field": ErrField,
		"feature": ErrFeature, "signature": ErrSignature,
	}
	for _, tc := range loadVectors(t).Invalid {
		t.Run(tc.Title, func(t *testing.T) {
			kind := kinds[tc.Error]
			if kind == nil {
				t.Fatalf("fixture: unknown error kind %q", tc.Error)
			}
			inv, err := Decode(tc.Invoice)
			if err == nil {
				t.Fatalf("Decode accepted it: %+v", inv)
			}
			if !errors.Is(err, ErrInvalid) || !errors.Is(err, kind) {
				t.Errorf("error %v, want %v", err, kind)
			}
		})
	}
}

// compare reports the first field where got and want differ.
func compare(got, want *Invoice) string {
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if bytes.Equal(g, w) {
		return ""
	}
	return "\n got " + string(g) + "\nwant " + string(w)
}
