package phoenixd_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/fakes/phoenixdfake"
	"github.com/l402kit/l402kit/phoenixd"
)

// The "Webhook authentication" example of phoenixd's API reference.
const (
	docSecret    = "ef72d3b96324106dfbf83f2a4efeff7dddb4ce923e9664cb56baf34cc52936b6"
	docSignature = "77ffc40401024fb417e45fdd002de06bdbf3b48b90d09d05cccd06462920aed7"
)

func docBody(t *testing.T) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "webhook-signed-body.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyWebhook(t *testing.T) {
	body := docBody(t)
	tampered := bytes.Replace(body, []byte(`"amountSat": 8`), []byte(`"amountSat": 9`), 1)
	if bytes.Equal(tampered, body) {
		t.Fatal("tampering changed nothing")
	}
	cases := []struct {
		name   string
		secret string
		body   []byte
		sig    string
		ok     bool
	}{
		{"documented example", docSecret, body, docSignature, true},
		{"upper-case hex", docSecret, body, strings.ToUpper(docSignature), true},
		{"tampered body", docSecret, tampered, docSignature, false},
		{"trailing newline added to body", docSecret, append(append([]byte(nil), body...), '\n'), docSignature, false},
		{"wrong secret", docSecret[:63] + "7", body, docSignature, false},
		{"secret hex-decoded instead of UTF-8", string(mustHex(t, docSecret)), body, docSignature, false},
		{"empty secret", "", body, docSignature, false},
		{"missing header", docSecret, body, "", false},
		{"not hex", docSecret, body, strings.Repeat("zz", 32), false},
		{"too short", docSecret, body, docSignature[:62], false},
		{"too long", docSecret, body, docSignature + "00", false},
		{"base64 instead of hex", docSecret, body, "d//EBAECT7QX5F/dAC3ga9vztIuQ0J0FzM0GRikgrtc=", false},
	}
	for _, c := range cases {
		err := phoenixd.VerifyWebhook(c.secret, c.body, c.sig)
		if c.ok && err != nil {
			t.Errorf("%s: %v, want valid", c.name, err)
		}
		if !c.ok && (!errors.Is(err, phoenixd.ErrBadSignature) || !errors.Is(err, backend.ErrInvalid)) {
			t.Errorf("%s: %v, want ErrBadSignature wrapping ErrInvalid", c.name, err)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func TestWebhookHandler(t *testing.T) {
	got := make(chan *phoenixd.WebhookEvent, 1)
	srv := httptest.NewServer(phoenixd.WebhookHandler(docSecret, func(_ context.Context, ev *phoenixd.WebhookEvent) error {
		got <- ev
		return nil
	}))
	defer srv.Close()
	body := docBody(t)
	post := func(body []byte, sig string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		if sig != "" {
			req.Header.Set(phoenixd.SignatureHeader, sig)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post(body, docSignature); s != http.StatusOK {
		t.Fatalf("documented webhook: status %d", s)
	}
	ev := <-got
	if ev.AmountSat != 8 || ev.PaymentHash.String() != "e628f8a516e9d3ee5e212a675f8d0c9dc5e7a5d500c5f4f91c62e9e921492653" {
		t.Errorf("handler got %+v", ev)
	}
	if s := post(bytes.Replace(body, []byte("8"), []byte("9"), 1), docSignature); s != http.StatusUnauthorized {
		t.Errorf("tampered body: status %d, want 401", s)
	}
	if s := post(body, ""); s != http.StatusUnauthorized {
		t.Errorf("no signature: status %d, want 401", s)
	}
	if s := post([]byte("not json"), sign(docSecret, []byte("not json"))); s != http.StatusBadRequest {
		t.Errorf("signed garbage: status %d, want 400", s)
	}
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", resp.StatusCode)
	}
	select {
	case ev := <-got:
		t.Errorf("handler called for a refused request: %+v", ev)
	default:
	}
}

// TestWebhookFromFake: the fake signs its webhook calls as phoenixd does,
// and the handler accepts them: the whole webhook path over real sockets.
func TestWebhookFromFake(t *testing.T) {
	const secret = "webhook secret from phoenix.conf"
	got := make(chan *phoenixd.WebhookEvent, 1)
	srv := httptest.NewServer(phoenixd.WebhookHandler(secret, func(_ context.Context, ev *phoenixd.WebhookEvent) error {
		got <- ev
		return nil
	}))
	defer srv.Close()
	h := newHarness(t, phoenixdfake.Config{WebhookSecret: secret, WebhookURLs: []string{srv.URL}}, phoenixd.Config{})
	ctx := ctxT(t)
	inv, err := h.client.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(12), Memo: "webhook"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.node.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev.Type != "payment_received" || ev.PaymentHash != inv.PaymentHash || ev.Amount() != backend.Sat(12) {
			t.Errorf("webhook event %+v, want payment_received of 12 sat for %s", ev, inv.PaymentHash)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no webhook call within 15s of the payment")
	}
}
