package cln

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt11"
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

// Core Lightning error codes (common/jsonrpc_errors.h) the adapter tells apart.
const (
	codeInvalidRequest        = -32600
	codeMethodNotFound        = -32601
	codeInvalidParams         = -32602
	codePluginError           = -32700 // cln_plugin's code for a plugin method's error
	codeLightningd            = -1
	codePluginTerminated      = -4
	codeShutdown              = -5
	codePayFirst              = 200
	codePayInProgress         = 200
	codeDestPermFail          = 203
	codeRouteNotFound         = 205
	codeInvoiceExpired        = 207
	codeXpayAlreadyPaid       = 219
	codePayLast               = 299
	codeLabelExists           = 900
	codePreimageExists        = 901
	codeExpiredDuringWait     = 903
	codeWaitTimedOut          = 904
	codeInvoiceNotFound       = 905
	codeInvoiceStatusMismatch = 906
	codeRuneNotAuthorized     = 1501
	codeRuneNotPermitted      = 1502
	codeRuneBlacklisted       = 1503
)

// classify maps a Core Lightning error to a backend sentinel.
func classify(method string, e *RPCError) error {
	msg := strings.ToLower(e.Message)
	switch {
	case e.Code == codeMethodNotFound:
		return backend.ErrUnsupported
	case e.Code == codeInvalidParams || e.Code == codeInvalidRequest:
		return backend.ErrInvalid
	case e.Code == codeShutdown || e.Code == codePluginTerminated:
		return backend.ErrUnavailable
	case e.Code == codeLabelExists || e.Code == codePreimageExists:
		return backend.ErrAlreadyExists
	case e.Code == codeInvoiceNotFound:
		return backend.ErrNotFound
	case e.Code >= codeRuneNotAuthorized && e.Code <= codeRuneBlacklisted:
		return backend.ErrInvalid
	case e.Code >= codePayFirst && e.Code <= codePayLast:
		return backend.ErrPaymentFailed
	case e.Code == codePluginError:
		// The hold plugin reports everything with one code; its messages
		// are all we have.
		switch {
		case strings.Contains(msg, "not found"):
			return backend.ErrNotFound
		case strings.Contains(msg, "unique constraint") || strings.Contains(msg, "duplicate key"):
			return backend.ErrAlreadyExists
		}
		return backend.ErrInvalid
	case e.Code == 0 && e.HTTPStatus != 0:
		// CLNRest itself refused, without a node code.
		switch {
		case e.HTTPStatus == 401 || e.HTTPStatus == 403:
			return backend.ErrInvalid
		case e.HTTPStatus == 404:
			return backend.ErrUnsupported
		case e.HTTPStatus >= 500:
			return backend.ErrUnavailable
		}
		return backend.ErrInvalid
	case strings.Contains(msg, "not found") || strings.Contains(msg, "unknown invoice"):
		return backend.ErrNotFound
	case method == "pay" || method == "xpay":
		return backend.ErrPaymentFailed
	}
	return backend.ErrInvalid
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

// newLabel returns a label no other invoice has: Core Lightning requires
// one per invoice, and the adapter finds invoices by hash, not label.
func newLabel() (string, error) {
	var r [12]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("cln: label: %w", err)
	}
	return "l402kit-" + hex.EncodeToString(r[:]), nil
}

