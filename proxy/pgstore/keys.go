package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// The master secret the proxies derive root keys from is one row of a
// small table, made by whichever proxy asks first (INSERT ... ON CONFLICT
// DO NOTHING, then a read, so proxies starting together agree on one). Any
// role that can read it can mint tokens: grant the proxies' role alone
// access to the schema. The revocation list is a table of token ids.

func keysDDL(schema string) []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + schema + `.secrets (
			name  text PRIMARY KEY,
			value bytea NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS ` + schema + `.revoked (
			token_id bytea PRIMARY KEY,
			until    timestamptz)`,
	}
}

type keyQueries struct {
	putMaster, replaceMaster, getMaster, addRevoked, revoked, collectRevoked string
}

func makeKeyQueries(schema string) keyQueries {
	sec, rv := schema+".secrets", schema+".revoked"
	return keyQueries{
		putMaster: `INSERT INTO ` + sec + ` (name, value) VALUES ('master', $1) ON CONFLICT DO NOTHING`,
		replaceMaster: `INSERT INTO ` + sec + ` (name, value) VALUES ('master', $1)
			ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`,
		getMaster: `SELECT value FROM ` + sec + ` WHERE name = 'master'`,
		// NULL (for ever) wins; otherwise the later time.
		addRevoked: `INSERT INTO ` + rv + ` (token_id, until) SELECT unnest($1::bytea[]), $2
			ON CONFLICT (token_id) DO UPDATE SET until = CASE
				WHEN ` + rv + `.until IS NULL OR EXCLUDED.until IS NULL THEN NULL
				ELSE greatest(` + rv + `.until, EXCLUDED.until) END`,
		revoked:        `SELECT EXISTS (SELECT 1 FROM ` + rv + ` WHERE token_id = $1)`,
		collectRevoked: `DELETE FROM ` + rv + ` WHERE until < $1`,
	}
}

// MasterKey implements proxy.KeyStore.
func (s *Store) MasterKey(ctx context.Context) ([]byte, error) {
	k, err := proxy.NewMasterKey()
	if err != nil {
		return nil, err
	}
	// Two statements: the read must see a row another proxy committed
	// while this insert waited on it, which a read in the same statement
	// (same snapshot) would not.
	if _, err := s.pool.Exec(ctx, s.kq.putMaster, k); err != nil {
		return nil, wrap(err)
	}
	var got []byte
	if err := s.pool.QueryRow(ctx, s.kq.getMaster).Scan(&got); err != nil {
		return nil, wrap(err)
	}
	if len(got) != proxy.MasterKeySize {
		return nil, fmt.Errorf("pgstore: master secret is %d bytes, want %d", len(got), proxy.MasterKeySize)
	}
	return got, nil
}

// ReplaceMasterKey replaces the master secret the proxies sharing this
// schema derive root keys from: every token derived from the old one fails
// on every proxy that reads the new one. Running proxies keep the secret
// they read until they restart, so restart them all. It is the answer to a
// stolen secret.
func (s *Store) ReplaceMasterKey(ctx context.Context) error {
	k, err := proxy.NewMasterKey()
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, s.kq.replaceMaster, k)
	return wrap(err)
}

// AddRevoked implements proxy.KeyStore.
func (s *Store) AddRevoked(ctx context.Context, until time.Time, ids ...l402.TokenID) error {
	if len(ids) == 0 {
		return nil
	}
	bs := make([][]byte, len(ids))
	for i := range ids {
		bs[i] = ids[i][:]
	}
	_, err := s.pool.Exec(ctx, s.kq.addRevoked, bs, nullTime(until))
	return wrap(err)
}

// Revoked implements proxy.KeyStore.
func (s *Store) Revoked(ctx context.Context, id l402.TokenID) (bool, error) {
	var listed bool
	err := s.pool.QueryRow(ctx, s.kq.revoked, id[:]).Scan(&listed)
	return listed, wrap(err)
}

var _ proxy.KeyStore = (*Store)(nil)
