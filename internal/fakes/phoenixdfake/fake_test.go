package phoenixdfake

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
)

// These tests speak to the fake with plain HTTP, as curl would, and compare
// its answers' shapes with phoenixd's documented examples in
// phoenixd/testdata.

const pw = "secret"

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	node, err := memnode.New(memnode.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	if cfg.Password == "" {
		cfg.Password = pw
	}
	s, err := New(node, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func do(t *testing.T, s *Server, method, path, password string, form url.Values) (int, string, []byte) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.URL()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if password != "" {
		req.SetBasicAuth("", password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func keys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func fixtureKeys(t *testing.T, name string) []string {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "phoenixd", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return keys(t, b)
}

func TestShapesMatchDocumentedExamples(t *testing.T) {
	s := start(t, Config{})
	status, ctype, b := do(t, s, http.MethodPost, "/createinvoice", pw, url.Values{"description": {"my first invoice"}, "amountSat": {"100"}, "externalId": {"foobar"}})
	if status != 200 || !strings.HasPrefix(ctype, "application/json") {
		t.Fatalf("createinvoice: %d %s %s", status, ctype, b)
	}
	if got, want := keys(t, b), fixtureKeys(t, "createinvoice.json"); !slices.Equal(got, want) {
		t.Errorf("createinvoice keys %v, documented %v", got, want)
	}
	var gen struct {
		AmountSat   int64  `json:"amountSat"`
		PaymentHash string `json:"paymentHash"`
		Serialized  string `json:"serialized"`
	}
	json.Unmarshal(b, &gen)
	if gen.AmountSat != 100 {
		t.Errorf("amountSat %d, want 100 (satoshis)", gen.AmountSat)
	}
	d, err := backend.DecodeInvoice(gen.Serialized)
	if err != nil || d.Amount != backend.Sat(100) || d.PaymentHash.String() != gen.PaymentHash || d.Expiry != time.Hour {
		t.Fatalf("serialized invoice: %+v %v", d, err)
	}

	// Unpaid: the documented unpaid record's keys (first of the list).
	status, _, b = do(t, s, http.MethodGet, "/payments/incoming/"+gen.PaymentHash, pw, nil)
	if status != 200 {
		t.Fatalf("incoming: %d %s", status, b)
	}
	listB, _ := os.ReadFile(filepath.Join("..", "..", "..", "phoenixd", "testdata", "payments-incoming-list.json"))
	var list []json.RawMessage
	json.Unmarshal(listB, &list)
	wantUnpaid := keys(t, list[0])
	wantUnpaid = append(wantUnpaid, "externalId") // we gave one; the documented one had none
	slices.Sort(wantUnpaid)
	if got := keys(t, b); !slices.Equal(got, wantUnpaid) {
		t.Errorf("unpaid incoming keys %v, documented %v", got, wantUnpaid)
	}

	// Pay it from the node, then the paid record has the paid example's keys.
	if _, err := s.Node().PayInvoice(context.Background(), gen.Serialized, backend.PayOptions{}); err != nil {
		t.Fatal(err)
	}
	_, _, b = do(t, s, http.MethodGet, "/payments/incoming/"+gen.PaymentHash, pw, nil)
	wantPaid := keys(t, list[1])
	wantPaid = append(wantPaid, "externalId")
	slices.Sort(wantPaid)
	if got := keys(t, b); !slices.Equal(got, wantPaid) {
		t.Errorf("paid incoming keys %v, documented %v", got, wantPaid)
	}
	var rec struct {
		IsPaid       bool   `json:"isPaid"`
		ReceivedSat  int64  `json:"receivedSat"`
		RequestedSat int64  `json:"requestedSat"`
		ExternalID   string `json:"externalId"`
		CreatedAt    int64  `json:"createdAt"`
	}
	json.Unmarshal(b, &rec)
	if !rec.IsPaid || rec.ReceivedSat != 100 || rec.RequestedSat != 100 || rec.ExternalID != "foobar" {
		t.Errorf("paid record %+v", rec)
	}
	if d := time.Since(time.UnixMilli(rec.CreatedAt)); d < 0 || d > time.Minute {
		t.Errorf("createdAt %d is not Unix milliseconds of just now", rec.CreatedAt)
	}

	// payinvoice: success and failure shapes.
	inv, _ := backend.New(s.Node(), backend.Options{}).CreateInvoice(context.Background(), backend.InvoiceRequest{Amount: backend.Sat(1), Memo: "x"})
	_, _, b = do(t, s, http.MethodPost, "/payinvoice", pw, url.Values{"invoice": {inv.PaymentRequest}})
	if got, want := keys(t, b), fixtureKeys(t, "payinvoice.json"); !slices.Equal(got, want) {
		t.Errorf("payinvoice keys %v, documented %v", got, want)
	}
	status, _, b = do(t, s, http.MethodPost, "/payinvoice", pw, url.Values{"invoice": {inv.PaymentRequest}})
	if status != 200 {
		t.Errorf("failed payment: HTTP %d, phoenixd answers 200", status)
	}
	if got, want := keys(t, b), fixtureKeys(t, "payinvoice-failed.json"); !slices.Equal(got, want) {
		t.Errorf("failed payinvoice keys %v, want %v", got, want)
	}

	_, _, b = do(t, s, http.MethodGet, "/getinfo", pw, nil)
	if got, want := keys(t, b), fixtureKeys(t, "getinfo-0.8.0.json"); !slices.Equal(got, want) {
		t.Errorf("getinfo keys %v, 0.8.0 has %v", got, want)
	}
}

func TestErrorShapes(t *testing.T) {
	s := start(t, Config{LimitedPassword: "limited"})
	hash := strings.Repeat("ab", 32)
	cases := []struct {
		method, path, password string
		form                   url.Values
		status                 int
		body                   string
	}{
		{"GET", "/getinfo", "wrong", nil, 401, "Invalid authentication (use basic auth with the http password set in phoenix.conf)"},
		{"GET", "/getinfo", "", nil, 401, "Invalid authentication (use basic auth with the http password set in phoenix.conf)"},
		{"POST", "/getinfo", pw, url.Values{}, 405, "Invalid http method (use the correct GET/POST)"},
		{"GET", "/nosuchroute", pw, nil, 404, "Unknown endpoint (check api doc)"},
		{"GET", "/payments/incoming/" + hash, pw, nil, 404, "Not found"},
		{"GET", "/payments/incoming/xyz", pw, nil, 400, "Request parameter paymentHash couldn't be parsed/converted to hex32"},
		{"POST", "/createinvoice", pw, url.Values{"amountSat": {"1"}}, 400, "Must provide either a description or descriptionHash"},
		{"POST", "/createinvoice", pw, url.Values{"description": {"a"}, "descriptionHash": {hash}}, 400, "Must provide either a description or descriptionHash"},
		{"POST", "/createinvoice", pw, url.Values{"description": {strings.Repeat("x", 129)}}, 400, "Request parameter description is too long (max 128 characters)"},
		{"POST", "/createinvoice", pw, url.Values{"description": {"a"}, "amountSat": {"1.5"}}, 400, "Request parameter amountSat couldn't be parsed/converted to integer"},
		{"POST", "/payinvoice", pw, url.Values{}, 400, "Request parameter invoice is missing"},
		{"POST", "/payinvoice", pw, url.Values{"invoice": {"lnbc1nonsense"}}, 400, "Request parameter invoice couldn't be parsed/converted to bolt11invoice"},
		{"POST", "/payinvoice", "limited", url.Values{"invoice": {"x"}}, 401, "Invalid authentication (use basic auth with the http password set in phoenix.conf)"},
		{"GET", "/getinfo", "limited", nil, 200, ""},
	}
	for _, c := range cases {
		status, ctype, b := do(t, s, c.method, c.path, c.password, c.form)
		if status != c.status || c.body != "" && (string(b) != c.body || !strings.HasPrefix(ctype, "text/plain")) {
			t.Errorf("%s %s: %d %s %q, want %d %q", c.method, c.path, status, ctype, b, c.status, c.body)
		}
	}
}

func TestWebsocketEventAndRestart(t *testing.T) {
	s := start(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func(opts *websocket.DialOptions) (*websocket.Conn, error) {
		c, _, err := websocket.Dial(ctx, "ws://"+s.Addr()+"/websocket", opts)
		return c, err
	}
	if c, err := dial(nil); err == nil {
		c.CloseNow()
		t.Fatal("websocket without a password was accepted")
	}
	// Browsers cannot send basic auth on websockets; phoenixd takes the
	// password as a subprotocol.
	c, err := dial(&websocket.DialOptions{Subprotocols: []string{pw}})
	if err != nil {
		t.Fatalf("websocket with the password as subprotocol: %v", err)
	}
	defer c.CloseNow()
	// Dial returns once the handshake is written, which can be before the
	// fake has registered the connection for events.
	for registered := false; !registered && ctx.Err() == nil; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		registered = len(s.conns) == 1
		s.mu.Unlock()
	}
	_, _, b := do(t, s, http.MethodPost, "/createinvoice", pw, url.Values{"description": {"ws"}, "amountSat": {"5"}, "externalId": {"order-1"}})
	var gen struct{ PaymentHash, Serialized string }
	json.Unmarshal(b, &gen)
	if _, err := s.Node().PayInvoice(ctx, gen.Serialized, backend.PayOptions{}); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(msg, &ev); err != nil {
		t.Fatal(err)
	}
	if ev["type"] != "payment_received" || ev["paymentHash"] != gen.PaymentHash || ev["amountSat"] != float64(5) || ev["externalId"] != "order-1" {
		t.Errorf("event %s", msg)
	}
	if _, ok := ev["timestamp"]; !ok {
		t.Errorf("event has no timestamp: %s", msg)
	}

	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err == nil {
		t.Error("websocket still open after Stop")
	}
	if _, err := http.Get(s.URL() + "/getinfo"); err == nil {
		t.Error("HTTP still answered after Stop")
	}
	addr := s.Addr()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr {
		t.Errorf("restarted on %s, was %s", s.Addr(), addr)
	}
	if status, _, _ := do(t, s, http.MethodGet, "/payments/incoming/"+gen.PaymentHash, pw, nil); status != 200 {
		t.Errorf("invoice gone after restart: %d", status)
	}
}

// What phoenixd refuses, the fake refuses: lightning-kmp's Bolt11Invoice.read
// takes the bare invoice only, and its Bolt11Invoice requires a positive
// amount (an IllegalArgumentException, which StatusPages answers with 500
// and the message).
func TestRefusesWhatPhoenixdRefuses(t *testing.T) {
	s := start(t, Config{})
	inv, err := s.b.CreateInvoice(t.Context(), backend.InvoiceRequest{Amount: backend.Sat(5), Memo: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path   string
		form   url.Values
		status int
		body   string
	}{
		{"/payinvoice", url.Values{"invoice": {"lightning:" + inv.PaymentRequest}}, 400, "Request parameter invoice couldn't be parsed/converted to bolt11invoice"},
		{"/payinvoice", url.Values{"invoice": {" " + inv.PaymentRequest}}, 400, "Request parameter invoice couldn't be parsed/converted to bolt11invoice"},
		{"/createinvoice", url.Values{"description": {"a"}, "amountSat": {"0"}}, 500, "amount is not valid"},
		{"/createinvoice", url.Values{"description": {"a"}, "amountSat": {"-1"}}, 500, "amount is not valid"},
	} {
		status, _, b := do(t, s, http.MethodPost, c.path, pw, c.form)
		if status != c.status || string(b) != c.body {
			t.Errorf("%s %v: %d %q, want %d %q", c.path, c.form, status, b, c.status, c.body)
		}
	}
	// Uppercase is bech32 too, and phoenixd reads it.
	status, _, b := do(t, s, http.MethodPost, "/payinvoice", pw, url.Values{"invoice": {strings.ToUpper(inv.PaymentRequest)}})
	if status != 200 || !strings.Contains(string(b), "paymentPreimage") {
		t.Errorf("upper-case invoice: %d %s", status, b)
	}
}
