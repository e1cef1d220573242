package lnurl

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/l402kit/l402kit/backend"
)

func init() { backend.Register("lnurl", openURL) }

// openURL opens
//
//	lnurl://user@domain[?allowhttp=true]
//	lnurl:LNURL1...[?allowhttp=true]
//	lnurl:user@domain[?allowhttp=true]
//
// allowhttp sets Config.AllowHTTP (for test services only).
func openURL(ctx context.Context, u *url.URL) (backend.Driver, error) {
	var cfg Config
	q := u.Query()
	if v := q.Get("allowhttp"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("lnurl: %w: allowhttp=%q is not a boolean", backend.ErrInvalid, v)
		}
		cfg.AllowHTTP = b
	}
	for k := range q {
		if k != "allowhttp" {
			return nil, fmt.Errorf("lnurl: %w: unknown URL parameter %q (known: allowhttp)", backend.ErrInvalid, k)
		}
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
	return New(ctx, cfg)
}
