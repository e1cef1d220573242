package lnurl_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/lnurl"
)

// getDoc GETs rawURL and decodes the JSON answer into a map.
func getDoc(t *testing.T, rawURL string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("GET %s: not JSON: %q", rawURL, body)
	}
	return resp.StatusCode, doc
}

// wantLNURLError checks an {"status":"ERROR"} answer with the HTTP status and
// a reason containing each of why.
func wantLNURLError(t *testing.T, code int, doc map[string]any, wantCode int, why ...string) {
	t.Helper()
	if doc["status"] != "ERROR" || code != wantCode {
		t.Fatalf("answer %d %v, want %d with status ERROR", code, doc, wantCode)
	}
	reason, _ := doc["reason"].(string)
	for _, w := range why {
		if !strings.Contains(reason, w) {
			t.Errorf("reason %q does not say %q", reason, w)
		}
	}
}

// serveOn starts an lnurl.Server for b on an httptest server and returns
// the server and its base URL.
func serveOn(t *testing.T, b *backend.Backend, mod func(*lnurl.ServerConfig)) (*lnurl.Server, string) {
	t.Helper()
	var s *lnurl.Server
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.ServeHTTP(w, r) }))
	t.Cleanup(hs.Close)
	cfg := lnurl.ServerConfig{
		Backend: b,
		Domain:  strings.TrimPrefix(hs.URL, "http://"),
		BaseURL: hs.URL,
		Min:     1000,
		Max:     100_000_000,
		Names:   []string{"alice", "bob"},
	}
	if mod != nil {
		mod(&cfg)
	}
	var err error
	if s, err = lnurl.NewServer(cfg); err != nil {
		t.Fatal(err)
	}
	return s, hs.URL
}

func TestServerPayParams(t *testing.T) {
	node := newMemoryNode(t)
	s, base := serveOn(t, node, nil)

	resp, err := http.Get(base + "/.well-known/lnurlp/alice")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin %q: web wallets on other origins could not read the answer", got)
	}

	code, doc := getDoc(t, base+"/.well-known/lnurlp/alice")
	if code != 200 || doc["tag"] != "payRequest" || doc["callback"] != base+"/lnurlp/alice/callback" ||
		doc["minSendable"] != float64(1000) || doc["maxSendable"] != float64(100_000_000) {
		t.Fatalf("pay parameters %d %v", code, doc)
	}
	md, _ := doc["metadata"].(string)
	var entries [][]string
	if err := json.Unmarshal([]byte(md), &entries); err != nil {
		t.Fatalf("metadata %q: %v", md, err)
	}
	want := [][]string{{"text/plain", "Payment to " + s.Address("alice")}, {"text/identifier", s.Address("alice")}}
	if fmt.Sprint(entries) != fmt.Sprint(want) {
		t.Errorf("metadata %v, want %v", entries, want)
	}

	code, doc = getDoc(t, base+"/.well-known/lnurlp/carol")
	wantLNURLError(t, code, doc, 404, `unknown name "carol"`)
	code, doc = getDoc(t, base+"/elsewhere")
	wantLNURLError(t, code, doc, 404, "no LNURL endpoint")
}

func TestServerCallback(t *testing.T) {
	node := newMemoryNode(t)
	_, base := serveOn(t, node, nil)
	_, params := getDoc(t, base+"/.well-known/lnurlp/bob")
	md := params["metadata"].(string)

	code, doc := getDoc(t, base+"/lnurlp/bob/callback?amount=21000")
	if code != 200 {
		t.Fatalf("callback: %d %v", code, doc)
	}
	pr, _ := doc["pr"].(string)
	d, err := backend.DecodeInvoice(pr)
	if err != nil {
		t.Fatal(err)
	}
	if d.Amount != 21000 || d.DescriptionHash == nil || *d.DescriptionHash != sha256.Sum256([]byte(md)) || d.Memo != "" {
		t.Errorf("invoice amount %s description hash %x memo %q; want 21 sat, sha256(metadata), no memo", d.Amount, d.DescriptionHash, d.Memo)
	}
	if routes, ok := doc["routes"].([]any); !ok || len(routes) != 0 {
		t.Errorf("routes %v, want []", doc["routes"])
	}
	verify, _ := doc["verify"].(string)
	if !strings.HasPrefix(verify, base+"/lnurlp/bob/verify/"+d.PaymentHash.String()+"?k=") {
		t.Errorf("verify URL %q", verify)
	}

	for _, c := range []struct {
		query string
		code  int
		why   string
	}{
		{"amount=999", 400, "outside 1000..100000000 msat"},
		{"amount=100000001", 400, "outside"},
		{"amount=12.5", 400, "not a whole number"},
		{"", 400, "not a whole number"},
	} {
		code, doc := getDoc(t, base+"/lnurlp/bob/callback?"+c.query)
		wantLNURLError(t, code, doc, c.code, c.why)
	}
	code, doc = getDoc(t, base+"/lnurlp/carol/callback?amount=21000")
	wantLNURLError(t, code, doc, 404, "unknown name")
}

