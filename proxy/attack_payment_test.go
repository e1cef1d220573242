package proxy_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// The attack table for Payment credentials (the Payment HTTP authentication
// scheme's Lightning charge), at the gate in both forms: each row says what
// the attacker sends, the status it must get, the RFC 9457 problem type of
// the 402 body (checked with its media type), and whether the upstream may
// be reached; a refused request must never reach it.

type paymentAttack struct {
	name    string
	request string // what the attacker sends, for the report
	status  int
	problem string // the problem+json type; "" when the answer is not one
	reason  string // must appear in the body
	reached bool   // the upstream answers (reverse proxy) or the grant is given (forward auth)
	run     func(t *testing.T) (int, http.Header, string)
}

// charge is one paid Payment challenge: the echo and its invoice's
// preimage.
type charge struct {
	ch  l402.PaymentChallenge
	pre backend.Preimage
}

func (c charge) auth(t *testing.T) string {
	t.Helper()
	a, err := l402.NewChargeCredential(c.ch, c.pre).Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return authz(a)
}

// with returns c with its echoed challenge changed by f.
func (c charge) with(f func(*l402.PaymentChallenge)) charge {
	f(&c.ch)
	return c
}

// buyCharge gets the Payment challenge of target and pays its invoice.
func (e *attackEnv) buyCharge(t *testing.T, target string) charge {
	t.Helper()
	r := httptest.NewRequest("GET", target, nil)
	r.Host = "api.example"
	w := httptest.NewRecorder()
	e.p.ServeHTTP(w, r)
	pcs, err := l402.ParsePaymentChallenges(w.Header())
	if err != nil {
		t.Fatalf("Payment challenge for %s: %d %s", target, w.Code, w.Body)
	}
	req, err := pcs[0].ChargeRequest()
	if err != nil {
		t.Fatal(err)
	}
	pay, err := e.n.PayInvoice(context.Background(), req.MethodDetails.Invoice, backend.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return charge{ch: pcs[0], pre: pay.Preimage}
}

// paymentRaw is "Authorization: Payment <base64url of raw>".
func paymentRaw(raw string) string {
	return authz("Payment " + base64.RawURLEncoding.EncodeToString([]byte(raw)))
}

// fwdResp asks the forward-auth endpoint as Traefik does, with headers.
func (e *attackEnv) fwdResp(uri string, hdr ...string) (int, http.Header, string) {
	m := map[string]string{}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ":")
		m[k] = strings.TrimSpace(v)
	}
	w := serve(e.fa, traefik("GET", "api.example", uri, m))
	return w.Code, w.Header(), w.Body.String()
}

