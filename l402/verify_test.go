package l402

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"

	"github.com/l402kit/l402kit/backend"
)

type fixture struct {
	store    *MemoryRootKeyStore
	minter   *Minter
	verifier *Verifier
	preimage backend.Preimage
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	store := NewMemoryRootKeyStore()
	p, err := backend.NewPreimage()
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: store, minter: NewMinter(store, ""), verifier: NewVerifier(store), preimage: p}
}

func (f *fixture) mint(t testing.TB, caveats ...Caveat) *Token {
	t.Helper()
	mac, id, err := f.minter.Mint(context.Background(), f.preimage.Hash(), caveats...)
	if err != nil {
		t.Fatal(err)
	}
	if id.PaymentHash != f.preimage.Hash() {
		t.Fatal("identifier does not carry the payment hash")
	}
	return &Token{Macaroon: mac, Preimage: f.preimage, ID: id}
}

var (
	testNow = time.Unix(1700000000, 0)
	testReq = Request{
		Service: "svc", Now: testNow, ClientIP: netip.MustParseAddr("192.0.2.7"),
		Path: "/paid/item", Method: "GET", Capability: "read",
	}
	fullCaveats = []Caveat{
		ServicesCaveat(Service{"svc", 0}),
		CapabilitiesCaveat("svc", "read"),
		ValidUntilCaveat("svc", testNow.Add(time.Hour)),
		ClientIPCaveat(netip.MustParseAddr("192.0.2.7")),
		PathPrefixCaveat("/paid/"),
		MethodCaveat("GET", "HEAD"),
	}
)

