package lnd

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/invoicesrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"

	"github.com/l402kit/l402kit/backend"
)

// Defaults for Config fields left zero.
const (
	DefaultCallTimeout    = 10 * time.Second
	DefaultConnectTimeout = 2 * time.Second
	// DefaultPayTimeout bounds a payment when PayOptions.Timeout is zero.
	DefaultPayTimeout = time.Minute
)

// Config says how to reach an LND node.
type Config struct {
	// Address is the gRPC host:port (LND's rpclisten, 10009 by default).
	Address string
	// TLSCert is LND's tls.cert: a file path, PEM text, hex of PEM or DER,
	// env:NAME or file:PATH. Empty trusts the system's roots.
	TLSCert string
	// Macaroon authorizes the calls: a file path, hex, env:NAME or
	// file:PATH. invoice.macaroon suffices for everything but PayInvoice
	// and Info, which need admin.macaroon (or a baked one with those
	// permissions).
	Macaroon string
	// CallTimeout bounds each unary call whose context has no deadline of
	// its own, so nothing waits forever on a node that accepted a
	// connection and stopped answering. Zero means DefaultCallTimeout.
	CallTimeout time.Duration
	// ConnectTimeout bounds one connection attempt; with reconnection
	// backoff capped at one second, a node that comes back is found again
	// within about a second. Zero means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Logger receives connection-level messages; nil means slog.Default().
	Logger *slog.Logger
}

// Backend is an LND node seen through backend's interfaces.
type Backend struct {
	conn    *grpc.ClientConn
	ln      lnrpc.LightningClient
	inv     invoicesrpc.InvoicesClient
	router  routerrpc.RouterClient
	timeout time.Duration
	log     *slog.Logger
}

var (
	_ backend.Driver       = (*Backend)(nil)
	_ backend.Waiter       = (*Backend)(nil)
	_ backend.HoldInvoicer = (*Backend)(nil)
	_ backend.Payer        = (*Backend)(nil)
	_ backend.Informer     = (*Backend)(nil)
)

// New prepares a Backend for the node cfg names. It does not contact the
// node: a node that is down when New runs is not an error, its calls answer
// ErrUnavailable until it is up. Errors are in the configuration only.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	_ = ctx // kept for symmetry with other adapters' constructors, which may dial
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
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSCert != "" {
		pem, err := loadSecretBytes("tlscert", cfg.TLSCert)
		if err != nil {
			return nil, fmt.Errorf("lnd: %w", err)
		}
		if tlsCfg.RootCAs, err = certPool(pem); err != nil {
			return nil, fmt.Errorf("lnd: %w", err)
		}
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// grpc.NewClient never blocks: it connects on first use and reconnects
	// after failures. The backoff is capped low because the default (two
	// minutes) would keep answering Unavailable long after a restarted
	// node is back.
	conn, err := grpc.NewClient("passthrough:///"+cfg.Address,
		grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithPerRPCCredentials(macaroonCred{hex: hex.EncodeToString(mac)}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  100 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   time.Second,
			},
			MinConnectTimeout: cfg.ConnectTimeout,
		}),
		// LND's responses (ListInvoices, graph) can exceed gRPC's 4 MB default.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(200<<20)),
	)
	if err != nil {
		return nil, fmt.Errorf("lnd: %w: %v", backend.ErrInvalid, err)
	}
	return &Backend{
		conn:    conn,
		ln:      lnrpc.NewLightningClient(conn),
		inv:     invoicesrpc.NewInvoicesClient(conn),
		router:  routerrpc.NewRouterClient(conn),
		timeout: cfg.CallTimeout,
		log:     cfg.Logger.With("backend", "lnd", "addr", cfg.Address),
	}, nil
}

// Close closes the gRPC connection.
func (b *Backend) Close() error { return b.conn.Close() }

// As hands out the native clients, as gocloud's As does, for calls this
// package does not cover. target may be *lnrpc.LightningClient,
// *invoicesrpc.InvoicesClient, *routerrpc.RouterClient or
// **grpc.ClientConn.
func (b *Backend) As(target any) bool {
	switch t := target.(type) {
	case *lnrpc.LightningClient:
		*t = b.ln
	case *invoicesrpc.InvoicesClient:
		*t = b.inv
	case *routerrpc.RouterClient:
		*t = b.router
	case **grpc.ClientConn:
		*t = b.conn
	default:
		return false
	}
	return true
}

// call returns ctx bounded by the call timeout when ctx has no deadline.
func (b *Backend) call(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, b.timeout)
}

// err maps err and, when the node looks unreachable, nudges the connection
// to try again now instead of after its backoff.
func (b *Backend) err(ctx context.Context, op string, err error) error {
	m := mapErr(ctx, op, err)
	if errors.Is(m, backend.ErrUnavailable) {
		b.log.Debug("node unavailable", "op", op, "err", err, "conn", b.conn.GetState().String())
		b.conn.Connect()
	}
	return m
}

