package lnd

import (
	"context"
	"fmt"
	"net/url"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/nodeurl"
)

// Scheme is the URL scheme this package registers with backend.Open.
const Scheme = "lnd"

func init() { backend.Register(Scheme, open) }

func open(_ context.Context, u *url.URL) (backend.Driver, error) {
	cfg, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return newDriver(cfg)
}

// ParseURL reads a Config from lnd://host:port?macaroon=...&tlscert=...,
// where host:port is LND's REST listener (restlisten, 8080 by default).
// Optional parameters: timeout (per-call timeout, a Go duration such as
// "5s"; backend.Open reads it itself) and connect_timeout.
func ParseURL(u *url.URL) (Config, error) {
	var cfg Config
	if u.Scheme != Scheme {
		return cfg, fmt.Errorf("lnd: %w: scheme %q, want %q", backend.ErrInvalid, u.Scheme, Scheme)
	}
	if u.Host == "" || u.Port() == "" {
		return cfg, fmt.Errorf("lnd: %w: URL needs host:port (LND's REST listener, restlisten, 8080 by default)", backend.ErrInvalid)
	}
	if u.User != nil {
		return cfg, fmt.Errorf("lnd: %w: LND takes a macaroon, not a user in the URL", backend.ErrInvalid)
	}
	if u.Path != "" && u.Path != "/" {
		return cfg, fmt.Errorf("lnd: %w: unexpected path %q", backend.ErrInvalid, u.Path)
	}
	q := nodeurl.New("lnd", u)
	var err error
	cfg.Address = u.Host
	// The macaroon and certificate also take a file path or hex, so they
	// are read by loadSecretBytes rather than as nodeurl secrets.
	if cfg.Macaroon, err = q.String("macaroon"); err != nil {
		return cfg, err
	}
	if cfg.TLSCert, err = q.String("tlscert"); err != nil {
		return cfg, err
	}
	if cfg.CallTimeout, err = q.Duration("timeout"); err != nil {
		return cfg, err
	}
	if cfg.DialTimeout, err = q.Duration("connect_timeout"); err != nil {
		return cfg, err
	}
	if err := q.Done(); err != nil {
		return cfg, err
	}
	if cfg.Macaroon == "" {
		return cfg, fmt.Errorf("lnd: %w: URL needs macaroon=PATH|HEX|env:NAME|file:PATH", backend.ErrInvalid)
	}
	return cfg, nil
}
