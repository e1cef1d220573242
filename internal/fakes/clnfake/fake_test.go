package clnfake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt11"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
)

func newFake(t *testing.T, plugin bool) *Fake {
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
	f, err := New(Config{Node: node, SocketPath: filepath.Join(dir, "lightning-rpc"), HoldPlugin: plugin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

type reply struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// rawCall writes one request on a fresh connection, as lightning-cli does,
// and reads the reply.
func rawCall(t *testing.T, f *Fake, method string, params any) reply {
	t.Helper()
	c, err := net.Dial("unix", f.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// No HTML escaping: lightningd refuses \u escapes in descriptions.
	var req bytes.Buffer
	enc := json.NewEncoder(&req)
	enc.SetEscapeHTML(false)
	enc.Encode(map[string]any{"jsonrpc": "2.0", "id": "test:" + method, "method": method, "params": params})
	if _, err := c.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	var r reply
	if err := json.NewDecoder(c).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.JSONRPC != "2.0" || string(r.ID) != `"test:`+method+`"` {
		t.Fatalf("reply envelope %+v", r)
	}
	return r
}

// exampleKeys reads the documented examples of a method and returns the key
// sets and JSON types of their responses (or, with list, of the entries of
// that list), keyed by the entry's status where there is one.
func exampleShapes(t *testing.T, method, list string) map[string]map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "cln", "testdata", method+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Examples []struct {
			Response json.RawMessage `json:"response"`
		} `json:"examples"`
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, ex := range fx.Examples {
		var objs []map[string]any
		if list == "" {
			var m map[string]any
			json.Unmarshal(ex.Response, &m)
			objs = append(objs, m)
		} else {
			var m map[string][]map[string]any
			json.Unmarshal(ex.Response, &m)
			objs = m[list]
		}
		for _, o := range objs {
			if _, bolt12 := o["bolt12"]; bolt12 && method == "listinvoices" {
				continue // invoices of offers have their own fields
			}
			status, _ := o["status"].(string)
			sh := shape(o)
			// amount_msat is absent for any-amount invoices: compare with
			// the fullest documented entry of each status.
			if len(sh) > len(out[status]) {
				out[status] = sh
			}
		}
	}
	return out
}

func shape(o map[string]any) map[string]string {
	sh := map[string]string{}
	for k, v := range o {
		sh[k] = fmt.Sprintf("%T", v)
	}
	return sh
}

func sameShape(t *testing.T, what string, got, want map[string]string, optional ...string) {
	t.Helper()
	opt := map[string]bool{}
	for _, k := range optional {
		opt[k] = true
	}
	var diffs []string
	for k, ty := range want {
		if g, ok := got[k]; !ok && !opt[k] {
			diffs = append(diffs, "missing "+k)
		} else if ok && g != ty {
			diffs = append(diffs, fmt.Sprintf("%s is %s, documented %s", k, g, ty))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && !opt[k] {
			diffs = append(diffs, "undocumented "+k)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("%s differs from the documented examples: %v", what, diffs)
	}
}

func TestShapesMatchDocumentedExamples(t *testing.T) {
	f := newFake(t, false)
	ctx := context.Background()

	r := rawCall(t, f, "invoice", map[string]any{"amount_msat": 10000, "label": "lbl_1", "description": "shape test"})
	if r.Error != nil {
		t.Fatalf("invoice: %+v", r.Error)
	}
	var created map[string]any
	json.Unmarshal(r.Result, &created)
	sameShape(t, "invoice", shape(created), exampleShapes(t, "invoice", "")[""])

	// Positional parameters, "msat" string amount, as the second example.
	r = rawCall(t, f, "invoice", []any{"50000msat", "lbl_2", "paid one"})
	if r.Error != nil {
		t.Fatalf("invoice by position: %+v", r.Error)
	}
	var second struct {
		Bolt11 string `json:"bolt11"`
	}
	json.Unmarshal(r.Result, &second)
	if _, err := f.Node().PayInvoice(ctx, second.Bolt11, backend.PayOptions{}); err != nil {
		t.Fatal(err)
	}

	r = rawCall(t, f, "listinvoices", map[string]any{})
	var list map[string][]map[string]any
	json.Unmarshal(r.Result, &list)
	docs := exampleShapes(t, "listinvoices", "invoices")
	if len(list["invoices"]) != 2 {
		t.Fatalf("listinvoices gave %d invoices, want 2", len(list["invoices"]))
	}
	for _, inv := range list["invoices"] {
		st := inv["status"].(string)
		sameShape(t, "listinvoices "+st, shape(inv), docs[st], "updated_index")
	}

	r = rawCall(t, f, "waitinvoice", map[string]any{"label": "lbl_2"})
	var waited map[string]any
	json.Unmarshal(r.Result, &waited)
	sameShape(t, "waitinvoice", shape(waited), exampleShapes(t, "waitinvoice", "")["paid"])

	r = rawCall(t, f, "getinfo", map[string]any{})
	var info map[string]any
	json.Unmarshal(r.Result, &info)
	sameShape(t, "getinfo", shape(info), exampleShapes(t, "getinfo", "")[""])

	r = rawCall(t, f, "invoice", map[string]any{"amount_msat": 20000, "label": "lbl_3", "description": "paid by pay"})
	var third struct {
		Bolt11 string `json:"bolt11"`
	}
	json.Unmarshal(r.Result, &third)
	r = rawCall(t, f, "pay", []any{third.Bolt11})
	if r.Error != nil {
		t.Fatalf("pay: %+v", r.Error)
	}
	var paid map[string]any
	json.Unmarshal(r.Result, &paid)
	sameShape(t, "pay", shape(paid), exampleShapes(t, "pay", "")["complete"])
}

func TestDocumentedErrors(t *testing.T) {
	f := newFake(t, false)
	if r := rawCall(t, f, "invoice", map[string]any{"amount_msat": 1000, "label": "dup", "description": "x"}); r.Error != nil {
		t.Fatal(r.Error)
	}
	pre, _ := backend.NewPreimage()
	for _, c := range []struct {
		name, method string
		params       any
		code         int
	}{
		{"duplicate label", "invoice", map[string]any{"amount_msat": 1000, "label": "dup", "description": "y"}, 900},
		{"unknown parameter", "invoice", map[string]any{"amount_msat": 1000, "label": "z", "description": "y", "colour": "red"}, -32602},
		{"missing parameter", "invoice", map[string]any{"amount_msat": 1000, "label": "z"}, -32602},
		{"unknown label", "waitinvoice", map[string]any{"label": "nope"}, -1},
		{"unknown command", "holdinvoice", map[string]any{}, -32601},
		{"help for a missing command", "help", map[string]any{"command": "settleholdinvoice"}, -32601},
		{"preimage reused", "invoice", map[string]any{"amount_msat": 1000, "label": "p2", "description": "y", "preimage": pre.String()}, 901},
	} {
		if c.code == 901 {
			rawCall(t, f, "invoice", map[string]any{"amount_msat": 1000, "label": "p1", "description": "y", "preimage": pre.String()})
		}
		r := rawCall(t, f, c.method, c.params)
		if r.Error == nil || r.Error.Code != c.code {
			t.Errorf("%s: got %+v / %s, want code %d", c.name, r.Error, r.Result, c.code)
		}
	}
}

func TestWaitinvoiceExpiresWith903(t *testing.T) {
	f := newFake(t, false)
	if r := rawCall(t, f, "invoice", map[string]any{"amount_msat": 1000, "label": "short", "description": "x", "expiry": 1}); r.Error != nil {
		t.Fatal(r.Error)
	}
	r := rawCall(t, f, "waitinvoice", map[string]any{"label": "short"})
	if r.Error == nil || r.Error.Code != 903 {
		t.Fatalf("waitinvoice on an expiring invoice: %+v", r.Error)
	}
	var data map[string]any
	if err := json.Unmarshal(r.Error.Data, &data); err != nil || data["status"] != "expired" || data["label"] != "short" {
		t.Fatalf("903 data %s, want the expired invoice", r.Error.Data)
	}
}

func TestRESTStatusCodes(t *testing.T) {
	f := newFake(t, true)
	post := func(method, rune string, body string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+f.RESTAddr()+"/v1/"+method, bytes.NewBufferString(body))
		if rune != "" {
			req.Header.Set("Rune", rune)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if st, m := post("getinfo", f.Rune(), `{}`); st != 201 || m["id"] != f.Node().NodeID() {
		t.Errorf("getinfo: %d %v", st, m)
	}
	if st, m := post("getinfo", "", `{}`); st != 403 || m["code"] != float64(1501) {
		t.Errorf("no rune: %d %v", st, m)
	}
	if st, m := post("getinfo", "wrong", `{}`); st != 401 {
		t.Errorf("wrong rune: %d %v", st, m)
	}
	if st, m := post("nosuchmethod", f.Rune(), `{}`); st != 404 || m["code"] != float64(-32601) {
		t.Errorf("unknown method: %d %v", st, m)
	}
	if st, m := post("waitinvoice", f.Rune(), `{"label":"nope"}`); st != 500 || m["code"] != float64(-1) {
		t.Errorf("RPC error: %d %v", st, m)
	}
	if st, m := post("help", f.Rune(), `{"command":"injectholdinvoice"}`); st != 201 {
		t.Errorf("help with the plugin: %d %v", st, m)
	}
}

func TestStopAndStart(t *testing.T) {
	f := newFake(t, false)
	addr := f.RESTAddr()
	if err := f.Stop(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("unix", f.SocketPath()); err == nil {
		c.Close()
		t.Fatal("socket still answers after Stop")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("REST port still answers after Stop")
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	if f.RESTAddr() != addr {
		t.Errorf("REST moved from %s to %s", addr, f.RESTAddr())
	}
	if r := rawCall(t, f, "getinfo", map[string]any{}); r.Error != nil {
		t.Fatalf("getinfo after Start: %+v", r.Error)
	}
}

// What lightningd refuses, the fake refuses with the same code and message
// (lightningd/invoice.c and common/json_param.c at the fixtures' commit).
func TestRefusesWhatLightningdRefuses(t *testing.T) {
	f := newFake(t, false)
	key, _ := btcec.NewPrivateKey()
	pre, _ := backend.NewPreimage()
	dh := sha256.Sum256([]byte("metadata"))
	encode := func(network string, hash backend.PaymentHash, dh *[32]byte, memo string) string {
		s, err := bolt11.EncodePayable(bolt11.Invoice{Network: network, PaymentHash: hash, Timestamp: time.Now(), Expiry: time.Hour, Amount: 1000, Description: memo, DescriptionHash: dh}, key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	other, _ := backend.NewPreimage()
	for _, c := range []struct {
		name, method string
		params       any
		message      string
	}{
		{"createinvoice with only a description hash", "createinvoice",
			map[string]any{"invstring": encode("regtest", pre.Hash(), &dh, ""), "label": "c1", "preimage": pre.String()},
			"Missing description in invoice"},
		{"createinvoice with another preimage", "createinvoice",
			map[string]any{"invstring": encode("regtest", pre.Hash(), nil, "x"), "label": "c2", "preimage": other.String()},
			"Incorrect preimage"},
		{"createinvoice for another network", "createinvoice",
			map[string]any{"invstring": encode("mainnet", pre.Hash(), nil, "x"), "label": "c3", "preimage": pre.String()},
			"Unparsable invoice"},
		{"a \\u escape in a description", "invoice",
			json.RawMessage(`{"amount_msat":1000,"label":"u1","description":"caf\u00e9"}`),
			"description: should be a string (without \\u)"},
		{"a description over 639 bytes", "invoice",
			map[string]any{"amount_msat": 1000, "label": "u2", "description": strings.Repeat("d", 640)},
			"Description greater than 639 bytes"},
		{"a label over 128 bytes", "invoice",
			map[string]any{"amount_msat": 1000, "label": strings.Repeat("l", 129), "description": "x"},
			"over 128 bytes"},
		{"deschashonly not a boolean", "invoice",
			map[string]any{"amount_msat": 1000, "label": "u3", "description": "x", "deschashonly": "yes"},
			"deschashonly"},
	} {
		r := rawCall(t, f, c.method, c.params)
		if r.Error == nil || r.Error.Code != -32602 || !strings.Contains(r.Error.Message, c.message) {
			t.Errorf("%s: got %+v / %s, want -32602 %q", c.name, r.Error, r.Result, c.message)
		}
	}

	// pay: lightningd drops a "lightning:" scheme but trims no whitespace.
	r := rawCall(t, f, "invoice", map[string]any{"amount_msat": 1000, "label": "p1", "description": "x"})
	var inv struct{ Bolt11 string }
	json.Unmarshal(r.Result, &inv)
	if r := rawCall(t, f, "pay", map[string]any{"bolt11": " " + inv.Bolt11}); r.Error == nil || r.Error.Code != -32602 {
		t.Errorf("pay with whitespace: %+v", r.Error)
	}
	if r := rawCall(t, f, "pay", map[string]any{"bolt11": "LIGHTNING:" + inv.Bolt11}); r.Error != nil {
		t.Errorf("pay with a LIGHTNING: scheme: %+v", r.Error)
	}

	// An escaped backslash before a u is no \u escape.
	if r := rawCall(t, f, "invoice", json.RawMessage(`{"amount_msat":1000,"label":"ok1","description":"C:\\users"}`)); r.Error != nil {
		t.Errorf("escaped backslash: %+v", r.Error)
	}
	// deschashonly: the invoice commits to the description's SHA-256, which
	// may be longer than 639 bytes; listinvoices shows the text.
	long := `[["text/plain","<tea> & cake"]]` + strings.Repeat(".", 700)
	r = rawCall(t, f, "invoice", map[string]any{"amount_msat": 1000, "label": "h1", "description": long, "deschashonly": true})
	if r.Error != nil {
		t.Fatalf("deschashonly: %+v", r.Error)
	}
	var created struct{ Bolt11 string }
	json.Unmarshal(r.Result, &created)
	d, err := backend.DecodeInvoice(created.Bolt11)
	if want := sha256.Sum256([]byte(long)); err != nil || d.DescriptionHash == nil || *d.DescriptionHash != want || d.Memo != "" {
		t.Fatalf("deschashonly invoice decodes to %+v, %v", d, err)
	}
	r = rawCall(t, f, "listinvoices", map[string]any{"label": "h1"})
	var listed struct {
		Invoices []struct{ Description string }
	}
	if json.Unmarshal(r.Result, &listed); len(listed.Invoices) != 1 || listed.Invoices[0].Description != long {
		t.Errorf("listinvoices: %s", r.Result)
	}
}
