package lnurl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
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

// maxBody bounds every response read: LUD-06 metadata may carry a 100 kB
// image in base64 (136536 characters), so 1 MiB leaves room without letting
// a service make us buffer without end.
const maxBody = 1 << 20

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

// callbackMode is what a Client has learned of its service's callback.
type callbackMode int

const (
	// callbackUnknown: one fetch so far; its parameters serve one invoice.
	callbackUnknown callbackMode = iota
	// callbackStatic: two fetches gave the same callback; parameters are
	// reused for ParamsTTL.
	callbackStatic
	// callbackPerFetch: the callback changed between fetches (BTCPay binds
	// each to one store invoice: it answers again with the same invoice,
	// cancels it for another amount, and refuses once it is paid), or
	// repeated a payment hash; every invoice gets parameters of its own.
	callbackPerFetch
)

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

// CreateInvoice asks the service's callback for an invoice of req.Amount and
// returns it only if its amount and description hash are what LUD-06
// requires; any other answer is an error wrapping backend.ErrInvalid that
// says what was wrong, and no invoice.
func (c *Client) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	if req.Preimage != nil {
		return nil, fmt.Errorf("lnurl: %w: a LNURL-pay service chooses the preimage itself", backend.ErrUnsupported)
	}
	if req.CommittedDescriptionHash() != nil {
		return nil, fmt.Errorf("lnurl: %w: a LNURL-pay invoice's description hash is the hash of the service's own metadata, not the caller's", backend.ErrUnsupported)
	}
	if req.Amount == 0 {
		return nil, fmt.Errorf("lnurl: %w: LNURL-pay needs an amount (LUD-06 has no any-amount invoices)", backend.ErrInvalid)
	}
	for fresh := false; ; fresh = true {
		p, err := c.paramsForInvoice(ctx, fresh)
		if err != nil {
			return nil, err
		}
		if int64(req.Amount) < p.MinSendable || int64(req.Amount) > p.MaxSendable {
			return nil, fmt.Errorf("lnurl: %w: amount %d msat is outside the service's range %d..%d msat",
				backend.ErrInvalid, int64(req.Amount), p.MinSendable, p.MaxSendable)
		}
		inv, verify, err := c.callback(ctx, p, req.Amount)
		if err == nil {
			if c.claim(inv, verify) {
				return inv, nil
			}
			// A callback bound to one invoice of the service answers
			// again with that invoice; it is someone else's now.
			c.mu.Lock()
			c.callbacks = callbackPerFetch
			c.mu.Unlock()
			err = fmt.Errorf("lnurl: %w: callback answered with invoice %s, which this client already handed out",
				backend.ErrInvalid, inv.PaymentHash)
		}
		c.forgetParams(p)
		// A refusal may be the service's way of saying the parameters
		// are stale (BTCPay: "Invoice not in a valid payable state");
		// an unreachable service is not asked again here.
		if fresh || !errors.Is(err, backend.ErrInvalid) || ctx.Err() != nil {
			return nil, err
		}
		c.log.Debug("lnurl: callback refused; fetching pay parameters again", "url", c.payURL, "err", err)
	}
}

// callback asks for the invoice and checks it against LUD-06 step 6 and 7.
func (c *Client) callback(ctx context.Context, p *payParams, amount backend.MilliSat) (*backend.Invoice, string, error) {
	u, err := checkURL(p.Callback, "callback", c.cfg.AllowHTTP)
	if err != nil {
		return nil, "", fmt.Errorf("lnurl: %w: %v", backend.ErrInvalid, err)
	}
	// Setting the parameter keeps whatever query the callback carries,
	// which is LUD-06's "<callback><?|&>amount=".
	q := u.Query()
	q.Set("amount", strconv.FormatInt(int64(amount), 10))
	u.RawQuery = q.Encode()

	var resp invoiceResponse
	if err := c.getJSON(ctx, u.String(), "callback", &resp); err != nil {
		return nil, "", err
	}
	if resp.PR == "" {
		return nil, "", fmt.Errorf("lnurl: %w: callback answered without an invoice (no \"pr\")", backend.ErrInvalid)
	}
	d, err := backend.DecodeInvoice(resp.PR)
	if err != nil {
		return nil, "", fmt.Errorf("lnurl: callback's invoice: %w", err)
	}
	if d.Amount != amount {
		return nil, "", fmt.Errorf("lnurl: %w: callback's invoice is for %d msat, asked %d msat (LUD-06 step 7)",
			backend.ErrInvalid, int64(d.Amount), int64(amount))
	}
	want := metadataHash(p.Metadata)
	switch {
	case d.DescriptionHash == nil:
		return nil, "", fmt.Errorf("lnurl: %w: callback's invoice has no description hash; LUD-06 step 6 wants sha256(metadata) = %x",
			backend.ErrInvalid, want)
	case *d.DescriptionHash != want:
		return nil, "", fmt.Errorf("lnurl: %w: callback's invoice description hash %x is not sha256(metadata) = %x (LUD-06 step 6)",
			backend.ErrInvalid, *d.DescriptionHash, want)
	}
	if resp.Verify != "" {
		if _, err := checkURL(resp.Verify, "verify URL", c.cfg.AllowHTTP); err != nil {
			return nil, "", fmt.Errorf("lnurl: %w: callback's LUD-21 %v", backend.ErrInvalid, err)
		}
	}
	inv := d.Invoice() // no memo: the invoice commits to the metadata's hash
	inv.PaymentRequest = resp.PR
	return inv, resp.Verify, nil
}

