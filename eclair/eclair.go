// Package eclair is the l402kit backend for an Eclair node, over Eclair's
// HTTP API: form-encoded POSTs behind HTTP basic auth (an empty user name and
// the API password), and the /ws websocket for payment events.
//
// It creates invoices (createinvoice), looks them up (getreceivedinfo, whose
// answer carries the BOLT11 string, so no second call is needed), waits for
// payment through payment-received events on /ws, falling back to polling
// while the socket is down, pays invoices (payinvoice, then getsentinfo until
// the payment succeeds or fails) and describes the node (getinfo). It
// makes, lists and disables BOLT12 offers and pays them (createoffer,
// listoffers, disableoffer, listreceivedpayments, payoffer; see offer.go).
// Eclair has no hold invoices, so a Backend is not a backend.HoldInvoicer; a proxy in
// front of it makes tokens single-use by recording spent payment hashes.
//
// Importing the package registers the URL scheme
//
//	eclair://:PASSWORD@host:port[?tls=1&tlscert=PATH&servername=NAME]
//
// where PASSWORD may be env:NAME or file:PATH (percent-encode the slashes of
// PATH, or pass it as the query parameter password=file:/path), read with
// backend.ReadSecret so it need not appear on a command line. tls=1 talks
// HTTPS, for an API behind a TLS-terminating proxy (default tls=0: Eclair's
// API is plain HTTP); tlscert trusts that certificate besides the system
// roots. timeout=DURATION bounds each call (backend.Open).
//
// Errors wrap backend's sentinels: a wrong password is ErrInvalid (a
// configuration mistake that retrying cannot fix), an unreachable node or an
// HTTP 5xx/408 is ErrUnavailable, an unknown payment hash is ErrNotFound, a
// failed payment is ErrPaymentFailed. *APIError carries the HTTP status and
// Eclair's message for callers who want them.
package eclair

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/eventwait"
	"github.com/l402kit/l402kit/internal/plumbing/nodeurl"
)

// Config sets up a Backend.
type Config struct {
	// URL is the API's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// Password is the API password (eclair.api.password).
	Password string
	// HTTPClient makes the calls; nil uses a client with a 5 s dial timeout.
	// Its Timeout, if any, applies on top of CallTimeout.
	HTTPClient *http.Client
	// CallTimeout bounds each API call whose context has no earlier
	// deadline; default 30 s, Eclair's own default for a call.
	CallTimeout time.Duration
	// PollInterval is how often WaitInvoice looks the invoice up while the
	// websocket is down, and the longest pause between getsentinfo polls
	// while a payment is in flight; default 1 s. With the websocket up,
	// WaitInvoice still looks every ten intervals, because Eclair drops
	// events when a socket's queue is full.
	PollInterval time.Duration
	// Logger receives diagnostics (websocket drops); default slog.Default().
	Logger *slog.Logger
}

// driver is an Eclair node as a backend.Driver with Waiter, Payer,
// FeeLimiter, Informer and Pinger. It is safe for concurrent use.
type driver struct {
	base     *url.URL
	password string
	http     *http.Client
	timeout  time.Duration
	poll     time.Duration
	log      *slog.Logger

	events *eventwait.Hub
}

var (
	_ backend.Driver     = (*driver)(nil)
	_ backend.Waiter     = (*driver)(nil)
	_ backend.Payer      = (*driver)(nil)
	_ backend.FeeLimiter = (*driver)(nil)
	_ backend.Informer   = (*driver)(nil)
	_ backend.Pinger     = (*driver)(nil)
)

// New returns the Backend for the API at cfg.URL. It does not contact the
// node; call Ping to check the URL and password.
func New(_ context.Context, cfg Config) (*backend.Backend, error) {
	d, err := newDriver(cfg)
	if err != nil {
		return nil, err
	}
	return backend.New(d, backend.Options{CallTimeout: cfg.CallTimeout}), nil
}

