package bolt11

import (
	"crypto/sha256"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil/bech32"
)

func newKey(t testing.TB) *btcec.PrivateKey {
	t.Helper()
	k, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sample() *Invoice {
	return &Invoice{
		Network:       "regtest",
		Amount:        1234567,
		Timestamp:     time.Unix(1700000000, 0),
		PaymentHash:   sha256.Sum256([]byte("preimage")),
		PaymentSecret: sha256.Sum256([]byte("secret")),
		Description:   "a cup",
		Expiry:        10 * time.Minute,
		MinFinalCLTV:  80,
		Features:      []int{8, 14, 17},
	}
}

func TestAmounts(t *testing.T) {
	for _, tc := range []struct {
		hrp  string
		msat int64
	}{
		{"lnbc1", 100_000_000_000},
		{"lnbc25m", 2_500_000_000},
		{"lnbc2500u", 250_000_000},
		{"lnbc1n", 100},
		{"lnbc10p", 1},
		{"lnbc9678785340p", 967_878_534},
		{"lnbcrt1u", 100_000},
		{"lntbs3m", 300_000_000},
		{"lnsb5n", 500},
	} {
		_, got, err := parseHRP(tc.hrp)
		if err != nil || got != tc.msat {
			t.Errorf("parseHRP(%q) = %d, %v; want %d", tc.hrp, got, err, tc.msat)
		}
		prefix := strings.TrimRight(tc.hrp, "0123456789munp")
		if s, err := formatAmount(tc.msat); err != nil || prefix+s != tc.hrp {
			t.Errorf("formatAmount(%d) = %q, %v; want the suffix of %q", tc.msat, s, err, tc.hrp)
		}
	}
	for _, hrp := range []string{
		"lnbc1p",    // sub-millisatoshi
		"lnbc0m",    // zero reads as no amount
		"lnbc2500x", // unknown multiplier
		"lnbc25mm",  // two multipliers
		"lnbcm",     // no digits: unknown currency "bcm"
		"lnbc1m2",   // digits after the multiplier
		"lnxx1m",    // unknown currency
		"lnbc",      // fine: no amount (checked below)
		"bc1m",      // not ln
		"lnbc99999999999999999999",
		"lnbc92233720368547758070p", // overflows
		"lnbc100000000",             // 10^19 msat overflows int64
	} {
		_, msat, err := parseHRP(hrp)
		if hrp == "lnbc" {
			if err != nil || msat != 0 {
				t.Errorf("parseHRP(lnbc) = %d, %v", msat, err)
			}
			continue
		}
		if !errors.Is(err, ErrHRP) {
			t.Errorf("parseHRP(%q) = %d, %v; want ErrHRP", hrp, msat, err)
		}
	}
	if _, err := formatAmount(-1); !errors.Is(err, ErrHRP) {
		t.Errorf("negative amount: %v", err)
	}
	// MaxInt64 msat is no whole number of nano-bitcoin, and in pico-bitcoin
	// it overflows.
	if s, err := formatAmount(math.MaxInt64); !errors.Is(err, ErrHRP) {
		t.Errorf("formatAmount(MaxInt64) = %q, %v", s, err)
	}
}

func TestRoundTripEveryField(t *testing.T) {
	key := newKey(t)
	other := newKey(t)
	var nodeID [33]byte
	copy(nodeID[:], other.PubKey().SerializeCompressed())
	inv := sample()
	inv.Description = ""
	inv.DescriptionHash = &[32]byte{1, 2, 3}
	inv.ExplicitPayee = true
	inv.Fallbacks = []Fallback{
		{Version: 17, Program: make([]byte, 20)},
		{Version: 0, Program: make([]byte, 32)},
		{Version: 1, Program: make([]byte, 32)},
	}
	inv.Routes = [][]Hop{
		{{NodeID: nodeID, ShortChannelID: 1<<40 | 2<<16 | 3, FeeBaseMsat: 1000, FeeProportionalMillionths: 1, CLTVExpiryDelta: 144}},
		{{NodeID: nodeID, ShortChannelID: 7}, {NodeID: nodeID, ShortChannelID: 8, CLTVExpiryDelta: math.MaxUint16}},
	}
	inv.Features = []int{8, 14, 17, 48, 99}
	inv.Metadata = []byte{0x01, 0xfa}
	got := mustRoundTrip(t, inv, key)
	want := *inv
	copy(want.Payee[:], key.PubKey().SerializeCompressed())
	want.Signature = got.Signature
	if d := compare(got, &want); d != "" {
		t.Error(d)
	}
	s, _ := Encode(inv, key)
	if up, err := Decode(strings.ToUpper(s)); err != nil || compare(up, got) != "" {
		t.Errorf("upper case: %v", err)
	}
}

func TestEncodeDefaultsAndEdges(t *testing.T) {
	key := newKey(t)
	inv := sample()
	inv.Amount = 0
	inv.Description = ""
	inv.Expiry = DefaultExpiry
	inv.Features = nil
	s, err := Encode(inv, key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, "lnbcrt1") {
		t.Errorf("any-amount regtest invoice starts %.8s", s)
	}
	got, err := Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.Description != "" || got.DescriptionHash != nil || got.Expiry != DefaultExpiry || got.Amount != 0 || got.Features != nil {
		t.Errorf("decoded %+v", got)
	}

	// An expiry of zero is written (as an empty x field) and read back.
	inv.Expiry = 0
	if got := mustRoundTrip(t, inv, key); got.Expiry != 0 {
		t.Errorf("expiry %s, want 0", got.Expiry)
	}
	inv.Expiry = time.Duration(math.MaxInt64)
	if got := mustRoundTrip(t, inv, key); got.Expiry != time.Duration(math.MaxInt64)/time.Second*time.Second {
		t.Errorf("expiry %s", got.Expiry)
	}

	for name, mutate := range map[string]func(*Invoice){
		"both descriptions":  func(i *Invoice) { i.DescriptionHash = &[32]byte{} },
		"long description":   func(i *Invoice) { i.Description = strings.Repeat("x", MaxDescriptionLen+1) },
		"not UTF-8":          func(i *Invoice) { i.Description = "\xff" },
		"zero secret":        func(i *Invoice) { i.PaymentSecret = [32]byte{} },
		"negative expiry":    func(i *Invoice) { i.Expiry = -time.Second },
		"negative amount":    func(i *Invoice) { i.Amount = -1 },
		"unknown network":    func(i *Invoice) { i.Network = "moon" },
		"timestamp too late": func(i *Invoice) { i.Timestamp = time.Unix(1<<35, 0) },
		"before 1970":        func(i *Invoice) { i.Timestamp = time.Unix(-1, 0) },
		"unknown even bit":   func(i *Invoice) { i.Features = []int{8, 100} },
		"bad fallback":       func(i *Invoice) { i.Fallbacks = []Fallback{{Version: 17, Program: make([]byte, 19)}} },
		"undefined fallback": func(i *Invoice) { i.Fallbacks = []Fallback{{Version: 19, Program: make([]byte, 20)}} },
		"empty route":        func(i *Invoice) { i.Routes = [][]Hop{{}} },
		"bad route key":      func(i *Invoice) { i.Routes = [][]Hop{{{ShortChannelID: 1}}} },
		"long metadata":      func(i *Invoice) { i.Metadata = make([]byte, 640) },
	} {
		inv := sample()
		mutate(inv)
		if s, err := Encode(inv, key); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Encode = %q, %v; want ErrInvalid", name, s, err)
		}
	}
}