func TestVerify(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	other := newFixture(t) // a different store: its keys are unknown to f

	cases := []struct {
		name string
		tok  func(t *testing.T) *Token
		req  Request
		want error // nil: accepted
	}{
		{"valid, no caveats", func(t *testing.T) *Token { return f.mint(t) }, testReq, nil},
		{"valid, every caveat", func(t *testing.T) *Token { return f.mint(t, fullCaveats...) }, testReq, nil},
		{"zero Now means the clock", func(t *testing.T) *Token {
			return f.mint(t, ValidUntilCaveat("svc", time.Now().Add(time.Minute)))
		}, Request{Service: "svc"}, nil},
		{"wrong preimage", func(t *testing.T) *Token {
			tok := f.mint(t)
			tok.Preimage[0] ^= 1
			return tok
		}, testReq, ErrWrongPreimage},
		{"forged signature", func(t *testing.T) *Token {
			tok := f.mint(t)
			// Same identifier, signed with a key the store never made.
			bad, err := macaroon.New(make([]byte, 32), tok.Macaroon.Id(), "l402", macaroon.V2)
			if err != nil {
				t.Fatal(err)
			}
			tok.Macaroon = bad
			return tok
		}, testReq, ErrBadSignature},
		{"caveat removed", func(t *testing.T) *Token {
			tok := f.mint(t, PathPrefixCaveat("/paid/"))
			// Rebuild the macaroon without its caveat but keep its
			// signature: what a holder would try to widen a token.
			stripped, err := macaroon.New(make([]byte, 32), tok.Macaroon.Id(), "l402", macaroon.V2)
			if err != nil {
				t.Fatal(err)
			}
			stripped.Bind(tok.Macaroon.Signature())
			tok.Macaroon = stripped
			return tok
		}, testReq, ErrBadSignature},
		{"caveat altered", func(t *testing.T) *Token {
			tok := f.mint(t, PathPrefixCaveat("/other/"))
			b, _ := tok.Macaroon.MarshalBinary()
			s := strings.Replace(string(b), "/other/", "/paid/\x00", 1)
			var m macaroon.Macaroon
			if err := m.UnmarshalBinary([]byte(s)); err != nil {
				t.Skip("edited macaroon no longer parses:", err)
			}
			tok.Macaroon = &m
			return tok
		}, testReq, ErrBadSignature},
		{"unknown token", func(t *testing.T) *Token {
			tok := other.mint(t)
			tok.Preimage = other.preimage
			return tok
		}, testReq, ErrUnknownToken},
		{"revoked", func(t *testing.T) *Token {
			tok := f.mint(t)
			if err := f.store.Revoke(ctx, tok.ID.TokenID); err != nil {
				t.Fatal(err)
			}
			return tok
		}, testReq, ErrUnknownToken},
		{"expired", func(t *testing.T) *Token { return f.mint(t, ValidUntilCaveat("svc", testNow)) }, testReq, ErrExpired},
		{"wrong path", func(t *testing.T) *Token { return f.mint(t, PathPrefixCaveat("/admin/")) }, testReq, ErrCaveat},
		{"wrong method", func(t *testing.T) *Token { return f.mint(t, MethodCaveat("POST")) }, testReq, ErrCaveat},
		{"wrong ip", func(t *testing.T) *Token {
			return f.mint(t, ClientIPCaveat(netip.MustParseAddr("198.51.100.1")))
		}, testReq, ErrCaveat},
		{"wrong service", func(t *testing.T) *Token { return f.mint(t, ServicesCaveat(Service{"other", 0})) }, testReq, ErrCaveat},
		{"wrong capability", func(t *testing.T) *Token { return f.mint(t, CapabilitiesCaveat("svc", "write")) }, testReq, ErrCaveat},
		{"unknown caveat", func(t *testing.T) *Token {
			tok := f.mint(t)
			// Mint refuses unknown caveats; a holder can still add one.
			if err := tok.Macaroon.AddFirstPartyCaveat([]byte("admin=true")); err != nil {
				t.Fatal(err)
			}
			return tok
		}, testReq, ErrCaveat},
		{"third-party caveat", func(t *testing.T) *Token {
			tok := f.mint(t)
			if err := tok.Macaroon.AddThirdPartyCaveat(make([]byte, 32), []byte("tp"), "elsewhere"); err != nil {
				t.Fatal(err)
			}
			return tok
		}, testReq, ErrCaveat},
		{"two valid_until: earliest wins", func(t *testing.T) *Token {
			tok := f.mint(t, ValidUntilCaveat("svc", testNow.Add(time.Hour)))
			m, err := Attenuate(tok.Macaroon, ValidUntilCaveat("svc", testNow.Add(-time.Second)))
			if err != nil {
				t.Fatal(err)
			}
			tok.Macaroon = m
			return tok
		}, testReq, ErrExpired},
		{"later valid_until cannot extend", func(t *testing.T) *Token {
			tok := f.mint(t, ValidUntilCaveat("svc", testNow.Add(-time.Second)))
			m, err := Attenuate(tok.Macaroon, ValidUntilCaveat("svc", testNow.Add(time.Hour)))
			if err != nil {
				t.Fatal(err)
			}
			tok.Macaroon = m
			return tok
		}, testReq, ErrExpired},
		{"two path prefixes: both hold", func(t *testing.T) *Token {
			tok := f.mint(t, PathPrefixCaveat("/paid/"))
			m, err := Attenuate(tok.Macaroon, PathPrefixCaveat("/paid/item"))
			if err != nil {
				t.Fatal(err)
			}
			tok.Macaroon = m
			return tok
		}, testReq, nil},
		{"two path prefixes: second narrows out", func(t *testing.T) *Token {
			tok := f.mint(t, PathPrefixCaveat("/paid/"))
			m, err := Attenuate(tok.Macaroon, PathPrefixCaveat("/paid/other"))
			if err != nil {
				t.Fatal(err)
			}
			tok.Macaroon = m
			return tok
		}, testReq, ErrCaveat},
		{"later services cannot widen", func(t *testing.T) *Token {
			tok := f.mint(t, ServicesCaveat(Service{"other", 0}))
			m, err := Attenuate(tok.Macaroon, ServicesCaveat(Service{"other", 0}, Service{"svc", 0}))
			if err != nil {
				t.Fatal(err)
			}
			tok.Macaroon = m
			return tok
		}, testReq, ErrCaveat},
		{"no macaroon", func(t *testing.T) *Token { return &Token{} }, testReq, ErrMalformed},
		{"bad identifier", func(t *testing.T) *Token {
			m, err := macaroon.New(make([]byte, 32), []byte("not an l402 id"), "x", macaroon.V2)
			if err != nil {
				t.Fatal(err)
			}
			return &Token{Macaroon: m}
		}, testReq, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := c.tok(t)
			err := f.verifier.Verify(ctx, tok, c.req)
			if c.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			// A refusal never echoes a secret.
			if strings.Contains(err.Error(), tok.Preimage.String()) {
				t.Fatalf("error leaks the preimage: %v", err)
			}
			if key, kerr := f.store.RootKey(ctx, tok.ID.TokenID); kerr == nil && strings.Contains(err.Error(), fmt.Sprintf("%x", key)) {
				t.Fatalf("error leaks the root key: %v", err)
			}
		})
	}
}

// errStore is a key store that cannot answer.
type errStore struct{ *MemoryRootKeyStore }

func (errStore) RootKey(context.Context, TokenID) ([]byte, error) {
	return nil, backend.ErrUnavailable
}

