package clnfake

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/internal/plumbing/memnode"
)

// newFakeAs starts a fake playing version.
func newFakeAs(t *testing.T, version string) *Fake {
	t.Helper()
	node, err := memnode.New(memnode.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	dir, err := os.MkdirTemp("", "clnfake")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f, err := New(Config{Node: node, SocketPath: filepath.Join(dir, "lightning-rpc"), Version: version})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func newInvoice(t *testing.T, f *Fake, label string, amount any, expiry int) string {
	t.Helper()
	params := map[string]any{"amount_msat": amount, "label": label, "description": "xpay test"}
	if expiry > 0 {
		params["expiry"] = expiry
	}
	r := rawCall(t, f, "invoice", params)
	if r.Error != nil {
		t.Fatalf("invoice: %+v", r.Error)
	}
	var inv struct {
		Bolt11 string `json:"bolt11"`
	}
	decodeInto(t, r.Result, &inv)
	return inv.Bolt11
}

func TestReleasesHaveTheirPayMethods(t *testing.T) {
	for _, c := range []struct {
		version   string
		xpay, pay bool
	}{
		{"v24.08.2", false, true},
		{"v24.11", true, true},
		{"v26.06.6", true, true},
		{"v27.03", true, false},
	} {
		f := newFakeAs(t, c.version)
		for m, want := range map[string]bool{"xpay": c.xpay, "pay": c.pay} {
			r := rawCall(t, f, m, map[string]any{})
			unknown := r.Error != nil && r.Error.Code == codeMethodNotFound
			if unknown == want {
				t.Errorf("%s: %s answered %+v, want it known: %v", c.version, m, r.Error, want)
			}
			if unknown && r.Error.Message != "Unknown command '"+m+"'" {
				t.Errorf("%s: %s refused with %q", c.version, m, r.Error.Message)
			}
			h := rawCall(t, f, "help", map[string]any{"command": m})
			if (h.Error == nil) != want {
				t.Errorf("%s: help %s: %+v", c.version, m, h.Error)
			}
		}
		var info struct {
			Version string `json:"version"`
		}
		decodeInto(t, rawCall(t, f, "getinfo", map[string]any{}).Result, &info)
		if info.Version != c.version {
			t.Errorf("getinfo version %q, playing %q", info.Version, c.version)
		}
	}
}

// TestXpayAsDocumented checks xpay's success fields against the documented
// examples and its refusals against xpay.c's codes: 219 for an invoice it
// paid (pay answers the earlier success instead), 207 expired, -32602 for
// the amount rules and for what is not a BOLT11 invoice.
func TestXpayAsDocumented(t *testing.T) {
	f := newFakeAs(t, "")
	bolt11 := newInvoice(t, f, "x1", 5000, 0)
	r := rawCall(t, f, "xpay", map[string]any{"invstring": bolt11, "maxfee": 1000, "retry_for": 30})
	if r.Error != nil {
		t.Fatalf("xpay: %+v", r.Error)
	}
	var res map[string]any
	decodeInto(t, r.Result, &res)
	sameShape(t, "xpay", shape(res), exampleShapes(t, "xpay", "")[""])

	r = rawCall(t, f, "xpay", []any{bolt11})
	if r.Error == nil || r.Error.Code != 219 || r.Error.Message != "Already paid this invoice successfully" {
		t.Errorf("xpay of a paid invoice: %+v %s", r.Error, r.Result)
	}
	r = rawCall(t, f, "pay", []any{bolt11})
	var again map[string]any
	decodeInto(t, r.Result, &again)
	if r.Error != nil || again["status"] != "complete" || again["payment_preimage"] != res["payment_preimage"] {
		t.Errorf("pay of a paid invoice: %+v %v, want the earlier success", r.Error, again)
	}

	r = rawCall(t, f, "listsendpays", map[string]any{"bolt11": bolt11})
	var sp map[string][]map[string]any
	decodeInto(t, r.Result, &sp)
	if len(sp["payments"]) != 1 {
		t.Fatalf("listsendpays: %s", r.Result)
	}
	sameShape(t, "listsendpays", shape(sp["payments"][0]), exampleShapes(t, "listsendpays", "payments")["complete"], "bolt11")
	r = rawCall(t, f, "listpays", map[string]any{"payment_hash": sp["payments"][0]["payment_hash"]})
	var lp map[string][]map[string]any
	decodeInto(t, r.Result, &lp)
	if len(lp["pays"]) != 1 || lp["pays"][0]["preimage"] != res["payment_preimage"] || lp["pays"][0]["status"] != "complete" {
		t.Errorf("listpays: %s", r.Result)
	}

	anyAmount := newInvoice(t, f, "x2", "any", 0)
	expired := newInvoice(t, f, "x3", 1000, 1)
	time.Sleep(2100 * time.Millisecond)
	for _, c := range []struct {
		name   string
		params any
		code   int
	}{
		{"any-amount without amount_msat", map[string]any{"invstring": anyAmount}, codeInvalidParams},
		{"amount_msat on an invoice with an amount", map[string]any{"invstring": newInvoice(t, f, "x4", 1000, 0), "amount_msat": 1000}, codeInvalidParams},
		{"expired", map[string]any{"invstring": expired}, codeInvoiceExpired},
		{"not an invoice", map[string]any{"invstring": "lnbc1garbage"}, codeInvalidParams},
		{"unknown parameter", map[string]any{"invstring": anyAmount, "amount_msat": 1, "riskfactor": 10}, codeInvalidParams},
		{"localinvreqid with a BOLT11", map[string]any{"invstring": anyAmount, "amount_msat": 1, "localinvreqid": "00"}, codeInvalidParams},
	} {
		r := rawCall(t, f, "xpay", c.params)
		if r.Error == nil || r.Error.Code != c.code {
			t.Errorf("%s: %+v %s, want code %d", c.name, r.Error, r.Result, c.code)
		}
	}
	if r := rawCall(t, f, "xpay", map[string]any{"invstring": anyAmount, "amount_msat": "777sat"}); r.Error != nil {
		t.Errorf("any-amount with amount_msat: %+v", r.Error)
	}
}

func decodeInto(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
}

// TestOffersAsDocumented checks the offer methods' answers against the
// documented examples and their refusals against lightningd's codes.
func TestOffersAsDocumented(t *testing.T) {
	f := newFakeAs(t, "")
	r := rawCall(t, f, "offer", map[string]any{"amount": "10000msat", "description": "Fish sale!"})
	if r.Error != nil {
		t.Fatalf("offer: %+v", r.Error)
	}
	var made map[string]any
	decodeInto(t, r.Result, &made)
	sameShape(t, "offer", shape(made), exampleShapes(t, "offer", "")[""], "force_paths")
	id := made["offer_id"].(string)

	r = rawCall(t, f, "listoffers", map[string]any{"active_only": true})
	var list map[string][]map[string]any
	decodeInto(t, r.Result, &list)
	if len(list["offers"]) != 1 {
		t.Fatalf("listoffers: %s", r.Result)
	}
	sameShape(t, "listoffers", shape(list["offers"][0]), exampleShapes(t, "listoffers", "offers")[""], "force_paths")

	r = rawCall(t, f, "fetchinvoice", map[string]any{"offer": made["bolt12"], "payer_note": "Thanks for the fish!"})
	var fetched map[string]any
	decodeInto(t, r.Result, &fetched)
	if r.Error != nil {
		t.Fatalf("fetchinvoice: %+v", r.Error)
	}
	sameShape(t, "fetchinvoice", shape(fetched), exampleShapes(t, "fetchinvoice", "")[""], "next_period")
	if r := rawCall(t, f, "xpay", map[string]any{"invstring": fetched["invoice"], "amount_msat": 10000}); r.Error == nil || r.Error.Code != codeInvalidParams {
		t.Errorf("xpay of a BOLT12 invoice with amount_msat: %+v", r.Error)
	}
	if r := rawCall(t, f, "xpay", map[string]any{"invstring": fetched["invoice"]}); r.Error != nil {
		t.Errorf("xpay of the fetched invoice: %+v", r.Error)
	}
	r = rawCall(t, f, "listinvoices", map[string]any{"offer_id": id})
	var invs map[string][]map[string]any
	decodeInto(t, r.Result, &invs)
	if len(invs["invoices"]) != 1 || invs["invoices"][0]["status"] != "paid" || invs["invoices"][0]["local_offer_id"] != id {
		t.Errorf("listinvoices by offer_id: %s", r.Result)
	}

	r = rawCall(t, f, "disableoffer", map[string]any{"offer_id": id})
	var disabled map[string]any
	decodeInto(t, r.Result, &disabled)
	if r.Error != nil || disabled["active"] != false {
		t.Fatalf("disableoffer: %+v %s", r.Error, r.Result)
	}
	sameShape(t, "disableoffer", shape(disabled), exampleShapes(t, "disableoffer", "")[""], "force_paths")
	for _, c := range []struct {
		name, method string
		params       any
		code         int
	}{
		{"disable again", "disableoffer", map[string]any{"offer_id": id}, codeOfferAlreadyDisabled},
		{"disable an unknown offer", "disableoffer", map[string]any{"offer_id": strings.Repeat("00", 32)}, codeLightningd},
		{"fetch from a disabled offer", "fetchinvoice", map[string]any{"offer": made["bolt12"]}, codeOfferBadInvreqReply},
		{"amount without description", "offer", map[string]any{"amount": 1000}, codeInvalidParams},
		{"any-amount offer without amount_msat", "fetchinvoice", map[string]any{"offer": offerString(t, f, "any")}, codeInvalidParams},
	} {
		r := rawCall(t, f, c.method, c.params)
		if r.Error == nil || r.Error.Code != c.code {
			t.Errorf("%s: %+v %s, want code %d", c.name, r.Error, r.Result, c.code)
		}
	}
	if r := rawCall(t, newFakeAs(t, "v24.08"), "offer", map[string]any{"amount": "any"}); r.Error == nil || r.Error.Code != codeMethodNotFound {
		t.Errorf("offer on v24.08 (experimental-offers off): %+v", r.Error)
	}
}

func offerString(t *testing.T, f *Fake, amount any) string {
	t.Helper()
	r := rawCall(t, f, "offer", map[string]any{"amount": amount, "description": "another"})
	if r.Error != nil {
		t.Fatal(r.Error)
	}
	var o map[string]any
	decodeInto(t, r.Result, &o)
	return o["bolt12"].(string)
}
