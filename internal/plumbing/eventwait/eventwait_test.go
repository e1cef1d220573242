package eventwait

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/l402kit/l402kit/backend"
)

// node is a pretend Lightning node: invoices in a map, and a websocket
// that sends the hex payment hash of each settled invoice as a message.
type node struct {
	srv *httptest.Server

	mu       sync.Mutex
	invs     map[backend.PaymentHash]backend.Invoice
	down     error // returned by lookups while set
	refuse   bool  // websocket upgrades answered 503
	conns    map[*websocket.Conn]struct{}
	accepted int
}

func newNode(t *testing.T) *node {
	t.Helper()
	n := &node{invs: map[backend.PaymentHash]backend.Invoice{}, conns: map[*websocket.Conn]struct{}{}}
	n.srv = httptest.NewServer(http.HandlerFunc(n.serveWS))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *node) serveWS(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	refuse := n.refuse
	n.mu.Unlock()
	if refuse {
		http.Error(w, "no websockets now", http.StatusServiceUnavailable)
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	n.mu.Lock()
	n.conns[conn] = struct{}{}
	n.accepted++
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.conns, conn)
		n.mu.Unlock()
		conn.CloseNow()
	}()
	// Reading answers the client's pings and notices its close.
	for {
		if _, _, err := conn.Read(r.Context()); err != nil {
			return
		}
	}
}

// dropAll closes every socket from the server side.
func (n *node) dropAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for c := range n.conns {
		c.CloseNow()
	}
}

func (n *node) open(hash backend.PaymentHash, expires time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.invs[hash] = backend.Invoice{PaymentHash: hash, State: backend.StateOpen, ExpiresAt: expires}
}

// settle marks the invoice paid and, if announce, sends its event.
func (n *node) settle(t *testing.T, hash backend.PaymentHash, announce bool) {
	t.Helper()
	n.mu.Lock()
	inv := n.invs[hash]
	inv.State = backend.StateSettled
	n.invs[hash] = inv
	var conns []*websocket.Conn
	for c := range n.conns {
		conns = append(conns, c)
	}
	n.mu.Unlock()
	if !announce {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Unrelated messages first: the hub must skip them.
	for _, c := range conns {
		for _, msg := range []string{"not an event", hex.EncodeToString(hash[:])} {
			if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Errorf("send event: %v", err)
			}
		}
	}
}

func (n *node) lookup(_ context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down != nil {
		return nil, n.down
	}
	inv, ok := n.invs[hash]
	if !ok {
		return nil, fmt.Errorf("lookup %s: %w", hash, backend.ErrNotFound)
	}
	return &inv, nil
}

func (n *node) set(f func(n *node)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(n)
}

func (n *node) acceptedN() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.accepted
}

func (n *node) openConns() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.conns)
}

// hub returns a Hub on n; poll is the interval while the socket is down,
// and the socket-up interval is an hour, so only events and (re)connections
// wake a waiter then.
func (n *node) hub(t *testing.T, poll time.Duration) *Hub {
	t.Helper()
	h := New(Config{
		Name: "test",
		Dial: func(ctx context.Context) (*websocket.Conn, error) {
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.srv.URL, "http"), nil)
			return c, err
		},
		Event: func(msg []byte) (backend.PaymentHash, bool) {
			h, err := backend.ParsePaymentHash(string(msg))
			return h, err == nil
		},
		Ping:          20 * time.Millisecond,
		MaxBackoff:    200 * time.Millisecond,
		Lookup:        n.lookup,
		Poll:          poll,
		ConnectedPoll: time.Hour,
	})
	t.Cleanup(h.Close)
	return h
}

func hashOf(b byte) backend.PaymentHash {
	var h backend.PaymentHash
	for i := range h {
		h[i] = b
	}
	return h
}

type result struct {
	inv *backend.Invoice
	err error
}

func wait(ctx context.Context, h *Hub, hash backend.PaymentHash) chan result {
	ch := make(chan result, 1)
	go func() {
		inv, err := h.Wait(ctx, hash)
		ch <- result{inv, err}
	}()
	return ch
}

func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// An event for the hash is the only thing that can end this wait: polls
// are an hour apart. Two waiters of the same hash and one of another share
// one socket; only the named hash's waiters return.
func TestEventWakesWaiters(t *testing.T) {
	n := newNode(t)
	h := n.hub(t, time.Hour)
	paid, other := hashOf(1), hashOf(2)
	n.open(paid, time.Now().Add(time.Hour))
	n.open(other, time.Now().Add(time.Hour))
	ctx := ctxT(t)
	otherCtx, cancelOther := context.WithCancel(ctx)
	a, b, c := wait(ctx, h, paid), wait(ctx, h, paid), wait(otherCtx, h, other)
	until(t, "connected", h.Connected)
	// Each waiter's lookup after the connect ring must be over before the
	// payment, or that lookup rather than the event would see it.
	time.Sleep(100 * time.Millisecond)
	n.settle(t, paid, true)
	for _, ch := range []chan result{a, b} {
		r := <-ch
		if r.err != nil || r.inv.State != backend.StateSettled {
			t.Fatalf("Wait: %+v, %v; want settled", r.inv, r.err)
		}
	}
	if got := n.openConns(); got != 1 {
		t.Errorf("%d sockets open for three waiters, want 1", got)
	}
	cancelOther()
	if r := <-c; !errors.Is(r.err, context.Canceled) {
		t.Errorf("Wait of the unpaid invoice after cancel: %v, want context.Canceled", r.err)
	}
	until(t, "stopped without waiters", func() bool { return !h.Running() && !h.Connected() && n.openConns() == 0 })
}

