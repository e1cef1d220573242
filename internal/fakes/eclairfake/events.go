package eclairfake

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/l402kit/l402kit/backend"
)

// watch follows an invoice on the memory node until it is paid, then
// announces payment-received on the websocket, as Eclair's event stream
// does. It keeps going while the listener is stopped: the node receives
// payments whether or not anyone is connected to its API.
func (s *Server) watch(hash backend.PaymentHash) {
	s.mu.Lock()
	if s.closed || s.watched[hash] {
		s.mu.Unlock()
		return
	}
	s.watched[hash] = true
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		for {
			inv, err := s.b.WaitInvoice(s.ctx, hash)
			if err != nil {
				if s.ctx.Err() != nil || !errors.Is(err, backend.ErrUnavailable) {
					return
				}
				// The node is down; look again shortly.
				select {
				case <-s.ctx.Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
			if inv.State == backend.StateSettled {
				s.broadcast(paymentReceivedEvent{
					Type:        "payment-received",
					PaymentHash: hash.String(),
					Parts: []receivedPart{{
						ChannelID:    randomHex32(),
						RemoteNodeID: s.node.NodeID(),
						Amount:       int64(inv.AmountReceived),
						ReceivedAt:   millis(inv.SettledAt),
					}},
				})
			}
			return
		}
	}()
}

// wsClient is one connected websocket. Eclair feeds each socket from a
// bounded queue that drops new events when full; so does the fake.
type wsClient struct {
	conn *websocket.Conn
	out  chan []byte
}

func (s *Server) broadcast(ev any) {
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.ws {
		select {
		case c.out <- b:
		default:
		}
	}
}

func (s *Server) webSocket(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	off := s.noWS
	s.mu.Unlock()
	if off {
		writeError(w, http.StatusServiceUnavailable, "events turned off by the test")
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered the client already.
	}
	c := &wsClient{conn: conn, out: make(chan []byte, 10)}
	s.mu.Lock()
	if s.closed || s.noWS {
		s.mu.Unlock()
		conn.CloseNow()
		return
	}
	s.ws[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.ws, c)
		s.mu.Unlock()
		conn.CloseNow()
	}()
	// Eclair ignores what clients send; reading still has to go on for
	// pings and the close handshake.
	ctx := conn.CloseRead(s.ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-c.out:
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := conn.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				return
			}
		}
	}
}