func mustRoundTrip(t *testing.T, inv *Invoice, key *btcec.PrivateKey) *Invoice {
	t.Helper()
	s, err := Encode(inv, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(s)
	if err != nil {
		t.Fatalf("Decode: %v\n%s", err, s)
	}
	return got
}

// raw builds an invoice from hand-written fields, signed by key, to reach
// what Encode refuses to write.
type raw struct {
	hrp    string
	groups []byte
}

func newRaw(hrp string) *raw {
	return &raw{hrp: hrp, groups: uintGroups(1700000000, timestampGroups)}
}

func (r *raw) field(tag byte, data []byte) *raw {
	r.groups = append(r.groups, tag, byte(len(data)>>5), byte(len(data)&31))
	r.groups = append(r.groups, data...)
	return r
}

func (r *raw) hash(tag byte) *raw { return r.field(tag, toGroups(make([]byte, 32))) }

// base adds p, s and d.
func (r *raw) base() *raw {
	return r.hash(tagPaymentHash).field(tagPaymentSecret, toGroups([]byte(strings.Repeat("s", 32)))).
		field(tagDescription, toGroups([]byte("d")))
}

func (r *raw) sign(key *btcec.PrivateKey) string {
	compact := ecdsa.SignCompact(key, signingHash(r.hrp, r.groups), true)
	sig := append(compact[1:65:65], compact[0]-31)
	s, err := bech32.Encode(r.hrp, append(r.groups, toGroups(sig)...))
	if err != nil {
		panic(err)
	}
	return s
}

func TestDecodeRules(t *testing.T) {
	key := newKey(t)
	other := newKey(t)
	for _, tc := range []struct {
		name string
		inv  string
		want error // nil: valid
	}{
		{"minimal", newRaw("lnbc").base().sign(key), nil},
		{"unknown field skipped", newRaw("lnbc").base().field(2, []byte{0, 0, 0}).sign(key), nil},
		{"fallback version 19 skipped", newRaw("lnbc").base().field(tagFallback, append([]byte{19}, toGroups(make([]byte, 20))...)).sign(key), nil},
		{"unknown odd feature ignored", newRaw("lnbc").base().field(tagFeatures, []byte{1, 0, 0, 0}).sign(key), nil},
		{"empty d", newRaw("lnbc").hash(tagPaymentHash).hash(tagPaymentSecret).field(tagDescription, nil).sign(key), nil},
		{"duplicate p: the first counts", newRaw("lnbc").base().hash(tagPaymentHash).sign(key), nil},
		{"no p", newRaw("lnbc").hash(tagPaymentSecret).field(tagDescription, nil).sign(key), ErrField},
		{"no s", newRaw("lnbc").hash(tagPaymentHash).field(tagDescription, nil).sign(key), ErrField},
		{"no d or h", newRaw("lnbc").hash(tagPaymentHash).hash(tagPaymentSecret).sign(key), ErrField},
		{"d and h", newRaw("lnbc").base().hash(tagDescriptionHash).sign(key), ErrField},
		{"short p", newRaw("lnbc").base().field(tagPaymentHash, make([]byte, 51)).sign(key), ErrField},
		{"long h", newRaw("lnbc").hash(tagPaymentHash).hash(tagPaymentSecret).field(tagDescriptionHash, make([]byte, 53)).sign(key), ErrField},
		{"short n", newRaw("lnbc").base().field(tagPayee, make([]byte, 52)).sign(key), ErrField},
		{"n not a key", newRaw("lnbc").base().field(tagPayee, make([]byte, 53)).sign(key), ErrField},
		{"n of another key", newRaw("lnbc").base().field(tagPayee, toGroups(other.PubKey().SerializeCompressed())).sign(key), ErrSignature},
		{"n of the signer", newRaw("lnbc").base().field(tagPayee, toGroups(key.PubKey().SerializeCompressed())).sign(key), nil},
		{"x with a leading zero", newRaw("lnbc").base().field(tagExpiry, []byte{0, 1}).sign(key), ErrField},
		{"c with a leading zero", newRaw("lnbc").base().field(tagMinFinalCLTV, []byte{0, 9}).sign(key), ErrField},
		{"9 with a leading zero", newRaw("lnbc").base().field(tagFeatures, []byte{0, 1}).sign(key), ErrField},
		{"c over 64 bits", newRaw("lnbc").base().field(tagMinFinalCLTV, []byte{31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31}).sign(key), ErrField},
		{"unknown even feature", newRaw("lnbc").base().field(tagFeatures, []byte{1, 0, 0, 0, 0}).sign(key), ErrFeature},
		{"d not UTF-8", newRaw("lnbc").hash(tagPaymentHash).hash(tagPaymentSecret).field(tagDescription, toGroups([]byte{0xff})).sign(key), ErrField},
		{"non-zero padding", newRaw("lnbc").hash(tagPaymentHash).hash(tagPaymentSecret).field(tagDescription, []byte{12, 1}).sign(key), ErrField},
		{"empty f", newRaw("lnbc").base().field(tagFallback, nil).sign(key), ErrField},
		{"P2PKH of 19 bytes", newRaw("lnbc").base().field(tagFallback, append([]byte{17}, toGroups(make([]byte, 19))...)).sign(key), ErrField},
		{"r of 50 bytes", newRaw("lnbc").base().field(tagRoute, toGroups(make([]byte, 50))).sign(key), ErrField},
		{"field past the end", newRaw("lnbc").base().field(tagDescription, nil).truncate(1).sign(key), ErrData},
		{"bech32m checksum", bech32m(newRaw("lnbc").base(), key), ErrBech32},
	} {
		inv, err := Decode(tc.inv)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: Decode = %+v, %v; want %v", tc.name, inv, err, tc.want)
		case tc.want != nil && !errors.Is(err, ErrInvalid):
			t.Errorf("%s: %v does not match ErrInvalid", tc.name, err)
		}
	}
}