// CreateInvoice implements backend.Driver with the invoice method. A
// request with HashedDescription asks invoice for deschashonly: lightningd
// hashes the text it is given into the invoice's h field. A request with
// only a DescriptionHash is ErrUnsupported: Core Lightning makes a
// description-hash invoice only from the description's text (createinvoice,
// which signs an invoice the caller encodes, refuses one without a
// description with "Missing description in invoice").
func (b *driver) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	if req.DescriptionHash != nil && req.HashedDescription == "" {
		return nil, fmt.Errorf("cln: %w: Core Lightning commits to a description hash only when given the description itself (InvoiceRequest.HashedDescription)", backend.ErrUnsupported)
	}
	expiry := req.Expiry
	label, err := newLabel()
	if err != nil {
		return nil, err
	}
	p := invoiceParams{
		AmountMsat:  "any",
		Label:       label,
		Description: req.Memo,
		Expiry:      int64(expiry / time.Second),
	}
	if req.HashedDescription != "" {
		p.Description, p.DescHashOnly = req.HashedDescription, true
	}
	if err := checkDescription(p.Description); err != nil {
		return nil, fmt.Errorf("cln: %w", err)
	}
	if req.Amount > 0 {
		p.AmountMsat = int64(req.Amount)
	}
	if req.Preimage != nil {
		p.Preimage = req.Preimage.String()
	}
	var res invoiceResult
	if err := b.call(ctx, "invoice", p, &res); err != nil {
		return nil, err
	}
	inv, err := fromCreated(&res, req)
	if err != nil {
		return nil, fmt.Errorf("cln: invoice: %w", err)
	}
	return inv, nil
}

// fromCreated builds the portable invoice from invoice's reply and the
// request, reading the creation time from the BOLT11 string, which is the
// only place Core Lightning reports it.
func fromCreated(res *invoiceResult, req backend.InvoiceRequest) (*backend.Invoice, error) {
	hash, err := backend.ParsePaymentHash(res.PaymentHash)
	if err != nil {
		return nil, err
	}
	d, err := backend.DecodeInvoice(res.Bolt11)
	if err != nil {
		return nil, err
	}
	if d.PaymentHash != hash {
		return nil, fmt.Errorf("%w: bolt11 hash %s differs from payment_hash %s", backend.ErrInvalid, d.PaymentHash, hash)
	}
	inv := &backend.Invoice{
		PaymentHash:    hash,
		PaymentRequest: res.Bolt11,
		Amount:         req.Amount,
		Memo:           d.Memo,
		State:          backend.StateOpen,
		CreatedAt:      d.CreatedAt,
		ExpiresAt:      time.Unix(res.ExpiresAt, 0),
	}
	return inv, nil
}

// fromFields converts an invoice as listinvoices and waitinvoice report it.
// Core Lightning's "expired" status reads as Open here: backend leaves
// expiry to Invoice.Expired, and CLN never cancels an invoice.
func fromFields(f *invoiceFields) (*backend.Invoice, error) {
	if f.Bolt11 == "" && f.Bolt12 != "" {
		return fromBolt12Fields(f)
	}
	if f.Bolt11 == "" {
		return nil, fmt.Errorf("%w: invoice %q is neither BOLT11 nor BOLT12", backend.ErrUnsupported, f.Label)
	}
	hash, err := backend.ParsePaymentHash(f.PaymentHash)
	if err != nil {
		return nil, err
	}
	d, err := backend.DecodeInvoice(f.Bolt11)
	if err != nil {
		return nil, err
	}
	inv := &backend.Invoice{
		PaymentHash:    hash,
		PaymentRequest: f.Bolt11,
		Memo:           f.Description,
		CreatedAt:      d.CreatedAt,
		ExpiresAt:      time.Unix(f.ExpiresAt, 0),
	}
	switch {
	case d.DescriptionHash != nil:
		// lightningd lists the text it hashed (deschashonly); the
		// invoice itself carries no memo.
		inv.Memo = ""
	case inv.Memo == "":
		inv.Memo = d.Memo
	}
	if f.AmountMsat != nil {
		inv.Amount = backend.MilliSat(*f.AmountMsat)
	}
	switch f.Status {
	case "paid":
		inv.State = backend.StateSettled
		if f.AmountReceivedMsat != nil {
			inv.AmountReceived = backend.MilliSat(*f.AmountReceivedMsat)
		}
		inv.SettledAt = time.Unix(f.PaidAt, 0)
		pre, err := backend.ParsePreimage(f.PaymentPreimage)
		if err != nil {
			return nil, fmt.Errorf("paid invoice %s: %w", hash, err)
		}
		inv.Preimage = &pre
	case "unpaid", "expired":
		inv.State = backend.StateOpen
	default:
		return nil, fmt.Errorf("%w: invoice %s has unknown status %q", backend.ErrInvalid, hash, f.Status)
	}
	return inv, nil
}

