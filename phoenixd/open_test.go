package phoenixd_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/fakes/phoenixdfake"
	"github.com/l402kit/l402kit/phoenixd"
)

func TestOpenURL(t *testing.T) {
	h := newHarness(t, phoenixdfake.Config{}, phoenixd.Config{})
	host := strings.TrimPrefix(h.fake.URL(), "http://")
	pwFile := filepath.Join(t.TempDir(), "phoenixd-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("L402KIT_TEST_PHOENIXD_PASSWORD", password)
	ok := []string{
		"phoenixd://:" + url.PathEscape(password) + "@" + host,
		"phoenixd://:env:L402KIT_TEST_PHOENIXD_PASSWORD@" + host,
		"phoenixd://" + host + "?password=" + url.QueryEscape("file:"+pwFile),
		"phoenixd://" + host + "?password=env:L402KIT_TEST_PHOENIXD_PASSWORD&tls=0",
	}
	for _, raw := range ok {
		b, err := backend.Open(ctxT(t), raw)
		if err != nil {
			t.Errorf("Open(%s): %v", raw, err)
			continue
		}
		info, err := b.Info(ctxT(t))
		if err != nil || info.NodeID != h.node.NodeID() {
			t.Errorf("Open(%s) then Info: %+v %v", raw, info, err)
		}
		if b.Supports(backend.AbilityHold) {
			t.Errorf("Open(%s) gave a HoldInvoicer", raw)
		}
		b.Close()
	}
	bad := []string{
		"phoenixd://" + host,   // no password
		"phoenixd://:@" + host, // empty password
		"phoenixd://:env:L402KIT_TEST_UNSET_VARIABLE@" + host, // unset variable
		"phoenixd://:pw@" + host + "?tls=maybe",
		"phoenixd://:pw@" + host + "?tls=1&tlscert=" + url.QueryEscape(filepath.Join(t.TempDir(), "missing.pem")),
		"phoenixd:///no/host",
	}
	for _, raw := range bad {
		if b, err := backend.Open(ctxT(t), raw); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("Open(%s): %v, want ErrInvalid", raw, err)
			if b != nil {
				b.Close()
			}
		}
	}
	// A wrong password opens (Open does not call the node) and fails with
	// ErrInvalid on use.
	b, err := backend.Open(ctxT(t), "phoenixd://:wrong@"+host)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Info(ctxT(t)); !errors.Is(err, backend.ErrInvalid) {
		t.Errorf("Info with a wrong password from a URL: %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, cfg := range []phoenixd.Config{
		{URL: "127.0.0.1:9740", Password: "x"},
		{URL: "ftp://127.0.0.1:9740", Password: "x"},
		{URL: "http://127.0.0.1:9740"},
	} {
		if _, err := phoenixd.New(context.Background(), cfg); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("New(%+v): %v, want ErrInvalid", cfg, err)
		}
	}
}
