// Package nostrrelay is a NIP-01 relay on loopback for tests: the relay the
// nwc adapter and wallet service talk through, since no relay can be
// installed on the machines the suite runs on. It is as strict as public
// relays are: it checks every event's id and Schnorr signature, honours the
// filters clients send (ids, kinds, authors, tag filters such as #p and #e,
// since, until, limit), keeps regular and replaceable events but never
// ephemeral ones (kinds 20000-29999, which it only forwards to live
// subscriptions), refuses events whose NIP-40 expiration has passed, ends
// each subscription's stored events with EOSE and answers every EVENT with
// OK. Fault injection (SetFault, DisconnectAll) lets tests drop, delay or
// cut traffic the way unreliable relays do.
package nostrrelay

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
	nostr "github.com/nbd-wtf/go-nostr"
)

// maxMessage bounds one client message; NIP-47 asks relays to take at least
// 64 KiB.
const maxMessage = 1 << 20

// Fault is what the relay does with one accepted event.
type Fault struct {
	// Drop acknowledges the event (OK true, as a lossy relay does) but
	// neither stores nor forwards it.
	Drop bool
	// Delay holds the event back this long before storing and forwarding.
	Delay time.Duration
	// Disconnect closes every client connection right after the event is
	// acknowledged (and forwarded, unless dropped or delayed).
	Disconnect bool
}

// Relay is a running relay. It is safe for concurrent use.
type Relay struct {
	addr string

	srv     *http.Server
	stopped bool

	mu     sync.Mutex
	stored []*nostr.Event
	ids    map[string]bool
	conns  map[*conn]struct{}
	fault  func(*nostr.Event) Fault
	seen   []nostr.Event
	wg     sync.WaitGroup
	closed bool
}

// Start listens on a loopback port and serves until Close.
func Start() (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{addr: ln.Addr().String(), ids: map[string]bool{}, conns: map[*conn]struct{}{}}
	r.serve(ln)
	return r, nil
}

func (r *Relay) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	r.mu.Lock()
	r.srv, r.stopped = srv, false
	r.mu.Unlock()
	go srv.Serve(ln)
}

// URL is the relay's ws:// address.
func (r *Relay) URL() string { return "ws://" + r.addr }

// Stop takes the relay down as a crash or restart does: the listener closes
// and every connection drops. Stored events survive for Resume.
func (r *Relay) Stop() {
	r.mu.Lock()
	r.stopped = true
	srv := r.srv
	r.mu.Unlock()
	srv.Close()
	r.DisconnectAll()
}

// Resume listens again on the same address after Stop.
func (r *Relay) Resume() error {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		return err
	}
	r.serve(ln)
	return nil
}

// Close stops the relay and drops every connection.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	srv := r.srv
	r.mu.Unlock()
	err := srv.Close()
	r.DisconnectAll()
	r.wg.Wait()
	return err
}

// SetFault makes f decide, for every event the relay accepts from now on,
// whether it is dropped, delayed or followed by a disconnection; nil
// restores normal service.
func (r *Relay) SetFault(f func(*nostr.Event) Fault) {
	r.mu.Lock()
	r.fault = f
	r.mu.Unlock()
}

// DisconnectAll closes every client connection at once, as a relay that
// restarts does; clients see their sockets drop.
func (r *Relay) DisconnectAll() {
	r.mu.Lock()
	cs := make([]*conn, 0, len(r.conns))
	for c := range r.conns {
		cs = append(cs, c)
	}
	r.mu.Unlock()
	for _, c := range cs {
		c.ws.CloseNow()
	}
}

// Seen returns a copy of every event the relay accepted (valid id and
// signature), in arrival order, including ephemeral and dropped ones, for
// tests that check what was published.
func (r *Relay) Seen() []nostr.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// Connections is the number of client connections open now.
func (r *Relay) Connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// conn is one client: its socket and its subscriptions.
type conn struct {
	ws   *websocket.Conn
	wmu  sync.Mutex
	smu  sync.Mutex
	subs map[string]nostr.Filters
}

func (c *conn) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.ws.CloseNow()
	}
}

func (r *Relay) serveHTTP(w http.ResponseWriter, req *http.Request) {
	ws, err := websocket.Accept(w, req, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(maxMessage)
	c := &conn{ws: ws, subs: map[string]nostr.Filters{}}
	r.mu.Lock()
	if r.closed || r.stopped {
		r.mu.Unlock()
		ws.CloseNow()
		return
	}
	r.conns[c] = struct{}{}
	r.wg.Add(1)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		ws.CloseNow()
		r.wg.Done()
	}()
	for {
		_, msg, err := ws.Read(context.Background())
		if err != nil {
			return
		}
		r.handle(c, msg)
	}
}

