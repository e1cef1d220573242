package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/memory"
	"github.com/l402kit/l402kit/proxy"
)

// TestGetThroughProxy runs the CLI against the reference proxy on a memory
// node, paying through the proxy's dev endpoint as the demo does: a plain
// paid route, a single-use route (hold invoice, settled after serving) and a
// single-use route whose upstream fails (hold canceled, nothing paid).
func TestGetThroughProxy(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/flaky/") {
			http.Error(w, "upstream broke", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "upstream body for "+r.URL.Path+" paid="+r.Header.Get(proxy.HeaderPaid)+"\n")
	}))
	defer up.Close()
	upURL, _ := url.Parse(up.URL)

	b, err := backend.Open(context.Background(), "memory://")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	node, _ := memory.AsNode(b)
	p, err := proxy.New(proxy.Config{
		Backend: b,
		Logger:  slog.New(slog.DiscardHandler),
		Routes: []proxy.Route{
			{Name: "paid", PathPrefix: "/paid/", Upstream: upURL, Price: backend.Sat(10)},
			{Name: "once", PathPrefix: "/once/", Upstream: upURL, Price: backend.Sat(3), SingleUse: true},
			{Name: "flaky", PathPrefix: "/flaky/", Upstream: upURL, Price: backend.Sat(3), SingleUse: true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(memory.DevPayPath, memory.DevPayHandler(node))
	mux.Handle("/", p)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	payer := "memory+dev://" + strings.TrimPrefix(srv.URL, "http://")

	cases := []struct {
		path, body, paid string
		code             int
	}{
		{"/paid/a", "upstream body for /paid/a paid=true\n", "paid 10 sat (fee 0 sat)", 0},
		{"/once/a", "upstream body for /once/a paid=true\n", "paid 3 sat (fee 0 sat)", 0},
		{"/flaky/a", "upstream broke\n", "nothing paid", exitHTTPStatus},
	}
	for _, c := range cases {
		code, out, errOut := runCLI("get", srv.URL+c.path, "--backend", payer, "--max-price", "10")
		if code != c.code || out != c.body || !strings.Contains(errOut, c.paid) {
			t.Errorf("l402 get %s: exit %d stdout %q stderr %q; want exit %d, %q, %q", c.path, code, out, errOut, c.code, c.body, c.paid)
		}
	}
}
