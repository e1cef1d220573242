package eclairfake

import (
	"crypto/rand"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/l402kit/l402kit/bolt11"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
)

// TestUnsupportedFeaturesRefusedUnrecorded: an invoice requiring a feature
// the node disabled gets a payment id from a non-blocking payinvoice, and
// then getsentinfo knows nothing of it; a blocking payinvoice answers the
// payment-failed with UnsupportedFeatures' message.
func TestUnsupportedFeaturesRefusedUnrecorded(t *testing.T) {
	node, err := memnode.New(memnode.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	s, err := New(Config{Node: node, Password: "pw", DisabledFeatures: []int{48}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	key, _ := btcec.NewPrivateKey()
	inv := &bolt11.Invoice{Network: "regtest", Amount: 5000, Timestamp: time.Now(), Description: "x",
		Expiry: time.Hour, MinFinalCLTV: 18, Features: []int{8, 14, 48}, Metadata: []byte{7}}
	rand.Read(inv.PaymentHash[:])
	rand.Read(inv.PaymentSecret[:])
	str, err := bolt11.Encode(inv, key)
	if err != nil {
		t.Fatal(err)
	}
	form := func(v url.Values) []byte { return []byte(v.Encode()) }
	const ct = "application/x-www-form-urlencoded"

	resp, body := post(t, s, "payinvoice", ct, form(url.Values{"invoice": {str}}))
	var id string
	if resp.StatusCode != 200 || json.Unmarshal(body, &id) != nil || !isUUID(id) {
		t.Fatalf("non-blocking payinvoice: %d %s, want a payment id", resp.StatusCode, body)
	}
	resp, body = post(t, s, "getsentinfo", ct, form(url.Values{"id": {id}}))
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("getsentinfo of the refused payment: %d %s, want []", resp.StatusCode, body)
	}
	resp, body = post(t, s, "payinvoice", ct, form(url.Values{"invoice": {str}, "blocking": {"true"}}))
	var ev struct {
		Type     string `json:"type"`
		Failures []struct {
			T string `json:"t"`
		} `json:"failures"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &ev) != nil || ev.Type != "payment-failed" ||
		len(ev.Failures) != 1 || !strings.HasPrefix(ev.Failures[0].T, "unsupported invoice features: ") {
		t.Errorf("blocking payinvoice: %d %s, want payment-failed with unsupported invoice features", resp.StatusCode, body)
	}
}