func (r *raw) truncate(n int) *raw {
	r.groups = r.groups[:len(r.groups)-n]
	return r
}

func bech32m(r *raw, key *btcec.PrivateKey) string {
	_, data, err := bech32.DecodeNoLimit(r.sign(key))
	if err != nil {
		panic(err)
	}
	s, err := bech32.EncodeM(r.hrp, data)
	if err != nil {
		panic(err)
	}
	return s
}

func TestDecodeRefusesTampering(t *testing.T) {
	key := newKey(t)
	s, err := Encode(sample(), key)
	if err != nil {
		t.Fatal(err)
	}
	const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
	sep := strings.LastIndexByte(s, '1')
	for i := sep + 1; i < len(s); i++ {
		c := charset[(strings.IndexByte(charset, s[i])+1)%32]
		if inv, err := Decode(s[:i] + string(c) + s[i+1:]); err == nil {
			t.Fatalf("changing character %d decoded: %+v", i, inv)
		}
	}
	if _, err := Decode("LNBCRT" + s[6:]); !errors.Is(err, ErrBech32) {
		t.Errorf("mixed case: %v", err)
	}
	if _, err := Decode("lightning:" + s); err == nil {
		t.Error("Decode took a URI scheme")
	}
}

// FuzzDecode checks that Decode never panics and that whatever it accepts
// Encode writes again to the same invoice.
func FuzzDecode(f *testing.F) {
	v := loadVectors(f)
	for _, tc := range v.Valid {
		f.Add(tc.Invoice)
	}
	for _, tc := range v.Invalid {
		f.Add(tc.Invoice)
	}
	key := specKey(f, v)
	f.Fuzz(func(t *testing.T, s string) {
		checkDecode(t, key, s)
		// Most mutations break the checksum; fixing it up lets the
		// fuzzer reach the fields and the signature.
		if fixed, ok := rechecksum(s); ok {
			checkDecode(t, key, fixed)
		}
	})
}

