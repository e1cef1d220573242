package l402fake

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"

	"github.com/l402kit/l402kit/backend"
)

// ApertureConfig sets up an Aperture fake: one service of Aperture's
// configuration.
type ApertureConfig struct {
	// Node makes and looks up the invoices; required.
	Node Invoicer
	// Service is the service's name (default "service").
	Service string
	// Price is the service's price; required.
	Price backend.MilliSat
	// Timeout, when set, adds "<service>_valid_until=<unix>" that far
	// ahead, as Aperture's per-service timeout does.
	Timeout time.Duration
	// Payment also offers the MPP charge challenge ("Payment" scheme),
	// after the L402 ones, as Aperture's authenticator "l402+mpp" does,
	// and accepts Payment credentials answering it.
	Payment bool
	// Folded sends all challenges as one comma-separated WWW-Authenticate
	// line, as an intermediary may fold repeated header lines.
	Folded bool
	// SettleAfter, when set, makes every invoice a hold invoice settled
	// that long after it is paid: a payment slower than a client's
	// in-flight probe. Node must then have hold invoices.
	SettleAfter time.Duration
	// Now replaces time.Now for expiry, in tests.
	Now func() time.Time
	// Content serves paid requests; nil writes a line naming the request.
	Content http.Handler
}

// Aperture is a stand-in for a service behind Lightning Labs' Aperture
// v0.5.0 (github.com/lightninglabs/aperture, read at 7ee3ed7, after
// v0.5.0 = 311220b: auth/authenticator.go, auth/mpp_authenticator.go,
// auth/multi_authenticator.go, aperture.go, proxy/proxy.go, mint/mint.go,
// l402/header.go, l402/identifier.go, l402/satisfier.go, mpp/header.go,
// mpp/problem.go). As read there:
//
//   - A request without an accepted token gets 402 with the challenges
//     `LSAT macaroon="<m>", invoice="<bolt11>"` then `L402 ...` with the
//     same values, each on its own WWW-Authenticate line, and, with MPP
//     enabled, a `Payment id=..., realm=..., method="lightning",
//     intent="charge", request=<base64url JSON>, expires=...` challenge
//     for a separate invoice after them; "Cache-Control: no-store"; the
//     body is "payment required" as text, or an RFC 9457 problem document
//     when a Payment challenge is present. A refused token gets the same
//     fresh challenge.
//   - The macaroon is macaroon.v2 V2 binary in standard padded base64,
//     location "lsat", identifier version 0 (uint16 0, payment hash,
//     32-byte token id), root key per sha256(identifier), caveats
//     "services=<name>:0" and, with a timeout, "<name>_valid_until=<unix>".
//   - Authorization is read with the expression
//     `(LSAT|L402) (.*?):([a-f0-9]{64})` and strict standard base64; the
//     macaroon must verify, name the service, be within its validity
//     (now < valid_until), and its invoice must be settled on the node.
type Aperture struct {
	counter
	cfg ApertureConfig

	keysMu sync.Mutex
	keys   map[[32]byte][]byte // root key by sha256(identifier)
	// consumed holds the payment hashes of charges already served.
	consumed map[[32]byte]bool
	hmac     []byte
}

// NewAperture returns an Aperture fake; t fails when the fake receives what
// the real server would never be sent by a correct client.
func NewAperture(t testing.TB, cfg ApertureConfig) *Aperture {
	if cfg.Service == "" {
		cfg.Service = "service"
	}
	if cfg.Content == nil {
		cfg.Content = defaultContent("aperture")
	}
	return &Aperture{counter: counter{t: t}, cfg: cfg, keys: make(map[[32]byte][]byte), hmac: randomKey()}
}

// apertureAuth is the expression Aperture's l402.FromHeader matches.
var apertureAuth = regexp.MustCompile("(LSAT|L402) (.*?):([a-f0-9]{64})")

// ServeHTTP implements http.Handler.
func (a *Aperture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Payment && len(r.Header.Values("Authorization")) > 0 && strings.EqualFold(strings.SplitN(r.Header.Get("Authorization"), " ", 2)[0], "Payment") {
		if receipt, ok := a.acceptPayment(r); ok {
			a.add(func(s *Stats) { s.Served++ })
			w.Header().Set("Payment-Receipt", receipt)
			a.cfg.Content.ServeHTTP(w, r)
			return
		}
		a.add(func(s *Stats) { s.Refused++ })
		a.challenge(w, r)
		return
	}
	if len(r.Header.Values("Authorization")) > 0 {
		a.sawToken(r)
		if !a.checkInFlight("aperture", r) && a.accept(r) {
			a.add(func(s *Stats) { s.Served++ })
			a.cfg.Content.ServeHTTP(w, r)
			return
		}
		a.add(func(s *Stats) { s.Refused++ })
	}
	a.challenge(w, r)
}