func newDriver(cfg Config) (*driver, error) {
	if cfg.URL == "" {
		return nil, fmt.Errorf("eclair: %w: Config.URL is empty", backend.ErrInvalid)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("eclair: %w: bad URL: %v", backend.ErrInvalid, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("eclair: %w: URL scheme %q, want http or https", backend.ErrInvalid, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("eclair: %w: URL has no host", backend.ErrInvalid)
	}
	if cfg.Password == "" {
		return nil, fmt.Errorf("eclair: %w: the API password is empty", backend.ErrInvalid)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = newHTTPClient(nil)
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &driver{
		base:     u,
		password: cfg.Password,
		http:     cfg.HTTPClient,
		timeout:  cfg.CallTimeout,
		poll:     cfg.PollInterval,
		log:      cfg.Logger,
	}
	b.events = newHub(b)
	return b, nil
}

func init() {
	backend.Register("eclair", open)
}

// open implements the eclair:// scheme.
func open(_ context.Context, u *url.URL) (backend.Driver, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("eclair: %w: URL needs host:port", backend.ErrInvalid)
	}
	q := nodeurl.New("eclair", u)
	password, err := q.Password()
	if err != nil {
		return nil, err
	}
	on, tlsConf, err := q.TLS(false)
	if err != nil {
		return nil, err
	}
	if err := q.Done(); err != nil {
		return nil, err
	}
	cfg := Config{URL: "http://" + u.Host, Password: password}
	if on {
		cfg.URL = "https://" + u.Host
		cfg.HTTPClient = newHTTPClient(tlsConf)
	}
	return newDriver(cfg)
}

func newHTTPClient(conf *tls.Config) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSClientConfig = conf
	return &http.Client{Transport: t}
}

// Close stops the websocket and ends waits in progress.
func (b *driver) Close() error {
	b.events.Close()
	b.http.CloseIdleConnections()
	return nil
}

// APIError is an error answer from Eclair's API.
type APIError struct {
	Method  string // the API method, e.g. "createinvoice"
	Status  int    // HTTP status
	Message string // Eclair's "error" text, or the body when it is not JSON
	kind    error  // the backend sentinel it maps to
}

func (e *APIError) Error() string {
	if e.Status == http.StatusUnauthorized {
		return fmt.Sprintf("eclair: %s: HTTP 401: %s: %v: authentication failed, check the API password", e.Method, e.Message, e.kind)
	}
	return fmt.Sprintf("eclair: %s: HTTP %d: %s: %v", e.Method, e.Status, e.Message, e.kind)
}

// Unwrap returns the backend sentinel the status maps to.
func (e *APIError) Unwrap() error { return e.kind }

// notFoundMessage is the body Eclair's completeOrNotFound directive sends
// for an unknown payment hash; a 404 with another text means the route
// itself is unknown (an older or newer Eclair).
const notFoundMessage = "Not found"

// classify maps an HTTP error answer to a sentinel.
func classify(status int, msg string) error {
	switch {
	case status == http.StatusUnauthorized:
		// Wrong or missing password. Not ErrUnavailable: retrying cannot
		// help, and a proxy should report a misconfiguration, not a node
		// that is down.
		return backend.ErrInvalid
	case status == http.StatusNotFound && msg == notFoundMessage:
		return backend.ErrNotFound
	case status == http.StatusNotFound, status == http.StatusMethodNotAllowed:
		return backend.ErrUnsupported
	case status == http.StatusBadRequest:
		return backend.ErrInvalid
	case status == http.StatusRequestTimeout, status >= 500:
		// Eclair answers 500 with a generic text for failures inside the
		// node and 408 when a call outlives its timeout; 502-504 come
		// from proxies in front of a stopped node. All are worth a retry.
		return backend.ErrUnavailable
	}
	return backend.ErrInvalid
}

// call POSTs form to method and decodes the JSON answer into out.
func (b *driver) call(ctx context.Context, method string, form url.Values, out any) error {
	u := *b.base
	u.Path += "/" + method
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("eclair: %s: %w: %v", method, backend.ErrInvalid, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("", b.password)
	resp, err := b.http.Do(req)
	if err != nil {
		return b.transportError(ctx, method, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return b.transportError(ctx, method, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if len(msg) > 512 {
			msg = msg[:512] + "…"
		}
		return &APIError{Method: method, Status: resp.StatusCode, Message: msg, kind: classify(resp.StatusCode, msg)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("eclair: %s: %w: decode answer: %v", method, backend.ErrUnsupported, err)
	}
	return nil
}

// transportError maps a failure to reach the API. The caller's own
// cancellation is reported as such; everything else (refused, reset,
// timed out, DNS) means the node cannot be reached now.
func (b *driver) transportError(ctx context.Context, method string, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("eclair: %s: %w", method, ctx.Err())
	}
	why := "unreachable"
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		why = "connection refused"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		why = "timed out"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("eclair: %s: %w: %w: %s: %w", method, backend.ErrUnavailable, errNotSent, why, err)
	}
	return fmt.Errorf("eclair: %s: %w: %s: %w", method, backend.ErrUnavailable, why, err)
}

// errNotSent marks a call whose request never reached Eclair (the
// connection could not be made): a payment that did not start.
var errNotSent = errors.New("request not sent")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
