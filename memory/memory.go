package memory

import (
	"context"
	"sync"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
)

// Config sets up a node. The zero value is ready to use.
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

// New starts a node with a fresh key and returns the Backend over it.
func New(_ context.Context, cfg Config) (*backend.Backend, error) {
	d, err := newDriver(cfg)
	if err != nil {
		return nil, err
	}
	return backend.New(d, backend.Options{}), nil
}

// Node is the memory node behind a Backend, as its As and AsNode hand it
// out, for what the portable API does not cover. It is not a driver:
// invoices and payments go through the Backend.
type Node struct {
	n *memnode.Node
}

// NodeID is the node's public key, hex.
func (n *Node) NodeID() string { return n.n.NodeID() }

// SetAvailable takes the node down (false) or brings it back (true). While
// down every call fails with ErrUnavailable and waits in progress end with
// it, as on a node that went away.
func (n *Node) SetAvailable(up bool) { n.n.SetAvailable(up) }

// driver is what a memory Backend holds: the node, whose methods give it
// every ability (embedding keeps them visible to type assertions), and an
// As that hands out its handle. release, when set, replaces closing the
// node (a named node is closed by its last reference).
type driver struct {
	*memnode.Node
	release func()
	once    sync.Once
}

func newDriver(cfg Config) (*driver, error) {
	n, err := memnode.New(memnode.Config(cfg))
	if err != nil {
		return nil, err
	}
	return &driver{Node: n}, nil
}

func (d *driver) Close() error {
	if d.release == nil {
		return d.Node.Close()
	}
	d.once.Do(d.release)
	return nil
}

// As hands out the node's handle (**Node) and, to this module's fakes and
// tests, the node itself (**memnode.Node).
func (d *driver) As(target any) bool {
	switch p := target.(type) {
	case **Node:
		*p = &Node{n: d.Node}
		return true
	case **memnode.Node:
		*p = d.Node
		return true
	}
	return false
}

// AsNode returns the *Node behind a backend opened from a memory:// URL, for
// programs that need the node's own methods, such as serving DevPayHandler.
func AsNode(b *backend.Backend) (*Node, bool) {
	var n *Node
	return n, b.As(&n)
}
