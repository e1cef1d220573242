package lnd

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/lndrest"
)

// DefaultDialTimeout bounds one connection attempt when
// Config.DialTimeout is zero.
const DefaultDialTimeout = 2 * time.Second

// Config says how to reach an LND node.
type Config struct {
	// Address is host:port of LND's REST listener (restlisten, 8080 by
	// default), not its gRPC port.
	Address string
	// TLSCert is LND's tls.cert: a file path, PEM text, hex of PEM or DER,
	// env:NAME or file:PATH. A node presenting exactly this certificate is
	// trusted whatever name it is reached by. Empty trusts the system's
	// roots (a node behind a proxy with a public certificate).
	TLSCert string
	// Macaroon authorizes the calls: a file path, hex, env:NAME or
	// file:PATH. invoice.macaroon suffices for everything but PayInvoice
	// and Info, which need admin.macaroon (or a baked one with those
	// permissions).
	Macaroon string
	// CallTimeout bounds each call whose context has no deadline of its
	// own (backend.Options.CallTimeout); zero means
	// backend.DefaultCallTimeout.
	CallTimeout time.Duration
	// DialTimeout bounds dialing and the TLS handshake of one
	// connection. Zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// Logger receives connection-level messages; nil means slog.Default().
	Logger *slog.Logger
}

// driver is an LND node as a backend.Driver with every optional ability.
type driver struct {
	rest    *lndrest.Client
	timeout time.Duration // for the lookup inside WaitInvoice, which has no deadline
	log     *slog.Logger
	streams running
}

// running counts the stream goroutines, so Close can wait for them. Not a
// sync.WaitGroup: a stream may start while Close waits (a call that passed
// the Backend's closed check just before Close), which WaitGroup forbids.
type running struct {
	mu   sync.Mutex
	n    int
	none *sync.Cond // signalled when n drops to zero
}

func (r *running) add() {
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
}

func (r *running) done() {
	r.mu.Lock()
	if r.n--; r.n == 0 && r.none != nil {
		r.none.Broadcast()
	}
	r.mu.Unlock()
}

func (r *running) wait() {
	r.mu.Lock()
	if r.none == nil {
		r.none = sync.NewCond(&r.mu)
	}
	for r.n > 0 {
		r.none.Wait()
	}
	r.mu.Unlock()
}

var (
	_ backend.Driver       = (*driver)(nil)
	_ backend.Waiter       = (*driver)(nil)
	_ backend.HoldInvoicer = (*driver)(nil)
	_ backend.Payer        = (*driver)(nil)
	_ backend.FeeLimiter   = (*driver)(nil)
	_ backend.Informer     = (*driver)(nil)
	_ backend.Pinger       = (*driver)(nil)
)

// New returns the Backend for the node cfg names. It does not contact the
// node: a node that is down when New runs is not an error, its calls answer
// ErrUnavailable until it is up. Errors are in the configuration only.
func New(_ context.Context, cfg Config) (*backend.Backend, error) {
	d, err := newDriver(cfg)
	if err != nil {
		return nil, err
	}
	return backend.New(d, backend.Options{CallTimeout: cfg.CallTimeout}), nil
}