// LookupInvoice asks the invoice's LUD-21 verify URL how it stands. Only
// invoices this Client created are known (others are ErrNotFound); those
// the service gave no verify URL for are ErrUnsupported.
func (c *Client) LookupInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	c.mu.Lock()
	rec, ok := c.invoices[hash]
	var inv backend.Invoice
	var verify string
	if ok {
		inv, verify = rec.inv, rec.verify
	}
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("lnurl: %w: invoice %s was not created by this client (LNURL-pay offers no lookup of other invoices)",
			backend.ErrNotFound, hash)
	}
	if verify == "" {
		return nil, fmt.Errorf("lnurl: %w: the service gave no LUD-21 verify URL for invoice %s, so its state cannot be learned (the payer's preimage still proves payment)",
			backend.ErrUnsupported, hash)
	}
	if inv.State == backend.StateSettled {
		return &inv, nil // settlement is final; the verify URL need not be asked again
	}

	var raw json.RawMessage
	if err := c.getJSON(ctx, verify, "verify URL", &raw); err != nil {
		var se *serviceError
		if errors.As(err, &se) && strings.Contains(strings.ToLower(se.reason), "not found") {
			return nil, fmt.Errorf("lnurl: %w: verify URL for invoice %s: %s", backend.ErrNotFound, hash, se.reason)
		}
		return nil, err
	}
	settled, preimage, err := parseVerify(raw, hash, inv.PaymentRequest)
	if err != nil {
		return nil, fmt.Errorf("lnurl: %w: verify URL for invoice %s answered garbage: %v", backend.ErrInvalid, hash, err)
	}
	if !settled {
		return &inv, nil
	}
	inv.State = backend.StateSettled
	inv.Preimage = &preimage
	inv.AmountReceived = inv.Amount // LUD-21 does not say what arrived; the invoice's amount is what settles it
	inv.SettledAt = time.Now()
	c.mu.Lock()
	if rec, ok := c.invoices[hash]; ok {
		rec.inv = inv
	}
	c.mu.Unlock()
	return &inv, nil
}

