package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/l402kit/l402kit/proxy"
)

// ledgerDDL makes the ledger's tables: balances, the token records that say
// which balance a token's payment goes to and whether it went, and the
// reservations of requests in flight.
func ledgerDDL(schema string) []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + schema + `.balances (
			account  bytea PRIMARY KEY,
			route    text NOT NULL,
			credited bigint NOT NULL,
			debited  bigint NOT NULL DEFAULT 0,
			reserved bigint NOT NULL DEFAULT 0,
			expires  timestamptz)`,
		`CREATE TABLE IF NOT EXISTS ` + schema + `.ledger_tokens (
			token_id bytea PRIMARY KEY,
			account  bytea NOT NULL,
			credited boolean NOT NULL,
			expires  timestamptz)`,
		`CREATE TABLE IF NOT EXISTS ` + schema + `.reservations (
			id      bytea PRIMARY KEY,
			account bytea NOT NULL,
			units   bigint NOT NULL,
			owner   text NOT NULL,
			at      timestamptz NOT NULL)`,
	}
}

type ledgerQueries struct {
	link, credit, tokenAccount, reserve, balance, settle, drain, stale string
	collectBalances, collectTokens                                     string
}

const balanceCols = `account, route, credited, debited, reserved, expires`

func makeLedgerQueries(schema string) ledgerQueries {
	b, t, r := schema+".balances", schema+".ledger_tokens", schema+".reservations"
	return ledgerQueries{
		link: `INSERT INTO ` + t + ` (token_id, account, credited, expires)
			SELECT $1, $2, false, $3 WHERE EXISTS (SELECT 1 FROM ` + b + ` WHERE account = $2) ON CONFLICT DO NOTHING`,
		// One statement: the token record turns credited (made, for a
		// token linked to nothing), and only then is the balance credited.
		// A second call finds the record credited and changes nothing.
		credit: `WITH tk AS (
				INSERT INTO ` + t + ` AS t (token_id, account, credited, expires) VALUES ($1, $1, true, $4)
				ON CONFLICT (token_id) DO UPDATE SET credited = true, expires = EXCLUDED.expires WHERE NOT t.credited
				RETURNING account)
			INSERT INTO ` + b + ` AS b (account, route, credited, expires) SELECT account, $3, $2, $4 FROM tk
			ON CONFLICT (account) DO UPDATE SET credited = b.credited + EXCLUDED.credited,
				expires = CASE WHEN b.expires IS NULL OR EXCLUDED.expires IS NULL THEN NULL ELSE GREATEST(b.expires, EXCLUDED.expires) END
			RETURNING ` + balanceCols,
		tokenAccount: `SELECT account FROM ` + t + ` WHERE token_id = $1`,
		// The balance row's lock orders concurrent reservations: each sees
		// the units the previous ones took.
		reserve: `WITH b AS (
				UPDATE ` + b + ` SET reserved = reserved + $3
				WHERE account = $2 AND credited - debited - reserved >= $3 AND (expires IS NULL OR expires > $5)
				RETURNING ` + balanceCols + `),
			r AS (INSERT INTO ` + r + ` (id, account, units, owner, at) SELECT $1, account, $3, $4, $5 FROM b)
			SELECT ` + balanceCols + ` FROM b`,
		balance: `SELECT ` + balanceCols + ` FROM ` + b + ` WHERE account = $1`,
		// One statement: the reservation goes, the balance row is locked
		// and read, the charge computed on it (proxy.SettleCharge, in
		// SQL) and applied, so the row is held only for the statement.
		settle: `WITH r AS (DELETE FROM ` + r + ` WHERE id = $1 RETURNING account, units),
			cur AS (SELECT b.account, r.units, GREATEST(0, LEAST($2::bigint, b.credited - b.debited - b.reserved + 2*r.units)) AS charge
				FROM ` + b + ` b JOIN r ON b.account = r.account FOR UPDATE OF b)
			UPDATE ` + b + ` b SET reserved = b.reserved - cur.units, debited = b.debited + cur.charge FROM cur WHERE b.account = cur.account
			RETURNING b.account, b.route, b.credited, b.debited, b.reserved, b.expires, cur.charge`,
		drain: `WITH cur AS (SELECT account, GREATEST(credited - debited - reserved, 0) AS n FROM ` + b + ` WHERE account = $1 FOR UPDATE)
			UPDATE ` + b + ` b SET debited = b.debited + cur.n FROM cur WHERE b.account = cur.account
			RETURNING b.account, b.route, b.credited, b.debited, b.reserved, b.expires, cur.n`,
		stale:           `SELECT id, account, units, owner, at FROM ` + r + ` WHERE ($1 <> '' AND owner = $1) OR at < $2 LIMIT $3`,
		collectBalances: `DELETE FROM ` + b + ` WHERE expires < $1 AND reserved = 0`,
		collectTokens:   `DELETE FROM ` + t + ` WHERE expires < $1`,
	}
}

