package backend

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
)

// Defaults for Options left zero.
const (
	// DefaultCallTimeout bounds every call whose context has no deadline,
	// except WaitInvoice (bounded by its caller) and PayInvoice (bounded
	// by PayOptions.Timeout).
	DefaultCallTimeout = 30 * time.Second
	// DefaultPayTimeout bounds a payment whose PayOptions.Timeout is zero.
	DefaultPayTimeout = time.Minute
	// DefaultPollInterval is how often WaitInvoice looks an invoice up on
	// a driver that cannot wait by itself.
	DefaultPollInterval = time.Second
	// payGrace is how long past PayOptions.Timeout the Backend waits for a
	// node to report the end of a payment it was told to stop trying.
	payGrace = 10 * time.Second
)

// Options tune a Backend. The zero value is ready to use.
type Options struct {
	// CallTimeout bounds each call whose context has no deadline (not
	// WaitInvoice or PayInvoice); zero means DefaultCallTimeout.
	CallTimeout time.Duration
	// PollInterval is how often WaitInvoice looks an invoice up when the
	// driver is not a Waiter; zero means DefaultPollInterval.
	PollInterval time.Duration
}

// Backend is the portable face of one Lightning node: what users hold,
// whatever node sits underneath. It wraps a Driver and does, once for every
// adapter, what the contract asks beyond the wire protocol: it validates
// requests, fills defaults (expiry, pay timeout) and deadlines, trims
// invoices handed to PayInvoice, applies the amount and fee rules of
// payments, checks what drivers return, ends every call after Close with
// ErrClosed, and gives every error exactly one sentinel of this package.
//
// Backend has every optional method; for an ability its driver lacks they
// answer ErrUnsupported, except WaitInvoice, which then polls. Supports and
// Abilities tell which abilities are the node's own.
//
// A Backend is safe for concurrent use.
type Backend struct {
	drv     Driver
	opts    Options
	closing context.Context // done once Close is called
	close   context.CancelFunc
	once    sync.Once
	closeEr error

	waiter Waiter
	holder HoldInvoicer
	payer  Payer
	feeOK  bool
	info   Informer
	pinger Pinger
}

// New wraps d in a Backend. It does not contact the node. A *Backend has
// every method of every ability, so given one New wraps its driver instead,
// keeping the abilities truthful.
func New(d Driver, o Options) *Backend {
	if inner, ok := d.(*Backend); ok {
		d = inner.drv
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	b := &Backend{drv: d, opts: o}
	b.closing, b.close = context.WithCancel(context.Background())
	b.waiter, _ = d.(Waiter)
	b.holder, _ = d.(HoldInvoicer)
	b.payer, _ = d.(Payer)
	_, b.feeOK = d.(FeeLimiter)
	b.info, _ = d.(Informer)
	b.pinger, _ = d.(Pinger)
	return b
}

// Supports reports whether the node has ability a natively (its driver
// implements the ability's interface).
func (b *Backend) Supports(a Ability) bool {
	for _, have := range driverAbilities(b.drv) {
		if have == a {
			return true
		}
	}
	return false
}

// Abilities lists the optional abilities b's node has, in a fixed order.
func Abilities(b *Backend) []Ability { return driverAbilities(b.drv) }

// As hands out what is behind b, as gocloud's As does, for calls this
// package does not cover: target is a pointer to a type the driver itself
// has (for example **memory.Node), or one the driver's own As method knows
// (lnd hands out an *http.Client for its REST API). It reports whether target was set.
func (b *Backend) As(target any) bool {
	if a, ok := b.drv.(interface{ As(any) bool }); ok && a.As(target) {
		return true
	}
	v := reflect.ValueOf(target)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return false
	}
	d := reflect.ValueOf(b.drv)
	if !d.Type().AssignableTo(v.Elem().Type()) {
		return false
	}
	v.Elem().Set(d)
	return true
}

// Close closes the driver and ends waits and payments in progress; every
// later call fails with ErrClosed. Closing again does nothing and returns
// what the first Close returned, so a deferred Close may follow an explicit
// one.
func (b *Backend) Close() error {
	b.once.Do(func() {
		b.close()
		if err := b.drv.Close(); err != nil {
			b.closeEr = as(ErrUnavailable, err)
		}
	})
	return b.closeEr
}

