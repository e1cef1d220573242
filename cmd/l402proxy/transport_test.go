package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/l402kit/l402kit/proxy"
)

func TestTransportFlagsAndFile(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := proxy.TransportConfig{MaxIdleConnsPerHost: proxy.DefaultMaxIdleConnsPerHost, DialTimeout: proxy.DefaultDialTimeout,
		TLSHandshakeTimeout: proxy.DefaultTLSHandshakeTimeout, ResponseHeaderTimeout: proxy.DefaultResponseHeaderTimeout,
		IdleConnTimeout: proxy.DefaultIdleConnTimeout}
	if o.transport != want {
		t.Fatalf("defaults %+v, want %+v", o.transport, want)
	}
	o, err = parseFlags([]string{"--upstream-idle-per-host", "64", "--upstream-header-timeout", "-1s", "--upstream-no-http2"})
	if err != nil {
		t.Fatal(err)
	}
	if o.transport.MaxIdleConnsPerHost != 64 || o.transport.ResponseHeaderTimeout != -time.Second || !o.transport.DisableHTTP2 {
		t.Fatalf("flags: %+v", o.transport)
	}
	if tr := proxy.NewTransport(o.transport); tr.ResponseHeaderTimeout != 0 || tr.ForceAttemptHTTP2 {
		t.Fatalf("-1s should mean no limit and HTTP/2 off: %+v", tr)
	}

	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("upstream_transport:\n  max_idle_per_host: 512\n  response_header_timeout: 5m\n  http2: true\n"), 0o600)
	fc, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.UpstreamTransport.apply(&o.transport); err != nil {
		t.Fatal(err)
	}
	if o.transport.MaxIdleConnsPerHost != 512 || o.transport.ResponseHeaderTimeout != 5*time.Minute || o.transport.DisableHTTP2 ||
		o.transport.DialTimeout != proxy.DefaultDialTimeout {
		t.Fatalf("file: %+v", o.transport)
	}
	os.WriteFile(path, []byte("upstream_transport:\n  max_idle_per_host: -1\n"), 0o600)
	if fc, err = loadConfig(path); err == nil {
		err = fc.UpstreamTransport.apply(&o.transport)
	}
	if err == nil {
		t.Fatal("negative max_idle_per_host accepted")
	}
}
