package l402

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// ChargeIssuer makes and verifies Lightning charge challenges for one
// realm. A challenge's id is an HMAC under Secret over its other
// parameters, so Verify needs no record of the challenge: a credential
// whose echo was changed in any covered parameter (request, expires,
// opaque, ...) or made under another secret fails. Spending a charge once
// is the caller's part: Verify says a proof is valid, not that it is
// unused.
type ChargeIssuer struct {
	// Secret keys the ids; at least 32 random bytes, shared by every
	// server that must accept the others' challenges.
	Secret []byte
	// Realm names the protection space (a host name, for instance).
	Realm string
	// Network is the invoices' network as the request names it
	// ("mainnet", "testnet", "signet", "regtest").
	Network string
}

// ChargeOffer is what one charge challenge asks.
type ChargeOffer struct {
	// Invoice is the BOLT11 invoice to pay; PaymentHash its hash.
	Invoice     string
	PaymentHash backend.PaymentHash
	// Amount is the invoice's amount: a whole number of satoshis.
	Amount backend.MilliSat
	// Description is shown to the payer (the request's description).
	Description string
	// Expires is when the challenge stops being accepted; the invoice's
	// expiry is the natural choice.
	Expires time.Time
	// Opaque is server data bound into the challenge (for this project's
	// proxy, the route's name), echoed back by the client.
	Opaque map[string]string
}

// Challenge returns the Payment challenge for o, its id bound to the
// other parameters.
func (i *ChargeIssuer) Challenge(o ChargeOffer) (PaymentChallenge, error) {
	if len(i.Secret) < 16 {
		return PaymentChallenge{}, errors.New("l402: ChargeIssuer.Secret is shorter than 16 bytes")
	}
	if o.Amount <= 0 || o.Amount%1000 != 0 {
		return PaymentChallenge{}, fmt.Errorf("l402: a charge asks a positive whole number of sat, not %s", o.Amount)
	}
	req, err := EncodeChargeRequest(ChargeRequest{
		Amount:      strconv.FormatInt(int64(o.Amount/1000), 10),
		Currency:    CurrencySat,
		Description: o.Description,
		MethodDetails: ChargeMethodDetails{
			Invoice:     o.Invoice,
			PaymentHash: o.PaymentHash.String(),
			Network:     i.Network,
		},
	})
	if err != nil {
		return PaymentChallenge{}, err
	}
	c := PaymentChallenge{
		Realm:   i.Realm,
		Method:  MethodLightning,
		Intent:  IntentCharge,
		Request: req,
		Expires: o.Expires.UTC().Format(time.RFC3339),
	}
	if len(o.Opaque) > 0 {
		b, err := Canonical(o.Opaque)
		if err != nil {
			return PaymentChallenge{}, fmt.Errorf("l402: encode opaque: %w", err)
		}
		c.Opaque = base64.RawURLEncoding.EncodeToString(b)
	}
	c.ID = PaymentChallengeID(i.Secret, c)
	return c, nil
}

// VerifiedCharge is a charge credential that Verify accepted.
type VerifiedCharge struct {
	Challenge   PaymentChallenge
	Request     ChargeRequest
	PaymentHash backend.PaymentHash
	Preimage    backend.Preimage
	// Amount is what the request asked.
	Amount  backend.MilliSat
	Expires time.Time
	// Opaque is the server data bound into the challenge.
	Opaque map[string]string
}

