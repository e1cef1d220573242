package l402

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
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
