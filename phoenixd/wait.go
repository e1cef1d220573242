package phoenixd

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

// connectedPoll is how often a waiter still looks its invoice up while the
// websocket is up, as a guard against an event phoenixd never sent.
const connectedPoll = 30 * time.Second

// wsEvent is one message of phoenixd's /websocket stream (ApiEvent in
// JsonSerializers.kt). Only "payment_received" exists in 0.8.0.
type wsEvent struct {
	Type        string `json:"type"`
	Timestamp   int64  `json:"timestamp"`
	AmountSat   int64  `json:"amountSat"`
	PaymentHash string `json:"paymentHash"`
	ExternalID  string `json:"externalId"`
}

// WaitInvoice implements backend.Waiter: it returns the invoice once it is
// paid, or once it expires unpaid, or ctx's error. Events come from
// phoenixd's websocket; see the package documentation for the fallback.
func (c *Client) WaitInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	s := c.hub.subscribe(hash)
	defer c.hub.unsubscribe(s)
	for {
		wait := c.poll
		inv, err := c.LookupInvoice(ctx, hash)
		switch {
		case err == nil:
			if inv.State != backend.StateOpen || inv.Expired(time.Now()) {
				return inv, nil
			}
			if c.hub.connected() {
				wait = connectedPoll
			}
			if until := time.Until(inv.ExpiresAt); !inv.ExpiresAt.IsZero() && until < wait {
				wait = until
			}
		case ctx.Err() != nil:
			return nil, fmt.Errorf("phoenixd: wait for invoice %s: %w", hash, ctx.Err())
		case !errors.Is(err, backend.ErrUnavailable):
			return nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-s.ch:
		case <-t.C:
		case <-c.hub.done:
			t.Stop()
			return nil, fmt.Errorf("phoenixd: %w: client closed while waiting for invoice %s", backend.ErrUnavailable, hash)
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("phoenixd: wait for invoice %s: %w", hash, ctx.Err())
		}
		t.Stop()
	}
}

// hub keeps one websocket to phoenixd while anyone waits, and wakes the
// waiters of each hash an event names. On every connection and every drop it
// wakes all waiters, so they look up at once: a payment that arrived while
// the socket was down is found then rather than at the next poll.
type hub struct {
	c    *Client
	done chan struct{} // closed by close

	mu     sync.Mutex
	subs   map[backend.PaymentHash]map[*sub]struct{}
	n      int
	gen    int // generation of the running loop; stale loops must not touch up
	up     bool
	cancel context.CancelFunc
	closed bool
	warned bool // the 401 warning is logged once per Client, not per redial
}

type sub struct {
	hash backend.PaymentHash
	ch   chan struct{} // capacity 1: a pending wake-up is enough
}

func newHub(c *Client) *hub {
	return &hub{c: c, done: make(chan struct{}), subs: map[backend.PaymentHash]map[*sub]struct{}{}}
}

func (h *hub) subscribe(hash backend.PaymentHash) *sub {
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
		go h.run(ctx, h.gen)
	}
	return s
}

func (h *hub) unsubscribe(s *sub) {
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

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.done)
	if h.cancel != nil {
		h.cancel()
		h.cancel = nil
	}
	h.up = false
}

func (h *hub) connected() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.up
}

func (h *hub) setUp(gen int, up bool) {
	h.mu.Lock()
	if gen == h.gen && h.cancel != nil {
		h.up = up
	}
	h.mu.Unlock()
	h.wakeAll()
}

func (h *hub) wake(hash backend.PaymentHash) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[hash] {
		select {
		case s.ch <- struct{}{}:
		default:
		}
	}
}

func (h *hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.subs {
		for s := range m {
			select {
			case s.ch <- struct{}{}:
			default:
			}
		}
	}
}

// run dials, reads events and redials with backoff until ctx ends.
func (h *hub) run(ctx context.Context, gen int) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := h.session(ctx, gen)
		if ctx.Err() != nil {
			return
		}
		h.c.log.Debug("phoenixd: websocket down, waiters poll", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

// session holds one websocket connection until it fails.
func (h *hub) session(ctx context.Context, gen int) error {
	dialCtx, cancel := context.WithTimeout(ctx, h.c.dialTO)
	defer cancel()
	u := *h.c.base
	u.Path = h.c.base.Path + "/websocket"
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	hdr := http.Header{}
	hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(":"+h.c.password)))
	conn, resp, err := websocket.Dial(dialCtx, u.String(), &websocket.DialOptions{HTTPClient: h.c.http, HTTPHeader: hdr})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			h.mu.Lock()
			warn := !h.warned
			h.warned = true
			h.mu.Unlock()
			if warn {
				h.c.log.Warn("phoenixd: websocket refused the password; waiters fall back to polling")
			}
		}
		return err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 16)
	h.setUp(gen, true)
	defer h.setUp(gen, false)
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		var ev wsEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			h.c.log.Debug("phoenixd: unreadable websocket message", "err", err)
			continue
		}
		if ev.Type != "payment_received" {
			continue
		}
		hash, err := backend.ParsePaymentHash(ev.PaymentHash)
		if err != nil {
			continue
		}
		h.wake(hash)
	}
}