// LookupInvoice implements backend.Driver: listinvoices by payment_hash,
// then, with the hold plugin, listholdinvoices (hold invoices are signed by
// lightningd but kept by the plugin, so listinvoices does not know them).
func (b *driver) LookupInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	inv, _, err := b.lookup(ctx, hash)
	return inv, err
}

// lookup returns the invoice and, for a plain one, its label.
func (b *driver) lookup(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, string, error) {
	var res listInvoicesResult
	if err := b.call(ctx, "listinvoices", map[string]string{"payment_hash": hash.String()}, &res); err != nil {
		return nil, "", err
	}
	if len(res.Invoices) > 0 {
		inv, err := fromFields(&res.Invoices[0])
		if err != nil {
			return nil, "", fmt.Errorf("cln: listinvoices: %w", err)
		}
		return inv, res.Invoices[0].Label, nil
	}
	if b.hold {
		inv, err := b.lookupHold(ctx, hash)
		return inv, "", err
	}
	return nil, "", fmt.Errorf("cln: %w: no invoice with payment hash %s", backend.ErrNotFound, hash)
}

func (b *driver) lookupHold(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	var res listHoldInvoicesResult
	if err := b.call(ctx, "listholdinvoices", map[string]string{"payment_hash": hash.String()}, &res); err != nil {
		return nil, err
	}
	if len(res.HoldInvoices) == 0 {
		return nil, fmt.Errorf("cln: %w: no invoice with payment hash %s", backend.ErrNotFound, hash)
	}
	inv, err := fromHold(&res.HoldInvoices[0])
	if err != nil {
		return nil, fmt.Errorf("cln: listholdinvoices: %w", err)
	}
	return inv, nil
}

// fromHold converts a listholdinvoices entry; amount, memo and times come
// from its BOLT11 string, which is all the plugin keeps of them.
func fromHold(h *holdInvoice) (*backend.Invoice, error) {
	hash, err := backend.ParsePaymentHash(h.PaymentHash)
	if err != nil {
		return nil, err
	}
	d, err := backend.DecodeInvoice(h.Invoice)
	if err != nil {
		return nil, err
	}
	inv := d.Invoice()
	inv.PaymentHash = hash // as the plugin lists it
	for _, htlc := range h.HTLCs {
		if htlc.State == "accepted" || htlc.State == "paid" {
			inv.AmountReceived += backend.MilliSat(htlc.Msat)
		}
	}
	switch h.State {
	case "unpaid":
		inv.State = backend.StateOpen
	case "accepted":
		inv.State = backend.StateHeld
	case "paid":
		inv.State = backend.StateSettled
		if inv.SettledAt, err = parseNaiveTime(h.SettledAt); err != nil {
			return nil, err
		}
	case "cancelled":
		inv.State = backend.StateCanceled
		inv.AmountReceived = 0
	default:
		return nil, fmt.Errorf("%w: hold invoice %s has unknown state %q", backend.ErrInvalid, hash, h.State)
	}
	if h.Preimage != "" {
		pre, err := backend.ParsePreimage(h.Preimage)
		if err != nil {
			return nil, err
		}
		inv.Preimage = &pre
	}
	return inv, nil
}

// WaitInvoice implements backend.Waiter: waitinvoice for a plain invoice
// (lightningd answers when it is paid, or with error 903 when it expires),
// polling listholdinvoices for a hold invoice.
func (b *driver) WaitInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	inv, label, err := b.lookup(ctx, hash)
	if err != nil {
		return nil, err
	}
	if inv.State != backend.StateOpen || inv.Expired(time.Now()) {
		return inv, nil
	}
	if label == "" {
		return b.pollHold(ctx, hash)
	}
	var f invoiceFields
	err = b.call(ctx, "waitinvoice", map[string]string{"label": label}, &f)
	var rerr *RPCError
	if errors.As(err, &rerr) && rerr.Code == codeExpiredDuringWait {
		// The error's data is the invoice, now expired.
		if jerr := json.Unmarshal(rerr.Data, &f); jerr != nil || f.PaymentHash == "" {
			return b.LookupInvoice(ctx, hash)
		}
		err = nil
	}
	if err != nil {
		return nil, err
	}
	inv, err = fromFields(&f)
	if err != nil {
		return nil, fmt.Errorf("cln: waitinvoice: %w", err)
	}
	return inv, nil
}

