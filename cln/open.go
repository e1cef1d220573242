package cln

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/nodeurl"
)

// HTTPDoer is the part of *http.Client the CLNRest transport uses.
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// Scheme is the URL scheme of a node's JSON-RPC socket (cln:///path), and
// RESTScheme that of CLNRest (clnrest://host:port?rune=...), both registered
// with backend.Open.
const (
	Scheme     = "cln"
	RESTScheme = "clnrest"
)

func init() {
	backend.Register(Scheme, openSocket)
	backend.Register(RESTScheme, openREST)
}

// openSocket opens cln:///path/to/lightning-rpc.
func openSocket(ctx context.Context, u *url.URL) (backend.Driver, error) {
	if u.Host != "" {
		return nil, fmt.Errorf("cln: %w: cln:// takes a socket path (cln:///path/to/lightning-rpc), not host %q", backend.ErrInvalid, u.Host)
	}
	if u.Path == "" {
		return nil, fmt.Errorf("cln: %w: cln:// needs the path of lightningd's lightning-rpc socket", backend.ErrInvalid)
	}
	if err := nodeurl.New("cln", u).Done(); err != nil {
		return nil, err
	}
	return open(ctx, Config{SocketPath: u.Path})
}

// openREST opens clnrest://host:port?rune=...; see the package documentation
// for the query parameters.
func openREST(ctx context.Context, u *url.URL) (backend.Driver, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("cln: %w: clnrest:// needs host:port", backend.ErrInvalid)
	}
	q := nodeurl.New("cln", u)
	r, err := q.Secret("rune", "")
	if err != nil {
		return nil, err
	}
	if r == "" {
		return nil, fmt.Errorf("cln: %w: clnrest:// needs rune=VALUE, rune=env:NAME or rune=file:PATH", backend.ErrInvalid)
	}
	on, tlsConf, err := q.TLS(true)
	if err != nil {
		return nil, err
	}
	if err := q.Done(); err != nil {
		return nil, err
	}
	scheme := "http"
	if on {
		scheme = "https"
	}
	return open(ctx, Config{
		RESTURL:    scheme + "://" + u.Host,
		Rune:       r,
		HTTPClient: defaultHTTPClient(tlsConf),
	})
}

func defaultHTTPClient(conf *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if conf != nil {
		tr.TLSClientConfig = conf
	}
	return &http.Client{Transport: tr}
}