func TestVerifyStoreFailureIsNotABadToken(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t)
	err := NewVerifier(errStore{NewMemoryRootKeyStore()}).Verify(context.Background(), tok, testReq)
	if !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("err = %v, want the store's ErrUnavailable", err)
	}
	for _, e := range []error{ErrUnknownToken, ErrBadSignature, ErrMalformed, ErrCaveat} {
		if errors.Is(err, e) {
			t.Fatalf("store failure reads as %v", e)
		}
	}
}

// TestSignatureMatchesMacaroonV2 checks the verifier's own HMAC chain
// against macaroon.v2's Verify on random keys, ids and caveats, long ones
// (beyond the stack buffer) included.
func TestSignatureMatchesMacaroonV2(t *testing.T) {
	for i := range 200 {
		key := randBytes(t, 1+i%80)
		id := randBytes(t, 1+i%300)
		m, err := macaroon.New(key, id, "loc", macaroon.V2)
		if err != nil {
			t.Fatal(err)
		}
		for j := range i % 7 {
			if err := m.AddFirstPartyCaveat(randBytes(t, 1+(i*j)%400)); err != nil {
				t.Fatal(err)
			}
		}
		libOK := m.Verify(key, func(string) error { return nil }, nil) == nil
		if !libOK || !signatureValid(key, m.Id(), m.Caveats(), m.Signature()) {
			t.Fatalf("case %d: macaroon.v2 says %v, signatureValid disagrees or both fail", i, libOK)
		}
		wrong := append([]byte{}, key...)
		wrong[0] ^= 1
		if signatureValid(wrong, m.Id(), m.Caveats(), m.Signature()) {
			t.Fatalf("case %d: wrong key accepted", i)
		}
	}
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMintRefusesBadCaveatAndLeavesNoKey(t *testing.T) {
	f := newFixture(t)
	_, _, err := f.minter.Mint(context.Background(), f.preimage.Hash(), Caveat{"admin", "true"})
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	if n := f.store.Len(); n != 0 {
		t.Fatalf("store holds %d keys after a refused mint", n)
	}
}

func TestMemoryRootKeyStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryRootKeyStore()
	done := make(chan TokenID)
	for range 8 {
		go func() {
			id, _ := NewIdentifier(backend.PaymentHash{})
			if _, err := s.NewRootKey(ctx, id.TokenID); err != nil {
				t.Error(err)
			}
			if _, err := s.RootKey(ctx, id.TokenID); err != nil {
				t.Error(err)
			}
			done <- id.TokenID
		}()
	}
	for range 8 {
		id := <-done
		if err := s.Revoke(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RootKey(ctx, id); !errors.Is(err, ErrUnknownToken) {
			t.Fatalf("revoked key: err = %v", err)
		}
	}
	id, _ := NewIdentifier(backend.PaymentHash{})
	if _, err := s.NewRootKey(ctx, id.TokenID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewRootKey(ctx, id.TokenID); err == nil {
		t.Fatal("a second key for one token id was accepted")
	}
}

// TestSignatureCacheStaysSound fills the verifier's signature cache with a
// valid token, then presents variants that must still be refused.
func TestSignatureCacheStaysSound(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tok := f.mint(t, PathPrefixCaveat("/paid/"))
	for range 2 {
		if err := f.verifier.Verify(ctx, tok, testReq); err != nil {
			t.Fatal(err)
		}
	}
	// Same identifier and signature, caveat dropped.
	stripped, err := macaroon.New(make([]byte, 32), tok.Macaroon.Id(), "l402", macaroon.V2)
	if err != nil {
		t.Fatal(err)
	}
	stripped.Bind(tok.Macaroon.Signature())
	err = f.verifier.Verify(ctx, &Token{Macaroon: stripped, Preimage: f.preimage}, Request{Path: "/admin"})
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("stripped token after a cached verification: err = %v", err)
	}
	// Caveats still apply to a cached token.
	if err := f.verifier.Verify(ctx, tok, Request{Path: "/admin"}); !errors.Is(err, ErrCaveat) {
		t.Fatalf("cached token on another path: err = %v", err)
	}
	// Revocation applies to a cached token.
	if err := f.store.Revoke(ctx, tok.ID.TokenID); err != nil {
		t.Fatal(err)
	}
	if err := f.verifier.Verify(ctx, tok, testReq); !errors.Is(err, ErrUnknownToken) {
		t.Fatalf("revoked cached token: err = %v", err)
	}
	// A new key under the same token id does not inherit the verdict.
	if _, err := f.store.NewRootKey(ctx, tok.ID.TokenID); err != nil {
		t.Fatal(err)
	}
	if err := f.verifier.Verify(ctx, tok, testReq); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("token under a replaced key: err = %v", err)
	}
}

