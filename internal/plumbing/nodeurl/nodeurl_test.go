package nodeurl_test

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
	_ "github.com/l402kit/l402kit/cln"
	_ "github.com/l402kit/l402kit/eclair"
	"github.com/l402kit/l402kit/internal/plumbing/nodeurl"
	_ "github.com/l402kit/l402kit/lnd"
	_ "github.com/l402kit/l402kit/lnurl"
	_ "github.com/l402kit/l402kit/memory"
	_ "github.com/l402kit/l402kit/phoenixd"
)

func TestQuery(t *testing.T) {
	t.Setenv("L402KIT_TEST_NODEURL_PW", "s3cret")
	u, _ := url.Parse("x://:env:L402KIT_TEST_NODEURL_PW@host:1?tls=1&insecure=1&timeout=5s&flag=0")
	q := nodeurl.New("x", u)
	if pw, err := q.Password(); err != nil || pw != "s3cret" {
		t.Fatalf("Password from user-info env: %q %v", pw, err)
	}
	on, conf, err := q.TLS(false)
	if err != nil || !on || !conf.InsecureSkipVerify {
		t.Fatalf("TLS: %v %+v %v", on, conf, err)
	}
	if d, err := q.Duration("timeout"); err != nil || d != 5*time.Second {
		t.Fatalf("Duration: %s %v", d, err)
	}
	if err := q.Done(); err == nil || !errors.Is(err, backend.ErrInvalid) || !strings.Contains(err.Error(), `"flag"`) {
		t.Fatalf("Done with an unread key: %v, want ErrInvalid naming it", err)
	}
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u, _ = url.Parse("x://host:1?password=file:" + url.QueryEscape(file) + "&tls=0&tlscert=/x")
	q = nodeurl.New("x", u)
	if pw, err := q.Password(); err != nil || pw != "from-file" {
		t.Fatalf("Password from file: %q %v", pw, err)
	}
	if _, _, err := q.TLS(true); !errors.Is(err, backend.ErrInvalid) {
		t.Fatalf("tlscert with tls=0: %v, want ErrInvalid", err)
	}
}

// Every scheme speaks the one vocabulary: an unknown parameter is refused
// with its name, and the spellings of earlier versions with the key that
// replaced them. Opening fails on the parameters, before any node is
// contacted.
func TestEverySchemeRefusesUnknownParameters(t *testing.T) {
	dir := t.TempDir()
	mac := filepath.Join(dir, "admin.macaroon")
	if err := os.WriteFile(mac, []byte{2, 1, 3}, 0o600); err != nil {
		t.Fatal(err)
	}
	bases := map[string]string{
		"memory":     "memory://",
		"memory+dev": "memory+dev://127.0.0.1:1?",
		"lnd":        "lnd://127.0.0.1:1?macaroon=" + url.QueryEscape(mac) + "&",
		"cln":        "cln:///tmp/no-such-lightning-rpc",
		"clnrest":    "clnrest://127.0.0.1:1?rune=x&",
		"eclair":     "eclair://:pw@127.0.0.1:1?",
		"phoenixd":   "phoenixd://:pw@127.0.0.1:1?",
		"lnurl":      "lnurl://alice@127.0.0.1:1?",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for scheme, base := range bases {
		join := func(kv string) string {
			if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
				return base + kv
			}
			return base + "?" + kv
		}
		_, err := backend.Open(ctx, join("colour=red"))
		if !errors.Is(err, backend.ErrInvalid) || !strings.Contains(err.Error(), "colour") {
			t.Errorf("%s: unknown parameter: %v, want ErrInvalid naming it", scheme, err)
		}
		for _, old := range []string{"plainhttp=1", "allowhttp=true"} {
			_, err := backend.Open(ctx, join(old))
			if !errors.Is(err, backend.ErrInvalid) || !strings.Contains(err.Error(), "tls=0") {
				t.Errorf("%s: %s: %v, want ErrInvalid naming tls=0", scheme, old, err)
			}
		}
	}
}
