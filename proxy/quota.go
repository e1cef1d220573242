package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// unpaidBook tracks the single-use hold invoices this proxy issued whose
// payment has not been seen yet, by client, so that unauthenticated
// clients cannot exhaust the bound on pending holds (Config.MaxPendingHolds)
// and lock everyone else out:
//
//   - each client (an IPv4 address, or an IPv6 /64, what one subscriber
//     usually gets) may have at most perClient of them; further challenges
//     are answered 429 until one is paid, used or expires;
//   - when the global bound is reached, the oldest entry of the client with
//     the most entries is evicted, but only after the node says its invoice
//     is still open (then it is canceled there, so it can never be paid);
//     an invoice that is held or settled is never evicted, and leaves this
//     book instead, as it is no longer unpaid;
//   - entries leave when their token is used or their invoice expires (the
//     whole book is swept at most once a minute, on insertion).
type unpaidBook struct {
	mu        sync.Mutex
	perClient int
	max       int
	byClient  map[netip.Prefix][]unpaidEntry
	byHash    map[backend.PaymentHash]netip.Prefix
	lastSweep time.Time
}

type unpaidEntry struct {
	hash    backend.PaymentHash
	expires time.Time
}

func newUnpaidBook(perClient, max int) *unpaidBook {
	return &unpaidBook{perClient: perClient, max: max, byClient: map[netip.Prefix][]unpaidEntry{}, byHash: map[backend.PaymentHash]netip.Prefix{}}
}

// clientKey groups addresses that belong to one client.
func clientKey(a netip.Addr) netip.Prefix {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p
	}
	return netip.PrefixFrom(a, a.BitLen())
}

// admit decides whether client may get one more pending hold now, when
// held holds exist in all (paid ones included). quotaFull: the client's
// own quota is used up. victim: the global bound is reached and this
// entry, the oldest of the client with the most, should be evicted first.
func (b *unpaidBook) admit(client netip.Addr, now time.Time, held int) (quotaFull bool, victim *unpaidEntry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(now)
	k := clientKey(client)
	if b.perClient > 0 && len(b.byClient[k]) >= b.perClient {
		return true, nil
	}
	if held < b.max {
		return false, nil
	}
	var most []unpaidEntry
	for _, es := range b.byClient {
		if len(es) > len(most) {
			most = es
		}
	}
	if len(most) == 0 {
		return false, nil // every hold is paid: nothing may go
	}
	v := most[0]
	return false, &v
}

// add records a pending hold of client.
func (b *unpaidBook) add(client netip.Addr, hash backend.PaymentHash, expires time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := clientKey(client)
	b.byClient[k] = append(b.byClient[k], unpaidEntry{hash: hash, expires: expires})
	b.byHash[hash] = k
}

// remove forgets a hash: paid, used, evicted or never created.
func (b *unpaidBook) remove(hash backend.PaymentHash) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removeLocked(hash)
}

func (b *unpaidBook) removeLocked(hash backend.PaymentHash) {
	k, ok := b.byHash[hash]
	if !ok {
		return
	}
	delete(b.byHash, hash)
	es := b.byClient[k]
	for i := range es {
		if es[i].hash == hash {
			es = append(es[:i], es[i+1:]...)
			break
		}
	}
	if len(es) == 0 {
		delete(b.byClient, k)
	} else {
		b.byClient[k] = es
	}
}

// sweepLocked drops expired entries: their invoices can no longer be
// paid, so they no longer count against anyone.
func (b *unpaidBook) sweepLocked(now time.Time) {
	if now.Sub(b.lastSweep) < time.Minute {
		return
	}
	b.lastSweep = now
	for k, es := range b.byClient {
		kept := es[:0]
		for _, e := range es {
			if now.Before(e.expires) {
				kept = append(kept, e)
			} else {
				delete(b.byHash, e.hash)
			}
		}
		if len(kept) == 0 {
			delete(b.byClient, k)
		} else {
			b.byClient[k] = kept
		}
	}
}

// makeRoom applies the bounds of the unpaid book (see unpaidBook) before a
// new hold invoice is made for client: 429 when the client's own quota is
// used up; at the global bound, evicts the oldest entry of the client with
// the most, once the node confirms its invoice is still open. False when
// it has answered the request.
func (p *Proxy) makeRoom(ctx context.Context, w http.ResponseWriter, route *Route, client netip.Addr) bool {
	for range 4 {
		held, err := p.store.CountHolds(ctx)
		if err != nil {
			p.unavailable(w, route, "hold store unavailable", err)
			return false
		}
		quotaFull, victim := p.unpaid.admit(client, time.Now(), held)
		if quotaFull {
			p.m.requests.WithLabelValues(route.Name, "rate_limited").Inc()
			w.Header().Set("Retry-After", "60")
			writeError(w, http.StatusTooManyRequests, "too many unpaid single-use invoices for this address; pay or let one expire first", "pending_quota")
			return false
		}
		if victim == nil {
			return true
		}
		p.evictUnpaid(ctx, victim.hash)
	}
	p.unavailable(w, route, "too many unpaid single-use invoices", errors.New("no unpaid invoice could be evicted"))
	return false
}

// evictUnpaid drops an unpaid hold to make room. It asks the node first
// and cancels only an invoice that is still open, so a payment that arrived
// is never lost; one that is held or settled just leaves the unpaid book.
func (p *Proxy) evictUnpaid(ctx context.Context, hash backend.PaymentHash) {
	inv, err := p.lookup(ctx, hash)
	switch {
	case errors.Is(err, backend.ErrNotFound):
	case err != nil:
		p.log.Warn("cannot evict an unpaid single-use invoice: node unavailable", "err", err)
		return
	case inv.State == backend.StateOpen:
		cctx, cancel := context.WithTimeout(ctx, p.cfg.NodeTimeout)
		err := p.nodeCall("cancel", func() error { return p.holder.CancelInvoice(cctx, hash) })
		cancel()
		if err != nil {
			p.log.Warn("cannot evict an unpaid single-use invoice", "hash", hash.String(), "err", err)
			return
		}
		p.m.evicted.Inc()
	case inv.State == backend.StateHeld:
		p.unpaid.remove(hash) // paid: the store keeps it for its token
		return
	}
	p.unpaid.remove(hash)
	if err := p.store.DeleteHold(ctx, hash); err != nil {
		p.log.Warn("cannot forget an evicted single-use invoice; the collector drops it at expiry", "hash", hash.String(), "err", err)
	}
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
