package lnurl

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/nodeurl"
)

// Scheme is the URL scheme this package registers with backend.Open.
const Scheme = "lnurl"

func init() { backend.Register(Scheme, openURL) }

// openURL opens
//
//	lnurl://user@domain[?tls=0]
//	lnurl:LNURL1...[?tls=0]
//	lnurl:user@domain[?tls=0]
//
// tls=0 sets Config.AllowHTTP, for test services only (loopback services
// are fetched over plain http anyway).
func openURL(ctx context.Context, u *url.URL) (backend.Driver, error) {
	var cfg Config
	q := nodeurl.New("lnurl", u)
	tls, err := q.Bool("tls", true)
	if err != nil {
		return nil, err
	}
	cfg.AllowHTTP = !tls
	if err := q.Done(); err != nil {
		return nil, err
	}
	switch {
	case u.Opaque != "":
		if strings.Contains(u.Opaque, "@") {
			cfg.Address = u.Opaque
		} else {
			cfg.LNURL = u.Opaque
		}
	case u.User != nil && u.Host != "":
		if _, hasPass := u.User.Password(); hasPass {
			return nil, fmt.Errorf("lnurl: %w: a lightning address has no password", backend.ErrInvalid)
		}
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("lnurl: %w: lnurl://user@domain takes no path", backend.ErrInvalid)
		}
		cfg.Address = u.User.Username() + "@" + u.Host
	default:
		return nil, fmt.Errorf("lnurl: %w: want lnurl://user@domain or lnurl:<bech32 LNURL>", backend.ErrInvalid)
	}
	return open(ctx, cfg)
}
