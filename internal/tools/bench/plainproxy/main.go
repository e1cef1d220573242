// Command plainproxy is make bench's baseline: a plain
// httputil.ReverseProxy in front of one upstream, with nothing added but a
// connection pool sized for the load (256 idle connections per host), so
// the L402 proxy is compared with the best a bare Go reverse proxy does.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	upstream := flag.String("upstream", "", "upstream URL")
	pooled := flag.Bool("buffer-pool", false, "lend the body copy buffers from a pool, as l402proxy does (httputil.ReverseProxy allocates 32 KiB per request without one)")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		fmt.Fprintf(os.Stderr, "plainproxy: -upstream %q: want http://host:port\n", *upstream)
		os.Exit(2)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0 // no overall cap; the per-host one below applies
	t.MaxIdleConnsPerHost = 256
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = t
	if *pooled {
		rp.BufferPool = &bufferPool{}
	}
	srv := &http.Server{Addr: *listen, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "plainproxy:", err)
		os.Exit(1)
	}
}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if a, ok := b.p.Get().(*[32 << 10]byte); ok {
		return a[:]
	}
	return new([32 << 10]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) == 32<<10 {
		b.p.Put((*[32 << 10]byte)(buf[:32<<10]))
	}
}
