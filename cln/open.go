package cln

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// HTTPDoer is the part of *http.Client the CLNRest transport uses.
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

func init() {
	backend.Register("cln", openSocket)
	backend.Register("clnrest", openREST)
}

// openSocket opens cln:///path/to/lightning-rpc.
func openSocket(ctx context.Context, u *url.URL) (backend.Backend, error) {
	if u.Host != "" {
		return nil, fmt.Errorf("cln: %w: cln:// takes a socket path (cln:///path/to/lightning-rpc), not host %q", backend.ErrInvalid, u.Host)
	}
	if u.Path == "" {
		return nil, fmt.Errorf("cln: %w: cln:// needs the path of lightningd's lightning-rpc socket", backend.ErrInvalid)
	}
	cfg := Config{SocketPath: u.Path}
	if err := commonOptions(u.Query(), &cfg); err != nil {
		return nil, err
	}
	return New(ctx, cfg)
}

// openREST opens clnrest://host:port?rune=...; see the package documentation
// for the query parameters.
func openREST(ctx context.Context, u *url.URL) (backend.Backend, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("cln: %w: clnrest:// needs host:port", backend.ErrInvalid)
	}
	q := u.Query()
	runeRef := q.Get("rune")
	if runeRef == "" {
		return nil, fmt.Errorf("cln: %w: clnrest:// needs rune=VALUE, rune=env:NAME or rune=file:PATH", backend.ErrInvalid)
	}
	r, err := backend.ReadSecret(runeRef)
	if err != nil {
		return nil, fmt.Errorf("cln: rune: %w", err)
	}
	scheme := "https"
	if on, err := flag(q, "plainhttp"); err != nil {
		return nil, err
	} else if on {
		scheme = "http"
	}
	var tlsConf *tls.Config
	if scheme == "https" {
		tlsConf, err = tlsConfig(q)
		if err != nil {
			return nil, err
		}
	}
	cfg := Config{
		RESTURL:    scheme + "://" + u.Host,
		Rune:       r,
		HTTPClient: defaultHTTPClient(tlsConf),
	}
	if err := commonOptions(q, &cfg); err != nil {
		return nil, err
	}
	return New(ctx, cfg)
}

func commonOptions(q url.Values, cfg *Config) error {
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("cln: %w: timeout=%q is not a positive duration", backend.ErrInvalid, v)
		}
		cfg.CallTimeout = d
	}
	return nil
}

func flag(q url.Values, name string) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return false, nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("cln: %w: %s=%q is not a boolean", backend.ErrInvalid, name, v)
	}
	return on, nil
}

// tlsConfig trusts tlscert=PATH (CLNRest's ca.pem or server.pem) when
// given, the system roots otherwise; insecure=1 trusts anything and is for
// tests only.
func tlsConfig(q url.Values) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	insecure, err := flag(q, "insecure")
	if err != nil {
		return nil, err
	}
	if insecure {
		conf.InsecureSkipVerify = true //nolint:gosec // asked for explicitly, for tests
		return conf, nil
	}
	if path := q.Get("tlscert"); path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("cln: %w: tlscert: %v", backend.ErrInvalid, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cln: %w: tlscert %s holds no PEM certificate", backend.ErrInvalid, path)
		}
		conf.RootCAs = pool
	}
	// CLNRest's generated server certificate names "cln", "localhost" and
	// the clnrest-host address; servername=cln verifies it when the node
	// is reached by another name.
	if sn := q.Get("servername"); sn != "" {
		conf.ServerName = sn
	}
	return conf, nil
}

func defaultHTTPClient(conf *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if conf != nil {
		tr.TLSClientConfig = conf
	}
	return &http.Client{Transport: tr}
}
