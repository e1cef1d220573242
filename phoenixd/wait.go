package phoenixd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/eventwait"
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
func (c *driver) WaitInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	inv, err := c.hub.Wait(ctx, hash)
	switch {
	case errors.Is(err, eventwait.ErrClosed):
		return nil, fmt.Errorf("phoenixd: %w: closed while waiting for invoice %s", backend.ErrClosed, hash)
	case err != nil && ctx.Err() != nil:
		// A lookup cut short by ctx is reported as ctx's error.
		return nil, fmt.Errorf("phoenixd: wait for invoice %s: %w", hash, ctx.Err())
	}
	return inv, err
}

// newHub returns the /websocket event hub of c. On every connection and
// every drop it wakes all waiters, so a payment that arrived while the
// socket was down is found then rather than at the next poll.
func newHub(c *driver) *eventwait.Hub {
	var warned atomic.Bool // the 401 warning is logged once per Client, not per redial
	return eventwait.New(eventwait.Config{
		Name: "phoenixd",
		Log:  c.log,
		Dial: func(ctx context.Context) (*websocket.Conn, error) {
			return c.dialEvents(ctx, &warned)
		},
		Event: c.paymentReceived,
		// Doubling while under 5 s, as this adapter always has: at most 6.4 s.
		MaxBackoff:     6400 * time.Millisecond,
		PauseAfterDrop: true,
		Lookup:         c.boundedLookup,
		Poll:           c.poll,
		ConnectedPoll:  connectedPoll,
	})
}

// boundedLookup is the hub's lookup: its waits have no deadline, each of
// its calls does.
func (c *driver) boundedLookup(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	ctx, cancel := context.WithTimeout(ctx, c.reqTO)
	defer cancel()
	return c.LookupInvoice(ctx, hash)
}

func (c *driver) dialEvents(ctx context.Context, warned *atomic.Bool) (*websocket.Conn, error) {
	dialCtx, cancel := context.WithTimeout(ctx, c.dialTO)
	defer cancel()
	conn, resp, err := c.api.DialWebsocket(dialCtx, "/websocket")
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized && !warned.Swap(true) {
			c.log.Warn("phoenixd: websocket refused the password; waiters fall back to polling")
		}
		return nil, err
	}
	conn.SetReadLimit(1 << 16)
	return conn, nil
}

// paymentReceived picks the payment hash out of a payment_received event.
func (c *driver) paymentReceived(data []byte) (backend.PaymentHash, bool) {
	var ev wsEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		c.log.Debug("phoenixd: unreadable websocket message", "err", err)
		return backend.PaymentHash{}, false
	}
	if ev.Type != "payment_received" {
		return backend.PaymentHash{}, false
	}
	hash, err := backend.ParsePaymentHash(ev.PaymentHash)
	return hash, err == nil
}
