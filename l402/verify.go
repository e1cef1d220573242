package l402

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"gopkg.in/macaroon.v2"

	"github.com/l402kit/l402kit/backend"
)

// Errors of verification and parsing. Their messages, and those of the
// errors wrapping them, never contain a preimage or a root key.
var (
	// ErrMalformed: the header, macaroon, identifier or a caveat cannot be
	// read.
	ErrMalformed = errors.New("l402: malformed token")
	// ErrUnknownToken: no root key for the token id (never minted here, or
	// revoked).
	ErrUnknownToken = errors.New("l402: unknown or revoked token")
	// ErrBadSignature: the macaroon was not signed with the root key of
	// its token id, or was altered since.
	ErrBadSignature = errors.New("l402: bad macaroon signature")
	// ErrWrongPreimage: sha256(preimage) is not the identifier's payment
	// hash.
	ErrWrongPreimage = errors.New("l402: preimage does not match the payment hash")
	// ErrExpired: a validity caveat for the requested service has passed.
	// Such errors match ErrCaveat too.
	ErrExpired = errors.New("l402: token expired")
	// ErrCaveat: a caveat does not hold for the request, or is unknown.
	// The error is a *CaveatError naming the caveat.
	ErrCaveat = errors.New("l402: caveat not satisfied")
)

// Token is a credential as a client presents it.
type Token struct {
	Macaroon *macaroon.Macaroon
	Preimage backend.Preimage
	// ID is the macaroon's identifier, decoded. The verifier reads the
	// identifier from the macaroon itself, not from this field. A token
	// a Transport bought from a server with another identifier layout
	// (see PaymentHashOf) has only ID.PaymentHash set, to the hash it
	// paid.
	ID Identifier

	// encoded is the macaroon as its server wrote it, when known.
	encoded string
}

// NewToken pairs a macaroon with the preimage that pays for it.
func NewToken(mac *macaroon.Macaroon, preimage backend.Preimage) (*Token, error) {
	if mac == nil {
		return nil, fmt.Errorf("%w: no macaroon", ErrMalformed)
	}
	id, err := DecodeIdentifier(mac.Id())
	if err != nil {
		return nil, err
	}
	return &Token{Macaroon: mac, Preimage: preimage, ID: id}, nil
}

// Request is what caveats are checked against.
type Request struct {
	// Service is the name the route sells; services, capabilities and
	// valid_until caveats are read for it.
	Service string
	// Now is the time of the request; zero means time.Now().
	Now time.Time
	// ClientIP is the client's address, for client_ip caveats.
	ClientIP netip.Addr
	// Path is the cleaned URL path (r.URL.Path), for path_prefix caveats.
	Path string
	// Method is the HTTP method, for method caveats.
	Method string
	// Origin is the origin the request was addressed to,
	// "https://host[:port]", for origin caveats.
	Origin string
	// ClientCert is the SHA-256 of the TLS client certificate the request
	// came with (nil for none), for tls_client_cert caveats.
	ClientCert *[32]byte
	// Capability is what the request does, for <service>_capabilities
	// caveats. Empty when the route has no capabilities: then a token
	// carrying a capabilities caveat for the service is refused.
	Capability string
}

// Verifier checks tokens minted with the root keys of a source. It is safe
// for concurrent use.
type Verifier struct {
	keys RootKeySource
	sigs *sigCache
}

// VerifierOption configures NewVerifier.
type VerifierOption func(*Verifier)

// DefaultSignatureCache is how many verified signatures a Verifier
// remembers unless told otherwise.
const DefaultSignatureCache = 1 << 16

// WithSignatureCache sets how many verified macaroons the verifier
// remembers, so a token presented again skips recomputing its HMAC chain
// (the bulk of the cost); zero turns the cache off. An entry covers the
// macaroon's exact bytes (identifier, every caveat, signature) and the root
// key that verified it, so a changed caveat misses, and revocation still
// applies because the key is looked up on every request.
func WithSignatureCache(entries int) VerifierOption {
	return func(v *Verifier) { v.sigs = newSigCache(entries) }
}

// NewVerifier returns a verifier reading root keys from keys (a
// RootKeyStore is one).
func NewVerifier(keys RootKeySource, opts ...VerifierOption) *Verifier {
	v := &Verifier{keys: keys, sigs: newSigCache(DefaultSignatureCache)}
	for _, o := range opts {
		o(v)
	}
	return v
}

// Verify reports whether tok grants r: the preimage pays the identifier's
// payment hash, the root key of its token id exists, the macaroon's
// signature chain verifies under it, and every caveat holds for r. It calls
// no Lightning node; the only outside call is the root key lookup.
//
// Errors match ErrMalformed, ErrWrongPreimage, ErrUnknownToken,
// ErrBadSignature, ErrCaveat or ErrExpired; any other error is the key
// store's own failure (a store that cannot answer), which callers should
// treat as unavailability, not as a bad token.
func (v *Verifier) Verify(ctx context.Context, tok *Token, r Request) error {
	if tok == nil || tok.Macaroon == nil {
		return fmt.Errorf("%w: no macaroon", ErrMalformed)
	}
	mac := tok.Macaroon
	rawID := mac.Id() // a copy: take it once
	id, err := DecodeIdentifier(rawID)
	if err != nil {
		return err
	}
	if !tok.Preimage.Matches(id.PaymentHash) {
		return ErrWrongPreimage
	}
	return v.verifyMacaroon(ctx, mac, rawID, id, r)
}