func (b *driver) pollHold(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	t := time.NewTicker(b.holdPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cln: wait for invoice %s: %w", hash, ctx.Err())
		case <-t.C:
		}
		inv, err := b.lookupHold(ctx, hash)
		if err != nil {
			return nil, err
		}
		if inv.State != backend.StateOpen || inv.Expired(time.Now()) {
			return inv, nil
		}
	}
}

// PayInvoice implements backend.Payer with xpay where the node has it
// (v24.11 and later; v27.03 has nothing else) and pay on older nodes: which
// one New chose from help (payMethod). retry_for is opts.Timeout, so the
// node stops trying before the Backend stops waiting; maxfee is opts.MaxFee
// (zero leaves the node's default: xpay's 5000 msat or 1%, whichever is
// greater; pay's 0.5% with 5 sat exempt).
//
// listpays is asked first: a complete payment of the invoice is
// ErrPaymentFailed (xpay would answer 219, pay the earlier success again,
// paying nothing either way), a pending one ErrPaymentUnknown. After an
// error whose outcome is not certain (xpay's 209, -1 or a plugin error,
// pay's 200, a connection lost mid-call) listpays is asked again instead of
// guessing: a complete payment is the success (with its preimage), one
// with a part still in flight ErrPaymentUnknown (xpay gives up without
// waiting for parts in flight), a failed or unrecorded one
// ErrPaymentFailed when the node answered, ErrPaymentUnknown when it did
// not. Nothing is ever sent twice.
func (b *driver) PayInvoice(ctx context.Context, bolt11 string, opts backend.PayOptions) (*backend.Payment, error) {
	d, err := backend.DecodeInvoice(bolt11)
	if err != nil {
		return nil, err
	}
	earlier, err := b.listpays(ctx, d.PaymentHash)
	if err != nil {
		return nil, err // nothing was sent yet
	}
	switch payStatus(earlier) {
	case "complete":
		return nil, fmt.Errorf("cln: %s: %w: invoice is already paid (listpays)", b.payMethod, backend.ErrPaymentFailed)
	case "pending":
		return nil, fmt.Errorf("cln: %s: %w: a payment of this invoice is in flight (listpays)", b.payMethod, backend.ErrPaymentUnknown)
	}
	retryFor := int64((opts.Timeout + time.Second - 1) / time.Second)
	switch b.payMethod {
	case "xpay":
		return b.xpay(ctx, d.PaymentHash, xpayParams{Invstring: bolt11, AmountMsat: int64(opts.Amount), MaxFee: int64(opts.MaxFee), RetryFor: retryFor})
	case "pay":
		return b.pay(ctx, d.PaymentHash, payParams{Bolt11: bolt11, AmountMsat: int64(opts.Amount), MaxFee: int64(opts.MaxFee), RetryFor: retryFor})
	}
	return nil, fmt.Errorf("cln: %w: the node has neither xpay nor pay (help knows neither)", backend.ErrUnsupported)
}

// listpays returns this node's payments of hash.
func (b *driver) listpays(ctx context.Context, hash backend.PaymentHash) ([]listPaysEntry, error) {
	var res listPaysResult
	if err := b.call(ctx, "listpays", map[string]string{"payment_hash": hash.String()}, &res); err != nil {
		return nil, err
	}
	return res.Pays, nil
}

// payStatus sums up a payment's attempts: "complete" if one completed,
// else "pending" if one has a part in flight, else "failed", or "" when
// there is none.
func payStatus(pays []listPaysEntry) string {
	out := ""
	for _, p := range pays {
		switch {
		case p.Status == "complete":
			return "complete"
		case p.Status == "pending":
			out = "pending"
		case out == "":
			out = "failed"
		}
	}
	return out
}