// TestPaymentAttacks runs the Payment attack table.
func TestPaymentAttacks(t *testing.T) {
	n := newNode(t)
	secret := []byte(strings.Repeat("s", 32))
	both := []string{proxy.SchemeL402, proxy.SchemePayment}
	e := newAttackEnv(t, n, n, proxy.Config{
		ChallengesPerMinute: -1, MaxPendingPerClient: -1, PaymentSecret: secret,
		Routes: []proxy.Route{
			{Name: "free", PathPrefix: "/", Mode: proxy.ModeFree},
			{Name: "pay", PathPrefix: "/pay/", Price: backend.Sat(1), Schemes: both},
			{Name: "pay2", PathPrefix: "/pay2/", Price: backend.Sat(1), Schemes: []string{proxy.SchemePayment}},
			{Name: "paid", PathPrefix: "/paid/", Price: backend.Sat(1)},
		},
	})
	get := func(target string, hdr ...string) func(*testing.T) (int, http.Header, string) {
		return func(*testing.T) (int, http.Header, string) { return e.rawResp("GET", target, hdr...) }
	}
	fwd := func(target string, hdr ...string) func(*testing.T) (int, http.Header, string) {
		return func(*testing.T) (int, http.Header, string) { return e.fwdResp(target, hdr...) }
	}
	a := e.buyCharge(t, "/pay/x")  // used once, then replayed
	b := e.buyCharge(t, "/pay/x")  // never used: its echo is tampered with
	c := e.buyCharge(t, "/pay/x")  // another challenge of the same route
	o := e.buyCharge(t, "/pay2/x") // a challenge of another route
	fa := e.buyCharge(t, "/pay/x") // used through forward auth
	conc := e.buyCharge(t, "/pay/x")

	// The same invoice re-issued under the proxy's own secret with an
	// expires in the past: the id binds, only the time is wrong.
	expired := b
	{
		req, err := b.ch.ChargeRequest()
		if err != nil {
			t.Fatal(err)
		}
		hash, _ := backend.ParsePaymentHash(req.MethodDetails.PaymentHash)
		iss := l402.ChargeIssuer{Secret: secret, Realm: b.ch.Realm, Network: req.MethodDetails.Network}
		expired.ch, err = iss.Challenge(l402.ChargeOffer{Invoice: req.MethodDetails.Invoice, PaymentHash: hash, Amount: backend.Sat(1),
			Description: req.Description, Expires: time.Now().Add(-time.Minute), Opaque: map[string]string{"route": "pay"}})
		if err != nil {
			t.Fatal(err)
		}
		if !expired.ch.VerifyID(secret) {
			t.Fatal("re-issued challenge does not bind")
		}
	}
	// The same, under a secret the proxy does not have.
	forged := b
	{
		iss := l402.ChargeIssuer{Secret: []byte(strings.Repeat("x", 32)), Realm: b.ch.Realm}
		req, _ := b.ch.ChargeRequest()
		hash, _ := backend.ParsePaymentHash(req.MethodDetails.PaymentHash)
		var err error
		forged.ch, err = iss.Challenge(l402.ChargeOffer{Invoice: req.MethodDetails.Invoice, PaymentHash: hash, Amount: backend.Sat(1),
			Expires: time.Now().Add(time.Hour), Opaque: map[string]string{"route": "pay"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	// b's request with its amount lowered to 0 sat, re-encoded canonically.
	cheaper := b.with(func(ch *l402.PaymentChallenge) {
		req, _ := ch.ChargeRequest()
		req.Amount = "0"
		ch.Request, _ = l402.EncodeChargeRequest(req)
	})
	later := b.with(func(ch *l402.PaymentChallenge) {
		exp, _, _ := ch.ExpiresAt()
		ch.Expires = exp.Add(24 * time.Hour).UTC().Format(time.RFC3339)
	})
	credJSON := func(c charge) string {
		b, _ := json.Marshal(l402.NewChargeCredential(c.ch, c.pre))
		return string(b)
	}
	noPayload := func() string {
		b, _ := json.Marshal(map[string]any{"challenge": b.ch})
		return string(b)
	}()
	badHex := func() string {
		b, _ := json.Marshal(map[string]any{"challenge": b.ch, "payload": map[string]string{"preimage": strings.Repeat("z", 64)}})
		return string(b)
	}()

	const (
		malformed   = l402.ProblemMalformedCredential
		invalid     = l402.ProblemInvalidChallenge
		expiredType = l402.ProblemPaymentExpired
		failed      = l402.ProblemVerificationFailed
		unsupported = l402.ProblemMethodUnsupported
	)
	type pa = paymentAttack
	cases := []pa{
		{"charge_valid", "a paid charge of /pay/", 200, "", "upstream /pay/x", true, get("/pay/x", a.auth(t))},
		{"charge_replayed", "the same charge a second time", 402, failed, "credential refused (used)", false, get("/pay/x", a.auth(t))},
		{"charge_replayed_other_path", "the same charge again on another path of the route", 402, failed, "credential refused (used)", false, get("/pay/y", a.auth(t))},
		{"charge_other_route", "a paid charge of route pay2 on route pay", 402, invalid, `issued for route \"pay2\"`, false, get("/pay/x", o.auth(t))},
		{"charge_other_route_still_good", "that charge on its own route: the refusal did not spend it", 200, "", "upstream /pay2/x", true, get("/pay2/x", o.auth(t))},
		{"charge_other_id", "challenge b echoed with challenge c's id", 402, invalid, "credential refused (invalid_challenge)", false,
			get("/pay/x", b.with(func(ch *l402.PaymentChallenge) { ch.ID = c.ch.ID }).auth(t))},
		{"charge_other_proof", "challenge b echoed with the preimage of challenge c", 402, failed, "credential refused (wrong_preimage)", false,
			get("/pay/x", charge{ch: b.ch, pre: c.pre}.auth(t))},
		{"charge_request_swapped", "challenge b echoed with challenge c's request", 402, invalid, "credential refused (invalid_challenge)", false,
			get("/pay/x", b.with(func(ch *l402.PaymentChallenge) { ch.Request = c.ch.Request }).auth(t))},
		{"charge_request_tampered", "challenge b's request re-encoded with amount 0", 402, invalid, "credential refused (invalid_challenge)", false, get("/pay/x", cheaper.auth(t))},
		{"charge_expires_tampered", "challenge b's expires moved a day later", 402, invalid, "credential refused (invalid_challenge)", false, get("/pay/x", later.auth(t))},
		{"charge_expired", "a paid charge whose bound expires is past", 402, expiredType, "credential refused (expired)", false, get("/pay/x", expired.auth(t))},
		{"charge_forged_id", "a paid invoice in a challenge made under another secret", 402, invalid, "credential refused (invalid_challenge)", false, get("/pay/x", forged.auth(t))},
		{"charge_other_realm", "challenge b echoed with realm evil.example", 402, invalid, "credential refused (invalid_challenge)", false,
			get("/pay/x", b.with(func(ch *l402.PaymentChallenge) { ch.Realm = "evil.example" }).auth(t))},
		{"charge_other_method", "challenge b echoed with method=tempo", 402, unsupported, "credential refused (unsupported)", false,
			get("/pay/x", b.with(func(ch *l402.PaymentChallenge) { ch.Method = "tempo" }).auth(t))},
		{"charge_session_intent", "challenge b echoed with intent=session", 402, unsupported, "credential refused (unsupported)", false,
			get("/pay/x", b.with(func(ch *l402.PaymentChallenge) { ch.Intent = l402.IntentSession }).auth(t))},
		{"charge_over_cap", "Authorization: Payment <40 KiB> (cap 32 KiB, server bound 64 KiB)", 402, malformed, "more than 32768", false,
			get("/pay/x", authz("Payment "+strings.Repeat("A", 40<<10)))},
		{"charge_over_header_limit", "Authorization: Payment <100 KiB> (server bound 64 KiB)", 431, "", "", false,
			get("/pay/x", authz("Payment "+strings.Repeat("A", 100<<10)))},
		{"charge_bad_base64", "Authorization: Payment !!!", 402, malformed, "not base64url", false, get("/pay/x", authz("Payment !!!"))},
		{"charge_std_base64", "the credential in standard base64 (+, / and padding)", 402, malformed, "credential refused (malformed)", false,
			get("/pay/x", authz("Payment "+base64.StdEncoding.EncodeToString([]byte(credJSON(b)+"??>>"))))},
		{"charge_bad_padding", "Authorization: Payment eyJhYg= (padding that does not fill a quantum)", 402, malformed, "padding", false, get("/pay/x", authz("Payment eyJhYg="))},
		{"charge_bad_json", "base64url of a truncated JSON object", 402, malformed, "not a JSON object", false, get("/pay/x", paymentRaw(`{"challenge":{"id":`))},
		{"charge_json_trailing", "base64url of the credential followed by {}", 402, malformed, "data after its JSON object", false, get("/pay/x", paymentRaw(credJSON(b)+"{}"))},
		{"charge_no_payload", "challenge b echoed with no payload", 402, malformed, "no payload", false, get("/pay/x", paymentRaw(noPayload))},
		{"charge_bad_preimage", "challenge b echoed with a preimage of 64 z", 402, malformed, "not hex", false, get("/pay/x", paymentRaw(badHex))},
		{"charge_on_l402_route", "a paid charge on a route offering L402 only", 402, "", "credential refused (scheme)", false, get("/paid/x", c.auth(t))},
		{"charge_two_credentials", "two different Payment credentials", 400, "", proxy.ReasonCredentials, false, get("/pay/x", b.auth(t), c.auth(t))},
		{"charge_in_other_scheme", "Authorization: Basic eDp5, Payment <valid>", 400, "", proxy.ReasonCredentials, false,
			get("/pay/x", "Authorization: Basic eDp5, "+strings.TrimPrefix(c.auth(t), "Authorization: "))},
		{"charge_concurrent_replay", "200 concurrent requests with one paid charge", 200, "", "exactly one of 200", true, func(t *testing.T) (int, http.Header, string) {
			ok, st := concurrently(e, 200, "/pay/x", conc.auth(t))
			if ok != 1 || st[402] != 199 {
				return 0, nil, fmt.Sprintf("statuses %v, want one 200 and 199 402s", st)
			}
			return 200, nil, "exactly one of 200" // (no one answer's headers to show)
		}},
		// Forward auth: the grant is the endpoint's 200.
		{"fa_charge_valid", "forward auth, a paid charge", 200, "", "", true, fwd("/pay/x", fa.auth(t))},
		{"fa_charge_replayed", "forward auth, the same charge again", 402, failed, "credential refused (used)", false, fwd("/pay/x", fa.auth(t))},
		{"fa_charge_other_route", "forward auth, a charge of route pay2 on route pay", 402, invalid, "credential refused (invalid_challenge)", false, fwd("/pay/x", o.auth(t))},
		{"fa_charge_request_tampered", "forward auth, challenge b's request re-encoded with amount 0", 402, invalid, "credential refused (invalid_challenge)", false, fwd("/pay/x", cheaper.auth(t))},
		{"fa_charge_expired", "forward auth, a charge whose bound expires is past", 402, expiredType, "credential refused (expired)", false, fwd("/pay/x", expired.auth(t))},
		{"fa_charge_over_cap", "forward auth, Authorization: Payment <40 KiB>", 402, malformed, "more than 32768", false, fwd("/pay/x", authz("Payment "+strings.Repeat("A", 40<<10)))},
		{"fa_charge_bad_base64", "forward auth, Authorization: Payment !!!", 402, malformed, "not base64url", false, fwd("/pay/x", authz("Payment !!!"))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.up.count()
			status, h, body := c.run(t)
			if status != c.status || !strings.Contains(body, c.reason) {
				t.Fatalf("%s: got %d %q, want %d with %q", c.request, status, truncateBody(body), c.status, c.reason)
			}
			fa := strings.HasPrefix(c.name, "fa_")
			switch asked := e.up.count() - before; {
			case !c.reached && asked != 0:
				t.Fatalf("%s: refused with %d, yet the upstream was asked", c.request, status)
			case c.reached && !fa && asked != 1:
				t.Fatalf("%s: granted, and the upstream was asked %d times, want once", c.request, asked)
			case fa && asked != 0:
				t.Fatalf("%s: forward auth reached the upstream", c.request)
			}
			if c.reached && h != nil {
				if h.Get(l402.HeaderPaymentReceipt) == "" {
					t.Errorf("%s: no Payment-Receipt", c.request)
				}
				if !fa {
					if got := e.up.lastReq().Header.Values("Authorization"); len(got) != 0 {
						t.Errorf("%s: the upstream got Authorization %q", c.request, got)
					}
				}
			}
			if c.problem != "" {
				if ct := h.Get("Content-Type"); ct != l402.ProblemContentType {
					t.Fatalf("%s: Content-Type %q, want %s", c.request, ct, l402.ProblemContentType)
				}
				var p l402.Problem
				if err := json.Unmarshal([]byte(body), &p); err != nil || p.Type != c.problem || p.Status != status {
					t.Fatalf("%s: problem %+v (%v), want type %s status %d", c.request, p, err, c.problem, status)
				}
				// Refused, the client is offered a fresh charge to pay.
				if pcs, err := l402.ParsePaymentChallenges(h); err != nil || len(pcs) != 1 {
					t.Fatalf("%s: challenges with the refusal: %v %v", c.request, pcs, err)
				}
			}
			t.Logf("PASS %s: %s -> %d %s %s", c.name, c.request, status, c.problem, c.reason)
		})
	}
}
