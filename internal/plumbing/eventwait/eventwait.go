// Package eventwait is the invoice wait shared by the adapters whose node
// pushes payment events over a websocket (Eclair's /ws, phoenixd's
// /websocket). A Hub keeps one socket per backend, open only while someone
// waits and redialled with backoff when it drops, and wakes the waiters of
// each payment hash an event names. Wait looks the invoice up on every
// wake-up and polls meanwhile: slowly while the socket is up (as a guard
// against lost events), faster while it is down. What differs between nodes
// (how to dial, how to read an event, the intervals) comes in a Config.
package eventwait

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/l402kit/l402kit/backend"
)

// ErrClosed is what Wait returns once the Hub is closed; adapters turn it
// into their own backend.ErrUnavailable error.
var ErrClosed = errors.New("eventwait: hub closed")

const (
	minBackoff = 100 * time.Millisecond
	pingWait   = 5 * time.Second
	// expirySlack is added to a wait that ends at the invoice's expiry, so
	// the look that follows sees the invoice expired rather than a hair
	// early (wall clock against the timer's monotonic one).
	expirySlack = 10 * time.Millisecond
)

// Config says how one node's events are read and its invoices looked up.
type Config struct {
	// Name prefixes logs and errors ("eclair", "phoenixd").
	Name string
	// Log receives socket diagnostics; nil means slog.Default().
	Log *slog.Logger
	// Dial opens the event socket (setting its read limit). Its error is
	// only logged: waiters poll until a dial succeeds.
	Dial func(ctx context.Context) (*websocket.Conn, error)
	// Event returns the payment hash a message reports as received, and
	// false for any other message.
	Event func(msg []byte) (backend.PaymentHash, bool)
	// Ping, when positive, is how often the socket is pinged, so that a peer
	// that vanished without closing the TCP connection is noticed.
	Ping time.Duration
	// MaxBackoff caps the pause between dials, which starts at 100 ms and
	// doubles.
	MaxBackoff time.Duration
	// PauseAfterDrop counts a dropped socket like a failed dial: the pause
	// is waited and keeps growing. Without it a socket that was up is
	// redialled at once and the pause starts again from 100 ms.
	PauseAfterDrop bool

	// Lookup reads the invoice's current state.
	Lookup func(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error)
	// Poll is the pause between looks while the socket is down or the last
	// look failed; ConnectedPoll the pause while the socket is up.
	Poll, ConnectedPoll time.Duration
}

// Hub is one backend's event socket and its waiters. It is safe for
// concurrent use.
type Hub struct {
	cfg  Config
	done chan struct{} // closed by Close

	mu     sync.Mutex
	subs   map[backend.PaymentHash]map[*sub]struct{}
	n      int
	cancel context.CancelFunc // stops the running loop; nil when none
	gen    uint64             // which loop may change up
	up     bool
	closed bool
	ended  chan struct{} // closed when the current loop has returned
}

// sub is one waiter's doorbell: capacity 1, so a ring while the waiter is
// busy is kept and ringing never blocks the hub.
type sub struct {
	hash backend.PaymentHash
	ch   chan struct{}
}

func (s *sub) ring() {
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

// New returns a Hub; it dials nothing until the first Wait.
func New(cfg Config) *Hub {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Hub{cfg: cfg, done: make(chan struct{}), subs: map[backend.PaymentHash]map[*sub]struct{}{}}
}

// Wait returns the invoice once it is no longer open or has expired. It
// looks the invoice up at once, on each event for hash, on each connection
// or drop of the socket (so a payment made while the socket was down is seen
// then), and every ConnectedPoll or Poll otherwise. A lookup that fails with
// backend.ErrUnavailable while ctx lives is retried; any other lookup error is
// returned as it is. ctx ending in between gives ctx's error; Close gives
// ErrClosed.
func (h *Hub) Wait(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	s := h.subscribe(hash)
	defer h.unsubscribe(s)
	for {
		wait := h.cfg.Poll
		inv, err := h.cfg.Lookup(ctx, hash)
		switch {
		case err == nil:
			if inv.State != backend.StateOpen || inv.Expired(time.Now()) {
				return inv, nil
			}
			if h.Connected() {
				wait = h.cfg.ConnectedPoll
			}
			if !inv.ExpiresAt.IsZero() {
				if left := time.Until(inv.ExpiresAt); left < wait {
					wait = left + expirySlack
				}
			}
		case !errors.Is(err, backend.ErrUnavailable) || ctx.Err() != nil:
			return nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-s.ch:
		case <-t.C:
		case <-h.done:
			t.Stop()
			return nil, fmt.Errorf("%s: wait for invoice %s: %w", h.cfg.Name, hash, ErrClosed)
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%s: wait for invoice %s: %w", h.cfg.Name, hash, ctx.Err())
		}
		t.Stop()
	}
}

// Connected reports whether the socket is up.
func (h *Hub) Connected() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.up
}

