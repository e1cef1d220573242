package boltstore

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// The state file must never fail silently: a store that opens empty where
// tokens were sold refuses every buyer, and one that opens on a damaged
// file panics later, on some request. So Open proves the file whole before
// the proxy serves (every page reachable, every record decodable, bbolt's
// own consistency check), and knows whether a store existed at the path
// before, from a marker file written beside it.
//
// The marker, PATH.id, holds the store's random identity, which the store
// also keeps inside. It is written once, when the store is created (or,
// for a store made before markers existed, on its first open), and it is
// never removed by the proxy. A state file that is missing or 0 bytes long
// while its marker exists is a store that was lost, not a first start, and
// is refused unless the caller says to begin a new store (Options.New). A
// 0-byte file is refused even without a marker: bbolt never leaves one
// behind (it writes its first pages before Open returns), so such a file
// was truncated by something else.

// Errors Open and Check return, each wrapped with the file's name and what
// to do; match them with errors.Is.
var (
	// ErrCorrupt: the file is not a whole bbolt database (truncated,
	// overwritten, damaged pages, records that do not decode).
	ErrCorrupt = errors.New("state file is corrupt")
	// ErrForeign: the file is a sound database but not this store: another
	// program's bbolt file, or another l402kit store than the marker names.
	ErrForeign = errors.New("state file is not this store")
	// ErrLost: the marker says a store existed here, but the file is
	// missing or empty.
	ErrLost = errors.New("state file is missing or empty")
	// ErrInUse: another process holds the file.
	ErrInUse = errors.New("state file is in use by another process")
)

var (
	bMeta       = []byte("l402kit") // format -> "1", id -> 16 random bytes
	metaFormat  = []byte("format")
	metaID      = []byte("id")
	formatValue = []byte("1")
)

// Options change how Open treats the path.
type Options struct {
	// New allows a new, empty store where one existed before: the file is
	// missing while its marker is present, or the file is 0 bytes long.
	// A file with content is never replaced, whatever New says.
	New bool
}

// MarkerPath is the marker file beside the state file at path.
func MarkerPath(path string) string { return path + ".id" }

// Report is what Check found in a sound store.
type Report struct {
	Path    string
	ID      string         // the store's identity, hex
	Marker  string         // "present", "absent" (written on the next open) or "mismatch"
	Size    int64          // file bytes
	Records map[string]int // records per kind
}

// Check opens the state file at path read-only, proves it whole as Open
// does, and reports what it holds. It fails with the same errors as Open.
// A proxy running on the file holds it: check a copy, or stop the proxy.
func Check(path string) (Report, error) {
	r := Report{Path: path, Records: map[string]int{}}
	marker, err := readMarker(path)
	if err != nil {
		return r, err
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if marker != "" {
			return r, lost(path, "is missing", marker)
		}
		return r, fmt.Errorf("boltstore: %s: %w", path, err)
	case err != nil:
		return r, fmt.Errorf("boltstore: %w", err)
	case fi.Size() == 0:
		return r, lost(path, "is empty (0 bytes)", marker)
	}
	r.Size = fi.Size()
	db, err := openBolt(path, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		return r, err
	}
	defer db.Close()
	id, err := verify(db, path, r.Records)
	if err != nil {
		return r, err
	}
	r.ID = hex.EncodeToString(id)
	switch {
	case id == nil:
		r.ID = "(none yet: written on the next open)"
		r.Marker = "absent"
		if marker != "" {
			r.Marker = "mismatch"
		}
	case marker == "":
		r.Marker = "absent"
	case marker == r.ID:
		r.Marker = "present"
	default:
		r.Marker = "mismatch"
		return r, fmt.Errorf("boltstore: %s holds store %s but %s names store %s: %w (if you restored this file on purpose, delete the marker)",
			path, r.ID, MarkerPath(path), marker, ErrForeign)
	}
	return r, nil
}