func TestSignatureCacheBounded(t *testing.T) {
	c := newSigCache(32)
	key := []byte("k")
	for i := range 1000 {
		var d [32]byte
		d[0], d[1], d[2] = byte(i), byte(i>>8), 1
		c.add(d, key)
		if !c.has(d, key) {
			t.Fatalf("entry %d missing right after add", i)
		}
	}
	n := 0
	for i := range c.shards {
		n += len(c.shards[i].m)
	}
	if n > 32 {
		t.Fatalf("cache holds %d entries, bound is 32", n)
	}
	if newSigCache(0) != nil {
		t.Fatal("size 0 should disable the cache")
	}
}

// BenchmarkVerify measures verification of a token with six caveats, the
// per-request cost a proxy pays for a token it has seen before (the common
// case: clients reuse tokens).
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	tok := f.mint(b, fullCaveats...)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := f.verifier.Verify(ctx, tok, testReq); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyParallel verifies from every CPU at once, as a busy proxy
// does: the key store and signature cache must not serialize requests.
func BenchmarkVerifyParallel(b *testing.B) {
	f := newFixture(b)
	toks := make([]*Token, 64)
	for i := range toks {
		toks[i] = f.mint(b, fullCaveats...)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := f.verifier.Verify(ctx, toks[i%len(toks)], testReq); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkVerifyUncached is a token's first verification: the full HMAC
// chain, no signature cache.
func BenchmarkVerifyUncached(b *testing.B) {
	f := newFixture(b)
	f.verifier = NewVerifier(f.store, WithSignatureCache(0))
	tok := f.mint(b, fullCaveats...)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := f.verifier.Verify(ctx, tok, testReq); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseAndVerify adds reading the Authorization header, which a
// proxy does on every request too.
func BenchmarkParseAndVerify(b *testing.B) {
	f := newFixture(b)
	hdr := f.mint(b, fullCaveats...).Authorization()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		tok, err := ParseAuthorization(hdr)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.verifier.Verify(ctx, tok, testReq); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyMacaroonV2 is the same check through macaroon.v2's own
// Verify, for comparison with the verifier's HMAC chain.
func BenchmarkVerifyMacaroonV2(b *testing.B) {
	f := newFixture(b)
	tok := f.mint(b, fullCaveats...)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		key, err := f.store.RootKey(ctx, tok.ID.TokenID)
		if err != nil {
			b.Fatal(err)
		}
		r := testReq
		if err := tok.Macaroon.Verify(key, func(c string) error { return checkCaveat([]byte(c), &r, r.Now) }, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRequestFor(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "http://example.com/paid/x?q=1", nil)
	r.RemoteAddr = "[::ffff:192.0.2.9]:4711"
	got := RequestFor(r, "svc")
	if got.Service != "svc" || got.Path != "/paid/x" || got.Method != "POST" ||
		got.ClientIP != netip.MustParseAddr("192.0.2.9") || got.Now.IsZero() {
		t.Fatalf("RequestFor = %+v", got)
	}
	if got.Origin != "http://example.com" || got.ClientCert != nil {
		t.Fatalf("origin %q, certificate %v over plain http", got.Origin, got.ClientCert)
	}
	r.RemoteAddr = "unix-socket"
	if got := RequestFor(r, ""); got.ClientIP.IsValid() {
		t.Fatalf("client IP %v from a non-IP remote address", got.ClientIP)
	}
	// Over TLS with a client certificate: the binding caveats can be
	// checked against what RequestFor reads.
	r.Host = "Example.COM:443"
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Raw: []byte("certificate A")}}}
	got = RequestFor(r, "svc")
	sum := sha256.Sum256([]byte("certificate A"))
	if got.Origin != "https://example.com" || got.ClientCert == nil || *got.ClientCert != sum {
		t.Fatalf("origin %q, certificate %v over TLS", got.Origin, got.ClientCert)
	}
	for _, c := range []Caveat{OriginCaveat("https://example.com"), ClientCertCaveat(sum)} {
		if err := checkCaveat([]byte(c.String()), &got, got.Now); err != nil {
			t.Errorf("caveat %v against RequestFor: %v", c, err)
		}
	}
	r.Host = "example.com:8443"
	if got := RequestFor(r, "svc"); got.Origin != "https://example.com:8443" {
		t.Fatalf("origin %q with a port", got.Origin)
	}
}