func newDriver(cfg Config) (*driver, error) {
	if cfg.Address == "" {
		return nil, fmt.Errorf("lnd: %w: no address", backend.ErrInvalid)
	}
	if cfg.Macaroon == "" {
		return nil, fmt.Errorf("lnd: %w: no macaroon", backend.ErrInvalid)
	}
	mac, err := loadSecretBytes("macaroon", cfg.Macaroon)
	if err != nil {
		return nil, fmt.Errorf("lnd: %w", err)
	}
	var cert []byte
	if cfg.TLSCert != "" {
		if cert, err = loadSecretBytes("tlscert", cfg.TLSCert); err != nil {
			return nil, fmt.Errorf("lnd: %w", err)
		}
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = backend.DefaultCallTimeout
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// Connections are made per call as needed and reused while they last,
	// so a node that restarts is found again by the next call; there is no
	// reconnect backoff to wait out.
	rest, err := lndrest.New(lndrest.Config{Address: cfg.Address, TLSCert: cert, Macaroon: mac, DialTimeout: cfg.DialTimeout})
	if err != nil {
		return nil, fmt.Errorf("lnd: %w: %v", backend.ErrInvalid, err)
	}
	return &driver{
		rest:    rest,
		timeout: cfg.CallTimeout,
		log:     cfg.Logger.With("backend", "lnd", "addr", cfg.Address),
	}, nil
}

// Close returns once the goroutines of waits and payments in progress are
// gone (the Backend has ended their contexts; a payment already sent goes
// on at the node).
func (d *driver) Close() error {
	d.streams.wait()
	d.rest.CloseIdleConnections()
	return nil
}

// As hands out what the adapter talks to LND with, for REST calls this
// package does not cover: target may be **http.Client (it trusts the node's
// certificate and sends the macaroon on every request) or *url.URL (the REST
// API's base, https://host:port). backend.Backend.As asks it.
func (d *driver) As(target any) bool {
	switch t := target.(type) {
	case **http.Client:
		*t = d.rest.HTTPClient()
	case *url.URL:
		u, err := url.Parse(d.rest.BaseURL())
		if err != nil {
			return false
		}
		*t = *u
	default:
		return false
	}
	return true
}

// do makes one unary call; the Backend has bounded ctx.
func (d *driver) do(ctx context.Context, op, method, path string, in, out any) error {
	if err := d.rest.Call(ctx, method, path, in, out); err != nil {
		return d.err(ctx, op, err)
	}
	return nil
}

// err maps err; when the node looks unreachable, pooled connections are
// dropped so the next call dials afresh.
func (d *driver) err(ctx context.Context, op string, err error) error {
	m := mapErr(ctx, op, err)
	if errors.Is(m, backend.ErrUnavailable) {
		d.log.Debug("node unavailable", "op", op, "err", err)
		d.rest.CloseIdleConnections()
	}
	return m
}

// CreateInvoice adds an invoice (POST /v1/invoices). Zero Amount makes an
// any-amount invoice; Preimage, the description hash and Expiry are
// honoured.
func (d *driver) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	in := lndrest.Invoice{
		Memo:      req.Memo,
		ValueMsat: int64(req.Amount),
		Expiry:    int64(req.Expiry / time.Second),
	}
	if h := req.CommittedDescriptionHash(); h != nil {
		in.DescriptionHash = h[:]
	}
	if req.Preimage != nil {
		in.RPreimage = req.Preimage[:]
	}
	var resp lndrest.AddInvoiceResponse
	if err := d.do(ctx, "create invoice", http.MethodPost, "/v1/invoices", &in, &resp); err != nil {
		return nil, err
	}
	inv, err := fromPaymentRequest(resp.PaymentRequest)
	if err != nil {
		return nil, fmt.Errorf("lnd: create invoice: node returned %w", err)
	}
	return inv, nil // the Backend attaches a caller's preimage
}

// CreateHoldInvoice adds a hold invoice for hash (POST /v2/invoices/hodl):
// a payment to it stays Held until SettleInvoice or CancelInvoice.
func (d *driver) CreateHoldInvoice(ctx context.Context, hash backend.PaymentHash, req backend.InvoiceRequest) (*backend.Invoice, error) {
	in := lndrest.AddHoldInvoiceRequest{
		Memo:      req.Memo,
		Hash:      hash[:],
		ValueMsat: int64(req.Amount),
		Expiry:    int64(req.Expiry / time.Second),
	}
	if h := req.CommittedDescriptionHash(); h != nil {
		in.DescriptionHash = h[:]
	}
	var resp lndrest.AddHoldInvoiceResponse
	if err := d.do(ctx, "create hold invoice", http.MethodPost, "/v2/invoices/hodl", &in, &resp); err != nil {
		return nil, err
	}
	inv, err := fromPaymentRequest(resp.PaymentRequest)
	if err != nil {
		return nil, fmt.Errorf("lnd: create hold invoice: node returned %w", err)
	}
	return inv, nil
}

// SettleInvoice settles the held invoice preimage unlocks.
func (d *driver) SettleInvoice(ctx context.Context, preimage backend.Preimage) error {
	return d.do(ctx, "settle invoice "+preimage.Hash().String(), http.MethodPost, "/v2/invoices/settle",
		&lndrest.SettleInvoiceRequest{Preimage: preimage[:]}, nil)
}

