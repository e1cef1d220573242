package lnurl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// Defaults for the zero values of Config.
const (
	DefaultParamsTTL    = 30 * time.Second
	DefaultPollInterval = time.Second
	DefaultCallTimeout  = 30 * time.Second
	DefaultRetain       = 24 * time.Hour
)

// Config says which LNURL-pay service a Client uses and how it talks to it.
// Exactly one of Address and LNURL is set.
type Config struct {
	// Address is a lightning address, user@domain (LUD-16).
	Address string
	// LNURL is a bech32 LNURL (LUD-01), with or without "lightning:", or
	// the https URL of a payRequest endpoint itself.
	LNURL string
	// HTTPClient makes the requests; nil means a client of this package's
	// own, which follows up to 5 redirects (a lightning address on a
	// custom domain may redirect to its provider) but never to plain http
	// that AllowHTTP would refuse. Each request is bounded by
	// CallTimeout whatever the client's settings.
	HTTPClient *http.Client
	// AllowHTTP permits plain http to clearnet hosts. By LUD-01 and LUD-16
	// a service is https (http only for .onion hosts); http to a loopback
	// host is always permitted, since it never leaves the machine, and a
	// lightning address on a loopback host is fetched over http. Set
	// AllowHTTP for test services on other hosts (containers), never for
	// real ones.
	AllowHTTP bool
	// ParamsTTL is how long pay parameters are reused before being fetched
	// again (DefaultParamsTTL when zero), once the service has shown that
	// its callback stays the same from one fetch to the next. Services
	// that bind a callback to one invoice of theirs (BTCPay Server makes
	// a store invoice per fetch) get a fetch per invoice instead. A
	// callback that refuses, or returns a payment hash this client
	// already handed out, drops them at once and is asked once more with
	// fresh ones.
	ParamsTTL time.Duration
	// PollInterval is how often WaitInvoice asks the verify URL
	// (DefaultPollInterval when zero): the Backend's Options.PollInterval,
	// since LNURL-pay has no push and the Backend polls LookupInvoice.
	PollInterval time.Duration
	// CallTimeout bounds each HTTP request (DefaultCallTimeout when
	// zero).
	CallTimeout time.Duration
	// Retain is how long past its expiry an invoice this client created
	// stays known to LookupInvoice (DefaultRetain when zero). The record is
	// held in memory only; a new Client knows no earlier invoices.
	Retain time.Duration
	// Logger receives warnings about services that stray from the LUDs;
	// nil means slog.Default().
	Logger *slog.Logger
}

// Client is the backend.Driver whose invoices come from a LNURL-pay
// service; New wraps it in a *backend.Backend.
//
// What LNURL-pay cannot do, it refuses rather than fakes:
//   - the amount is required (LUD-06 has no any-amount invoices): zero is
//     ErrInvalid;
//   - the service chooses the preimage, and the description hash is the
//     hash of its own metadata: InvoiceRequest.Preimage and
//     InvoiceRequest.DescriptionHash and HashedDescription are ErrUnsupported;
//   - the memo and expiry are the service's: InvoiceRequest.Memo and
//     InvoiceRequest.Expiry are ignored (the invoice commits to the
//     metadata's hash instead of a memo), and the returned Invoice says the
//     expiry the service chose;
//   - invoices can be looked up (and so waited for: the Backend polls
//     LookupInvoice, since LNURL-pay has no push) only when the service gave
//     a LUD-21 verify URL with them, and only by the Client that created
//     them. Since verify URLs come with each invoice, not with the pay
//     parameters, an invoice without one is ErrUnsupported.
//
// Client has no hold invoices and cannot pay. Its Ping fetches the pay
// parameters, the first request of LUD-06.
type Client struct {
	cfg    Config
	hc     *http.Client
	ownHC  bool
	log    *slog.Logger
	payURL string   // where the pay parameters are
	addr   *Address // set when configured by lightning address

	fetch chan struct{} // one refresh of reusable pay parameters at a time

	mu         sync.Mutex
	params     *payParams
	paramsAt   time.Time
	paramsUsed bool         // params served an invoice already
	callbacks  callbackMode // what fetches so far showed of the callback
	lastCB     string       // the callback of the latest fetch
	invoices   map[backend.PaymentHash]*record
	prunedAt   time.Time
	closeOnce  sync.Once
}

