package nwc

import (
	"context"
	"encoding/json"
	"errors"
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

// Scheme is the URL scheme this package registers with backend.Open: the
// connection URI exactly as wallets print it.
const Scheme = "nostr+walletconnect"

func init() { backend.Register(Scheme, openURL) }

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

// ParseURI reads a nostr+walletconnect:// connection URI into a Config.
func ParseURI(s string) (Config, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return Config{}, fmt.Errorf("nwc: %w: connection URI does not parse", backend.ErrInvalid)
	}
	return configFromURL(u)
}

func configFromURL(u *url.URL) (Config, error) {
	if !strings.EqualFold(u.Scheme, Scheme) {
		return Config{}, fmt.Errorf("nwc: %w: scheme %q, want %s://", backend.ErrInvalid, u.Scheme, Scheme)
	}
	pub := u.Host
	if pub == "" {
		// nostr+walletconnect:PUBKEY?... (no slashes) parses as opaque.
		pub = u.Opaque
	}
	q := u.Query()
	cfg := Config{WalletPubKey: strings.ToLower(pub), Relays: q["relay"], LUD16: q.Get("lud16")}
	if s := q["secret"]; len(s) == 1 {
		sec, err := backend.ReadSecret(s[0])
		if err != nil {
			return Config{}, err
		}
		cfg.Secret = strings.ToLower(strings.TrimSpace(sec))
	}
	for k := range q {
		switch k {
		case "relay", "secret", "lud16":
		default:
			return Config{}, fmt.Errorf("nwc: %w: unknown URI parameter %q", backend.ErrInvalid, k)
		}
	}
	return cfg, cfg.check()
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

func openURL(ctx context.Context, u *url.URL) (backend.Driver, error) {
	cfg, err := configFromURL(u)
	if err != nil {
		return nil, err
	}
	return newDriver(ctx, cfg)
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

type getInfoResult struct {
	Alias         string   `json:"alias"`
	Pubkey        string   `json:"pubkey"`
	Network       string   `json:"network"`
	BlockHeight   uint32   `json:"block_height"`
	BlockHash     string   `json:"block_hash"`
	Methods       []string `json:"methods"`
	Notifications []string `json:"notifications"`
}

func invoiceParams(req backend.InvoiceRequest) map[string]any {
	p := map[string]any{"amount": int64(req.Amount), "expiry": int64(req.Expiry / time.Second)}
	if h := req.CommittedDescriptionHash(); h != nil {
		p["description_hash"] = fmt.Sprintf("%x", h[:])
		if req.HashedDescription != "" {
			p["description"] = req.HashedDescription
		}
	} else if req.Memo != "" {
		p["description"] = req.Memo
	}
	return p
}

// CreateInvoice implements backend.Driver with make_invoice. NIP-47 has no
// way to hand the wallet a preimage, so a request with one is
// ErrUnsupported.
func (d *driver) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	if req.Preimage != nil {
		return nil, fmt.Errorf("nwc: %w: NIP-47 make_invoice takes no preimage; the wallet chooses it", backend.ErrUnsupported)
	}
	var t transaction
	if err := d.call(ctx, MethodMakeInvoice, invoiceParams(req), &t); err != nil {
		return nil, err
	}
	if t.State == "" {
		t.State = "pending"
	}
	return t.invoice()
}

// LookupInvoice implements backend.Driver with lookup_invoice.
func (d *driver) LookupInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	var t transaction
	if err := d.call(ctx, MethodLookupInvoice, map[string]any{"payment_hash": hash.String()}, &t); err != nil {
		return nil, err
	}
	return t.invoice()
}

// lookup is lookup_invoice's raw transaction, for the payment side.
func (d *driver) lookup(ctx context.Context, hash backend.PaymentHash) (*transaction, error) {
	var t transaction
	if err := d.call(ctx, MethodLookupInvoice, map[string]any{"payment_hash": hash.String()}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// waitInvoice implements backend.Waiter for a wallet that sends
// notifications: each payment_received or hold_invoice_accepted naming the
// hash, and each relay (re)connection, triggers a lookup; lookups also
// run every few seconds in case a notification was lost, and every
// PollInterval while no relay is connected.
func (d *driver) waitInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	bell := make(chan struct{}, 1)
	d.mu.Lock()
	if d.waiters[hash] == nil {
		d.waiters[hash] = map[chan struct{}]bool{}
	}
	d.waiters[hash][bell] = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.waiters[hash], bell)
		if len(d.waiters[hash]) == 0 {
			delete(d.waiters, hash)
		}
		d.mu.Unlock()
	}()
	for {
		reconn := d.reconnected()
		lctx, cancel := context.WithTimeout(ctx, d.callTO)
		inv, err := d.LookupInvoice(lctx, hash)
		cancel()
		switch {
		case err == nil && (inv.State != backend.StateOpen || inv.Expired(time.Now())):
			return inv, nil
		case err != nil && ctx.Err() == nil && !errors.Is(err, backend.ErrUnavailable):
			return nil, err
		}
		every := connectedPoll
		if d.pool.connected() == 0 {
			every = d.poll
		}
		if err == nil {
			if until := time.Until(inv.ExpiresAt); until > 0 && until < every {
				every = until + 10*time.Millisecond
			}
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("nwc: wait for invoice %s: %w", hash, ctx.Err())
		case <-bell:
		case <-reconn:
		case <-t.C:
		}
		t.Stop()
	}
}

