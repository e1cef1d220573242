package main

import (
	"context"
	"testing"

	"github.com/l402kit/l402kit/memory"
	"github.com/l402kit/l402kit/proxy"
)

// FuzzConfig: the YAML configuration file, through to proxy.New, which
// checks routes and their caveats. Nothing an operator can write makes the
// proxy panic at start-up. Seed corpus in testdata/fuzz/FuzzConfig.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"listen: 127.0.0.1:8402\nbackend: memory://\nroutes:\n  - name: api\n    path: /v1/\n    upstream: http://127.0.0.1:9000\n    price_sat: 10\n    mode: optional\n    token_lifetime: 24h\n    caveats: [\"method=GET\"]\n",
		"routes:\n  - path: /\n    mode: free\n  - host: Bücher.example\n    path: /paid/\n    price_msat: 1\n    single_use: true\n    invoice_expiry: 600\n",
		"server:\n  write_timeout: 0\n  max_connections: 5\n",
		"routes:\n  - path: /a/../b\n    price_sat: 1\n",
		"routes:\n  - path: /x\n    price_sat: 1\n    caveats: [\"mehtod=GET\", \"client_ip=300.1.1.1\"]\n",
		"routes: [{path: /, price_sat: -1}]", "{", "routes:\n  - token_lifetime: [1]\n",
	} {
		f.Add([]byte(s))
	}
	b, err := memory.New(context.Background(), memory.Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		fc, err := parseConfig(data)
		if err != nil {
			return
		}
		o := defaultServer
		fc.Server.apply(&o)
		o.check()
		var routes []proxy.Route
		for _, rc := range fc.Routes {
			r, err := rc.route()
			if err != nil {
				return
			}
			routes = append(routes, r)
		}
		p, err := proxy.New(proxy.Config{Backend: b, Routes: routes, Logger: slogDiscard()})
		if c, ok := any(p).(interface{ Close() error }); ok && err == nil {
			c.Close() // a Proxy that runs background work stops it
		}
	})
}
