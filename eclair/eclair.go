package eclair

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/basicauth"
	"github.com/l402kit/l402kit/internal/plumbing/eventwait"
)

// Config sets up a Backend.
type Config struct {
	// URL is the API's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// Password is the API password (eclair.api.password).
	Password string
	// HTTPClient makes the calls; nil uses a client whose dials time out
	// after DialTimeout. Its Timeout, if any, applies on top of CallTimeout.
	HTTPClient *http.Client
	// DialTimeout bounds connecting when HTTPClient is nil; default 5 s.
	DialTimeout time.Duration
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

// Defaults for Config's zero fields.
const (
	DefaultDialTimeout  = 5 * time.Second
	DefaultCallTimeout  = 30 * time.Second
	DefaultPollInterval = time.Second
)

// driver is an Eclair node as a backend.Driver with Waiter, Payer,
// FeeLimiter, Informer and Pinger. It is safe for concurrent use.
type driver struct {
	api     *basicauth.API
	timeout time.Duration
	poll    time.Duration
	log     *slog.Logger

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
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: basicauth.NewTransport(orDefault(cfg.DialTimeout, DefaultDialTimeout), nil)}
	}
	api, err := basicauth.New("eclair", cfg.URL, cfg.Password, hc)
	if err != nil {
		return nil, err
	}
	b := &driver{
		api:     api,
		timeout: orDefault(cfg.CallTimeout, DefaultCallTimeout),
		poll:    orDefault(cfg.PollInterval, DefaultPollInterval),
		log:     cfg.Logger,
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.events = newHub(b)
	return b, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Close stops the websocket and ends waits in progress.
func (b *driver) Close() error {
	b.events.Close()
	b.api.Close()
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
	if form == nil {
		form = url.Values{}
	}
	req, err := b.api.Request(ctx, http.MethodPost, "/"+method, form)
	if err != nil {
		return fmt.Errorf("eclair: %s: %w: %v", method, backend.ErrInvalid, err)
	}
	status, body, err := b.api.Do(req, 16<<20)
	if err != nil {
		return b.transportError(ctx, method, err)
	}
	if status != http.StatusOK {
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
		return &APIError{Method: method, Status: status, Message: msg, kind: classify(status, msg)}
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
	if basicauth.DialFailed(err) {
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
