package pgstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/testenv/pgtest"
	"github.com/l402kit/l402kit/memory"
	"github.com/l402kit/l402kit/proxy"
	"github.com/l402kit/l402kit/proxy/pgstore"
	"github.com/l402kit/l402kit/proxy/statetest"
)

func TestContract(t *testing.T) {
	dsn := pgtest.DSN(t)
	schemas := map[proxy.Store]string{}
	open := func(t *testing.T, schema string) proxy.Store {
		s, err := pgstore.Open(context.Background(), pgstore.Config{DSN: dsn, Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		schemas[s] = schema
		return s
	}
	statetest.Run(t, statetest.Harness{
		Open: func(t *testing.T) proxy.Store { return open(t, pgtest.Schema(t, dsn)) },
		Reopen: func(t *testing.T, s proxy.Store) proxy.Store {
			s.Close()
			return open(t, schemas[s])
		},
		Second: func(t *testing.T, s proxy.Store) proxy.Store { return open(t, schemas[s]) },
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

func TestBadConfig(t *testing.T) {
	if _, err := pgstore.Open(context.Background(), pgstore.Config{DSN: "postgres://x@127.0.0.1:1/db", Schema: "Robert'); DROP"}); err == nil {
		t.Fatal("a schema name that is not an identifier was accepted")
	}
	if _, err := pgstore.Open(context.Background(), pgstore.Config{DSN: "postgres://u:secretpw@[::1"}); err == nil || strings.Contains(err.Error(), "secretpw") {
		t.Fatalf("unparsable DSN: %v (must fail without quoting the password)", err)
	}
}

// ReplaceMasterKey gives every handle on the schema a new master secret
// (a handle that already read the old one keeps it until it reopens).
func TestReplaceMasterKey(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	open := func() *pgstore.Store {
		s, err := pgstore.Open(context.Background(), pgstore.Config{DSN: dsn, Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	ctx := context.Background()
	a := open()
	k1, err := a.MasterKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := open().ReplaceMasterKey(ctx); err != nil {
		t.Fatal(err)
	}
	k2, err := open().MasterKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(k2) != proxy.MasterKeySize || string(k1) == string(k2) {
		t.Fatal("master secret not replaced")
	}
	if again, err := a.MasterKey(ctx); err != nil || string(again) != string(k2) {
		t.Fatalf("another handle reads %x (%v), want the new secret", again, err)
	}
}
