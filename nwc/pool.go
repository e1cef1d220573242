package nwc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	nostr "github.com/nbd-wtf/go-nostr"
)

// maxMessage bounds one relay message; NIP-47 asks relays to carry 64 KiB.
const maxMessage = 1 << 20

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// dedupeKeep is how many event ids the pool remembers, so that the
	// same event arriving through several relays is handled once.
	dedupeKeep = 4096
)

// errNoRelay means no relay is connected: nothing was sent.
var errNoRelay = errors.New("no relay is connected")

// pool is the client side of NIP-01 over every relay of a connection: one
// socket per relay, redialled with backoff, one live subscription (re-sent
// on every connection), events handed on once whichever relay brings them.
type pool struct {
	log       *slog.Logger
	dialTO    time.Duration
	relays    []*relayConn
	onEvent   func(*nostr.Event)
	onConnect func()

	fmu     sync.Mutex
	filters nostr.Filters

	dmu   sync.Mutex
	seen  map[string]bool
	order []string

	nextSub atomic.Int64
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// relayConn is one relay's socket and the OKs and queries waiting on it.
type relayConn struct {
	p   *pool
	url string

	mu      sync.Mutex
	ws      *websocket.Conn
	oks     map[string]chan okResult
	queries map[string]chan *nostr.Event // nil event: EOSE or CLOSED
	up      chan struct{}                // closed while connected
	wmu     sync.Mutex
}

type okResult struct {
	ok  bool
	msg string
}

func newPool(urls []string, dialTO time.Duration, log *slog.Logger, filters nostr.Filters, onEvent func(*nostr.Event), onConnect func()) *pool {
	p := &pool{log: log, dialTO: dialTO, filters: filters, onEvent: onEvent, onConnect: onConnect, seen: map[string]bool{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for _, u := range urls {
		rc := &relayConn{p: p, url: u, oks: map[string]chan okResult{}, queries: map[string]chan *nostr.Event{}, up: make(chan struct{})}
		p.relays = append(p.relays, rc)
		p.wg.Add(1)
		go rc.loop()
	}
	return p
}

// waitConnected returns once one relay is connected, or ctx's error.
func (p *pool) waitConnected(ctx context.Context) error {
	cases := make(chan struct{}, len(p.relays))
	stop := make(chan struct{})
	defer close(stop)
	for _, rc := range p.relays {
		up := rc.upChan()
		go func() {
			select {
			case <-up:
				cases <- struct{}{}
			case <-stop:
			}
		}()
	}
	select {
	case <-cases:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// connected counts the relays connected now.
func (p *pool) connected() int {
	n := 0
	for _, rc := range p.relays {
		if rc.conn() != nil {
			n++
		}
	}
	return n
}

// setFilters replaces the live subscription on every connected relay.
func (p *pool) setFilters(f nostr.Filters) {
	p.fmu.Lock()
	p.filters = f
	p.fmu.Unlock()
	for _, rc := range p.relays {
		if ws := rc.conn(); ws != nil {
			rc.subscribe(ws)
		}
	}
}

func (p *pool) close() {
	p.cancel()
	for _, rc := range p.relays {
		if ws := rc.conn(); ws != nil {
			ws.CloseNow()
		}
	}
	p.wg.Wait()
}

// firstSight reports whether id is new to the pool, remembering it.
func (p *pool) firstSight(id string) bool {
	p.dmu.Lock()
	defer p.dmu.Unlock()
	if p.seen[id] {
		return false
	}
	p.seen[id] = true
	p.order = append(p.order, id)
	if len(p.order) > dedupeKeep {
		delete(p.seen, p.order[0])
		p.order = p.order[1:]
	}
	return true
}

// publish sends ev to every connected relay and returns once one accepts it
// (OK true). written reports whether ev reached at least one socket, so a
// caller knows whether the wallet may have seen it even when err is set.
func (p *pool) publish(ctx context.Context, ev *nostr.Event) (written bool, err error) {
	msg, err := json.Marshal([]any{"EVENT", ev})
	if err != nil {
		return false, err
	}
	res := make(chan okResult, len(p.relays))
	sent := 0
	var lastErr error = errNoRelay
	for _, rc := range p.relays {
		ws := rc.conn()
		if ws == nil {
			continue
		}
		ch := make(chan okResult, 1)
		rc.mu.Lock()
		rc.oks[ev.ID] = ch
		rc.mu.Unlock()
		if err := rc.write(ctx, ws, msg); err != nil {
			rc.mu.Lock()
			delete(rc.oks, ev.ID)
			rc.mu.Unlock()
			lastErr = err
			continue
		}
		sent++
		go func() {
			defer func() {
				rc.mu.Lock()
				delete(rc.oks, ev.ID)
				rc.mu.Unlock()
			}()
			select {
			case r := <-ch:
				res <- r
			case <-ctx.Done():
				res <- okResult{msg: ctx.Err().Error()}
			}
		}()
	}
	if sent == 0 {
		return false, lastErr
	}
	var refusals []string
	for range sent {
		r := <-res
		if r.ok {
			return true, nil
		}
		refusals = append(refusals, r.msg)
	}
	if err := ctx.Err(); err != nil {
		return true, err
	}
	return true, fmt.Errorf("every relay refused the event: %v", refusals)
}

// query asks every connected relay for the stored events f matches and
// returns them once each has sent EOSE (or ctx ends).
func (p *pool) query(ctx context.Context, f nostr.Filter) ([]*nostr.Event, error) {
	id := "q" + strconv.FormatInt(p.nextSub.Add(1), 10)
	msg, _ := json.Marshal([]any{"REQ", id, f})
	closeMsg, _ := json.Marshal([]any{"CLOSE", id})
	type stream struct {
		rc *relayConn
		ws *websocket.Conn
		ch chan *nostr.Event
	}
	var streams []stream
	for _, rc := range p.relays {
		ws := rc.conn()
		if ws == nil {
			continue
		}
		ch := make(chan *nostr.Event, 16)
		rc.mu.Lock()
		rc.queries[id] = ch
		rc.mu.Unlock()
		if err := rc.write(ctx, ws, msg); err != nil {
			rc.mu.Lock()
			delete(rc.queries, id)
			rc.mu.Unlock()
			continue
		}
		streams = append(streams, stream{rc, ws, ch})
	}
	if len(streams) == 0 {
		return nil, errNoRelay
	}
	defer func() {
		for _, s := range streams {
			s.rc.mu.Lock()
			delete(s.rc.queries, id)
			s.rc.mu.Unlock()
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			s.rc.write(cctx, s.ws, closeMsg)
			cancel()
		}
	}()
	var out []*nostr.Event
	seen := map[string]bool{}
	for _, s := range streams {
	read:
		for {
			select {
			case ev := <-s.ch:
				if ev == nil {
					break read
				}
				if f.Matches(ev) && !seen[ev.ID] && validEvent(ev) {
					seen[ev.ID] = true
					out = append(out, ev)
				}
			case <-ctx.Done():
				return out, ctx.Err()
			}
		}
	}
	return out, nil
}

func (rc *relayConn) conn() *websocket.Conn {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.ws
}

func (rc *relayConn) upChan() chan struct{} {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.up
}

func (rc *relayConn) write(ctx context.Context, ws *websocket.Conn, msg []byte) error {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, rc.p.dialTO)
	defer cancel()
	if err := ws.Write(wctx, websocket.MessageText, msg); err != nil {
		ws.CloseNow()
		return fmt.Errorf("relay %s: %w", rc.url, err)
	}
	return nil
}

func (rc *relayConn) subscribe(ws *websocket.Conn) {
	rc.p.fmu.Lock()
	args := []any{"REQ", "live"}
	for _, f := range rc.p.filters {
		args = append(args, f)
	}
	rc.p.fmu.Unlock()
	if len(args) == 2 {
		return
	}
	msg, _ := json.Marshal(args)
	rc.write(rc.p.ctx, ws, msg)
}

// loop keeps the relay connected until the pool closes.
func (rc *relayConn) loop() {
	defer rc.p.wg.Done()
	backoff := minBackoff
	for rc.p.ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(rc.p.ctx, rc.p.dialTO)
		ws, _, err := websocket.Dial(dctx, rc.url, nil)
		cancel()
		if err != nil {
			rc.p.log.Debug("nwc: relay dial failed", "relay", rc.url, "err", err)
			select {
			case <-time.After(backoff):
			case <-rc.p.ctx.Done():
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		ws.SetReadLimit(maxMessage)
		rc.mu.Lock()
		rc.ws = ws
		close(rc.up)
		rc.mu.Unlock()
		rc.subscribe(ws)
		if rc.p.onConnect != nil {
			rc.p.onConnect()
		}
		rc.read(ws)
		ws.CloseNow()
		rc.mu.Lock()
		rc.ws = nil
		rc.up = make(chan struct{})
		for id, ch := range rc.oks {
			select {
			case ch <- okResult{msg: "relay " + rc.url + " disconnected before OK"}:
			default:
			}
			delete(rc.oks, id)
		}
		for id, ch := range rc.queries {
			close(ch)
			delete(rc.queries, id)
		}
		rc.mu.Unlock()
		if rc.p.ctx.Err() == nil {
			rc.p.log.Info("nwc: relay connection lost; redialling", "relay", rc.url)
		}
	}
}

func (rc *relayConn) read(ws *websocket.Conn) {
	for {
		_, msg, err := ws.Read(rc.p.ctx)
		if err != nil {
			return
		}
		var raw []json.RawMessage
		if json.Unmarshal(msg, &raw) != nil || len(raw) < 2 {
			continue
		}
		var label, sub string
		json.Unmarshal(raw[0], &label)
		switch label {
		case "EVENT":
			if len(raw) < 3 || json.Unmarshal(raw[1], &sub) != nil {
				continue
			}
			ev := new(nostr.Event)
			if json.Unmarshal(raw[2], ev) != nil {
				continue
			}
			if sub != "live" {
				rc.mu.Lock()
				ch := rc.queries[sub]
				rc.mu.Unlock()
				if ch != nil {
					select {
					case ch <- ev:
					default:
					}
				}
				continue
			}
			// A relay is not trusted to have checked the event: an
			// event whose id or signature fails is ignored.
			if !validEvent(ev) {
				continue
			}
			if rc.p.firstSight(ev.ID) && rc.p.onEvent != nil {
				rc.p.onEvent(ev)
			}
		case "EOSE", "CLOSED":
			if json.Unmarshal(raw[1], &sub) != nil {
				continue
			}
			rc.mu.Lock()
			ch := rc.queries[sub]
			delete(rc.queries, sub)
			rc.mu.Unlock()
			if ch != nil {
				close(ch)
			}
		case "OK":
			var id, m string
			var ok bool
			if len(raw) < 4 || json.Unmarshal(raw[1], &id) != nil || json.Unmarshal(raw[2], &ok) != nil {
				continue
			}
			json.Unmarshal(raw[3], &m)
			rc.mu.Lock()
			ch := rc.oks[id]
			rc.mu.Unlock()
			if ch != nil {
				select {
				case ch <- okResult{ok: ok, msg: m}:
				default:
				}
			}
		case "NOTICE":
			var m string
			json.Unmarshal(raw[1], &m)
			rc.p.log.Debug("nwc: relay notice", "relay", rc.url, "notice", m)
		}
	}
}

// validEvent checks ev's id and signature.
func validEvent(ev *nostr.Event) bool {
	if !ev.CheckID() {
		return false
	}
	ok, err := ev.CheckSignature()
	return ok && err == nil
}
