package cln

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// Config sets up a Backend. Exactly one of SocketPath and RESTURL is set.
type Config struct {
	// SocketPath is lightningd's JSON-RPC socket, <lightning-dir>/<network>/lightning-rpc.
	SocketPath string
	// RESTURL is CLNRest's base URL, https://host:port (http:// for tests).
	RESTURL string
	// Rune authorises CLNRest calls; it needs the methods listed in the
	// package documentation.
	Rune string
	// HTTPClient carries CLNRest calls; its TLS configuration decides which
	// certificate is trusted. Default: a client trusting the system roots.
	HTTPClient HTTPDoer
	// CallTimeout bounds each call whose context has no deadline, except
	// waitinvoice (bounded by its caller) and pay (bounded by PayOptions).
	// Default 30 s.
	CallTimeout time.Duration
	// PollInterval is how often WaitInvoice looks up a hold invoice,
	// since the hold plugin has no blocking wait over JSON-RPC. Default 250 ms.
	PollInterval time.Duration
	// Logger receives debug logs; default slog.Default().
	Logger *slog.Logger
}

// driver is Core Lightning as a backend.Driver with Waiter, Payer,
// FeeLimiter, Informer and Pinger. New uses a *holdDriver instead when the
// node has the hold plugin, so the HoldInvoicer ability never lies.
type driver struct {
	t        transport
	holdPoll time.Duration
	hold     bool // the hold plugin answers
	// payMethod is "xpay" (v24.11 and later) or "pay" (older nodes, or
	// the xpay plugin disabled), from help at open; "" when the node has
	// neither.
	payMethod string
	network   string
	log       *slog.Logger
}

// holdDriver is a driver whose node runs the hold plugin
// (BoltzExchange/hold), so it is also a backend.HoldInvoicer.
type holdDriver struct {
	*driver
}

var (
	_ backend.Driver       = (*driver)(nil)
	_ backend.Waiter       = (*driver)(nil)
	_ backend.Payer        = (*driver)(nil)
	_ backend.FeeLimiter   = (*driver)(nil)
	_ backend.Informer     = (*driver)(nil)
	_ backend.Pinger       = (*driver)(nil)
	_ backend.HoldInvoicer = (*holdDriver)(nil)
)

// holdMethods are the hold plugin's JSON-RPC methods the adapter calls; all
// must be present for hold invoices to be offered.
var holdMethods = []string{"injectholdinvoice", "listholdinvoices", "settleholdinvoice", "cancelholdinvoice"}

// New connects to the node described by cfg: it calls getinfo (so a node
// that cannot be reached fails here with backend.ErrUnavailable) and asks
// help whether the hold plugin's methods exist, which decides whether the
// Backend has the hold ability.
func New(ctx context.Context, cfg Config) (*backend.Backend, error) {
	d, err := open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return backend.New(d, backend.Options{CallTimeout: cfg.CallTimeout}), nil
}

func open(ctx context.Context, cfg Config) (backend.Driver, error) {
	b, err := newDriver(cfg)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, backend.DefaultCallTimeout)
		defer cancel()
	}
	info, err := b.getinfo(ctx)
	if err != nil {
		return nil, err
	}
	b.network = info.Network
	hold, err := b.hasHoldPlugin(ctx)
	if err != nil {
		return nil, err
	}
	if b.payMethod, err = b.choosePayMethod(ctx); err != nil {
		return nil, err
	}
	withOffers, err := b.hasOffers(ctx)
	if err != nil {
		return nil, err
	}
	b.log.Debug("cln: connected", "endpoint", b.t.String(), "node", info.ID, "version", info.Version, "hold_plugin", hold, "pay_method", b.payMethod, "offers", withOffers)
	b.hold = hold
	switch {
	case hold && withOffers:
		return &holdOfferDriver{&holdDriver{b}, offers{b}}, nil
	case hold:
		return &holdDriver{b}, nil
	case withOffers:
		return &offerDriver{b, offers{b}}, nil
	}
	return b, nil
}

