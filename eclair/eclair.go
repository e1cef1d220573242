package eclair

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
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
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: basicauth.NewTransport(cfg.DialTimeout, nil)}
	}
	api, err := basicauth.New("eclair", cfg.URL, cfg.Password, cfg.HTTPClient)
	if err != nil {
		return nil, err
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &driver{
		api:     api,
		timeout: cfg.CallTimeout,
		poll:    cfg.PollInterval,
		log:     cfg.Logger,
	}
	b.events = newHub(b)
	return b, nil
}

// Close stops the websocket and ends waits in progress.
func (b *driver) Close() error {
	b.events.Close()
	b.api.Close()
	return nil
}