// openChecked opens path for writing, refusing what must not be opened
// silently, and returns the proven database.
func openChecked(path string, o Options) (*bolt.DB, error) {
	marker, err := readMarker(path)
	if err != nil {
		return nil, err
	}
	fresh := false // the file is new or empty: this open creates the store
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if marker != "" && !o.New {
			return nil, lost(path, "is missing", marker)
		}
		fresh = true
	case err != nil:
		return nil, fmt.Errorf("boltstore: %w", err)
	case fi.Size() == 0:
		if !o.New {
			return nil, lost(path, "is empty (0 bytes)", marker)
		}
		fresh = true
	}
	var id []byte
	if !fresh {
		// Proven read-only first: bbolt opening for writing reads the
		// freelist at once, and a panic there would leave the file mapped
		// and locked; read-only, the freelist is read by the check, which
		// recovers, and the database closes cleanly on any refusal.
		ro, err := openBolt(path, &bolt.Options{Timeout: time.Second, ReadOnly: true})
		if err != nil {
			return nil, err
		}
		id, err = verify(ro, path, nil)
		ro.Close()
		if err != nil {
			return nil, err
		}
	}
	db, err := openBolt(path, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*bolt.DB, error) {
		db.Close()
		return nil, err
	}
	if id == nil {
		// A new store, or one made before stores had an identity.
		id = make([]byte, 16)
		rand.Read(id)
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bMeta)
			if err != nil {
				return err
			}
			if err := b.Put(metaFormat, formatValue); err != nil {
				return err
			}
			return b.Put(metaID, id)
		})
		if err != nil {
			return fail(fmt.Errorf("boltstore: init %s: %w", path, err))
		}
	}
	hexID := hex.EncodeToString(id)
	switch {
	case marker == hexID:
	case marker == "" || fresh:
		// fresh with a marker: o.New said to replace the lost store.
		if err := writeMarker(path, hexID); err != nil {
			return fail(err)
		}
	default:
		return fail(fmt.Errorf("boltstore: %s holds store %s but %s names store %s: %w (if you restored this file on purpose, delete the marker and start again)",
			path, hexID, MarkerPath(path), marker, ErrForeign))
	}
	return db, nil
}

func lost(path, what, marker string) error {
	why := "bbolt never leaves an empty file, so it was truncated"
	if marker != "" {
		why = fmt.Sprintf("%s says store %s existed there", MarkerPath(path), marker)
	}
	return fmt.Errorf("boltstore: %s %s (%s): %w; restore the file from a backup, or, to start an empty store and lose the tokens sold so far, say it is a new store",
		path, what, why, ErrLost)
}

func corrupt(path string, detail any) error {
	return fmt.Errorf("boltstore: %s: %w (%v); restore it from a backup, or move it aside and start a new store", path, ErrCorrupt, detail)
}

// openBolt opens the bbolt file, turning bbolt's refusals and panics on a
// damaged file into ErrCorrupt. Reading a page past the end of a truncated
// file faults: SetPanicOnFault turns the fault into a panic recovered here.
func openBolt(path string, opts *bolt.Options) (db *bolt.DB, err error) {
	// bbolt's Open may panic halfway, holding the file and its lock: keep
	// the file to close it then (the mapping of a refused file is left to
	// the process's exit).
	var file *os.File
	opts.OpenFile = func(name string, flag int, mode os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, mode)
		file = f
		return f, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				file.Close()
			}
			db, err = nil, corrupt(path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, opts)
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("boltstore: %s: %w (one proxy per file; share state through PostgreSQL)", path, ErrInUse)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch):
		return nil, corrupt(path, fmt.Sprintf("not a bbolt database: %v", err))
	}
	return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
}

