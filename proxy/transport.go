package proxy

import (
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"
)

// Defaults of TransportConfig.
const (
	// DefaultMaxIdleConnsPerHost keeps enough idle upstream connections for
	// a few hundred concurrent requests per upstream: with fewer (Go's
	// http.DefaultTransport keeps 2), a busy proxy opens a new upstream
	// connection for most requests and spends its time on connection setup
	// and TIME-WAIT sockets.
	DefaultMaxIdleConnsPerHost = 256
	// DefaultDialTimeout bounds connecting to an upstream.
	DefaultDialTimeout = 10 * time.Second
	// DefaultTLSHandshakeTimeout bounds the TLS handshake with an upstream.
	DefaultTLSHandshakeTimeout = 10 * time.Second
	// DefaultResponseHeaderTimeout bounds the wait for an upstream's
	// response headers once the request is sent (nginx's
	// proxy_read_timeout has the same default). A response body may take
	// longer.
	DefaultResponseHeaderTimeout = 60 * time.Second
	// DefaultIdleConnTimeout closes pooled upstream connections unused
	// this long.
	DefaultIdleConnTimeout = 90 * time.Second
)

// TransportConfig sizes the transport the proxy forwards requests with.
// Zero fields take the defaults above; a negative timeout means none.
type TransportConfig struct {
	// MaxIdleConnsPerHost is how many idle connections to each upstream
	// are kept for reuse. Size it to the concurrent requests you expect
	// per upstream; connections beyond it are opened and closed per
	// request.
	MaxIdleConnsPerHost int
	// DialTimeout bounds connecting to an upstream.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake with an https upstream.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the upstream's response
	// headers after the request was sent.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes idle pooled connections after this long.
	IdleConnTimeout time.Duration
	// DisableHTTP2 keeps https upstreams on HTTP/1.1. By default the
	// transport offers HTTP/2 by TLS ALPN and uses it when the upstream
	// accepts; plain http upstreams always get HTTP/1.1.
	DisableHTTP2 bool
}

// NewTransport returns an upstream transport sized for a reverse proxy:
// the default of Config.Transport, with c's zero fields at their defaults.
// Proxy settings come from the environment (HTTP_PROXY, HTTPS_PROXY,
// NO_PROXY), as with http.DefaultTransport.
func NewTransport(c TransportConfig) *http.Transport {
	pick := func(v, def time.Duration) time.Duration {
		switch {
		case v < 0:
			return 0
		case v == 0:
			return def
		}
		return v
	}
	perHost := c.MaxIdleConnsPerHost
	if perHost <= 0 {
		perHost = DefaultMaxIdleConnsPerHost
	}
	dialer := &net.Dialer{Timeout: pick(c.DialTimeout, DefaultDialTimeout), KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:       http.ProxyFromEnvironment,
		DialContext: dialer.DialContext,
		// No overall cap: MaxIdleConnsPerHost bounds each upstream, and
		// an overall cap below it would undo it.
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   perHost,
		IdleConnTimeout:       pick(c.IdleConnTimeout, DefaultIdleConnTimeout),
		TLSHandshakeTimeout:   pick(c.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout),
		ResponseHeaderTimeout: pick(c.ResponseHeaderTimeout, DefaultResponseHeaderTimeout),
		ExpectContinueTimeout: time.Second,
		// A transport with its own DialContext only tries HTTP/2 when
		// asked; ALPN then picks it where the upstream offers it.
		ForceAttemptHTTP2: !c.DisableHTTP2,
	}
}

// copyBuffers lends the reverse proxies their body copy buffers; without a
// pool httputil.ReverseProxy allocates 32 KiB per request.
var copyBuffers httputil.BufferPool = &bufferPool{}

const copyBufferSize = 32 << 10

// bufferPool keeps array pointers, so neither Get nor Put allocates.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if a, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return a[:]
	}
	return new([copyBufferSize]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) == copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
	}
}
