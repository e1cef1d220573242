// Package memnode is the in-process Lightning node behind package memory
// and under the wire-level fakes (clnfake, eclairfake, phoenixdfake).
//
// Its invoices are real BOLT11 strings (regtest, "lnbcrt"), signed with a key
// made when the node starts, with real payment hashes and preimages, so any
// BOLT11 decoder accepts them. It has every optional ability of package
// backend; it can pay only its own invoices, which is what a service and its
// tests need: the payment settles in process. Paying a hold invoice leaves it
// Held and blocks the payer, as an in-flight HTLC would, until the invoice is
// settled, canceled or expires, or the payer's context ends.
//
// A *Node is a raw backend.Driver: its methods trust their arguments as a
// Backend passes them. It lives under internal so that users reach it only
// through memory.New (the portable *backend.Backend), while the fakes and
// this module's tests drive it directly. A Node is safe for concurrent use.
// SetAvailable(false) makes it behave like a node that went down, for testing
// how callers handle ErrUnavailable.
package memnode

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt11"
)

// Config sets up a Node. The zero value is ready to use.
type Config struct {
	// Alias is reported by Info; default "l402kit-memory".
	Alias string
	// Network names the chain whose BOLT11 prefix invoices carry
	// ("regtest", "testnet", "signet", "mainnet", "simnet"); default regtest.
	Network string
	// Now replaces time.Now, for tests that control the clock.
	Now func() time.Time
	// KeepExpired is how long an invoice that can no longer be paid
	// (expired unpaid, or canceled) is kept before the node forgets it;
	// afterwards looking it up gives ErrNotFound, as on a node that deleted
	// it. Default 10 minutes; negative keeps every invoice for ever.
	// Paid and held invoices are always kept.
	KeepExpired time.Duration
}

// Node is an in-process Lightning node.
type Node struct {
	key     *btcec.PrivateKey
	nodeID  string
	alias   string
	network string
	now     func() time.Time
	keep    time.Duration

	mu        sync.Mutex
	invoices  map[backend.PaymentHash]*entry
	offers    map[string]*offerEntry // by offer id
	lastSweep time.Time
	down      chan struct{} // closed while the node is unavailable
	up        bool
	closed    bool
	closedCh  chan struct{}
}

type entry struct {
	inv      backend.Invoice
	preimage *backend.Preimage // nil for a hold invoice until settled
	hold     bool
	offer    string        // the offer it was made for, if any
	changed  chan struct{} // closed and replaced on every state change
}

// New starts a node with a fresh key. Its methods are a backend.Driver's:
// they trust their arguments as a Backend passes them.
func New(cfg Config) (*Node, error) {
	key, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, fmt.Errorf("memory: node key: %w", err)
	}
	if cfg.Network == "" {
		cfg.Network = "regtest"
	}
	if _, err := bolt11.Prefix(cfg.Network); err != nil {
		return nil, fmt.Errorf("memory: %w: %w", backend.ErrInvalid, err)
	}
	if cfg.Alias == "" {
		cfg.Alias = "l402kit-memory"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.KeepExpired == 0 {
		cfg.KeepExpired = 10 * time.Minute
	}
	n := &Node{
		key:      key,
		nodeID:   hex.EncodeToString(key.PubKey().SerializeCompressed()),
		alias:    cfg.Alias,
		network:  cfg.Network,
		now:      cfg.Now,
		keep:     cfg.KeepExpired,
		invoices: map[backend.PaymentHash]*entry{},
		offers:   map[string]*offerEntry{},
		down:     make(chan struct{}),
		up:       true,
		closedCh: make(chan struct{}),
	}
	if n.keep >= 0 {
		go n.sweepLoop()
	}
	return n, nil
}

// sweepLoop forgets dead invoices also while nobody creates new ones (a
// flood that stopped), until the node is closed.
func (n *Node) sweepLoop() {
	t := time.NewTicker(min(max(n.keep/10, time.Second), time.Minute))
	defer t.Stop()
	for {
		select {
		case <-n.closedCh:
			return
		case <-t.C:
			n.mu.Lock()
			n.sweep(n.now())
			n.mu.Unlock()
		}
	}
}

// NodeID returns the node's public key as hex; its invoices name it as payee.
func (n *Node) NodeID() string { return n.nodeID }