// parseVerify checks a LUD-21 verify answer for the invoice pr with hash
// and returns whether it is settled, with its checked preimage.
func parseVerify(raw json.RawMessage, hash backend.PaymentHash, pr string) (bool, backend.Preimage, error) {
	var v struct {
		Status   string  `json:"status"`
		Settled  *bool   `json:"settled"`
		Preimage *string `json:"preimage"`
		PR       string  `json:"pr"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, backend.Preimage{}, fmt.Errorf("not a LUD-21 object: %v", err)
	}
	if v.Status != "" && !strings.EqualFold(v.Status, "OK") {
		return false, backend.Preimage{}, fmt.Errorf("status %q", v.Status)
	}
	if v.Settled == nil {
		return false, backend.Preimage{}, errors.New("no \"settled\" field")
	}
	if v.PR == "" {
		return false, backend.Preimage{}, errors.New("no \"pr\" field")
	}
	if !strings.EqualFold(strings.TrimSpace(v.PR), pr) {
		return false, backend.Preimage{}, errors.New("\"pr\" is another invoice")
	}
	if !*v.Settled {
		return false, backend.Preimage{}, nil
	}
	if v.Preimage == nil {
		return false, backend.Preimage{}, errors.New("settled without a preimage, so the claim cannot be checked")
	}
	p, err := backend.ParsePreimage(*v.Preimage)
	if err != nil {
		return false, backend.Preimage{}, err
	}
	if !p.Matches(hash) {
		return false, backend.Preimage{}, fmt.Errorf("preimage %s does not hash to the payment hash", p)
	}
	return true, p, nil
}

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

// claim keeps inv and its verify URL for lookups, unless this client
// already handed out an invoice of that payment hash (false), and now and
// then drops invoices that expired longer than Retain ago.
func (c *Client) claim(inv *backend.Invoice, verify string) bool {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.invoices[inv.PaymentHash]; dup {
		return false
	}
	c.invoices[inv.PaymentHash] = &record{inv: *inv, verify: verify}
	if now.Sub(c.prunedAt) < time.Minute {
		return true
	}
	c.prunedAt = now
	for h, r := range c.invoices {
		if !r.inv.ExpiresAt.IsZero() && now.Sub(r.inv.ExpiresAt) > c.cfg.Retain {
			delete(c.invoices, h)
		}
	}
	return true
}

// paramsForInvoice returns pay parameters for one invoice: those cached,
// when the service's callback is known to be static and they are younger
// than ParamsTTL, or those New fetched if no invoice used them yet; else
// (and always when fresh) a fetch of its own.
func (c *Client) paramsForInvoice(ctx context.Context, fresh bool) (*payParams, error) {
	c.mu.Lock()
	if p := c.params; !fresh && p != nil && time.Since(c.paramsAt) < c.cfg.ParamsTTL {
		switch {
		case c.callbacks == callbackStatic:
			c.mu.Unlock()
			return p, nil
		case !c.paramsUsed:
			// Fetched by New or Ping and not used yet: good for one
			// invoice whatever the callback's kind.
			c.paramsUsed = true
			c.mu.Unlock()
			return p, nil
		}
	}
	static := c.callbacks == callbackStatic && !fresh
	c.mu.Unlock()
	return c.fetchParams(ctx, static, true)
}

// fetchParams fetches and checks the pay parameters and learns from them
// whether the callback stays the same. With reuse (a static callback), one
// caller fetches at a time and the others take what it fetched; otherwise
// each caller gets parameters of its own. forInvoice marks them used.
func (c *Client) fetchParams(ctx context.Context, reuse, forInvoice bool) (*payParams, error) {
	if reuse {
		select {
		case c.fetch <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("lnurl: pay parameters: %w", ctx.Err())
		}
		defer func() { <-c.fetch }()
		c.mu.Lock()
		p := c.params
		if p != nil && c.callbacks == callbackStatic && time.Since(c.paramsAt) < c.cfg.ParamsTTL {
			c.mu.Unlock()
			return p, nil // fetched by whoever held the turn before us
		}
		c.mu.Unlock()
	}
	var p payParams
	if err := c.getJSON(ctx, c.payURL, "pay parameters", &p); err != nil {
		return nil, err
	}
	if err := c.checkParams(&p); err != nil {
		return nil, fmt.Errorf("lnurl: %w: pay parameters from %s: %v", backend.ErrInvalid, c.payURL, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.lastCB == "" || c.callbacks == callbackPerFetch:
	case c.lastCB == p.Callback:
		c.callbacks = callbackStatic
	case c.callbacks == callbackStatic:
		// A static callback moved (the service was reconfigured): learn
		// its kind again from the next fetch.
		c.callbacks = callbackUnknown
	default:
		c.callbacks = callbackPerFetch
	}
	c.lastCB = p.Callback
	c.params, c.paramsAt, c.paramsUsed = &p, time.Now(), forInvoice
	return &p, nil
}

func (c *Client) forgetParams(p *payParams) {
	c.mu.Lock()
	if c.params == p {
		c.params = nil
	}
	c.mu.Unlock()
}

// checkParams holds pay parameters to LUD-06 step 3 (and LUD-16's
// identifier, when the Client was given an address).
func (c *Client) checkParams(p *payParams) error {
	if p.Tag != "payRequest" {
		return fmt.Errorf("tag %q, want \"payRequest\" (LUD-06)", p.Tag)
	}
	if _, err := checkURL(p.Callback, "callback", c.cfg.AllowHTTP); err != nil {
		return err
	}
	if p.MinSendable < 1 || p.MaxSendable < p.MinSendable {
		return fmt.Errorf("sendable range %d..%d msat is empty or below 1 msat", p.MinSendable, p.MaxSendable)
	}
	if p.Metadata == "" {
		return errors.New("no metadata")
	}
	byType, err := parseMetadata(p.Metadata)
	if err != nil {
		return err
	}
	if c.addr != nil {
		// LUD-16 asks the service to name the address in its metadata
		// and asks nothing of wallets, which do not check it: a
		// lightning address on a custom domain that redirects to, or
		// serves a copy of, its provider's document names the provider's
		// address. What binds the invoice to these parameters is the
		// description hash (sha256 of this metadata) and the amount,
		// both checked on every invoice.
		if id := metadataIdentifier(byType); id != c.addr.String() {
			c.log.Debug("lnurl: metadata names another identifier than the address asked for (an alias?)",
				"address", c.addr.String(), "identifier", id)
		}
	}
	return nil
}

// redirectRefused is a redirect the Client's own HTTP client would not
// follow: a refusal, not an outage.
type redirectRefused struct{ err error }

func (e *redirectRefused) Error() string { return e.err.Error() }

// serviceError is a {"status":"ERROR","reason":...} answer.
type serviceError struct {
	what     string // which endpoint answered
	reason   string
	sentinel error
}

func (e *serviceError) Error() string {
	return fmt.Sprintf("lnurl: %v: %s answered ERROR: %s", e.sentinel, e.what, e.reason)
}

func (e *serviceError) Unwrap() error { return e.sentinel }

// getJSON GETs rawURL and decodes its JSON answer into dst. The error wraps
// ErrUnavailable when the service cannot be reached, times out or answers
// with a status that says "not now": any 5xx (LNbits answers 520 when its
// funding source cannot make an invoice), 408 or 429. Status codes carry no
// meaning in LNURL (LUD-01), so they are read only to tell a retryable
// failure from a refusal. A {"status":"ERROR"} answer is a *serviceError
// wrapping ErrInvalid (or ErrUnavailable with those codes); anything else
// undecodable is ErrInvalid.
func (c *Client) getJSON(ctx context.Context, rawURL, what string, dst any) error {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("lnurl: %w: %s: %v", backend.ErrInvalid, what, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		var refused *redirectRefused
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("lnurl: %s: %w", what, ctx.Err())
		case errors.As(err, &refused):
			return fmt.Errorf("lnurl: %w: %s: %v", backend.ErrInvalid, what, refused.err)
		}
		return fmt.Errorf("lnurl: %w: %s: %v", backend.ErrUnavailable, what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("lnurl: %s: %w", what, ctx.Err())
		}
		return fmt.Errorf("lnurl: %w: %s: reading answer: %v", backend.ErrUnavailable, what, err)
	}
	retryable := resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout ||
		resp.StatusCode == http.StatusTooManyRequests
	if len(body) > maxBody {
		return fmt.Errorf("lnurl: %w: %s answered more than %d bytes", backend.ErrInvalid, what, maxBody)
	}
	var st statusResponse
	if err := json.Unmarshal(body, &st); err != nil {
		sentinel := backend.ErrInvalid
		if retryable {
			sentinel = backend.ErrUnavailable
		}
		return fmt.Errorf("lnurl: %w: %s answered HTTP %d with no JSON object: %q", sentinel, what, resp.StatusCode, snippet(body))
	}
	if strings.EqualFold(st.Status, "ERROR") {
		se := &serviceError{what: what, reason: st.Reason, sentinel: backend.ErrInvalid}
		if retryable {
			se.sentinel = backend.ErrUnavailable
		}
		if se.reason == "" {
			se.reason = "(no reason given)"
		}
		return se
	}
	if retryable {
		// Whatever it holds ({"detail": ..., "status": "pending"} from
		// LNbits), it is not the document asked for.
		return fmt.Errorf("lnurl: %w: %s answered HTTP %d: %q", backend.ErrUnavailable, what, resp.StatusCode, snippet(body))
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return fmt.Errorf("lnurl: %w: %s answered HTTP %d with JSON this client cannot read: %v", backend.ErrInvalid, what, resp.StatusCode, err)
	}
	return nil
}

// snippet shortens a body for an error message.
func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 120 {
		return string(b[:120]) + "..."
	}
	return string(b)
}
