package memory

import (
	"context"
	"fmt"
	"net/url"
	"sync"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
	"github.com/l402kit/l402kit/internal/plumbing/nodeurl"
)

// Scheme is the URL scheme of the memory backend: memory:// opens a new node;
// memory://NAME opens the node of that name in this process, made on first
// use, so a proxy and a test payer in one program can share a node.
// ?alias=, ?network= and ?keep_expired= (a duration) set the Config of a
// new node.
const Scheme = "memory"

func init() {
	backend.Register(Scheme, openURL)
	backend.Register(DevScheme, openDevURL)
}

var (
	namedMu sync.Mutex
	named   = map[string]*namedNode{}
)

type namedNode struct {
	node *memnode.Node
	refs int
}

func openURL(_ context.Context, u *url.URL) (backend.Driver, error) {
	if u.Opaque != "" || u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("memory: %w: want memory:// or memory://NAME, got path %q", backend.ErrInvalid, u.Path+u.Opaque)
	}
	q := nodeurl.New("memory", u)
	var cfg Config
	var err error
	if cfg.Alias, err = q.String("alias"); err != nil {
		return nil, err
	}
	if cfg.Network, err = q.String("network"); err != nil {
		return nil, err
	}
	if q.Has("keep_expired") {
		if cfg.KeepExpired, err = q.Duration("keep_expired"); err != nil {
			return nil, err
		}
	}
	if err := q.Done(); err != nil {
		return nil, err
	}
	if u.Host == "" {
		return newDriver(cfg)
	}
	namedMu.Lock()
	defer namedMu.Unlock()
	nn := named[u.Host]
	if nn == nil {
		n, err := memnode.New(memnode.Config(cfg))
		if err != nil {
			return nil, err
		}
		nn = &namedNode{node: n}
		named[u.Host] = nn
	}
	nn.refs++
	name := u.Host
	return &driver{Node: nn.node, release: func() { release(name) }}, nil
}

// release drops a reference to the named node, closing it with the last.
func release(name string) {
	namedMu.Lock()
	defer namedMu.Unlock()
	nn := named[name]
	nn.refs--
	if nn.refs == 0 {
		delete(named, name)
		nn.node.Close()
	}
}
