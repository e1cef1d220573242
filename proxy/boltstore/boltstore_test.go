package boltstore_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/memory"
	"github.com/l402kit/l402kit/proxy"
	"github.com/l402kit/l402kit/proxy/boltstore"
	"github.com/l402kit/l402kit/proxy/statetest"
)

func open(t *testing.T, path string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	paths := map[proxy.Store]string{}
	statetest.Run(t, statetest.Harness{
		Open: func(t *testing.T) proxy.Store {
			p := filepath.Join(t.TempDir(), "state.db")
			s := open(t, p)
			paths[s] = p
			return s
		},
		Reopen: func(t *testing.T, s proxy.Store) proxy.Store {
			p := paths[s]
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			n := open(t, p)
			paths[n] = p
			return n
		},
		Node: func(t *testing.T) *backend.Backend {
			b, err := memory.New(t.Context(), memory.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b
		},
	})
}

func TestOneProcessPerFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	open(t, p)
	if s, err := boltstore.Open(p); err == nil {
		s.Close()
		t.Fatal("a second Open of one file succeeded")
	}
}

func TestBackup(t *testing.T) {
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "state.db"))
	ctx := t.Context()
	if ok, err := s.Spend(ctx, [32]byte{9}, time.Time{}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	var buf bytes.Buffer
	if _, err := s.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := open(t, copyPath)
	if ok, err := c.Spend(ctx, [32]byte{9}, time.Time{}); err != nil || ok {
		t.Fatalf("the backup lost a spent hash: spend gave %v %v", ok, err)
	}
}

// ReplaceMasterKey replaces the file's master secret, for good.
func TestReplaceMasterKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := context.Background()
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	k1, err := s.MasterKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceMasterKey(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = boltstore.Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k2, err := s.MasterKey(ctx)
	if err != nil || len(k2) != proxy.MasterKeySize || string(k1) == string(k2) {
		t.Fatalf("master secret after replacing and reopening: %x (%v), was %x", k2, err, k1)
	}
}