// CancelInvoice cancels an open or held invoice; LND cancels plain invoices
// too.
func (d *driver) CancelInvoice(ctx context.Context, hash backend.PaymentHash) error {
	return d.do(ctx, "cancel invoice "+hash.String(), http.MethodPost, "/v2/invoices/cancel",
		&lndrest.CancelInvoiceRequest{PaymentHash: hash[:]}, nil)
}

// LookupInvoice reads the invoice by payment hash.
func (d *driver) LookupInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	var in lndrest.Invoice
	if err := d.do(ctx, "lookup invoice "+hash.String(), http.MethodGet, "/v1/invoice/"+hash.String(), nil, &in); err != nil {
		return nil, err
	}
	return fromREST(&in)
}

// stream runs a server-streaming call in a goroutine and delivers its
// messages on the returned channel, which is closed after the first error
// or when ctx ends. The goroutine ends with ctx; cancel ctx when done
// reading.
func stream[T any](ctx context.Context, d *driver, method, path string, in any) <-chan streamed[T] {
	out := make(chan streamed[T], 1)
	d.streams.add()
	go func() {
		defer d.streams.done()
		defer close(out)
		send := func(m streamed[T]) bool {
			select {
			case out <- m:
				return true
			case <-ctx.Done():
				return false
			}
		}
		s, err := d.rest.Stream(ctx, method, path, in)
		if err != nil {
			send(streamed[T]{err: err})
			return
		}
		defer s.Close()
		for {
			var m T
			err := s.Next(&m)
			if !send(streamed[T]{msg: &m, err: err}) || err != nil {
				return
			}
		}
	}()
	return out
}

type streamed[T any] struct {
	msg *T
	err error
}

// WaitInvoice follows the invoice's updates (GET
// /v2/invoices/subscribe/{hash}) until it is no longer open, or ctx ends.
// An unknown hash is ErrNotFound at once, where LND itself would wait for an
// invoice that may never be created. An open invoice that reaches its
// expiry ends the wait with the invoice as LND then reports it (LND cancels
// expired invoices itself, on a timer), so nobody waits on an invoice that
// can no longer be paid.
func (d *driver) WaitInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	op := "wait invoice " + hash.String()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// LND sends the invoice's current state first on every subscription,
	// so nothing that happens between the lookup below and the
	// subscription reaching the node is lost.
	updates := stream[lndrest.Invoice](sctx, d, http.MethodGet,
		"/v2/invoices/subscribe/"+base64.URLEncoding.EncodeToString(hash[:]), nil)
	lctx, lcancel := context.WithTimeout(ctx, d.timeout)
	inv, err := d.LookupInvoice(lctx, hash)
	lcancel()
	if err != nil {
		return nil, err
	}
	if inv.State != backend.StateOpen || inv.Expired(time.Now()) {
		return inv, nil
	}
	var expired <-chan time.Time
	if !inv.ExpiresAt.IsZero() {
		// A little past the expiry, to give LND's own expiry watcher the
		// chance to cancel it first.
		t := time.NewTimer(time.Until(inv.ExpiresAt) + 500*time.Millisecond)
		defer t.Stop()
		expired = t.C
	}
	for {
		select {
		case u, ok := <-updates:
			if !ok {
				// The sender gave up because ctx ended.
				return nil, fmt.Errorf("lnd: %s: %w", op, ctx.Err())
			}
			if u.err != nil {
				return nil, d.err(ctx, op, u.err)
			}
			if u.msg.State == lndrest.InvoiceOpen {
				continue
			}
			return fromREST(u.msg)
		case <-expired:
			lctx, lcancel := context.WithTimeout(ctx, d.timeout)
			defer lcancel()
			return d.LookupInvoice(lctx, hash)
		case <-ctx.Done():
			return nil, fmt.Errorf("lnd: %s: %w", op, ctx.Err())
		}
	}
}

// LimitsFees marks the driver as a backend.FeeLimiter: LND takes the fee
// limit with the payment.
func (d *driver) LimitsFees() {}