// CreateInvoice adds an invoice with AddInvoice. Zero Amount makes an
// any-amount invoice; Preimage, DescriptionHash and Expiry are honoured.
func (b *Backend) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("lnd: create invoice: %w", err)
	}
	in := &lnrpc.Invoice{
		Memo:      req.Memo,
		ValueMsat: int64(req.Amount),
		Expiry:    int64(req.ExpiryOrDefault() / time.Second),
	}
	if req.DescriptionHash != nil {
		in.DescriptionHash = req.DescriptionHash[:]
	}
	if req.Preimage != nil {
		in.RPreimage = req.Preimage[:]
	}
	cctx, cancel := b.call(ctx)
	defer cancel()
	resp, err := b.ln.AddInvoice(cctx, in)
	if err != nil {
		return nil, b.err(ctx, "create invoice", err)
	}
	inv, err := fromPaymentRequest(resp.PaymentRequest)
	if err != nil {
		return nil, fmt.Errorf("lnd: create invoice: node returned %w", err)
	}
	inv.Preimage = clonePreimage(req.Preimage)
	return inv, nil
}

// CreateHoldInvoice adds a hold invoice for hash with invoicesrpc: a payment
// to it stays Held until SettleInvoice or CancelInvoice.
func (b *Backend) CreateHoldInvoice(ctx context.Context, hash backend.PaymentHash, req backend.InvoiceRequest) (*backend.Invoice, error) {
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("lnd: create hold invoice: %w", err)
	}
	if req.Preimage != nil {
		return nil, fmt.Errorf("lnd: create hold invoice: %w: a hold invoice's preimage stays with the caller", backend.ErrInvalid)
	}
	in := &invoicesrpc.AddHoldInvoiceRequest{
		Memo:      req.Memo,
		Hash:      hash[:],
		ValueMsat: int64(req.Amount),
		Expiry:    int64(req.ExpiryOrDefault() / time.Second),
	}
	if req.DescriptionHash != nil {
		in.DescriptionHash = req.DescriptionHash[:]
	}
	cctx, cancel := b.call(ctx)
	defer cancel()
	resp, err := b.inv.AddHoldInvoice(cctx, in)
	if err != nil {
		return nil, b.err(ctx, "create hold invoice", err)
	}
	inv, err := fromPaymentRequest(resp.PaymentRequest)
	if err != nil {
		return nil, fmt.Errorf("lnd: create hold invoice: node returned %w", err)
	}
	return inv, nil
}

// SettleInvoice settles the held invoice preimage unlocks.
func (b *Backend) SettleInvoice(ctx context.Context, preimage backend.Preimage) error {
	cctx, cancel := b.call(ctx)
	defer cancel()
	_, err := b.inv.SettleInvoice(cctx, &invoicesrpc.SettleInvoiceMsg{Preimage: preimage[:]})
	if err != nil {
		return b.err(ctx, "settle invoice "+preimage.Hash().String(), err)
	}
	return nil
}

// CancelInvoice cancels an open or held invoice; LND cancels plain invoices
// too.
func (b *Backend) CancelInvoice(ctx context.Context, hash backend.PaymentHash) error {
	cctx, cancel := b.call(ctx)
	defer cancel()
	_, err := b.inv.CancelInvoice(cctx, &invoicesrpc.CancelInvoiceMsg{PaymentHash: hash[:]})
	if err != nil {
		return b.err(ctx, "cancel invoice "+hash.String(), err)
	}
	return nil
}

// LookupInvoice reads the invoice by payment hash.
func (b *Backend) LookupInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	cctx, cancel := b.call(ctx)
	defer cancel()
	in, err := b.ln.LookupInvoice(cctx, &lnrpc.PaymentHash{RHash: hash[:]})
	if err != nil {
		return nil, b.err(ctx, "lookup invoice "+hash.String(), err)
	}
	return fromRPC(in)
}

// WaitInvoice follows the invoice with SubscribeSingleInvoice until it is no
// longer open, or ctx ends. An unknown hash is ErrNotFound at once, where
// LND itself would wait for an invoice that may never be created. An open
// invoice that reaches its expiry ends the wait with the invoice as LND then
// reports it (LND cancels expired invoices itself, on a timer), so nobody
// waits on an invoice that can no longer be paid.
func (b *Backend) WaitInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	op := "wait invoice " + hash.String()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe before looking up, so a change between the two is not lost.
	stream, err := b.inv.SubscribeSingleInvoice(sctx, &invoicesrpc.SubscribeSingleInvoiceRequest{RHash: hash[:]})
	if err != nil {
		return nil, b.err(ctx, op, err)
	}
	inv, err := b.LookupInvoice(ctx, hash)
	if err != nil {
		return nil, err
	}
	if inv.State != backend.StateOpen || inv.Expired(time.Now()) {
		return inv, nil
	}
	type recv struct {
		msg *lnrpc.Invoice
		err error
	}
	updates := make(chan recv, 1)
	go func() {
		for {
			m, err := stream.Recv()
			select {
			case updates <- recv{m, err}:
			case <-sctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
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
		case r := <-updates:
			if r.err == io.EOF {
				// LND ends the stream after a final state, which it sends
				// first; an EOF here means the server went away.
				return nil, fmt.Errorf("lnd: %s: %w: stream ended", op, backend.ErrUnavailable)
			}
			if r.err != nil {
				return nil, b.err(ctx, op, r.err)
			}
			if r.msg.State == lnrpc.Invoice_OPEN {
				continue
			}
			return fromRPC(r.msg)
		case <-expired:
			return b.LookupInvoice(ctx, hash)
		case <-ctx.Done():
			return nil, fmt.Errorf("lnd: %s: %w", op, ctx.Err())
		}
	}
}