// payInvoice implements backend.Payer with pay_invoice. The request is
// published once, never again. An answer is taken at its word only when it
// is a success or a refusal that says nothing was paid (PAYMENT_FAILED,
// INSUFFICIENT_BALANCE, QUOTA_EXCEEDED, RESTRICTED, ...); otherwise (no
// answer before the deadline, the relay went away, or an INTERNAL/OTHER
// error, which Alby Hub also sends for real payment failures) the outcome is
// resolved by lookup_invoice: settled with the preimage is success, failed
// is ErrPaymentFailed, and anything else ErrPaymentUnknown.
func (d *driver) payInvoice(ctx context.Context, bolt11 string, opts backend.PayOptions) (*backend.Payment, error) {
	dec, err := backend.DecodeInvoice(bolt11)
	if err != nil {
		return nil, err
	}
	params := map[string]any{"invoice": bolt11}
	if opts.Amount > 0 {
		params["amount"] = int64(opts.Amount)
	}
	// Stop waiting for the answer early enough to ask lookup_invoice.
	answerCtx := ctx
	if dl, ok := ctx.Deadline(); ok {
		reserve := min(time.Until(dl)/4, 10*time.Second)
		var cancel context.CancelFunc
		answerCtx, cancel = context.WithDeadline(ctx, dl.Add(-reserve))
		defer cancel()
	}
	var res struct {
		Preimage string `json:"preimage"`
		FeesPaid int64  `json:"fees_paid"`
	}
	written, err := d.send(answerCtx, MethodPayInvoice, params, &res)
	if err == nil {
		p, perr := backend.ParsePreimage(res.Preimage)
		if perr != nil || !p.Matches(dec.PaymentHash) {
			return d.resolve(ctx, dec.PaymentHash, false, fmt.Errorf("wallet reported success without the preimage of %s", dec.PaymentHash))
		}
		return &backend.Payment{PaymentHash: dec.PaymentHash, Preimage: p, Fee: backend.MilliSat(res.FeesPaid)}, nil
	}
	if !written {
		return nil, err // nothing reached a relay: safe to retry
	}
	var we *WalletError
	if errors.As(err, &we) && we.Code != CodeInternal && we.Code != CodeOther {
		s := we.Unwrap()
		if s == backend.ErrPaymentFailed || s == backend.ErrInvalid || s == backend.ErrUnsupported {
			return nil, err
		}
		if we.Code == CodeRateLimited {
			// Refused before anything started.
			return nil, err
		}
	}
	return d.resolve(ctx, dec.PaymentHash, we != nil, err)
}

// resolve asks lookup_invoice what became of a payment whose answer was
// missing or unclear. When the wallet answered with an error (answered),
// only a payment still in flight is unknown: the wallet handled the
// request and said no, so a settled invoice was paid before (by this
// wallet, which pays its own invoices only once) and anything else did not
// pay. Without an answer, only a settled invoice with its preimage (the
// proof of payment) is success and only a failed outgoing payment a
// failure.
func (d *driver) resolve(ctx context.Context, hash backend.PaymentHash, answered bool, cause error) (*backend.Payment, error) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(d.callTO, 10*time.Second))
	defer cancel()
	t, err := d.lookup(lctx, hash)
	switch {
	case answered && errors.Is(err, backend.ErrNotFound):
		return nil, fmt.Errorf("nwc: pay_invoice: %w: %v; the wallet has no record of it", backend.ErrPaymentFailed, cause)
	case err != nil:
		return nil, fmt.Errorf("nwc: pay_invoice: %w: %v; lookup_invoice then: %v", backend.ErrPaymentUnknown, cause, err)
	case answered && (t.State == "pending" && t.Type == "outgoing" || t.State == "accepted"):
		return nil, fmt.Errorf("nwc: pay_invoice: %w: %v; lookup_invoice shows it %s", backend.ErrPaymentUnknown, cause, t.State)
	case answered:
		return nil, fmt.Errorf("nwc: pay_invoice: %w: %v (lookup_invoice: %s %s)", backend.ErrPaymentFailed, cause, t.Type, t.State)
	}
	if t.Preimage != "" && (t.State == "settled" || t.State == "" && t.SettledAt != 0) {
		if p, perr := backend.ParsePreimage(t.Preimage); perr == nil && p.Matches(hash) {
			return &backend.Payment{PaymentHash: hash, Preimage: p, Fee: backend.MilliSat(t.FeesPaid)}, nil
		}
	}
	if t.Type == "outgoing" && t.State == "failed" {
		return nil, fmt.Errorf("nwc: pay_invoice: %w: %v; lookup_invoice shows the payment failed", backend.ErrPaymentFailed, cause)
	}
	return nil, fmt.Errorf("nwc: pay_invoice: %w: %v; lookup_invoice shows state %q", backend.ErrPaymentUnknown, cause, t.State)
}