// xpay pays with xpay. Its success has no status: it is complete.
func (b *driver) xpay(ctx context.Context, hash backend.PaymentHash, p xpayParams) (*backend.Payment, error) {
	var res xpayResult
	err := b.call(ctx, "xpay", p, &res)
	if err == nil {
		return payment(hash, res.PaymentPreimage, res.AmountMsat, res.AmountSentMsat)
	}
	var rerr *RPCError
	if errors.As(err, &rerr) {
		switch rerr.Code {
		case codeXpayAlreadyPaid:
			return nil, fmt.Errorf("cln: xpay: %w: invoice is already paid: %w", backend.ErrPaymentFailed, rerr)
		case codeDestPermFail, codeRouteNotFound, codeInvoiceExpired:
			return nil, err // classify: ErrPaymentFailed
		case codeInvalidParams, codeInvalidRequest, codeMethodNotFound:
			return nil, err // refused before anything was sent
		}
		if rerr.Code >= codeRuneNotAuthorized && rerr.Code <= codeRuneBlacklisted {
			return nil, err
		}
		// 209 (other, among them "Timed out" with parts still in
		// flight), -1, a plugin error, 200: ask what became of it.
		return b.resolve(ctx, "xpay", hash, true, err)
	}
	return b.resolve(ctx, "xpay", hash, false, err)
}

// pay pays with pay (nodes before v24.11, or without the xpay plugin).
func (b *driver) pay(ctx context.Context, hash backend.PaymentHash, p payParams) (*backend.Payment, error) {
	start := time.Now()
	var res payResult
	err := b.call(ctx, "pay", p, &res)
	var rerr *RPCError
	switch {
	case errors.As(err, &rerr) && rerr.Code == codePayInProgress:
		return b.resolve(ctx, "pay", hash, true, err)
	case errors.As(err, &rerr):
		return nil, err
	case err != nil:
		return b.resolve(ctx, "pay", hash, false, err)
	}
	switch {
	case res.Status == "pending":
		return b.resolve(ctx, "pay", hash, true, fmt.Errorf("status %q", res.Status))
	case res.Status != "complete":
		return nil, fmt.Errorf("cln: pay: %w: status %q", backend.ErrPaymentFailed, res.Status)
	case res.CreatedAt > 0 && res.CreatedAt < float64(start.Add(-2*time.Second).UnixMilli())/1000:
		return nil, fmt.Errorf("cln: pay: %w: invoice is already paid (pay returned the payment of %s)",
			backend.ErrPaymentFailed, time.UnixMilli(int64(res.CreatedAt*1000)).UTC().Format(time.RFC3339))
	}
	return payment(hash, res.PaymentPreimage, res.AmountMsat, res.AmountSentMsat)
}

// payment builds the result of a complete payment.
func payment(hash backend.PaymentHash, preimage string, amount, sent Msat) (*backend.Payment, error) {
	pre, err := backend.ParsePreimage(preimage)
	if err != nil {
		return nil, fmt.Errorf("cln: %w: payment of %s completed with an unreadable preimage: %w", backend.ErrPaymentUnknown, hash, err)
	}
	return &backend.Payment{
		PaymentHash: hash,
		Preimage:    pre,
		Amount:      backend.MilliSat(amount),
		Fee:         backend.MilliSat(sent - amount),
	}, nil
}

// resolve asks listpays what became of a payment whose call ended without
// a certain outcome (cause). answered says the node replied: a payment it
// did not record, or recorded as failed, then certainly did not pay. A
// connection that failed before the request left is no payment at all; a
// context that ended leaves nothing to ask with.
func (b *driver) resolve(ctx context.Context, method string, hash backend.PaymentHash, answered bool, cause error) (*backend.Payment, error) {
	if errors.Is(cause, errNotSent) {
		return nil, cause
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("cln: %s: %w: %w", method, backend.ErrPaymentUnknown, cause)
	}
	pays, err := b.listpays(ctx, hash)
	if err != nil {
		return nil, fmt.Errorf("cln: %s: %w: %v; and listpays failed: %v", method, backend.ErrPaymentUnknown, cause, err)
	}
	switch payStatus(pays) {
	case "complete":
		for _, p := range pays {
			if p.Status == "complete" {
				b.log.Debug("cln: payment completed despite the error", "method", method, "hash", hash, "err", cause)
				return payment(hash, p.Preimage, p.AmountMsat, p.AmountSentMsat)
			}
		}
	case "pending":
		return nil, fmt.Errorf("cln: %s: %w: a part is still in flight (listpays): %v", method, backend.ErrPaymentUnknown, cause)
	}
	if answered {
		return nil, fmt.Errorf("cln: %s: %w: nothing in flight (listpays): %v", method, backend.ErrPaymentFailed, cause)
	}
	return nil, fmt.Errorf("cln: %s: %w: the node went away during the call: %v", method, backend.ErrPaymentUnknown, cause)
}