// verifyMacaroon checks everything but the preimage: root key, signature
// chain and caveats.
func (v *Verifier) verifyMacaroon(ctx context.Context, mac *macaroon.Macaroon, rawID []byte, id Identifier, r Request) error {
	key, err := v.keys.RootKey(ctx, id.TokenID)
	if err != nil {
		if errors.Is(err, ErrUnknownToken) {
			return ErrUnknownToken
		}
		return fmt.Errorf("l402: root key lookup: %w", err)
	}
	caveats := mac.Caveats()
	for i := range caveats {
		if len(caveats[i].VerificationId) > 0 {
			// Third-party caveats need discharge macaroons, which no
			// L402 client sends; refusing them keeps the check closed.
			return caveatErr(caveats[i].Id, "third-party caveats are not supported")
		}
	}
	if !v.signatureValid(key, rawID, caveats, mac.Signature()) {
		return ErrBadSignature
	}
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	for i := range caveats {
		if err := checkCaveat(caveats[i].Id, &r, now); err != nil {
			return err
		}
	}
	return nil
}

func (v *Verifier) signatureValid(key, id []byte, caveats []macaroon.Caveat, sig []byte) bool {
	if v.sigs == nil {
		return signatureValid(key, id, caveats, sig)
	}
	digest := macaroonDigest(id, caveats, sig)
	if v.sigs.has(digest, key) {
		return true
	}
	if !signatureValid(key, id, caveats, sig) {
		return false
	}
	v.sigs.add(digest, key)
	return true
}

// signatureValid recomputes the macaroon's HMAC chain (as macaroon.v2 and
// libmacaroons define it: derive a key from the root key, sign the id, then
// sign each caveat with the previous signature) without the per-step heap
// allocations macaroon.v2's Verify makes, since this runs on every request.
// Tests check it agrees with macaroon.v2.
func signatureValid(rootKey, id []byte, caveats []macaroon.Caveat, sig []byte) bool {
	derived := hmacSHA256(keyGenerator, rootKey)
	cur := hmacSHA256(derived[:], id)
	for i := range caveats {
		cur = hmacSHA256(cur[:], caveats[i].Id)
	}
	return subtle.ConstantTimeCompare(cur[:], sig) == 1
}

// keyGenerator is libmacaroons' fixed key for deriving a macaroon key from
// a root key of any length.
var keyGenerator = []byte("macaroons-key-generator")

// inlineMsg is how long a message may be before hmacSHA256 needs the heap;
// identifiers (66 bytes) and usual caveats fit.
const inlineMsg = 192

// hmacSHA256 is HMAC-SHA256 (RFC 2104) for keys of at most one block, built
// on sha256.Sum256 so that it works on the stack.
func hmacSHA256(key, msg []byte) [32]byte {
	const block = 64
	if len(key) > block {
		panic("l402: hmac key longer than a block")
	}
	var stack [block + inlineMsg]byte
	var in []byte
	if len(msg) <= inlineMsg {
		in = stack[:block+len(msg)]
	} else {
		in = make([]byte, block+len(msg))
	}
	for i := range block {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		in[i] = k ^ 0x36
	}
	copy(in[block:], msg)
	inner := sha256.Sum256(in)
	var out [block + 32]byte
	for i := range block {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		out[i] = k ^ 0x5c
	}
	copy(out[block:], inner[:])
	return sha256.Sum256(out[:])
}

// RequestFor describes r for Verify: its URL path, method, the client
// address from r.RemoteAddr, the current time, and for the token-binding
// caveats the origin r was addressed to (https when it came over TLS, and
// its Host, lower case, the scheme's default port dropped) and the first
// TLS client certificate it came with. Behind a reverse proxy RemoteAddr
// is the proxy's address and the origin and certificate are the proxy's
// view; callers that trust forwarding headers set ClientIP, Origin and
// ClientCert themselves.
func RequestFor(r *http.Request, service string) Request {
	req := Request{Service: service, Now: time.Now(), Path: r.URL.Path, Method: r.Method}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		req.ClientIP = ap.Addr().Unmap()
	} else if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		req.ClientIP = a.Unmap()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
		if len(r.TLS.PeerCertificates) > 0 {
			sum := sha256.Sum256(r.TLS.PeerCertificates[0].Raw)
			req.ClientCert = &sum
		}
	}
	if r.Host != "" {
		host := strings.ToLower(r.Host)
		if scheme == "https" {
			host = strings.TrimSuffix(host, ":443")
		} else {
			host = strings.TrimSuffix(host, ":80")
		}
		req.Origin = scheme + "://" + host
	}
	return req
}
