package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"

	"github.com/l402kit/l402kit/proxy"
)

// serverOptions harden the listening side: every phase of a connection has
// a deadline, headers a size bound, and the number of connections a cap, so
// slow or numerous clients cannot hold the proxy's memory and descriptors.
type serverOptions struct {
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration
	maxHeaderBytes    int
	maxConns          int
	maxConnsPerAddr   int
	maxBodiesPerAddr  int
	shutdownTimeout   time.Duration
}

// Defaults. WriteTimeout runs from the end of the request headers to the
// end of the response, so it also bounds how long an upstream may take to
// answer and stream: 5 minutes lets ordinary downloads and slow APIs
// through; raise it (or 0 for none) for long streams.
var defaultServer = serverOptions{
	readHeaderTimeout: 10 * time.Second,
	readTimeout:       2 * time.Minute,
	writeTimeout:      5 * time.Minute,
	idleTimeout:       2 * time.Minute,
	maxHeaderBytes:    64 << 10,
	maxConns:          4096,
	maxConnsPerAddr:   64,
	maxBodiesPerAddr:  16,
	shutdownTimeout:   30 * time.Second,
}

func serverFlags(fs *flag.FlagSet, o *serverOptions) {
	*o = defaultServer
	fs.DurationVar(&o.readHeaderTimeout, "read-header-timeout", o.readHeaderTimeout, "time a client has to send the request headers")
	fs.DurationVar(&o.readTimeout, "read-timeout", o.readTimeout, "time a client has to send the whole request, body included (0: no limit)")
	fs.DurationVar(&o.writeTimeout, "write-timeout", o.writeTimeout, "time from the end of the request headers to the end of the response, upstream's answer included (0: no limit)")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", o.idleTimeout, "how long a kept-alive connection may wait for its next request")
	fs.IntVar(&o.maxHeaderBytes, "max-header-bytes", o.maxHeaderBytes, "bound on a request's header size; larger requests are answered 431")
	fs.IntVar(&o.maxConns, "max-connections", o.maxConns, "bound on simultaneous client connections; further ones wait to be accepted (0: no bound)")
	fs.IntVar(&o.maxConnsPerAddr, "max-connections-per-address", o.maxConnsPerAddr, "bound on one client address's (IPv4, or IPv6 /64) open connections; more are closed at accept (trusted forwarders exempt; 0: no bound)")
	fs.IntVar(&o.maxBodiesPerAddr, "max-bodies-per-address", o.maxBodiesPerAddr, "bound on one client address's requests whose body is still being read; more get 429 at once (trusted forwarders exempt; 0: no bound)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", o.shutdownTimeout, "on SIGTERM/SIGINT, how long in-flight requests may take to finish before connections are closed")
}

// serverConfig is the YAML "server" section; absent fields keep the
// command-line values.
type serverConfig struct {
	ReadHeaderTimeout *duration `yaml:"read_header_timeout"`
	ReadTimeout       *duration `yaml:"read_timeout"`
	WriteTimeout      *duration `yaml:"write_timeout"`
	IdleTimeout       *duration `yaml:"idle_timeout"`
	MaxHeaderBytes    *int      `yaml:"max_header_bytes"`
	MaxConnections    *int      `yaml:"max_connections"`
	MaxConnsPerAddr   *int      `yaml:"max_connections_per_address"`
	MaxBodiesPerAddr  *int      `yaml:"max_bodies_per_address"`
	ShutdownTimeout   *duration `yaml:"shutdown_timeout"`
}

func (c *serverConfig) apply(o *serverOptions) {
	if c == nil {
		return
	}
	for _, d := range []struct {
		from *duration
		to   *time.Duration
	}{{c.ReadHeaderTimeout, &o.readHeaderTimeout}, {c.ReadTimeout, &o.readTimeout}, {c.WriteTimeout, &o.writeTimeout}, {c.IdleTimeout, &o.idleTimeout}, {c.ShutdownTimeout, &o.shutdownTimeout}} {
		if d.from != nil {
			*d.to = time.Duration(*d.from)
		}
	}
	if c.MaxHeaderBytes != nil {
		o.maxHeaderBytes = *c.MaxHeaderBytes
	}
	if c.MaxConnections != nil {
		o.maxConns = *c.MaxConnections
	}
	if c.MaxConnsPerAddr != nil {
		o.maxConnsPerAddr = *c.MaxConnsPerAddr
	}
	if c.MaxBodiesPerAddr != nil {
		o.maxBodiesPerAddr = *c.MaxBodiesPerAddr
	}
}

func (o serverOptions) check() error {
	switch {
	case o.readHeaderTimeout <= 0:
		return errors.New("read-header-timeout must be positive: without it a client can hold a connection open forever")
	case o.readTimeout < 0, o.writeTimeout < 0, o.idleTimeout < 0, o.shutdownTimeout < 0:
		return errors.New("timeouts may not be negative")
	case o.maxHeaderBytes < 4<<10:
		return fmt.Errorf("max-header-bytes %d is too small for an L402 Authorization header (at least 4096)", o.maxHeaderBytes)
	case o.maxConns < 0, o.maxConnsPerAddr < 0, o.maxBodiesPerAddr < 0:
		return errors.New("max-connections, max-connections-per-address and max-bodies-per-address may not be negative")
	}
	return nil
}

func (o serverOptions) server(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.readHeaderTimeout,
		ReadTimeout:       o.readTimeout,
		WriteTimeout:      o.writeTimeout,
		IdleTimeout:       o.idleTimeout,
		MaxHeaderBytes:    o.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func (o serverOptions) listener(ln net.Listener) net.Listener {
	if o.maxConns > 0 {
		return netutil.LimitListener(ln, o.maxConns)
	}
	return ln
}

// serve runs srv on ln until ctx ends, then shuts down gracefully: no new
// connections, in-flight requests finish (their single-use hold invoices
// settled or canceled as each request ends) for up to shutdownTimeout;
// then the remaining connections are closed, and the proxy is given a last
// NodeTimeout-bounded moment to resolve the grants those requests held.
func (o serverOptions) serve(ctx context.Context, srv *http.Server, ln net.Listener, p *proxy.Proxy, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", o.shutdownTimeout)
	shutCtx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	if err != nil {
		log.Warn("in-flight requests did not finish in time; closing their connections", "err", err)
		srv.Close()
	}
	drainCtx, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if derr := p.Drain(drainCtx); derr != nil {
		log.Error("single-use grants left unresolved at exit", "err", derr)
		return derr
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