// SetAvailable takes the node down (false) or brings it back (true). While
// down every call fails with backend.ErrUnavailable and waits in progress end
// with it, as they would when a real node's connection drops. Invoices
// survive, as they do across a real node's restart.
func (n *Node) SetAvailable(up bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if up == n.up {
		return
	}
	n.up = up
	if up {
		n.down = make(chan struct{})
	} else {
		close(n.down)
	}
}

// check returns why the node cannot serve a call, if it cannot. n.mu held.
func (n *Node) check() error {
	if n.closed {
		return fmt.Errorf("memory: %w: node closed", backend.ErrUnavailable)
	}
	if !n.up {
		return fmt.Errorf("memory: %w: node is down", backend.ErrUnavailable)
	}
	return nil
}

// Close stops the node; every later call fails with ErrUnavailable and
// waiting calls return.
func (n *Node) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.closed = true
		close(n.closedCh)
	}
	return nil
}

// CreateInvoice implements backend.Driver.
func (n *Node) CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error) {
	var pre backend.Preimage
	if req.Preimage != nil {
		pre = *req.Preimage
	} else {
		var err error
		if pre, err = backend.NewPreimage(); err != nil {
			return nil, err
		}
	}
	return n.add(ctx, pre.Hash(), &pre, req)
}

// CreateHoldInvoice implements backend.HoldInvoicer.
func (n *Node) CreateHoldInvoice(ctx context.Context, hash backend.PaymentHash, req backend.InvoiceRequest) (*backend.Invoice, error) {
	return n.add(ctx, hash, nil, req)
}

func (n *Node) add(ctx context.Context, hash backend.PaymentHash, pre *backend.Preimage, req backend.InvoiceRequest) (*backend.Invoice, error) {
	// BOLT11 timestamps are whole seconds; keep ours equal to what the
	// invoice string says so decoded and stored fields agree.
	created := n.now().Truncate(time.Second)
	expiry := req.Expiry
	bolt11, err := n.encode(hash, created, expiry, req)
	if err != nil {
		return nil, err
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.check(); err != nil {
		return nil, err
	}
	if _, dup := n.invoices[hash]; dup {
		return nil, fmt.Errorf("memory: %w: invoice with payment hash %s", backend.ErrAlreadyExists, hash)
	}
	n.sweep(created)
	e := &entry{
		inv: backend.Invoice{
			PaymentHash:    hash,
			PaymentRequest: bolt11,
			Amount:         req.Amount,
			Memo:           req.Memo,
			State:          backend.StateOpen,
			CreatedAt:      created,
			ExpiresAt:      created.Add(expiry),
		},
		preimage: pre,
		hold:     pre == nil,
		changed:  make(chan struct{}),
	}
	n.invoices[hash] = e
	return e.view(), nil
}

// sweep forgets invoices that cannot be paid any more and have been so for
// longer than keep, so that a flood of challenges nobody pays does not grow
// the node for ever. It runs from add and sweepLoop, at most once per tenth
// of keep (and at least every minute). n.mu held.
func (n *Node) sweep(now time.Time) {
	if n.keep < 0 || now.Sub(n.lastSweep) < min(n.keep/10, time.Minute) {
		return
	}
	n.lastSweep = now
	for h, e := range n.invoices {
		// Counted from expiry for canceled invoices too: the cancel
		// time is not kept, and a canceled invoice is kept longer, not
		// shorter, that way.
		if (e.inv.State == backend.StateOpen || e.inv.State == backend.StateCanceled) && now.Sub(e.inv.ExpiresAt) > n.keep {
			delete(n.invoices, h)
		}
	}
}

// Len returns how many invoices the node holds, for tests and metrics.
func (n *Node) Len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.invoices)
}

func (n *Node) encode(hash backend.PaymentHash, created time.Time, expiry time.Duration, req backend.InvoiceRequest) (string, error) {
	s, err := bolt11.EncodePayable(bolt11.Invoice{
		Network: n.network, PaymentHash: hash, Timestamp: created, Expiry: expiry,
		Amount: int64(req.Amount), Description: req.Memo, DescriptionHash: req.CommittedDescriptionHash(),
	}, n.key)
	if err != nil {
		return "", fmt.Errorf("memory: %w: %w", backend.ErrInvalid, err)
	}
	return s, nil
}

// view returns a copy the caller may keep. The node's lock must be held.
func (e *entry) view() *backend.Invoice {
	inv := e.inv
	if e.preimage != nil {
		p := *e.preimage
		inv.Preimage = &p
	}
	return &inv
}

