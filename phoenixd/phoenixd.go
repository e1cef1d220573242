package phoenixd

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf16"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/basicauth"
	"github.com/l402kit/l402kit/internal/plumbing/eventwait"
)

// MaxDescription is the longest description phoenixd accepts, in UTF-16 code
// units (Kotlin's String.length), shorter than BOLT11's 639 bytes.
const MaxDescription = 128

// Defaults for Config's zero fields.
const (
	DefaultDialTimeout  = 5 * time.Second
	DefaultCallTimeout  = 30 * time.Second
	DefaultPollInterval = time.Second
)

// maxBody bounds what the adapter reads from one answer: phoenixd's largest
// answers we ask for are one payment record.
const maxBody = 1 << 20

// Config sets up a Client.
type Config struct {
	// URL is phoenixd's HTTP address, e.g. "http://127.0.0.1:9740"; a path
	// prefix is kept (for a phoenixd behind a reverse proxy).
	URL string
	// Password is http-password from phoenix.conf (the limited-access
	// password works for everything but PayInvoice).
	Password string
	// HTTPClient carries the calls; nil means a client whose dials time out
	// after DialTimeout. Its Timeout should stay zero: each call has its own
	// deadline.
	HTTPClient *http.Client
	// DialTimeout bounds connecting when HTTPClient is nil.
	DialTimeout time.Duration
	// CallTimeout bounds each call except WaitInvoice and PayInvoice
	// (bounded by PayOptions.Timeout) when the caller's context has no
	// deadline: the Backend's CallTimeout.
	CallTimeout time.Duration
	// PollInterval is how often WaitInvoice looks an invoice up while the
	// websocket is down.
	PollInterval time.Duration
	// Logger receives websocket reconnections; nil means slog.Default().
	Logger *slog.Logger
}

// driver is phoenixd as a backend.Driver with Waiter, Payer, Informer and
// Pinger; not HoldInvoicer (phoenixd has no hold invoices) nor FeeLimiter
// (phoenixd takes no fee limit). It is safe for concurrent use.
type driver struct {
	api    *basicauth.API
	reqTO  time.Duration
	poll   time.Duration
	dialTO time.Duration
	log    *slog.Logger
	hub    *eventwait.Hub
}

var (
	_ backend.Driver   = (*driver)(nil)
	_ backend.Waiter   = (*driver)(nil)
	_ backend.Payer    = (*driver)(nil)
	_ backend.Informer = (*driver)(nil)
	_ backend.Pinger   = (*driver)(nil)
)

// New returns the Backend for the phoenixd at cfg.URL. It does not contact
// the node: a phoenixd that is down at start is reported by the first call.
func New(_ context.Context, cfg Config) (*backend.Backend, error) {
	d, err := newDriver(cfg)
	if err != nil {
		return nil, err
	}
	return backend.New(d, backend.Options{CallTimeout: cfg.CallTimeout}), nil
}