func (b *Backend) closed() bool { return b.closing.Err() != nil }

// call is the frame of every call: closed check, the caller's context
// already ended, a default deadline (bound > 0) and cancellation by Close.
func (b *Backend) call(ctx context.Context, bound time.Duration) (context.Context, context.CancelFunc, error) {
	if b.closed() {
		return nil, nil, errorf(ErrClosed, "call after Close")
	}
	if err := ctx.Err(); err != nil {
		// Nothing was sent: the call did not start.
		return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var cancelBound context.CancelFunc = func() {}
	if _, ok := ctx.Deadline(); !ok && bound > 0 {
		ctx, cancelBound = context.WithTimeout(ctx, bound)
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(b.closing, cancel)
	return ctx, func() { stop(); cancel(); cancelBound() }, nil
}

// fail gives a driver error its one sentinel. After Close every error is
// ErrClosed; an error matching none is ErrUnavailable (the call did not
// complete, for a reason the driver could not name), keeping it in the chain.
func (b *Backend) fail(err error) error {
	if err == nil {
		return nil
	}
	if b.closed() {
		return as(ErrClosed, err)
	}
	m := matched(err)
	switch len(m) {
	case 1:
		return err
	case 0:
		return as(ErrUnavailable, err)
	}
	return as(m[0], err)
}

// failPay gives a payment error its one sentinel, erring towards
// ErrPaymentUnknown: only a driver's own ErrInvalid, ErrUnsupported or
// ErrPaymentFailed say nothing was paid, and its ErrUnavailable says so only
// when the call did not end by a deadline, a cancel or Close (a payment cut
// off mid-flight may go on at the node).
func (b *Backend) failPay(err error) error {
	m := matched(err)
	if len(m) == 1 {
		switch m[0] {
		case ErrInvalid, ErrUnsupported, ErrPaymentFailed, ErrPaymentUnknown:
			return err
		case ErrUnavailable:
			if !b.closed() && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				return err
			}
		}
	}
	return as(ErrPaymentUnknown, err)
}

// CreateInvoice asks the node for a new invoice. req is validated (see
// InvoiceRequest.Validate); a zero Expiry means DefaultExpiry; Expiry is
// cut to whole seconds, as BOLT11 carries it, and must be at least one.
func (b *Backend) CreateInvoice(ctx context.Context, req InvoiceRequest) (*Invoice, error) {
	if err := prepare(&req); err != nil {
		return nil, err
	}
	ctx, done, err := b.call(ctx, b.opts.CallTimeout)
	if err != nil {
		return nil, err
	}
	defer done()
	inv, err := b.drv.CreateInvoice(ctx, req)
	if err != nil {
		return nil, b.fail(err)
	}
	var want *PaymentHash
	if req.Preimage != nil {
		h := req.Preimage.Hash()
		want = &h
	}
	if err := b.checkCreated(inv, want, req.Preimage); err != nil {
		return nil, err
	}
	return inv, nil
}

// prepare validates req and fills its defaults.
func prepare(req *InvoiceRequest) error {
	if err := req.Validate(); err != nil {
		return err
	}
	req.Expiry = req.ExpiryOrDefault().Truncate(time.Second)
	if req.Expiry < time.Second {
		return errorf(ErrInvalid, "expiry under one second (BOLT11 counts whole seconds)")
	}
	return nil
}

// checkCreated holds a driver's new invoice to what was asked.
func (b *Backend) checkCreated(inv *Invoice, want *PaymentHash, pre *Preimage) error {
	switch {
	case inv == nil || inv.PaymentRequest == "" || inv.PaymentHash.IsZero():
		return errorf(ErrUnavailable, "node answered without an invoice")
	case want != nil && inv.PaymentHash != *want:
		return errorf(ErrUnavailable, "node made invoice %s, asked for hash %s", inv.PaymentHash, *want)
	}
	if pre != nil && inv.Preimage == nil {
		p := *pre
		inv.Preimage = &p
	}
	return nil
}

// LookupInvoice returns the invoice with that payment hash, or an error
// wrapping ErrNotFound.
func (b *Backend) LookupInvoice(ctx context.Context, hash PaymentHash) (*Invoice, error) {
	ctx, done, err := b.call(ctx, b.opts.CallTimeout)
	if err != nil {
		return nil, err
	}
	defer done()
	inv, err := b.drv.LookupInvoice(ctx, hash)
	if err != nil {
		return nil, b.fail(err)
	}
	if inv == nil || inv.PaymentHash != hash {
		return nil, errorf(ErrUnavailable, "node answered another invoice for %s", hash)
	}
	return inv, nil
}

// WaitInvoice returns the invoice once it is no longer open (held, settled
// or canceled) or is open past its expiry, or when ctx ends or b is closed.
// A driver that cannot wait is polled every Options.PollInterval; while it
// is unavailable the poll goes on.
func (b *Backend) WaitInvoice(ctx context.Context, hash PaymentHash) (*Invoice, error) {
	ctx, done, err := b.call(ctx, 0)
	if err != nil {
		return nil, err
	}
	defer done()
	if b.waiter != nil {
		inv, err := b.waiter.WaitInvoice(ctx, hash)
		if err != nil {
			return nil, b.fail(err)
		}
		return inv, nil
	}
	t := time.NewTicker(b.opts.PollInterval)
	defer t.Stop()
	for {
		lctx, cancel := context.WithTimeout(ctx, b.opts.CallTimeout)
		inv, err := b.drv.LookupInvoice(lctx, hash)
		cancel()
		switch {
		case err == nil && (inv.State != StateOpen || inv.Expired(time.Now())):
			return inv, nil
		case err != nil && ctx.Err() == nil && !errors.Is(err, ErrUnavailable):
			return nil, b.fail(err)
		}
		select {
		case <-ctx.Done():
			return nil, b.fail(fmt.Errorf("wait for invoice %s: %w", hash, ctx.Err()))
		case <-t.C:
		}
	}
}

// CreateHoldInvoice creates an invoice for hash whose preimage only the
// caller knows; req is checked as for CreateInvoice, and req.Preimage must
// be nil.
func (b *Backend) CreateHoldInvoice(ctx context.Context, hash PaymentHash, req InvoiceRequest) (*Invoice, error) {
	if b.holder == nil {
		return nil, b.unsupported(AbilityHold)
	}
	switch {
	case req.Preimage != nil:
		return nil, errorf(ErrInvalid, "a hold invoice's preimage stays with the caller")
	case hash.IsZero():
		return nil, errorf(ErrInvalid, "zero payment hash")
	}
	if err := prepare(&req); err != nil {
		return nil, err
	}
	ctx, done, err := b.call(ctx, b.opts.CallTimeout)
	if err != nil {
		return nil, err
	}
	defer done()
	inv, err := b.holder.CreateHoldInvoice(ctx, hash, req)
	if err != nil {
		return nil, b.fail(err)
	}
	if err := b.checkCreated(inv, &hash, nil); err != nil {
		return nil, err
	}
	return inv, nil
}

// SettleInvoice settles the held invoice whose hash is sha256(preimage).
func (b *Backend) SettleInvoice(ctx context.Context, preimage Preimage) error {
	if b.holder == nil {
		return b.unsupported(AbilityHold)
	}
	ctx, done, err := b.call(ctx, b.opts.CallTimeout)
	if err != nil {
		return err
	}
	defer done()
	return b.fail(b.holder.SettleInvoice(ctx, preimage))
}

// CancelInvoice cancels an open or held invoice; a held payment goes back to
// the payer.
func (b *Backend) CancelInvoice(ctx context.Context, hash PaymentHash) error {
	if b.holder == nil {
		return b.unsupported(AbilityHold)
	}
	ctx, done, err := b.call(ctx, b.opts.CallTimeout)
	if err != nil {
		return err
	}
	defer done()
	return b.fail(b.holder.CancelInvoice(ctx, hash))
}

// Info describes the node.
func (b *Backend) Info(ctx context.Context) (*NodeInfo, error) {
	if b.info == nil {
		return nil, b.unsupported(AbilityInfo)
	}
	ctx, done, err := b.call(ctx, b.opts.CallTimeout)
	if err != nil {
		return nil, err
	}
	defer done()
	info, err := b.info.Info(ctx)
	return info, b.fail(err)
}

// Ping returns nil when the node answers now: through the driver's Pinger,
// or its Informer when it has no Pinger. A driver with neither answers
// ErrUnsupported.
func (b *Backend) Ping(ctx context.Context) error {
	if b.pinger == nil && b.info == nil {
		return b.unsupported(AbilityPing)
	}
	ctx, done, err := b.call(ctx, b.opts.CallTimeout)
	if err != nil {
		return err
	}
	defer done()
	if b.pinger != nil {
		return b.fail(b.pinger.Ping(ctx))
	}
	_, err = b.info.Info(ctx)
	return b.fail(err)
}

func (b *Backend) unsupported(a Ability) error {
	if b.closed() {
		return errorf(ErrClosed, "call after Close")
	}
	return errorf(ErrUnsupported, "this node has no %q ability (it has %v)", a, Abilities(b))
}

// PayInvoice pays bolt11, which may carry a "lightning:" prefix (any case)
// and surrounding whitespace. opts.Amount pays an any-amount invoice and must
// otherwise be zero or the invoice's amount; opts.MaxFee is honoured, or
// refused with ErrUnsupported by a node that cannot limit fees; a zero
// opts.Timeout means DefaultPayTimeout.
//
// The error says what became of the money. ErrInvalid, ErrUnsupported,
// ErrUnavailable and ErrClosed: the payment did not start, and retrying is
// safe. ErrPaymentFailed: it ended without paying. ErrPaymentUnknown: it may
// have started and may still succeed; do not retry blindly. An invoice this
// node paid before is refused with ErrPaymentFailed and nothing is paid
// again (nodes differ in whether they say so or repeat the earlier result;
// the contract is the refusal).
func (b *Backend) PayInvoice(ctx context.Context, bolt11 string, opts PayOptions) (*Payment, error) {
	if b.payer == nil {
		return nil, b.unsupported(AbilityPay)
	}
	bolt11 = TrimInvoice(bolt11)
	d, err := DecodeInvoice(bolt11)
	if err != nil {
		return nil, err
	}
	amount := d.Amount
	switch {
	case opts.Amount < 0 || opts.MaxFee < 0 || opts.Timeout < 0:
		return nil, errorf(ErrInvalid, "negative amount, fee limit or timeout in PayOptions")
	case d.Amount == 0 && opts.Amount == 0:
		return nil, errorf(ErrInvalid, "any-amount invoice needs PayOptions.Amount")
	case d.Amount == 0:
		amount = opts.Amount
	case opts.Amount != 0 && opts.Amount != d.Amount:
		return nil, errorf(ErrInvalid, "invoice asks %s, PayOptions.Amount is %s", d.Amount, opts.Amount)
	default:
		opts.Amount = 0 // the invoice's own amount: drivers send none
	}
	if opts.MaxFee > 0 && !b.feeOK {
		return nil, errorf(ErrUnsupported, "this node cannot limit routing fees; PayOptions.MaxFee must be zero")
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultPayTimeout
	}
	if !d.ExpiresAt().After(time.Now()) {
		return nil, errorf(ErrPaymentFailed, "invoice expired at %s", d.ExpiresAt().UTC().Format(time.RFC3339))
	}
	// The node is told opts.Timeout; the call gets a grace period to hear
	// how the payment ended.
	bound, cancel := context.WithTimeout(ctx, opts.Timeout+payGrace)
	defer cancel()
	ctx, done, err := b.call(bound, 0)
	if err != nil {
		return nil, err
	}
	defer done()
	p, err := b.payer.PayInvoice(ctx, bolt11, opts)
	if err != nil {
		return nil, b.failPay(err)
	}
	if p == nil || !p.Preimage.Matches(d.PaymentHash) {
		return nil, errorf(ErrPaymentUnknown, "node reported success for %s without its preimage", d.PaymentHash)
	}
	p.PaymentHash = d.PaymentHash
	if p.Amount == 0 {
		p.Amount = amount
	}
	return p, nil
}

// TrimInvoice returns a BOLT11 string without surrounding whitespace and
// without a "lightning:" URI prefix (in any case), as wallets and QR codes
// carry it.
func TrimInvoice(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= len("lightning:") && strings.EqualFold(s[:len("lightning:")], "lightning:") {
		s = strings.TrimSpace(s[len("lightning:"):])
	}
	return s
}
