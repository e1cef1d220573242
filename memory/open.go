package memory

import (
	"context"
	"fmt"
	"net/url"
	"sync"

	"github.com/l402kit/l402kit/backend"
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
	node *Node
	refs int
}

// handle is a reference to a named node: closing it closes the node only when
// the last reference goes. Embedding keeps every ability visible to type
// assertions.
type handle struct {
	*Node
	name string
	once sync.Once
}

func (h *handle) Close() error {
	h.once.Do(func() {
		namedMu.Lock()
		defer namedMu.Unlock()
		nn := named[h.name]
		nn.refs--
		if nn.refs == 0 {
			delete(named, h.name)
			nn.node.Close()
		}
	})
	return nil
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
		return NewNode(cfg)
	}
	namedMu.Lock()
	defer namedMu.Unlock()
	nn := named[u.Host]
	if nn == nil {
		n, err := NewNode(cfg)
		if err != nil {
			return nil, err
		}
		nn = &namedNode{node: n}
		named[u.Host] = nn
	}
	nn.refs++
	return &handle{Node: nn.node, name: u.Host}, nil
}

// As hands out the shared node, so Backend.As finds a *Node behind a
// memory://NAME backend too.
func (h *handle) As(target any) bool {
	if p, ok := target.(**Node); ok {
		*p = h.Node
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
