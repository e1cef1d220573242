package proxy_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/memory"
	"github.com/l402kit/l402kit/proxy"
)

// Put a price on part of an existing net/http service: the gate as
// middleware in front of the service's own handler. A client without a
// token gets 402 with an invoice; the paying client (l402.Transport) pays
// it and gets the report.
func ExampleProxy_Middleware() {
	ctx := context.Background()
	node, err := memory.New(ctx, memory.Config{}) // in production: backend.Open(ctx, "lnd://...")
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	p, err := proxy.New(proxy.Config{Backend: node, Routes: []proxy.Route{
		{Name: "reports", PathPrefix: "/reports/", Price: backend.Sat(10)},
		{Name: "rest", PathPrefix: "/", Mode: proxy.ModeFree},
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	service := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s (paid: %s)", r.URL.Path, r.Header.Get("X-L402-Paid"))
	})
	srv := httptest.NewServer(p.Middleware(service))
	defer srv.Close()

	get := func(c *http.Client, path string) {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusPaymentRequired {
			body = []byte("challenge")
		}
		fmt.Println(path, resp.Status, string(body))
	}
	get(http.DefaultClient, "/about")
	get(http.DefaultClient, "/reports/q3")
	payer := &http.Client{Transport: &l402.Transport{Payer: node, MaxPrice: backend.Sat(10)}}
	get(payer, "/reports/q3")
	// Output:
	// /about 200 OK /about (paid: false)
	// /reports/q3 402 Payment Required challenge
	// /reports/q3 200 OK /reports/q3 (paid: true)
}

// Let a front server (nginx auth_request, Traefik ForwardAuth, Caddy
// forward_auth) ask the gate about each request: the endpoint reads the
// original request from the X-Forwarded-* headers and answers 200 to let
// it through, or 402 with the challenge for the front server to pass on.
func ExampleProxy_ForwardAuth() {
	ctx := context.Background()
	node, err := memory.New(ctx, memory.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	p, err := proxy.New(proxy.Config{Backend: node, Routes: []proxy.Route{
		{Name: "api", Host: "api.example", PathPrefix: "/", Price: backend.Sat(5)},
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	auth := httptest.NewServer(p.ForwardAuth()) // l402proxy mounts it at /l402/auth
	defer auth.Close()

	// What the front server sends for a client's GET https://api.example/v1/quote.
	ask := func(c *http.Client) {
		req, _ := http.NewRequest(http.MethodGet, auth.URL, nil)
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-Host", "api.example")
		req.Header.Set("X-Forwarded-Uri", "/v1/quote")
		resp, err := c.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Printf("%s, X-L402-Paid: %q\n", resp.Status, resp.Header.Get("X-L402-Paid"))
	}
	ask(http.DefaultClient)
	// A client that pays the challenge the front server passed on, and
	// asks again with the token.
	ask(&http.Client{Transport: &l402.Transport{Payer: node, MaxPrice: backend.Sat(5)}})
	// Output:
	// 402 Payment Required, X-L402-Paid: ""
	// 200 OK, X-L402-Paid: "true"
}
