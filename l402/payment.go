package l402

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gowebpki/jcs"

	"github.com/l402kit/l402kit/backend"
)

// The Payment HTTP authentication scheme (IETF draft-httpauth-payment) with
// the Lightning "charge" intent (draft-lightning-charge), beside L402: one
// 402 may carry both. A challenge names a method and an intent and carries
// a request (base64url of the RFC 8785 canonical JSON of what to pay); its
// id is an HMAC over the other parameters, so a server verifies the echo
// in a credential without remembering the challenge. The credential,
// "Authorization: Payment <base64url JSON>", echoes the challenge and adds
// the payment's proof (for Lightning, the preimage); success is answered
// with a Payment-Receipt header, refusals with RFC 9457 problem details.

// Names of the Payment scheme.
const (
	// SchemePayment is the Payment authentication scheme.
	SchemePayment = "Payment"
	// HeaderPaymentReceipt carries the receipt of an accepted Payment
	// credential.
	HeaderPaymentReceipt = "Payment-Receipt"
	// MethodLightning is the Lightning payment method.
	MethodLightning = "lightning"
	// IntentCharge is a one-time payment for one request.
	IntentCharge = "charge"
	// IntentSession is a prepaid session with refunds; this package reads
	// such challenges but pays and serves only charges.
	IntentSession = "session"
	// CurrencySat is the unit of Lightning amounts in a charge request.
	CurrencySat = "sat"
)

// maxPaymentCredentialLen bounds the encoded credential ParsePaymentAuthorization
// reads: an echoed charge challenge with a BOLT11 invoice is a few KiB.
const maxPaymentCredentialLen = 32 << 10

// Errors of the Payment scheme, each with its problem type (ProblemType).
var (
	// ErrNoPaymentChallenge: a response carries no Payment challenge.
	ErrNoPaymentChallenge = errors.New("l402: no Payment challenge")
	// ErrNoPaymentCredentials: a request carries no Payment Authorization.
	ErrNoPaymentCredentials = errors.New("l402: no Payment authorization")
	// ErrPaymentChallengeInvalid: the echoed challenge was not issued by
	// this server with these parameters (its id does not verify), or was
	// issued for another route or realm.
	ErrPaymentChallengeInvalid = errors.New("l402: Payment challenge not issued here")
	// ErrPaymentExpired: the echoed challenge is past its expires.
	ErrPaymentExpired = errors.New("l402: Payment challenge expired")
	// ErrPaymentUnverified: the proof does not pay the challenge (the
	// preimage does not hash to its payment hash) or was used already.
	ErrPaymentUnverified = errors.New("l402: Payment proof does not verify")
	// ErrPaymentUnsupported: a method or intent this package does not pay
	// or serve.
	ErrPaymentUnsupported = errors.New("l402: Payment method or intent not supported")
)

// PaymentChallenge is one Payment challenge: the auth-params of a
// "WWW-Authenticate: Payment ..." value, and the echo a credential carries.
// Expires is RFC 3339; Request and Opaque are base64url (no padding) of
// canonical JSON.
type PaymentChallenge struct {
	ID          string `json:"id"`
	Realm       string `json:"realm"`
	Method      string `json:"method"`
	Intent      string `json:"intent"`
	Request     string `json:"request"`
	Expires     string `json:"expires,omitempty"`
	Digest      string `json:"digest,omitempty"`
	Description string `json:"description,omitempty"`
	Opaque      string `json:"opaque,omitempty"`
}

// Header returns the WWW-Authenticate value of c, parameters quoted, the
// optional ones only when set.
func (c PaymentChallenge) Header() string {
	var b strings.Builder
	b.WriteString(SchemePayment)
	sep := " "
	add := func(name, v string, always bool) {
		if v == "" && !always {
			return
		}
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(quote(headerSafe(v)))
		sep = ", "
	}
	add("id", c.ID, true)
	add("realm", c.Realm, true)
	add("method", c.Method, true)
	add("intent", c.Intent, true)
	add("request", c.Request, true)
	add("expires", c.Expires, false)
	add("digest", c.Digest, false)
	add("description", c.Description, false)
	add("opaque", c.Opaque, false)
	return b.String()
}

// headerSafe drops the octets a quoted-string cannot carry (controls other
// than tab), so no parameter can split a header. Servers bind parameters
// that are already safe; this guards the header, not the binding.
func headerSafe(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\t' && (c < 0x20 || c == 0x7f) {
			var b strings.Builder
			for j := 0; j < len(s); j++ {
				if c := s[j]; c == '\t' || c >= 0x20 && c != 0x7f {
					b.WriteByte(c)
				}
			}
			return b.String()
		}
	}
	return s
}

