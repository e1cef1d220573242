package phoenixd

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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

// generatedInvoice is /createinvoice's answer (GeneratedInvoice in Api.kt);
// amountSat is left out for an any-amount invoice.
type generatedInvoice struct {
	AmountSat   *int64 `json:"amountSat"`
	PaymentHash string `json:"paymentHash"`
	Serialized  string `json:"serialized"`
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

// incomingPayment is GET /payments/incoming/{paymentHash}'s answer
// (IncomingPayment in JsonSerializers.kt). Times are Unix milliseconds; fees
// is in millisatoshis, the *Sat fields in satoshis. Absent fields are null in
// phoenixd's model and left out of its JSON.
type incomingPayment struct {
	Type         string  `json:"type"`
	SubType      string  `json:"subType"`
	PaymentHash  string  `json:"paymentHash"`
	Preimage     string  `json:"preimage"`
	ExternalID   *string `json:"externalId"`
	Description  *string `json:"description"`
	Invoice      *string `json:"invoice"`
	IsPaid       bool    `json:"isPaid"`
	IsExpired    bool    `json:"isExpired"`
	RequestedSat *int64  `json:"requestedSat"`
	ReceivedSat  int64   `json:"receivedSat"`
	Fees         int64   `json:"fees"`
	PayerNote    *string `json:"payerNote"`
	PayerKey     *string `json:"payerKey"`
	ExpiresAt    *int64  `json:"expiresAt"`
	CompletedAt  *int64  `json:"completedAt"`
	CreatedAt    int64   `json:"createdAt"`
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

// invoice converts phoenixd's record. The BOLT11 string, when present, is
// the authority for amount, creation time and expiry: it carries millisatoshis
// and the exact times the payer sees, where phoenixd's JSON rounds amounts to
// satoshis and stamps its own database times.
func (p *incomingPayment) invoice(want backend.PaymentHash) (*backend.Invoice, error) {
	hash, err := backend.ParsePaymentHash(p.PaymentHash)
	if err != nil {
		return nil, fmt.Errorf("phoenixd: incoming payment has a bad paymentHash: %w", err)
	}
	if !want.IsZero() && hash != want {
		return nil, fmt.Errorf("phoenixd: asked for invoice %s, phoenixd answered %s", want, hash)
	}
	inv := &backend.Invoice{
		PaymentHash:    hash,
		AmountReceived: backend.Sat(p.ReceivedSat),
		State:          backend.StateOpen,
		CreatedAt:      time.UnixMilli(p.CreatedAt),
	}
	if p.Description != nil {
		inv.Memo = *p.Description
	}
	if p.RequestedSat != nil {
		inv.Amount = backend.Sat(*p.RequestedSat)
	}
	if p.ExpiresAt != nil {
		inv.ExpiresAt = time.UnixMilli(*p.ExpiresAt)
	}
	if p.Invoice != nil {
		inv.PaymentRequest = *p.Invoice
		if d, err := backend.DecodeInvoice(*p.Invoice); err == nil && d.PaymentHash == hash {
			inv.Amount = d.Amount
			inv.CreatedAt = d.CreatedAt
			inv.ExpiresAt = d.ExpiresAt()
			if p.Description == nil {
				inv.Memo = d.Memo
			}
		}
	}
	if p.Preimage != "" {
		pre, err := backend.ParsePreimage(p.Preimage)
		if err != nil {
			return nil, fmt.Errorf("phoenixd: incoming payment %s has a bad preimage: %w", hash, err)
		}
		if pre.Matches(hash) {
			inv.Preimage = &pre
		}
	}
	if p.IsPaid {
		inv.State = backend.StateSettled
		if p.CompletedAt != nil {
			inv.SettledAt = time.UnixMilli(*p.CompletedAt)
		}
	}
	return inv, nil
}

// paymentResult is /payinvoice's answer: PaymentSent on success, or
// PaymentFailed ({"paymentHash", "reason"}), both with HTTP 200.
type paymentResult struct {
	RecipientAmountSat *int64  `json:"recipientAmountSat"`
	RoutingFeeSat      *int64  `json:"routingFeeSat"`
	PaymentID          string  `json:"paymentId"`
	PaymentHash        string  `json:"paymentHash"`
	PaymentPreimage    string  `json:"paymentPreimage"`
	Reason             *string `json:"reason"`
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
	if out.Reason != nil || out.PaymentPreimage == "" {
		reason := "no preimage in the answer"
		if out.Reason != nil {
			reason = *out.Reason
		}
		return nil, fmt.Errorf("phoenixd: %w: %s", backend.ErrPaymentFailed, reason)
	}
	pre, err := backend.ParsePreimage(out.PaymentPreimage)
	if err != nil {
		return nil, fmt.Errorf("phoenixd: %w: payment answered a bad preimage: %v", backend.ErrPaymentUnknown, err)
	}
	pay := &backend.Payment{Preimage: pre}
	if out.RecipientAmountSat != nil {
		pay.Amount = backend.Sat(*out.RecipientAmountSat)
	}
	if out.RoutingFeeSat != nil {
		pay.Fee = backend.Sat(*out.RoutingFeeSat)
	}
	return pay, nil
}

// nodeInfo is GET /getinfo's answer (NodeInfo in JsonSerializers.kt). chain,
// blockHeight and version appear in 0.8.0's source; the documented example
// shows only nodeId and channels, so they are optional here.
type nodeInfo struct {
	NodeID   string `json:"nodeId"`
	Channels []struct {
		State               string `json:"state"`
		ChannelID           string `json:"channelId"`
		BalanceSat          *int64 `json:"balanceSat"`
		InboundLiquiditySat *int64 `json:"inboundLiquiditySat"`
		CapacitySat         *int64 `json:"capacitySat"`
		FundingTxID         string `json:"fundingTxId"`
	} `json:"channels"`
	Chain       *string `json:"chain"`
	BlockHeight *int64  `json:"blockHeight"`
	Version     *string `json:"version"`
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

func (n *nodeInfo) nodeInfo() *backend.NodeInfo {
	info := &backend.NodeInfo{NodeID: n.NodeID}
	if n.Chain != nil {
		info.Network = network(*n.Chain)
	}
	if n.BlockHeight != nil && *n.BlockHeight > 0 && *n.BlockHeight <= math.MaxUint32 {
		info.BlockHeight = uint32(*n.BlockHeight)
		info.Synced = true
	}
	return info
}

// network maps phoenixd's chain name (lightning-kmp's Chain name lowercased:
// "mainnet", "testnet3", "testnet4", "regtest") to backend's names. Both
// testnets use the lntb invoice prefix, hence one name.
func network(chain string) string {
	switch c := strings.ToLower(chain); {
	case c == "mainnet" || c == "regtest" || c == "signet":
		return c
	case strings.HasPrefix(c, "testnet"):
		return "testnet"
	default:
		return c
	}
}

// call does one API call and decodes a 200 answer into out. A form goes in
// the body of a POST as application/x-www-form-urlencoded, as phoenixd reads
// it with receiveParameters.
func (c *driver) call(ctx context.Context, method, path string, form url.Values, out any) error {
	req, err := c.api.Request(ctx, method, path, form)
	if err != nil {
		return fmt.Errorf("phoenixd: %w: %v", backend.ErrInvalid, err)
	}
	req.Header.Set("Accept", "application/json")
	status, data, err := c.api.Do(req, maxBody)
	if err != nil {
		return c.transportError(ctx, path, err)
	}
	if status != http.StatusOK {
		return statusError(path, status, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("phoenixd: %w: %s: answer is not the JSON phoenixd sends: %v (body %q)", backend.ErrUnavailable, path, err, snippet(data))
	}
	return nil
}

// transportError classifies a failure to get an answer. A caller's cancel
// stays a plain context error; everything else means the node could not be
// reached in time: ErrUnavailable. For /payinvoice, a failure after the
// request may have reached phoenixd leaves the payment's outcome unknown:
// ErrPaymentUnknown, which no caller retries blindly.
func (c *driver) transportError(ctx context.Context, path string, err error) error {
	if errors.Is(err, context.Canceled) && ctx.Err() == context.Canceled {
		return fmt.Errorf("phoenixd: %s: %w", path, context.Canceled)
	}
	if (path == "/payinvoice" || path == "/payoffer") && !basicauth.DialFailed(err) {
		return fmt.Errorf("phoenixd: %w: payinvoice: no answer, the payment's outcome is unknown (check GET /payments/outgoingbyhash): %w", backend.ErrPaymentUnknown, err)
	}
	return fmt.Errorf("phoenixd: %w: %s: %w", backend.ErrUnavailable, path, err)
}

// statusError maps phoenixd's non-200 answers, whose bodies are plain text
// (Api.kt's StatusPages): 401 "Invalid authentication (...)", 404 "Not found"
// for an unknown payment or "Unknown endpoint (check api doc)" for an unknown
// route, 405 "Invalid http method (...)", 400 with the parameter problem, 500
// with an exception's message.
func statusError(path string, status int, body []byte) error {
	text := snippet(body)
	var sentinel error
	hint := ""
	switch {
	case status == http.StatusUnauthorized:
		sentinel = backend.ErrInvalid
		hint = " (wrong password"
		if path == "/payinvoice" {
			hint += ", or the limited-access password, which cannot pay"
		}
		hint += ")"
	case status == http.StatusNotFound && text == "Not found":
		sentinel = backend.ErrNotFound
	case status == http.StatusNotFound:
		// "Unknown endpoint (check api doc)" from an older phoenixd, or a
		// reverse proxy's page for a wrong path prefix: never a missing
		// invoice, which would make every lookup look like ErrNotFound.
		sentinel = backend.ErrUnsupported
		hint = " (phoenixd or a proxy in front of it does not know this route: check the URL's path and phoenixd's version)"
	case status == http.StatusMethodNotAllowed:
		sentinel = backend.ErrUnsupported
	case status >= 400 && status < 500:
		sentinel = backend.ErrInvalid
	default:
		sentinel = backend.ErrUnavailable
	}
	return fmt.Errorf("phoenixd: %w: %s: HTTP %d%s: %q", sentinel, path, status, hint, text)
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
