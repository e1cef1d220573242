// Package boltstore is the embedded proxy.Store: one file, written with
// bbolt (a B+tree with copy-on-write pages, every commit fsync'd), which
// l402proxy uses unless told otherwise. One process owns the file at a time;
// proxies that must share state use package pgstore.
//
// bbolt rather than SQLite: the proxy needs a handful of keyed records and
// atomic read-modify-write, not queries; bbolt is a small pure-Go library
// with one writer, which is all a single process needs, and its Batch
// groups concurrent writes into one fsync. A pure-Go SQLite is a C library
// translated to Go, many times larger and slower to build, for features
// this store would not use.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/l402kit/l402kit/proxy"
)

var (
	bChallenges = []byte("challenges") // token id -> record
	bUnpaid     = []byte("unpaid")     // invoice expiry | token id -> nothing
	bPaidExpiry = []byte("paid_until") // token expiry | token id -> nothing
	bSpent      = []byte("spent")      // payment hash -> until (unix ns, 0 for ever)
	bHolds      = []byte("holds")      // payment hash -> record
)

// buckets are every bucket of the store, created at Open.
var buckets = [][]byte{bChallenges, bUnpaid, bPaidExpiry, bSpent, bHolds, bBalances, bTokens, bReservations, bRevoked}

// Store is a proxy.Store in one bbolt file.
type Store struct {
	db   *bolt.DB
	ops  chan *op
	quit chan struct{}
	done chan struct{} // closed when the writer has returned
	once sync.Once
}

// op is one write waiting for the group commit.
type op struct {
	f    func(*bolt.Tx) error
	done chan error
}

// DefaultPath is where l402proxy keeps its state unless told otherwise:
// $XDG_STATE_HOME/l402kit/state.db, or ~/.local/state/l402kit/state.db.
func DefaultPath() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("boltstore: no XDG_STATE_HOME and no home directory: %w", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "l402kit", "state.db"), nil
}

// Open opens or creates the store at path (and its directory, mode 0700: the
// file holds root keys and preimages), as OpenOptions with no options.
func Open(path string) (*Store, error) { return OpenOptions(path, Options{}) }

// OpenOptions opens or creates the store at path. It refuses, with an error
// naming the file and what to do, a file that is damaged or not a store
// (ErrCorrupt, ErrForeign), a missing or empty file where a store existed
// (ErrLost, unless o.New), and a file another process holds (ErrInUse,
// after a second rather than waiting).
func OpenOptions(path string, o Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: %w", err)
	}
	db, err := openChecked(path, o)
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return initMaster(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: init %s: %w", path, err)
	}
	s := &Store{db: db, ops: make(chan *op, 1024), quit: make(chan struct{}), done: make(chan struct{})}
	go s.writer()
	return s, nil
}

// writer commits the writes waiting in s.ops together: one transaction and
// one fsync for all that arrived while the previous commit ran. A lone write
// is committed at once (bbolt's own Batch would first wait MaxBatchDelay
// for company), and under load writes share commits.
func (s *Store) writer() {
	defer close(s.done)
	for {
		var first *op
		select {
		case <-s.quit:
			return
		case first = <-s.ops:
		}
		group := []*op{first}
	more:
		for len(group) < 512 {
			select {
			case o := <-s.ops:
				group = append(group, o)
			default:
				break more
			}
		}
		results := make([]error, len(group))
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i, o := range group {
				results[i] = o.f(tx)
				if results[i] != nil && !isSentinel(results[i]) {
					// A real failure may have left part of its writes:
					// roll the group back and commit each alone below.
					return results[i]
				}
			}
			return nil
		})
		if err == nil {
			for i, o := range group {
				o.done <- results[i]
			}
			continue
		}
		for _, o := range group {
			var r error
			if err := s.db.Update(func(tx *bolt.Tx) error {
				r = o.f(tx)
				if r != nil && !isSentinel(r) {
					return r
				}
				return nil
			}); err != nil {
				r = err
			}
			o.done <- r
		}
	}
}

// Backup writes a consistent copy of the whole store to w while the store
// stays in use (a read transaction sees one committed state).
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// Close implements proxy.Store.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.quit) })
	<-s.done
	return s.db.Close()
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnix(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// timeKey orders index entries by time, then token id.
func timeKey(t time.Time, id []byte) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), uint64(t.UnixNano()))
	return append(k, id...)
}

// Collect implements proxy.Store.
func (s *Store) Collect(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.update(ctx, func(tx *bolt.Tx) error {
		n = 0
		end := binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano()))
		var ids [][]byte
		cur := tx.Bucket(bPaidExpiry).Cursor()
		for k, _ := cur.First(); k != nil && bytes.Compare(k[:8], end) < 0; k, _ = cur.Next() {
			ids = append(ids, bytes.Clone(k[8:]))
		}
		for _, id := range ids {
			if err := deleteChallenge(tx, id); err != nil {
				return err
			}
			n++
		}
		var hashes [][]byte
		sb := tx.Bucket(bSpent)
		err := sb.ForEach(func(k, v []byte) error {
			if u := int64(binary.BigEndian.Uint64(v)); u != 0 && u < now.UnixNano() {
				hashes = append(hashes, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, h := range hashes {
			if err := sb.Delete(h); err != nil {
				return err
			}
			n++
		}
		m, err := collectRevoked(tx, now)
		n += m
		if err != nil {
			return err
		}
		m, err = collectLedger(tx, now)
		n += m
		return err
	})
	return n, err
}

// batch runs a write in the next group commit. f may run more than once
// (when another write of its group fails), so it must set its results
// afresh each time, and it returns one of the store's sentinels only before
// it writes anything. The sentinels pass through unwrapped so callers can
// match them. Once queued, the write is waited for whatever ctx says: it
// may already be committing.
func (s *Store) batch(ctx context.Context, f func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &op{f: f, done: make(chan error, 1)}
	select {
	case s.ops <- o:
	case <-s.quit:
		return errors.New("boltstore: store closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-o.done:
		return wrap(err)
	case <-s.done:
		// The writer stopped (Close); o may have been left in the queue.
		select {
		case err := <-o.done:
			return wrap(err)
		default:
			return errors.New("boltstore: store closed")
		}
	}
}

func (s *Store) update(ctx context.Context, f func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return wrap(s.db.Update(f))
}

func (s *Store) view(ctx context.Context, f func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return wrap(s.db.View(f))
}

func wrap(err error) error {
	if err == nil || isSentinel(err) {
		return err
	}
	return fmt.Errorf("boltstore: %w", err)
}

func isSentinel(err error) bool {
	return errors.Is(err, proxy.ErrNoRecord) || errors.Is(err, proxy.ErrRecordExists) ||
		errors.Is(err, proxy.ErrHoldClaimed) || errors.Is(err, proxy.ErrHoldsFull) || errors.Is(err, proxy.ErrInsufficient)
}

var _ proxy.Store = (*Store)(nil)