// Running reports whether a socket loop runs, which it does only while
// someone waits.
func (h *Hub) Running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cancel != nil
}

// Close ends waits in progress with ErrClosed and stops the socket,
// returning once its loop has ended.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	close(h.done)
	cancel, ended := h.cancel, h.ended
	h.cancel = nil
	h.up = false
	h.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if ended != nil {
		<-ended // the last loop; any earlier one has ended or is ending
	}
}

func (h *Hub) subscribe(hash backend.PaymentHash) *sub {
	s := &sub{hash: hash, ch: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[hash] == nil {
		h.subs[hash] = map[*sub]struct{}{}
	}
	h.subs[hash][s] = struct{}{}
	h.n++
	if h.cancel == nil && !h.closed {
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel = cancel
		h.gen++
		h.ended = make(chan struct{})
		go h.run(ctx, h.gen, h.ended)
	}
	return s
}

// unsubscribe removes a waiter; the last one out closes the socket, so an
// idle backend holds no connection.
func (h *Hub) unsubscribe(s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[s.hash], s)
	if len(h.subs[s.hash]) == 0 {
		delete(h.subs, s.hash)
	}
	h.n--
	if h.n == 0 && h.cancel != nil {
		h.cancel()
		h.cancel = nil
		h.up = false
	}
}

// setUp records the socket's state, if gen is still the current loop, and
// rings every waiter so each looks its invoice up again.
func (h *Hub) setUp(gen uint64, up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen != h.gen || h.cancel == nil {
		return
	}
	h.up = up
	for _, m := range h.subs {
		for s := range m {
			s.ring()
		}
	}
}

func (h *Hub) notify(hash backend.PaymentHash) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[hash] {
		s.ring()
	}
}

// run dials and reads events until ctx ends, redialling with backoff.
func (h *Hub) run(ctx context.Context, gen uint64, ended chan struct{}) {
	defer close(ended)
	backoff := minBackoff
	for ctx.Err() == nil {
		conn, err := h.cfg.Dial(ctx)
		if err == nil {
			if !h.cfg.PauseAfterDrop {
				backoff = minBackoff
			}
			h.setUp(gen, true)
			err = h.read(ctx, conn)
			h.setUp(gen, false)
			conn.CloseNow()
			if ctx.Err() != nil {
				return
			}
			h.cfg.Log.Warn(h.cfg.Name+": websocket dropped; waiters poll until it is back", "err", err)
			if !h.cfg.PauseAfterDrop {
				continue
			}
		} else if ctx.Err() != nil {
			return
		} else {
			h.cfg.Log.Debug(h.cfg.Name+": websocket dial failed; waiters poll meanwhile", "err", err, "retry_in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, h.cfg.MaxBackoff)
	}
}

// read hands events to waiters until the socket fails.
func (h *Hub) read(ctx context.Context, conn *websocket.Conn) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if h.cfg.Ping > 0 {
		go h.ping(rctx, conn)
	}
	for {
		_, msg, err := conn.Read(rctx)
		if err != nil {
			return err
		}
		if hash, ok := h.cfg.Event(msg); ok {
			h.notify(hash)
		}
	}
}

// ping closes conn when a ping goes unanswered, which ends read.
func (h *Hub) ping(ctx context.Context, conn *websocket.Conn) {
	t := time.NewTicker(h.cfg.Ping)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, pingWait)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				conn.CloseNow()
				return
			}
		}
	}
}
