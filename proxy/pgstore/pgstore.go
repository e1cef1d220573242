// Package pgstore is the proxy.Store for several proxies sharing state: a
// PostgreSQL database, through pgx. Every proxy pointed at one database (and
// schema) accepts the tokens any of them sold, and a single-use token is
// served once between them: spends and claims are single statements that
// PostgreSQL makes atomic (INSERT ... ON CONFLICT DO NOTHING on the payment
// hash, UPDATE ... WHERE unclaimed).
//
// The proxies read root keys through their own in-process cache, so a token
// they have seen costs the database nothing; a revocation reaches the other
// proxies when their cached entry ages out (proxy.Config.KeyCacheTTL).
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// DefaultSchema is the PostgreSQL schema the store's tables live in unless
// Config.Schema says otherwise.
const DefaultSchema = "l402kit"

// DefaultMaxConns is the connection pool size of a store whose DSN does not
// set pool_max_conns.
const DefaultMaxConns = 16

// Config says where the store is.
type Config struct {
	// DSN is a PostgreSQL connection string (postgres://user:pass@host/db
	// or key=value form), with pgx's pool parameters (pool_max_conns, ...)
	// if wanted.
	DSN string
	// Schema holds the store's tables, created when missing; default
	// DefaultSchema. Proxies that share state use the same one.
	Schema string
}

// Store is a proxy.Store in PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
	q    queries
	lq   ledgerQueries
	kq   keyQueries
}

type queries struct {
	putChallenge, getChallenge, markPaid, revoke, expiredUnpaid string
	spend, unspend                                              string
	putHold, holdExists, claimHold, releaseHold, deleteHold     string
	staleHolds, countHolds, collectPaid, collectSpent           string
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open connects and creates the schema and tables when they are missing.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Schema == "" {
		cfg.Schema = DefaultSchema
	}
	if !schemaName.MatchString(cfg.Schema) {
		return nil, fmt.Errorf("pgstore: schema %q: want lower-case letters, digits and _", cfg.Schema)
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// pgx's message can quote the DSN, password included.
		return nil, errors.New("pgstore: cannot parse the PostgreSQL connection string")
	}
	if !strings.Contains(cfg.DSN, "pool_max_conns") {
		// pgx's default (4, or the CPU count) queues a proxy's concurrent
		// spends and challenges behind each other; pool_max_conns in the
		// DSN overrides this.
		pc.MaxConns = DefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s := &Store{pool: pool, q: makeQueries(cfg.Schema), lq: makeLedgerQueries(cfg.Schema), kq: makeKeyQueries(cfg.Schema)}
	if err := s.migrate(ctx, cfg.Schema); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context, schema string) error {
	ddl := []string{
		`CREATE SCHEMA IF NOT EXISTS ` + schema,
		`CREATE TABLE IF NOT EXISTS ` + schema + `.challenges (
			token_id        bytea PRIMARY KEY,
			root_key        bytea NOT NULL,
			payment_hash    bytea NOT NULL,
			route           text NOT NULL,
			client          text NOT NULL,
			invoice_expires timestamptz NOT NULL,
			token_expires   timestamptz,
			paid            boolean NOT NULL DEFAULT false)`,
		`CREATE INDEX IF NOT EXISTS challenges_unpaid ON ` + schema + `.challenges (invoice_expires) WHERE NOT paid`,
		`CREATE INDEX IF NOT EXISTS challenges_paid_until ON ` + schema + `.challenges (token_expires) WHERE paid AND token_expires IS NOT NULL`,
		`CREATE TABLE IF NOT EXISTS ` + schema + `.spent (
			payment_hash bytea PRIMARY KEY,
			until        timestamptz)`,
		`CREATE TABLE IF NOT EXISTS ` + schema + `.holds (
			payment_hash bytea PRIMARY KEY,
			preimage     bytea NOT NULL,
			route        text NOT NULL,
			client       text NOT NULL,
			expires      timestamptz NOT NULL,
			claimed_by   text NOT NULL DEFAULT '',
			claimed_at   timestamptz)`,
	}
	ddl = append(ddl, ledgerDDL(schema)...)
	ddl = append(ddl, keysDDL(schema)...)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	defer tx.Rollback(ctx)
	// Proxies starting together must not race each other's CREATEs.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(4020402)`); err != nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	for _, q := range ddl {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("pgstore: create tables: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	return nil
}

func makeQueries(schema string) queries {
	c, sp, h := schema+".challenges", schema+".spent", schema+".holds"
	return queries{
		putChallenge: `INSERT INTO ` + c + ` (token_id, root_key, payment_hash, route, client, invoice_expires, token_expires, paid)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		getChallenge: `SELECT token_id, root_key, payment_hash, route, client, invoice_expires, token_expires, paid FROM ` + c + ` WHERE token_id = $1`,
		markPaid:     `UPDATE ` + c + ` SET paid = true WHERE token_id = $1`,
		revoke:       `DELETE FROM ` + c + ` WHERE token_id = ANY($1)`,
		expiredUnpaid: `SELECT token_id, root_key, payment_hash, route, client, invoice_expires, token_expires, paid FROM ` + c +
			` WHERE NOT paid AND invoice_expires < $1 ORDER BY invoice_expires LIMIT $2`,
		spend:   `INSERT INTO ` + sp + ` (payment_hash, until) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		unspend: `DELETE FROM ` + sp + ` WHERE payment_hash = $1`,
		// The bound is checked in the same statement; proxies inserting
		// at the same moment may pass it by a few.
		putHold: `INSERT INTO ` + h + ` (payment_hash, preimage, route, client, expires)
			SELECT $1, $2, $3, $4, $5 WHERE (SELECT count(*) FROM ` + h + `) < $6 ON CONFLICT DO NOTHING`,
		holdExists: `SELECT true FROM ` + h + ` WHERE payment_hash = $1`,
		claimHold: `UPDATE ` + h + ` SET claimed_by = $2, claimed_at = $3 WHERE payment_hash = $1 AND claimed_by = ''
			RETURNING preimage, route, client, expires, claimed_by, claimed_at`,
		releaseHold: `UPDATE ` + h + ` SET claimed_by = '', claimed_at = NULL WHERE payment_hash = $1`,
		deleteHold:  `DELETE FROM ` + h + ` WHERE payment_hash = $1`,
		staleHolds: `SELECT preimage, route, client, expires, claimed_by, claimed_at FROM ` + h + `
			WHERE (claimed_by = '' AND expires < $1) OR (claimed_by <> '' AND (claimed_by = $2 OR claimed_at < $3)) LIMIT $4`,
		countHolds:   `SELECT count(*) FROM ` + h,
		collectPaid:  `DELETE FROM ` + c + ` WHERE paid AND token_expires < $1`,
		collectSpent: `DELETE FROM ` + sp + ` WHERE until < $1`,
	}
}

// Close implements proxy.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("pgstore: %w", err)
}

