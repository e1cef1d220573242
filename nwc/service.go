package nwc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	nostr "github.com/nbd-wtf/go-nostr"

	"github.com/l402kit/l402kit/backend"
)

// ServiceConfig sets up a wallet service.
type ServiceConfig struct {
	// Backend is the node served; the service does not close it.
	Backend *backend.Backend
	// Relays the service listens and answers on, named in every
	// connection URI.
	Relays []string
	// DialTimeout bounds connecting to a relay; zero means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// PayTimeout bounds each payment; zero means one minute.
	PayTimeout time.Duration
	// Logger receives requests refused and relay reconnections; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Permissions are what one connection may do.
type Permissions struct {
	// Methods the connection may call; nil means every method the
	// backend can serve. get_info is always allowed.
	Methods []string
	// MaxPayment caps one payment (amount before fees); zero: no cap.
	MaxPayment backend.MilliSat
	// Budget caps what the connection pays (fees included) in each
	// BudgetPeriod, counted from the connection's creation; zero: no
	// budget.
	Budget backend.MilliSat
	// BudgetPeriod is the budget's window; zero means 24 hours.
	BudgetPeriod time.Duration
}

// Service serves NIP-47 for one Backend: each Connect makes a connection
// (its own wallet key, client secret, permissions and budget) and returns
// the URI a client opens. Its behaviour follows Alby Hub where wallets
// differ from the NIP (read from getAlby/hub at commit
// d8ef0e70e0d265a8424276daee0a595ac31993c0, nip47/controllers and
// transactions/transactions_service.go): a failed payment is answered with
// INTERNAL and the node's text (mapNip47Error), settle_hold_invoice works
// only on a held (accepted) invoice and answers INTERNAL "failed to find
// accepted hold invoice" otherwise, and cancel_hold_invoice likewise
// answers NOT_FOUND for an invoice that is not held. Clients, this
// package's first, must absorb that.
type Service struct {
	b      *backend.Backend
	relays []string
	log    *slog.Logger
	payTO  time.Duration
	pool   *pool

	mu    sync.Mutex
	conns map[string]*connection // by wallet public key
	paid  map[backend.PaymentHash]*transaction
	// watched are invoices made through the service, looked up by the
	// watcher until they leave Open (then notified) or expire.
	watched map[backend.PaymentHash]watch
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

type connection struct {
	walletSK, walletPub string
	clientPub           string
	methods             map[string]bool
	perm                Permissions
	info                *nostr.Event

	mu          sync.Mutex
	periodStart time.Time
	spent       backend.MilliSat
}

// NewService connects to the relays and starts serving; it has no
// connection until Connect. It fails with ErrUnavailable when no relay
// connects within the dial timeout.
func NewService(ctx context.Context, cfg ServiceConfig) (*Service, error) {
	if cfg.Backend == nil || len(cfg.Relays) == 0 {
		return nil, fmt.Errorf("nwc: %w: a service needs a Backend and at least one relay", backend.ErrInvalid)
	}
	s := &Service{
		b:       cfg.Backend,
		relays:  slices.Clone(cfg.Relays),
		log:     cfg.Logger,
		payTO:   orDefault(cfg.PayTimeout, backend.DefaultPayTimeout),
		conns:   map[string]*connection{},
		paid:    map[backend.PaymentHash]*transaction{},
		watched: map[backend.PaymentHash]watch{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	dialTO := orDefault(cfg.DialTimeout, DefaultDialTimeout)
	s.pool = newPool(cfg.Relays, dialTO, s.log, nil, s.onEvent, s.onConnect)
	s.wg.Add(1)
	go s.watcher()
	wctx, cancel := context.WithTimeout(ctx, dialTO)
	defer cancel()
	if err := s.pool.waitConnected(wctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("nwc: service: %w: no relay of %v connected: %v", backend.ErrUnavailable, cfg.Relays, err)
	}
	return s, nil
}

// Close stops serving. Payments in progress are left to the backend.
func (s *Service) Close() error {
	s.stop()
	s.pool.close()
	s.wg.Wait()
	return nil
}

// served lists the methods the backend can serve.
func (s *Service) served() []string {
	m := []string{MethodGetInfo, MethodMakeInvoice, MethodLookupInvoice}
	if s.b.Supports(backend.AbilityPay) {
		m = append(m, MethodPayInvoice)
	}
	if s.b.Supports(backend.AbilityHold) {
		m = append(m, MethodMakeHoldInvoice, MethodSettleHoldInvoice, MethodCancelHoldInvoice)
	}
	return m
}

// Connect makes a new connection with its own keys and permissions,
// publishes its info event and returns its connection URI. Methods the
// backend cannot serve are refused with ErrUnsupported.
func (s *Service) Connect(ctx context.Context, p Permissions) (string, error) {
	served := set(s.served())
	methods := map[string]bool{MethodGetInfo: true}
	if p.Methods == nil {
		methods = served
	}
	for _, m := range p.Methods {
		if !served[m] {
			return "", fmt.Errorf("nwc: %w: the backend cannot serve %s", backend.ErrUnsupported, m)
		}
		methods[m] = true
	}
	if p.BudgetPeriod <= 0 {
		p.BudgetPeriod = 24 * time.Hour
	}
	c := &connection{walletSK: nostr.GeneratePrivateKey(), methods: methods, perm: p, periodStart: time.Now()}
	c.walletPub, _ = nostr.GetPublicKey(c.walletSK)
	clientSK := nostr.GeneratePrivateKey()
	c.clientPub, _ = nostr.GetPublicKey(clientSK)

	var names []string
	for _, m := range s.served() {
		if methods[m] {
			names = append(names, m)
		}
	}
	info := &nostr.Event{
		Kind:      KindInfo,
		CreatedAt: nostr.Now(),
		Tags: nostr.Tags{
			{"encryption", encNIP44 + " " + encNIP04},
			{"notifications", notifyReceived + " " + notifyHoldAccepted},
		},
		Content: strings.Join(names, " ") + " notifications",
	}
	if err := info.Sign(c.walletSK); err != nil {
		return "", err
	}
	c.info = info
	s.mu.Lock()
	s.conns[c.walletPub] = c
	pubs := make([]string, 0, len(s.conns))
	for k := range s.conns {
		pubs = append(pubs, k)
	}
	s.mu.Unlock()
	since := nostr.Timestamp(time.Now().Add(-time.Minute).Unix())
	s.pool.setFilters(nostr.Filters{{Kinds: []int{KindRequest}, Tags: nostr.TagMap{"p": pubs}, Since: &since}})
	if _, err := s.pool.publish(ctx, info); err != nil {
		return "", fmt.Errorf("nwc: service: %w: publishing the info event: %v", backend.ErrUnavailable, err)
	}
	q := url.Values{}
	for _, r := range s.relays {
		q.Add("relay", r)
	}
	q.Set("secret", clientSK)
	return Scheme + "://" + c.walletPub + "?" + q.Encode(), nil
}

// onConnect publishes every connection's info event again: a relay that
// restarted may have lost it.
func (s *Service) onConnect() {
	s.mu.Lock()
	infos := make([]*nostr.Event, 0, len(s.conns))
	for _, c := range s.conns {
		infos = append(infos, c.info)
	}
	s.mu.Unlock()
	if len(infos) == 0 {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for _, ev := range infos {
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			s.pool.publish(ctx, ev)
			cancel()
		}
	}()
}

// onEvent takes each request.
func (s *Service) onEvent(ev *nostr.Event) {
	if ev.Kind != KindRequest {
		return
	}
	s.mu.Lock()
	c := s.conns[tagValue(ev, "p")]
	s.mu.Unlock()
	if c == nil {
		return
	}
	if exp := tagValue(ev, "expiration"); exp != "" {
		if at, err := strconv.ParseInt(exp, 10, 64); err == nil && at < time.Now().Unix() {
			s.log.Info("nwc: service: ignored an expired request", "id", ev.ID)
			return
		}
	}
	scheme := tagValue(ev, "encryption")
	if scheme == "" {
		scheme = encNIP04
	}
	ciph, err := newCipher(scheme, ev.PubKey, c.walletSK)
	if err != nil {
		ciph, _ = newCipher(encNIP44, ev.PubKey, c.walletSK)
		s.answer(c, ev, ciph, "", nil, &responseError{CodeUnsupportedEncryption, "encryption " + scheme + " is not supported"})
		return
	}
	if ev.PubKey != c.clientPub {
		s.answer(c, ev, ciph, "", nil, &responseError{CodeUnauthorized, "no wallet is connected for this public key"})
		return
	}
	plain, err := ciph.decrypt(ev.Content)
	var req request
	if err == nil {
		err = json.Unmarshal([]byte(plain), &req)
	}
	if err != nil {
		s.answer(c, ev, ciph, "", nil, &responseError{CodeOther, "request does not decrypt or parse"})
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		res, rerr := s.handle(c, req)
		s.answer(c, ev, ciph, req.Method, res, rerr)
	}()
}

func (s *Service) answer(c *connection, req *nostr.Event, ciph cipher, method string, result any, rerr *responseError) {
	body := map[string]any{"result_type": method, "error": nil, "result": nil}
	if rerr != nil {
		body["error"] = rerr
	} else {
		body["result"] = result
	}
	b, _ := json.Marshal(body)
	content, err := ciph.encrypt(string(b))
	if err != nil {
		s.log.Warn("nwc: service: encrypting an answer", "err", err)
		return
	}
	ev := &nostr.Event{Kind: KindResponse, CreatedAt: nostr.Now(), Tags: nostr.Tags{{"p", req.PubKey}, {"e", req.ID}}, Content: content}
	if t := ciph.tag(); t != "" {
		ev.Tags = append(ev.Tags, nostr.Tag{"encryption", t})
	}
	if err := ev.Sign(c.walletSK); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if _, err := s.pool.publish(ctx, ev); err != nil {
		s.log.Warn("nwc: service: answer not published", "method", method, "err", err)
	}
}

func str(p map[string]any, k string) string {
	v, _ := p[k].(string)
	return v
}

func num(p map[string]any, k string) int64 {
	switch v := p[k].(type) {
	case float64:
		return int64(v)
	case json.Number:
		n, _ := v.Int64()
		return n
	}
	return 0
}

// codeOf names the NIP-47 code for a backend error, as Alby Hub does:
// NOT_FOUND for an unknown invoice, INTERNAL (with the node's text) for
// everything else, including failed payments and duplicate hashes.
func codeOf(err error) *responseError {
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return &responseError{CodeNotFound, err.Error()}
	case errors.Is(err, backend.ErrUnsupported):
		return &responseError{CodeNotImplemented, err.Error()}
	}
	return &responseError{CodeInternal, err.Error()}
}

func (s *Service) handle(c *connection, req request) (any, *responseError) {
	if !c.methods[req.Method] {
		if slices.Contains(s.served(), req.Method) {
			return nil, &responseError{CodeRestricted, "this connection may not call " + req.Method}
		}
		return nil, &responseError{CodeNotImplemented, "unknown method " + req.Method}
	}
	ctx, cancel := context.WithTimeout(s.ctx, backend.DefaultCallTimeout)
	defer cancel()
	p := req.Params
	if p == nil {
		p = map[string]any{}
	}
	switch req.Method {
	case MethodGetInfo:
		out := map[string]any{"methods": s.methodsOf(c), "notifications": []string{notifyReceived, notifyHoldAccepted}}
		if s.b.Supports(backend.AbilityInfo) {
			ni, err := s.b.Info(ctx)
			if err != nil {
				return nil, codeOf(err)
			}
			out["alias"], out["pubkey"], out["network"], out["block_height"] = ni.Alias, ni.NodeID, ni.Network, ni.BlockHeight
		}
		return out, nil
	case MethodMakeInvoice, MethodMakeHoldInvoice:
		ir := backend.InvoiceRequest{Amount: backend.MilliSat(num(p, "amount")), Expiry: time.Duration(num(p, "expiry")) * time.Second}
		desc, dh := str(p, "description"), str(p, "description_hash")
		if dh != "" {
			raw, err := hex.DecodeString(dh)
			if err != nil || len(raw) != 32 {
				return nil, &responseError{CodeOther, "description_hash is not 32 bytes of hex"}
			}
			h := [32]byte(raw)
			if desc != "" && sha256.Sum256([]byte(desc)) == h {
				ir.HashedDescription = desc
			} else {
				ir.DescriptionHash = &h
			}
		} else {
			ir.Memo = desc
		}
		var inv *backend.Invoice
		var err error
		if req.Method == MethodMakeInvoice {
			inv, err = s.b.CreateInvoice(ctx, ir)
		} else {
			h, perr := backend.ParsePaymentHash(str(p, "payment_hash"))
			if perr != nil {
				return nil, &responseError{CodeOther, "payment_hash: " + perr.Error()}
			}
			inv, err = s.b.CreateHoldInvoice(ctx, h, ir)
		}
		if err != nil {
			return nil, codeOf(err)
		}
		s.notifyOn(c, inv)
		return txOf(inv), nil
	case MethodLookupInvoice:
		hs := str(p, "payment_hash")
		if hs == "" && str(p, "invoice") != "" {
			d, err := backend.DecodeInvoice(str(p, "invoice"))
			if err != nil {
				return nil, &responseError{CodeOther, err.Error()}
			}
			hs = d.PaymentHash.String()
		}
		h, err := backend.ParsePaymentHash(hs)
		if err != nil {
			return nil, &responseError{CodeOther, "payment_hash: " + err.Error()}
		}
		inv, err := s.b.LookupInvoice(ctx, h)
		if errors.Is(err, backend.ErrNotFound) {
			s.mu.Lock()
			t := s.paid[h]
			s.mu.Unlock()
			if t != nil {
				return t, nil
			}
		}
		if err != nil {
			return nil, codeOf(err)
		}
		return txOf(inv), nil
	case MethodPayInvoice:
		return s.pay(c, p)
	case MethodSettleHoldInvoice, MethodCancelHoldInvoice:
		var h backend.PaymentHash
		var pre backend.Preimage
		if req.Method == MethodSettleHoldInvoice {
			var err error
			if pre, err = backend.ParsePreimage(str(p, "preimage")); err != nil {
				return nil, &responseError{CodeInternal, "invalid preimage format"}
			}
			h = pre.Hash()
		} else {
			var err error
			if h, err = backend.ParsePaymentHash(str(p, "payment_hash")); err != nil {
				return nil, &responseError{CodeOther, "payment_hash: " + err.Error()}
			}
		}
		inv, err := s.b.LookupInvoice(ctx, h)
		if req.Method == MethodSettleHoldInvoice && (err == nil && inv.State != backend.StateHeld || errors.Is(err, backend.ErrNotFound)) {
			// Alby Hub settles only accepted hold invoices.
			return nil, &responseError{CodeInternal, "failed to find accepted hold invoice"}
		}
		if err != nil {
			return nil, codeOf(err)
		}
		if req.Method == MethodSettleHoldInvoice {
			err = s.b.SettleInvoice(ctx, pre)
		} else {
			err = s.b.CancelInvoice(ctx, h)
		}
		if err != nil {
			return nil, codeOf(err)
		}
		return map[string]any{}, nil
	}
	return nil, &responseError{CodeNotImplemented, "unknown method " + req.Method}
}

func (s *Service) methodsOf(c *connection) []string {
	var out []string
	for _, m := range s.served() {
		if c.methods[m] {
			out = append(out, m)
		}
	}
	return out
}

// pay checks the connection's limits, pays and records the outgoing
// payment for lookup_invoice.
func (s *Service) pay(c *connection, p map[string]any) (any, *responseError) {
	bolt11 := str(p, "invoice")
	d, err := backend.DecodeInvoice(bolt11)
	if err != nil {
		return nil, &responseError{CodeOther, "invoice: " + err.Error()}
	}
	amount := d.Amount
	opts := backend.PayOptions{Timeout: s.payTO}
	if amount == 0 {
		amount = backend.MilliSat(num(p, "amount"))
		opts.Amount = amount
	}
	if rerr := c.reserve(amount); rerr != nil {
		return nil, rerr
	}
	t := &transaction{Type: "outgoing", State: "pending", Invoice: d.PaymentRequest, PaymentHash: d.PaymentHash.String(), Amount: int64(amount), CreatedAt: time.Now().Unix()}
	s.mu.Lock()
	if old := s.paid[d.PaymentHash]; old == nil || old.State != "settled" {
		s.paid[d.PaymentHash] = t
	}
	// Outgoing records answer lookup_invoice for a day, long enough for a
	// client to resolve a payment whose answer it missed.
	for h, old := range s.paid {
		if old.State != "pending" && old.CreatedAt < time.Now().Add(-paidKeep).Unix() {
			delete(s.paid, h)
		}
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.ctx, s.payTO+15*time.Second)
	defer cancel()
	pm, err := s.b.PayInvoice(ctx, bolt11, opts)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		c.charge(pm.Fee)
		t.State, t.Preimage, t.FeesPaid, t.SettledAt = "settled", pm.Preimage.String(), int64(pm.Fee), time.Now().Unix()
		return map[string]any{"preimage": pm.Preimage.String(), "fees_paid": int64(pm.Fee)}, nil
	case errors.Is(err, backend.ErrPaymentUnknown):
		// Still pending: the budget stays reserved.
	default:
		c.charge(-amount)
		t.State = "failed"
	}
	// Alby Hub answers every payment error with INTERNAL and the node's text.
	return nil, &responseError{CodeInternal, err.Error()}
}

// reserve takes amount from the connection's limits or refuses with
// QUOTA_EXCEEDED.
func (c *connection) reserve(amount backend.MilliSat) *responseError {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.perm.MaxPayment > 0 && amount > c.perm.MaxPayment {
		return &responseError{CodeQuotaExceeded, fmt.Sprintf("payment of %s is over this connection's limit of %s", amount, c.perm.MaxPayment)}
	}
	if c.perm.Budget > 0 {
		if now := time.Now(); now.Sub(c.periodStart) >= c.perm.BudgetPeriod {
			c.periodStart, c.spent = now, 0
		}
		if c.spent+amount > c.perm.Budget {
			return &responseError{CodeQuotaExceeded, fmt.Sprintf("payment of %s would exceed this connection's budget (%s of %s spent this period)", amount, c.spent, c.perm.Budget)}
		}
	}
	c.spent += amount
	return nil
}

func (c *connection) charge(m backend.MilliSat) {
	c.mu.Lock()
	c.spent += m
	c.mu.Unlock()
}

func txOf(inv *backend.Invoice) *transaction {
	t := &transaction{
		Type:        "incoming",
		Invoice:     inv.PaymentRequest,
		Description: inv.Memo,
		PaymentHash: inv.PaymentHash.String(),
		Amount:      int64(inv.Amount),
		CreatedAt:   inv.CreatedAt.Unix(),
		ExpiresAt:   inv.ExpiresAt.Unix(),
	}
	switch inv.State {
	case backend.StateSettled:
		t.State, t.SettledAt = "settled", inv.SettledAt.Unix()
		if inv.AmountReceived > 0 {
			t.Amount = int64(inv.AmountReceived)
		}
	case backend.StateHeld:
		t.State = "accepted"
	case backend.StateCanceled:
		t.State = "failed"
	default:
		t.State = "pending"
		if inv.Expired(time.Now()) {
			t.State = "expired"
		}
	}
	if inv.Preimage != nil && inv.State == backend.StateSettled {
		t.Preimage = inv.Preimage.String()
	}
	return t
}

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
