package lnd

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
)

func TestParseURL(t *testing.T) {
	good := []struct {
		raw  string
		want Config
	}{
		{"lnd://127.0.0.1:8080?macaroon=/x/admin.macaroon&tlscert=/x/tls.cert",
			Config{Address: "127.0.0.1:8080", Macaroon: "/x/admin.macaroon", TLSCert: "/x/tls.cert"}},
		{"lnd://node.example:8080?macaroon=env:LND_MAC",
			Config{Address: "node.example:8080", Macaroon: "env:LND_MAC"}},
		{"lnd://[::1]:8080?macaroon=0201036c6e64&timeout=3s&connect_timeout=500ms",
			Config{Address: "[::1]:8080", Macaroon: "0201036c6e64", CallTimeout: 3 * time.Second, DialTimeout: 500 * time.Millisecond}},
	}
	for _, g := range good {
		u, err := url.Parse(g.raw)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseURL(u)
		if err != nil {
			t.Fatalf("ParseURL(%s): %v", g.raw, err)
		}
		if got.Address != g.want.Address || got.Macaroon != g.want.Macaroon || got.TLSCert != g.want.TLSCert ||
			got.CallTimeout != g.want.CallTimeout || got.DialTimeout != g.want.DialTimeout {
			t.Fatalf("ParseURL(%s) = %+v, want %+v", g.raw, got, g.want)
		}
	}
	bad := []string{
		"lnd://127.0.0.1?macaroon=x",                  // no port
		"lnd://127.0.0.1:8080",                        // no macaroon
		"lnd://u:p@127.0.0.1:8080?macaroon=x",         // user info
		"lnd://127.0.0.1:8080/path?macaroon=x",        // path
		"lnd://127.0.0.1:8080?macaroon=x&bogus=1",     // unknown parameter
		"lnd://127.0.0.1:8080?macaroon=x&timeout=-1s", // bad duration
		"cln://127.0.0.1:8080?macaroon=x",             // wrong scheme
	}
	for _, raw := range bad {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseURL(u); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("ParseURL(%s) = %v, want ErrInvalid", raw, err)
		}
	}
}

func TestOpenRegistered(t *testing.T) {
	dir := t.TempDir()
	mac := filepath.Join(dir, "admin.macaroon")
	if err := os.WriteFile(mac, []byte{0x02, 0x01, 0x03, 'l', 'n', 'd'}, 0o600); err != nil {
		t.Fatal(err)
	}
	// Opening does not dial, so an address nobody listens on is fine here.
	b, err := backend.Open(context.Background(), "lnd://127.0.0.1:1?macaroon="+mac)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var d *driver
	if !b.As(&d) {
		t.Fatalf("Open returned no lnd driver")
	}
	if _, err := backend.Open(context.Background(), "lnd://127.0.0.1:1?macaroon="+filepath.Join(dir, "missing")); !errors.Is(err, backend.ErrInvalid) {
		t.Fatalf("missing macaroon file: %v, want ErrInvalid", err)
	}
}

func TestLoadSecretBytes(t *testing.T) {
	dir := t.TempDir()
	raw := []byte{0x02, 0x01, 0x03, 'l', 'n', 'd', 0x00, 0xff}
	bin := filepath.Join(dir, "bin.macaroon")
	hexFile := filepath.Join(dir, "hex.macaroon")
	const hexMac = "0201036c6e6400ff0201036c6e6400ff0201036c6e6400ff"
	if err := os.WriteFile(bin, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hexFile, []byte(hexMac+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("L402KIT_TEST_MAC", hexMac)
	t.Setenv("L402KIT_TEST_MAC_PATH", bin)
	cases := []struct {
		in   string
		want string
	}{
		{bin, string(raw)},
		{"file:" + bin, string(raw)},
		{hexFile, hexDecoded(t, hexMac)},
		{hexMac, hexDecoded(t, hexMac)},
		{"env:L402KIT_TEST_MAC", hexDecoded(t, hexMac)},
		{"env:L402KIT_TEST_MAC_PATH", string(raw)},
		{"-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----"},
	}
	for _, c := range cases {
		got, err := loadSecretBytes("macaroon", c.in)
		if err != nil {
			t.Fatalf("loadSecretBytes(%q): %v", c.in, err)
		}
		if string(got) != c.want {
			t.Fatalf("loadSecretBytes(%q) = %x, want %x", c.in, got, c.want)
		}
	}
	for _, in := range []string{"", "env:L402KIT_TEST_UNSET_VAR", filepath.Join(dir, "nope"), "cafe"} {
		_, err := loadSecretBytes("macaroon", in)
		if !errors.Is(err, backend.ErrInvalid) {
			t.Fatalf("loadSecretBytes(%q) = %v, want ErrInvalid", in, err)
		}
		if strings.Contains(err.Error(), hexMac) {
			t.Fatalf("error leaks the secret: %v", err)
		}
	}
}

func hexDecoded(t *testing.T, s string) string {
	t.Helper()
	b, ok := decodeHex(s)
	if !ok {
		t.Fatalf("not hex: %s", s)
	}
	return string(b)
}
