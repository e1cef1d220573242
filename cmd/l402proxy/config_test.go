package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/proxy"
)

func TestLoadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l402proxy.yaml")
	os.WriteFile(path, []byte(`
listen: 127.0.0.1:9999
backend: memory://
routes:
  - name: api
    path: /v1/
    upstream: http://127.0.0.1:9000
    price_sat: 10
    price_msat: 500
    mode: optional
    single_use: true
    token_lifetime: 24h
    invoice_expiry: 600
    caveats: ["method=GET"]
`), 0o600)
	fc, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if fc.Listen != "127.0.0.1:9999" || len(fc.Routes) != 1 {
		t.Fatalf("%+v", fc)
	}
	r, err := fc.Routes[0].route()
	if err != nil {
		t.Fatal(err)
	}
	if r.Price != backend.MilliSat(10_500) || r.Mode != proxy.ModeOptional || !r.SingleUse ||
		r.TokenLifetime != 24*time.Hour || r.InvoiceExpiry != 10*time.Minute || r.Upstream.Host != "127.0.0.1:9000" ||
		len(r.Caveats) != 1 || r.Caveats[0].String() != "method=GET" {
		t.Fatalf("route %+v", r)
	}
}

func TestLoadConfigRejects(t *testing.T) {
	for name, body := range map[string]string{
		"unknown field": "routes:\n  - name: a\n    prise_sat: 1\n",
		"bad mode":      "routes:\n  - name: a\n    mode: sometimes\n",
		"bad upstream":  "routes:\n  - name: a\n    upstream: ftp://x\n",
		"bad caveat":    "routes:\n  - name: a\n    caveats: [\"nonsense\"]\n",
		"bad duration":  "routes:\n  - name: a\n    token_lifetime: soon\n",
	} {
		path := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(path, []byte(body), 0o600)
		fc, err := loadConfig(path)
		if err == nil {
			_, err = fc.Routes[0].route()
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseFlags(t *testing.T) {
	t.Setenv("L402_PRICE", "21")
	o, err := parseFlags([]string{"--listen", "127.0.0.1:1"})
	if err != nil || o.priceSat != 21 || o.listen != "127.0.0.1:1" || o.backendURL != "memory://" {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := parseFlags([]string{"--price", "0"}); err == nil {
		t.Fatal("zero price accepted")
	}
}

// TestConfigSchemes: the schemes a route offers, the default for all, the
// Payment secret, and the refusal to offer Payment on a shared state
// without a shared secret.
func TestConfigSchemes(t *testing.T) {
	fc, err := parseConfig([]byte(`
schemes: [L402, Payment]
payment_secret: env:TEST_L402_PAYMENT_SECRET
token_challenges: true
routes:
  - path: /charge/
    price_sat: 3
    schemes: [Payment]
`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := fc.Routes[0].route()
	if err != nil || len(r.Schemes) != 1 || r.Schemes[0] != proxy.SchemePayment || len(fc.Schemes) != 2 || !fc.TokenChallenges {
		t.Fatalf("%+v %+v %v", fc, r, err)
	}
	t.Setenv("TEST_L402_PAYMENT_SECRET", "0123456789abcdef0123456789abcdef")
	o := &options{schemes: fc.Schemes, paymentSecret: fc.PaymentSecret}
	if s, err := paymentSecret(o, "postgresql", []proxy.Route{r}); err != nil || string(s) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("secret %q %v", s, err)
	}
	t.Setenv("TEST_L402_PAYMENT_SECRET", "short")
	if _, err := paymentSecret(o, "postgresql", nil); err == nil {
		t.Fatal("a short secret was accepted")
	}
	if _, err := paymentSecret(&options{schemes: []string{"L402"}}, "postgresql", []proxy.Route{r}); err == nil {
		t.Fatal("a route offering Payment on a shared state without a secret was accepted")
	}
	if s, err := paymentSecret(&options{schemes: []string{"payment"}}, "/var/lib/l402kit/state.db", nil); err != nil || s != nil {
		t.Fatalf("one process: %q %v, want the proxy's random default", s, err)
	}
}
