// Package basicauth is the client side of a node's HTTP API behind basic
// auth with an empty user name and the API password, as Eclair and phoenixd
// serve it: the base URL and the password checked once, the HTTP client with
// its dial timeout and TLS, authenticated requests and websocket dials, and
// the reading of such a node's URL, name://[:PASSWORD@]host:port[/prefix].
// The adapters keep what differs: their wire calls and how they classify an
// answer or a transport error.
package basicauth

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/nodeurl"
)

// API is one node's HTTP API. New sets its fields; they do not change after.
type API struct {
	// Name is the adapter's, for errors: "eclair", "phoenixd".
	Name string
	// Base is http or https, a host and a path prefix without a trailing
	// slash; no user, query or fragment.
	Base     *url.URL
	Password string
	HTTP     *http.Client
}

// New checks the base URL and the password for the adapter name and returns
// the API over hc, which must not be nil (the adapter chooses its default
// client, see NewTransport).
func New(name, base, password string, hc *http.Client) (*API, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: URL: %v", name, backend.ErrInvalid, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%s: %w: URL must be http:// or https://host:port, got scheme %q host %q", name, backend.ErrInvalid, u.Scheme, u.Host)
	}
	if password == "" {
		return nil, fmt.Errorf("%s: %w: the API password is empty", name, backend.ErrInvalid)
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &API{Name: name, Base: u, Password: password, HTTP: hc}, nil
}

// NewTransport is the transport of an adapter's default client: Go's
// default transport with dials bounded by dialTimeout (30 s keep-alive) and
// conf, when not nil, for TLS.
func NewTransport(dialTimeout time.Duration, conf *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSClientConfig = conf
	return t
}

// FromURL reads u, name://[:PASSWORD@]host:port[/prefix] with password=,
// tls=, tlscert= and servername= (internal/plumbing/nodeurl; any other
// parameter is refused by name). It returns the http (or, with tls=1, https)
// base URL with u's host and path, the password, and the TLS configuration
// for the client with tls=1 (nil: the system roots).
func FromURL(name string, u *url.URL) (base *url.URL, password string, conf *tls.Config, err error) {
	if u.Host == "" {
		return nil, "", nil, fmt.Errorf("%s: %w: URL needs host:port, e.g. %s://:PASSWORD@127.0.0.1:PORT", name, backend.ErrInvalid, name)
	}
	q := nodeurl.New(name, u)
	if password, err = q.Password(); err != nil {
		return nil, "", nil, err
	}
	on, conf, err := q.TLS(false)
	if err != nil {
		return nil, "", nil, err
	}
	if err := q.Done(); err != nil {
		return nil, "", nil, err
	}
	base = &url.URL{Scheme: "http", Host: u.Host, Path: u.Path}
	if !on {
		return base, password, nil, nil
	}
	base.Scheme = "https"
	return base, password, conf, nil
}

// Request makes a request for path (below Base, starting with "/") with the
// password. A non-nil form is the body, form-encoded.
func (a *API) Request(ctx context.Context, method, path string, form url.Values) (*http.Request, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	u := *a.Base
	u.Path = a.Base.Path + path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.SetBasicAuth("", a.Password)
	return req, nil
}

// Do sends req and reads at most limit bytes of the answer. Its error is the
// transport's, for the adapter to classify (DialFailed says whether the
// request never left).
func (a *API) Do(req *http.Request, limit int64) (status int, body []byte, err error) {
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, body, nil
}

// DialWebsocket opens the websocket at path (below Base), ws or wss as Base
// is http or https, with the password. The response, when there is one, says
// why a dial was refused.
func (a *API) DialWebsocket(ctx context.Context, path string) (*websocket.Conn, *http.Response, error) {
	u := *a.Base
	u.Path = a.Base.Path + path
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	hdr := http.Header{}
	hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(":"+a.Password)))
	return websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: a.HTTP, HTTPHeader: hdr})
}

// DialFailed reports whether err is a failed dial: the request never reached
// the node, so a payment it carried did not start.
func DialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// Close drops the client's idle connections.
func (a *API) Close() { a.HTTP.CloseIdleConnections() }
