package nwc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	nostr "github.com/nbd-wtf/go-nostr"

	"github.com/l402kit/l402kit/backend"
)

// Defaults for Config's zero fields.
const (
	DefaultDialTimeout  = 5 * time.Second
	DefaultCallTimeout  = 30 * time.Second
	DefaultPollInterval = time.Second
	// connectedPoll is how often a wait looks the invoice up while a relay
	// is connected and notifications should arrive: a guard against a
	// notification the relay lost.
	connectedPoll = 5 * time.Second
)

// Config is one NWC connection.
type Config struct {
	// WalletPubKey is the wallet service's public key (hex), the URI's host.
	WalletPubKey string
	// Relays are the relay URLs (ws:// or wss://) the wallet listens on.
	Relays []string
	// Secret is the client's secret key (hex) from the URI.
	Secret string
	// LUD16 is the wallet's lightning address, when the URI names one; it
	// is informational.
	LUD16 string
	// DialTimeout bounds connecting to a relay, and New's wait for the
	// first relay and the wallet's info event.
	DialTimeout time.Duration
	// CallTimeout bounds each call whose context has no deadline (the
	// Backend's CallTimeout).
	CallTimeout time.Duration
	// PollInterval is how often WaitInvoice looks an invoice up while no
	// relay is connected (or the wallet sends no notifications).
	PollInterval time.Duration
	// Logger receives relay reconnections and answers that are ignored;
	// nil means slog.Default().
	Logger *slog.Logger
}

func (c *Config) check() error {
	if !nostr.IsValidPublicKey(c.WalletPubKey) {
		return fmt.Errorf("nwc: %w: wallet public key %q is not 32 bytes of hex", backend.ErrInvalid, c.WalletPubKey)
	}
	if !isHex32(c.Secret) {
		return fmt.Errorf("nwc: %w: secret must be one value of 32 bytes of hex", backend.ErrInvalid)
	}
	if len(c.Relays) == 0 {
		return fmt.Errorf("nwc: %w: the URI names no relay", backend.ErrInvalid)
	}
	for _, r := range c.Relays {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return fmt.Errorf("nwc: %w: relay %q is not a ws:// or wss:// URL", backend.ErrInvalid, r)
		}
	}
	return nil
}

