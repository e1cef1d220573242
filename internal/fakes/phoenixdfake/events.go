package phoenixdfake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/l402kit/l402kit/backend"
)

func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		text(w, http.StatusMethodNotAllowed, "Invalid http method (use the correct GET/POST)")
		return
	}
	s.mu.Lock()
	noWS := s.noWS
	s.mu.Unlock()
	if noWS {
		text(w, http.StatusServiceUnavailable, "websocket unavailable")
		return
	}
	_, pw, ok := r.BasicAuth()
	authed := ok && s.passwordOK(pw, false)
	if !authed {
		for _, p := range strings.Split(r.Header.Get("Sec-WebSocket-Protocol"), ",") {
			if p = strings.TrimSpace(p); p != "" && s.passwordOK(p, false) {
				authed = true
			}
		}
	}
	if !authed {
		text(w, http.StatusUnauthorized, "Invalid authentication (use basic auth with the http password set in phoenix.conf)")
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.mu.Lock()
	if s.srv == nil || s.noWS { // stopped while upgrading
		s.mu.Unlock()
		cancel()
		c.CloseNow()
		return
	}
	s.conns[c] = cancel
	s.mu.Unlock()
	// phoenixd never reads from the socket; CloseRead answers pings and
	// notices when the client goes away.
	ctx = c.CloseRead(ctx)
	<-ctx.Done()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	cancel()
	c.CloseNow()
}

// wsEvent is a payment_received event as the websocket sends it (nulls left
// out); webhookEvent as webhooks send it (nulls written).
type wsEvent struct {
	Type        string  `json:"type"`
	Timestamp   int64   `json:"timestamp"`
	AmountSat   int64   `json:"amountSat"`
	PaymentHash string  `json:"paymentHash"`
	ExternalID  *string `json:"externalId,omitempty"`
}

type webhookEvent struct {
	Type        string  `json:"type"`
	Timestamp   int64   `json:"timestamp"`
	AmountSat   int64   `json:"amountSat"`
	PaymentHash string  `json:"paymentHash"`
	ExternalID  *string `json:"externalId"`
	PayerNote   *string `json:"payerNote"`
	PayerKey    *string `json:"payerKey"`
}

// watch follows an invoice on the memory node, whoever pays it, and emits
// payment_received when it settles, as phoenixd does when a payment arrives.
func (s *Server) watch(hash backend.PaymentHash) {
	s.mu.Lock()
	if s.watching[hash] {
		s.mu.Unlock()
		return
	}
	s.watching[hash] = true
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			inv, err := s.b.WaitInvoice(s.ctx, hash)
			if s.ctx.Err() != nil {
				return
			}
			if errors.Is(err, backend.ErrUnavailable) {
				select {
				case <-s.ctx.Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
			if err != nil {
				return
			}
			if inv.State == backend.StateSettled {
				s.emit(inv)
			}
			return // settled, canceled or expired: nothing more will happen
		}
	}()
}

func (s *Server) emit(inv *backend.Invoice) {
	s.mu.Lock()
	meta := s.meta[inv.PaymentHash]
	conns := make([]*websocket.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	now := time.Now().UnixMilli()
	ev := wsEvent{Type: "payment_received", Timestamp: now, AmountSat: inv.AmountReceived.Sats(), PaymentHash: inv.PaymentHash.String(), ExternalID: meta.externalID}
	msg, _ := json.MarshalIndent(ev, "", "    ")
	for _, c := range conns {
		ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			s.log.Debug("phoenixdfake: websocket write", "err", err)
		}
		cancel()
	}
	if s.cfg.WebhookSecret == "" {
		return
	}
	urls := append([]string(nil), s.cfg.WebhookURLs...)
	if meta.webhookURL != "" {
		urls = append(urls, meta.webhookURL)
	}
	body, _ := json.MarshalIndent(webhookEvent{Type: ev.Type, Timestamp: now, AmountSat: ev.AmountSat, PaymentHash: ev.PaymentHash, ExternalID: meta.externalID}, "", "    ")
	for _, u := range urls {
		s.postWebhook(u, body)
	}
}

func (s *Server) postWebhook(u string, body []byte) {
	m := hmac.New(sha256.New, []byte(s.cfg.WebhookSecret))
	m.Write(body)
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Phoenix-Signature", hex.EncodeToString(m.Sum(nil)))
	resp, err := s.hc.Do(req)
	if err != nil {
		s.log.Warn("phoenixdfake: webhook failure", "url", u, "err", err) // phoenixd logs and moves on too
		return
	}
	resp.Body.Close()
}
