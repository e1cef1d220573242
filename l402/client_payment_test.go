package l402_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/fakes/l402fake"
	"github.com/l402kit/l402kit/l402"
)

// chargeServer is a Payment-only server on a memory node: a charge
// challenge per request without a credential, built with ChargeIssuer;
// credentials are verified, their invoice must be settled on the node and
// each is served once. extra, when set, replaces or adds to the challenge
// lines (another method, a session).
type chargeServer struct {
	t       *testing.T
	node    *backend.Backend
	iss     *l402.ChargeIssuer
	price   backend.MilliSat
	lines   func(charge string) []string
	served  atomic.Int32
	refused atomic.Int32
	mu      sync.Mutex
	spent   map[backend.PaymentHash]bool
}

func newChargeServer(t *testing.T, node *backend.Backend, price backend.MilliSat) *chargeServer {
	return &chargeServer{
		t: t, node: node, price: price, spent: map[backend.PaymentHash]bool{},
		iss: &l402.ChargeIssuer{Secret: []byte("charge server secret, 32 bytes.."), Realm: "charges.test", Network: "regtest"},
	}
}

func (s *chargeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if cred, err := l402.PaymentFromHeader(r.Header); err == nil {
		v, err := s.iss.Verify(cred, time.Now())
		if err == nil {
			inv, lerr := s.node.LookupInvoice(r.Context(), v.PaymentHash)
			s.mu.Lock()
			if lerr != nil || inv.State != backend.StateSettled || s.spent[v.PaymentHash] {
				err = l402.ErrPaymentUnverified
			} else {
				s.spent[v.PaymentHash] = true
			}
			s.mu.Unlock()
		}
		if err == nil {
			s.served.Add(1)
			w.Header().Set(l402.HeaderPaymentReceipt, v.Receipt(time.Now()).Header())
			w.Write([]byte("charged content\n"))
			return
		}
		s.refused.Add(1)
	}
	inv, err := s.node.CreateInvoice(r.Context(), backend.InvoiceRequest{Amount: s.price, Memo: "charge"})
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	ch, err := s.iss.Challenge(l402.ChargeOffer{Invoice: inv.PaymentRequest, PaymentHash: inv.PaymentHash, Amount: s.price, Expires: inv.ExpiresAt})
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	lines := []string{ch.Header()}
	if s.lines != nil {
		lines = s.lines(ch.Header())
	}
	for _, l := range lines {
		w.Header().Add(l402.HeaderWWWAuthenticate, l)
	}
	typ, title := l402.ProblemFor(nil)
	l402.WriteProblem(w, l402.Problem{Type: typ, Title: title, Status: http.StatusPaymentRequired, ChallengeID: ch.ID})
}

// TestTransportPaysCharge: a Payment-only server is paid once per request
// (a charge buys one request), with the receipt read back.
func TestTransportPaysCharge(t *testing.T) {
	node := newNode(t)
	cs := newChargeServer(t, node, backend.Sat(3))
	srv := httptest.NewServer(cs)
	defer srv.Close()
	paid := &payments{}
	client := &http.Client{Transport: &l402.Transport{Payer: node, MaxPrice: backend.Sat(3), OnPayment: paid.record}}
	for i := 0; i < 2; i++ {
		resp, body := do(t, client, "POST", srv.URL+"/x")
		if resp.StatusCode != http.StatusOK || body != "charged content\n" {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
		r, ok, err := l402.ParsePaymentReceipt(resp.Header)
		if !ok || err != nil || r.Status != "success" || r.Reference != paid.r[i].PaymentHash.String() {
			t.Fatalf("receipt %+v %v %v", r, ok, err)
		}
		if rr, ok := l402.ReceiptFromResponse(resp); !ok || rr.Scheme != l402.SchemePayment || rr.Amount != backend.Sat(3) {
			t.Fatalf("receipt from response %+v %v", rr, ok)
		}
	}
	if paid.count() != 2 || cs.served.Load() != 2 || cs.refused.Load() != 0 {
		t.Fatalf("%d payments, %d served, %d refused", paid.count(), cs.served.Load(), cs.refused.Load())
	}
}

// TestTransportChargeRefusals: what the Transport cannot or may not pay is
// a *ChallengeError, and nothing is paid.
func TestTransportChargeRefusals(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lines    func(charge string) []string
		maxPrice backend.MilliSat
		want     error
	}{
		{"session intent", func(c string) []string { return []string{strings.Replace(c, `intent="charge"`, `intent="session"`, 1)} },
			backend.Sat(5), l402.ErrPaymentUnsupported},
		{"another method", func(c string) []string {
			return []string{strings.Replace(c, `method="lightning"`, `method="tempo"`, 1)}
		},
			backend.Sat(5), l402.ErrPaymentUnsupported},
		{"over the price limit", nil, backend.Sat(2), l402.ErrPriceTooHigh},
		{"request tampered by someone between", func(c string) []string {
			return []string{c[:strings.Index(c, `request="`)+len(`request="`)] + "e30" + c[strings.Index(c, `", expires`):]}
		}, backend.Sat(5), l402.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := newNode(t)
			cs := newChargeServer(t, node, backend.Sat(3))
			cs.lines = tc.lines
			srv := httptest.NewServer(cs)
			defer srv.Close()
			paid := &payments{}
			client := &http.Client{Transport: &l402.Transport{Payer: node, MaxPrice: tc.maxPrice, OnPayment: paid.record}}
			_, err := client.Get(srv.URL + "/x")
			var ce *l402.ChallengeError
			if !errors.As(err, &ce) || ce.Scheme != l402.SchemePayment || !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want a Payment ChallengeError matching %v", err, tc.want)
			}
			if paid.count() != 0 {
				t.Fatalf("paid %d times", paid.count())
			}
		})
	}
}