func newDriver(cfg Config) (*driver, error) {
	dialTO := orDefault(cfg.DialTimeout, DefaultDialTimeout)
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: newTransport(dialTO, nil)}
	}
	api, err := basicauth.New("phoenixd", cfg.URL, cfg.Password, hc)
	if err != nil {
		return nil, err
	}
	c := &driver{
		api:    api,
		reqTO:  orDefault(cfg.CallTimeout, DefaultCallTimeout),
		poll:   orDefault(cfg.PollInterval, DefaultPollInterval),
		dialTO: dialTO,
		log:    cfg.Logger,
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.hub = newHub(c)
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// newTransport is basicauth's transport with the TLS handshake bounded by
// the dial timeout too, and no HTTP proxy: phoenixd is local or on a
// private network; never route it through HTTP_PROXY.
func newTransport(dialTimeout time.Duration, conf *tls.Config) *http.Transport {
	t := basicauth.NewTransport(dialTimeout, conf)
	t.TLSHandshakeTimeout = dialTimeout
	t.Proxy = nil
	return t
}

// Close stops the websocket listener and idle connections. Waits in
// progress end with backend.ErrUnavailable.
func (c *driver) Close() error {
	c.hub.Close()
	c.api.Close()
	return nil
}

// CreateInvoice implements backend.Driver through POST /createinvoice.
func (c *driver) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	if req.Preimage != nil {
		return nil, fmt.Errorf("phoenixd: %w: phoenixd chooses every invoice's preimage itself", backend.ErrUnsupported)
	}
	form := url.Values{}
	if req.Amount > 0 {
		sat, err := wholeSats(req.Amount)
		if err != nil {
			return nil, err
		}
		form.Set("amountSat", strconv.FormatInt(sat, 10))
	}
	if h := req.CommittedDescriptionHash(); h != nil {
		form.Set("descriptionHash", hex.EncodeToString(h[:]))
	} else {
		if n := len(utf16.Encode([]rune(req.Memo))); n > MaxDescription {
			return nil, fmt.Errorf("phoenixd: %w: memo is %d characters, phoenixd allows %d", backend.ErrInvalid, n, MaxDescription)
		}
		// phoenixd requires one of description and descriptionHash; an
		// empty memo is sent as an empty description.
		form.Set("description", req.Memo)
	}
	secs := int64(req.Expiry / time.Second)
	form.Set("expirySeconds", strconv.FormatInt(secs, 10))

	var out generatedInvoice
	if err := c.call(ctx, http.MethodPost, "/createinvoice", form, &out); err != nil {
		return nil, err
	}
	hash, err := backend.ParsePaymentHash(out.PaymentHash)
	if err != nil {
		return nil, fmt.Errorf("phoenixd: createinvoice answered a bad paymentHash: %w", err)
	}
	inv := &backend.Invoice{
		PaymentHash:    hash,
		PaymentRequest: out.Serialized,
		Amount:         req.Amount,
		Memo:           req.Memo,
		State:          backend.StateOpen,
		CreatedAt:      time.Now().Truncate(time.Second),
	}
	inv.ExpiresAt = inv.CreatedAt.Add(time.Duration(secs) * time.Second)
	if d, err := backend.DecodeInvoice(out.Serialized); err == nil {
		if d.PaymentHash != hash {
			return nil, fmt.Errorf("phoenixd: createinvoice answered hash %s for an invoice of hash %s", hash, d.PaymentHash)
		}
		inv.CreatedAt, inv.ExpiresAt = d.CreatedAt, d.ExpiresAt()
	} else {
		c.log.Warn("phoenixd: cannot decode the invoice phoenixd made", "hash", hash, "err", err)
	}
	return inv, nil
}

// wholeSats converts an amount phoenixd must receive in satoshis, refusing
// one it would have to round.
func wholeSats(m backend.MilliSat) (int64, error) {
	if m%1000 != 0 {
		return 0, fmt.Errorf("phoenixd: %w: amount %d msat is not a whole number of satoshis, and phoenixd takes amounts in satoshis", backend.ErrInvalid, int64(m))
	}
	return m.Sats(), nil
}

// LookupInvoice implements backend.Driver through GET
// /payments/incoming/{paymentHash}.
func (c *driver) LookupInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	var p incomingPayment
	if err := c.call(ctx, http.MethodGet, "/payments/incoming/"+hash.String(), nil, &p); err != nil {
		return nil, err
	}
	return p.invoice(hash)
}

// PayInvoice implements backend.Payer through POST /payinvoice. It needs the
// full-access password. phoenixd takes no fee limit, so the driver is no
// backend.FeeLimiter and the Backend refuses a PayOptions.MaxFee.
func (c *driver) PayInvoice(ctx context.Context, bolt11 string, opts backend.PayOptions) (*backend.Payment, error) {
	form := url.Values{"invoice": {bolt11}}
	if opts.Amount > 0 {
		// An any-amount invoice. One with an amount is paid without
		// amountSat, so phoenixd pays its exact millisatoshis.
		sat, err := wholeSats(opts.Amount)
		if err != nil {
			return nil, err
		}
		form.Set("amountSat", strconv.FormatInt(sat, 10))
	}
	var out paymentResult
	if err := c.call(ctx, http.MethodPost, "/payinvoice", form, &out); err != nil {
		return nil, err
	}
	return out.payment()
}

// Info implements backend.Informer through GET /getinfo.
func (c *driver) Info(ctx context.Context) (*backend.NodeInfo, error) {
	var out nodeInfo
	if err := c.call(ctx, http.MethodGet, "/getinfo", nil, &out); err != nil {
		return nil, err
	}
	return out.nodeInfo(), nil
}

// Ping implements backend.Pinger through GET /getinfo.
func (c *driver) Ping(ctx context.Context) error {
	var out nodeInfo
	return c.call(ctx, http.MethodGet, "/getinfo", nil, &out)
}