// Verify checks a charge credential at time now: a Lightning charge
// (ErrPaymentUnsupported), issued by this issuer with exactly these
// parameters for its realm (ErrPaymentChallengeInvalid), not expired
// (ErrPaymentExpired), with a preimage of the request's payment hash
// (ErrPaymentUnverified); ErrMalformed for what cannot be read. It makes
// no call to a node and writes nothing.
func (i *ChargeIssuer) Verify(cred *PaymentCredential, now time.Time) (*VerifiedCharge, error) {
	c := cred.Challenge
	if c.Method != MethodLightning || c.Intent != IntentCharge {
		return nil, fmt.Errorf("%w: method %q intent %q", ErrPaymentUnsupported, c.Method, c.Intent)
	}
	if len(i.Secret) < 16 || !c.VerifyID(i.Secret) {
		return nil, fmt.Errorf("%w: id does not bind the echoed parameters", ErrPaymentChallengeInvalid)
	}
	if c.Realm != i.Realm {
		return nil, fmt.Errorf("%w: realm %q", ErrPaymentChallengeInvalid, c.Realm)
	}
	exp, ok, err := c.ExpiresAt()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: challenge has no expires", ErrPaymentChallengeInvalid)
	}
	if !now.Before(exp) {
		return nil, fmt.Errorf("%w at %s", ErrPaymentExpired, c.Expires)
	}
	req, err := c.ChargeRequest()
	if err != nil {
		return nil, err
	}
	hash, err := backend.ParsePaymentHash(req.MethodDetails.PaymentHash)
	if err != nil {
		return nil, fmt.Errorf("%w: charge payment hash: %v", ErrMalformed, err)
	}
	sats, err := parseSats(req.Amount)
	if err != nil {
		return nil, err
	}
	pre, err := cred.ChargePreimage()
	if err != nil {
		return nil, err
	}
	if !pre.Matches(hash) {
		return nil, fmt.Errorf("%w: preimage does not pay %s", ErrPaymentUnverified, hash)
	}
	v := &VerifiedCharge{Challenge: c, Request: req, PaymentHash: hash, Preimage: pre, Amount: backend.Sat(sats), Expires: exp}
	if c.Opaque != "" {
		b, err := DecodeBase64URL(c.Opaque)
		if err == nil {
			err = json.Unmarshal(b, &v.Opaque)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: opaque: %v", ErrMalformed, err)
		}
	}
	return v, nil
}

// Receipt returns the Payment-Receipt of an accepted charge, stamped at
// now.
func (v *VerifiedCharge) Receipt(now time.Time) PaymentReceipt {
	return PaymentReceipt{
		Status:      "success",
		Method:      MethodLightning,
		Timestamp:   now.UTC().Format(time.RFC3339),
		Reference:   v.PaymentHash.String(),
		ChallengeID: v.Challenge.ID,
	}
}

// Problem types of the Payment scheme (draft-httpauth-payment), under
// ProblemBase.
const (
	ProblemBase                = "https://paymentauth.org/problems/"
	ProblemPaymentRequired     = ProblemBase + "payment-required"
	ProblemMalformedCredential = ProblemBase + "malformed-credential"
	ProblemInvalidChallenge    = ProblemBase + "invalid-challenge"
	ProblemPaymentExpired      = ProblemBase + "payment-expired"
	ProblemVerificationFailed  = ProblemBase + "verification-failed"
	ProblemMethodUnsupported   = ProblemBase + "method-unsupported"
	// ProblemContentType is RFC 9457's media type.
	ProblemContentType = "application/problem+json"
)

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type        string `json:"type"`
	Title       string `json:"title"`
	Status      int    `json:"status"`
	Detail      string `json:"detail,omitempty"`
	ChallengeID string `json:"challengeId,omitempty"`
}

// ProblemFor returns the problem type and title for an error of a Payment
// credential, by the sentinel it matches; an error matching none is
// verification-failed.
func ProblemFor(err error) (typ, title string) {
	switch {
	case err == nil:
		return ProblemPaymentRequired, "Payment Required"
	case errors.Is(err, ErrPaymentUnsupported):
		return ProblemMethodUnsupported, "Payment Method Unsupported"
	case errors.Is(err, ErrPaymentChallengeInvalid):
		return ProblemInvalidChallenge, "Invalid Challenge"
	case errors.Is(err, ErrPaymentExpired):
		return ProblemPaymentExpired, "Payment Expired"
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrNoPaymentCredentials):
		return ProblemMalformedCredential, "Malformed Credential"
	}
	return ProblemVerificationFailed, "Verification Failed"
}

// WriteProblem answers with p as application/problem+json, status
// p.Status. Headers already set on w (challenges) are kept.
func WriteProblem(w http.ResponseWriter, p Problem) {
	b, err := json.Marshal(p)
	if err != nil {
		b = []byte(`{"type":"about:blank"}`)
	}
	w.Header().Set("Content-Type", ProblemContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(b, '\n'))
}