// bindingInput is what the id's HMAC covers: realm, method, intent,
// request, expires, digest and opaque, joined by "|", absent ones empty
// (draft-httpauth-payment's seven slots, as Aperture computes them). The
// description is not covered.
func (c PaymentChallenge) bindingInput() string {
	return strings.Join([]string{c.Realm, c.Method, c.Intent, c.Request, c.Expires, c.Digest, c.Opaque}, "|")
}

// PaymentChallengeID returns the id binding c's other parameters under
// secret: base64url (no padding) of HMAC-SHA256 over them.
func PaymentChallengeID(secret []byte, c PaymentChallenge) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(c.bindingInput()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// VerifyID reports whether c's id binds its parameters under secret, in
// constant time.
func (c PaymentChallenge) VerifyID(secret []byte) bool {
	return hmac.Equal([]byte(PaymentChallengeID(secret, c)), []byte(c.ID))
}

// ParsePaymentChallenges reads the Payment challenges of a response, in the
// order sent, across every WWW-Authenticate line; challenges of other
// schemes and unknown parameters are skipped, and so is a Payment challenge
// that lacks a required parameter (id, realm, method, intent, request).
// ErrNoPaymentChallenge when there is none; ErrMalformed when none can be
// read.
func ParsePaymentChallenges(h http.Header) ([]PaymentChallenge, error) {
	var (
		out      []PaymentChallenge
		firstErr error
		seen     bool
	)
	for _, line := range h.Values(HeaderWWWAuthenticate) {
		chs, err := parseChallengeList(line)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		for _, ch := range chs {
			if !strings.EqualFold(ch.scheme, SchemePayment) {
				continue
			}
			seen = true
			c, err := paymentChallengeFrom(ch)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			out = append(out, c)
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if seen && firstErr != nil {
		return nil, firstErr
	}
	if !seen {
		return nil, fmt.Errorf("%w in %s", ErrNoPaymentChallenge, HeaderWWWAuthenticate)
	}
	return nil, fmt.Errorf("%w: unreadable Payment challenge", ErrMalformed)
}

func paymentChallengeFrom(ch rawChallenge) (PaymentChallenge, error) {
	var c PaymentChallenge
	for _, f := range []struct {
		name string
		dst  *string
		req  bool
	}{
		{"id", &c.ID, true}, {"realm", &c.Realm, true}, {"method", &c.Method, true},
		{"intent", &c.Intent, true}, {"request", &c.Request, true},
		{"expires", &c.Expires, false}, {"digest", &c.Digest, false},
		{"description", &c.Description, false}, {"opaque", &c.Opaque, false},
	} {
		v, ok := ch.param(f.name)
		if !ok && f.req {
			return c, fmt.Errorf("%w: Payment challenge has no %s", ErrMalformed, f.name)
		}
		*f.dst = v
	}
	return c, nil
}

// ChargeRequest is the request of a Lightning charge: what to pay. The
// invoice is authoritative; Amount (whole satoshis, decimal) and
// PaymentHash must agree with it.
type ChargeRequest struct {
	Amount        string              `json:"amount"`
	Currency      string              `json:"currency"`
	Description   string              `json:"description,omitempty"`
	Recipient     string              `json:"recipient,omitempty"`
	ExternalID    string              `json:"externalId,omitempty"`
	MethodDetails ChargeMethodDetails `json:"methodDetails"`
}

// ChargeMethodDetails are the Lightning fields of a charge request.
// Network is "mainnet", "testnet", "signet" or "regtest" ("mainnet" when
// empty).
type ChargeMethodDetails struct {
	Invoice     string `json:"invoice"`
	PaymentHash string `json:"paymentHash,omitempty"`
	Network     string `json:"network,omitempty"`
}

// ChargePayload is the proof of a Lightning charge: the preimage, 64 hex.
type ChargePayload struct {
	Preimage string `json:"preimage"`
}

// Canonical returns the RFC 8785 (JCS) serialization of v: v marshalled
// by encoding/json, then canonicalized, which sorts members by UTF-16 code
// units, writes numbers in ECMAScript form and escapes only what JSON
// requires (encoding/json alone escapes <, >, & and U+2028/U+2029 and keeps
// struct order).
func Canonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}

// EncodeChargeRequest returns the request parameter of a charge: base64url
// (no padding) of the canonical JSON of r.
func EncodeChargeRequest(r ChargeRequest) (string, error) {
	b, err := Canonical(r)
	if err != nil {
		return "", fmt.Errorf("l402: encode charge request: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ChargeRequest decodes c's request as a Lightning charge's. It does not
// check the method or intent; see Charge.
func (c PaymentChallenge) ChargeRequest() (ChargeRequest, error) {
	var r ChargeRequest
	b, err := DecodeBase64URL(c.Request)
	if err != nil {
		return r, fmt.Errorf("%w: Payment request: %v", ErrMalformed, err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%w: Payment request is not a charge: %v", ErrMalformed, err)
	}
	return r, nil
}

// Charge checks that c is a Lightning charge and returns its request, its
// invoice decoded, and its payment hash: ErrPaymentUnsupported for another
// method or intent, ErrMalformed for a request that cannot be read or does
// not agree with its invoice (hash, amount, currency).
func (c PaymentChallenge) Charge() (ChargeRequest, *backend.DecodedInvoice, error) {
	if !strings.EqualFold(c.Method, MethodLightning) {
		return ChargeRequest{}, nil, fmt.Errorf("%w: method %q", ErrPaymentUnsupported, c.Method)
	}
	if c.Intent != IntentCharge {
		return ChargeRequest{}, nil, fmt.Errorf("%w: intent %q", ErrPaymentUnsupported, c.Intent)
	}
	r, err := c.ChargeRequest()
	if err != nil {
		return r, nil, err
	}
	if r.Currency == "" || r.MethodDetails.Invoice == "" {
		return r, nil, fmt.Errorf("%w: charge request has no currency or no invoice", ErrMalformed)
	}
	if r.Currency != CurrencySat {
		return r, nil, fmt.Errorf("%w: currency %q, want %q", ErrPaymentUnsupported, r.Currency, CurrencySat)
	}
	inv, err := backend.DecodeInvoice(r.MethodDetails.Invoice)
	if err != nil {
		return r, nil, fmt.Errorf("%w: charge invoice: %v", ErrMalformed, err)
	}
	if r.MethodDetails.PaymentHash != "" && !strings.EqualFold(r.MethodDetails.PaymentHash, inv.PaymentHash.String()) {
		return r, nil, fmt.Errorf("%w: charge names payment hash %s, its invoice pays %s", ErrMalformed, r.MethodDetails.PaymentHash, inv.PaymentHash)
	}
	sats, err := parseSats(r.Amount)
	if err != nil {
		return r, nil, err
	}
	if inv.Amount != 0 && inv.Amount != backend.Sat(sats) {
		return r, nil, fmt.Errorf("%w: charge asks %s sat, its invoice %s", ErrMalformed, r.Amount, inv.Amount)
	}
	return r, inv, nil
}

// parseSats reads a decimal amount of whole satoshis.
func parseSats(s string) (int64, error) {
	if s == "" || len(s) > 15 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w: charge amount %q is not a whole number of sat", ErrMalformed, s)
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: charge amount %q is not a whole number of sat", ErrMalformed, s)
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, nil
}

// ExpiresAt reads c's expires; ok is false when it has none.
func (c PaymentChallenge) ExpiresAt() (t time.Time, ok bool, err error) {
	if c.Expires == "" {
		return time.Time{}, false, nil
	}
	t, err = time.Parse(time.RFC3339, c.Expires)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("%w: Payment expires %q is not RFC 3339", ErrMalformed, c.Expires)
	}
	return t, true, nil
}

// PaymentCredential is what "Authorization: Payment" carries: the challenge
// echoed unchanged, an optional payer identifier, and the method's proof.
type PaymentCredential struct {
	Challenge PaymentChallenge `json:"challenge"`
	Source    string           `json:"source,omitempty"`
	Payload   json.RawMessage  `json:"payload"`
}

// NewChargeCredential answers the charge c with the preimage of its
// invoice.
func NewChargeCredential(c PaymentChallenge, pre backend.Preimage) PaymentCredential {
	p, _ := json.Marshal(ChargePayload{Preimage: pre.String()})
	return PaymentCredential{Challenge: c, Payload: p}
}

// Authorization returns the Authorization value presenting cred:
// "Payment " and base64url (no padding) of its canonical JSON.
func (cred PaymentCredential) Authorization() (string, error) {
	b, err := Canonical(cred)
	if err != nil {
		return "", fmt.Errorf("l402: encode Payment credential: %w", err)
	}
	return SchemePayment + " " + base64.RawURLEncoding.EncodeToString(b), nil
}

// ChargePreimage reads the preimage of a charge credential's payload.
func (cred PaymentCredential) ChargePreimage() (backend.Preimage, error) {
	var p ChargePayload
	var pre backend.Preimage
	if err := json.Unmarshal(cred.Payload, &p); err != nil {
		return pre, fmt.Errorf("%w: Payment payload is not a charge proof: %v", ErrMalformed, err)
	}
	if len(p.Preimage) != 64 {
		return pre, fmt.Errorf("%w: Payment preimage is %d characters, want 64 hex", ErrMalformed, len(p.Preimage))
	}
	if _, err := hex.Decode(pre[:], []byte(p.Preimage)); err != nil {
		return pre, fmt.Errorf("%w: Payment preimage is not hex", ErrMalformed)
	}
	return pre, nil
}

// IsPaymentAuthorization reports whether an Authorization value uses the
// Payment scheme (any case), whatever follows.
func IsPaymentAuthorization(v string) bool {
	scheme, _, _ := strings.Cut(strings.TrimSpace(v), " ")
	return strings.EqualFold(scheme, SchemePayment)
}

// PaymentFromHeader reads the Payment credential of a request: the first
// Authorization value with the Payment scheme. ErrNoPaymentCredentials
// when there is none.
func PaymentFromHeader(h http.Header) (*PaymentCredential, error) {
	for _, v := range h.Values(HeaderAuthorization) {
		if IsPaymentAuthorization(v) {
			return ParsePaymentAuthorization(v)
		}
	}
	return nil, ErrNoPaymentCredentials
}

// ParsePaymentAuthorization reads "Payment <base64url JSON>": strict
// base64url (padding accepted, nothing else), a JSON object with the
// challenge's required parameters and a payload. Errors match
// ErrMalformed and never quote the payload.
func ParsePaymentAuthorization(v string) (*PaymentCredential, error) {
	if len(v) > maxPaymentCredentialLen {
		return nil, fmt.Errorf("%w: Payment credential is %d bytes, more than %d", ErrMalformed, len(v), maxPaymentCredentialLen)
	}
	scheme, tok, _ := strings.Cut(strings.TrimSpace(v), " ")
	if !strings.EqualFold(scheme, SchemePayment) {
		return nil, fmt.Errorf("%w: authorization scheme is not Payment", ErrMalformed)
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return nil, fmt.Errorf("%w: empty Payment credential", ErrMalformed)
	}
	raw, err := DecodeBase64URL(tok)
	if err != nil {
		return nil, fmt.Errorf("%w: Payment credential: %v", ErrMalformed, err)
	}
	var cred PaymentCredential
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&cred); err != nil {
		return nil, fmt.Errorf("%w: Payment credential is not a JSON object", ErrMalformed)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: Payment credential has data after its JSON object", ErrMalformed)
	}
	c := cred.Challenge
	for _, f := range [][2]string{{"id", c.ID}, {"realm", c.Realm}, {"method", c.Method}, {"intent", c.Intent}, {"request", c.Request}} {
		if f[1] == "" {
			return nil, fmt.Errorf("%w: Payment credential has no challenge.%s", ErrMalformed, f[0])
		}
	}
	if p := bytes.TrimSpace(cred.Payload); len(p) == 0 || bytes.Equal(p, []byte("null")) {
		return nil, fmt.Errorf("%w: Payment credential has no payload", ErrMalformed)
	}
	return &cred, nil
}

// DecodeBase64URL decodes base64url as the Payment scheme writes it: the
// URL alphabet only, padding optional but then exact, unused trailing bits
// zero. Every value has one spelling (besides padding): a lenient decoder
// (Go's skips line breaks, others drop trailing bits) would give one value
// several.
func DecodeBase64URL(s string) ([]byte, error) {
	un := strings.TrimRight(s, "=")
	if pad := len(s) - len(un); pad > 0 && (pad > 2 || len(s)%4 != 0) {
		return nil, errors.New("base64url padding is wrong")
	}
	for i := 0; i < len(un); i++ {
		c := un[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("byte %d is not base64url", i)
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(un)
	if err != nil {
		return nil, errors.New("not base64url")
	}
	return b, nil
}

// PaymentReceipt is the Payment-Receipt of an accepted credential. For a
// Lightning charge, Reference is the payment hash.
type PaymentReceipt struct {
	Status      string `json:"status"`
	Method      string `json:"method"`
	Timestamp   string `json:"timestamp"`
	Reference   string `json:"reference"`
	ChallengeID string `json:"challengeId,omitempty"`
}

// Header returns the Payment-Receipt value: base64url (no padding) of the
// canonical JSON of r.
func (r PaymentReceipt) Header() string {
	b, err := Canonical(r)
	if err != nil {
		// Only strings: Marshal and Transform cannot fail on them.
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParsePaymentReceipt reads the Payment-Receipt of a response; ok is false
// when there is none.
func ParsePaymentReceipt(h http.Header) (r PaymentReceipt, ok bool, err error) {
	v := h.Get(HeaderPaymentReceipt)
	if v == "" {
		return r, false, nil
	}
	b, err := DecodeBase64URL(strings.TrimSpace(v))
	if err != nil {
		return r, true, fmt.Errorf("%w: Payment-Receipt: %v", ErrMalformed, err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, true, fmt.Errorf("%w: Payment-Receipt is not a JSON object", ErrMalformed)
	}
	return r, true, nil
}
