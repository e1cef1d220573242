package eclair

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/l402kit/l402kit/backend"
)

// The fake must answer with the documented shapes, or the adapter's tests
// against it prove nothing about a real Eclair. These tests fetch raw JSON
// from the fake and compare it, key by key and JSON type by JSON type, with
// the documented examples in testdata.

// omittable lists documented keys the fake may leave out, with why.
var omittable = map[string]string{
	"paymentMetadata": "memory-node invoices carry no payment metadata",
	"externalId":      "only present when the caller gave one",
	"onionAddress":    "absent when the node has no Tor address",
}

// documentedElsewhere lists keys the fake sends that one fixture lacks but
// another documented example of the same object has.
var documentedElsewhere = map[string]string{
	"minFinalCltvExpiry": "docs-createinvoice.json (the src-* mocks use a BOLT11 test vector without that tag)",
	"invoice":            "docs-getsentinfo.json (outgoing records carry the invoice when Eclair has it)",
}

// freeKeys are objects whose keys are data (feature names), not schema.
var freeKeys = map[string]bool{"activated": true}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// sameShape reports every difference between the documented value doc and
// the fake's value got.
func sameShape(path string, doc, got any) []string {
	if jsonType(doc) != jsonType(got) {
		return []string{fmt.Sprintf("%s: documented %s, fake sends %s", path, jsonType(doc), jsonType(got))}
	}
	var diffs []string
	switch d := doc.(type) {
	case map[string]any:
		g := got.(map[string]any)
		if freeKeys[path[strings.LastIndex(path, ".")+1:]] {
			return nil
		}
		keys := make([]string, 0, len(d)+len(g))
		for k := range d {
			keys = append(keys, k)
		}
		for k := range g {
			if _, ok := d[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			dv, inDoc := d[k]
			gv, inGot := g[k]
			switch {
			case !inDoc:
				if _, ok := documentedElsewhere[k]; ok {
					continue
				}
				diffs = append(diffs, fmt.Sprintf("%s.%s: the fake sends a key the docs do not have", path, k))
			case !inGot:
				if _, ok := omittable[k]; !ok {
					diffs = append(diffs, fmt.Sprintf("%s.%s: documented, missing from the fake", path, k))
				}
			default:
				diffs = append(diffs, sameShape(path+"."+k, dv, gv)...)
			}
		}
	case []any:
		// Arrays may mix variants (a payment-failed event lists remote
		// and local failures): each element the fake sends must match one
		// documented element.
		g := got.([]any)
		if len(d) == 0 {
			break
		}
		for i, gv := range g {
			var best []string
			for j, dv := range d {
				if diff := sameShape(fmt.Sprintf("%s[%d]", path, i), dv, gv); j == 0 || len(diff) < len(best) {
					best = diff
				}
			}
			diffs = append(diffs, best...)
		}
	}
	return diffs
}

func checkShape(t *testing.T, fixture string, got []byte) {
	t.Helper()
	var d, g any
	if err := json.Unmarshal(readFixture(t, fixture), &d); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("fake's answer is not JSON: %v\n%s", err, got)
	}
	for _, diff := range sameShape("$", d, g) {
		t.Errorf("against %s: %s", fixture, diff)
	}
}

