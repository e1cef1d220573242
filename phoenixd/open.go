package phoenixd

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/nodeurl"
)

// Scheme is the URL scheme this package registers with backend.Open.
const Scheme = "phoenixd"

func init() { backend.Register(Scheme, openURL) }

// openURL opens phoenixd://[:PASSWORD@]host:port[/prefix][?password=...&tls=1&tlscert=PATH].
func openURL(_ context.Context, u *url.URL) (backend.Driver, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("phoenixd: %w: URL needs host:port, e.g. phoenixd://:PASSWORD@127.0.0.1:9740", backend.ErrInvalid)
	}
	q := nodeurl.New("phoenixd", u)
	password, err := q.Password()
	if err != nil {
		return nil, err
	}
	on, tlsConf, err := q.TLS(false)
	if err != nil {
		return nil, err
	}
	if err := q.Done(); err != nil {
		return nil, err
	}
	base := url.URL{Scheme: "http", Host: u.Host, Path: u.Path}
	cfg := Config{Password: password}
	if on {
		base.Scheme = "https"
		t := newTransport(DefaultDialTimeout, nil)
		t.TLSClientConfig = tlsConf
		cfg.HTTPClient = &http.Client{Transport: t}
	}
	cfg.URL = base.String()
	return newDriver(cfg)
}
