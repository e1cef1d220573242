package eclair

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/l402kit/l402kit/backend"
)

// WaitInvoice implements backend.Waiter. It listens for payment-received
// events on Eclair's /ws websocket, shared by all waits of a Backend, and
// looks the invoice up when an event names it. While the socket is down it
// looks every PollInterval instead (and once more as soon as the socket is
// back, for events missed meanwhile). An open invoice that reaches its
// expiry ends the wait as it stands; ctx ends it with ctx's error.
func (b *Backend) WaitInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	s, err := b.events.subscribe(hash)
	if err != nil {
		return nil, err
	}
	defer b.events.unsubscribe(hash, s)
	for {
		inv, err := b.LookupInvoice(ctx, hash)
		switch {
		case err == nil:
			if inv.State != backend.StateOpen || inv.Expired(time.Now()) {
				return inv, nil
			}
		case errors.Is(err, backend.ErrUnavailable) && ctx.Err() == nil:
			// Down for now; keep waiting for it to come back.
		default:
			return nil, err
		}
		interval := b.poll
		if b.events.isConnected() {
			// Push is up; this slower look only covers events Eclair
			// dropped from a full socket queue.
			interval = 10 * b.poll
		}
		if inv != nil {
			if left := time.Until(inv.ExpiresAt); left < interval {
				interval = left + 10*time.Millisecond
			}
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("eclair: wait for invoice %s: %w", hash, ctx.Err())
		case <-b.closed:
			t.Stop()
			return nil, fmt.Errorf("eclair: wait for invoice %s: %w: backend closed", hash, backend.ErrUnavailable)
		case <-s.ch:
		case <-t.C:
		}
		t.Stop()
	}
}

// hub keeps one websocket to /ws open while anyone waits, and tells the
// waiters of a payment hash when an event names it, and every waiter when
// the socket connects or drops.
type hub struct {
	b *Backend

	mu        sync.Mutex
	subs      map[backend.PaymentHash]map[*sub]struct{}
	n         int
	cancel    context.CancelFunc // stops the running loop; nil when none
	gen       uint64             // which loop may change connected
	connected bool
	closed    bool
	done      chan struct{} // closed when the current loop has ended
}

// sub is one waiter's doorbell: a buffered channel, so a ring while the
// waiter is busy is kept and rings never block the hub.
type sub struct{ ch chan struct{} }

func newHub(b *Backend) *hub {
	return &hub{b: b, subs: map[backend.PaymentHash]map[*sub]struct{}{}}
}

func (s *sub) ring() {
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

func (h *hub) subscribe(hash backend.PaymentHash) (*sub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, fmt.Errorf("eclair: %w: backend closed", backend.ErrUnavailable)
	}
	s := &sub{ch: make(chan struct{}, 1)}
	if h.subs[hash] == nil {
		h.subs[hash] = map[*sub]struct{}{}
	}
	h.subs[hash][s] = struct{}{}
	h.n++
	if h.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel = cancel
		h.gen++
		h.done = make(chan struct{})
		go h.run(ctx, h.gen, h.done)
	}
	return s, nil
}

// unsubscribe removes a waiter; the last one out closes the socket, so an
// idle Backend holds no connection.
func (h *hub) unsubscribe(hash backend.PaymentHash, s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[hash][s]; !ok {
		return
	}
	delete(h.subs[hash], s)
	if len(h.subs[hash]) == 0 {
		delete(h.subs, hash)
	}
	h.n--
	if h.n == 0 && h.cancel != nil {
		h.cancel()
		h.cancel = nil
		h.connected = false
	}
}

func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	cancel, done := h.cancel, h.done
	h.cancel = nil
	h.connected = false
	h.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if done != nil {
		<-done // the last loop; any earlier one was canceled already
	}
}

func (h *hub) isConnected() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.connected
}

// setConnected records the socket's state, if gen is still the current
// loop, and rings every waiter so each looks its invoice up again.
func (h *hub) setConnected(gen uint64, up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen != h.gen || h.cancel == nil {
		return
	}
	h.connected = up
	for _, m := range h.subs {
		for s := range m {
			s.ring()
		}
	}
}

func (h *hub) notify(hash backend.PaymentHash) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[hash] {
		s.ring()
	}
}

// run dials /ws and reads events until ctx ends, redialling with backoff
// when the socket drops.
func (h *hub) run(ctx context.Context, gen uint64, done chan struct{}) {
	defer close(done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := h.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			h.b.log.Debug("eclair: websocket dial failed; polling meanwhile", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if backoff *= 2; backoff > 5*time.Second {
				backoff = 5 * time.Second
			}
			continue
		}
		backoff = 100 * time.Millisecond
		h.setConnected(gen, true)
		err = h.read(ctx, conn)
		h.setConnected(gen, false)
		conn.CloseNow()
		if ctx.Err() == nil {
			h.b.log.Warn("eclair: websocket dropped; polling until it is back", "err", err)
		}
	}
}

func (h *hub) dial(ctx context.Context) (*websocket.Conn, error) {
	u := *h.b.base
	u.Path += "/ws"
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	hdr := http.Header{}
	hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(":"+h.b.password)))
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, u.String(), &websocket.DialOptions{HTTPClient: h.b.http, HTTPHeader: hdr})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("eclair: /ws: %w: authentication failed, check the API password", backend.ErrInvalid)
		}
		return nil, fmt.Errorf("eclair: /ws: %w: %v", backend.ErrUnavailable, err)
	}
	// Eclair's events (payment-failed with routes) can be large.
	conn.SetReadLimit(8 << 20)
	return conn, nil
}

// read hands payment-received events to waiters until the socket fails. A
// ping every 15 s notices a peer that vanished without closing the TCP
// connection.
func (h *hub) read(ctx context.Context, conn *websocket.Conn) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				pctx, pcancel := context.WithTimeout(rctx, 5*time.Second)
				err := conn.Ping(pctx)
				pcancel()
				if err != nil {
					conn.CloseNow()
					return
				}
			}
		}
	}()
	for {
		_, msg, err := conn.Read(rctx)
		if err != nil {
			return err
		}
		var ev event
		if json.Unmarshal(msg, &ev) != nil || ev.Type != "payment-received" {
			continue
		}
		hash, err := backend.ParsePaymentHash(ev.PaymentHash)
		if err != nil {
			continue
		}
		h.notify(hash)
	}
}