func (a *Aperture) accept(r *http.Request) bool {
	// Aperture's loop keeps the last value's match.
	var m []string
	for _, v := range r.Header.Values("Authorization") {
		m = apertureAuth.FindStringSubmatch(v)
	}
	if len(m) != 4 {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(m[2])
	if err != nil {
		return false
	}
	var mac macaroon.Macaroon
	if err := mac.UnmarshalBinary(b); err != nil {
		return false
	}
	pre, _ := hex.DecodeString(m[3])
	id := mac.Id()
	if len(id) != 66 || binary.BigEndian.Uint16(id) != 0 {
		return false
	}
	a.keysMu.Lock()
	key := a.keys[sha256.Sum256(id)]
	a.keysMu.Unlock()
	if key == nil {
		return false
	}
	t := now(a.cfg.Now)
	services := false
	err = mac.Verify(key, func(c string) error {
		cond, value, _ := strings.Cut(c, "=")
		switch {
		case cond == "services":
			for _, s := range strings.Split(value, ",") {
				if name, _, _ := strings.Cut(s, ":"); name == a.cfg.Service {
					services = true
				}
			}
		case cond == a.cfg.Service+"_valid_until":
			until, err := strconv.ParseInt(value, 10, 64)
			if err != nil || !t.Before(time.Unix(until, 0)) {
				return fmt.Errorf("expired")
			}
		}
		return nil
	}, nil)
	hash := hashOf(pre)
	var idHash [32]byte
	copy(idHash[:], id[2:34])
	return err == nil && services && hash == idHash && settled(r.Context(), a.cfg.Node, hash)
}

func (a *Aperture) challenge(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	inv, err := a.invoice(ctx, a.cfg.Node, a.cfg.Price, "", a.cfg.SettleAfter)
	if err != nil {
		http.Error(w, "challenge failure", http.StatusInternalServerError)
		return
	}
	mac, err := a.mint(ctx, inv.PaymentHash)
	if err != nil {
		http.Error(w, "challenge failure", http.StatusInternalServerError)
		return
	}
	params := fmt.Sprintf("macaroon=\"%s\", invoice=\"%s\"", mac, inv.PaymentRequest)
	values := []string{"LSAT " + params, "L402 " + params}
	if a.cfg.Payment {
		p, err := a.paymentChallenge(ctx)
		if err != nil {
			http.Error(w, "challenge failure", http.StatusInternalServerError)
			return
		}
		values = append(values, p)
	}
	if a.cfg.Folded {
		values = []string{strings.Join(values, ", ")}
	}
	for _, v := range values {
		w.Header().Add("WWW-Authenticate", v)
	}
	w.Header().Set("Cache-Control", "no-store")
	a.add(func(s *Stats) { s.Challenges++ })
	if a.cfg.Payment {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusPaymentRequired)
		fmt.Fprint(w, `{"type":"https://paymentauth.org/problems/payment-required","title":"Payment Required","status":402,"detail":"Payment required for access."}`)
		return
	}
	http.Error(w, "payment required", http.StatusPaymentRequired)
}

