package phoenixd

import (
	"context"
	"net/http"
	"net/url"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/basicauth"
)

// Scheme is the URL scheme this package registers with backend.Open.
const Scheme = "phoenixd"

func init() { backend.Register(Scheme, openURL) }

// openURL opens phoenixd://[:PASSWORD@]host:port[/prefix][?password=...&tls=1&tlscert=PATH].
func openURL(_ context.Context, u *url.URL) (backend.Driver, error) {
	base, password, conf, err := basicauth.FromURL("phoenixd", u)
	if err != nil {
		return nil, err
	}
	cfg := Config{URL: base.String(), Password: password}
	if base.Scheme == "https" {
		cfg.HTTPClient = &http.Client{Transport: newTransport(DefaultDialTimeout, conf)}
	}
	return newDriver(cfg)
}