// The verify endpoint tells the truth about its own invoices, keeps the
// preimage back until payment, and says nothing about invoices it did not
// hand out.
func TestServerVerify(t *testing.T) {
	node := newMemoryNode(t)
	_, base := serveOn(t, node, nil)
	_, doc := getDoc(t, base+"/lnurlp/alice/callback?amount=5000")
	pr, verify := doc["pr"].(string), doc["verify"].(string)

	code, v := getDoc(t, verify)
	if code != 200 || v["status"] != "OK" || v["settled"] != false || v["pr"] != pr {
		t.Fatalf("verify before payment: %d %v", code, v)
	}
	if p, present := v["preimage"]; !present || p != nil {
		t.Errorf("verify before payment gives preimage %v, want null: the node knows it, but it must not leave before payment", p)
	}

	pay, err := node.PayInvoice(ctx10(t), pr, backend.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, v = getDoc(t, verify)
	if v["settled"] != true || v["preimage"] != pay.Preimage.String() {
		t.Errorf("verify after payment: %v, want settled with preimage %s", v, pay.Preimage)
	}

	u, _ := url.Parse(verify)
	hash := u.Path[strings.LastIndex(u.Path, "/")+1:]
	k := u.Query().Get("k")
	// An invoice made on the node directly, not through the server: no
	// authenticator fits, so the endpoint cannot be used to read it.
	other, err := node.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: 5000, Memo: "not LNURL"})
	if err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"no key":              "/lnurlp/alice/verify/" + hash,
		"wrong key":           "/lnurlp/alice/verify/" + hash + "?k=" + otherFirstByte(k),
		"other invoice":       "/lnurlp/alice/verify/" + other.PaymentHash.String() + "?k=" + k,
		"unknown name":        "/lnurlp/carol/verify/" + hash + "?k=" + k,
		"key of another hash": "/lnurlp/alice/verify/" + other.PaymentHash.String() + "?k=" + k,
	} {
		code, v := getDoc(t, base+path)
		if code != 404 || v["status"] != "ERROR" || v["reason"] != "Not found" {
			t.Errorf("%s: %d %v, want 404 Not found", name, code, v)
		}
	}
	code, v = getDoc(t, base+"/lnurlp/alice/verify/nothex?k="+k)
	wantLNURLError(t, code, v, 400, "payment hash")
}

// The same verify URL keeps working across Server values that share a key,
// as after a restart with a configured VerifyKey.
func TestServerVerifyKey(t *testing.T) {
	node := newMemoryNode(t)
	key := []byte("0123456789abcdef0123456789abcdef")
	_, base1 := serveOn(t, node, func(c *lnurl.ServerConfig) { c.VerifyKey = key })
	_, base2 := serveOn(t, node, func(c *lnurl.ServerConfig) { c.VerifyKey = key })
	_, doc := getDoc(t, base1+"/lnurlp/alice/callback?amount=5000")
	verify := doc["verify"].(string)
	code, v := getDoc(t, base2+strings.TrimPrefix(verify, base1))
	if code != 200 || v["settled"] != false {
		t.Errorf("verify URL on a second server with the same key: %d %v", code, v)
	}
}

// noDescriptionHash is a backend whose node cannot commit to a description
// hash, as some nodes' APIs cannot.
type noDescriptionHash struct{ *memnode.Node }

func (n noDescriptionHash) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	if req.DescriptionHash != nil {
		return nil, fmt.Errorf("test node: %w: description hash", backend.ErrUnsupported)
	}
	return n.Node.CreateInvoice(ctx, req)
}

func TestServerBackendFailures(t *testing.T) {
	t.Run("NoDescriptionHash", func(t *testing.T) {
		_, base := serveOn(t, backend.New(noDescriptionHash{nodeOf(newMemoryNode(t))}, backend.Options{}), nil)
		code, doc := getDoc(t, base+"/lnurlp/alice/callback?amount=5000")
		wantLNURLError(t, code, doc, 500, "cannot make invoices that commit to a description hash, which LNURL-pay requires")
	})
	t.Run("NodeDown", func(t *testing.T) {
		node := newMemoryNode(t)
		s, base := serveOn(t, node, nil)
		c, err := lnurl.New(ctx10(t), lnurl.Config{Address: s.Address("alice")})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		inv, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: 5000})
		if err != nil {
			t.Fatal(err)
		}
		nodeOf(node).SetAvailable(false)
		code, doc := getDoc(t, base+"/lnurlp/alice/callback?amount=5000")
		wantLNURLError(t, code, doc, 503, "node unavailable")
		if strings.Contains(doc["reason"].(string), "memory:") {
			t.Errorf("reason %q passes the node's own message to the public", doc["reason"])
		}
		// Through the client, the node being down is ErrUnavailable, for
		// invoices and lookups alike.
		_, err = c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: 5000})
		wantRefused(t, err, backend.ErrUnavailable, "node unavailable")
		_, err = c.LookupInvoice(ctx10(t), inv.PaymentHash)
		wantRefused(t, err, backend.ErrUnavailable)
		nodeOf(node).SetAvailable(true)
		if _, err := c.LookupInvoice(ctx10(t), inv.PaymentHash); err != nil {
			t.Errorf("lookup once the node is back: %v", err)
		}
	})
}