// mint makes a token as Aperture's mint.MintL402 does.
func (a *Aperture) mint(_ context.Context, hash backend.PaymentHash) (string, error) {
	id := make([]byte, 66)
	copy(id[2:34], hash[:])
	if _, err := rand.Read(id[34:]); err != nil {
		return "", err
	}
	key := randomKey()
	a.keysMu.Lock()
	a.keys[sha256.Sum256(id)] = key
	a.keysMu.Unlock()
	m, err := macaroon.New(key, id, "lsat", macaroon.LatestVersion)
	if err != nil {
		return "", err
	}
	caveats := []string{"services=" + a.cfg.Service + ":0"}
	if a.cfg.Timeout > 0 {
		caveats = append(caveats, fmt.Sprintf("%s_valid_until=%d", a.cfg.Service, now(a.cfg.Now).Add(a.cfg.Timeout).Unix()))
	}
	for _, c := range caveats {
		if err := m.AddFirstPartyCaveat([]byte(c)); err != nil {
			return "", err
		}
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// paymentChallenge is the MPP charge challenge, for a separate invoice.
func (a *Aperture) paymentChallenge(ctx context.Context) (string, error) {
	inv, err := a.invoice(ctx, a.cfg.Node, a.cfg.Price, "", 0)
	if err != nil {
		return "", err
	}
	req, err := json.Marshal(map[string]any{
		"amount":   strconv.FormatInt(int64(a.cfg.Price)/1000, 10),
		"currency": "sat",
		"methodDetails": map[string]string{
			"invoice": inv.PaymentRequest, "network": "regtest", "paymentHash": inv.PaymentHash.String(),
		},
	})
	if err != nil {
		return "", err
	}
	request := base64.RawURLEncoding.EncodeToString(req)
	expires := now(a.cfg.Now).Add(10 * time.Minute).UTC().Format(time.RFC3339)
	id := a.challengeID("fake", "lightning", "charge", request, expires, "", "")
	return fmt.Sprintf(`Payment id="%s", realm="fake", method="lightning", intent="charge", request="%s", expires="%s"`,
		id, request, expires), nil
}

// challengeID is Aperture's id: base64url HMAC-SHA256 over realm, method,
// intent, request, expires, digest and opaque joined by "|"
// (mpp/challenge.go).
func (a *Aperture) challengeID(slots ...string) string {
	mac := hmac.New(sha256.New, a.hmac)
	mac.Write([]byte(strings.Join(slots, "|")))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// acceptPayment checks a Payment credential as Aperture's MPP
// authenticator does (auth/mpp_authenticator.go, mpp/header.go): the first
// Authorization value, base64url JSON with challenge.id, realm, method,
// intent, request and a payload; method lightning and intent charge; the
// id binding the echoed parameters; expires present and not past; the
// payload's preimage paying the request's methodDetails.paymentHash; the
// invoice settled on the node; and, as at 7ee3ed7 (after v0.5.0, which
// accepted a charge twice), each charge consumed once. On success it
// returns the Payment-Receipt: base64url JSON {status, method, timestamp,
// reference (the payment hash), challengeId}.
func (a *Aperture) acceptPayment(r *http.Request) (string, bool) {
	_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	raw, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimRight(strings.TrimSpace(tok), "="))
	if err != nil {
		return "", false
	}
	var cred struct {
		Challenge struct {
			ID, Realm, Method, Intent, Request, Expires, Digest, Opaque, Description string
		} `json:"challenge"`
		Payload json.RawMessage `json:"payload"`
	}
	if json.Unmarshal(raw, &cred) != nil {
		return "", false
	}
	c := cred.Challenge
	if c.ID == "" || c.Realm == "" || c.Method == "" || c.Intent == "" || c.Request == "" || len(cred.Payload) == 0 {
		return "", false
	}
	if c.Method != "lightning" || c.Intent != "charge" {
		return "", false
	}
	if !hmac.Equal([]byte(a.challengeID(c.Realm, c.Method, c.Intent, c.Request, c.Expires, c.Digest, c.Opaque)), []byte(c.ID)) {
		return "", false
	}
	exp, err := time.Parse(time.RFC3339, c.Expires)
	if err != nil || now(a.cfg.Now).After(exp) {
		return "", false
	}
	var payload struct{ Preimage string }
	if json.Unmarshal(cred.Payload, &payload) != nil {
		return "", false
	}
	pre, err := hex.DecodeString(payload.Preimage)
	if err != nil || len(pre) != 32 {
		return "", false
	}
	reqJSON, err := base64.RawURLEncoding.DecodeString(c.Request)
	if err != nil {
		return "", false
	}
	var req struct {
		MethodDetails struct{ PaymentHash string } `json:"methodDetails"`
	}
	if json.Unmarshal(reqJSON, &req) != nil {
		return "", false
	}
	want, err := hex.DecodeString(req.MethodDetails.PaymentHash)
	hash := hashOf(pre)
	if err != nil || len(want) != 32 || string(want) != string(hash[:]) || !settled(r.Context(), a.cfg.Node, hash) {
		return "", false
	}
	a.keysMu.Lock()
	if a.consumed == nil {
		a.consumed = make(map[[32]byte]bool)
	}
	spent := a.consumed[hash]
	a.consumed[hash] = true
	a.keysMu.Unlock()
	if spent {
		return "", false
	}
	receipt, _ := json.Marshal(map[string]string{
		"status": "success", "method": "lightning", "timestamp": now(a.cfg.Now).UTC().Format(time.RFC3339),
		"reference": hex.EncodeToString(hash[:]), "challengeId": c.ID,
	})
	return base64.RawURLEncoding.EncodeToString(receipt), true
}