func (r *Relay) handle(c *conn, msg []byte) {
	var raw []json.RawMessage
	if err := json.Unmarshal(msg, &raw); err != nil || len(raw) < 2 {
		c.send([]any{"NOTICE", "error: message is not a JSON array with a label"})
		return
	}
	var label string
	if err := json.Unmarshal(raw[0], &label); err != nil {
		c.send([]any{"NOTICE", "error: message label is not a string"})
		return
	}
	switch label {
	case "EVENT":
		var ev nostr.Event
		if err := json.Unmarshal(raw[1], &ev); err != nil {
			c.send([]any{"NOTICE", "error: event is not valid JSON: " + err.Error()})
			return
		}
		r.publish(c, &ev)
	case "REQ":
		var id string
		if err := json.Unmarshal(raw[1], &id); err != nil || id == "" || len(id) > 64 {
			c.send([]any{"NOTICE", "error: REQ needs a subscription id of 1 to 64 characters"})
			return
		}
		if len(raw) < 3 {
			c.send([]any{"CLOSED", id, "error: REQ needs at least one filter"})
			return
		}
		filters := make(nostr.Filters, 0, len(raw)-2)
		for _, f := range raw[2:] {
			var flt nostr.Filter
			if err := json.Unmarshal(f, &flt); err != nil {
				c.send([]any{"CLOSED", id, "error: bad filter: " + err.Error()})
				return
			}
			filters = append(filters, flt)
		}
		c.smu.Lock()
		c.subs[id] = filters
		c.smu.Unlock()
		for _, ev := range r.query(filters) {
			c.send([]any{"EVENT", id, ev})
		}
		c.send([]any{"EOSE", id})
	case "CLOSE":
		var id string
		if err := json.Unmarshal(raw[1], &id); err != nil {
			c.send([]any{"NOTICE", "error: CLOSE needs a subscription id"})
			return
		}
		c.smu.Lock()
		delete(c.subs, id)
		c.smu.Unlock()
	default:
		c.send([]any{"NOTICE", "error: unknown message " + strconv.Quote(label)})
	}
}

// publish checks ev, answers OK and stores and forwards it.
func (r *Relay) publish(c *conn, ev *nostr.Event) {
	if !ev.CheckID() {
		c.send([]any{"OK", ev.ID, false, "invalid: event id does not match its content"})
		return
	}
	if ok, err := ev.CheckSignature(); !ok || err != nil {
		c.send([]any{"OK", ev.ID, false, "invalid: bad signature"})
		return
	}
	if exp := ev.Tags.GetFirst([]string{"expiration", ""}); exp != nil {
		at, err := strconv.ParseInt((*exp)[1], 10, 64)
		if err != nil {
			c.send([]any{"OK", ev.ID, false, "invalid: expiration tag is not a unix time"})
			return
		}
		if at <= time.Now().Unix() {
			c.send([]any{"OK", ev.ID, false, "invalid: event has expired"})
			return
		}
	}
	r.mu.Lock()
	if r.ids[ev.ID] {
		r.mu.Unlock()
		c.send([]any{"OK", ev.ID, true, "duplicate: already have this event"})
		return
	}
	r.ids[ev.ID] = true
	r.seen = append(r.seen, *ev)
	var f Fault
	if r.fault != nil {
		f = r.fault(ev)
	}
	r.mu.Unlock()

	// A real relay stores an event before it says OK, so a client that
	// queries after the OK finds it.
	switch {
	case f.Drop:
	case f.Delay > 0:
		time.AfterFunc(f.Delay, func() { r.accept(ev) })
	default:
		r.accept(ev)
	}
	c.send([]any{"OK", ev.ID, true, ""})
	if f.Disconnect {
		r.DisconnectAll()
	}
}

// accept stores ev (unless ephemeral) and forwards it to every matching
// live subscription.
func (r *Relay) accept(ev *nostr.Event) {
	r.mu.Lock()
	switch {
	case ev.IsEphemeral():
	case ev.IsReplaceable():
		r.stored = slices.DeleteFunc(r.stored, func(o *nostr.Event) bool {
			return o.Kind == ev.Kind && o.PubKey == ev.PubKey && o.CreatedAt <= ev.CreatedAt
		})
		r.stored = append(r.stored, ev)
	case ev.IsAddressable():
		d := ev.Tags.GetD()
		r.stored = slices.DeleteFunc(r.stored, func(o *nostr.Event) bool {
			return o.Kind == ev.Kind && o.PubKey == ev.PubKey && o.Tags.GetD() == d && o.CreatedAt <= ev.CreatedAt
		})
		r.stored = append(r.stored, ev)
	default:
		r.stored = append(r.stored, ev)
	}
	cs := make([]*conn, 0, len(r.conns))
	for c := range r.conns {
		cs = append(cs, c)
	}
	r.mu.Unlock()
	for _, c := range cs {
		c.smu.Lock()
		var ids []string
		for id, fs := range c.subs {
			if fs.Match(ev) {
				ids = append(ids, id)
			}
		}
		c.smu.Unlock()
		for _, id := range ids {
			c.send([]any{"EVENT", id, ev})
		}
	}
}

// query returns the stored events filters ask for: for each filter its
// newest matches up to its limit, oldest first overall, without repeats.
func (r *Relay) query(filters nostr.Filters) []*nostr.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []*nostr.Event
	for _, f := range filters {
		if f.LimitZero {
			continue
		}
		var m []*nostr.Event
		for i := len(r.stored) - 1; i >= 0; i-- {
			ev := r.stored[i]
			if f.Matches(ev) {
				m = append(m, ev)
			}
		}
		slices.SortStableFunc(m, func(a, b *nostr.Event) int { return int(b.CreatedAt) - int(a.CreatedAt) })
		if f.Limit > 0 && len(m) > f.Limit {
			m = m[:f.Limit]
		}
		for _, ev := range m {
			if !seen[ev.ID] {
				seen[ev.ID] = true
				out = append(out, ev)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b *nostr.Event) int { return int(a.CreatedAt) - int(b.CreatedAt) })
	return out
}