// setState moves the invoice on and wakes everyone waiting on it. n.mu held.
func (e *entry) setState(s backend.State) {
	e.inv.State = s
	close(e.changed)
	e.changed = make(chan struct{})
}

// LookupInvoice implements backend.Driver.
func (n *Node) LookupInvoice(_ context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.check(); err != nil {
		return nil, err
	}
	e, ok := n.invoices[hash]
	if !ok {
		return nil, fmt.Errorf("memory: %w: no invoice with payment hash %s", backend.ErrNotFound, hash)
	}
	return e.view(), nil
}

// WaitInvoice implements backend.Waiter. An open invoice that reaches its
// expiry is returned as it stands (Open, and Expired by its time).
func (n *Node) WaitInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error) {
	for {
		n.mu.Lock()
		if err := n.check(); err != nil {
			n.mu.Unlock()
			return nil, err
		}
		e, ok := n.invoices[hash]
		if !ok {
			n.mu.Unlock()
			return nil, fmt.Errorf("memory: %w: no invoice with payment hash %s", backend.ErrNotFound, hash)
		}
		now := n.now()
		if e.inv.State != backend.StateOpen || e.inv.Expired(now) {
			v := e.view()
			n.mu.Unlock()
			return v, nil
		}
		changed, down := e.changed, n.down
		untilExpiry := e.inv.ExpiresAt.Sub(now)
		n.mu.Unlock()

		t := time.NewTimer(untilExpiry)
		select {
		case <-changed:
		case <-t.C:
		case <-down:
		case <-n.closedCh:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("memory: wait for invoice %s: %w", hash, ctx.Err())
		}
		t.Stop()
	}
}

// SettleInvoice implements backend.HoldInvoicer.
func (n *Node) SettleInvoice(_ context.Context, preimage backend.Preimage) error {
	hash := preimage.Hash()
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.check(); err != nil {
		return err
	}
	e, ok := n.invoices[hash]
	if !ok {
		return fmt.Errorf("memory: %w: no invoice with payment hash %s", backend.ErrNotFound, hash)
	}
	switch e.inv.State {
	case backend.StateHeld:
	case backend.StateSettled:
		return nil // settling twice with the right preimage changes nothing
	case backend.StateOpen:
		return fmt.Errorf("memory: %w: invoice %s has no payment held yet", backend.ErrInvalid, hash)
	default:
		return fmt.Errorf("memory: %w: invoice %s is %s", backend.ErrInvalid, hash, e.inv.State)
	}
	p := preimage
	e.preimage = &p
	e.inv.SettledAt = n.now()
	e.setState(backend.StateSettled)
	return nil
}

// CancelInvoice implements backend.HoldInvoicer. Plain invoices that are
// still open can be canceled too, as on LND.
func (n *Node) CancelInvoice(_ context.Context, hash backend.PaymentHash) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.check(); err != nil {
		return err
	}
	e, ok := n.invoices[hash]
	if !ok {
		return fmt.Errorf("memory: %w: no invoice with payment hash %s", backend.ErrNotFound, hash)
	}
	switch e.inv.State {
	case backend.StateOpen, backend.StateHeld:
		e.inv.AmountReceived = 0
		e.setState(backend.StateCanceled)
		return nil
	case backend.StateCanceled:
		return nil
	}
	return fmt.Errorf("memory: %w: invoice %s is already settled", backend.ErrInvalid, hash)
}

// LimitsFees implements backend.FeeLimiter: the node pays no routing fee.
func (n *Node) LimitsFees() {}

// Ping implements backend.Pinger with the node's availability.
func (n *Node) Ping(context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.check()
}

// Info implements backend.Informer.
func (n *Node) Info(context.Context) (*backend.NodeInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.check(); err != nil {
		return nil, err
	}
	return &backend.NodeInfo{NodeID: n.nodeID, Alias: n.alias, Network: n.network, Synced: true}, nil
}

var (
	_ backend.Driver       = (*Node)(nil)
	_ backend.Waiter       = (*Node)(nil)
	_ backend.HoldInvoicer = (*Node)(nil)
	_ backend.Payer        = (*Node)(nil)
	_ backend.FeeLimiter   = (*Node)(nil)
	_ backend.Informer     = (*Node)(nil)
	_ backend.Pinger       = (*Node)(nil)
)

// From returns the node behind a Backend made by package memory (New, or
// backend.Open with a memory:// URL), for this module's fakes and tests.
func From(b *backend.Backend) (*Node, bool) {
	var n *Node
	return n, b.As(&n)
}