func rechecksum(s string) (string, bool) {
	const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
	s = strings.ToLower(s)
	sep := strings.LastIndexByte(s, '1')
	if sep < 1 || len(s)-sep-1 < 6 {
		return "", false
	}
	var groups []byte
	for _, c := range s[sep+1 : len(s)-6] {
		i := strings.IndexRune(charset, c)
		if i < 0 {
			return "", false
		}
		groups = append(groups, byte(i))
	}
	fixed, err := bech32.Encode(s[:sep], groups)
	return fixed, err == nil
}

func checkDecode(t *testing.T, key *btcec.PrivateKey, s string) {
	t.Helper()
	inv, err := Decode(s)
	if err != nil {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v does not match ErrInvalid", err)
		}
		return
	}
	again, err := Encode(inv, key)
	if err != nil {
		t.Fatalf("Encode of a decoded invoice: %v", err)
	}
	got, err := Decode(again)
	if err != nil {
		t.Fatalf("Decode(Encode): %v", err)
	}
	want := *inv
	want.Payee, want.Signature = got.Payee, got.Signature
	if d := compare(got, &want); d != "" {
		t.Fatal(d)
	}
}

func TestEncodePayableRoundTrip(t *testing.T) {
	key := newKey(t)
	hash := sha256.Sum256([]byte("preimage"))
	created := time.Unix(1_700_000_000, 0)
	dh := [32]byte{9}
	for _, tc := range []Invoice{
		{Network: "regtest", PaymentHash: hash, Timestamp: created, Expiry: time.Hour, Amount: 1500, Description: "coffee"},
		{Network: "mainnet", PaymentHash: hash, Timestamp: created, Expiry: 90 * time.Second, DescriptionHash: &dh},
	} {
		s, err := EncodePayable(tc, key)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Decode(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if d.Network != tc.Network || d.PaymentHash != tc.PaymentHash || d.Amount != tc.Amount || d.Description != tc.Description ||
			!d.Timestamp.Equal(created) || d.Expiry != tc.Expiry || (tc.DescriptionHash != nil && *d.DescriptionHash != dh) ||
			d.Payee != [33]byte(key.PubKey().SerializeCompressed()) || d.PaymentSecret == ([32]byte{}) ||
			d.MinFinalCLTV != 80 || !slices.Equal(d.Features, []int{8, 14}) {
			t.Errorf("decoded %+v from %+v", d, tc)
		}
	}
	if _, err := EncodePayable(Invoice{Network: "regtest", Expiry: 0}, key); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero expiry: %v", err)
	}
	if _, err := EncodePayable(Invoice{Network: "moon", Expiry: time.Hour}, key); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown network: %v", err)
	}
}
