package lndrest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The wire shapes LND's gateway uses: int64 as strings, bytes as standard
// base64, enums by name.
func TestWireShapes(t *testing.T) {
	b, err := json.Marshal(Invoice{Memo: "m", ValueMsat: 1000, Expiry: 600, RPreimage: []byte{0xfb, 0xff}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"memo":"m","r_preimage":"+/8=","value_msat":"1000","expiry":"600"}`; got != want {
		t.Fatalf("Invoice encodes as %s, want %s", got, want)
	}
	// As LND v0.20 answers a lookup (abridged; unpopulated fields present).
	const answer = `{"memo":"m","r_preimage":"","r_hash":"AQI=","value":"1","value_msat":"1000","settled":false,
		"creation_date":"1700000000","settle_date":"0","payment_request":"lnbcrt1...","description_hash":null,
		"expiry":"600","amt_paid_msat":"0","state":"OPEN","htlcs":[],"features":{}}`
	var in Invoice
	if err := json.Unmarshal([]byte(answer), &in); err != nil {
		t.Fatal(err)
	}
	if in.ValueMsat != 1000 || in.CreationDate != 1700000000 || in.State != InvoiceOpen || string(in.RHash) != "\x01\x02" || in.Expiry != 600 {
		t.Fatalf("decoded %+v", in)
	}
}

func TestErrorAnswer(t *testing.T) {
	answer := func(status int, body string) *Error {
		t.Helper()
		err := errorAnswer("GET /x", &http.Response{StatusCode: status, Status: http.StatusText(status), Body: io.NopCloser(strings.NewReader(body))})
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("errorAnswer = %T", err)
		}
		return e
	}
	if e := answer(500, `{"code":2,"message":"unable to locate invoice","details":[]}`); e.Code != CodeUnknown || e.Message != "unable to locate invoice" || e.NoRoute() {
		t.Fatalf("status body: %+v", e)
	}
	if e := answer(409, `{"error":{"code":6,"message":"invoice is already paid","details":[]}}`); e.Code != CodeAlreadyExists || e.Message != "invoice is already paid" {
		t.Fatalf("stream error before the first message: %+v", e)
	}
	if e := answer(404, `{"code":5,"message":"Not Found","details":[]}`); !e.NoRoute() {
		t.Fatalf("gateway's unknown path: %+v", e)
	}
	if e := answer(502, "<html>bad gateway</html>"); e.Code != CodeUnavailable || !strings.Contains(e.Message, "bad gateway") {
		t.Fatalf("proxy page: %+v", e)
	}
}

func TestParseCerts(t *testing.T) {
	for _, bad := range []string{"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "junk"} {
		if _, err := parseCerts([]byte(bad)); !errors.Is(err, ErrBadCert) {
			t.Errorf("parseCerts(%q) = %v, want ErrBadCert", bad, err)
		}
	}
}
