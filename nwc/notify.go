package nwc

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	nostr "github.com/nbd-wtf/go-nostr"

	"github.com/l402kit/l402kit/backend"
)

// notifyOn has the watcher send payment_received (or, for a held hold
// invoice, hold_invoice_accepted) to the connection when inv leaves Open.
func (s *Service) notifyOn(c *connection, inv *backend.Invoice) {
	s.mu.Lock()
	s.watched[inv.PaymentHash] = watch{c: c, until: inv.ExpiresAt.Add(time.Minute)}
	s.mu.Unlock()
}

type watch struct {
	c     *connection
	until time.Time
}

// paidKeep is how long the service remembers a finished outgoing payment.
const paidKeep = 24 * time.Hour

// watchEvery is how often the watcher looks up the invoices it watches.
const watchEvery = 500 * time.Millisecond

// watcher is the one goroutine that watches new invoices for
// notifications, started with the service (not one per invoice, so a
// client's calls leave nothing running behind them).
func (s *Service) watcher() {
	defer s.wg.Done()
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		ws := make(map[backend.PaymentHash]watch, len(s.watched))
		for h, w := range s.watched {
			ws[h] = w
		}
		s.mu.Unlock()
		for h, w := range ws {
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			got, err := s.b.LookupInvoice(ctx, h)
			cancel()
			done := time.Now().After(w.until) || errors.Is(err, backend.ErrNotFound)
			if err == nil && got.State != backend.StateOpen {
				done = true
				s.notify(w.c, got)
			}
			if done {
				s.mu.Lock()
				delete(s.watched, h)
				s.mu.Unlock()
			}
		}
	}
}

// notify publishes one notification, NIP-44 (kind 23197) and NIP-04
// (kind 23196), as NIP-47 asks of a service that speaks both.
func (s *Service) notify(c *connection, got *backend.Invoice) {
	var kind string
	switch got.State {
	case backend.StateSettled:
		kind = notifyReceived
	case backend.StateHeld:
		kind = notifyHoldAccepted
	default:
		return
	}
	body, _ := json.Marshal(map[string]any{"notification_type": kind, "notification": txOf(got)})
	for _, k := range []struct {
		kind   int
		scheme string
	}{{KindNotification, encNIP44}, {KindNotifyNIP04, encNIP04}} {
		ciph, err := newCipher(k.scheme, c.clientPub, c.walletSK)
		if err != nil {
			continue
		}
		content, err := ciph.encrypt(string(body))
		if err != nil {
			continue
		}
		ev := &nostr.Event{Kind: k.kind, CreatedAt: nostr.Now(), Tags: nostr.Tags{{"p", c.clientPub}}, Content: content}
		if ev.Sign(c.walletSK) != nil {
			continue
		}
		pctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		s.pool.publish(pctx, ev)
		cancel()
	}
}