// New connects to the wallet's relays, reads its info event and, when it
// offers get_info, asks it which methods this connection may use, and
// returns the Backend. Its abilities are what the wallet grants: pay_invoice
// makes it a Payer, make/settle/cancel_hold_invoice a HoldInvoicer,
// payment_received notifications a Waiter (for hold invoices also
// hold_invoice_accepted), get_info an Informer and Pinger. A wallet that
// cannot be reached (no relay answers, no info event) is
// backend.ErrUnavailable.
func New(ctx context.Context, cfg Config) (*backend.Backend, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	d, err := newDriver(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return backend.New(d, backend.Options{CallTimeout: cfg.CallTimeout, PollInterval: cfg.PollInterval}), nil
}

// driver is the NWC client as a backend.Driver; the types in abilities.go
// add the optional interfaces the wallet grants.
type driver struct {
	wallet string
	sk     string
	pub    string
	enc    cipher
	log    *slog.Logger
	poll   time.Duration
	callTO time.Duration
	pool   *pool

	methods map[string]bool
	notifs  map[string]bool

	mu      sync.Mutex
	pending map[string]chan *nostr.Event
	waiters map[backend.PaymentHash]map[chan struct{}]bool
	connGen chan struct{} // closed and replaced on every relay connection
}

func newDriver(ctx context.Context, cfg Config) (backend.Driver, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	pub, err := nostr.GetPublicKey(cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("nwc: %w: secret: %v", backend.ErrInvalid, err)
	}
	d := &driver{
		wallet:  cfg.WalletPubKey,
		sk:      cfg.Secret,
		pub:     pub,
		log:     cfg.Logger,
		poll:    orDefault(cfg.PollInterval, DefaultPollInterval),
		callTO:  orDefault(cfg.CallTimeout, DefaultCallTimeout),
		pending: map[string]chan *nostr.Event{},
		waiters: map[backend.PaymentHash]map[chan struct{}]bool{},
		connGen: make(chan struct{}),
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	dialTO := orDefault(cfg.DialTimeout, DefaultDialTimeout)
	since := nostr.Timestamp(time.Now().Add(-time.Minute).Unix())
	filters := nostr.Filters{{
		Kinds:   []int{KindResponse, KindNotification, KindNotifyNIP04},
		Authors: []string{d.wallet},
		Tags:    nostr.TagMap{"p": {d.pub}},
		Since:   &since,
	}}
	d.pool = newPool(cfg.Relays, dialTO, d.log, filters, d.onEvent, d.onConnect)

	sctx, cancel := context.WithTimeout(ctx, dialTO)
	defer cancel()
	if err := d.pool.waitConnected(sctx); err != nil {
		d.pool.close()
		return nil, fmt.Errorf("nwc: %w: no relay of %v connected within %s: %v", backend.ErrUnavailable, cfg.Relays, dialTO, err)
	}
	infos, err := d.pool.query(sctx, nostr.Filter{Kinds: []int{KindInfo}, Authors: []string{d.wallet}, Limit: 1})
	if err != nil && len(infos) == 0 {
		d.pool.close()
		return nil, fmt.Errorf("nwc: %w: reading the wallet's info event: %v", backend.ErrUnavailable, err)
	}
	if len(infos) == 0 {
		d.pool.close()
		return nil, fmt.Errorf("nwc: %w: wallet %s published no info event (kind %d) on %v", backend.ErrUnavailable, d.wallet, KindInfo, cfg.Relays)
	}
	info := infos[0]
	for _, ev := range infos[1:] {
		if ev.CreatedAt > info.CreatedAt {
			info = ev
		}
	}
	scheme, err := chooseEncryption(info)
	if err != nil {
		d.pool.close()
		return nil, err
	}
	if d.enc, err = newCipher(scheme, d.wallet, d.sk); err != nil {
		d.pool.close()
		return nil, fmt.Errorf("nwc: %w: %v", backend.ErrInvalid, err)
	}
	d.methods = set(strings.Fields(info.Content))
	if t := tagValue(info, "notifications"); t != "" {
		d.notifs = set(strings.Fields(t))
	} else {
		d.notifs = map[string]bool{}
	}
	if d.methods[MethodGetInfo] {
		// get_info lists what this connection may do, which the info
		// event (one per wallet service) may not.
		var gi getInfoResult
		gctx, cancel := context.WithTimeout(ctx, d.callTO)
		err := d.call(gctx, MethodGetInfo, map[string]any{}, &gi)
		cancel()
		if err != nil {
			d.pool.close()
			return nil, fmt.Errorf("nwc: get_info at connection: %w", err)
		}
		if len(gi.Methods) > 0 {
			d.methods = set(gi.Methods)
			d.methods[MethodGetInfo] = true
		}
		if gi.Notifications != nil {
			d.notifs = set(gi.Notifications)
		}
	}
	if !d.methods[MethodMakeInvoice] || !d.methods[MethodLookupInvoice] {
		d.pool.close()
		return nil, fmt.Errorf("nwc: %w: the wallet does not grant this connection make_invoice and lookup_invoice (it offers %s)", backend.ErrUnsupported, info.Content)
	}
	return compose(d), nil
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Close disconnects from every relay; waits in progress end.
func (d *driver) Close() error {
	d.pool.close()
	return nil
}

func (d *driver) onConnect() {
	d.mu.Lock()
	close(d.connGen)
	d.connGen = make(chan struct{})
	d.mu.Unlock()
}

// reconnected returns a channel closed at the next relay connection.
func (d *driver) reconnected() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.connGen
}

// onEvent takes every event of the live subscription.
func (d *driver) onEvent(ev *nostr.Event) {
	if ev.PubKey != d.wallet {
		d.log.Warn("nwc: ignored an event signed by another key than the wallet's", "kind", ev.Kind, "pubkey", ev.PubKey)
		return
	}
	switch ev.Kind {
	case KindResponse:
		id := tagValue(ev, "e")
		d.mu.Lock()
		ch := d.pending[id]
		delete(d.pending, id)
		d.mu.Unlock()
		if ch == nil {
			d.log.Warn("nwc: ignored an answer to no request of ours (unknown, or answered already)", "e", id)
			return
		}
		ch <- ev
	case KindNotification, KindNotifyNIP04:
		// Only the kind of the negotiated scheme is read; a wallet that
		// speaks both sends each notification twice.
		if (ev.Kind == KindNotification) != (d.enc.tag() == encNIP44) {
			return
		}
		plain, err := d.enc.decrypt(ev.Content)
		if err != nil {
			d.log.Warn("nwc: notification does not decrypt", "err", err)
			return
		}
		var n notification
		var t transaction
		if json.Unmarshal([]byte(plain), &n) != nil || json.Unmarshal(n.Notification, &t) != nil {
			return
		}
		h, err := backend.ParsePaymentHash(t.PaymentHash)
		if err != nil {
			return
		}
		d.ring(h)
	}
}

func (d *driver) ring(h backend.PaymentHash) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for ch := range d.waiters[h] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// call sends one request and decodes its answer's result into out. A
// request that reached no relay is ErrUnavailable; one the relays took
// but the wallet did not answer before ctx ended returns ctx's error
// (which the Backend reads as ErrUnavailable, or for a payment as
// ErrPaymentUnknown). Requests other than pay_invoice are published again
// on every reconnection, since a relay that dropped the socket may have
// dropped them; pay_invoice is never sent twice.
func (d *driver) call(ctx context.Context, method string, params map[string]any, out any) error {
	_, err := d.send(ctx, method, params, out)
	return err
}

// send is call, also telling whether the request reached a relay.
func (d *driver) send(ctx context.Context, method string, params map[string]any, out any) (written bool, err error) {
	body, err := json.Marshal(request{Method: method, Params: params})
	if err != nil {
		return false, fmt.Errorf("nwc: %w: %v", backend.ErrInvalid, err)
	}
	content, err := d.enc.encrypt(string(body))
	if err != nil {
		return false, fmt.Errorf("nwc: %w: encrypting: %v", backend.ErrInvalid, err)
	}
	exp := time.Now().Add(d.callTO)
	if dl, ok := ctx.Deadline(); ok {
		exp = dl
	}
	tags := nostr.Tags{{"p", d.wallet}, {"expiration", strconv.FormatInt(exp.Unix()+1, 10)}}
	if t := d.enc.tag(); t != "" {
		tags = append(tags, nostr.Tag{"encryption", t})
	}
	ev := &nostr.Event{Kind: KindRequest, CreatedAt: nostr.Now(), Tags: tags, Content: content}
	if err := ev.Sign(d.sk); err != nil {
		return false, fmt.Errorf("nwc: %w: signing: %v", backend.ErrInvalid, err)
	}
	ch := make(chan *nostr.Event, 1)
	d.mu.Lock()
	d.pending[ev.ID] = ch
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.pending, ev.ID)
		d.mu.Unlock()
	}()
	reconn := d.reconnected()
	written, err = d.pool.publish(ctx, ev)
	if !written {
		return false, fmt.Errorf("nwc: %s: %w: %v", method, backend.ErrUnavailable, err)
	}
	if err != nil {
		d.log.Debug("nwc: request not acknowledged by any relay; waiting for an answer anyway", "method", method, "err", err)
	}
	for {
		select {
		case ans := <-ch:
			return true, d.decode(method, ans, out)
		case <-reconn:
			reconn = d.reconnected()
			if method != MethodPayInvoice {
				d.pool.publish(ctx, ev)
			}
		case <-ctx.Done():
			return true, fmt.Errorf("nwc: %s: no answer from the wallet: %w", method, ctx.Err())
		}
	}
}

func (d *driver) decode(method string, ev *nostr.Event, out any) error {
	plain, err := d.enc.decrypt(ev.Content)
	if err != nil {
		return fmt.Errorf("nwc: %s: %w: answer does not decrypt: %v", method, backend.ErrUnavailable, err)
	}
	var r response
	if err := json.Unmarshal([]byte(plain), &r); err != nil {
		return fmt.Errorf("nwc: %s: %w: answer is not JSON: %v", method, backend.ErrUnavailable, err)
	}
	if r.Error != nil && r.Error.Code != "" {
		return &WalletError{Method: method, Code: r.Error.Code, Message: r.Error.Message}
	}
	if r.ResultType != method {
		return fmt.Errorf("nwc: %w: answer of type %q to a %s request", backend.ErrUnavailable, r.ResultType, method)
	}
	if out != nil && len(r.Result) > 0 {
		if err := json.Unmarshal(r.Result, out); err != nil {
			return fmt.Errorf("nwc: %s: %w: result: %v", method, backend.ErrUnavailable, err)
		}
	}
	return nil
}