// record is what the Client remembers of an invoice it created.
type record struct {
	inv    backend.Invoice
	verify string // LUD-21 verify URL, "" when the service gave none
}

var (
	_ backend.Driver = (*Client)(nil)
	_ backend.Pinger = (*Client)(nil)
)

// New returns the Backend for the service cfg names, after fetching its pay
// parameters once, so a wrong address or a service that is not LNURL-pay
// fails here rather than at the first invoice. A service that cannot be
// reached gives an error wrapping backend.ErrUnavailable.
func New(ctx context.Context, cfg Config) (*backend.Backend, error) {
	c, err := open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return backend.New(c, backend.Options{CallTimeout: cfg.CallTimeout, PollInterval: cfg.PollInterval}), nil
}

func open(ctx context.Context, cfg Config) (*Client, error) {
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := c.fetchParams(ctx, false, false); err != nil {
		return nil, err
	}
	return c, nil
}

// Ping implements backend.Pinger: it fetches the pay parameters anew (the
// first request of LUD-06), so a service that is down or no longer serves
// LNURL-pay is reported.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.fetchParams(ctx, false, false)
	return err
}

// newClient checks cfg and builds the Client without contacting anyone.
func newClient(cfg Config) (*Client, error) {
	if cfg.ParamsTTL <= 0 {
		cfg.ParamsTTL = DefaultParamsTTL
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.Retain <= 0 {
		cfg.Retain = DefaultRetain
	}
	c := &Client{
		cfg:      cfg,
		hc:       cfg.HTTPClient,
		log:      cfg.Logger,
		fetch:    make(chan struct{}, 1),
		invoices: make(map[backend.PaymentHash]*record),
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: cfg.CallTimeout, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			// A lightning address on a custom domain may redirect to
			// its provider; it must not lead to plain http.
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			if _, err := checkURL(req.URL.String(), "redirect", cfg.AllowHTTP); err != nil {
				return &redirectRefused{err}
			}
			return nil
		}}
		c.ownHC = true
	}
	switch {
	case cfg.Address != "" && cfg.LNURL != "":
		return nil, fmt.Errorf("lnurl: %w: set Address or LNURL, not both", backend.ErrInvalid)
	case cfg.Address != "":
		a, err := ParseAddress(cfg.Address)
		if err != nil {
			return nil, err
		}
		c.addr = &a
		c.payURL = a.wellKnownURL(cfg.AllowHTTP)
	case cfg.LNURL != "":
		raw, err := resolveLNURL(cfg.LNURL)
		if err != nil {
			return nil, err
		}
		if _, err := checkURL(raw, "LNURL", cfg.AllowHTTP); err != nil {
			return nil, fmt.Errorf("lnurl: %w: %v", backend.ErrInvalid, err)
		}
		c.payURL = raw
	default:
		return nil, fmt.Errorf("lnurl: %w: Config needs an Address (user@domain) or an LNURL", backend.ErrInvalid)
	}
	return c, nil
}

// resolveLNURL turns what Config.LNURL may hold into a URL: a bech32
// LNURL, a LUD-17 lnurlp:// URL, or an http(s) URL as is.
func resolveLNURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "https://"), strings.HasPrefix(lower, "http://"):
		return s, nil
	case strings.HasPrefix(lower, "lnurlp://"):
		// LUD-17: the scheme stands for https, or http for onion hosts.
		rest := s[len("lnurlp://"):]
		host, _, _ := strings.Cut(rest, "/")
		if isOnion(host) {
			return "http://" + rest, nil
		}
		return "https://" + rest, nil
	}
	return Decode(s)
}

// PayURL is the URL the Client fetches pay parameters from.
func (c *Client) PayURL() string { return c.payURL }

// Close forgets the invoices and closes idle connections of the Client's
// own HTTP client.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.invoices = map[backend.PaymentHash]*record{}
		c.mu.Unlock()
		if c.ownHC {
			c.hc.CloseIdleConnections()
		}
	})
	return nil
}