func rawPost(t *testing.T, base, method string, form url.Values) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/"+method, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("", password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestFakeShapes(t *testing.T) {
	e := newEnv(t, time.Second)
	base := e.fake.URL()
	ctx := ctxT(t, 20*time.Second)

	status, body := rawPost(t, base, "getinfo", nil)
	if status != 200 {
		t.Fatalf("getinfo: %d %s", status, body)
	}
	checkShape(t, "docs-getinfo.json", body)

	status, body = rawPost(t, base, "createinvoice", url.Values{"description": {"Lightning is #reckless"}, "amountMsat": {"40000000"}, "expireIn": {"3600"}})
	if status != 200 {
		t.Fatalf("createinvoice: %d %s", status, body)
	}
	checkShape(t, "docs-createinvoice.json", body)
	var inv struct {
		PaymentHash string `json:"paymentHash"`
		Serialized  string `json:"serialized"`
	}
	if err := json.Unmarshal(body, &inv); err != nil {
		t.Fatal(err)
	}

	status, body = rawPost(t, base, "getinvoice", url.Values{"paymentHash": {inv.PaymentHash}})
	if status != 200 {
		t.Fatalf("getinvoice: %d %s", status, body)
	}
	checkShape(t, "docs-getinvoice.json", body)

	status, body = rawPost(t, base, "getreceivedinfo", url.Values{"paymentHash": {inv.PaymentHash}})
	if status != 200 {
		t.Fatalf("getreceivedinfo: %d %s", status, body)
	}
	checkShape(t, "src-received-pending.json", body)

	// Listen for the payment-received event while paying.
	hdr := http.Header{}
	hdr.Set("Authorization", "Basic OjIxc2F0b3NoaQ==") // ":21satoshi", as in Eclair's docs
	ws, _, err := websocket.Dial(ctx, base+"/ws", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	defer ws.CloseNow()
	// The socket is registered once the handshake is done; a tiny pause
	// lets the fake's handler add it before the event is broadcast.
	time.Sleep(50 * time.Millisecond)

	status, body = rawPost(t, base, "payinvoice", url.Values{"invoice": {inv.Serialized}, "blocking": {"false"}})
	if status != 200 {
		t.Fatalf("payinvoice: %d %s", status, body)
	}
	checkShape(t, "docs-payinvoice.json", body)
	var id string
	if err := json.Unmarshal(body, &id); err != nil {
		t.Fatal(err)
	}

	seen := map[string]bool{}
	for !seen["payment-received"] || !seen["payment-sent"] {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("websocket read: %v (seen %v)", err, seen)
		}
		var ev event
		if err := json.Unmarshal(msg, &ev); err != nil {
			t.Fatal(err)
		}
		switch ev.Type {
		case "payment-received":
			checkShape(t, "docs-ws-payment-received.json", msg)
		case "payment-sent":
			checkShape(t, "docs-ws-payment-sent.json", msg)
		}
		seen[ev.Type] = true
	}

	status, body = rawPost(t, base, "getreceivedinfo", url.Values{"paymentHash": {inv.PaymentHash}})
	if status != 200 {
		t.Fatalf("getreceivedinfo: %d %s", status, body)
	}
	checkShape(t, "docs-getreceivedinfo.json", body)

	status, body = rawPost(t, base, "getsentinfo", url.Values{"id": {id}})
	if status != 200 {
		t.Fatalf("getsentinfo: %d %s", status, body)
	}
	checkShape(t, "docs-getsentinfo.json", body)

	// A failed payment: an invoice of no node the fake can reach.
	other := newEnv(t, time.Second)
	foreign, err := backend.New(other.node, backend.Options{}).CreateInvoice(ctx, backend.InvoiceRequest{Amount: 1000, Memo: "elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	status, body = rawPost(t, base, "payinvoice", url.Values{"invoice": {foreign.PaymentRequest}, "blocking": {"true"}})
	if status != 200 {
		t.Fatalf("blocking payinvoice: %d %s", status, body)
	}
	checkShape(t, "docs-ws-payment-failed.json", body)
	status, body = rawPost(t, base, "getsentinfo", url.Values{"paymentHash": {foreign.PaymentHash.String()}})
	if status != 200 {
		t.Fatalf("getsentinfo: %d %s", status, body)
	}
	checkShape(t, "src-sent-failed.json", body)
}

// Error answers: status codes and texts from Eclair's directives, in the
// documented {"error": "..."} shape.
func TestFakeErrors(t *testing.T) {
	e := newEnv(t, time.Second)
	base := e.fake.URL()
	unknown := strings.Repeat("ab", 32)
	for _, c := range []struct {
		method string
		form   url.Values
		status int
		msg    string
	}{
		{"getreceivedinfo", url.Values{"paymentHash": {unknown}}, 404, "Not found"},
		{"getinvoice", url.Values{"paymentHash": {unknown}}, 404, "Not found"},
		{"getreceivedinfo", nil, 400, "Request is missing required form field 'paymentHash'"},
		{"getreceivedinfo", url.Values{"paymentHash": {"zz"}}, 400, ""},
		{"createinvoice", url.Values{"amountMsat": {"1000"}}, 500, "API call failed: check logs for more details"},
		{"payinvoice", nil, 400, "Request is missing required form field 'invoice'"},
		{"nosuchmethod", nil, 404, "The requested resource could not be found."},
	} {
		status, body := rawPost(t, base, c.method, c.form)
		var er struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(body, &er); err != nil {
			t.Errorf("%s: error body is not JSON: %s", c.method, body)
			continue
		}
		checkShape(t, "docs-error.json", body)
		if status != c.status || (c.msg != "" && er.Error != c.msg) || er.Error == "" {
			t.Errorf("%s %v: %d %q, want %d %q", c.method, c.form, status, er.Error, c.status, c.msg)
		}
	}

	// Authentication comes before routing, as in Eclair.
	for _, pw := range []string{"", "wrong"} {
		req, _ := http.NewRequest(http.MethodPost, base+"/nosuchmethod", nil)
		if pw != "" {
			req.SetBasicAuth("", pw)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("password %q: %d, WWW-Authenticate %q; want 401 with a Basic challenge", pw, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, base+"/ws", nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("websocket without credentials: %v, %v; want 401", err, resp)
	}
}