func TestServerLookupFunc(t *testing.T) {
	node := newMemoryNode(t)
	s, base := serveOn(t, node, func(c *lnurl.ServerConfig) {
		c.Names = nil
		c.Lookup = func(_ context.Context, name string) (string, bool) {
			return "Tip jar of " + name, strings.HasPrefix(name, "tip")
		}
	})
	_, doc := getDoc(t, base+"/.well-known/lnurlp/tipjar")
	if !strings.Contains(doc["metadata"].(string), `"Tip jar of tipjar"`) {
		t.Errorf("metadata %v", doc["metadata"])
	}
	code, doc := getDoc(t, base+"/.well-known/lnurlp/alice")
	wantLNURLError(t, code, doc, 404, "unknown name")
	// Upper case is not a LUD-16 name, whatever Lookup would say.
	code, doc = getDoc(t, base+"/.well-known/lnurlp/TIPJAR")
	wantLNURLError(t, code, doc, 404, "unknown name")

	c, err := lnurl.New(ctx10(t), lnurl.Config{Address: s.Address("tipjar")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inv, err := c.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: 7000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.PayInvoice(ctx10(t), inv.PaymentRequest, backend.PayOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := c.WaitInvoice(ctx10(t), inv.PaymentHash)
	if err != nil || got.State != backend.StateSettled || got.Preimage == nil || !got.Preimage.Matches(inv.PaymentHash) {
		t.Fatalf("wait after payment: %+v %v", got, err)
	}
}

func TestNewServerRefuses(t *testing.T) {
	node := newMemoryNode(t)
	for name, cfg := range map[string]lnurl.ServerConfig{
		"no backend":  {Domain: "example.com", Names: []string{"a"}},
		"no domain":   {Backend: node, Names: []string{"a"}},
		"bad domain":  {Backend: node, Domain: "example.com/x", Names: []string{"a"}},
		"no names":    {Backend: node, Domain: "example.com"},
		"bad name":    {Backend: node, Domain: "example.com", Names: []string{"Alice"}},
		"bad range":   {Backend: node, Domain: "example.com", Names: []string{"a"}, Min: 5000, Max: 1000},
		"bad baseurl": {Backend: node, Domain: "example.com", Names: []string{"a"}, BaseURL: "ftp://example.com"},
	} {
		if _, err := lnurl.NewServer(cfg); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// The client opens through backend.Open with both URL forms.
func TestOpenURL(t *testing.T) {
	node := newMemoryNode(t)
	s, base := serveOn(t, node, nil)
	enc, err := lnurl.Encode(base + "/.well-known/lnurlp/alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"lnurl://" + s.Address("alice"), "lnurl:" + enc, "lnurl:" + strings.ToLower(enc), "lnurl:" + s.Address("bob")} {
		b, err := backend.Open(ctx10(t), u)
		if err != nil {
			t.Fatalf("Open(%s): %v", u, err)
		}
		inv, err := b.CreateInvoice(ctx10(t), backend.InvoiceRequest{Amount: 3000})
		if err != nil {
			t.Fatalf("%s: CreateInvoice: %v", u, err)
		}
		if got := backend.Abilities(b); fmt.Sprint(got) != "[ping]" {
			t.Errorf("%s: abilities %v, want [ping] (waits poll: LNURL-pay has no push)", u, got)
		}
		if d, err := backend.DecodeInvoice(inv.PaymentRequest); err != nil || d.Amount != 3000 {
			t.Errorf("%s: invoice %v %v", u, d, err)
		}
		b.Close()
	}
	for _, u := range []string{"lnurl://" + s.Address("alice") + "?color=red", "lnurl://:pw@example.com", "lnurl://" + s.Address("alice") + "/path", "lnurl://" + s.Address("alice") + "?tls=maybe", "lnurl://" + s.Address("alice") + "?allowhttp=true"} {
		if _, err := backend.Open(ctx10(t), u); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("Open(%s): %v, want ErrInvalid", u, err)
		}
	}
}

// otherFirstByte changes the first byte of a hex key (a fixed replacement
// would leave one key in 256 unchanged).
func otherFirstByte(k string) string {
	if strings.HasPrefix(k, "00") {
		return "ff" + k[2:]
	}
	return "00" + k[2:]
}
