package nwc

import (
	"context"
	"encoding/json"
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