// verify proves an open database whole and this project's: the file holds
// every page its meta page counts, every bucket and record reads and
// decodes, and bbolt's consistency check passes. It returns the store's
// identity (nil for a store that has none yet: new, or made before
// identities) and, when counts is not nil, the records per kind.
func verify(db *bolt.DB, path string, counts map[string]int) (id []byte, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			id, err = nil, corrupt(path, r)
		}
	}()
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("boltstore: %w", err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		// Before any page is read: a file shorter than its meta page says
		// was truncated.
		if tx.Size() > fi.Size() {
			return corrupt(path, fmt.Sprintf("truncated: %d bytes, its meta page counts %d", fi.Size(), tx.Size()))
		}
		var names [][]byte
		if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			names = append(names, bytes.Clone(name))
			return nil
		}); err != nil {
			return corrupt(path, err)
		}
		ours := map[string]func(k, v []byte) error{
			string(bChallenges): func(k, v []byte) error { _, err := decodeChallenge(k, v); return err },
			string(bUnpaid):     indexKey,
			string(bPaidExpiry): indexKey,
			string(bSpent): func(k, v []byte) error {
				if len(k) != 32 || len(v) != 8 {
					return fmt.Errorf("spent record %x: bad length", k)
				}
				return nil
			},
			string(bHolds):        func(_, v []byte) error { _, err := decodeHold(v); return err },
			string(bBalances):     decodesAs[balanceRec],
			string(bTokens):       decodesAs[tokenRec],
			string(bReservations): decodesAs[reservationRec],
			string(bMeta):         func(_, _ []byte) error { return nil },
			string(bRevoked):      checkRevoked,
		}
		for _, b := range buckets {
			if _, ok := ours[string(b)]; !ok {
				// A kind of record added without a check here: its
				// pages are still read and bbolt's check still runs.
				ours[string(b)] = func(_, _ []byte) error { return nil }
			}
		}
		for _, n := range names {
			if _, ok := ours[string(n)]; !ok {
				return fmt.Errorf("boltstore: %s holds a bucket %q no l402kit store has: %w (another program's database?); point the proxy at its own state file",
					path, n, ErrForeign)
			}
		}
		for _, n := range names {
			check := ours[string(n)]
			k := 0
			if err := tx.Bucket(n).ForEach(func(key, v []byte) error {
				k++
				if err := check(key, v); err != nil {
					return corrupt(path, err)
				}
				return nil
			}); err != nil {
				return err
			}
			if counts != nil && !bytes.Equal(n, bMeta) {
				counts[string(n)] = k
			}
		}
		if m := tx.Bucket(bMeta); m != nil {
			if f := m.Get(metaFormat); !bytes.Equal(f, formatValue) {
				return fmt.Errorf("boltstore: %s is in store format %q, this build reads %q: %w", path, f, formatValue, ErrForeign)
			}
			if err := checkMaster(m); err != nil {
				return corrupt(path, err)
			}
			if v := m.Get(metaID); len(v) == 16 {
				id = bytes.Clone(v)
			} else {
				return corrupt(path, "store identity missing")
			}
		}
		var first error
		for err := range tx.Check() { // drained: the check runs until it closes the channel
			if first == nil {
				first = corrupt(path, err)
			}
		}
		return first
	})
	return id, err
}

// decodesAs checks that a record is the JSON of a T.
func decodesAs[T any](k, v []byte) error {
	var r T
	if err := json.Unmarshal(v, &r); err != nil {
		return fmt.Errorf("record %x: %w", k, err)
	}
	return nil
}

// indexKey checks an index entry: a time and a token id, no value.
func indexKey(k, _ []byte) error {
	if len(k) != 8+32 {
		return fmt.Errorf("index entry %x: bad length", k)
	}
	return nil
}

// readMarker returns the store identity the marker beside path names, or
// "" when there is no marker.
func readMarker(path string) (string, error) {
	f, err := os.Open(MarkerPath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("boltstore: marker: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "id "); ok {
			return strings.TrimSpace(id), nil
		}
	}
	return "", fmt.Errorf("boltstore: marker %s names no store (want a line \"id <hex>\"); if it is damaged, restore it or delete it", MarkerPath(path))
}

// writeMarker writes the marker durably: the file and its directory entry
// are synced, so a crash cannot leave a store without its marker after the
// store's first commit was acknowledged.
func writeMarker(path, id string) error {
	mp := MarkerPath(path)
	tmp := mp + ".tmp"
	text := fmt.Sprintf("# l402kit state store marker: the state file %s holds this store.\n# Do not delete it: it is how a lost or emptied state file is told from a first start.\nid %s\ncreated %s\n",
		filepath.Base(path), id, time.Now().UTC().Format(time.RFC3339))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("boltstore: marker: %w", err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return fmt.Errorf("boltstore: marker: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("boltstore: marker: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("boltstore: marker: %w", err)
	}
	if err := os.Rename(tmp, mp); err != nil {
		return fmt.Errorf("boltstore: marker: %w", err)
	}
	d, err := os.Open(filepath.Dir(mp))
	if err != nil {
		return fmt.Errorf("boltstore: marker: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("boltstore: marker: %w", err)
	}
	return nil
}
