package boltstore_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
	"github.com/l402kit/l402kit/proxy/boltstore"
)

// populated makes a closed store at dir/state.db holding tokens and spends
// over many pages, and returns its path and one sold token's id.
func populated(t *testing.T, dir string) (string, l402.TokenID) {
	t.Helper()
	p := filepath.Join(dir, "state.db")
	s, err := boltstore.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var (
		id l402.TokenID
		wg sync.WaitGroup
		mu sync.Mutex
	)
	// Concurrent writes share commits: a populated store in a few fsyncs.
	for i := range 300 {
		wg.Go(func() {
			var c proxy.TokenRecord
			rand.Read(c.TokenID[:])
			rand.Read(c.PaymentHash[:])
			c.RootKey = bytes.Repeat([]byte{byte(i)}, 32)
			c.Route, c.Client = "paid", "192.0.2.1"
			c.InvoiceExpires = time.Now().Add(time.Hour)
			c.Paid = true
			if err := s.PutToken(ctx, c); err != nil {
				t.Error(err)
			}
			mu.Lock()
			id = c.TokenID
			mu.Unlock()
			var h [32]byte
			rand.Read(h[:])
			if _, err := s.Spend(ctx, h, time.Time{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return p, id
}

func mustRefuse(t *testing.T, p string, want error, o boltstore.Options) {
	t.Helper()
	s, err := boltstore.OpenOptions(p, o)
	if err == nil {
		s.Close()
		t.Fatalf("Open of %s succeeded, want %v", p, want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("Open: %v, want %v", err, want)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), p) {
		t.Fatalf("the error does not name the file: %v", err)
	}
	if _, cerr := boltstore.Check(p); !errors.Is(cerr, want) {
		t.Fatalf("Check: %v, want %v", cerr, want)
	}
}

func TestDamagedFilesRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, p string, b []byte)
		want   error
	}{
		{"truncated to half", func(t *testing.T, p string, b []byte) { write(t, p, b[:len(b)/2]) }, boltstore.ErrCorrupt},
		{"truncated to its meta pages", func(t *testing.T, p string, b []byte) { write(t, p, b[:2*4096]) }, boltstore.ErrCorrupt},
		{"truncated inside a meta page", func(t *testing.T, p string, b []byte) { write(t, p, b[:100]) }, boltstore.ErrCorrupt},
		{"zeroed", func(t *testing.T, p string, b []byte) { write(t, p, make([]byte, len(b))) }, boltstore.ErrCorrupt},
		{"random", func(t *testing.T, p string, b []byte) {
			r := make([]byte, len(b))
			rand.Read(r)
			write(t, p, r)
		}, boltstore.ErrCorrupt},
		{"data pages zeroed", func(t *testing.T, p string, b []byte) {
			c := bytes.Clone(b)
			clear(c[4*4096:])
			write(t, p, c)
		}, boltstore.ErrCorrupt},
		{"data pages random", func(t *testing.T, p string, b []byte) {
			c := bytes.Clone(b)
			rand.Read(c[2*4096:])
			write(t, p, c)
		}, boltstore.ErrCorrupt},
		{"a text file", func(t *testing.T, p string, _ []byte) {
			write(t, p, []byte("listen: 127.0.0.1:8402\nbackend: memory://\n"))
		}, boltstore.ErrCorrupt},
		{"an SQLite file", func(t *testing.T, p string, _ []byte) {
			write(t, p, append([]byte("SQLite format 3\x00"), make([]byte, 8192)...))
		}, boltstore.ErrCorrupt},
		{"another program's bbolt file", func(t *testing.T, p string, _ []byte) {
			os.Remove(p)
			db, err := bolt.Open(p, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("channels"))
				if err != nil {
					return err
				}
				return b.Put([]byte("k"), []byte("v"))
			}); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}, boltstore.ErrForeign},
		{"another store's file under this marker", func(t *testing.T, p string, _ []byte) {
			other, _ := populated(t, t.TempDir())
			b, err := os.ReadFile(other)
			if err != nil {
				t.Fatal(err)
			}
			write(t, p, b)
		}, boltstore.ErrForeign},
		{"emptied (0 bytes)", func(t *testing.T, p string, _ []byte) { write(t, p, nil) }, boltstore.ErrLost},
		{"deleted", func(t *testing.T, p string, _ []byte) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}, boltstore.ErrLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := populated(t, t.TempDir())
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, p, b)
			before, _ := os.ReadFile(p)
			mustRefuse(t, p, tc.want, boltstore.Options{})
			if tc.want != boltstore.ErrLost {
				// Saying "new store" never replaces a file with content.
				mustRefuse(t, p, tc.want, boltstore.Options{New: true})
			}
			after, _ := os.ReadFile(p)
			if !bytes.Equal(before, after) {
				t.Fatal("a refused open changed the file")
			}
		})
	}
}

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A lost store opens again only when the caller says it is a new one, and
// then the new store is the one the marker names.
func TestLostStoreNeedsNew(t *testing.T) {
	for _, emptied := range []bool{false, true} {
		p, id := populated(t, t.TempDir())
		if emptied {
			write(t, p, nil)
		} else if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		mustRefuse(t, p, boltstore.ErrLost, boltstore.Options{})
		s, err := boltstore.OpenOptions(p, boltstore.Options{New: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Token(t.Context(), id); !errors.Is(err, proxy.ErrNoRecord) {
			t.Fatalf("the new store has an old token: %v", err)
		}
		s.Close()
		s = open(t, p) // the marker now names the new store
		s.Close()
		r, err := boltstore.Check(p)
		if err != nil || r.Marker != "present" {
			t.Fatalf("check after the new store: %+v %v", r, err)
		}
	}
}

// A 0-byte file is refused without a marker too: bbolt never leaves one.
func TestEmptyFileWithoutMarker(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	write(t, p, nil)
	mustRefuse(t, p, boltstore.ErrLost, boltstore.Options{})
}

// A first start creates the store and its marker; a store made before
// markers gets one on its next open; Check reads a sound store.
func TestMarkerAndCheck(t *testing.T) {
	p, id := populated(t, t.TempDir())
	m, err := os.ReadFile(boltstore.MarkerPath(p))
	if err != nil || !bytes.Contains(m, []byte("\nid ")) {
		t.Fatalf("marker: %q %v", m, err)
	}
	r, err := boltstore.Check(p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Marker != "present" || r.Records["challenges"] != 300 || r.Records["spent"] != 300 || !bytes.Contains(m, []byte(r.ID)) {
		t.Fatalf("report: %+v", r)
	}
	// Without its marker (a store from an older release) it opens and is
	// marked again, with the same identity.
	if err := os.Remove(boltstore.MarkerPath(p)); err != nil {
		t.Fatal(err)
	}
	if r, err := boltstore.Check(p); err != nil || r.Marker != "absent" {
		t.Fatalf("check without the marker: %+v %v", r, err)
	}
	s := open(t, p)
	if _, err := s.Token(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	s.Close()
	m2, err := os.ReadFile(boltstore.MarkerPath(p))
	if err != nil || !bytes.Contains(m2, []byte(r.ID)) {
		t.Fatalf("marker rewritten: %q %v", m2, err)
	}
}

func TestCheckWhileInUse(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	open(t, p)
	if _, err := boltstore.Check(p); !errors.Is(err, boltstore.ErrInUse) {
		t.Fatalf("Check of a file in use: %v", err)
	}
}
