package lndrest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Config says how to reach LND's REST listener.
type Config struct {
	// Address is host:port of LND's restlisten (8080 by default).
	Address string
	// TLSCert is LND's tls.cert, PEM or DER. The node is trusted when it
	// presents exactly this certificate, whatever name it is reached by
	// (pinning), or a chain this certificate signs for the address's host
	// name. Nil trusts the system's roots.
	TLSCert []byte
	// Macaroon is the macaroon's binary form; it travels hex encoded.
	Macaroon []byte
	// DialTimeout bounds dialing and the TLS handshake of one
	// connection. Zero means 2 s.
	DialTimeout time.Duration
}

// Client calls one LND node's REST API. It is safe for concurrent use;
// connections are made on demand and kept for reuse, so a node that
// restarts is reached again by the next call.
type Client struct {
	base   string // https://host:port
	mac    string // hex
	http   *http.Client
	tr     *http.Transport
	target string
}

// New prepares a Client. It does not contact the node.
func New(cfg Config) (*Client, error) {
	if cfg.Address == "" {
		return nil, errors.New("lndrest: no address")
	}
	if len(cfg.Macaroon) == 0 {
		return nil, errors.New("lndrest: no macaroon")
	}
	tlsCfg, err := tlsConfig(cfg.TLSCert)
	if err != nil {
		return nil, err
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: cfg.DialTimeout,
		// LND's REST listener speaks HTTP/1.1. Offering h2 as well makes
		// its gRPC listener, if the URL names that port by mistake,
		// answer with an HTTP/2 gRPC response that says so clearly
		// (see errGRPCPort) instead of dropping the connection.
		ForceAttemptHTTP2: true,
		// Every concurrent call and stream holds its own HTTP/1.1
		// connection; keep enough for a busy proxy's challenge path, so
		// calls do not pay a TLS handshake each.
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Client{
		base:   "https://" + cfg.Address,
		mac:    hex.EncodeToString(cfg.Macaroon),
		tr:     tr,
		http:   &http.Client{Transport: tr},
		target: cfg.Address,
	}, nil
}

// BaseURL is https://host:port of the node's REST API.
func (c *Client) BaseURL() string { return c.base }

// HTTPClient is an http.Client that trusts the node's certificate and
// sends the macaroon on every request, for REST calls this package does not
// cover.
func (c *Client) HTTPClient() *http.Client {
	return &http.Client{Transport: macaroonTransport{c.mac, c.tr}}
}

type macaroonTransport struct {
	mac  string
	next http.RoundTripper
}

func (m macaroonTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Grpc-Metadata-macaroon", m.mac)
	return m.next.RoundTrip(r)
}

// CloseIdleConnections lets the HTTPClient's CloseIdleConnections reach the
// pool it shares with the Client.
func (m macaroonTransport) CloseIdleConnections() {
	if c, ok := m.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// CloseIdleConnections closes connections no call is using; streams in
// progress end with their contexts.
func (c *Client) CloseIdleConnections() { c.tr.CloseIdleConnections() }

// Call sends in (nil for none) as JSON to path with method and decodes the
// answer into out (nil to discard it). An error answer of the node is an
// *Error; a failure to reach it is the transport's error, wrapped.
func (c *Client) Call(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.do(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// LND's largest answers here are invoices; 16 MB leaves room for
	// anything a caller of Call asks for without trusting the node blindly.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: decoding answer: %w", method, path, err)
	}
	return nil
}

// Stream is the open answer of a server-streaming call.
type Stream struct {
	body io.ReadCloser
	dec  *json.Decoder
	what string
}

// Stream starts a server-streaming call. LND's gateway sends the response
// headers with the first message, so Stream returns only once the node has
// sent one (or an error); run it where that wait is acceptable, under a
// context that ends it.
func (c *Client) Stream(ctx context.Context, method, path string, in any) (*Stream, error) {
	resp, err := c.do(ctx, method, path, in)
	if err != nil {
		return nil, err
	}
	return &Stream{body: resp.Body, dec: json.NewDecoder(resp.Body), what: method + " " + path}, nil
}

// Next decodes the stream's next message into out. It returns an *Error
// when the node ends the stream with an error, and io.ErrUnexpectedEOF
// (wrapped) when the stream ends without one. LND ends a stream cleanly
// only after its final message (a settled invoice, a finished payment), so
// a caller that stops reading there sees io.ErrUnexpectedEOF only when the
// node went away.
func (s *Stream) Next(out any) error {
	var msg struct {
		Result json.RawMessage `json:"result"`
		Error  *status         `json:"error"`
	}
	if err := s.dec.Decode(&msg); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%s: stream: %w", s.what, err)
	}
	if msg.Error != nil {
		return msg.Error.err(0, s.what)
	}
	if len(msg.Result) == 0 {
		return fmt.Errorf("%s: stream message without result", s.what)
	}
	if err := json.Unmarshal(msg.Result, out); err != nil {
		return fmt.Errorf("%s: decoding stream message: %w", s.what, err)
	}
	return nil
}

// Close ends the stream.
func (s *Stream) Close() error { return s.body.Close() }

// do sends the request and returns a 200 response; any other answer is
// turned into an error here.
func (c *Client) do(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encoding request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Grpc-Metadata-macaroon", c.mac)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportErr(method, path, err)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/grpc") {
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %w", method, path, c.grpcPort())
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, errorAnswer(method+" "+path, resp)
	}
	return resp, nil
}

// transportErr names the two mistakes that look like a network failure
// but are configuration: the URL naming LND's gRPC port, and a plain HTTP
// server on the port.
func (c *Client) transportErr(method, path string, err error) error {
	var rh tls.RecordHeaderError
	switch {
	case errors.As(err, &rh), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%s %s: %w: %w", method, path, ErrNotTLS, err)
	case strings.Contains(err.Error(), "no application protocol"):
		// A gRPC server that insists on ALPN "h2".
		return fmt.Errorf("%s %s: %w: %w", method, path, c.grpcPort(), err)
	}
	return fmt.Errorf("%s %s: %w", method, path, err)
}

func (c *Client) grpcPort() error {
	return fmt.Errorf("%w: %s answers with gRPC; give the address of LND's REST listener (restlisten, port 8080 by default), not rpclisten (10009)", ErrGRPCPort, c.target)
}

// tlsConfig pins cert (PEM, possibly several certificates, or DER) or, for
// nil, uses the system's roots.
func tlsConfig(cert []byte) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(cert) == 0 {
		return cfg, nil
	}
	pinned, err := parseCerts(cert)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	for _, c := range pinned {
		roots.AddCert(c)
	}
	// LND's self-signed certificate names localhost, the host's own
	// addresses and --tlsextradomain; a node reached through a tunnel,
	// Docker or Tor often has another name. The exact certificate the
	// user gave proves the node, as BTCPay's certthumbprint does, so it is
	// accepted without a name check; anything else must chain to it with
	// the usual checks.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("lndrest: node presented no certificate")
		}
		leaf := cs.PeerCertificates[0]
		for _, p := range pinned {
			if bytes.Equal(leaf.Raw, p.Raw) {
				return nil
			}
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: cs.ServerName})
		if err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
		}
		return nil
	}
	return cfg, nil
}

// parseCerts reads every certificate of a PEM text, or one DER certificate.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadCert, err)
		}
		certs = append(certs, c)
	}
	if len(certs) > 0 {
		return certs, nil
	}
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN")) {
		return nil, fmt.Errorf("%w: no certificate in PEM data", ErrBadCert)
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("%w: neither PEM nor DER: %v", ErrBadCert, err)
	}
	return []*x509.Certificate{c}, nil
}
