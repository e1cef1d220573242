package proxy

import (
	"context"
	"sync"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// SpentStore records the payment hashes of single-use tokens that have been
// used, on backends without hold invoices. Several proxies sharing one
// store serve each token once between them.
type SpentStore interface {
	// Spend marks hash used until the given time (zero: for ever) and
	// reports whether it was unused before. It must be atomic: of two
	// concurrent calls for one hash, exactly one gets true.
	Spend(ctx context.Context, hash backend.PaymentHash, until time.Time) (bool, error)
	// Unspend forgets hash, so a token whose request failed upstream can
	// be used again.
	Unspend(ctx context.Context, hash backend.PaymentHash) error
}

// MemorySpentStore is a SpentStore for one process.
type MemorySpentStore struct {
	mu      sync.Mutex
	spent   map[backend.PaymentHash]time.Time
	lastGC  time.Time
	gcEvery time.Duration
}

// NewMemorySpentStore returns an empty store.
func NewMemorySpentStore() *MemorySpentStore {
	return &MemorySpentStore{spent: map[backend.PaymentHash]time.Time{}, gcEvery: time.Minute}
}

// Spend implements SpentStore.
func (s *MemorySpentStore) Spend(_ context.Context, hash backend.PaymentHash, until time.Time) (bool, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastGC) > s.gcEvery {
		// Entries whose token can no longer verify need not be kept.
		for h, u := range s.spent {
			if !u.IsZero() && now.After(u) {
				delete(s.spent, h)
			}
		}
		s.lastGC = now
	}
	if _, used := s.spent[hash]; used {
		return false, nil
	}
	s.spent[hash] = until
	return true, nil
}

// Unspend implements SpentStore.
func (s *MemorySpentStore) Unspend(_ context.Context, hash backend.PaymentHash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.spent, hash)
	return nil
}

// holdBook remembers the preimages of hold invoices the proxy issued, which
// it needs to settle them, and which ones a request is using right now.
// Bounded, so a flood of challenges cannot grow it without limit; entries go
// when their invoice expires.
type holdBook struct {
	mu      sync.Mutex
	max     int
	entries map[backend.PaymentHash]*holdEntry
}

type holdEntry struct {
	preimage backend.Preimage
	expires  time.Time
	inUse    bool
}

func newHoldBook(max int) *holdBook {
	return &holdBook{max: max, entries: map[backend.PaymentHash]*holdEntry{}}
}

// add records a preimage; false when the book is full even after dropping
// expired entries.
func (b *holdBook) add(p backend.Preimage, expires time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.entries) >= b.max {
		now := time.Now()
		for h, e := range b.entries {
			if !e.inUse && now.After(e.expires) {
				delete(b.entries, h)
			}
		}
		if len(b.entries) >= b.max {
			return false
		}
	}
	b.entries[p.Hash()] = &holdEntry{preimage: p, expires: expires}
	return true
}

// claim marks the hash in use by one request and returns its preimage.
func (b *holdBook) claim(h backend.PaymentHash) (backend.Preimage, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entries[h]
	if e == nil || e.inUse {
		return backend.Preimage{}, false
	}
	e.inUse = true
	return e.preimage, true
}

// release ends a claim; done drops the entry for good.
func (b *holdBook) release(h backend.PaymentHash, done bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if done {
		delete(b.entries, h)
	} else if e := b.entries[h]; e != nil {
		e.inUse = false
	}
}

func (b *holdBook) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.entries)
}

// limiter bounds challenges per client in fixed one-minute windows. The
// whole map is dropped each window, so memory stays bounded by the clients
// of one minute.
type limiter struct {
	mu     sync.Mutex
	per    int
	window time.Time
	counts map[string]int
}

func newLimiter(perMinute int) *limiter {
	return &limiter{per: perMinute, counts: map[string]int{}}
}

func (l *limiter) allow(client string, now time.Time) bool {
	if l == nil || l.per <= 0 {
		return true
	}
	w := now.Truncate(time.Minute)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !w.Equal(l.window) {
		l.window = w
		clear(l.counts)
	}
	if l.counts[client] >= l.per {
		return false
	}
	l.counts[client]++
	return true
}
