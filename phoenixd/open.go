package phoenixd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/l402kit/l402kit/backend"
)

// Scheme is the URL scheme this package registers with backend.Open.
const Scheme = "phoenixd"

func init() { backend.Register(Scheme, openURL) }

// openURL opens phoenixd://[:PASSWORD@]host:port[/prefix][?password=...&tls=1&tlscert=PATH].
func openURL(_ context.Context, u *url.URL) (backend.Backend, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("phoenixd: %w: URL needs host:port, e.g. phoenixd://:PASSWORD@127.0.0.1:9740", backend.ErrInvalid)
	}
	q := u.Query()
	raw := q.Get("password")
	if raw == "" && u.User != nil {
		raw, _ = u.User.Password()
	}
	if raw == "" {
		return nil, fmt.Errorf("phoenixd: %w: URL has no password (phoenixd://:PASSWORD@host:port, or ?password=env:NAME|file:PATH)", backend.ErrInvalid)
	}
	password, err := backend.ReadSecret(raw)
	if err != nil {
		return nil, fmt.Errorf("phoenixd: %w", err)
	}
	scheme := "http"
	var tlsConf *tls.Config
	switch q.Get("tls") {
	case "", "0", "false":
	case "1", "true":
		scheme = "https"
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
		if path := q.Get("tlscert"); path != "" {
			pem, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("phoenixd: %w: tlscert: %v", backend.ErrInvalid, err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("phoenixd: %w: tlscert %s holds no PEM certificate", backend.ErrInvalid, path)
			}
			tlsConf.RootCAs = pool
		}
	default:
		return nil, fmt.Errorf("phoenixd: %w: tls=%q, want 1 or 0", backend.ErrInvalid, q.Get("tls"))
	}
	base := url.URL{Scheme: scheme, Host: u.Host, Path: u.Path}
	cfg := Config{URL: base.String(), Password: password}
	if tlsConf != nil {
		t := newTransport(DefaultDialTimeout, nil)
		t.TLSClientConfig = tlsConf
		cfg.HTTPClient = &http.Client{Transport: t}
	}
	return New(cfg)
}