func newDriver(cfg Config) (*driver, error) {
	b := &driver{
		holdPoll: cfg.PollInterval,
		log:      cfg.Logger,
	}
	if b.holdPoll <= 0 {
		b.holdPoll = 250 * time.Millisecond
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	switch {
	case cfg.SocketPath != "" && cfg.RESTURL != "":
		return nil, fmt.Errorf("cln: %w: set SocketPath or RESTURL, not both", backend.ErrInvalid)
	case cfg.SocketPath != "":
		b.t = &socketTransport{path: cfg.SocketPath}
	case cfg.RESTURL != "":
		if cfg.Rune == "" {
			return nil, fmt.Errorf("cln: %w: CLNRest needs a rune", backend.ErrInvalid)
		}
		c := cfg.HTTPClient
		if c == nil {
			c = defaultHTTPClient(nil)
		}
		b.t = &restTransport{base: strings.TrimRight(cfg.RESTURL, "/"), rune: cfg.Rune, client: c}
	default:
		return nil, fmt.Errorf("cln: %w: no SocketPath or RESTURL", backend.ErrInvalid)
	}
	return b, nil
}

// call runs one method and turns failures into errors wrapping backend's
// sentinels (and the *RPCError, for callers that want the code).
func (b *driver) call(ctx context.Context, method string, params, result any) error {
	err := b.t.call(ctx, method, params, result)
	if err == nil {
		return nil
	}
	var rerr *RPCError
	if errors.As(err, &rerr) {
		return fmt.Errorf("cln: %s: %w: %w", method, classify(method, rerr), rerr)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cln: %s: %w", method, err)
	}
	for _, s := range []error{backend.ErrUnavailable, backend.ErrInvalid} {
		if errors.Is(err, s) {
			return fmt.Errorf("cln: %s: %w", method, err)
		}
	}
	// A reply we could not decode: the node answered, but not as documented.
	return fmt.Errorf("cln: %s: %w: %w", method, backend.ErrInvalid, err)
}

func (b *driver) getinfo(ctx context.Context) (*getinfoResult, error) {
	var info getinfoResult
	if err := b.call(ctx, "getinfo", struct{}{}, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// hasHoldPlugin asks help for each hold plugin method; lightningd answers
// "Unknown command" (-32601) for a method no plugin registered.
func (b *driver) hasHoldPlugin(ctx context.Context) (bool, error) {
	for _, m := range holdMethods {
		var h helpResult
		err := b.call(ctx, "help", map[string]string{"command": m}, &h)
		if errors.Is(err, backend.ErrUnsupported) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// choosePayMethod asks help for xpay, then pay: the node's own command list
// says what it can pay with, whatever its version string (xpay came in
// v24.11 and can be disabled; v27.03 removes pay).
func (b *driver) choosePayMethod(ctx context.Context) (string, error) {
	for _, m := range []string{"xpay", "pay"} {
		var h helpResult
		err := b.call(ctx, "help", map[string]string{"command": m}, &h)
		if errors.Is(err, backend.ErrUnsupported) {
			continue
		}
		if err != nil {
			return "", err
		}
		return m, nil
	}
	return "", nil
}

// Close implements backend.Driver: it closes CLNRest's idle connections;
// socket calls open their own connections, so there is nothing else to
// release.
func (b *driver) Close() error {
	b.t.close()
	return nil
}

// LimitsFees implements backend.FeeLimiter: xpay and pay take maxfee.
func (b *driver) LimitsFees() {}

// Ping implements backend.Pinger with getinfo.
func (b *driver) Ping(ctx context.Context) error {
	_, err := b.getinfo(ctx)
	return err
}

// Info implements backend.Informer.
func (b *driver) Info(ctx context.Context) (*backend.NodeInfo, error) {
	info, err := b.getinfo(ctx)
	if err != nil {
		return nil, err
	}
	return &backend.NodeInfo{
		NodeID:      info.ID,
		Alias:       info.Alias,
		Network:     portableNetwork(info.Network),
		BlockHeight: info.BlockHeight,
		Synced:      info.WarningBitcoindSync == "" && info.WarningLightningdSync == "",
	}, nil
}

// portableNetwork turns Core Lightning's network names into backend's:
// Core Lightning calls mainnet "bitcoin".
func portableNetwork(n string) string {
	switch n {
	case "bitcoin":
		return "mainnet"
	case "testnet4":
		return "testnet"
	}
	return n
}