func scanBalance(row pgx.Row, extra ...any) (proxy.Balance, error) {
	var (
		b       proxy.Balance
		account []byte
		expires *time.Time
	)
	dest := append([]any{&account, &b.Route, &b.Credited, &b.Debited, &b.Reserved, &expires}, extra...)
	if err := row.Scan(dest...); err != nil {
		return b, err
	}
	copy(b.Account[:], account)
	b.Expires = fromNull(expires)
	return b, nil
}

// Link implements proxy.Ledger.
func (s *Store) Link(ctx context.Context, token, account proxy.AccountID, expires time.Time) error {
	tag, err := s.pool.Exec(ctx, s.lq.link, token[:], account[:], nullTime(expires))
	if err != nil {
		return wrap(err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var taken []byte
	err = s.pool.QueryRow(ctx, s.lq.tokenAccount, token[:]).Scan(&taken)
	switch {
	case err == nil:
		return proxy.ErrRecordExists
	case errors.Is(err, pgx.ErrNoRows):
		return proxy.ErrNoRecord
	}
	return wrap(err)
}

// Credit implements proxy.Ledger.
func (s *Store) Credit(ctx context.Context, c proxy.Credit) (proxy.Balance, bool, error) {
	b, err := scanBalance(s.pool.QueryRow(ctx, s.lq.credit, c.Token[:], c.Units, c.Route, nullTime(c.Expires)))
	if err == nil {
		return b, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return b, false, wrap(err)
	}
	// Credited before: read the balance it went to.
	var account []byte
	if err := s.pool.QueryRow(ctx, s.lq.tokenAccount, c.Token[:]).Scan(&account); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return proxy.Balance{}, false, proxy.ErrNoRecord
		}
		return proxy.Balance{}, false, wrap(err)
	}
	b, err = s.balance(ctx, account)
	return b, false, err
}

func (s *Store) balance(ctx context.Context, account []byte) (proxy.Balance, error) {
	b, err := scanBalance(s.pool.QueryRow(ctx, s.lq.balance, account))
	if errors.Is(err, pgx.ErrNoRows) {
		return proxy.Balance{}, proxy.ErrNoRecord
	}
	return b, wrap(err)
}

// Reserve implements proxy.Ledger.
func (s *Store) Reserve(ctx context.Context, r proxy.Reservation) (proxy.Balance, error) {
	b, err := scanBalance(s.pool.QueryRow(ctx, s.lq.reserve, r.ID[:], r.Account[:], r.Units, r.Owner, r.At))
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		if isUniqueViolation(err) {
			return proxy.Balance{}, proxy.ErrRecordExists
		}
		return b, wrap(err)
	}
	b, err = s.balance(ctx, r.Account[:])
	switch {
	case err != nil:
		return b, err
	case !b.Expires.IsZero() && !r.At.Before(b.Expires):
		return proxy.Balance{}, proxy.ErrNoRecord
	}
	return b, proxy.ErrInsufficient
}

// Settle implements proxy.Ledger.
func (s *Store) Settle(ctx context.Context, id proxy.ReservationID, used int64) (proxy.Settlement, error) {
	var charge int64
	b, err := scanBalance(s.pool.QueryRow(ctx, s.lq.settle, id[:], used), &charge)
	if errors.Is(err, pgx.ErrNoRows) {
		return proxy.Settlement{}, proxy.ErrNoRecord
	}
	if err != nil {
		return proxy.Settlement{}, wrap(err)
	}
	return proxy.Settlement{Balance: b, Charged: charge, Forgiven: used - charge}, nil
}

// Balance implements proxy.Ledger.
func (s *Store) Balance(ctx context.Context, account proxy.AccountID) (proxy.Balance, error) {
	return s.balance(ctx, account[:])
}

// Drain implements proxy.Ledger.
func (s *Store) Drain(ctx context.Context, account proxy.AccountID) (proxy.Balance, int64, error) {
	var n int64
	b, err := scanBalance(s.pool.QueryRow(ctx, s.lq.drain, account[:]), &n)
	if errors.Is(err, pgx.ErrNoRows) {
		return proxy.Balance{}, 0, proxy.ErrNoRecord
	}
	return b, n, wrap(err)
}

// StaleReservations implements proxy.Ledger.
func (s *Store) StaleReservations(ctx context.Context, q proxy.StaleReservationQuery) ([]proxy.Reservation, error) {
	rows, err := s.pool.Query(ctx, s.lq.stale, q.Owner, q.Before, q.Limit)
	if err != nil {
		return nil, wrap(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (proxy.Reservation, error) {
		var (
			r           proxy.Reservation
			id, account []byte
		)
		err := row.Scan(&id, &account, &r.Units, &r.Owner, &r.At)
		copy(r.ID[:], id)
		copy(r.Account[:], account)
		return r, err
	})
	return out, wrap(err)
}

// collectLedger deletes balances expired with nothing reserved and token
// records past their time.
func (s *Store) collectLedger(ctx context.Context, now time.Time) (int, error) {
	a, err := s.pool.Exec(ctx, s.lq.collectBalances, now)
	if err != nil {
		return 0, wrap(err)
	}
	b, err := s.pool.Exec(ctx, s.lq.collectTokens, now)
	if err != nil {
		return int(a.RowsAffected()), wrap(err)
	}
	return int(a.RowsAffected() + b.RowsAffected()), nil
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