// TestTransportSchemeOrder: the preference order decides between the L402
// and Payment challenges of one 402 (Aperture's, both on one invoice
// node), and a scheme left out is never paid.
func TestTransportSchemeOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		schemes []string
		want    string // scheme paid; "" none
	}{
		{"default prefers L402", nil, l402.SchemeL402},
		{"Payment first", []string{l402.SchemePayment, l402.SchemeL402}, l402.SchemePayment},
		{"Payment only", []string{l402.SchemePayment}, l402.SchemePayment},
		{"LSAT only", []string{l402.SchemeLSAT}, l402.SchemeLSAT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := newNode(t)
			ap := l402fake.NewAperture(t, l402fake.ApertureConfig{Node: node, Price: backend.Sat(2), Payment: true})
			srv := httptest.NewServer(ap)
			defer srv.Close()
			paid := &payments{}
			client := &http.Client{Transport: &l402.Transport{Payer: node, MaxPrice: backend.Sat(2), OnPayment: paid.record, Schemes: tc.schemes}}
			resp, body := do(t, client, "GET", srv.URL+"/a")
			if resp.StatusCode != http.StatusOK || body != "aperture content for GET /a\n" {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			if paid.count() != 1 || paid.r[0].Scheme != tc.want {
				t.Fatalf("payments %+v, want one by %s", paid.r, tc.want)
			}
			_, hasReceipt, _ := l402.ParsePaymentReceipt(resp.Header)
			if hasReceipt != (tc.want == l402.SchemePayment) {
				t.Fatalf("Payment-Receipt present: %v", hasReceipt)
			}
		})
	}
	// A Payment-only server and a Transport that does not pay the scheme:
	// the 402 comes back as it is.
	node := newNode(t)
	srv := httptest.NewServer(newChargeServer(t, node, backend.Sat(1)))
	defer srv.Close()
	client := &http.Client{Transport: &l402.Transport{Payer: node, MaxPrice: backend.Sat(1), Schemes: []string{l402.SchemeL402}}}
	resp, _ := do(t, client, "GET", srv.URL+"/a")
	if resp.StatusCode != http.StatusPaymentRequired || resp.Header.Get("Content-Type") != l402.ProblemContentType {
		t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestTransportChargeReplayRefused: the Aperture stand-in (as at 7ee3ed7)
// consumes a charge once: the same credential sent again is refused with a
// fresh challenge.
func TestTransportChargeReplayRefused(t *testing.T) {
	node := newNode(t)
	ap := l402fake.NewAperture(t, l402fake.ApertureConfig{Node: node, Price: backend.Sat(2), Payment: true})
	srv := httptest.NewServer(ap)
	defer srv.Close()
	var auth atomic.Value
	capture := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if v := r.Header.Get("Authorization"); l402.IsPaymentAuthorization(v) {
			auth.Store(v)
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	client := &http.Client{Transport: &l402.Transport{Base: capture, Payer: node, MaxPrice: backend.Sat(2), Schemes: []string{l402.SchemePayment}}}
	if resp, _ := do(t, client, "GET", srv.URL+"/a"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", srv.URL+"/a", nil)
	req.Header.Set("Authorization", auth.Load().(string))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("replayed charge: status %d", resp.StatusCode)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
