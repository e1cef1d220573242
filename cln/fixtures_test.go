package cln

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt11"
)

// fixture is one testdata file: a method's documented examples and errors,
// copied from Core Lightning's doc/schemas (see testdata/README.md).
type fixture struct {
	Source struct {
		Path    string `json:"path"`
		Commit  string `json:"commit"`
		Version string `json:"version"`
	} `json:"source"`
	Method   string   `json:"method"`
	Errors   []string `json:"errors"`
	Examples []struct {
		Request struct {
			ID     string          `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		} `json:"request"`
		Response json.RawMessage `json:"response"`
	} `json:"examples"`
}

func loadFixture(t *testing.T, method string) *fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", method+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	if f.Method != method || len(f.Source.Commit) != 40 || f.Source.Version == "" || len(f.Examples) == 0 {
		t.Fatalf("%s: fixture lacks its method, source commit, version or examples", method)
	}
	for _, ex := range f.Examples {
		if ex.Request.Method != method {
			t.Fatalf("%s: example %s is for method %s", method, ex.Request.ID, ex.Request.Method)
		}
	}
	return &f
}

// generic decodes JSON into maps, to compare typed decoding against.
func generic(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func num(t *testing.T, m map[string]any, k string) int64 {
	t.Helper()
	n, ok := m[k].(json.Number)
	if !ok {
		t.Fatalf("field %s is %T (%v), want a JSON number", k, m[k], m[k])
	}
	i, err := n.Int64()
	if err != nil {
		// created_at is documented as a number and written 1738000000.0
		f, ferr := n.Float64()
		if ferr != nil {
			t.Fatal(err)
		}
		return int64(f)
	}
	return i
}

func TestFixtureInvoice(t *testing.T) {
	f := loadFixture(t, "invoice")
	for _, ex := range f.Examples {
		t.Run(ex.Request.ID, func(t *testing.T) {
			var res invoiceResult
			if err := json.Unmarshal(ex.Response, &res); err != nil {
				t.Fatal(err)
			}
			g := generic(t, ex.Response)
			if res.PaymentHash != g["payment_hash"] || res.Bolt11 != g["bolt11"] || res.PaymentSecret != g["payment_secret"] {
				t.Errorf("decoded %+v, documented %v", res, g)
			}
			if res.ExpiresAt != num(t, g, "expires_at") || int64(res.CreatedIndex) != num(t, g, "created_index") {
				t.Errorf("expires_at/created_index decoded %d/%d, documented %v/%v", res.ExpiresAt, res.CreatedIndex, g["expires_at"], g["created_index"])
			}
			// The request's amount_msat is an integer in one example and
			// "50000msat" in the other: both must read the same way.
			var params struct {
				AmountMsat  Msat   `json:"amount_msat"`
				Description string `json:"description"`
			}
			if err := json.Unmarshal(ex.Request.Params, &params); err != nil {
				t.Fatal(err)
			}
			inv, err := fromCreated(&res, backend.InvoiceRequest{Amount: backend.MilliSat(params.AmountMsat), Memo: params.Description})
			if err != nil {
				t.Fatalf("fromCreated: %v", err)
			}
			d, err := backend.DecodeInvoice(res.Bolt11)
			if err != nil {
				t.Fatal(err)
			}
			if d.Amount != inv.Amount || inv.Memo != params.Description || d.Memo != params.Description {
				t.Errorf("invoice amount %s memo %q; BOLT11 says %s %q; request %d %q", inv.Amount, inv.Memo, d.Amount, d.Memo, params.AmountMsat, params.Description)
			}
			if inv.PaymentHash.String() != res.PaymentHash || inv.State != backend.StateOpen || inv.ExpiresAt.Unix() != res.ExpiresAt {
				t.Errorf("converted invoice %+v", inv)
			}
		})
	}
	wantDocumented(t, f, "900", "901")
}

// wantDocumented checks the error codes the adapter relies on are still the
// documented ones.
func wantDocumented(t *testing.T, f *fixture, codes ...string) {
	t.Helper()
	text := strings.Join(f.Errors, "\n")
	for _, c := range codes {
		if !strings.Contains(text, "- "+c+":") {
			t.Errorf("%s: error code %s is not documented in the fixture", f.Method, c)
		}
	}
}

// checkFields compares a decoded invoice entry and its conversion with the
// documented JSON.
func checkFields(t *testing.T, raw json.RawMessage) {
	t.Helper()
	var fl invoiceFields
	if err := json.Unmarshal(raw, &fl); err != nil {
		t.Fatal(err)
	}
	g := generic(t, raw)
	if fl.Label != g["label"] || fl.PaymentHash != g["payment_hash"] || fl.Status != g["status"] || fl.ExpiresAt != num(t, g, "expires_at") {
		t.Errorf("decoded %+v, documented %v", fl, g)
	}
	if _, ok := g["amount_msat"]; ok != (fl.AmountMsat != nil) || (ok && int64(*fl.AmountMsat) != num(t, g, "amount_msat")) {
		t.Errorf("amount_msat decoded %v, documented %v", fl.AmountMsat, g["amount_msat"])
	}
	inv, err := fromFields(&fl)
	if b12, bolt12 := g["bolt12"]; bolt12 {
		// Core Lightning's own examples of invoices made for offers: they
		// decode, signature included, and convert.
		if err != nil || inv.PaymentRequest != b12 || inv.PaymentHash.String() != g["payment_hash"] || inv.Memo != g["description"] {
			t.Errorf("BOLT12 invoice: %+v, %v", inv, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("fromFields: %v", err)
	}
	switch fl.Status {
	case "paid":
		if inv.State != backend.StateSettled || inv.Preimage == nil || inv.Preimage.String() != g["payment_preimage"] {
			t.Errorf("paid invoice converted to %s with preimage %v", inv.State, inv.Preimage)
		}
		if int64(inv.AmountReceived) != num(t, g, "amount_received_msat") || inv.SettledAt.Unix() != num(t, g, "paid_at") {
			t.Errorf("received %s at %s, documented %v at %v", inv.AmountReceived, inv.SettledAt, g["amount_received_msat"], g["paid_at"])
		}
	case "unpaid", "expired":
		if inv.State != backend.StateOpen || inv.Preimage != nil {
			t.Errorf("%s invoice converted to %s", fl.Status, inv.State)
		}
		if fl.Status == "expired" && !inv.Expired(time.Unix(fl.ExpiresAt, 0)) {
			t.Errorf("expired invoice does not read as expired")
		}
	}
	if inv.Memo != g["description"] {
		t.Errorf("memo %q, documented %v", inv.Memo, g["description"])
	}
	d, err := backend.DecodeInvoice(fl.Bolt11)
	if err != nil {
		t.Fatal(err)
	}
	if d.PaymentHash != inv.PaymentHash || !inv.CreatedAt.Equal(d.CreatedAt) {
		t.Errorf("BOLT11 hash %s created %s; converted %s %s", d.PaymentHash, d.CreatedAt, inv.PaymentHash, inv.CreatedAt)
	}
}

func TestFixtureListInvoices(t *testing.T) {
	f := loadFixture(t, "listinvoices")
	statuses := map[string]int{}
	for _, ex := range f.Examples {
		t.Run(ex.Request.ID, func(t *testing.T) {
			var res listInvoicesResult
			if err := json.Unmarshal(ex.Response, &res); err != nil {
				t.Fatal(err)
			}
			var raw struct {
				Invoices []json.RawMessage `json:"invoices"`
			}
			if err := json.Unmarshal(ex.Response, &raw); err != nil {
				t.Fatal(err)
			}
			if len(res.Invoices) != len(raw.Invoices) || len(raw.Invoices) == 0 {
				t.Fatalf("decoded %d invoices, documented %d", len(res.Invoices), len(raw.Invoices))
			}
			for _, r := range raw.Invoices {
				checkFields(t, r)
			}
			for _, inv := range res.Invoices {
				statuses[inv.Status]++
			}
		})
	}
	if statuses["paid"] == 0 || statuses["unpaid"] == 0 {
		t.Errorf("the examples should cover paid and unpaid invoices; got %v", statuses)
	}
}

func TestFixtureWaitInvoice(t *testing.T) {
	f := loadFixture(t, "waitinvoice")
	for _, ex := range f.Examples {
		t.Run(ex.Request.ID, func(t *testing.T) { checkFields(t, ex.Response) })
	}
	wantDocumented(t, f, "903")
}

func TestFixturePay(t *testing.T) {
	f := loadFixture(t, "pay")
	for _, ex := range f.Examples {
		t.Run(ex.Request.ID, func(t *testing.T) {
			var res payResult
			if err := json.Unmarshal(ex.Response, &res); err != nil {
				t.Fatal(err)
			}
			g := generic(t, ex.Response)
			if res.PaymentPreimage != g["payment_preimage"] || res.PaymentHash != g["payment_hash"] || res.Status != g["status"] || res.Destination != g["destination"] {
				t.Errorf("decoded %+v, documented %v", res, g)
			}
			if int64(res.AmountMsat) != num(t, g, "amount_msat") || int64(res.AmountSentMsat) != num(t, g, "amount_sent_msat") || int64(res.CreatedAt) != num(t, g, "created_at") {
				t.Errorf("amounts %d/%d at %v, documented %v/%v at %v", res.AmountMsat, res.AmountSentMsat, res.CreatedAt, g["amount_msat"], g["amount_sent_msat"], g["created_at"])
			}
			if res.AmountSentMsat < res.AmountMsat {
				t.Errorf("sent %d, less than the amount %d", res.AmountSentMsat, res.AmountMsat)
			}
		})
	}
	wantDocumented(t, f, "201", "203", "205", "206", "207", "210")
}

func TestFixtureGetinfo(t *testing.T) {
	f := loadFixture(t, "getinfo")
	for _, ex := range f.Examples {
		var res getinfoResult
		if err := json.Unmarshal(ex.Response, &res); err != nil {
			t.Fatal(err)
		}
		g := generic(t, ex.Response)
		if res.ID != g["id"] || res.Alias != g["alias"] || res.Network != g["network"] || int64(res.BlockHeight) != num(t, g, "blockheight") || res.Version != g["version"] {
			t.Errorf("decoded %+v, documented %v", res, g)
		}
		if _, err := bolt11.Prefix(portableNetwork(res.Network)); err != nil {
			t.Errorf("network %q: %v", res.Network, err)
		}
	}
}

func TestFixtureSigninvoice(t *testing.T) {
	f := loadFixture(t, "signinvoice")
	for _, ex := range f.Examples {
		t.Run(ex.Request.ID, func(t *testing.T) {
			var res holdInvoiceResult
			if err := json.Unmarshal(ex.Response, &res); err != nil {
				t.Fatal(err)
			}
			// The request is by name in one example and by position in the
			// other; either way it holds the invoice that was signed.
			var byName struct {
				Invstring string `json:"invstring"`
			}
			var byPos []string
			in := ""
			if json.Unmarshal(ex.Request.Params, &byName) == nil && byName.Invstring != "" {
				in = byName.Invstring
			} else if json.Unmarshal(ex.Request.Params, &byPos) == nil && len(byPos) == 1 {
				in = byPos[0]
			} else {
				t.Fatalf("cannot read params %s", ex.Request.Params)
			}
			before, err := backend.DecodeInvoice(in)
			if err != nil {
				t.Fatal(err)
			}
			after, err := backend.DecodeInvoice(res.Bolt11)
			if err != nil {
				t.Fatal(err)
			}
			if before.PaymentHash != after.PaymentHash || before.Amount != after.Amount || before.Memo != after.Memo || !before.ExpiresAt().Equal(after.ExpiresAt()) {
				t.Errorf("signing changed the invoice: %+v -> %+v", before, after)
			}
		})
	}
}

func TestFixtureHelp(t *testing.T) {
	f := loadFixture(t, "help")
	for _, ex := range f.Examples {
		var res helpResult
		if err := json.Unmarshal(ex.Response, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Help) == 0 || res.Help[0].Command == "" {
			t.Errorf("%s: decoded no command", ex.Request.ID)
		}
	}
}

func TestMsatDecoding(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Msat
		ok   bool
	}{
		{`1000`, 1000, true},
		{`"1000"`, 1000, true},
		{`"1000msat"`, 1000, true}, // before v23
		{`"21sat"`, 21000, true},
		{`"ten"`, 0, false},
		{`1.5`, 0, false},
	} {
		var m Msat
		err := json.Unmarshal([]byte(c.in), &m)
		if (err == nil) != c.ok || (c.ok && m != c.want) {
			t.Errorf("%s: got %d, %v; want %d, ok=%v", c.in, m, err, c.want, c.ok)
		}
	}
}

func TestFixtureCreateInvoice(t *testing.T) {
	f := loadFixture(t, "createinvoice")
	for _, ex := range f.Examples {
		t.Run(ex.Request.ID, func(t *testing.T) { checkFields(t, ex.Response) })
	}
	wantDocumented(t, f, "900")
}

func TestFixtureXpay(t *testing.T) {
	f := loadFixture(t, "xpay")
	for _, ex := range f.Examples {
		t.Run(ex.Request.ID, func(t *testing.T) {
			var res xpayResult
			if err := json.Unmarshal(ex.Response, &res); err != nil {
				t.Fatal(err)
			}
			g := generic(t, ex.Response)
			if res.PaymentPreimage != g["payment_preimage"] || int64(res.AmountMsat) != num(t, g, "amount_msat") ||
				int64(res.AmountSentMsat) != num(t, g, "amount_sent_msat") || int64(res.FailedParts) != num(t, g, "failed_parts") ||
				int64(res.SuccessfulParts) != num(t, g, "successful_parts") {
				t.Errorf("decoded %+v, documented %v", res, g)
			}
		})
	}
	wantDocumented(t, f, "-1", "203", "205", "207", "209", "219")
}

func TestFixtureListsendpays(t *testing.T) {
	f := loadFixture(t, "listsendpays")
	for _, ex := range f.Examples {
		t.Run(ex.Request.ID, func(t *testing.T) {
			// listpays reports a payment with the fields of its parts
			// that listsendpays documents (preimage under its own name).
			var res struct {
				Payments []struct {
					listPaysEntry
					PaymentPreimage string `json:"payment_preimage"`
				} `json:"payments"`
			}
			if err := json.Unmarshal(ex.Response, &res); err != nil {
				t.Fatal(err)
			}
			if len(res.Payments) == 0 {
				t.Fatal("no payments in the example")
			}
			for _, p := range res.Payments {
				complete := p.Status == "complete"
				if (complete && p.PaymentPreimage == "") || (!complete && p.Status != "failed" && p.Status != "pending") ||
					p.AmountSentMsat < p.AmountMsat || p.PaymentHash == "" {
					t.Errorf("decoded %+v", p)
				}
			}
		})
	}
}

func TestPayStatus(t *testing.T) {
	for _, c := range []struct {
		statuses []string
		want     string
	}{
		{nil, ""},
		{[]string{"failed"}, "failed"},
		{[]string{"failed", "pending"}, "pending"},
		{[]string{"pending", "failed"}, "pending"},
		{[]string{"failed", "complete", "pending"}, "complete"},
	} {
		var pays []listPaysEntry
		for _, s := range c.statuses {
			pays = append(pays, listPaysEntry{Status: s})
		}
		if got := payStatus(pays); got != c.want {
			t.Errorf("payStatus(%v) = %q, want %q", c.statuses, got, c.want)
		}
	}
}

func TestFixtureOffers(t *testing.T) {
	for _, m := range []string{"offer", "listoffers", "disableoffer"} {
		f := loadFixture(t, m)
		for _, ex := range f.Examples {
			var entries []offerEntry
			if m == "listoffers" {
				var res struct {
					Offers []offerEntry `json:"offers"`
				}
				if err := json.Unmarshal(ex.Response, &res); err != nil {
					t.Fatal(err)
				}
				entries = res.Offers
			} else {
				var e offerEntry
				if err := json.Unmarshal(ex.Response, &e); err != nil {
					t.Fatal(err)
				}
				entries = append(entries, e)
			}
			if len(entries) == 0 {
				t.Errorf("%s: no offers in %s", m, ex.Request.ID)
			}
			for _, e := range entries {
				if len(e.OfferID) != 64 || !strings.HasPrefix(e.Bolt12, "lno1") {
					t.Errorf("%s %s: decoded %+v", m, ex.Request.ID, e)
				}
			}
		}
	}
	wantDocumented(t, loadFixture(t, "offer"), "1000")
	f := loadFixture(t, "fetchinvoice")
	for _, ex := range f.Examples {
		var res struct {
			Invoice string `json:"invoice"`
		}
		if err := json.Unmarshal(ex.Response, &res); err != nil || !strings.HasPrefix(res.Invoice, "lni1") {
			t.Errorf("fetchinvoice %s: %v %q", ex.Request.ID, err, res.Invoice)
		}
	}
	wantDocumented(t, f, "1002", "1003", "1004", "1005")
}