// A payment made while the socket is refused is seen by polling; once the
// socket is accepted again the hub redials by itself.
func TestPollsWhileSocketDown(t *testing.T) {
	n := newNode(t)
	h := n.hub(t, 20*time.Millisecond)
	hash := hashOf(3)
	n.open(hash, time.Now().Add(time.Hour))
	ctx := ctxT(t)
	n.set(func(n *node) { n.refuse = true })
	ch := wait(ctx, h, hash)
	n.settle(t, hash, false)
	if r := <-ch; r.err != nil || r.inv.State != backend.StateSettled {
		t.Fatalf("Wait with the socket refused: %+v, %v", r.inv, r.err)
	}
	if got := n.acceptedN(); got != 0 {
		t.Fatalf("%d sockets accepted while refusing", got)
	}

	hash2 := hashOf(4)
	n.open(hash2, time.Now().Add(time.Hour))
	n.set(func(n *node) { n.refuse = false })
	ch = wait(ctx, h, hash2)
	until(t, "connected", h.Connected)
	n.settle(t, hash2, true)
	if r := <-ch; r.err != nil || r.inv.State != backend.StateSettled {
		t.Fatalf("Wait after the socket came back: %+v, %v", r.inv, r.err)
	}
}

// A payment made while the socket was dropped, with polls an hour apart,
// is found by the look every waiter makes when the socket reconnects (or,
// on a slow machine, by the look the drop itself rang, if that one ran
// after the payment; either way no poll is involved).
func TestReconnectRingsWaiters(t *testing.T) {
	n := newNode(t)
	h := n.hub(t, time.Hour)
	hash := hashOf(5)
	n.open(hash, time.Now().Add(time.Hour))
	ctx := ctxT(t)
	ch := wait(ctx, h, hash)
	until(t, "connected", h.Connected)
	n.set(func(n *node) { n.refuse = true })
	n.dropAll()
	until(t, "disconnected", func() bool { return !h.Connected() })
	// Let the look the drop rang finish, so the payment is normally left
	// for the look after the reconnection.
	time.Sleep(100 * time.Millisecond)
	n.settle(t, hash, false)
	n.set(func(n *node) { n.refuse = false })
	if r := <-ch; r.err != nil || r.inv.State != backend.StateSettled {
		t.Fatalf("Wait across a drop: %+v, %v", r.inv, r.err)
	}
}

// An open invoice ends the wait when it expires, with no event.
func TestExpiryEndsWait(t *testing.T) {
	n := newNode(t)
	h := n.hub(t, time.Hour)
	hash := hashOf(6)
	n.open(hash, time.Now().Add(200*time.Millisecond))
	r := <-wait(ctxT(t), h, hash)
	if r.err != nil || r.inv.State != backend.StateOpen || !r.inv.Expired(time.Now()) {
		t.Fatalf("Wait on an expiring invoice: %+v, %v; want it open and expired", r.inv, r.err)
	}
}

// ErrUnavailable from a lookup is retried; any other error is returned as
// it is.
func TestLookupErrors(t *testing.T) {
	n := newNode(t)
	h := n.hub(t, 20*time.Millisecond)
	hash := hashOf(7)
	n.open(hash, time.Now().Add(time.Hour))
	n.set(func(n *node) { n.refuse = true; n.down = fmt.Errorf("node: %w", backend.ErrUnavailable) })
	ch := wait(ctxT(t), h, hash)
	n.settle(t, hash, false)
	n.set(func(n *node) { n.down = nil })
	if r := <-ch; r.err != nil || r.inv.State != backend.StateSettled {
		t.Fatalf("Wait across an unavailable node: %+v, %v", r.inv, r.err)
	}

	if _, err := h.Wait(ctxT(t), hashOf(8)); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Wait on an unknown invoice: %v, want ErrNotFound", err)
	}
}

// Close ends waits with ErrClosed and stops the socket; a Wait after Close
// starts no socket and still ends.
func TestCloseEndsWaits(t *testing.T) {
	n := newNode(t)
	h := n.hub(t, time.Hour)
	hash := hashOf(9)
	n.open(hash, time.Now().Add(time.Hour))
	ctx := ctxT(t)
	ch := wait(ctx, h, hash)
	until(t, "connected", h.Connected)
	h.Close()
	if r := <-ch; !errors.Is(r.err, ErrClosed) || ctx.Err() != nil {
		t.Fatalf("Wait after Close: %v (ctx %v), want ErrClosed", r.err, ctx.Err())
	}
	if h.Running() || h.Connected() {
		t.Fatal("socket loop still running after Close")
	}
	if _, err := h.Wait(ctx, hash); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait on a closed hub: %v, want ErrClosed", err)
	}
	if h.Running() {
		t.Fatal("Wait on a closed hub started a socket loop")
	}
	h.Close() // twice is fine
}
