package phoenixd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// The fixtures are phoenixd's documented examples (see testdata/README.md);
// these tests decode them with the adapter's own wire types and conversions
// and check the values the documentation shows.

func readFixture(t *testing.T, name string, v any) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return b
}

func mustHash(t *testing.T, s string) backend.PaymentHash {
	t.Helper()
	h, err := backend.ParsePaymentHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestFixtureCreateInvoice(t *testing.T) {
	var g generatedInvoice
	readFixture(t, "createinvoice.json", &g)
	if g.AmountSat == nil || *g.AmountSat != 100 {
		t.Errorf("amountSat %v, want 100", g.AmountSat)
	}
	d, err := backend.DecodeInvoice(g.Serialized)
	if err != nil {
		t.Fatalf("documented invoice does not decode: %v", err)
	}
	if d.PaymentHash != mustHash(t, g.PaymentHash) {
		t.Errorf("paymentHash %s, the invoice says %s", g.PaymentHash, d.PaymentHash)
	}
	if d.Network != "testnet" || d.Amount != backend.Sat(100) || d.Memo != "my first invoice" {
		t.Errorf("invoice decodes to %s %s %q, want testnet 100 sat \"my first invoice\"", d.Network, d.Amount, d.Memo)
	}
}

func TestFixtureIncomingPaymentGet(t *testing.T) {
	var p incomingPayment
	readFixture(t, "payments-incoming-get.json", &p)
	want := mustHash(t, "1399476fe927fd02523ae203d05e3badeb27ee951c4d5dfdd06ba7f2d713864f")
	inv, err := p.invoice(want)
	if err != nil {
		t.Fatal(err)
	}
	if inv.State != backend.StateSettled {
		t.Errorf("state %s, want settled", inv.State)
	}
	if inv.Amount != 0 {
		t.Errorf("amountless invoice reads amount %s", inv.Amount)
	}
	if inv.AmountReceived != backend.Sat(1500) {
		t.Errorf("received %s, want 1500 sat", inv.AmountReceived)
	}
	if inv.Memo != "amountless invoice" {
		t.Errorf("memo %q", inv.Memo)
	}
	if inv.Preimage == nil || inv.Preimage.String() != "a17e7be515418882adf36fbafae20d5bcf6e17bf17b6e08a1b4b5912e537574a" {
		t.Errorf("preimage %v", inv.Preimage)
	}
	if !inv.SettledAt.Equal(time.UnixMilli(1750943212490)) {
		t.Errorf("settled at %s, want completedAt 1750943212490 ms", inv.SettledAt)
	}
	// The BOLT11 timestamp is whole seconds; phoenixd's createdAt is its
	// record's millisecond stamp, taken in the same second.
	if d := inv.CreatedAt.Sub(time.UnixMilli(1750943185548)); d > time.Second || d < -time.Second {
		t.Errorf("created at %s, phoenixd says 1750943185548 ms", inv.CreatedAt)
	}
	if d := inv.ExpiresAt.Sub(time.UnixMilli(1751029585548)); d > time.Second || d < -time.Second {
		t.Errorf("expires at %s, phoenixd says 1751029585548 ms", inv.ExpiresAt)
	}
	if _, err := p.invoice(mustHash(t, strings.Repeat("00", 31)+"01")); err == nil {
		t.Errorf("a record for another hash was accepted")
	}
}

func TestFixtureIncomingPaymentList(t *testing.T) {
	var list []incomingPayment
	readFixture(t, "payments-incoming-list.json", &list)
	if len(list) != 5 {
		t.Fatalf("%d records, want 5", len(list))
	}
	type want struct {
		state            backend.State
		amount, received backend.MilliSat
		hasInvoice       bool
	}
	wants := []want{
		{backend.StateOpen, backend.Sat(1000), 0, true},                    // expired, never paid
		{backend.StateSettled, backend.Sat(1000), backend.Sat(1050), true}, // overpaid
		{backend.StateSettled, 0, backend.Sat(1500), true},                 // amountless
		{backend.StateSettled, 0, backend.Sat(352), false},                 // Bolt12: no invoice
		{backend.StateSettled, 0, backend.Sat(100000), false},
	}
	for i, p := range list {
		inv, err := p.invoice(backend.PaymentHash{})
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		w := wants[i]
		if inv.State != w.state || inv.Amount != w.amount || inv.AmountReceived != w.received || (inv.PaymentRequest != "") != w.hasInvoice {
			t.Errorf("record %d: %s asked %s received %s invoice %t, want %s %s %s %t",
				i, inv.State, inv.Amount, inv.AmountReceived, inv.PaymentRequest != "", w.state, w.amount, w.received, w.hasInvoice)
		}
		if inv.Preimage == nil || !inv.Preimage.Matches(inv.PaymentHash) {
			t.Errorf("record %d: preimage %v does not hash to %s", i, inv.Preimage, inv.PaymentHash)
		}
	}
	// The expired one reads expired whatever its state says: phoenixd says
	// isExpired, the adapter reads the BOLT11 expiry (100 s).
	first, _ := list[0].invoice(backend.PaymentHash{})
	if !first.Expired(time.Now()) || first.ExpiresAt.Sub(first.CreatedAt) != 100*time.Second {
		t.Errorf("expired record: expires %s after creation, Expired=%t", first.ExpiresAt.Sub(first.CreatedAt), first.Expired(time.Now()))
	}
	if !list[0].IsExpired || list[1].IsExpired {
		t.Errorf("isExpired decoded as %t, %t", list[0].IsExpired, list[1].IsExpired)
	}
	if list[3].PayerKey == nil || *list[3].PayerKey != "02da45cf516282e6959e48c26d6ed5f98bf7c32248193439bd1d22de81ae897426" {
		t.Errorf("payerKey %v", list[3].PayerKey)
	}
}

func TestFixturePayInvoice(t *testing.T) {
	var r paymentResult
	readFixture(t, "payinvoice.json", &r)
	bolt11 := strings.TrimSpace(string(readFixture(t, "payinvoice-request-invoice.txt", nil)))
	d, err := backend.DecodeInvoice(bolt11)
	if err != nil {
		t.Fatal(err)
	}
	if d.PaymentHash != mustHash(t, r.PaymentHash) {
		t.Errorf("answer's paymentHash %s, the paid invoice's %s", r.PaymentHash, d.PaymentHash)
	}
	pre, err := backend.ParsePreimage(r.PaymentPreimage)
	if err != nil {
		t.Fatal(err)
	}
	if !pre.Matches(d.PaymentHash) {
		t.Errorf("documented preimage does not hash to the documented payment hash")
	}
	if r.RecipientAmountSat == nil || *r.RecipientAmountSat != 1 || r.RoutingFeeSat == nil || *r.RoutingFeeSat != 4 || r.Reason != nil {
		t.Errorf("decoded %+v", r)
	}
	if r.PaymentID != "961d413c-91ca-4f3d-9d91-760a08405901" {
		t.Errorf("paymentId %q", r.PaymentID)
	}
}

func TestFixturePayInvoiceFailed(t *testing.T) {
	var r paymentResult
	readFixture(t, "payinvoice-failed.json", &r)
	if r.Reason == nil || *r.Reason != "recipient node is unreachable" || r.PaymentPreimage != "" || r.RecipientAmountSat != nil {
		t.Errorf("decoded %+v", r)
	}
}

func TestFixtureGetInfo(t *testing.T) {
	var n nodeInfo
	readFixture(t, "getinfo.json", &n)
	info := n.nodeInfo()
	if info.NodeID != "023a882b070d0b9b1c8db2975f2dcc65d1ffa22e00085506ab24799d6d95d658a2" {
		t.Errorf("node id %q", info.NodeID)
	}
	if info.Network != "" || info.Synced {
		t.Errorf("the documented example has no chain or height, yet Info says %q synced=%t", info.Network, info.Synced)
	}
	if len(n.Channels) != 1 || n.Channels[0].State != "Normal" || *n.Channels[0].CapacitySat != 1015160 || *n.Channels[0].BalanceSat != 10 {
		t.Errorf("channels %+v", n.Channels)
	}

	var n8 nodeInfo
	readFixture(t, "getinfo-0.8.0.json", &n8)
	info = n8.nodeInfo()
	if info.Network != "testnet" || info.BlockHeight != 4467021 || !info.Synced {
		t.Errorf("0.8.0 getinfo reads %q height %d synced %t, want testnet 4467021 true", info.Network, info.BlockHeight, info.Synced)
	}
	if n8.Version == nil || *n8.Version != "0.8.0" {
		t.Errorf("version %v", n8.Version)
	}
}

func TestFixtureWebsocketEvents(t *testing.T) {
	b := readFixture(t, "websocket-events.jsonl", nil)
	sc := bufio.NewScanner(bytes.NewReader(b))
	var events []wsEvent
	for sc.Scan() {
		var ev wsEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if len(events) != 2 {
		t.Fatalf("%d events, want 2", len(events))
	}
	if events[0].Type != "payment_received" || events[0].AmountSat != 15 || events[1].AmountSat != 30 {
		t.Errorf("events %+v", events)
	}
	if _, err := backend.ParsePaymentHash(events[1].PaymentHash); err != nil {
		t.Errorf("event hash: %v", err)
	}
}

// The "Webhook authentication" example of the reference: its secret, body
// and signature, checked by VerifyWebhook.
const (
	docWebhookSecret    = "ef72d3b96324106dfbf83f2a4efeff7dddb4ce923e9664cb56baf34cc52936b6"
	docWebhookSignature = "77ffc40401024fb417e45fdd002de06bdbf3b48b90d09d05cccd06462920aed7"
)

func TestFixtureWebhookSignature(t *testing.T) {
	body := readFixture(t, "webhook-signed-body.json", nil)
	if err := VerifyWebhook(docWebhookSecret, body, docWebhookSignature); err != nil {
		t.Fatalf("documented webhook example does not verify: %v", err)
	}
	var ev WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.AmountSat != 8 || ev.Amount() != backend.Sat(8) || ev.ExternalID != nil || ev.Timestamp != 1712785550079 ||
		ev.PaymentHash != mustHash(t, "e628f8a516e9d3ee5e212a675f8d0c9dc5e7a5d500c5f4f91c62e9e921492653") {
		t.Errorf("decoded %+v", ev)
	}
}

func TestFixtureWebhookEvent(t *testing.T) {
	var ev WebhookEvent
	readFixture(t, "webhook-event.json", &ev)
	if ev.Type != "payment_received" || ev.AmountSat != 1 || ev.PayerNote != nil || ev.PayerKey != nil || ev.ExternalID != nil {
		t.Errorf("decoded %+v", ev)
	}
}

func TestStatusErrorMapping(t *testing.T) {
	cases := []struct {
		path   string
		status int
		body   string
		want   error
	}{
		{"/getinfo", 401, "Invalid authentication (use basic auth with the http password set in phoenix.conf)", backend.ErrInvalid},
		{"/payments/incoming/00", 404, "Not found", backend.ErrNotFound},
		{"/createinvoice", 404, "Unknown endpoint (check api doc)", backend.ErrUnsupported},
		{"/payments/incoming/00", 404, "<html><body>404 page not found</body></html>", backend.ErrUnsupported},
		{"/createinvoice", 405, "Invalid http method (use the correct GET/POST)", backend.ErrUnsupported},
		{"/createinvoice", 400, "Must provide either a description or descriptionHash", backend.ErrInvalid},
		{"/createinvoice", 500, "boom", backend.ErrUnavailable},
		{"/getinfo", 502, "Bad Gateway", backend.ErrUnavailable},
		{"/getinfo", 503, "", backend.ErrUnavailable},
	}
	for _, c := range cases {
		err := statusError(c.path, c.status, []byte(c.body))
		if !errors.Is(err, c.want) {
			t.Errorf("%s %d %q: %v, want %v", c.path, c.status, c.body, err, c.want)
		}
		if c.body != "" && !strings.Contains(err.Error(), c.body) {
			t.Errorf("%s %d: message %q drops phoenixd's text", c.path, c.status, err)
		}
	}
	if err := statusError("/payinvoice", 401, nil); !strings.Contains(err.Error(), "limited-access") {
		t.Errorf("401 on payinvoice does not mention the limited-access password: %v", err)
	}
}

func TestNetworkNames(t *testing.T) {
	for in, want := range map[string]string{"mainnet": "mainnet", "testnet3": "testnet", "testnet4": "testnet", "regtest": "regtest", "Signet": "signet"} {
		if got := network(in); got != want {
			t.Errorf("network(%q) = %q, want %q", in, got, want)
		}
	}
}