// PayInvoice pays bolt11 with routerrpc.SendPaymentV2 and follows the
// payment until it succeeds or fails. A zero MaxFee allows 1% of the amount
// but at least 10 sat, since LND's own zero means "zero-fee routes only".
// opts.Timeout goes to LND as the payment's timeout; ending ctx earlier only
// stops the waiting, since LND keeps an HTLC in flight until it resolves.
func (b *Backend) PayInvoice(ctx context.Context, bolt11 string, opts backend.PayOptions) (*backend.Payment, error) {
	d, err := backend.DecodeInvoice(bolt11)
	if err != nil {
		return nil, fmt.Errorf("lnd: pay: %w", err)
	}
	op := "pay " + d.PaymentHash.String()
	amount := d.Amount
	req := &routerrpc.SendPaymentRequest{PaymentRequest: bolt11}
	switch {
	case opts.Amount < 0:
		return nil, fmt.Errorf("lnd: %s: %w: negative amount", op, backend.ErrInvalid)
	case d.Amount == 0 && opts.Amount == 0:
		return nil, fmt.Errorf("lnd: %s: %w: any-amount invoice needs PayOptions.Amount", op, backend.ErrInvalid)
	case d.Amount == 0:
		amount = opts.Amount
		req.AmtMsat = int64(opts.Amount)
	case opts.Amount != 0 && opts.Amount != d.Amount:
		return nil, fmt.Errorf("lnd: %s: %w: amount %s differs from the invoice's %s", op, backend.ErrInvalid, opts.Amount, d.Amount)
	}
	maxFee := opts.MaxFee
	if maxFee <= 0 {
		maxFee = max(amount/100, backend.Sat(10))
	}
	req.FeeLimitMsat = int64(maxFee)
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultPayTimeout
	}
	req.TimeoutSeconds = int32(max(timeout/time.Second, 1))

	// LND stops trying at TimeoutSeconds but may need a moment more to
	// report the failure; the stream gets that margin.
	sctx, cancel := context.WithTimeout(ctx, timeout+b.timeout)
	defer cancel()
	stream, err := b.router.SendPaymentV2(sctx, req)
	if err != nil {
		return nil, b.payErr(ctx, op, err)
	}
	for {
		p, err := stream.Recv()
		if err == io.EOF {
			return nil, fmt.Errorf("lnd: %s: %w: stream ended before the payment did", op, backend.ErrUnavailable)
		}
		if err != nil {
			return nil, b.payErr(ctx, op, err)
		}
		switch p.Status {
		case lnrpc.Payment_SUCCEEDED:
			pre, err := backend.ParsePreimage(p.PaymentPreimage)
			if err != nil {
				return nil, fmt.Errorf("lnd: %s: node returned a bad preimage: %w", op, err)
			}
			return &backend.Payment{
				PaymentHash: d.PaymentHash,
				Preimage:    pre,
				Amount:      backend.MilliSat(p.ValueMsat),
				Fee:         backend.MilliSat(p.FeeMsat),
			}, nil
		case lnrpc.Payment_FAILED:
			return nil, fmt.Errorf("lnd: %s: %w: %s", op, backend.ErrPaymentFailed, p.FailureReason)
		}
	}
}

// payErr maps errors of a payment: whatever is not about reaching the node
// (or the caller's own context) is a failed payment, since LND refuses
// expired, already paid and unroutable invoices with plain errors.
func (b *Backend) payErr(ctx context.Context, op string, err error) error {
	m := b.err(ctx, op, err)
	if ctx.Err() != nil || errors.Is(m, backend.ErrUnavailable) {
		return m
	}
	return fmt.Errorf("lnd: %s: %w: %s", op, backend.ErrPaymentFailed, message(err))
}

// Info describes the node with GetInfo.
func (b *Backend) Info(ctx context.Context) (*backend.NodeInfo, error) {
	cctx, cancel := b.call(ctx)
	defer cancel()
	r, err := b.ln.GetInfo(cctx, &lnrpc.GetInfoRequest{})
	if err != nil {
		return nil, b.err(ctx, "get info", err)
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
