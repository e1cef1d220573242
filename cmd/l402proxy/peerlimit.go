package main

import (
	"net"
	"net/http"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/l402kit/l402kit/proxy"
)

// addrLimits bound what one client address (an IPv4 address or an IPv6
// /64) may hold of the listener: its open connections, counted at accept,
// and its request bodies being read, counted in the handler. Without them
// one address holding thousands of slow-body connections takes every slot
// of --max-connections until the read timeout, and reopens. Trusted
// forwarders are exempt: a front's connections carry many clients, and
// the front bounds each of them itself.
type addrLimits struct {
	maxConns, maxBodies int
	exempt              func(netip.Addr) bool
	refused             *prometheus.CounterVec

	mu     sync.Mutex
	conns  map[netip.Prefix]int
	bodies map[netip.Prefix]int
}

func newAddrLimits(maxConns, maxBodies int, exempt func(netip.Addr) bool, reg prometheus.Registerer) *addrLimits {
	l := &addrLimits{maxConns: maxConns, maxBodies: maxBodies, exempt: exempt,
		conns: map[netip.Prefix]int{}, bodies: map[netip.Prefix]int{},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "l402proxy_per_address_refused_total",
			Help: "Connections closed at accept and requests answered 429 because their client address held its bound (kind: connection, body).",
		}, []string{"kind"})}
	reg.MustRegister(l.refused)
	return l
}

// take counts one more of m for k, unless k holds max already (0: no bound).
func (l *addrLimits) take(m map[netip.Prefix]int, k netip.Prefix, max int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if max > 0 && m[k] >= max {
		return false
	}
	m[k]++
	return true
}

func (l *addrLimits) give(m map[netip.Prefix]int, k netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}

// listener wraps ln: a connection from an address at its bound is closed
// as soon as it is accepted, without taking a slot of the global bound
// (this listener sits inside it).
func (l *addrLimits) listener(ln net.Listener) net.Listener {
	if l.maxConns <= 0 {
		return ln
	}
	return &limitedListener{Listener: ln, l: l}
}

type limitedListener struct {
	net.Listener
	l *addrLimits
}

func (ln *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil || ln.l.exempt(ap.Addr().Unmap()) {
			return c, nil
		}
		k := proxy.ClientPrefix(ap.Addr())
		if !ln.l.take(ln.l.conns, k, ln.l.maxConns) {
			ln.l.refused.WithLabelValues("connection").Inc()
			c.Close()
			continue
		}
		return &countedConn{Conn: c, release: func() { ln.l.give(ln.l.conns, k) }}, nil
	}
}

type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// handler bounds the requests with a body that one address has in
// progress: one more is answered 429 at once, before its body is read.
func (l *addrLimits) handler(next http.Handler) http.Handler {
	if l.maxBodies <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		a := proxy.PeerAddr(r)
		if !a.IsValid() || l.exempt(a) {
			next.ServeHTTP(w, r)
			return
		}
		k := proxy.ClientPrefix(a)
		if !l.take(l.bodies, k, l.maxBodies) {
			l.refused.WithLabelValues("body").Inc()
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Connection", "close")
			http.Error(w, "too many unfinished request bodies from this address", http.StatusTooManyRequests)
			return
		}
		defer l.give(l.bodies, k)
		next.ServeHTTP(w, r)
	})
}
