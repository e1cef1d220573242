package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/l402kit/l402kit/proxy"
)

// transportFlags registers the upstream transport's flags on fs; zero
// values leave proxy.TransportConfig's defaults.
func transportFlags(fs *flag.FlagSet, c *proxy.TransportConfig) {
	fs.IntVar(&c.MaxIdleConnsPerHost, "upstream-idle-per-host", proxy.DefaultMaxIdleConnsPerHost, "idle connections kept open to each upstream; size it to the concurrent requests you expect")
	fs.DurationVar(&c.DialTimeout, "upstream-dial-timeout", proxy.DefaultDialTimeout, "limit for connecting to an upstream")
	fs.DurationVar(&c.TLSHandshakeTimeout, "upstream-tls-timeout", proxy.DefaultTLSHandshakeTimeout, "limit for the TLS handshake with an https upstream")
	fs.DurationVar(&c.ResponseHeaderTimeout, "upstream-header-timeout", proxy.DefaultResponseHeaderTimeout, "limit for an upstream's response headers after the request is sent (-1s: none)")
	fs.DurationVar(&c.IdleConnTimeout, "upstream-idle-timeout", proxy.DefaultIdleConnTimeout, "close idle upstream connections after this long")
	fs.BoolFunc("upstream-no-http2", "speak HTTP/1.1 to https upstreams even when they offer HTTP/2", func(s string) (err error) {
		c.DisableHTTP2, err = strconv.ParseBool(s)
		return err
	})
}

// transportConfig is the YAML file's upstream_transport; a field that is
// set replaces the flag's value.
type transportConfig struct {
	MaxIdlePerHost        int      `yaml:"max_idle_per_host"`
	DialTimeout           duration `yaml:"dial_timeout"`
	TLSHandshakeTimeout   duration `yaml:"tls_handshake_timeout"`
	ResponseHeaderTimeout duration `yaml:"response_header_timeout"`
	IdleTimeout           duration `yaml:"idle_timeout"`
	HTTP2                 *bool    `yaml:"http2"`
}

func (tc *transportConfig) apply(c *proxy.TransportConfig) error {
	if tc == nil {
		return nil
	}
	if tc.MaxIdlePerHost < 0 {
		return fmt.Errorf("upstream_transport.max_idle_per_host: %d is negative", tc.MaxIdlePerHost)
	}
	if tc.MaxIdlePerHost > 0 {
		c.MaxIdleConnsPerHost = tc.MaxIdlePerHost
	}
	for _, f := range []struct {
		from duration
		to   *time.Duration
	}{
		{tc.DialTimeout, &c.DialTimeout},
		{tc.TLSHandshakeTimeout, &c.TLSHandshakeTimeout},
		{tc.ResponseHeaderTimeout, &c.ResponseHeaderTimeout},
		{tc.IdleTimeout, &c.IdleConnTimeout},
	} {
		if f.from != 0 {
			*f.to = time.Duration(f.from)
		}
	}
	if tc.HTTP2 != nil {
		c.DisableHTTP2 = !*tc.HTTP2
	}
	return nil
}
