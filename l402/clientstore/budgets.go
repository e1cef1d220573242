package clientstore

import (
	"bytes"
	"encoding/binary"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

func getCounter(b *bolt.Bucket, key string) backend.MilliSat {
	v := b.Get([]byte(key))
	if len(v) != 8 {
		return 0
	}
	return backend.MilliSat(int64(binary.BigEndian.Uint64(v)))
}

func addCounters(b *bolt.Bucket, keys []string, d backend.MilliSat) error {
	for _, k := range keys {
		n := getCounter(b, k) + d
		if n < 0 {
			n = 0
		}
		if err := b.Put([]byte(k), seqKey(uint64(n))); err != nil {
			return err
		}
	}
	return nil
}

// counters names every running sum a payment to host at t adds to: total
// and the host's, over every period, so that a budget set later counts
// what was paid before it.
func counters(host string, t time.Time) []string {
	keys := make([]string, 0, 2*len(l402.Periods))
	for _, p := range l402.Periods {
		keys = append(keys, l402.CounterKey("", p, t), l402.CounterKey(host, p, t))
	}
	return keys
}

// BudgetState is a budget and what is left of it now.
type BudgetState struct {
	Budget l402.Budget `json:"-"`
	// Spec is the budget as ParseBudget reads it.
	Spec  string           `json:"budget"`
	Host  string           `json:"host,omitempty"`
	Limit backend.MilliSat `json:"limit_msat"`
	Spent backend.MilliSat `json:"spent_msat"`
	Left  backend.MilliSat `json:"left_msat"`
	// Resets is when its window ends (absent for life).
	Resets *time.Time `json:"resets,omitempty"`
}

// Remaining reports each budget's state now. A per-host budget ("*") is
// reported for each host paid in its window; host narrows the report to
// that host (and the total budgets).
func (s *Store) Remaining(host string) ([]BudgetState, error) {
	now := s.now()
	var out []BudgetState
	err := s.view(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketCounters)
		for _, b := range s.budgets {
			hosts := []string{b.Host}
			switch {
			case b.Host == "":
			case b.Host == "*" && host != "":
				hosts = []string{host}
			case b.Host == "*":
				hosts = hostsPaid(cb, b.Period, now)
			case host != "" && b.Host != host:
				continue
			}
			for _, h := range hosts {
				spent := getCounter(cb, b.Counter(h, now))
				st := BudgetState{Budget: b, Spec: b.String(), Limit: b.Limit, Spent: spent, Left: max(b.Limit-spent, 0)}
				if b.Host != "" {
					st.Host = h
				}
				if end := b.Period.End(now); !end.IsZero() {
					st.Resets = &end
				}
				out = append(out, st)
			}
		}
		return nil
	})
	return out, err
}

// hostsPaid lists the hosts with a running sum in the current window of p.
func hostsPaid(cb *bolt.Bucket, p l402.Period, now time.Time) []string {
	suffix := "|" + string(p) + "|" + p.Window(now)
	var hosts []string
	c := cb.Cursor()
	prefix := []byte("host=")
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if h, ok := strings.CutSuffix(string(k[len(prefix):]), suffix); ok && len(v) == 8 {
			hosts = append(hosts, h)
		}
	}
	sort.Strings(hosts)
	return hosts
}