// createHoldInvoice implements backend.HoldInvoicer with make_hold_invoice.
func (d *driver) createHoldInvoice(ctx context.Context, hash backend.PaymentHash, req backend.InvoiceRequest) (*backend.Invoice, error) {
	p := invoiceParams(req)
	p["payment_hash"] = hash.String()
	var t transaction
	if err := d.call(ctx, MethodMakeHoldInvoice, p, &t); err != nil {
		return nil, d.holdError(ctx, hash, err, true)
	}
	if t.State == "" {
		t.State = "pending"
	}
	return t.invoice()
}

// settleInvoice implements backend.HoldInvoicer with settle_hold_invoice.
func (d *driver) settleInvoice(ctx context.Context, pre backend.Preimage) error {
	err := d.call(ctx, MethodSettleHoldInvoice, map[string]any{"preimage": pre.String()}, nil)
	return d.holdError(ctx, pre.Hash(), err, false)
}

// cancelInvoice implements backend.HoldInvoicer with cancel_hold_invoice.
func (d *driver) cancelInvoice(ctx context.Context, hash backend.PaymentHash) error {
	err := d.call(ctx, MethodCancelHoldInvoice, map[string]any{"payment_hash": hash.String()}, nil)
	return d.holdError(ctx, hash, err, false)
}

// holdError turns a wallet's vague answer to a hold call into what the
// invoice's state says. Alby Hub answers a settle of an invoice that is not
// held with INTERNAL "failed to find accepted hold invoice", and a cancel
// of one with NOT_FOUND, whether or not the invoice exists; and a second
// make_hold_invoice for a hash with INTERNAL. A lookup tells the cases
// apart.
func (d *driver) holdError(ctx context.Context, hash backend.PaymentHash, err error, creating bool) error {
	var we *WalletError
	if err == nil || !errors.As(err, &we) || (we.Code != CodeInternal && we.Code != CodeOther && we.Code != CodeNotFound) {
		return err
	}
	inv, lerr := d.LookupInvoice(ctx, hash)
	switch {
	case errors.Is(lerr, backend.ErrNotFound):
		if creating {
			return err
		}
		return fmt.Errorf("nwc: %s: %w: no invoice with hash %s", we.Method, backend.ErrNotFound, hash)
	case lerr != nil:
		return err
	case creating:
		return fmt.Errorf("nwc: %s: %w: an invoice with hash %s exists (%s)", we.Method, backend.ErrAlreadyExists, hash, we.Message)
	case we.Method == MethodSettleHoldInvoice && inv.State == backend.StateSettled,
		we.Method == MethodCancelHoldInvoice && inv.State == backend.StateCanceled:
		return nil // done already
	default:
		return fmt.Errorf("nwc: %s: %w: invoice %s is %s, not held (wallet said %s: %s)", we.Method, backend.ErrInvalid, hash, inv.State, we.Code, we.Message)
	}
}

// info implements backend.Informer with get_info.
func (d *driver) info(ctx context.Context) (*backend.NodeInfo, error) {
	var gi getInfoResult
	if err := d.call(ctx, MethodGetInfo, map[string]any{}, &gi); err != nil {
		return nil, err
	}
	return &backend.NodeInfo{NodeID: gi.Pubkey, Alias: gi.Alias, Network: gi.Network, BlockHeight: gi.BlockHeight, Synced: gi.BlockHeight > 0}, nil
}

// ping implements backend.Pinger with get_info.
func (d *driver) ping(ctx context.Context) error {
	return d.call(ctx, MethodGetInfo, map[string]any{}, nil)
}
