package lnd

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// Scheme is the URL scheme this package registers with backend.Open.
const Scheme = "lnd"

func init() { backend.Register(Scheme, open) }

func open(ctx context.Context, u *url.URL) (backend.Driver, error) {
	cfg, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg)
}

// ParseURL reads a Config from lnd://host:port?macaroon=...&tlscert=...
// Optional parameters: timeout (per-call timeout, a Go duration such as
// "5s") and connect_timeout.
func ParseURL(u *url.URL) (Config, error) {
	var cfg Config
	if u.Scheme != Scheme {
		return cfg, fmt.Errorf("lnd: %w: scheme %q, want %q", backend.ErrInvalid, u.Scheme, Scheme)
	}
	if u.Host == "" || u.Port() == "" {
		return cfg, fmt.Errorf("lnd: %w: URL needs host:port (LND's gRPC address)", backend.ErrInvalid)
	}
	if u.User != nil {
		return cfg, fmt.Errorf("lnd: %w: LND takes a macaroon, not a user in the URL", backend.ErrInvalid)
	}
	if u.Path != "" && u.Path != "/" {
		return cfg, fmt.Errorf("lnd: %w: unexpected path %q", backend.ErrInvalid, u.Path)
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "macaroon", "tlscert", "timeout", "connect_timeout":
		default:
			return cfg, fmt.Errorf("lnd: %w: unknown URL parameter %q", backend.ErrInvalid, k)
		}
	}
	cfg.Address = u.Host
	cfg.Macaroon = q.Get("macaroon")
	cfg.TLSCert = q.Get("tlscert")
	if cfg.Macaroon == "" {
		return cfg, fmt.Errorf("lnd: %w: URL needs macaroon=PATH|HEX|env:NAME|file:PATH", backend.ErrInvalid)
	}
	for name, dst := range map[string]*time.Duration{"timeout": &cfg.CallTimeout, "connect_timeout": &cfg.ConnectTimeout} {
		if v := q.Get(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return cfg, fmt.Errorf("lnd: %w: %s=%q is not a positive duration", backend.ErrInvalid, name, v)
			}
			*dst = d
		}
	}
	return cfg, nil
}
