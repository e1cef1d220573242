package eclair

import (
	"context"
	"net/http"
	"net/url"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/basicauth"
)

// Scheme is the URL scheme this package registers with backend.Open:
// eclair://:PASSWORD@host:port[?tls=1&tlscert=PATH&servername=NAME].
const Scheme = "eclair"

func init() { backend.Register(Scheme, openURL) }

// openURL implements the eclair:// scheme. A path in the URL is not read:
// Eclair's API sits at the root of its port.
func openURL(_ context.Context, u *url.URL) (backend.Driver, error) {
	base, password, conf, err := basicauth.FromURL("eclair", u)
	if err != nil {
		return nil, err
	}
	base.Path = ""
	cfg := Config{URL: base.String(), Password: password}
	if base.Scheme == "https" {
		cfg.HTTPClient = &http.Client{Transport: basicauth.NewTransport(DefaultDialTimeout, conf)}
	}
	return newDriver(cfg)
}
