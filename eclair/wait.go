package eclair

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/eventwait"
)

// WaitInvoice implements backend.Waiter. It listens for payment-received
// events on Eclair's /ws websocket, shared by all waits of a Backend, and
// looks the invoice up when an event names it. While the socket is down it
// looks every PollInterval instead (and once more as soon as the socket is
// back, for events missed meanwhile). An open invoice that reaches its
// expiry ends the wait as it stands; ctx ends it with ctx's error.
func (b *driver) WaitInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	inv, err := b.events.Wait(ctx, hash)
	if errors.Is(err, eventwait.ErrClosed) {
		return nil, fmt.Errorf("eclair: wait for invoice %s: %w", hash, backend.ErrClosed)
	}
	return inv, err
}

// newHub returns the /ws event hub of b.
func newHub(b *driver) *eventwait.Hub {
	return eventwait.New(eventwait.Config{
		Name:  "eclair",
		Log:   b.log,
		Dial:  b.dialEvents,
		Event: paymentReceived,
		// A ping notices a peer that vanished without closing the TCP
		// connection.
		Ping:       15 * time.Second,
		MaxBackoff: 5 * time.Second,
		Lookup:     b.boundedLookup,
		Poll:       b.poll,
		// Push is up; this slower look only covers events Eclair dropped
		// from a full socket queue.
		ConnectedPoll: 10 * b.poll,
	})
}

// boundedLookup is the hub's lookup: its waits have no deadline, each of
// its calls does.
func (b *driver) boundedLookup(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.LookupInvoice(ctx, hash)
}

func (b *driver) dialEvents(ctx context.Context) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, resp, err := b.api.DialWebsocket(dctx, "/ws")
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

// paymentReceived picks the payment hash out of a payment-received event.
func paymentReceived(msg []byte) (backend.PaymentHash, bool) {
	var ev event
	if json.Unmarshal(msg, &ev) != nil || ev.Type != "payment-received" {
		return backend.PaymentHash{}, false
	}
	hash, err := backend.ParsePaymentHash(ev.PaymentHash)
	return hash, err == nil
}