// holdCLTV is the min_final_cltv_expiry of the invoices the adapter
// encodes itself (hold invoices): the hold
// plugin's own encoder uses 80 blocks, leaving room to decide before the
// payer's HTLC times out.
const holdCLTV = 80

// CreateHoldInvoice implements backend.HoldInvoicer. The hold plugin's own
// holdinvoice RPC takes only a hash and an amount (no description, a fixed
// one-hour expiry), so the adapter writes the invoice itself: it encodes
// the BOLT11 with the request's amount, memo or description hash and
// expiry, has lightningd sign it as the node (signinvoice, which keeps no
// state), and hands it to the plugin with injectholdinvoice.
func (h *holdDriver) CreateHoldInvoice(ctx context.Context, hash backend.PaymentHash, req backend.InvoiceRequest) (*backend.Invoice, error) {
	unsigned, err := encodeUnsigned(h.network, hash, req, req.Expiry)
	if err != nil {
		return nil, err
	}
	var signed holdInvoiceResult
	if err := h.call(ctx, "signinvoice", map[string]string{"invstring": unsigned}, &signed); err != nil {
		return nil, err
	}
	d, err := backend.DecodeInvoice(signed.Bolt11)
	if err != nil {
		return nil, fmt.Errorf("cln: signinvoice: %w", err)
	}
	if d.PaymentHash != hash {
		return nil, fmt.Errorf("cln: signinvoice: %w: bolt11 hash %s, asked %s", backend.ErrInvalid, d.PaymentHash, hash)
	}
	if err := h.call(ctx, "injectholdinvoice", map[string]string{"invoice": signed.Bolt11}, nil); err != nil {
		return nil, err
	}
	return d.Invoice(), nil
}

// encodeUnsigned writes a BOLT11 invoice for signinvoice, which ignores the
// signature it finds: the throwaway key only satisfies the encoder.
func encodeUnsigned(network string, hash backend.PaymentHash, req backend.InvoiceRequest, expiry time.Duration) (string, error) {
	key, err := btcec.NewPrivateKey()
	if err != nil {
		return "", fmt.Errorf("cln: %w", err)
	}
	s, err := bolt11.EncodePayable(bolt11.Invoice{
		Network: portableNetwork(network), PaymentHash: hash, Timestamp: time.Now(), Expiry: expiry,
		Amount: int64(req.Amount), Description: req.Memo, DescriptionHash: req.CommittedDescriptionHash(), MinFinalCLTV: holdCLTV,
	}, key)
	if err != nil {
		return "", fmt.Errorf("cln: node network %q: %w: %w", network, backend.ErrInvalid, err)
	}
	return s, nil
}

// SettleInvoice implements backend.HoldInvoicer with settleholdinvoice.
func (h *holdDriver) SettleInvoice(ctx context.Context, preimage backend.Preimage) error {
	return h.call(ctx, "settleholdinvoice", map[string]string{"preimage": preimage.String()}, nil)
}

// CancelInvoice implements backend.HoldInvoicer with cancelholdinvoice. It
// cancels hold invoices only: Core Lightning cannot cancel a plain invoice
// (delinvoice deletes it instead).
func (h *holdDriver) CancelInvoice(ctx context.Context, hash backend.PaymentHash) error {
	return h.call(ctx, "cancelholdinvoice", map[string]string{"payment_hash": hash.String()}, nil)
}