// PutToken implements proxy.Store.
func (s *Store) PutToken(ctx context.Context, c proxy.TokenRecord) error {
	tag, err := s.pool.Exec(ctx, s.q.putChallenge, c.TokenID[:], c.RootKey, c.PaymentHash[:], c.Route, c.Client,
		c.InvoiceExpires, nullTime(c.TokenExpires), c.Paid)
	if err != nil {
		return wrap(err)
	}
	if tag.RowsAffected() == 0 {
		return proxy.ErrRecordExists
	}
	return nil
}

func scanChallenge(row pgx.Row) (proxy.TokenRecord, error) {
	var (
		c        proxy.TokenRecord
		id, hash []byte
		invExp   time.Time
		tokExp   *time.Time
	)
	if err := row.Scan(&id, &c.RootKey, &hash, &c.Route, &c.Client, &invExp, &tokExp, &c.Paid); err != nil {
		return c, err
	}
	copy(c.TokenID[:], id)
	copy(c.PaymentHash[:], hash)
	c.InvoiceExpires, c.TokenExpires = invExp, fromNull(tokExp)
	return c, nil
}

// Token implements proxy.Store.
func (s *Store) Token(ctx context.Context, id l402.TokenID) (proxy.TokenRecord, error) {
	c, err := scanChallenge(s.pool.QueryRow(ctx, s.q.getChallenge, id[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, proxy.ErrNoRecord
	}
	return c, wrap(err)
}

// MarkPaid implements proxy.Store.
func (s *Store) MarkPaid(ctx context.Context, id l402.TokenID) error {
	tag, err := s.pool.Exec(ctx, s.q.markPaid, id[:])
	if err != nil {
		return wrap(err)
	}
	if tag.RowsAffected() == 0 {
		return proxy.ErrNoRecord
	}
	return nil
}

// Revoke implements proxy.Store.
func (s *Store) Revoke(ctx context.Context, ids ...l402.TokenID) error {
	keys := make([][]byte, len(ids))
	for i := range ids {
		keys[i] = ids[i][:]
	}
	_, err := s.pool.Exec(ctx, s.q.revoke, keys)
	return wrap(err)
}

// ExpiredUnpaid implements proxy.Store.
func (s *Store) ExpiredUnpaid(ctx context.Context, now time.Time, limit int) ([]proxy.TokenRecord, error) {
	rows, err := s.pool.Query(ctx, s.q.expiredUnpaid, now, limit)
	if err != nil {
		return nil, wrap(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (proxy.TokenRecord, error) { return scanChallenge(r) })
	return out, wrap(err)
}

// Spend implements proxy.Store.
func (s *Store) Spend(ctx context.Context, hash backend.PaymentHash, until time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, s.q.spend, hash[:], nullTime(until))
	if err != nil {
		return false, wrap(err)
	}
	return tag.RowsAffected() == 1, nil
}

// Unspend implements proxy.Store.
func (s *Store) Unspend(ctx context.Context, hash backend.PaymentHash) error {
	_, err := s.pool.Exec(ctx, s.q.unspend, hash[:])
	return wrap(err)
}

// PutHold implements proxy.Store.
func (s *Store) PutHold(ctx context.Context, h proxy.Hold, max int) error {
	hash := h.Hash()
	tag, err := s.pool.Exec(ctx, s.q.putHold, hash[:], h.Preimage[:], h.Route, h.Client, h.Expires, max)
	if err != nil {
		return wrap(err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	err = s.pool.QueryRow(ctx, s.q.holdExists, hash[:]).Scan(&exists)
	switch {
	case err == nil:
		return proxy.ErrRecordExists
	case errors.Is(err, pgx.ErrNoRows):
		return proxy.ErrHoldsFull
	}
	return wrap(err)
}

func scanHold(row pgx.Row) (proxy.Hold, error) {
	var (
		h   proxy.Hold
		pre []byte
		at  *time.Time
	)
	if err := row.Scan(&pre, &h.Route, &h.Client, &h.Expires, &h.ClaimedBy, &at); err != nil {
		return h, err
	}
	copy(h.Preimage[:], pre)
	h.ClaimedAt = fromNull(at)
	return h, nil
}

// ClaimHold implements proxy.Store.
func (s *Store) ClaimHold(ctx context.Context, hash backend.PaymentHash, owner string, now time.Time) (proxy.Hold, error) {
	h, err := scanHold(s.pool.QueryRow(ctx, s.q.claimHold, hash[:], owner, now))
	if !errors.Is(err, pgx.ErrNoRows) {
		return h, wrap(err)
	}
	var exists bool
	err = s.pool.QueryRow(ctx, s.q.holdExists, hash[:]).Scan(&exists)
	switch {
	case err == nil:
		return proxy.Hold{}, proxy.ErrHoldClaimed
	case errors.Is(err, pgx.ErrNoRows):
		return proxy.Hold{}, proxy.ErrNoRecord
	}
	return proxy.Hold{}, wrap(err)
}

// ReleaseHold implements proxy.Store.
func (s *Store) ReleaseHold(ctx context.Context, hash backend.PaymentHash) error {
	_, err := s.pool.Exec(ctx, s.q.releaseHold, hash[:])
	return wrap(err)
}

// DeleteHold implements proxy.Store.
func (s *Store) DeleteHold(ctx context.Context, hash backend.PaymentHash) error {
	_, err := s.pool.Exec(ctx, s.q.deleteHold, hash[:])
	return wrap(err)
}

// StaleHolds implements proxy.Store.
func (s *Store) StaleHolds(ctx context.Context, q proxy.StaleHoldQuery) ([]proxy.Hold, error) {
	// An empty owner matches no claim: claimed_by is never empty then.
	rows, err := s.pool.Query(ctx, s.q.staleHolds, q.ExpiredBefore, q.Owner, q.ClaimedBefore, q.Limit)
	if err != nil {
		return nil, wrap(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (proxy.Hold, error) { return scanHold(r) })
	return out, wrap(err)
}

// CountHolds implements proxy.Store.
func (s *Store) CountHolds(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, s.q.countHolds).Scan(&n)
	return n, wrap(err)
}

// Collect implements proxy.Store.
func (s *Store) Collect(ctx context.Context, now time.Time) (int, error) {
	a, err := s.pool.Exec(ctx, s.q.collectPaid, now)
	if err != nil {
		return 0, wrap(err)
	}
	b, err := s.pool.Exec(ctx, s.q.collectSpent, now)
	if err != nil {
		return int(a.RowsAffected()), wrap(err)
	}
	r, err := s.pool.Exec(ctx, s.kq.collectRevoked, now)
	if err != nil {
		return int(a.RowsAffected() + b.RowsAffected()), wrap(err)
	}
	c, err := s.collectLedger(ctx, now)
	return int(a.RowsAffected()+b.RowsAffected()+r.RowsAffected()) + c, err
}

var _ proxy.Store = (*Store)(nil)
