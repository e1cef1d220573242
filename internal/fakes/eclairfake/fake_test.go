package eclairfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
)

func start(t *testing.T) (*Server, *memnode.Node) {
	t.Helper()
	node, err := memnode.New(memnode.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	s, err := New(Config{Node: node, Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, node
}

func post(t *testing.T, s *Server, method, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+"/"+method, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.SetBasicAuth("", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp, buf.Bytes()
}

// eclair-cli and the docs' curl -F examples send multipart forms; most
// clients send url-encoded ones. Eclair takes both, so the fake does.
func TestFormEncodings(t *testing.T) {
	s, node := start(t)
	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	w.WriteField("description", "multipart")
	w.WriteField("amountMsat", "5000")
	w.Close()
	resp, body := post(t, s, "createinvoice", w.FormDataContentType(), mp.Bytes())
	if resp.StatusCode != 200 {
		t.Fatalf("multipart createinvoice: %d %s", resp.StatusCode, body)
	}
	var inv invoiceJSON
	if err := json.Unmarshal(body, &inv); err != nil {
		t.Fatal(err)
	}
	if inv.Description == nil || *inv.Description != "multipart" || inv.Amount == nil || *inv.Amount != 5000 || inv.Prefix != "lnbcrt" {
		t.Errorf("invoice %+v", inv)
	}
	form := url.Values{"paymentHash": {inv.PaymentHash}}
	resp, body = post(t, s, "getreceivedinfo", "application/x-www-form-urlencoded", []byte(form.Encode()))
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"type":"pending"`) {
		t.Errorf("url-encoded getreceivedinfo: %d %s", resp.StatusCode, body)
	}
	h, _ := backend.ParsePaymentHash(inv.PaymentHash)
	got, err := node.LookupInvoice(t.Context(), h)
	if err != nil || got.PaymentRequest != inv.Serialized {
		t.Errorf("the memory node has %+v, %v; want the invoice the fake returned", got, err)
	}
}

func TestStopStartSamePort(t *testing.T) {
	s, _ := start(t)
	addr := s.Addr()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err := http.Post(s.URL()+"/getinfo", "text/plain", nil)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("stopped fake: %v, want connection refused", err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr {
		t.Errorf("restarted on %s, was %s", s.Addr(), addr)
	}
	resp, body := post(t, s, "getinfo", "application/x-www-form-urlencoded", nil)
	if resp.StatusCode != 200 {
		t.Errorf("getinfo after restart: %d %s", resp.StatusCode, body)
	}
}

// An expired open invoice reads "expired", as Eclair reports it.
func TestExpiredStatus(t *testing.T) {
	s, _ := start(t)
	resp, body := post(t, s, "createinvoice", "application/x-www-form-urlencoded",
		[]byte(url.Values{"description": {"short"}, "expireIn": {"1"}}.Encode()))
	if resp.StatusCode != 200 {
		t.Fatalf("createinvoice: %d %s", resp.StatusCode, body)
	}
	var inv invoiceJSON
	json.Unmarshal(body, &inv)
	if inv.Amount != nil || inv.Expiry != 1 {
		t.Errorf("any-amount invoice with expireIn=1: %+v", inv)
	}
	time.Sleep(1100 * time.Millisecond)
	resp, body = post(t, s, "getreceivedinfo", "application/x-www-form-urlencoded", []byte(url.Values{"paymentHash": {inv.PaymentHash}}.Encode()))
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":{"type":"expired"}`) {
		t.Errorf("getreceivedinfo after expiry: %d %s", resp.StatusCode, body)
	}
}

func TestMillis(t *testing.T) {
	for in, want := range map[time.Time]string{
		time.Date(2026, 5, 22, 12, 6, 6, 0, time.UTC):            "2026-05-22T12:06:06Z",
		time.Date(2026, 5, 22, 12, 6, 19, 937_400_000, time.UTC): "2026-05-22T12:06:19.937Z",
		time.Date(2026, 5, 22, 12, 6, 19, 930_000_000, time.UTC): "2026-05-22T12:06:19.930Z",
	} {
		if got := millis(in); got.ISO != want || got.Unix != in.Unix() {
			t.Errorf("millis(%s) = %+v, want %s", in, got, want)
		}
	}
}

// What Eclair refuses, the fake refuses: Bolt11Invoice.fromString takes the
// bare invoice only (400 for the form field), Bolt11Invoice requires a
// positive amount (the generic 500), and maxAttempts is an Int.
func TestRefusesWhatEclairRefuses(t *testing.T) {
	s, node := start(t)
	inv, err := node.CreateInvoice(t.Context(), backend.InvoiceRequest{Amount: 5000, Memo: "x", Expiry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method string
		form   url.Values
		status int
	}{
		{"payinvoice", url.Values{"invoice": {"lightning:" + inv.PaymentRequest}}, 400},
		{"payinvoice", url.Values{"invoice": {inv.PaymentRequest + "\n"}}, 400},
		{"getreceivedinfo", url.Values{"invoice": {"lightning:" + inv.PaymentRequest}}, 400},
		{"payinvoice", url.Values{"invoice": {inv.PaymentRequest}, "maxAttempts": {"4294967296"}}, 400},
		{"createinvoice", url.Values{"description": {"a"}, "amountMsat": {"0"}}, 500},
		{"createinvoice", url.Values{"description": {"a"}, "amountMsat": {"-1"}}, 500},
		{"createinvoice", url.Values{"description": {"a"}, "amountMsat": {"1.5"}}, 400},
	} {
		resp, body := post(t, s, c.method, "application/x-www-form-urlencoded", []byte(c.form.Encode()))
		if resp.StatusCode != c.status || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s %v: %d %s, want %d", c.method, c.form, resp.StatusCode, body, c.status)
		}
	}
}