// PayInvoice pays bolt11 (POST /v2/router/send, routerrpc's SendPaymentV2)
// and follows the payment until it succeeds or fails. A zero MaxFee allows
// 1% of the amount but at least 10 sat, since LND's own zero means
// "zero-fee routes only". opts.Timeout goes to LND as the payment's
// timeout; ctx ending earlier only stops the waiting, since LND keeps an
// HTLC in flight until it resolves.
func (d *driver) PayInvoice(ctx context.Context, bolt11 string, opts backend.PayOptions) (*backend.Payment, error) {
	dec, err := backend.DecodeInvoice(bolt11)
	if err != nil {
		return nil, fmt.Errorf("lnd: pay: %w", err)
	}
	op := "pay " + dec.PaymentHash.String()
	amount := dec.Amount
	req := lndrest.SendPaymentRequest{PaymentRequest: bolt11, NoInflightUpdates: true}
	if opts.Amount != 0 {
		amount = opts.Amount
		req.AmtMsat = int64(opts.Amount)
	}
	maxFee := opts.MaxFee
	if maxFee <= 0 {
		maxFee = max(amount/100, backend.Sat(10))
	}
	req.FeeLimitMsat = int64(maxFee)
	req.TimeoutSeconds = int32(max(opts.Timeout/time.Second, 1))

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for u := range stream[lndrest.Payment](sctx, d, http.MethodPost, "/v2/router/send", &req) {
		if u.err != nil {
			return nil, d.payErr(ctx, op, u.err)
		}
		switch p := u.msg; p.Status {
		case lndrest.PaymentSucceeded:
			pre, err := backend.ParsePreimage(p.PaymentPreimage)
			if err != nil {
				return nil, fmt.Errorf("lnd: %s: %w: node returned a bad preimage: %w", op, backend.ErrPaymentUnknown, err)
			}
			return &backend.Payment{
				PaymentHash: dec.PaymentHash,
				Preimage:    pre,
				Amount:      backend.MilliSat(p.ValueMsat),
				Fee:         backend.MilliSat(p.FeeMsat),
			}, nil
		case lndrest.PaymentFailed:
			return nil, fmt.Errorf("lnd: %s: %w: %s", op, backend.ErrPaymentFailed, p.FailureReason)
		}
	}
	// The stream ended because ctx did, with the payment perhaps in flight.
	return nil, fmt.Errorf("lnd: %s: %w: %w", op, backend.ErrPaymentUnknown, ctx.Err())
}

// payErr says what an error means for the money. An error answer before
// the stream began is LND refusing the payment before sending anything:
// ErrUnavailable while it starts, ErrInvalid or ErrUnsupported for
// configuration, otherwise a failed payment (already paid, expired, no
// route). A failure to reach the node where the request never left (dial,
// TLS, wrong port) is ErrUnavailable or ErrInvalid. Anything else happened
// after LND may have started the payment: its outcome is unknown.
func (d *driver) payErr(ctx context.Context, op string, err error) error {
	m := d.err(ctx, op, err)
	var e *lndrest.Error
	switch {
	case errors.As(err, &e) && e.HTTPStatus != 0:
		if errors.Is(m, backend.ErrUnavailable) || errors.Is(m, backend.ErrInvalid) || errors.Is(m, backend.ErrUnsupported) {
			return m
		}
		return fmt.Errorf("lnd: %s: %w: %s", op, backend.ErrPaymentFailed, e.Message)
	case isConfigErr(err):
		return m
	case notSent(err):
		return m
	}
	return fmt.Errorf("lnd: %s: %w: %w", op, backend.ErrPaymentUnknown, err)
}

// notSent reports a failure to connect: the request cannot have reached
// the node.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// Info describes the node (GET /v1/getinfo).
func (d *driver) Info(ctx context.Context) (*backend.NodeInfo, error) {
	var r lndrest.GetInfoResponse
	if err := d.do(ctx, "get info", http.MethodGet, "/v1/getinfo", nil, &r); err != nil {
		return nil, err
	}
	ni := &backend.NodeInfo{
		NodeID:      r.IdentityPubkey,
		Alias:       r.Alias,
		BlockHeight: r.BlockHeight,
		Synced:      r.SyncedToChain,
	}
	if len(r.Chains) > 0 {
		ni.Network = r.Chains[0].Network
	}
	return ni, nil
}

// Ping looks up an invoice that cannot exist: the cheapest call
// invoice.macaroon allows (getinfo needs info:read), answered with "not
// found" by a node that works.
func (d *driver) Ping(ctx context.Context) error {
	_, err := d.LookupInvoice(ctx, backend.PaymentHash{})
	if errors.Is(err, backend.ErrNotFound) {
		return nil
	}
	return err
}
