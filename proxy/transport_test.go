package proxy_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l402kit/l402kit/proxy"
)

func TestNewTransportDefaults(t *testing.T) {
	tr := proxy.NewTransport(proxy.TransportConfig{})
	if tr.MaxIdleConnsPerHost != proxy.DefaultMaxIdleConnsPerHost || tr.MaxIdleConns != 0 ||
		tr.IdleConnTimeout != proxy.DefaultIdleConnTimeout || tr.TLSHandshakeTimeout != proxy.DefaultTLSHandshakeTimeout ||
		tr.ResponseHeaderTimeout != proxy.DefaultResponseHeaderTimeout || !tr.ForceAttemptHTTP2 || tr.Proxy == nil {
		t.Fatalf("defaults: %+v", tr)
	}
	tr = proxy.NewTransport(proxy.TransportConfig{MaxIdleConnsPerHost: 8, ResponseHeaderTimeout: -1, IdleConnTimeout: time.Second, DisableHTTP2: true})
	if tr.MaxIdleConnsPerHost != 8 || tr.ResponseHeaderTimeout != 0 || tr.IdleConnTimeout != time.Second || tr.ForceAttemptHTTP2 {
		t.Fatalf("set: %+v", tr)
	}
}

// freeRoute forwards everything to up without asking for payment, so the
// tests below see the transport alone.
func freeRoute(t *testing.T, up string, tr http.RoundTripper) *httptest.Server {
	t.Helper()
	u, err := url.Parse(up)
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New(proxy.Config{Backend: newNode(t), Transport: tr,
		Routes: []proxy.Route{{PathPrefix: "/", Price: 1000, Mode: proxy.ModeFree, Upstream: u}}})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	return front
}

// TestDefaultTransportReusesConnections: under concurrent load the
// default transport keeps its upstream connections, where Go's
// http.DefaultTransport (2 idle per host) would open most requests anew.
func TestDefaultTransportReusesConnections(t *testing.T) {
	var conns atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	front := freeRoute(t, up.URL, nil)

	const workers, each = 32, 20
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				resp, err := client.Get(front.URL + "/x")
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- &statusError{resp.StatusCode}
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// At most one connection per concurrent request, plus dials that lost
	// the race to a connection coming back to the pool.
	if n := conns.Load(); n > 2*workers {
		t.Fatalf("%d upstream connections for %d requests from %d workers: the pool is not kept", n, workers*each, workers)
	}
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }

// TestTransportHTTP2 checks the upstream side speaks HTTP/2 when an https
// upstream offers it by ALPN, and HTTP/1.1 when told not to.
func TestTransportHTTP2(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) }))
	up.EnableHTTP2 = true
	up.StartTLS()
	defer up.Close()
	roots := up.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	for _, tc := range []struct {
		cfg  proxy.TransportConfig
		want string
	}{
		{proxy.TransportConfig{}, "HTTP/2.0"},
		{proxy.TransportConfig{DisableHTTP2: true}, "HTTP/1.1"},
	} {
		tr := proxy.NewTransport(tc.cfg)
		tr.TLSClientConfig = up.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		tr.TLSClientConfig.RootCAs = roots
		front := freeRoute(t, up.URL, tr)
		resp, err := http.Get(front.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != tc.want {
			t.Errorf("DisableHTTP2=%v: upstream saw %q, want %q", tc.cfg.DisableHTTP2, b, tc.want)
		}
		tr.CloseIdleConnections()
	}
}
